from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from django_objectstore.server import KeyConfig, LocalServer
from tests.server.helpers import ALL_PERMISSIONS, PUBLIC_PEM, KeyPair


@pytest.fixture(scope="session")
def memory_server() -> Iterator[LocalServer]:
    """Memory storage, auth not enforced."""
    with LocalServer(storage="memory") as server:
        yield server


@pytest.fixture(scope="session")
def fs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("objectstore-fs")


@pytest.fixture(scope="session")
def fs_server(fs_root: Path) -> Iterator[LocalServer]:
    """Filesystem storage in a temporary directory, auth not enforced."""
    with LocalServer(storage="filesystem", path=fs_root) as server:
        yield server


@pytest.fixture(scope="session", params=["memory", "filesystem"])
def any_server(
    request: pytest.FixtureRequest, memory_server: LocalServer, fs_server: LocalServer
) -> LocalServer:
    """Each test using this runs against both backends."""
    return memory_server if request.param == "memory" else fs_server


@pytest.fixture(scope="session")
def read_only_key(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    """A second key pair (kid ``ro_kid``) whose max_permissions is read only."""
    key = Ed25519PrivateKey.generate()
    path = tmp_path_factory.mktemp("keys") / "ro_kid.pem"
    path.write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    return key, path


@pytest.fixture(scope="session")
def write_only_key(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    """A key pair (kid ``wo_kid``) whose max_permissions lacks object.read."""
    key = Ed25519PrivateKey.generate()
    path = tmp_path_factory.mktemp("keys") / "wo_kid.pem"
    path.write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    return key, path


@pytest.fixture(scope="session")
def auth_keys(
    read_only_key: KeyPair,
    write_only_key: KeyPair,
) -> dict[str, KeyConfig]:
    return {
        "test_kid": KeyConfig([PUBLIC_PEM], ALL_PERMISSIONS),
        "ro_kid": KeyConfig([read_only_key[1]], ["object.read"]),
        "wo_kid": KeyConfig([write_only_key[1]], ["object.write"]),
    }


@pytest.fixture(scope="session")
def auth_server(auth_keys: dict[str, KeyConfig]) -> Iterator[LocalServer]:
    """Memory storage with auth enforced (kids test_kid, ro_kid, wo_kid)."""
    with LocalServer(storage="memory", auth_enforce=True, auth_keys=auth_keys) as server:
        yield server
