"""Raw HTTP helpers and token minting for the server conformance tests."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
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


# -- multipart uploads (usecase "test", scope org=1) ---------------------------

MP = "/v1/objects:multipart/test/org=1"
PARTS = "/v1/objects:multipart:parts/test/org=1"
COMPLETE = "/v1/objects:multipart:complete/test/org=1"


def initiate(url: str, key: str, headers: dict[str, str] | None = None) -> str:
    """Start a multipart upload of ``key``; its upload id."""
    r = call(url, "PUT", f"{MP}/{key}", b"", headers)
    assert r.status == 200, r.body
    body = r.json()
    assert body["key"] == key
    assert body["upload_id"]
    return str(body["upload_id"])


def upload(url: str, key: str, upload_id: str, number: int, data: bytes) -> str:
    """Upload part ``number``; its etag."""
    r = call(url, "PUT", f"{PARTS}/{key}?upload_id={upload_id}&part_number={number}", data)
    assert r.status == 200, r.body
    return str(r.json()["etag"])


def complete(url: str, key: str, upload_id: str, parts: list[tuple[int, str]]) -> dict[str, Any]:
    """Complete with ``(part_number, etag)`` pairs; the JSON document answered
    (completion errors are 200 too, with an ``error`` member)."""
    body = json.dumps({"parts": [{"part_number": n, "etag": e} for n, e in parts]}).encode()
    r = call(
        url,
        "POST",
        f"{COMPLETE}/{key}?upload_id={upload_id}",
        body,
        {"Content-Type": "application/json"},
    )
    assert r.status == 200
    assert r.header("content-type") == "application/json"
    result: dict[str, Any] = json.loads(r.body.strip())
    return result


# -- the command-line server ------------------------------------------------------


def cli_environ(env: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without its ``OS__*`` variables, plus ``env``."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OS__")}
    environ.update(env)
    return environ


def run_cli(env: Mapping[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m django_objectstore.server *args`` with ``cli_environ(env)``, to the end."""
    return subprocess.run(
        [sys.executable, "-m", "django_objectstore.server", *args],
        env=cli_environ(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@contextlib.contextmanager
def cli_server(
    cwd: Path,
    env: Mapping[str, str],
    args: Sequence[str] = ("run",),
    before: list[str] | None = None,
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``python -m django_objectstore.server run`` on a free port with the
    ``OS__*`` variables ``env`` (and none from this process; auth off unless
    ``env`` says otherwise): the process and its URL. Lines printed before
    the "listening" line (warnings) are appended to ``before``. Killed
    afterwards if the test did not stop it."""
    environ = cli_environ(
        {
            "OS__HTTP_ADDR": "127.0.0.1:0",
            "OS__LOGGING__LEVEL": "WARN",
            "OS__AUTH__ENFORCE": "false",
            **env,
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "django_objectstore.server", *args],
        env=environ,
        cwd=cwd,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    try:
        for _ in range(100):
            line = proc.stderr.readline()
            if " listening on " in line or not line:
                break
            if before is not None:
                before.append(line.rstrip("\n"))
        assert " listening on " in line, f"server did not start: {line!r}"
        url = line.split(" listening on ")[1].split()[0]
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        proc.stderr.close()
