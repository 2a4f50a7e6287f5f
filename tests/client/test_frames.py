"""FrameDecoder: parallel decompression of many-frame zstd streams, with
zstandard's streaming reader taking over for frames it cannot split."""

from __future__ import annotations

import io
import os
import threading
from typing import Any

import pytest
import zstandard

from django_objectstore.client import Client, SecretKey, Session, Usecase
from django_objectstore.client._frames import MAX_FRAME, FrameDecoder
from django_objectstore.client._zstd import FRAME_SIZE
from django_objectstore.server import LocalServer

from .test_parallel import payload

KIB = 1024
MIB = 1024 * KIB


def sized(data: bytes, **kwargs: Any) -> bytes:
    """One frame that records its size (as large puts write them)."""
    return zstandard.ZstdCompressor(**kwargs).compress(data)


def streamed(data: bytes) -> bytes:
    """One frame of unknown size (as streamed puts write them)."""
    out = io.BytesIO()
    with zstandard.ZstdCompressor().stream_writer(out, closefd=False) as writer:
        writer.write(data)
    return out.getvalue()


def skippable(content: bytes) -> bytes:
    return (0x184D2A53).to_bytes(4, "little") + len(content).to_bytes(4, "little") + content


class Source(io.BytesIO):
    """A compressed body, read in uneven pieces, that notes being closed."""

    def read(self, size: int | None = -1) -> bytes:
        return super().read(min(size, 300_001) if size is not None and size > 0 else size)


def decode_all(stream: bytes, threads: int = 2, piece: int | None = None) -> bytes:
    decoder = FrameDecoder(Source(stream), threads)
    with decoder:
        if piece is None:
            return decoder.read()
        out = bytearray()
        while chunk := decoder.read(piece):
            out += chunk
        return bytes(out)


def reference(stream: bytes) -> bytes:
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(stream), read_across_frames=True)
    return reader.read()


TEXT = payload(3 * MIB)
NOISE = os.urandom(300 * KIB)  # raw blocks
ZEROS = bytes(2 * MIB)  # RLE blocks

STREAMS = {
    "sized frames": sized(TEXT[: 1 * MIB]) + sized(TEXT[1 * MIB :]) + sized(NOISE),
    "checksums": sized(TEXT, write_checksum=True) + sized(ZEROS, write_checksum=True),
    "rle and raw blocks": sized(ZEROS) + sized(NOISE) + sized(ZEROS[:5]),
    "empty frames": sized(b"") + sized(TEXT[:100]) + sized(b""),
    "unknown size first": streamed(TEXT) + sized(NOISE),
    "unknown size later": sized(NOISE) + streamed(TEXT) + sized(ZEROS),
    "skippable frame": sized(TEXT[:5000]) + skippable(b"meta") + sized(NOISE),
    "frame over MAX_FRAME": sized(NOISE) + sized(bytes(MAX_FRAME + 1)) + sized(NOISE),
    "nothing": b"",
    # Decode buffers are reused: frames that grow, shrink and grow again,
    # each with bytes of its own, show any stale or shared buffer.
    "sizes up and down": b"".join(
        sized(bytes([n]) * 7 + TEXT[n * 1000 : n * 1000 + size])
        for n, size in enumerate([2 * MIB, 100 * KIB, 2 * MIB, MIB + 3, 5, 2 * MIB, MIB, 2 * MIB])
    )
    + sized(os.urandom(MAX_FRAME)),
}


@pytest.mark.parametrize("name", list(STREAMS))
@pytest.mark.parametrize("piece", [None, 65_537, 3 * MIB])
def test_same_bytes_as_zstandard_streaming_reader(name: str, piece: int | None) -> None:
    stream = STREAMS[name]
    expected = reference(stream)
    assert decode_all(stream, piece=piece) == expected
    assert decode_all(stream, threads=4, piece=piece) == expected


def test_pieces_handed_out_stay_as_they_were() -> None:
    # Decode buffers are reused for later frames: what read() returned must
    # be the caller's own bytes, unchanged by what is decoded afterwards.
    stream = STREAMS["sizes up and down"]
    with FrameDecoder(Source(stream), 2) as decoder:
        pieces = []
        while piece := decoder.read(700 * KIB):
            pieces.append(piece)
            assert isinstance(piece, bytes)
    assert b"".join(pieces) == reference(stream)


def test_byte_by_byte() -> None:
    stream = sized(TEXT[:3000]) + streamed(TEXT[3000:5000]) + sized(NOISE[:3000])
    assert decode_all(stream, piece=1) == reference(stream)


def test_readinto_and_read_zero() -> None:
    decoder = FrameDecoder(Source(STREAMS["sized frames"]), 2)
    buffer = bytearray(1000)
    assert decoder.read(0) == b""
    assert decoder.readinto(buffer) == 1000
    assert bytes(buffer) == TEXT[:1000]
    rest = decoder.read()
    assert TEXT[:1000] + rest == reference(STREAMS["sized frames"])
    assert decoder.readinto(buffer) == 0
    decoder.close()
    with pytest.raises(ValueError, match="closed"):
        decoder.read(1)


def test_corrupt_frame_raises_zstd_error() -> None:
    # With a checksum, any changed byte is an error (a flipped literal alone
    # could otherwise decode to wrong bytes silently).
    frame = bytearray(sized(TEXT[: 1 * MIB], write_checksum=True))
    frame[len(frame) // 2] ^= 0xFF
    with pytest.raises(zstandard.ZstdError):
        decode_all(bytes(frame) + sized(NOISE))


def test_frame_holding_more_than_its_size_is_an_error() -> None:
    # A frame that records a size of 0 but holds data: never skipped unread.
    frame = bytearray(sized(b"abc"))
    assert frame[5] == 3  # the one-byte content size of a single-segment frame
    frame[5] = 0
    with pytest.raises(zstandard.ZstdError):
        reference(bytes(frame))
    with pytest.raises(zstandard.ZstdError):
        decode_all(bytes(frame) + sized(NOISE))


def test_truncated_frame_is_an_error() -> None:
    stream = sized(TEXT[: 1 * MIB]) + sized(NOISE)
    with pytest.raises(zstandard.ZstdError, match="truncated"):
        decode_all(stream[:-10])


def test_closing_early_stops_threads_and_closes_the_source() -> None:
    source = Source(b"".join(sized(TEXT[i : i + 64 * KIB]) for i in range(0, len(TEXT), 64 * KIB)))

    def decoding() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name.startswith("objectstore-unzstd")]

    assert decoding() == []
    decoder = FrameDecoder(source, 2)
    assert decoder.read(10) == TEXT[:10]
    assert decoding() != []  # the pool is decoding ahead
    decoder.close()
    assert source.closed
    assert decoding() == []


def test_large_put_is_decoded_in_parallel(
    server: LocalServer, secret_key: SecretKey, org: int
) -> None:
    data = payload(8 * FRAME_SIZE + 12345)  # nine frames, over 4 MiB stored
    with Client(server.url, token=secret_key, multipart_threshold=1) as made:
        session = made.session(Usecase("test"), org=org)
        check_parallel_decoding(session, session.put(io.BytesIO(data)), data)


def check_parallel_decoding(session: Session, key: str, data: bytes) -> None:
    raw = session.get(key, decompress=False)
    assert raw is not None
    with raw.payload as stream:
        stored = stream.read()
    sizes = []
    position = 0
    while position < len(stored):  # each frame records its size
        sizes.append(zstandard.get_frame_parameters(stored[position : position + 18]).content_size)
        reader = zstandard.ZstdDecompressor().decompressobj()
        reader.decompress(stored[position:])
        position = len(stored) - len(reader.unused_data)
    assert sizes == [FRAME_SIZE] * 8 + [12345]
    got = session.get(key)
    assert got is not None
    with got.payload as payload_stream:
        if (os.cpu_count() or 1) > 1:
            assert isinstance(payload_stream, FrameDecoder)
        assert payload_stream.read() == data


def test_official_objects_stream_through(server: LocalServer, client: Client, org: int) -> None:
    # Streamed uploads are one frame of unknown size: decoded by the
    # streaming reader, after a look at the frame header.
    session = client.session(Usecase("test"), org=org)
    data = payload(5 * MIB)
    key = session.put(iter([data]))  # unknown size: one streamed frame
    got = session.get(key)
    assert got is not None
    with got.payload as stream:
        assert stream.read() == data


def test_closing_a_large_get_early_frees_threads_and_connection(
    server: LocalServer, secret_key: SecretKey, org: int
) -> None:
    # The frame decoder reads the socket itself: closing it half-read stops
    # its workers and drops the connection (never read to the end), and the
    # session goes on with a fresh one.
    data = payload(12 * FRAME_SIZE)  # over 4 MiB stored
    with Client(server.url, token=secret_key, multipart_threshold=1) as made:
        session = made.session(Usecase("test"), org=org)
        key = session.put(io.BytesIO(data))
        got = session.get(key)
        assert got is not None
        if (os.cpu_count() or 1) > 1:
            assert isinstance(got.payload, FrameDecoder)
        assert got.payload.read(1000) == data[:1000]
        got.payload.close()
        assert not [t for t in threading.enumerate() if t.name.startswith("objectstore-unzstd")]
        again = session.get(key)
        assert again is not None
        with again.payload as stream:
            assert stream.read() == data
