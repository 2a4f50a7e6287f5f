"""Incompressible inputs as zstd frames of raw blocks.

zstd level 3 on data that does not compress (JPEG, PNG, ZIP, video, random
bytes) spends CPU to produce a frame no smaller than the input. A zstd frame
may instead carry the bytes in *raw* blocks (a 3-byte header per block of at
most 128 KiB): any zstd decoder reads it, and building it costs a read into a
buffer. Its size is known up front, so it goes out with a Content-Length and
no chunk framing (no copy in the HTTP layer either).

Whether an input is incompressible is judged from samples spread over it
(start, middle, end): an input whose samples do not shrink is stored in raw
blocks even if some other stretch would have compressed. That costs storage
space, never correctness.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Generator
from typing import Any, Final

import zstandard

from django_objectstore.client._io import ZSTD_LEVEL, Body, Buffer

__all__ = [
    "RAW_BLOCK",
    "frame_size",
    "is_incompressible",
    "raw_frame_chunks",
]

#: Largest zstd block (the format's limit for any window of 128 KiB or more).
RAW_BLOCK: Final = 128 * 1024
#: Raw blocks gathered into one send.
_BLOCKS_PER_SEND: Final = 8

# Frame header: magic number, then a descriptor with no content size, no
# checksum, no dictionary and no single-segment flag, then a window
# descriptor of 128 KiB (exponent 7: 2 ** (10 + 7)).
_FRAME_HEADER: Final = struct.pack("<I", 0xFD2FB528) + bytes([0x00, 7 << 3])
_BLOCK_HEADER: Final = 3

#: Bytes compressed from each sample, and the number of samples.
_SAMPLE: Final = 64 * 1024
_SAMPLES: Final = 3
#: Samples compressing to more than this fraction of their size count as
#: incompressible.
_RATIO: Final = 0.98


def frame_size(size: int) -> int:
    """Size of the raw-block frame of ``size`` input bytes."""
    blocks = max(-(-size // RAW_BLOCK), 1)  # an empty input still has one (empty) block
    return len(_FRAME_HEADER) + blocks * _BLOCK_HEADER + size


def _block_header(size: int, last: bool) -> bytes:
    # Little-endian 24 bits: last-block flag, block type 0 (raw), size.
    return ((size << 3) | int(last)).to_bytes(3, "little")


def _samples(contents: Body, size: int) -> list[bytes]:
    offsets = sorted({0, max(size // 2 - _SAMPLE // 2, 0), max(size - _SAMPLE, 0)})
    if isinstance(contents, bytes | bytearray | memoryview):
        view = memoryview(contents).cast("B")
        return [bytes(view[start : start + _SAMPLE]) for start in offsets[:_SAMPLES]]
    file: Any = contents
    origin = file.tell()
    try:
        samples = []
        for start in offsets[:_SAMPLES]:
            file.seek(origin + start)
            block = file.read(_SAMPLE)
            if not isinstance(block, bytes | bytearray | memoryview):
                return []
            samples.append(bytes(block))
        return samples
    finally:
        file.seek(origin)


def is_incompressible(contents: Body, size: int) -> bool:
    """True if samples of ``contents`` (bytes or a seekable binary file with
    ``size`` bytes left) do not shrink under zstd. The file position is kept."""
    if size < _SAMPLE:
        return False
    try:
        samples = _samples(contents, size)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return False
    if not samples:
        return False
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    return all(len(compressor.compress(sample)) > _RATIO * len(sample) for sample in samples)


def _filler(contents: Body) -> Any:
    """A ``readinto``-like function over ``contents`` (bytes or a file)."""
    if isinstance(contents, bytes | bytearray | memoryview):
        source = memoryview(contents).cast("B")
        position = 0

        def fill(target: memoryview) -> int:
            nonlocal position
            count = min(target.nbytes, source.nbytes - position)
            target[:count] = source[position : position + count]
            position += count
            return count

        return fill
    file: Any = contents
    readinto = getattr(file, "readinto", None)

    def fill_file(target: memoryview) -> int:
        done = 0
        while done < target.nbytes:
            if callable(readinto):
                count = readinto(target[done:])
            else:
                block = file.read(target.nbytes - done)
                count = len(block)
                target[done : done + count] = block
            if not count:
                break
            done += count
        return done

    return fill_file


def raw_frame_chunks(
    contents: Body, size: int, counter: Any = None
) -> Generator[Buffer, None, None]:
    """The raw-block frame of exactly ``size`` bytes of ``contents``, in
    pieces of up to ~1 MiB (each valid until the next is requested). Raises
    ``ValueError`` if the source ends early or has more than ``size`` bytes
    (the request is then abandoned, never completed with other bytes)."""
    fill = _filler(contents)
    slot = _BLOCK_HEADER + RAW_BLOCK
    buffer = bytearray(slot * _BLOCKS_PER_SEND)
    view = memoryview(buffer)
    yield _FRAME_HEADER
    if counter is not None:
        counter.stored += len(_FRAME_HEADER)
    remaining = size
    while True:
        end = 0
        last = False
        for _ in range(_BLOCKS_PER_SEND):
            count = min(RAW_BLOCK, remaining)
            got = fill(view[end + _BLOCK_HEADER : end + _BLOCK_HEADER + count]) if count else 0
            if got != count:
                raise ValueError(
                    f"put() source ended after {size - remaining + got} of the {size} bytes "
                    "it had when the upload started; it must not shrink during the upload"
                )
            remaining -= count
            if counter is not None:
                counter.source += count
            last = remaining == 0
            if last and fill(memoryview(bytearray(1))):
                raise ValueError(
                    f"put() source grew beyond the {size} bytes it had when the upload "
                    "started; it must not change during the upload"
                )
            view[end : end + _BLOCK_HEADER] = _block_header(count, last)
            end += _BLOCK_HEADER + count
            if last:
                break
        if counter is not None:
            counter.stored += end
        yield view[:end]
        if last:
            return
