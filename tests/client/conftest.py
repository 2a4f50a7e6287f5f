from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from django_objectstore.client import Client, SecretKey, Session, Usecase, _session
from django_objectstore.server import KeyConfig, LocalServer

KEYS = Path(__file__).resolve().parent.parent / "keys"
PRIVATE_PEM = (KEYS / "test_kid.private.pem").read_text()
PUBLIC_PEM_PATH = str(KEYS / "test_kid.public.pem")
ALL_PERMISSIONS = ["object.read", "object.write", "object.delete"]

_orgs = itertools.count(1)


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("OBJECTSTORE_", "OS__")):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def server() -> Iterator[LocalServer]:
    """One in-memory server with auth enforced, shared by the client tests."""
    keys = {"test_kid": KeyConfig(key_files=[PUBLIC_PEM_PATH], max_permissions=ALL_PERMISSIONS)}
    with LocalServer(storage="memory", auth_enforce=True, auth_keys=keys) as running:
        yield running


@pytest.fixture
def secret_key() -> SecretKey:
    return SecretKey("test_kid", PRIVATE_PEM)


@pytest.fixture
def client(server: LocalServer, secret_key: SecretKey) -> Iterator[Client]:
    with Client(server.url, token=secret_key) as made:
        yield made


@pytest.fixture
def org() -> int:
    """A scope value no other test uses, so tests never see each other's objects."""
    return next(_orgs) + os.getpid() * 1000


@pytest.fixture
def session(client: Client, org: int) -> Session:
    return client.session(Usecase("test"), org=org)


@pytest.fixture
def streaming_session(server: LocalServer, secret_key: SecretKey, org: int) -> Iterator[Session]:
    """A session whose client never takes the large-input paths
    (``multipart_threshold="none"``): every put is one streamed request,
    byte-identical to the official client's."""
    with Client(server.url, token=secret_key, multipart_threshold="none") as made:
        yield made.session(Usecase("test"), org=org)


@pytest.fixture
def allow_small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let clients use multipart parts below the 5 MiB production minimum, so
    multipart tests stay small (the local server accepts any part size)."""
    monkeypatch.setattr(_session, "MIN_MULTIPART_PART_SIZE", 1)
