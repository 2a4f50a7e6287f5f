"""Incompressible payloads read by slicing raw zstd blocks (``RawBlocks``):
every zstd stream still decodes exactly as zstandard decodes it, whatever
mix of raw, RLE and compressed blocks, frames, checksums and skippable frames
it holds; and large gets of incompressible objects take that path."""

from __future__ import annotations

import io
import os
import socket
import struct
import threading
from typing import IO

import pytest
import urllib3
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_objectstore.client import Client, SecretKey, Session, Usecase
from django_objectstore.client._rawblocks import DIRECT_MAX, RawBlocks
from django_objectstore.client._rawframe import raw_frame_chunks
from django_objectstore.client._response import FIRST_READ
from django_objectstore.client._zstd import MAGIC, raw_block_header
from django_objectstore.server import LocalServer

from .rawserver import RawServer, read_head

KIB = 1024
MIB = 1024 * KIB


class BytesChunks:
    """In-memory ``Chunks``: pieces of at most ``step`` bytes, each valid
    until the next read (the buffer is reused, as ``Refilled`` does)."""

    def __init__(self, data: bytes, step: int, *, scatter: bool = True) -> None:
        self.stream = io.BytesIO(data)
        self.buffer = bytearray(step)
        self.step = step
        self.scatter = scatter
        self.closed = False

    def read(self, size: int = -1) -> memoryview:
        count = self.stream.readinto(self.buffer)
        return memoryview(self.buffer)[:count]

    def readinto(self, buffer: memoryview) -> int:
        return self.stream.readinto(buffer)

    def scatter_into(self, buffers: list[memoryview]) -> int | None:
        """At most ``step`` bytes, as a socket read may stop anywhere (None:
        a source that cannot, as a response not read from a socket)."""
        if not self.scatter:
            return None
        count, room = 0, self.step
        for buffer in buffers:
            got = self.stream.readinto(buffer[:room])
            count, room = count + got, room - got
            if got < buffer.nbytes or not room:
                break
        return count

    def close(self) -> None:
        self.closed = True


def decode(stream: bytes, *, step: int = MIB, read: int = MIB, scatter: bool = True) -> bytes:
    """Decoded by ``RawBlocks`` from pieces of ``step`` bytes, read ``read``
    bytes at a time."""
    reader = RawBlocks(BytesChunks(stream, step, scatter=scatter))
    out = []
    while chunk := reader.read(read):
        out.append(chunk)
    reader.close()
    return b"".join(out)


def raw_frame(data: bytes) -> bytes:
    return b"".join(bytes(chunk) for chunk in raw_frame_chunks(data, len(data)))


def official(data: bytes, **kwargs: object) -> bytes:
    """A frame as the official client writes it (streamed: no content size)."""
    compressor = zstandard.ZstdCompressor(level=3, **kwargs)  # type: ignore[arg-type]
    stream = compressor.compressobj()
    return stream.compress(data) + stream.flush()


def expected(stream: bytes) -> bytes:
    return zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True).read()


NOISE = os.urandom(3 * MIB)


def test_official_frame_of_random_bytes() -> None:
    stream = official(NOISE)
    assert decode(stream) == NOISE
    assert decode(stream, step=4000, read=10_000) == NOISE


def test_compressed_blocks_after_raw_ones_refer_back_into_the_window() -> None:
    # Random bytes (raw blocks), then text and a repeat of recent bytes: the
    # compressed blocks' matches reach into the raw blocks' output.
    data = NOISE[: 2 * MIB] + b"abc" * 100_000 + NOISE[MIB : MIB + 700 * KIB] + NOISE[:1000]
    stream = official(data)
    assert decode(stream) == data
    assert decode(stream, step=777, read=3000) == data


def test_frames_checksums_skippable_rle_and_raw_frames() -> None:
    text = b"the quick brown fox " * 20_000
    rle = (
        MAGIC
        + bytes([0x00, 7 << 3])
        + raw_block_header(5, False)
        + b"hello"
        + ((100_000 << 3) | (1 << 1)).to_bytes(3, "little")  # RLE block, not last
        + b"z"
        + raw_block_header(0, True)
    )
    skippable = struct.pack("<II", 0x184D2A53, 6) + b"ignore"
    parts = [
        raw_frame(NOISE[:MIB]),
        skippable,
        official(text, write_checksum=True),
        rle,
        official(NOISE[: 200 * KIB]),
        zstandard.ZstdCompressor().compress(text),  # content size, single segment
        raw_frame(b""),
    ]
    stream = b"".join(parts)
    assert expected(stream) == NOISE[:MIB] + text + b"hello" + b"z" * 100_000 + (
        NOISE[: 200 * KIB] + text
    )
    assert decode(stream) == expected(stream)
    assert decode(stream, step=1000, read=50_000) == expected(stream)


def test_truncated_streams_raise() -> None:
    stream = official(NOISE[:MIB])
    for cut in (3, 7, len(stream) // 2, len(stream) - 1):
        with pytest.raises(zstandard.ZstdError, match=r"truncated|end"):
            decode(stream[:cut])
    with pytest.raises(zstandard.ZstdError):
        decode(b"not zstd at all")


pieces = st.one_of(
    st.builds(lambda n: ("noise", n), st.integers(0, 400 * KIB)),
    st.builds(lambda n: ("text", n), st.integers(0, 200 * KIB)),
    st.builds(lambda n: ("repeat", n), st.integers(1, 300 * KIB)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.lists(pieces, min_size=1, max_size=4), min_size=1, max_size=3),
    st.sampled_from(["official", "checksum", "raw", "sized"]),
    st.integers(1, 70_000),
    st.integers(1, 300_000),
    st.booleans(),
)
def test_any_stream_decodes_as_zstandard_decodes_it(
    frames: list[list[tuple[str, int]]], kind: str, step: int, read: int, scatter: bool
) -> None:
    stream = b""
    for frame in frames:
        data = b""
        for what, size in frame:
            if what == "noise":
                data += NOISE[len(data) % MIB :][:size]
            elif what == "text":
                data += (b"%d lorem ipsum " % size) * (size // 16)
            else:
                data += data[-size:]
        if kind == "raw":
            stream += raw_frame(data)
        elif kind == "sized":
            stream += zstandard.ZstdCompressor(level=3).compress(data)
        else:
            stream += official(data, write_checksum=kind == "checksum")
    assert decode(stream, step=step, read=read, scatter=scatter) == expected(stream)


# -- through the client ----------------------------------------------------------


@pytest.fixture
def stored(client: Client, org: int) -> Session:
    return client.session(Usecase("test"), org=org)


def test_large_incompressible_get_slices_raw_blocks(stored: Session) -> None:
    data = os.urandom(6 * MIB)
    for name, body in (("official", official(data)), ("raw", raw_frame(data))):
        key = stored.put(body, key=name, precompressed="zstd")
        got = stored.get(key)
        assert got is not None
        with got.payload as payload:
            assert isinstance(payload, RawBlocks)
            assert payload.read(1000) == data[:1000]
            chunk = payload.read(MIB)  # up to the end of the first read
            assert 0 < len(chunk) < FIRST_READ
            direct = payload.read(MIB)  # received in place: several raw blocks
            assert 128 * KIB < len(direct) <= MIB
            got_so_far = 1000 + len(chunk) + len(direct)
            assert chunk + direct == data[1000:got_so_far]
            assert payload.read() == data[got_so_far:]
        assert threads_named("objectstore-read-ahead") == []


def test_mixed_object_switches_to_zstandard(stored: Session) -> None:
    data = NOISE + b"text " * 300_000 + NOISE[:MIB]
    key = stored.put(official(data), key="mixed", precompressed="zstd")
    got = stored.get(key)
    assert got is not None
    with got.payload as payload:
        assert payload.read() == data
    assert stored.head("mixed") is not None  # the connection went back, still usable


def test_truncated_object_raises(server: LocalServer, secret_key: SecretKey, org: int) -> None:
    data = os.urandom(5 * MIB)
    with Client(server.url, token=secret_key) as client:
        session = client.session(Usecase("test"), org=org)
        key = session.put(official(data)[: 4 * MIB + 123], key="cut", precompressed="zstd")
        got = session.get(key)
        assert got is not None
        with got.payload as payload, pytest.raises(zstandard.ZstdError, match="truncated"):
            payload.read()


def threads_named(prefix: str) -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(prefix)]


def test_large_reads_receive_in_place_and_tell_wrong_guesses() -> None:
    # Large reads receive the blocks in place, guessing that full raw blocks
    # follow: a short raw block, an RLE block, a compressed frame and a
    # frame's end each prove the guess wrong somewhere inside a read.
    short = (
        MAGIC
        + bytes([0x00, 7 << 3])
        + raw_block_header(128 * KIB, False)
        + NOISE[: 128 * KIB]
        + raw_block_header(1000, False)
        + NOISE[:1000]
        + ((5000 << 3) | (1 << 1)).to_bytes(3, "little")
        + b"q"
        + raw_block_header(128 * KIB, True)
        + NOISE[: 128 * KIB]
    )
    stream = short + official(NOISE[:MIB]) + official(b"text " * 50_000) + raw_frame(NOISE[:MIB])
    for step in (MIB, 128 * KIB + 3, 4000):
        for scatter in (True, False):
            assert decode(stream, step=step, read=3 * MIB, scatter=scatter) == expected(stream)


class _ServesObject(RawServer):
    """Answers every GET with ``body`` as a stored zstd object, framed with
    Content-Length (cut short after ``send`` bytes when given) or chunked."""

    def __init__(self, body: bytes, *, chunk: int | None = None, send: int | None = None) -> None:
        super().__init__()
        self.body, self.chunk, self.send = body, chunk, send

    def serve(self, conn: socket.socket) -> None:
        while read_head(conn) is not None:
            head = b"HTTP/1.1 200 OK\r\nContent-Encoding: zstd\r\n"
            if self.chunk is None:
                conn.sendall(head + b"Content-Length: %d\r\n\r\n" % len(self.body))
                conn.sendall(self.body[: self.send])
                if self.send is not None:
                    return  # the connection closes mid-body
            else:
                conn.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n")
                for start in range(0, len(self.body), self.chunk):
                    piece = self.body[start : start + self.chunk]
                    conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                conn.sendall(b"0\r\n\r\n")


@pytest.mark.parametrize("chunk", [None, 1000, 100_003, 3 * MIB])
def test_in_place_reads_over_both_framings(chunk: int | None) -> None:
    data = NOISE + b"text " * 100_000 + NOISE[:MIB]
    body = official(NOISE) + raw_frame(NOISE[:MIB]) + official(data)
    with _ServesObject(body, chunk=chunk) as server, Client(server.url) as client:
        session = client.session(Usecase("test"), org=1)
        for _ in range(2):  # the connection is reused after a whole read
            got = session.get("key")
            assert got is not None
            with got.payload as payload:
                assert isinstance(payload, RawBlocks)
                assert read_in_mib(payload) == NOISE + NOISE[:MIB] + data


def test_connection_closed_inside_an_in_place_read_raises() -> None:
    body = official(NOISE + NOISE)
    with _ServesObject(body, send=4 * MIB + 5) as server, Client(server.url) as client:
        got = client.session(Usecase("test"), org=1).get("key")
        assert got is not None
        assert isinstance(got.payload, RawBlocks)
        with got.payload as payload, pytest.raises(urllib3.exceptions.ProtocolError):
            read_in_mib(payload)


def read_in_mib(payload: IO[bytes]) -> bytes:
    out = []
    while piece := payload.read(MIB):
        out.append(piece)
    return b"".join(out)


def test_huge_reads_stay_bounded() -> None:
    # One read returns at most DIRECT_MAX bytes (allocated up front), and one
    # socket read scatters over a bounded number of buffers (IOV_MAX is 1024).
    data = os.urandom(40 * MIB)
    with _ServesObject(raw_frame(data)) as server, Client(server.url) as client:
        got = client.session(Usecase("test"), org=1).get("key")
        assert got is not None
        with got.payload as payload:
            first = payload.read(1 << 40)
            assert len(first) <= DIRECT_MAX
            rest = read_in_mib(payload)
    assert first + rest == data
