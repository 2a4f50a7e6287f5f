"""Request lines and header blocks as the server reads them (the parsing is
uvicorn's httptools parser): answers for valid requests, strict on bad ones."""

from __future__ import annotations

import uuid

import pytest

from django_objectstore.server import LocalServer
from django_objectstore.server.headers import RequestHeaders
from tests.server.helpers import call
from tests.server.test_robustness import OBJ, connect, read_all


def test_fields_keep_order_and_match_any_case() -> None:
    headers = RequestHeaders(
        [("Host", "x"), ("X-Snme-A", "one"), ("x-snme-a", "two"), ("Content-Type", "text/plain")]
    )
    assert headers.get("HOST") == "x"
    assert headers.get("x-SNME-a") == "one"  # the first, like email.message.Message
    assert headers.get_all("X-Snme-A") == ["one", "two"]
    assert headers.get_all("missing") is None
    assert headers.get("missing", "default") == "default"
    assert headers.get("content-type") == "text/plain"
    assert headers.items() == [
        ("Host", "x"),
        ("X-Snme-A", "one"),
        ("x-snme-a", "two"),
        ("Content-Type", "text/plain"),
    ]
    assert "content-TYPE" in headers
    assert "nope" not in headers
    assert list(headers) == ["Host", "X-Snme-A", "x-snme-a", "Content-Type"]
    assert len(headers) == 4


def exchange(server: LocalServer, raw: bytes) -> bytes:
    with connect(server) as sock:
        sock.sendall(raw)
        return read_all(sock)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /health HTTP/1.1\r\nA: 1\r\n folded\r\n\r\n", b"400"),
        (b"GET /health HTTP/2.0\r\n\r\n", b"505"),
        (b"GET /health HTTP/1.x\r\n\r\n", b"400"),
        (b"GET /health\r\n\r\n", b"400"),  # HTTP/0.9
        (b"GET /health HTTP/1.1 extra\r\n\r\n", b"400"),
        (b"GET /health HTTP/1.1\r\n" + b"A: 1\r\n" * 101 + b"\r\n", b"431"),
    ],
    ids=["folded", "http2", "bad-version", "http09", "four-words", "too-many"],
)
def test_bad_requests_are_answered_and_closed(
    memory_server: LocalServer, raw: bytes, status: bytes
) -> None:
    response = exchange(memory_server, raw)  # read to EOF: the server closed
    assert response.startswith(b"HTTP/1.1 " + status)
    assert call(memory_server.url, "GET", "/health").status == 200


def test_keep_alive_rules(memory_server: LocalServer) -> None:
    # HTTP/1.0 closes after one answer (uvicorn keeps no 1.0 connection
    # alive, even when asked); 1.1 keeps it unless asked to close.
    one_zero = exchange(
        memory_server,
        b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /health HTTP/1.1\r\n\r\n",
    )
    assert one_zero.count(b"HTTP/1.1 200") == 1
    pipelined = exchange(
        memory_server,
        b"GET /health HTTP/1.1\r\n\r\n"
        b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n"
        b"GET /health HTTP/1.1\r\n\r\n",  # after close: never answered
    )
    assert pipelined.count(b"HTTP/1.1 200") == 2


def test_metadata_headers_round_trip_in_any_case(memory_server: LocalServer) -> None:
    key = f"hdr-{uuid.uuid4().hex}"
    response = exchange(
        memory_server,
        f"PUT {OBJ}/{key} HTTP/1.1\r\nHost: x\r\nCONTENT-TYPE: text/csv\r\n"
        "X-SNME-Colour:   blue  \r\nx-snme-size: 3\r\nContent-Length: 2\r\n"
        "Connection: close\r\n\r\nok".encode(),
    )
    assert response.startswith(b"HTTP/1.1 200")
    got = call(memory_server.url, "GET", f"{OBJ}/{key}")
    assert got.body == b"ok"
    assert got.header("content-type") == "text/csv"
    assert got.header("x-snme-colour") == "blue"
    assert got.header("x-snme-size") == "3"
