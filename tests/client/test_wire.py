"""What goes on the wire, captured by a raw socket server (the real server
does not echo request headers)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta

import pytest

from django_objectstore.client import (
    Client,
    ObjectstoreConnectionError,
    SecretKey,
    TimeToLive,
    Usecase,
)

from .conftest import PRIVATE_PEM
from .rawserver import RawServer, read_head


class Capture(RawServer):
    """Records each request's head and answers 200 with a JSON key."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.delay = delay
        self.requests: list[tuple[str, dict[str, str], bytes]] = []

    def serve(self, conn: socket.socket) -> None:
        self.stopping.wait(self.delay)  # a busy server, not reading yet
        data = read_head(conn)
        if data is None:
            return
        head, _, first = data.partition(b"\r\n\r\n")
        body = bytearray(first)
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding") == "chunked":
            while not body.endswith(b"0\r\n\r\n"):
                body += conn.recv(65536)
        elif "content-length" in headers:
            while len(body) < int(headers["content-length"]):
                body += conn.recv(65536)
        self.requests.append((lines[0], headers, bytes(body)))
        reply = b'{"key":"k"}'
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(reply)}\r\nConnection: close\r\n\r\n".encode()
            + reply
        )


@pytest.fixture
def capture() -> Iterator[Capture]:
    with Capture() as server:
        yield server


def test_request_line_and_headers(capture: Capture) -> None:
    key = SecretKey("test_kid", PRIVATE_PEM)
    with Client(capture.url + "/prefix", token=key) as client:
        session = client.session(
            Usecase("test", expiration_policy=TimeToLive(timedelta(days=1, hours=2))),
            org=42,
            project=7,
        )
        session.put(
            b"hello",
            key="dir/with space%?",
            metadata={"build_id": "naïve"},
            origin="1.2.3.4",
            filename="résumé.pdf",
            content_type="text/plain",
        )
        session.put(iter([b"streamed"]), compress="none")
    (line, headers, body), (line2, headers2, body2) = capture.requests
    assert line == "PUT /prefix/v1/objects/test/org=42;project=7/dir/with%20space%25%3F HTTP/1.1"
    assert headers["x-os-auth"].startswith("Bearer ey")
    assert headers["content-encoding"] == "zstd"
    assert headers["content-type"] == "text/plain"
    assert headers["x-sn-expiration"] == "ttl:1d 2h"
    assert headers["x-sn-origin"] == "1.2.3.4"
    assert headers["x-sn-filename"] == "r%C3%A9sum%C3%A9.pdf"
    assert headers["x-snme-build_id"] == "na%C3%AFve"
    assert headers["user-agent"].startswith("django-objectstore/")
    assert body[:4] == b"\x28\xb5\x2f\xfd"
    assert line2 == "POST /prefix/v1/objects/test/org=42;project=7/ HTTP/1.1"
    assert headers2["transfer-encoding"] == "chunked"
    assert "content-encoding" not in headers2
    assert b"streamed" in body2


def test_trace_headers_when_asked(capture: Capture) -> None:
    # sentry-sdk is installed in the test environment (the official client needs it).
    with Client(capture.url, propagate_traces=True) as client:
        client.session(Usecase("test")).put(b"x", key="k")
    with Client(capture.url) as client:
        client.session(Usecase("test")).put(b"x", key="k")
    (_, traced, _), (_, plain, _) = capture.requests
    assert "sentry-trace" in traced
    assert "sentry-trace" not in plain
    assert "x-os-auth" not in plain


def test_large_bodies_are_not_bound_by_the_connect_timeout() -> None:
    """urllib3 sends with the connect timeout (100 ms) on the socket; a server
    that starts reading later than that must not abort the upload."""
    with Capture(delay=0.4) as slow:
        with Client(slow.url, retries=0) as client:
            session = client.session(Usecase("test"))
            assert session.put(bytes(16 * 1024 * 1024), key="k", compress="none") == "k"
            assert session.put(iter([bytes(8 * 1024 * 1024)]), key="k", compress="none") == "k"
        (_, first, body), (_, second, streamed) = slow.requests
        assert int(first["content-length"]) == len(body) == 16 * 1024 * 1024
        assert second["transfer-encoding"] == "chunked"
        assert len(streamed) > 8 * 1024 * 1024


def test_read_timeout_is_honoured() -> None:
    with (
        Capture(delay=1.0) as silent,  # answers only after a second
        Client(silent.url, timeout_ms=150, retries=0, spool_dir="/nonexistent") as client,
    ):
        session = client.session(Usecase("test"))
        with pytest.raises(ObjectstoreConnectionError, match="Read timed out"):
            session.head("k")
