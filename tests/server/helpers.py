"""Raw HTTP helpers and token minting for the server conformance tests."""

from __future__ import annotations

import base64
import http.client
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from django_objectstore._protocol import presign_canonical_string

KEYS_DIR = Path(__file__).resolve().parent.parent / "keys"
PRIVATE_PEM = KEYS_DIR / "test_kid.private.pem"
PUBLIC_PEM = KEYS_DIR / "test_kid.public.pem"
ALL_PERMISSIONS = ["object.read", "object.write", "object.delete"]

#: A generated private key and the path of its public PEM file.
KeyPair = tuple[Ed25519PrivateKey, Path]


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    base_url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    *,
    chunked: bool = False,
) -> Response:
    """Send one request with the exact path bytes given (no re-encoding)."""
    host_port = base_url.removeprefix("http://")
    host, _, port = host_port.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest(method, path, skip_host=False, skip_accept_encoding=True)
        items = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
        for name, value in items:
            conn.putheader(name, value)
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            if body:
                conn.send(b"%x\r\n%s\r\n" % (len(body), body))
            conn.send(b"0\r\n\r\n")
        else:
            if body is not None and not any(n.lower() == "content-length" for n, _ in items):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
        response = conn.getresponse()
        data = response.read()
        return Response(response.status, response.headers, data)
    finally:
        conn.close()


def private_key() -> Ed25519PrivateKey:
    key = load_pem_private_key(PRIVATE_PEM.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def mint(
    *,
    usecase: str = "test",
    scopes: Mapping[str, Any] | None = None,
    permissions: Sequence[str] = ALL_PERMISSIONS,
    kid: str | None = "test_kid",
    key: Ed25519PrivateKey | None = None,
    exp_offset: float = 60,
    extra: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> str:
    """A JWT as the official clients mint it (defaults: test/org=1, rwd)."""
    res: dict[str, Any] = {"os:usecase": usecase}
    res.update({"org": "1"} if scopes is None else scopes)
    claims: dict[str, Any] = {
        "res": res,
        "permissions": list(permissions),
        "exp": int((time.time() if now is None else now) + exp_offset),
    }
    claims.update(extra or {})
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(claims, key or private_key(), algorithm="EdDSA", headers=headers)


def bearer(token: str) -> dict[str, str]:
    return {"x-os-auth": f"Bearer {token}"}


def presign(
    method: str,
    path: str,
    *,
    kid: str = "test_kid",
    key: Ed25519PrivateKey | None = None,
    signed_at: datetime | None = None,
    duration: int = 3600,
    extra_query: str = "",
) -> str:
    """``path?query`` of a pre-signed URL per section 10."""
    moment = signed_at or datetime.now(UTC)
    query = (
        f"os_kid={kid}&os_timestamp={moment.strftime('%Y-%m-%dT%H:%M:%SZ')}"
        f"&os_duration={duration}{extra_query}"
    )
    canonical = presign_canonical_string(method, path, query)
    signature = (key or private_key()).sign(canonical.encode("utf-8"))
    sig = base64.urlsafe_b64encode(signature).rstrip(b"=").decode("ascii")
    return f"{path}?{query}&os_sig={sig}"


class FakeClock:
    """An aware UTC clock that tests can move forward; ``frozen`` stops it
    between explicit advances."""

    def __init__(self, *, frozen: bool = False) -> None:
        self.offset = timedelta(0)
        self.frozen_at = datetime.now(UTC) if frozen else None

    def __call__(self) -> datetime:
        base = self.frozen_at if self.frozen_at is not None else datetime.now(UTC)
        return base + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta
