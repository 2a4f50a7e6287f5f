"""Compressed gets: the read-ahead thread and the direct socket reads."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
import zstandard

from django_objectstore.client import Client, Session, Usecase
from django_objectstore.client._frames import FrameDecoder
from django_objectstore.client._response import (
    FIRST_READ,
    READ_AHEAD_BLOCK,
    READ_AHEAD_BLOCKS,
    ReadAhead,
    ResponseStream,
)

from .rawserver import read_head

MIB = 1024 * 1024


def _helpers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "objectstore-read-ahead"]


def _wait_gone(timeout: float = 5.0) -> bool:
    for thread in _helpers():
        thread.join(timeout)
    return not _helpers()


def _text(size: int) -> bytes:
    """Compressible bytes (hex words) of ``size`` bytes."""
    words = os.urandom(size // 6 + 1).hex().encode()
    return (words + words[: size // 3])[:size]


def test_full_read_returns_the_connection(streaming_session: Session) -> None:
    session = streaming_session
    data = _text(12 * MIB + 17)  # several blocks of compressed input
    session.put(data, key="text")  # one frame, one thread
    got = session.get("text")
    assert got is not None
    with got.payload as stream:
        parts = [stream.read(MIB // 3)]
        assert len(_helpers()) == 1
        while block := stream.read(MIB // 3):
            parts.append(block)
    assert b"".join(parts) == data
    assert _wait_gone()
    # The connection went back to the pool and serves the next request.
    assert session._pool.pool is not None
    assert session._pool.pool.qsize() >= 1
    assert session.head("text") is not None


@pytest.mark.parametrize("size", [3 * MIB, 12 * MIB])
def test_readall_and_readinto(session: Session, size: int) -> None:
    data = _text(size)
    session.put(data, key="t2")
    got = session.get("t2")
    assert got is not None
    with got.payload as stream:
        # No read-ahead thread: small bodies are read as they are decoded,
        # large puts (frames that record their size) by the frame decoder.
        assert _helpers() == []
        assert isinstance(stream, FrameDecoder) == (size >= 4 * MIB)
        assert stream.read() == data
    got = session.get("t2")
    assert got is not None
    buffer = bytearray(100_000)
    out = bytearray()
    with got.payload as stream:
        while count := stream.readinto(buffer):  # type: ignore[attr-defined]
            out += buffer[:count]
    assert out == data
    assert _wait_gone()


def test_early_close_stops_the_thread(streaming_session: Session) -> None:
    session = streaming_session
    data = _text(24 * MIB)  # about 13 MiB compressed: many blocks
    session.put(data, key="big")
    got = session.get("big")
    assert got is not None
    first = got.payload.read(1000)
    assert first == data[:1000]
    assert len(_helpers()) == 1
    got.payload.close()
    assert _wait_gone()
    with pytest.raises(ValueError, match="closed"):
        got.payload.read(10)
    # The half-read connection was discarded, not reused.
    assert session.put(b"next", key="after") == "after"
    again = session.get("after")
    assert again is not None
    with again.payload as stream:
        assert stream.read() == b"next"


def test_read_ahead_is_bounded(streaming_session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    # While the reader does not read, the helper fills its fixed set of
    # blocks and waits: it never reads the whole body into memory.
    session = streaming_session
    data = _text(24 * MIB)
    session.put(data, key="bounded")
    read_bytes = [0]
    original = ResponseStream.readinto

    def counting(stream: ResponseStream, buffer: Any) -> int:
        count = original(stream, buffer)
        read_bytes[0] += count
        return count

    monkeypatch.setattr(ResponseStream, "readinto", counting)
    got = session.get("bounded")
    assert got is not None
    # The caller's first read, then the set of blocks.
    limit = FIRST_READ + READ_AHEAD_BLOCKS * READ_AHEAD_BLOCK
    with got.payload as stream:
        assert stream.read(1) == data[:1]
        deadline = time.monotonic() + 5
        while read_bytes[0] < limit and time.monotonic() < deadline:
            time.sleep(0.005)
        assert read_bytes[0] == limit
        helper = _helpers()[0]
        helper.join(0.1)  # it waits for a free block, so stays alive
        assert helper.is_alive()
        assert read_bytes[0] == limit
    assert _wait_gone()


def test_incompressible_payload_is_read_without_a_thread(streaming_session: Session) -> None:
    # zstd stores incompressible data in raw blocks: decoding is a copy, so
    # the reader's thread reads on its own (a helper would only cost).
    session = streaming_session
    data = os.urandom(12 * MIB)
    session.put(data, key="random")
    got = session.get("random")
    assert got is not None
    with got.payload as stream:
        assert stream.read(10) == data[:10]
        assert _helpers() == []
        assert stream.read() == data[10:]
    assert session.head("random") is not None
    got = session.get("random")
    assert got is not None
    assert got.payload.read(5) == data[:5]
    got.payload.close()  # early close: the half-read connection is dropped
    assert session.put(b"after", key="after") == "after"


class _Truncating(threading.Thread):
    """Sends a compressed body shorter than its Content-Length, then closes
    (a connection cut a real server cannot produce on demand)."""

    def __init__(self, body: bytes, claimed: int) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.response = (
            f"HTTP/1.1 200 OK\r\nContent-Encoding: zstd\r\nContent-Length: {claimed}\r\n\r\n"
        ).encode() + body

    def run(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            if read_head(conn) is not None:
                conn.sendall(self.response)
        self.sock.close()


@pytest.fixture
def truncated() -> Iterator[tuple[_Truncating, bytes]]:
    plain = _text(24 * MIB)
    frame = zstandard.ZstdCompressor(level=3).compress(plain)
    fake = _Truncating(frame[: len(frame) // 2], len(frame))
    fake.start()
    yield fake, plain
    fake.join(5)


def test_cut_connection_is_an_error_in_the_reader(truncated: tuple[_Truncating, bytes]) -> None:
    fake, plain = truncated
    with Client(fake.url) as made:
        got = made.session(Usecase("test"), org=1).get("cut")
        assert got is not None
        received = bytearray()

        def read_all() -> None:
            with got.payload as stream:
                while block := stream.read(MIB):
                    received.extend(block)

        with pytest.raises(urllib3.exceptions.ProtocolError, match="IncompleteRead"):
            read_all()
        assert plain.startswith(bytes(received))
    assert _wait_gone()


def test_empty_body_ends_without_a_helper_or_a_read() -> None:
    # A first read of 0 bytes is the whole body: no helper starts, every
    # read says end of stream, and closing closes the response stream.
    class Stream:
        closed = False

        def readinto(self, buffer: Any) -> int:
            raise AssertionError("nothing is read after an empty first read")

        def close(self) -> None:
            self.closed = True

    stream = Stream()
    reader = ReadAhead(stream, bytearray(16), 0)  # type: ignore[arg-type]
    assert _helpers() == []
    assert reader.read(5) == b""
    assert reader.readinto(bytearray(4)) == 0
    assert reader.read() == b""
    reader.close()
    assert stream.closed
