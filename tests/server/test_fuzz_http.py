"""Fuzzing a server process over loopback with hypothesis: arbitrary request
lines, headers, query strings and JSON bodies (with and without a valid
token) never get a 5xx or a hang, the server stays up and its memory flat."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.server.helpers import PUBLIC_PEM, call, cli_server, mint

MIB = 1024 * 1024
KEYS_ENV = (
    f'{{test_kid={{key_files=["{PUBLIC_PEM}"],'
    'max_permissions=["object.read","object.write","object.delete"]}}'
)
TOKEN = mint(exp_offset=3600)
#: 501 is the designed answer for protocols a mode leaves out (section 20).
DESIGNED_5XX = {501}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    root = tmp_path_factory.mktemp("fuzz")
    env = {
        "OS__AUTH__ENFORCE": "true",
        "OS__AUTH__KEYS": KEYS_ENV,
        "OS__STORAGE__PATH": str(root / "data"),
        "OS__STORAGE__FSYNC": "false",
        "OS__LOGGING__LEVEL": "ERROR",
    }
    with cli_server(root, env) as (proc, url):
        yield proc, url


def peak_rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    assert match is not None
    return int(match.group(1)) * 1024


def exchange(url: str, request: bytes) -> int:
    """Send raw bytes; the status of the answer (0 if the server closed the
    connection without one). A hang fails through the socket timeout."""
    host, _, port = url.removeprefix("http://").rpartition(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        # No half-close: the request carries its length and asks the server
        # to close after answering, which ends the read below.
        sock.sendall(request)
        head = b""
        while b"\r\n" not in head:
            data = sock.recv(65536)
            if not data:
                return 0
            head += data
        while sock.recv(65536):  # the rest of the answer, until the server closes
            pass
    match = re.match(rb"HTTP/1\.[01] (\d{3}) ", head)
    assert match is not None, head[:200]
    return int(match.group(1))


visible = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30)
latin = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40)
numbers = st.one_of(
    st.integers(min_value=-5, max_value=2**70).map(str),
    st.just("9" * 5000),
    st.sampled_from(["+1", "0x10", "²", "1e30", " 1", ""]),
)
segment = st.one_of(
    st.sampled_from(["test", "org=1", "_", "k", "a/./b", "..", "%2E%2E", "%FF", "a%2Fb", ""]),
    visible.map(lambda s: s.replace("?", "%3F").replace("#", "%23")),
)
prefix = st.sampled_from(
    [
        "/v1/objects/",
        "/v1/objects:batch/",
        "/v1/objects:multipart/",
        "/v1/objects:multipart:parts/",
        "/v1/objects:multipart:complete/",
        "/health",
        "/keda",
        "/",
        "*",
        "http://x/v1/objects/",
    ]
)
ROUTES = [
    "/v1/objects/",
    "/v1/objects:batch/",
    "/v1/objects:multipart/",
    "/v1/objects:multipart:parts/",
    "/v1/objects:multipart:complete/",
]
query_names = st.sampled_from(
    [
        "os_auth",
        "os%5Fauth",
        "os_sig",
        "os_kid",
        "os_timestamp",
        "os_duration",
        "upload_id",
        "part_number",
        "max_parts",
        "part_number_marker",
        "upload_type",
        "session",
        "x",
    ]
)
query = st.lists(st.tuples(query_names, st.one_of(numbers, visible)), max_size=4).map(
    lambda pairs: "&".join(f"{name}={value}" for name, value in pairs)
)
# Not the framing and connection headers: the fuzzer sets those itself so
# that the end of each answer is the server closing the connection.
header_names = st.sampled_from(
    [
        "range",
        "x-sn-expiration",
        "content-type",
        "content-encoding",
        "x-sn-filename",
        "x-snme-a",
        "x-os-auth",
        "authorization",
        "x-downstream-service",
        "expect",
        "upload-length",
        "upload-offset",
    ]
)
header_values = st.one_of(
    latin,
    numbers.map(lambda n: f"bytes={n}-"),
    st.sampled_from(
        ["ttl:1e30s", "tti:999999999y", "ttl:9999999d", "manual", f"Bearer {TOKEN}", "Bearer a.b.c"]
    ),
    st.sampled_from(["multipart/form-data; boundary=b", "application/json"]),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, latin),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(
                ["extend_expiry", "at", "after", "from", "parts", "part_number", "etag"]
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=12,
)
bodies = st.one_of(
    st.just(b""),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.integers(min_value=1, max_value=3000).map(lambda n: b"[" * n),
    st.binary(max_size=200),
    st.just(b"--b\r\nx-sn-batch-operation-kind: insert\r\n\r\nx\r\n--b--\r\n"),
)


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from(["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"]))
    if draw(st.integers(0, 3)):  # mostly a route that exists, with odd parts
        route = draw(st.sampled_from(ROUTES))
        usecase = draw(st.one_of(st.just("test"), segment))
        scopes = draw(st.one_of(st.just("org=1"), segment))
        key = draw(st.one_of(st.just("k"), segment, st.just("")))
        path = f"{route}{usecase}/{scopes}/{key}"
    else:
        path = draw(prefix) + "/".join(draw(st.lists(segment, max_size=4)))
    q = draw(query)
    target = f"{path}?{q}" if q else path
    lines = [f"{method} {target} {draw(st.sampled_from(['HTTP/1.1', 'HTTP/1.0']))}"]
    lines.append("Host: fuzz")
    if draw(st.booleans()):
        lines.append(f"x-os-auth: Bearer {TOKEN}")
    for name, value in draw(st.lists(st.tuples(header_names, header_values), max_size=5)):
        lines.append(f"{name}: {value.strip()}")
    body = draw(bodies)
    lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@pytest.mark.slow
def test_fuzzed_requests_never_5xx(server: tuple[Any, str]) -> None:
    proc, url = server
    assert call(url, "GET", "/health").status == 200
    headers = {"x-os-auth": f"Bearer {TOKEN}", "x-sn-expiration": "ttl:1d"}
    assert call(url, "PUT", "/v1/objects/test/org=1/k", b"fuzz target", headers).status == 200
    before = peak_rss(proc.pid)
    seen: dict[int, int] = {}

    @settings(
        max_examples=400,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(request=requests())
    def fuzz(request: bytes) -> None:
        status = exchange(url, request)
        seen[status] = seen.get(status, 0) + 1
        assert status < 500 or status in DESIGNED_5XX, request[:300]
        assert status != 0, request[:300]

    fuzz()
    assert call(url, "GET", "/health").status == 200  # alive
    assert proc.poll() is None
    growth = peak_rss(proc.pid) - before
    assert growth < 64 * MIB, f"peak RSS grew by {growth / MIB:.0f} MiB"
    assert len(seen) > 3, seen  # the requests reached more than one kind of answer
