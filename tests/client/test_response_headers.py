"""The client's response header reader (it replaces http.client's email-based
parser): what servers send reads as before, odd blocks are handled as the
standard library handles them."""

from __future__ import annotations

import http.client
import socket

import pytest
import urllib3

from django_objectstore.client import Client, Session, Usecase

from .rawserver import RawServer, read_head


class Canned(RawServer):
    """Answers every request on a connection with ``responses`` in turn
    (faults and header shapes the real server never produces)."""

    def __init__(self, *responses: bytes) -> None:
        super().__init__()
        self.responses = responses

    def serve(self, conn: socket.socket) -> None:
        for response in self.responses:
            if read_head(conn) is None:
                return
            conn.sendall(response)


def test_metadata_headers_from_the_real_server(session: Session) -> None:
    key = session.put(
        b"payload",
        content_type="text/plain; charset=utf-8",
        metadata={"colour": "blue", "note": "a;b=c d"},
        filename="r\u00e9sum\u00e9.txt",
    )
    got = session.get(key)
    assert got is not None
    with got.payload as stream:
        assert stream.read() == b"payload"
    meta = session.head(key)
    assert meta is not None
    for read in (got.metadata, meta):
        assert read.content_type == "text/plain; charset=utf-8"
        assert read.custom == {"colour": "blue", "note": "a;b=c d"}
        assert read.filename == "r\u00e9sum\u00e9.txt"
    assert session.get("missing") is None
    session.delete(key)


def test_headers_reach_the_caller_in_order_with_repeats() -> None:
    body = b'{"key":"k"}'
    response = (
        b"HTTP/1.1 201 Created\r\n"
        b"Content-Type:  application/json \r\n"
        b"X-Repeat: one\r\n"
        b"x-repeat: two\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    with Canned(response, response) as fake:
        pool = Client(fake.url)._pool
        assert issubclass(pool.ConnectionCls.response_class, http.client.HTTPResponse)
        assert pool.ConnectionCls.response_class is not http.client.HTTPResponse  # ours
        try:
            for _ in range(2):  # the same kept-alive connection, twice
                reply = pool.request("PUT", "/x", body=b"1")
                assert reply.status == 201
                assert reply.data == body
                assert reply.headers["content-type"] == "application/json"
                assert reply.headers.getlist("X-REPEAT") == ["one", "two"]
        finally:
            pool.close()


def test_continue_chunked_folded_and_headless_lines() -> None:
    response = (
        b"HTTP/1.1 100 Continue\r\nX-Ignored: yes\r\n\r\n"
        b"HTTP/1.1 200 OK\r\n"
        b"X-Folded: first\r\n  second\r\n"
        b"not a header line\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n"
    )
    with Canned(response) as fake:
        pool = Client(fake.url)._pool
        try:
            reply = pool.request("GET", "/x")
            assert (reply.status, reply.data) == (200, b"hello")
            assert reply.headers["x-folded"] == "first second"
            assert "x-ignored" not in reply.headers
        finally:
            pool.close()


@pytest.mark.parametrize(
    ("status", "method", "extra"),
    [(204, "DELETE", b""), (304, "GET", b""), (200, "HEAD", b"Content-Length: 99\r\n")],
)
def test_responses_without_a_body(status: int, method: str, extra: bytes) -> None:
    # No body follows; a second response on the same connection proves the
    # reader did not wait for one.
    first = f"HTTP/1.1 {status} X\r\n".encode() + extra + b"\r\n"
    second = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    with Canned(first, second) as fake:
        pool = Client(fake.url)._pool
        try:
            assert pool.request(method, "/a").status == status
            assert pool.request("GET", "/b").data == b"ok"
        finally:
            pool.close()


def test_http10_response_without_length_reads_to_close() -> None:
    class Closing(RawServer):
        def serve(self, conn: socket.socket) -> None:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nuntil the end")

    with Closing() as fake:
        pool = Client(fake.url)._pool
        try:
            assert pool.request("GET", "/x").data == b"until the end"
        finally:
            pool.close()


def test_oversized_header_blocks_are_errors() -> None:
    too_many = b"HTTP/1.1 200 OK\r\n" + b"A: 1\r\n" * 101 + b"Content-Length: 0\r\n\r\n"
    too_long = b"HTTP/1.1 200 OK\r\nA: " + b"x" * 70000 + b"\r\n\r\n"
    for response, message in ((too_many, "more than 100 headers"), (too_long, "header line")):
        with Canned(response) as fake, Client(fake.url, retries=0) as client:
            session = client.session(Usecase("test"), org=1)
            # As the official client: urllib3's error, not a RequestError.
            with pytest.raises(urllib3.exceptions.MaxRetryError, match=message):
                session.get("k")


def test_unknown_protocol_is_an_error() -> None:
    with Canned(b"HTTP/2.0 200 OK\r\n\r\n") as fake, Client(fake.url, retries=0) as client:
        session = client.session(Usecase("test"), org=1)
        with pytest.raises(urllib3.exceptions.MaxRetryError, match=r"HTTP/2\.0"):
            session.get("k")
