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
from collections.abc import Callable, Generator
from typing import IO, Final, cast

from django_objectstore.client._io import Body, Buffer, Counter
from django_objectstore.client._zstd import (
    BLOCK_HEADER,
    RAW_BLOCK,
    RAW_FRAME_HEADER,
    compressor,
    raw_block_header,
)

__all__ = ["frame_size", "is_incompressible", "raw_frame_chunks"]

#: Raw blocks gathered into one send.
_BLOCKS_PER_SEND: Final = 8

#: Bytes compressed from each sample, and the number of samples.
_SAMPLE: Final = 64 * 1024
_SAMPLES: Final = 3
#: Samples compressing to more than this fraction of their size count as
#: incompressible.
_RATIO: Final = 0.98


def frame_size(size: int) -> int:
    """Size of the raw-block frame of ``size`` input bytes."""
    blocks = max(-(-size // RAW_BLOCK), 1)  # an empty input still has one (empty) block
    return len(RAW_FRAME_HEADER) + blocks * BLOCK_HEADER + size


def _samples(contents: Body, size: int) -> list[bytes]:
    offsets = sorted({0, max(size // 2 - _SAMPLE // 2, 0), max(size - _SAMPLE, 0)})
    if isinstance(contents, bytes | bytearray | memoryview):
        view = memoryview(contents).cast("B")
        return [bytes(view[start : start + _SAMPLE]) for start in offsets[:_SAMPLES]]
    file = cast(IO[bytes], contents)  # not bytes: a seekable file (see known_size)
    origin = file.tell()
    try:
        samples = []
        for start in offsets[:_SAMPLES]:
            file.seek(origin + start)
            block: object = file.read(_SAMPLE)
            if not isinstance(block, bytes | bytearray | memoryview):
                return []  # a text file: not judged
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
    context = compressor()
    return all(len(context.compress(sample)) > _RATIO * len(sample) for sample in samples)


def _filler(contents: Body) -> Callable[[memoryview], int]:
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
    file = cast(IO[bytes], contents)  # not bytes: a file (see known_size)
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
    contents: Body, size: int, counter: Counter | None = None
) -> Generator[Buffer]:
    """The raw-block frame of exactly ``size`` bytes of ``contents``, in
    pieces of up to ~1 MiB (each valid until the next is requested). Raises
    ``ValueError`` if the source ends early or has more than ``size`` bytes
    (the request is then abandoned, never completed with other bytes)."""
    counter = counter if counter is not None else Counter()
    fill = _filler(contents)
    slot = BLOCK_HEADER + RAW_BLOCK
    buffer = bytearray(slot * _BLOCKS_PER_SEND)
    view = memoryview(buffer)
    yield RAW_FRAME_HEADER
    counter.stored += len(RAW_FRAME_HEADER)
    remaining = size
    while True:
        end = 0
        last = False
        for _ in range(_BLOCKS_PER_SEND):
            count = min(RAW_BLOCK, remaining)
            got = fill(view[end + BLOCK_HEADER : end + BLOCK_HEADER + count]) if count else 0
            if got != count:
                raise ValueError(
                    f"put() source ended after {size - remaining + got} of the {size} bytes "
                    "it had when the upload started; it must not shrink during the upload"
                )
            remaining -= count
            counter.source += count
            last = remaining == 0
            if last and fill(memoryview(bytearray(1))):
                raise ValueError(
                    f"put() source grew beyond the {size} bytes it had when the upload "
                    "started; it must not change during the upload"
                )
            view[end : end + BLOCK_HEADER] = raw_block_header(count, last)
            end += BLOCK_HEADER + count
            if last:
                break
        counter.stored += end
        yield view[:end]
        if last:
            return
