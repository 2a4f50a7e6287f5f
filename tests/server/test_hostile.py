"""Hostile input over HTTP: every value that used to end in a 500 with a
traceback now gets a 4xx whose message says what is wrong (issue 11), and
the Range grammar is upstream's (section 7)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from django_objectstore.server import KeyConfig, LocalServer, RateLimits, ThroughputLimits
from tests.server.helpers import (
    ALL_PERMISSIONS,
    COMPLETE,
    PARTS,
    PUBLIC_PEM,
    FakeClock,
    bearer,
    call,
    initiate,
    mint,
    private_key,
)

OBJ = "/v1/objects/test/org=1"
HUGE = "9" * 5000


@pytest.fixture(autouse=True)
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Nothing these tests send may make the server log an error."""
    with caplog.at_level(logging.ERROR, logger="django_objectstore.server"):
        yield
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_nested_jose_header(auth_server: LocalServer) -> None:
    token = f"{b64(b'[' * 30000)}.{b64(b'{}')}.{b64(b'x' * 64)}"
    r = call(auth_server.url, "GET", f"{OBJ}/k", headers=bearer(token))
    assert r.status == 401  # an undecodable header is 401 upstream (section 9.3)
    assert r.json()["detail"] == (
        "auth error: failed to decode token: invalid token header (JSON nested too deeply)"
    )


def test_alg_confusion_is_401(auth_server: LocalServer) -> None:
    """An HS256 token keyed with the public key's PEM, and an unsigned one."""
    claims = {"res": {"os:usecase": "test", "org": "1"}, "permissions": ALL_PERMISSIONS}
    claims["exp"] = int(time.time()) + 60  # type: ignore[assignment]
    pem = private_key().public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    header = {"alg": "HS256", "kid": "test_kid", "typ": "JWT"}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{b64(mac)}"
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": "test_kid"})
    for token in (forged, unsigned):
        r = call(auth_server.url, "GET", f"{OBJ}/k", headers=bearer(token))
        assert r.status == 401, token
        assert r.json()["detail"].startswith("auth error: failed to decode token")


def test_presigned_huge_duration(auth_server: LocalServer) -> None:
    query = f"os_kid=test_kid&os_sig={'A' * 86}&os_timestamp=2026-01-01T00:00:00Z"
    r = call(auth_server.url, "GET", f"{OBJ}/k?{query}&os_duration={HUGE}")
    assert r.status == 400
    assert "invalid os_duration: number too large" in r.json()["detail"]


@pytest.fixture(scope="module")
def ranged() -> Iterator[str]:
    with LocalServer() as server:
        assert call(server.url, "PUT", f"{OBJ}/r", b"Hello, Range Requests!").status == 200
        yield server.url


@pytest.mark.parametrize(
    "spec",
    [
        "bytes=²-",
        "bytes=٣-".encode(),  # an Arabic-Indic digit, sent as UTF-8
        f"bytes={HUGE}-",
        f"bytes=-{HUGE}",
        "bytes=18446744073709551616-",
        "bytes= 0-4",
        "bytes=0 -4",
        "bytes=+-4",
        "bytes=0x1-",
        "bytes=-",
    ],
)
def test_range_rejected(ranged: str, spec: str | bytes) -> None:
    r = call(ranged, "GET", f"{OBJ}/r", headers=[("Range", spec)])  # type: ignore[list-item]
    assert r.status == 400
    assert r.json()["detail"].startswith("client error: invalid Range header: ")


@pytest.mark.parametrize(
    ("spec", "status", "content_range"),
    [
        ("bytes=+0-+4", 206, "bytes 0-4/22"),
        ("bytes=-+9", 206, "bytes 13-21/22"),
        ("BYTES=0007-", 206, "bytes 7-21/22"),
        ("bytes=18446744073709551615-", 416, "bytes */22"),
    ],
)
def test_range_upstream_grammar(ranged: str, spec: str, status: int, content_range: str) -> None:
    r = call(ranged, "GET", f"{OBJ}/r", headers=[("Range", spec)])
    assert (r.status, r.header("content-range")) == (status, content_range)


def test_huge_multipart_numbers(memory_server: LocalServer) -> None:
    key = f"mp-{uuid.uuid4().hex}"
    upload_id = initiate(memory_server.url, key)
    base = f"{PARTS}/{key}?upload_id={upload_id}"
    for path, method in (
        (f"{base}&part_number={HUGE}", "PUT"),
        (f"{base}&part_number=4294967296", "PUT"),
        (f"{base}&max_parts={HUGE}", "GET"),
        (f"{base}&part_number_marker={HUGE}", "GET"),
    ):
        r = call(memory_server.url, method, path, b"x" if method == "PUT" else None)
        assert r.status == 400, path
        assert r.body.startswith(b"Failed to deserialize query string: ")
        assert b"number too large" in r.body
    assert call(memory_server.url, "PUT", f"{base}&part_number=%2B1", b"x").status == 200


@pytest.mark.parametrize("value", ["ttl:1e30s", "tti:999999999y", "ttl:9999999d", f"ttl:{HUGE}s"])
def test_overflowing_expiration_on_put(memory_server: LocalServer, value: str) -> None:
    r = call(memory_server.url, "PUT", f"{OBJ}/exp", b"x", {"x-sn-expiration": value})
    assert r.status == 400
    detail = r.json()["detail"]
    assert detail.startswith("service error: metadata error: invalid expiration policy value")
    assert detail != "service error: metadata error: invalid expiration policy value"  # says why


def test_deeply_nested_json_bodies(memory_server: LocalServer) -> None:
    url = memory_server.url
    json_type = {"Content-Type": "application/json"}
    call(url, "PUT", f"{OBJ}/deep", b"x", {"x-sn-expiration": "ttl:1h"})
    deep = b"[" * 100_000 + b"]" * 100_000
    r = call(url, "PATCH", f"{OBJ}/deep", deep, json_type)
    assert r.status == 400
    assert "nested too deeply" in r.json()["detail"]
    r = call(url, "PATCH", f"{OBJ}/deep", b'{"extend_expiry":' + deep + b"}", json_type)
    assert r.status == 400
    key = f"c-{uuid.uuid4().hex}"
    upload_id = initiate(url, key)
    r = call(url, "POST", f"{COMPLETE}/{key}?upload_id={upload_id}", b'{"parts":' + deep, json_type)
    assert r.status == 400
    assert r.body.startswith(b"Failed to parse the request body as JSON: ")
    assert b"nested too deeply" in r.body


def test_token_cache_honours_expiry(tmp_path: Path) -> None:
    clock = FakeClock(frozen=True)
    keys = {"test_kid": KeyConfig([PUBLIC_PEM], ALL_PERMISSIONS)}
    with LocalServer(auth_enforce=True, auth_keys=keys, clock=clock) as server:
        token = mint(now=clock().timestamp(), exp_offset=60)
        assert call(server.url, "PUT", f"{OBJ}/c", b"x", bearer(token)).status == 200
        assert call(server.url, "GET", f"{OBJ}/c", headers=bearer(token)).status == 200  # cached
        clock.advance(timedelta(seconds=119))  # exp + 60 s leeway not yet passed
        assert call(server.url, "GET", f"{OBJ}/c", headers=bearer(token)).status == 200
        clock.advance(timedelta(seconds=2))
        r = call(server.url, "GET", f"{OBJ}/c", headers=bearer(token))
        assert (r.status, r.json()["detail"]) == (
            401,
            "auth error: failed to decode token: token has expired",
        )


def test_keda_gauges_for_configured_limits() -> None:
    limits = RateLimits(throughput=ThroughputLimits(global_rps=250))
    with LocalServer(max_requests=64, max_concurrency=8, rate_limits=limits) as server:
        r = call(server.url, "GET", "/keda")
        assert r.header("content-type") == "text/plain; version=0.0.4; charset=utf-8"
        text = r.body.decode()
    for line in (
        "objectstore_requests_limit 64",
        "objectstore_tasks_limit 8",
        "objectstore_throughput_limit 250",
        "# TYPE objectstore_throughput_limit gauge",
    ):
        assert line in text.splitlines()
    assert "objectstore_bandwidth_limit" not in text
