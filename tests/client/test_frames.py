"""The multi-frame reader: frame boundaries, parallel decoding, fallbacks."""

from __future__ import annotations

import io
import os

import pytest
import zstandard

from django_objectstore.client._frames import MAX_FRAME_CONTENT, FrameParallelReader, frame_extent


def frames(*chunks: bytes, **params: object) -> list[bytes]:
    compressor = zstandard.ZstdCompressor(**params)  # type: ignore[arg-type]
    return [compressor.compress(chunk) for chunk in chunks]


def streamed(data: bytes) -> bytes:
    """A frame without a recorded content size (as single-request puts make)."""
    stream = zstandard.ZstdCompressor().compressobj()
    return stream.compress(data) + stream.flush()


def skippable(payload: bytes) -> bytes:
    return b"\x50\x2a\x4d\x18" + len(payload).to_bytes(4, "little") + payload


@pytest.mark.parametrize(
    "data",
    [b"", b"a", b"a" * 300, os.urandom(70_000), b"ab" * 200_000, os.urandom(300_000)],
)
@pytest.mark.parametrize("checksum", [False, True])
def test_frame_extent_finds_the_end(data: bytes, checksum: bool) -> None:
    (frame,) = frames(data, write_checksum=checksum)
    following = b"\x28\xb5\x2f\xfd trailing"
    assert frame_extent(frame + following) == (len(frame), len(data))
    for cut in (0, 3, 5, len(frame) // 2, len(frame) - 1):
        assert frame_extent(frame[:cut]) is None


def test_frame_extent_special_frames() -> None:
    assert frame_extent(streamed(b"x" * 1000)) == (len(streamed(b"x" * 1000)), None)
    skip = skippable(b"metadata")
    assert frame_extent(skip + b"more") == (len(skip), 0)
    assert frame_extent(skip[:6]) is None
    with pytest.raises(ValueError, match="not a zstd frame"):
        frame_extent(b"PK\x03\x04 zip")


def read_all(raw: bytes, block: int = 100_000) -> bytes:
    with FrameParallelReader(io.BytesIO(raw)) as reader:
        out = []
        while chunk := reader.read(block):
            out.append(chunk)
    return b"".join(out)


def test_many_frames_decode_in_order() -> None:
    parts = [os.urandom(50_000) + bytes(200_000) for _ in range(9)]
    raw = b"".join(frames(*parts))
    assert read_all(raw) == b"".join(parts)
    assert read_all(raw, block=7)[:100] == parts[0][:100]
    with FrameParallelReader(io.BytesIO(raw)) as reader:
        assert reader.read() == b"".join(parts)


def test_mixed_frames_fall_back_to_streaming() -> None:
    parts = [b"first " * 1000, b"second " * 1000, b"third " * 1000]
    raw = frames(parts[0])[0] + skippable(b"x") + streamed(parts[1]) + frames(parts[2])[0]
    assert read_all(raw) == b"".join(parts)
    big = b"b" * (MAX_FRAME_CONTENT + 1)
    raw = frames(b"small")[0] + frames(big)[0]
    assert read_all(raw, block=1 << 20) == b"small" + big
    assert read_all(b"") == b""


def test_damage_is_reported() -> None:
    (frame,) = frames(os.urandom(1000) * 5)
    with pytest.raises(zstandard.ZstdError):
        read_all(frame[:-10])
    with pytest.raises(zstandard.ZstdError):
        read_all(b"definitely not zstd data")


def test_close_early_and_closed_reads() -> None:
    raw = b"".join(frames(*[bytes(100_000)] * 6))
    source = io.BytesIO(raw)
    reader = FrameParallelReader(source)
    assert reader.read(10) == bytes(10)
    reader.close()
    assert source.closed
    with pytest.raises(ValueError, match="closed"):
        reader.read(1)
    buffer = bytearray(5)
    with FrameParallelReader(io.BytesIO(raw)) as reader:
        assert reader.readinto(buffer) == 5
