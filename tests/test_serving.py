"""The download view under real servers: uvicorn (ASGI) and wsgiref (WSGI) in
a child process, against a real local Objectstore. A big download must stream:
the server process's peak RSS may grow by at most 64 MiB."""

from __future__ import annotations

import hashlib
import os
import urllib.request
from collections.abc import Iterator

import pytest
from django.core.files import File
from django.core.files.base import ContentFile
from django.test import override_settings

from django_objectstore.server import LocalServer
from django_objectstore.storage import ObjectstoreStorage
from tests.serving.harness import Kind, served

MIB = 1 << 20
BIG = 256 * MIB
LIMIT_KIB = 64 * 1024
USECASES = {
    "plain": {"COMPRESSION": "none", "EXPIRATION": "manual"},
    "attachments": {"COMPRESSION": "zstd", "EXPIRATION": "manual"},
}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def objectstore_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A filesystem-backed server, so 256 MiB objects cost no test memory."""
    root = tmp_path_factory.mktemp("objectstore")
    with LocalServer(storage="filesystem", path=root, fsync=False, sweep_interval=None) as server:
        yield server.url


@pytest.fixture(scope="module")
def stored(objectstore_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Names of a small and a 256 MiB object in 'plain', a small one in 'attachments'."""
    source = tmp_path_factory.mktemp("payload") / "big.bin"
    block = os.urandom(MIB)
    with source.open("wb") as out:
        for _ in range(BIG // MIB):
            out.write(block)
    conf = {"URL": objectstore_url, "USECASES": USECASES}
    with override_settings(OBJECTSTORE=conf):
        plain = ObjectstoreStorage("plain")
        with source.open("rb") as handle:
            big = plain.save("big.bin", File(handle))
        small = plain.save("small.txt", ContentFile(b"warm-up"))
        zstd = ObjectstoreStorage("attachments").save("notes.txt", ContentFile(b"z" * 300_000))
    source.unlink()
    return {"big": big, "small": small, "zstd": zstd}


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_big_download_streams(kind: Kind, objectstore_url: str, stored: dict[str, str]) -> None:
    with served(kind, {"OBJECTSTORE_URL": objectstore_url}) as server:
        status, head = server.download(f"/files/plain/{stored['small']}")
        assert (status, head) == (200, b"warm-up")
        status, head = server.download(f"/files/attachments/{stored['zstd']}")
        assert (status, head) == (200, b"z" * 65536)
        baseline = server.peak_rss_kib()
        status, _ = server.download(f"/files/plain/{stored['big']}")
        assert status == 200
        grown = server.peak_rss_kib() - baseline
    assert grown < LIMIT_KIB, f"{kind}: peak RSS grew by {grown // 1024} MiB serving 256 MiB"


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_ranges_and_refusals_under_real_servers(
    kind: Kind, objectstore_url: str, stored: dict[str, str]
) -> None:
    with served(kind, {"OBJECTSTORE_URL": objectstore_url}) as server:
        request = urllib.request.Request(
            f"{server.url}/files/attachments/{stored['zstd']}",
            headers={"Range": "bytes=299990-"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 206
            assert response.read() == b"z" * 10
        assert server.download(f"/files/plain/{stored['small']}x")[0] == 404
        digest = hashlib.sha256()
        request = urllib.request.Request(f"{server.url}/files/plain/{stored['small']}")
        with urllib.request.urlopen(request, timeout=30) as response:
            digest.update(response.read())
        assert digest.digest() == hashlib.sha256(b"warm-up").digest()


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_client_that_disconnects_mid_download(
    kind: Kind, objectstore_url: str, stored: dict[str, str]
) -> None:
    """A browser that goes away mid-download leaves a server that still
    answers, without having buffered the rest of the object."""
    with served(kind, {"OBJECTSTORE_URL": objectstore_url}) as server:
        assert server.download(f"/files/plain/{stored['small']}")[0] == 200
        baseline = server.peak_rss_kib()
        for _ in range(3):
            with urllib.request.urlopen(
                f"{server.url}/files/plain/{stored['big']}", timeout=30
            ) as response:
                assert len(response.read(4 * MIB)) == 4 * MIB
        status, head = server.download(f"/files/plain/{stored['small']}")
        assert (status, head) == (200, b"warm-up")
        assert server.peak_rss_kib() - baseline < LIMIT_KIB
