"""Fixtures for the third-party apps project: one local Objectstore for the
session whose backend counts the objects it writes, so tests can assert that
a cached thumbnail is not uploaded again."""

from __future__ import annotations

import io
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from django_objectstore.server.model import Backend, Identity, ObjectMeta, Writer
from django_objectstore.testing import ObjectstoreTestServer, override_objectstore


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Wagtail hands each new rendition to storage in a SpooledTemporaryFile it
    # never closes (wagtail/images/models.py, generate_rendition_file); storages
    # must not close what they save, so the warning comes whatever the storage.
    leak = (
        "ignore:Exception ignored in.*SpooledTemporaryFile:pytest.PytestUnraisableExceptionWarning"
    )
    for item in items:
        item.add_marker(pytest.mark.filterwarnings(leak))


class CountingBackend:
    """The server's real backend, recording every object write (PUT/POST)."""

    def __init__(self, inner: Backend) -> None:
        self._inner = inner
        self.written: list[Identity] = []

    def writer(self, ident: Identity, meta: ObjectMeta) -> Writer:
        self.written.append(ident)
        return self._inner.writer(ident, meta)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture(scope="session")
def counting_server() -> Iterator[tuple[ObjectstoreTestServer, CountingBackend]]:
    server = ObjectstoreTestServer().start()
    counting = CountingBackend(server.server.service.backend)
    server.server.service.backend = counting  # type: ignore[assignment]
    yield server, counting
    server.stop()


@pytest.fixture(autouse=True)
def objectstore(
    counting_server: tuple[ObjectstoreTestServer, CountingBackend],
) -> Iterator[ObjectstoreTestServer]:
    with override_objectstore(counting_server[0]) as server:
        yield server


@pytest.fixture
def writes(counting_server: tuple[ObjectstoreTestServer, CountingBackend]) -> CountingBackend:
    return counting_server[1]


def png(width: int = 120, height: int = 80, colour: str = "teal") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="30" viewBox="0 0 40 30">'
    b'<rect width="40" height="30" fill="teal"/></svg>'
)


def fetch(url: str) -> tuple[int, bytes, dict[str, str]]:
    """GET a URL the storage handed out (a pre-signed URL on the local server)."""
    assert url.startswith("http://127.0.0.1:"), url
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read(), {k.lower(): v for k, v in response.headers.items()}
