"""Tokens are signed with PyJWT, in the official client's exact format:
same header and claims and, Ed25519 being deterministic, the same bytes as
``objectstore_client.SecretKey`` for the same arguments in the same second;
the server accepts them."""

from __future__ import annotations

import time

import jwt
import objectstore_client
import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from django_objectstore.client import Client, Permission, SecretKey, Usecase
from django_objectstore.client.scope import Scope
from django_objectstore.server import LocalServer

from .conftest import PRIVATE_PEM, PUBLIC_PEM_PATH

with open(PUBLIC_PEM_PATH, "rb") as _file:
    PUBLIC_KEY = load_pem_public_key(_file.read())


def _pair(permissions: list[str] | None, expiry_seconds: int | None) -> tuple[str, str]:
    """Our token and the official one for the same arguments, signed within
    the same second."""
    official_key = objectstore_client.SecretKey("test_kid", PRIVATE_PEM)
    ours = SecretKey("test_kid", PRIVATE_PEM)
    official_scope = objectstore_client.client.Scope(org=7, project="p-1")
    for _ in range(5):
        start = int(time.time())
        mine = ours.token_for_scope(
            "test",
            Scope(org=7, project="p-1"),
            None if permissions is None else [Permission(p) for p in permissions],
            expiry_seconds,
        )
        theirs = official_key.token_for_scope(
            "test",
            official_scope,
            None
            if permissions is None
            else [objectstore_client.Permission(p) for p in permissions],
            expiry_seconds,
        )
        if int(time.time()) == start:
            return mine, theirs
    raise AssertionError("could not sign both tokens within one second")


@pytest.mark.parametrize(
    ("permissions", "expiry_seconds"),
    [(None, None), (None, 3600), (["object.read"], None), (["object.read", "object.delete"], 5)],
)
def test_same_token_bytes_as_the_official_client(
    permissions: list[str] | None, expiry_seconds: int | None
) -> None:
    mine, theirs = _pair(permissions, expiry_seconds)
    assert jwt.get_unverified_header(mine) == jwt.get_unverified_header(theirs)
    assert jwt.get_unverified_header(mine) == {"alg": "EdDSA", "kid": "test_kid", "typ": "JWT"}
    claims = jwt.decode(mine, PUBLIC_KEY, algorithms=["EdDSA"])
    assert claims == jwt.decode(theirs, PUBLIC_KEY, algorithms=["EdDSA"])
    assert claims["res"] == {"os:usecase": "test", "org": "7", "project": "p-1"}
    assert claims["permissions"] == (permissions or [str(p) for p in Permission.max()])
    assert mine == theirs


def test_the_server_accepts_our_tokens(server: LocalServer, secret_key: SecretKey) -> None:
    with Client(server.url, token=secret_key) as client:
        session = client.session(Usecase("test"), org=424242)
        key = session.put(b"signed with PyJWT")
        got = session.get(key)
        assert got is not None
        assert got.payload.read() == b"signed with PyJWT"


def test_a_wrong_key_type_is_refused_with_a_clear_message() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(ValueError, match="not an Ed25519 key") as info:
        SecretKey("k", pem).token_for_scope("test", Scope(org=1))
    assert "PRIVATE KEY" not in str(info.value)
