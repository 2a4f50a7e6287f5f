"""Conformance: the batch endpoint (protocol section 19, items 107-117)."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from django_objectstore.server import ExpirationRule, LocalServer, UsecasePolicy
from django_objectstore.server.batch import split_parts
from tests.server.helpers import bearer, call, mint

BATCH = "/v1/objects:batch/test/org=1/"
OBJ = "/v1/objects/test/org=1"


def build(ops: list[tuple[list[tuple[str, str]], bytes]], boundary: str = "b0undary") -> bytes:
    out = b""
    for headers, body in ops:
        out += f"--{boundary}\r\n".encode()
        out += b'content-disposition: form-data; name="part"\r\n'
        for name, value in headers:
            out += f"{name}: {value}\r\n".encode()
        out += b"\r\n" + body + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def op(kind: str, key: str | None = None, *extra: tuple[str, str]) -> list[tuple[str, str]]:
    headers = [("x-sn-batch-operation-kind", kind)]
    if key is not None:
        headers.append(("x-sn-batch-operation-key", key))
    return headers + list(extra)


def send(
    server: LocalServer,
    ops: list[tuple[list[tuple[str, str]], bytes]],
    headers: dict[str, str] | None = None,
) -> dict[int, tuple[dict[str, str], bytes]]:
    ctype = {"Content-Type": "multipart/form-data; boundary=b0undary"}
    r = call(server.url, "POST", BATCH, build(ops), {**ctype, **(headers or {})})
    assert r.status == 200, r.body
    match = re.fullmatch(
        r'multipart/form-data; boundary="(os-boundary-[0-9a-f]{32})"',
        r.header("content-type") or "",
    )
    assert match, r.header("content-type")
    assert r.body.endswith(f"--{match.group(1)}--".encode())
    results = {}
    for part_headers, body in split_parts(r.body, match.group(1)):
        fields = dict(part_headers)
        assert fields["content-disposition"] == "form-data; name=part"
        results[int(fields["x-sn-batch-operation-index"])] = (fields, body)
    return results


def test_mixed_batch(any_server: LocalServer) -> None:
    suffix = uuid.uuid4().hex[:8]
    call(any_server.url, "PUT", f"{OBJ}/test/0{suffix}", b"hello", {"Content-Type": "text/plain"})
    call(any_server.url, "PUT", f"{OBJ}/test3{suffix}", b"bye")
    results = send(
        any_server,
        [
            (op("get", f"test%2F0{suffix}"), b""),
            (op("insert", f"test1{suffix}", ("content-type", "application/octet-stream")), b"one"),
            (
                op(
                    "INSERT",
                    f"test2{suffix}",
                    ("content-type", "text/plain"),
                    ("x-sn-expiration", "ttl:1h"),
                    ("x-sn-origin", "203.0.113.1"),
                ),
                b"two",
            ),
            (op("delete", f"test3{suffix}"), b""),
        ],
    )
    assert set(results) == {0, 1, 2, 3}
    get_headers, get_body = results[0]
    assert get_headers["x-sn-batch-operation-status"] == "200 OK"
    assert get_headers["x-sn-batch-operation-key"] == f"test%2F0{suffix}"
    assert get_headers["x-sn-batch-operation-kind"] == "get"
    assert get_headers["content-type"] == "text/plain"
    assert get_body == b"hello"
    assert results[1][0]["x-sn-batch-operation-status"] == "201 Created"
    assert results[2][0]["x-sn-batch-operation-kind"] == "insert"
    assert results[3][0]["x-sn-batch-operation-status"] == "204 No Content"
    stored = call(any_server.url, "GET", f"{OBJ}/test2{suffix}")
    assert (stored.body, stored.header("x-sn-expiration")) == (b"two", "ttl:1h")
    assert stored.header("x-sn-origin") == "203.0.113.1"
    assert call(any_server.url, "GET", f"{OBJ}/test3{suffix}").status == 404


def test_insert_without_key_and_errors(memory_server: LocalServer) -> None:
    missing = f"missing-{uuid.uuid4().hex}"
    results = send(
        memory_server,
        [
            (op("insert"), b"generated"),
            (op("get"), b""),
            (op("fetch", "k"), b""),
            (op("insert", "big"), b"x" * (1024 * 1024 + 1)),
            (op("get", missing), b""),
            (op("head", missing), b""),
            (op("insert", "bad", ("x-sn-expiration", "nope")), b"x"),
        ],
    )
    headers, _ = results[0]
    assert headers["x-sn-batch-operation-status"] == "201 Created"
    key = headers["x-sn-batch-operation-key"].replace("%2D", "-")
    assert len(key) == 36
    assert call(memory_server.url, "GET", f"{OBJ}/{key}").body == b"generated"
    for index, status in (
        (1, "400 Bad Request"),
        (2, "400 Bad Request"),
        (3, "413 Payload Too Large"),
        (6, "400 Bad Request"),
    ):
        headers, body = results[index]
        assert headers["x-sn-batch-operation-status"] == status
        assert "x-sn-batch-operation-key" not in headers
        assert "x-sn-batch-operation-kind" not in headers
        assert json.loads(body)["detail"]
    for index in (4, 5):
        assert results[index][0]["x-sn-batch-operation-status"] == "404 Not Found"
        assert results[index][1] == b""


def test_head_found(memory_server: LocalServer) -> None:
    key = f"h-{uuid.uuid4().hex}"
    call(memory_server.url, "PUT", f"{OBJ}/{key}", b"x", {"x-snme-a": "b"})
    headers, body = send(memory_server, [(op("head", key), b"")])[0]
    assert headers["x-sn-batch-operation-status"] == "204 No Content"
    assert headers["x-snme-a"] == "b"
    assert body == b""


def test_operation_limit(memory_server: LocalServer) -> None:
    results = send(memory_server, [(op("get", "nothing"), b"")] * 1001)
    assert len(results) == 1001
    assert results[1000][0]["x-sn-batch-operation-status"].startswith("413")
    assert results[999][0]["x-sn-batch-operation-status"] == "404 Not Found"


@pytest.mark.parametrize(
    ("path", "ctype", "status"),
    [
        (BATCH, "application/json", 400),
        (BATCH, "multipart/mixed; boundary=x", 400),
        (BATCH.rstrip("/"), "multipart/form-data; boundary=b0undary", 404),
    ],
)
def test_whole_request_errors(
    memory_server: LocalServer, path: str, ctype: str, status: int
) -> None:
    r = call(
        memory_server.url, "POST", path, build([(op("get", "k"), b"")]), {"Content-Type": ctype}
    )
    assert r.status == status


def test_read_only_token(auth_server: LocalServer) -> None:
    token = bearer(mint(permissions=["object.read"]))
    key = f"ro-{uuid.uuid4().hex}"
    results = send(
        auth_server,
        [(op("get", key), b""), (op("insert", key), b"x"), (op("delete", key), b"")],
        token,
    )
    assert results[0][0]["x-sn-batch-operation-status"] == "404 Not Found"
    assert results[1][0]["x-sn-batch-operation-status"] == "403 Forbidden"
    assert results[2][0]["x-sn-batch-operation-status"] == "403 Forbidden"
    r = call(
        auth_server.url,
        "POST",
        BATCH,
        build([]),
        {"Content-Type": "multipart/form-data; boundary=b0undary"},
    )
    assert r.status == 400


def test_usecase_policy_per_operation() -> None:
    policy = UsecasePolicy(manual=ExpirationRule(allowed=False))
    with LocalServer(usecases={"test": policy}) as server:
        results = send(
            server,
            [
                (op("insert", "manual"), b"x"),
                (op("insert", "ttl", ("x-sn-expiration", "ttl:1h")), b"y"),
            ],
        )
        assert results[0][0]["x-sn-batch-operation-status"] == "400 Bad Request"
        assert "not allowed" in json.loads(results[0][1])["detail"]
        assert results[1][0]["x-sn-batch-operation-status"] == "201 Created"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"--b0undary\r\nx-sn-batch-operation-kind: get\r\n", "body ends inside part headers"),
        (b"--b0undary\r\n\r\nno closing boundary", "without the closing boundary"),
        (b"--b0undary\r\nno colon here\r\n\r\n\r\n--b0undary--", "malformed part header"),
        (b"--b0undary\r\n" + b"x: " + b"y" * 70_000 + b"\r\n\r\n", "part headers longer"),
    ],
)
def test_body_broken_midway_ends_with_an_error_part(
    memory_server: LocalServer, body: bytes, detail: str
) -> None:
    key = f"first-{uuid.uuid4().hex}"
    first = build([(op("insert", key), b"kept")]).removesuffix(b"--b0undary--\r\n")
    ctype = {"Content-Type": "multipart/form-data; boundary=b0undary"}
    r = call(memory_server.url, "POST", BATCH, first + body, ctype)
    assert r.status == 200
    boundary = (r.header("content-type") or "").split('boundary="')[1].rstrip('"')
    results = split_parts(r.body, boundary)
    assert [dict(h)["x-sn-batch-operation-status"] for h, _ in results] == [
        "201 Created",
        "400 Bad Request",
    ]
    assert dict(results[1][0])["x-sn-batch-operation-index"] == "1"
    assert detail in json.loads(results[1][1])["detail"]
    assert call(memory_server.url, "GET", f"{OBJ}/{key}").body == b"kept"


def test_body_without_boundary_is_400(memory_server: LocalServer) -> None:
    ctype = {"Content-Type": "multipart/form-data; boundary=b0undary"}
    r = call(memory_server.url, "POST", BATCH, b"no parts at all", ctype)
    assert r.status == 400
    assert "no multipart boundary" in r.json()["detail"]


def test_batch_expiration_overflow_is_per_operation(memory_server: LocalServer) -> None:
    results = send(
        memory_server,
        [
            (op("insert", "ok-before"), b"a"),
            *[
                (op("insert", f"bad-{n}", ("x-sn-expiration", value)), b"x")
                for n, value in enumerate(["ttl:1e30s", "tti:999999999y", "ttl:9999999d"])
            ],
            (op("insert", "ok-after", ("x-sn-expiration", "ttl:1h")), b"b"),
        ],
    )
    statuses = [results[i][0]["x-sn-batch-operation-status"] for i in range(5)]
    assert statuses == ["201 Created", *["400 Bad Request"] * 3, "201 Created"]
    for index in (1, 2, 3):
        assert "invalid expiration policy value" in json.loads(results[index][1])["detail"]
    assert call(memory_server.url, "GET", f"{OBJ}/ok-after").body == b"b"


def test_dot_segment_keys_accepted(memory_server: LocalServer) -> None:
    results = send(
        memory_server,
        [
            (op("insert", "a%2F..%2Fb"), b"dots"),
            (op("get", "a%2F..%2Fb"), b""),
            (op("get", ""), b""),
        ],
    )
    assert results[0][0]["x-sn-batch-operation-status"] == "201 Created"
    assert results[1][1] == b"dots"
    assert results[2][0]["x-sn-batch-operation-status"] == "400 Bad Request"
    assert call(memory_server.url, "GET", f"{OBJ}/a/../b").body == b"dots"
