"""Conformance: basic object operations, metadata and Range (protocol
section 19, items 1-51), against both storage backends."""

from __future__ import annotations

import re
import socket
import uuid
from datetime import datetime
from pathlib import Path

import pytest
import zstandard

from django_objectstore._protocol import encode_path
from django_objectstore.server import LocalServer
from tests.server.helpers import call

BASE = "/v1/objects/test/org=1"
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def unique(prefix: str = "k") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.mark.parametrize("path", [f"{BASE}/", BASE])
def test_post_generates_uuid4_key(any_server: LocalServer, path: str) -> None:
    r = call(any_server.url, "POST", path, b"hello")
    assert r.status == 201
    assert r.header("content-type") == "application/json"
    key = r.json()["key"]
    assert UUID4.match(key)
    assert call(any_server.url, "GET", f"{BASE}/{key}").body == b"hello"


def test_put_get_head_delete_cycle(any_server: LocalServer) -> None:
    key = unique()
    url = any_server.url
    r = call(url, "PUT", f"{BASE}/{key}", b"a")
    assert (r.status, r.json()) == (200, {"key": key})
    first = call(url, "GET", f"{BASE}/{key}").header("x-sn-time-created")
    r = call(url, "PUT", f"{BASE}/{key}", b"b")
    assert r.status == 200

    r = call(url, "GET", f"{BASE}/{key}")
    assert r.status == 200
    assert r.body == b"b"
    assert r.header("content-type") == "application/octet-stream"
    assert r.header("accept-ranges") == "bytes"
    assert r.header("content-range") is None
    assert r.header("x-sn-size") == "1"
    created = r.header("x-sn-time-created")
    assert created is not None
    assert TS.match(created)
    assert first is not None
    assert created > first
    assert r.header("server") == "objectstore/0.1.0"

    # HEAD: 200 and the headers of a GET, Content-Length included, no body (the
    # current upstream server; the official 0.2.10 end-to-end tests expect 200)
    h = call(url, "HEAD", f"{BASE}/{key}")
    assert h.status == 200
    assert h.body == b""
    for name in ("content-type", "x-sn-time-created", "accept-ranges", "x-sn-size"):
        assert h.header(name) == r.header(name)
    assert h.header("content-length") == r.header("x-sn-size")

    d = call(url, "DELETE", f"{BASE}/{key}")
    assert (d.status, d.body) == (204, b"")
    g = call(url, "GET", f"{BASE}/{key}")
    assert (g.status, g.body) == (404, b"")
    assert g.header("x-sn-time-created") is None
    assert call(url, "HEAD", f"{BASE}/{key}").status == 404


def test_delete_missing_is_204(any_server: LocalServer) -> None:
    assert call(any_server.url, "DELETE", f"{BASE}/{unique('never')}").status == 204


def test_structured_keys(any_server: LocalServer) -> None:
    url = any_server.url
    prefix = unique("dir")
    r = call(url, "PUT", f"{BASE}/{prefix}/1/shard-0.json", b"shard")
    assert r.json() == {"key": f"{prefix}/1/shard-0.json"}
    assert call(url, "GET", f"{BASE}/{prefix}/1/shard-0.json").body == b"shard"
    call(url, "PUT", f"{BASE}/{prefix}/path/to/object", b"one")
    call(url, "PUT", f"{BASE}/{prefix}/path/to/object/", b"two")
    assert call(url, "GET", f"{BASE}/{prefix}/path/to/object").body == b"one"
    assert call(url, "GET", f"{BASE}/{prefix}/path/to/object/").body == b"two"


def test_scopes_are_ordered_identities(any_server: LocalServer) -> None:
    url = any_server.url
    key = unique()
    assert call(url, "PUT", f"/v1/objects/test/org=42;project=1337/{key}", b"x").status == 200
    assert call(url, "GET", f"/v1/objects/test/org=42;project=1337/{key}").status == 200
    assert call(url, "GET", f"/v1/objects/test/org=42;project=9999/{key}").status == 404
    assert call(url, "GET", f"/v1/objects/test/project=1337;org=42/{key}").status == 404
    assert call(url, "PUT", f"/v1/objects/test/_/{key}", b"e").status == 200
    assert call(url, "GET", f"/v1/objects/test/_/{key}").body == b"e"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", f"{BASE}/", "POST"),
        ("PUT", f"{BASE}/", "POST"),
        ("DELETE", BASE, "POST"),
        ("POST", f"{BASE}/k", "GET,HEAD,PUT,DELETE,PATCH"),
    ],
)
def test_method_not_allowed(memory_server: LocalServer, method: str, path: str, allow: str) -> None:
    r = call(memory_server.url, method, path)
    assert r.status == 405
    assert r.body == b""
    assert r.header("allow") == allow
    assert r.header("server") == "objectstore/0.1.0"


@pytest.mark.parametrize(
    "path", ["/nope", "/v1/objects", "/v1/objects/test", "/v1/other/test/org=1/k", "/v2/x"]
)
def test_unknown_path_404(memory_server: LocalServer, path: str) -> None:
    r = call(memory_server.url, "GET", path)
    assert (r.status, r.body) == (404, b"")
    assert r.header("server") == "objectstore/0.1.0"


@pytest.mark.parametrize(
    ("scopes", "message"),
    [
        ("invalid-no-equals", "scope must be 'key=value'"),
        ("org=hello%20world", "invalid character ' '"),
        ("=value", "key and value must be non-empty"),
        ("key=", "key and value must be non-empty"),
        ("org=1.5", "invalid character '.'"),
        ("", "scope must be 'key=value'"),
        ("org=1;", "scope must be 'key=value'"),
        ("org=%C3%A9", "invalid character"),
    ],
)
def test_malformed_scopes(memory_server: LocalServer, scopes: str, message: str) -> None:
    r = call(memory_server.url, "GET", f"/v1/objects/test/{scopes}/k")
    assert r.status == 400
    assert r.body.decode().startswith("Invalid URL: ")
    assert message in r.body.decode()


def test_empty_usecase_rejected(memory_server: LocalServer) -> None:
    r = call(memory_server.url, "PUT", "/v1/objects//org=1/k", b"x")
    assert r.status == 400
    assert r.body.startswith(b"Invalid URL: ")


@pytest.mark.parametrize(
    ("usecase", "key", "decoded"),
    [
        ("te.st", "k", "k"),
        ("a%2Fb", "k", "k"),
        ("Use~Case", "k", "k"),
        ("test", "a/../b", "a/../b"),
        ("test", "./b", "./b"),
        ("test", "a/%2E%2E/b", "a/../b"),
        ("test", "..", ".."),
    ],
)
def test_names_upstream_accepts(
    any_server: LocalServer, usecase: str, key: str, decoded: str
) -> None:
    """Upstream validates neither usecases nor keys (section 3); storage
    paths are digests here, so dot segments cannot escape the root."""
    path = f"/v1/objects/{usecase}/org=1/{key}"
    payload = f"{usecase}/{key}".encode()
    r = call(any_server.url, "PUT", path, payload)
    assert (r.status, r.json()) == (200, {"key": decoded})
    assert call(any_server.url, "GET", path).body == payload
    assert call(any_server.url, "DELETE", path).status == 204


def test_invalid_utf8_key(memory_server: LocalServer) -> None:
    r = call(memory_server.url, "PUT", f"{BASE}/bad%FF", b"x")
    assert r.status == 400
    assert r.body == b"Invalid UTF-8 in `key`"


def test_percent_encoded_keys(any_server: LocalServer) -> None:
    url = any_server.url
    suffix = unique("")
    r = call(url, "PUT", f"{BASE}/looks%2520encoded{suffix}", b"enc")
    assert r.json() == {"key": f"looks%20encoded{suffix}"}
    assert call(url, "GET", f"{BASE}/looks%2520encoded{suffix}").body == b"enc"
    assert call(url, "GET", f"{BASE}/looks%20encoded{suffix}").status == 404
    call(url, "PUT", f"{BASE}/a%2Fb{suffix}", b"slash")
    assert call(url, "GET", f"{BASE}/a/b{suffix}").body == b"slash"


SPECIAL_KEYS = [
    "with space",
    "café-unicode",
    "emoji-😀",
    "plus+sign",
    "sub!$'()*+,=delims",
    "tilde~dot.key",
    "100%literal-percent",
    "quote'apostrophe",
    "at@sign",
    "colon:separated",
    "ampersand&inside",
    "semi;colon",
    "equals=sign",
    "q?mark",
    "hash#x",
    "nested/path/segments",
]


@pytest.mark.parametrize("key", SPECIAL_KEYS)
def test_special_keys_round_trip(any_server: LocalServer, key: str) -> None:
    path = encode_path(f"{BASE}/{key}")
    payload = key.encode()
    r = call(any_server.url, "PUT", path, payload)
    assert r.json() == {"key": key}
    assert call(any_server.url, "GET", path).body == payload


def test_empty_body(any_server: LocalServer) -> None:
    key = unique()
    assert call(any_server.url, "PUT", f"{BASE}/{key}", b"").status == 200
    r = call(any_server.url, "GET", f"{BASE}/{key}")
    assert (r.status, r.body) == (200, b"")
    assert r.header("x-sn-size") == "0"


def test_chunked_upload(any_server: LocalServer) -> None:
    key = unique()
    r = call(any_server.url, "PUT", f"{BASE}/{key}", b"chunky", chunked=True)
    assert r.status == 200
    assert call(any_server.url, "GET", f"{BASE}/{key}").body == b"chunky"


# -- metadata ------------------------------------------------------------------


def put_get(server: LocalServer, headers: dict[str, str], body: bytes = b"x") -> tuple[int, object]:
    key = unique()
    r = call(server.url, "PUT", f"{BASE}/{key}", body, headers)
    if r.status != 200:
        return r.status, r
    return 200, call(server.url, "GET", f"{BASE}/{key}")


def test_content_type_round_trip(any_server: LocalServer) -> None:
    _, r = put_get(any_server, {"Content-Type": "text/plain; charset=utf-8"})
    assert r.header("content-type") == "text/plain; charset=utf-8"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Content-Type", "not a valid media type!"),
        ("Content-Type", "text"),
        ("Content-Encoding", "gzip"),
        ("Content-Encoding", "brotli"),
        ("Content-Encoding", "identity"),
        ("Content-Encoding", "ZSTD"),
        ("Content-Encoding", "zstd, gzip"),
        ("Content-Encoding", ""),
        ("x-sn-expiration", "garbage"),
        ("x-sn-expiration", "ttl:"),
        ("x-sn-expiration", "TTL:1h"),
        ("x-sn-expiration", "ttl:5 fortnights"),
        ("x-sn-filename", "caf\xe9.txt"),
        ("x-sn-origin", "\xff"),
        ("x-snme-note", "n\xe4"),
    ],
)
def test_bad_metadata_headers(memory_server: LocalServer, name: str, value: str) -> None:
    r = call(memory_server.url, "PUT", f"{BASE}/{unique()}", b"x", {name: value})
    assert r.status == 400
    assert r.header("content-type") == "application/json"
    assert r.json()["detail"].startswith("service error: metadata error")


def test_zstd_stored_as_is(any_server: LocalServer) -> None:
    data = zstandard.ZstdCompressor().compress(b"hello zstd " * 10)
    _, r = put_get(any_server, {"Content-Encoding": "zstd"}, data)
    assert r.body == data  # type: ignore[attr-defined]
    assert r.header("content-encoding") == "zstd"  # type: ignore[attr-defined]
    key = unique()
    call(any_server.url, "PUT", f"{BASE}/{key}", data, {"Content-Encoding": "zstd"})
    g = call(any_server.url, "GET", f"{BASE}/{key}", headers={"Accept-Encoding": "identity"})
    assert (g.status, g.body, g.header("content-encoding")) == (200, data, "zstd")


@pytest.mark.parametrize(
    ("sent", "echoed", "seconds"),
    [
        ("ttl:30s", "ttl:30s", 30),
        ("ttl:30 days", "ttl:30d", 30 * 86400),
        ("ttl:1 days 3600 seconds", "ttl:1d 1h", 90000),
        ("ttl:90d", "ttl:90d", 90 * 86400),
        ("ttl:2months 29days 2h 52m 48s", "ttl:90d", 90 * 86400),
        ("tti:1h", "tti:1h", 3600),
        ("tti:1m 30s", "tti:1m 30s", 90),
    ],
)
def test_expiration_echo_compact(
    any_server: LocalServer, sent: str, echoed: str, seconds: int
) -> None:
    _, r = put_get(any_server, {"x-sn-expiration": sent})
    assert r.header("x-sn-expiration") == echoed  # type: ignore[attr-defined]
    created = datetime.fromisoformat(r.header("x-sn-time-created"))  # type: ignore[attr-defined]
    expires = datetime.fromisoformat(r.header("x-sn-time-expires"))  # type: ignore[attr-defined]
    assert TS.match(r.header("x-sn-time-expires"))  # type: ignore[attr-defined]
    assert (expires - created).total_seconds() == seconds


@pytest.mark.parametrize("headers", [{"x-sn-expiration": "manual"}, {}])
def test_manual_expiration_not_emitted(any_server: LocalServer, headers: dict[str, str]) -> None:
    _, r = put_get(any_server, headers)
    assert r.header("x-sn-expiration") is None  # type: ignore[attr-defined]
    assert r.header("x-sn-time-expires") is None  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", ["2024-01-15T12:00:00.000000Z", "not-a-timestamp"])
def test_client_time_headers_ignored(memory_server: LocalServer, value: str) -> None:
    status, r = put_get(memory_server, {"x-sn-time-created": value, "x-sn-time-expires": value})
    assert status == 200
    assert r.header("x-sn-time-created") != value  # type: ignore[attr-defined]
    assert r.header("x-sn-time-created").startswith("20")  # type: ignore[attr-defined]
    assert r.header("x-sn-time-expires") is None  # type: ignore[attr-defined]


def test_origin_custom_filename(any_server: LocalServer) -> None:
    key = unique()
    headers = [
        ("x-sn-origin", "203.0.113.42"),
        ("x-snme-MyKey", "v0"),
        ("x-snme-MyKey", "v1"),
        ("x-snme-build_id", "42"),
        ("x-sn-filename", "report.pdf"),
        ("x-snme-encoded", "caf%C3%A9"),
    ]
    call(any_server.url, "PUT", f"{BASE}/{key}", b"x", headers)
    for method in ("GET", "HEAD"):
        r = call(any_server.url, method, f"{BASE}/{key}")
        assert r.header("x-sn-origin") == "203.0.113.42"
        assert r.header("x-snme-mykey") == "v1"
        assert r.headers.get_all("x-snme-mykey") == ["v1"]
        assert r.header("x-snme-build_id") == "42"
        assert r.header("x-snme-encoded") == "caf%C3%A9"
        assert r.header("x-sn-filename") == "report.pdf"
        assert r.header("content-disposition") == 'attachment; filename="report.pdf"'


@pytest.mark.parametrize(
    ("filename", "disposition"),
    [
        ('has"quote.txt', 'attachment; filename="has\\"quote.txt"'),
        ("path/to/file.txt", 'attachment; filename="path-to-file.txt"'),
        ("a\\b", 'attachment; filename="a-b"'),
        (".", 'attachment; filename="-"'),
        ("..", 'attachment; filename="--"'),
        ("", 'attachment; filename=""'),
    ],
)
def test_content_disposition(memory_server: LocalServer, filename: str, disposition: str) -> None:
    _, r = put_get(memory_server, {"x-sn-filename": filename})
    assert r.header("content-disposition") == disposition  # type: ignore[attr-defined]
    assert r.header("x-sn-filename") == filename  # type: ignore[attr-defined]


def test_no_disposition_without_filename(memory_server: LocalServer) -> None:
    _, r = put_get(memory_server, {})
    assert r.header("content-disposition") is None  # type: ignore[attr-defined]


# -- Range ---------------------------------------------------------------------

RANGE_BODY = b"Hello, Range Requests!"


@pytest.fixture(scope="module")
def range_keys(memory_server: LocalServer, fs_server: LocalServer) -> dict[str, str]:
    keys = {}
    for server in (memory_server, fs_server):
        key = unique("range")
        call(server.url, "PUT", f"{BASE}/{key}", RANGE_BODY, {"x-sn-filename": "r.txt"})
        call(server.url, "PUT", f"{BASE}/{key}-empty", b"")
        keys[server.url] = key
    return keys


@pytest.mark.parametrize(
    ("spec", "content_range", "body"),
    [
        ("bytes=0-4", "bytes 0-4/22", b"Hello"),
        ("bytes=-9", "bytes 13-21/22", b"Requests!"),
        ("bytes=7-", "bytes 7-21/22", RANGE_BODY[7:]),
        ("bytes=0-9999", "bytes 0-21/22", RANGE_BODY),
        ("Bytes=0-4", "bytes 0-4/22", b"Hello"),
        ("bytes=-100", "bytes 0-21/22", RANGE_BODY),
        ("bytes=21-21", "bytes 21-21/22", b"!"),
    ],
)
def test_range_satisfiable(
    any_server: LocalServer, range_keys: dict[str, str], spec: str, content_range: str, body: bytes
) -> None:
    r = call(any_server.url, "GET", f"{BASE}/{range_keys[any_server.url]}", headers={"Range": spec})
    assert r.status == 206
    assert r.header("content-range") == content_range
    assert r.header("content-length") == str(len(body))
    assert r.header("accept-ranges") == "bytes"
    assert r.header("content-disposition") == 'attachment; filename="r.txt"'
    assert r.body == body


@pytest.mark.parametrize("spec", ["items=0-10", "bytes=abc-def", "bytes=5-2", "bytes=-0", "bytes="])
def test_range_invalid(memory_server: LocalServer, range_keys: dict[str, str], spec: str) -> None:
    key = range_keys[memory_server.url]
    r = call(memory_server.url, "GET", f"{BASE}/{key}", headers={"Range": spec})
    assert r.status == 400
    assert r.json()["detail"].startswith("client error: invalid Range header")


def test_range_multi_is_ignored(memory_server: LocalServer, range_keys: dict[str, str]) -> None:
    key = range_keys[memory_server.url]
    r = call(memory_server.url, "GET", f"{BASE}/{key}", headers={"Range": "bytes=0-4, 10-14"})
    assert (r.status, r.body) == (200, RANGE_BODY)


def test_range_unsatisfiable(any_server: LocalServer, range_keys: dict[str, str]) -> None:
    key = range_keys[any_server.url]
    r = call(any_server.url, "GET", f"{BASE}/{key}", headers={"Range": "bytes=100-200"})
    assert (r.status, r.body) == (416, b"")
    assert r.header("content-range") == "bytes */22"
    assert r.header("accept-ranges") == "bytes"
    r = call(any_server.url, "GET", f"{BASE}/{key}-empty", headers={"Range": "bytes=0-"})
    assert (r.status, r.header("content-range")) == (416, "bytes */0")


def test_range_missing_and_head(memory_server: LocalServer, range_keys: dict[str, str]) -> None:
    r = call(memory_server.url, "GET", f"{BASE}/{unique()}", headers={"Range": "bytes=0-4"})
    assert r.status == 404
    key = range_keys[memory_server.url]
    h = call(memory_server.url, "HEAD", f"{BASE}/{key}", headers={"Range": "bytes=0-4"})
    assert h.status == 200
    assert h.header("content-range") is None


def test_health_ready_keda(memory_server: LocalServer) -> None:
    r = call(memory_server.url, "GET", "/health")
    assert (r.status, r.body) == (200, b"OK")
    assert call(memory_server.url, "GET", "/ready").body == b"OK"
    assert call(memory_server.url, "HEAD", "/health").status == 200
    k = call(memory_server.url, "GET", "/keda")
    assert k.header("content-type") == "text/plain; version=0.0.4; charset=utf-8"
    assert b"objectstore_bytes_total " in k.body
    assert b"objectstore_requests_total " in k.body


def test_ready_marker_and_http10(tmp_path: Path) -> None:
    marker = tmp_path / "objectstore.down"
    with LocalServer(shutdown_marker=marker) as server:
        assert call(server.url, "GET", "/ready").status == 200
        marker.touch()
        r = call(server.url, "GET", "/ready")
        assert (r.status, r.body) == (503, b"Shutting down")
        assert call(server.url, "GET", "/health").status == 200
        marker.unlink()
        assert call(server.url, "GET", "/ready").status == 200
        call(server.url, "PUT", f"{BASE}/old", b"http/1.0 body")
        host, port = server.address
        with socket.create_connection((host, port)) as sock:
            sock.sendall(f"GET {BASE}/old HTTP/1.0\r\n\r\n".encode())
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
        assert b"content-length: 13\r\n" in data
        assert data.endswith(b"\r\n\r\nhttp/1.0 body")
