"""HTTP framing safety on raw loopback sockets: request-smuggling shapes are
refused (400, connection closed) and the request hidden behind their body is
never answered; bounded heads (414, 431, 505 with reason phrases); silent
connections are closed after the header timeout without stopping service."""

from __future__ import annotations

import socket
import time

import pytest

from django_objectstore.server import LocalServer
from tests.server.helpers import call

PUT = b"PUT /v1/objects/test/org=1/smuggle HTTP/1.1\r\nHost: x\r\n"
HIDDEN = b"GET /v1/objects/test/org=1/hidden HTTP/1.1\r\nHost: x\r\n\r\n"


def exchange(server: LocalServer, raw: bytes, timeout: float = 5.0) -> bytes:
    """Send ``raw``, read until the server closes (a timeout fails the test)."""
    with socket.create_connection(server.address, timeout=timeout) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data


def status_lines(response: bytes) -> list[bytes]:
    return [line for line in response.split(b"\r\n") if line.startswith(b"HTTP/1.")]


SMUGGLING = {
    "chunked-and-length": b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
    "gzip": b"Transfer-Encoding: gzip\r\n\r\n",
    "gzip-with-length": b"Transfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc",
    "identity": b"Transfer-Encoding: identity\r\n\r\n",
    "identity-with-length": b"Transfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc",
    "two-lengths": b"Content-Length: 3\r\nContent-Length: 59\r\n\r\nabc",
    "xchunkedx": b"Transfer-Encoding: xchunkedx\r\n\r\n0\r\n\r\n",
    "split-gzip-chunked": b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "split-chunked-identity": (
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n"
    ),
}


@pytest.mark.parametrize("shape", SMUGGLING.values(), ids=SMUGGLING.keys())
def test_smuggling_shapes_are_refused(memory_server: LocalServer, shape: bytes) -> None:
    # Keep-alive connection: a lenient parser would answer the hidden GET too.
    response = exchange(memory_server, PUT + shape + HIDDEN)
    assert status_lines(response) == [b"HTTP/1.1 400 Bad Request"], response[:300]
    assert b"connection: close" in response.lower()
    assert b"/hidden" not in response
    assert call(memory_server.url, "GET", "/v1/objects/test/org=1/smuggle").status == 404


def test_non_ascii_content_length_is_answered_400(memory_server: LocalServer) -> None:
    response = exchange(memory_server, PUT + "Content-Length: ²\r\n\r\n".encode() + HIDDEN)
    assert status_lines(response) == [b"HTTP/1.1 400 Bad Request"]


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", b"414 URI Too Long"),
        (b"GET /health HTTP/1.1\r\n" + b"A: 1\r\n" * 101 + b"\r\n", b"431 Request Header"),
        (b"GET /health HTTP/1.1\r\nA: " + b"x" * 70_000 + b"\r\n\r\n", b"431 Request Header"),
        (b"GET /health HTTP/2.0\r\n\r\n", b"505 HTTP Version Not Supported"),
    ],
    ids=["long-target", "many-fields", "big-field", "http2"],
)
def test_refusals_have_reason_phrases(
    memory_server: LocalServer, raw: bytes, status: bytes
) -> None:
    response = exchange(memory_server, raw)
    assert response.startswith(b"HTTP/1.1 " + status), response[:100]
    assert b"Unknown" not in response.split(b"\r\n", 1)[0]


def test_silent_connections_are_closed_and_others_served() -> None:
    with LocalServer(header_timeout=1.0) as server:
        silent = [socket.create_connection(server.address, timeout=10) for _ in range(300)]
        try:
            trickling = socket.create_connection(server.address, timeout=10)
            trickling.sendall(b"GET /health HTTP/1.1\r\nHo")  # a head never finished
            silent.append(trickling)
            started = time.monotonic()
            # The server still answers others while 301 sockets hold nothing.
            assert call(server.url, "GET", "/health").status == 200
            for sock in silent:
                assert sock.recv(1) == b""  # closed by the server, not by us
            elapsed = time.monotonic() - started
            assert elapsed < 8, f"closing idle connections took {elapsed:.1f}s"
            assert call(server.url, "GET", "/health").status == 200
        finally:
            for sock in silent:
                sock.close()


def test_idle_keep_alive_connection_is_closed() -> None:
    with (
        LocalServer(idle_timeout=0.5) as server,
        socket.create_connection(server.address, timeout=10) as sock,
    ):
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        assert sock.recv(1) == b""
        assert time.monotonic() - started < 5
