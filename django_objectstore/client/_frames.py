"""Parallel decompression of objects stored as many small zstd frames.

Large puts store one zstd frame per ``FRAME_SIZE`` bytes of input, each
recording its decompressed size (see ``_parallel``). ``FrameDecoder`` reads
such a stream frame by frame - finding where each frame ends from its
block headers, without decompressing - and decompresses up to ``threads``
frames at once on worker threads (zstd releases the GIL), handing the
results out in order. Each frame is decoded in one pass into a buffer that
is used again for later frames: a fresh ``bytes`` per frame, allocated on a
worker thread and freed on the reader's, made the allocator hand back and
fault in about a page per 4 KiB of output (13,800 minor faults per 64 MiB
get against 5,900, benchmarks/FINDINGS.md). Memory stays near
``2 x (threads + 2)`` frames.

Frames it cannot decode whole (size not recorded, as in streamed uploads,
or larger than ``MAX_FRAME``) are not its business: from the first such
frame on, the rest of the stream goes through zstandard's own streaming
reader, so any zstd stream reads correctly, just not in parallel.
"""

from __future__ import annotations

import io
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, TYPE_CHECKING, Final, Protocol, cast

import zstandard

from django_objectstore.client._io import BLOCK_SIZE, Buffer, check_same_process
from django_objectstore.client._zstd import (
    BLOCK_HEADER,
    BLOCK_RESERVED,
    CHECKSUM,
    MAGIC,
    MAX_FRAME_HEADER,
    parse_block_header,
)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["MAX_FRAME", "FrameDecoder", "Prefixed", "starts_with_sized_frame", "truncated"]

#: Largest recorded frame size decompressed whole (in memory).
MAX_FRAME: Final = 4 * 1024 * 1024

# A frame of at most MAX_FRAME bytes cannot be much bigger compressed: raw
# blocks add 3 bytes per 128 KiB. Anything longer is corrupt.
_MAX_COMPRESSED: Final = MAX_FRAME + MAX_FRAME // 1024 + 1024

# Decode buffers are allocated in multiples of this.
_ROUND: Final = 256 * 1024


class Prefixed(io.RawIOBase):
    """``prefix`` followed by the rest of ``source``."""

    def __init__(self, prefix: bytes, source: IO[bytes]) -> None:
        super().__init__()
        self._prefix = memoryview(prefix)
        self._source = source

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes | memoryview:
        if self._prefix:
            if size is None or size < 0:
                size = self._prefix.nbytes
            head = self._prefix[:size]
            self._prefix = self._prefix[size:]
            return head
        # Passed through as it comes (ReadAhead hands out views: no copy).
        return self._source.read(size if size is not None else -1)

    def readinto(self, buffer: WriteableBuffer) -> int:
        data = self.read(memoryview(buffer).nbytes)
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._source.close()
        super().close()


def truncated() -> zstandard.ZstdError:
    return zstandard.ZstdError(
        "zstd data ends in the middle of a frame: the stored object is truncated"
    )


def _spare_buffer(spare: list[bytearray], size: int) -> bytearray:
    """A buffer of at least ``size`` bytes from ``spare``, or a new one."""
    for index, buffer in enumerate(spare):
        if len(buffer) >= size:
            return spare.pop(index)
    # Rounded up so that frames of slightly different sizes share buffers.
    return bytearray(-(-size // _ROUND) * _ROUND)


def _decode(frame: memoryview, into: memoryview) -> memoryview:
    """Decompress ``frame`` (one whole frame recording its size, which
    ``into`` has) into ``into``. zstd decodes it in a single pass straight
    into ``into`` (no window copy) and checks size and checksum."""
    reader = zstandard.ZstdDecompressor().stream_reader(frame)
    count = 0
    while count < into.nbytes:
        got = reader.readinto(into[count:])
        if not got:
            raise truncated()
        count += got
    if reader.read(1):  # decodes the rest: an empty frame is checked here
        raise zstandard.ZstdError("corrupt zstd data: a frame holds more than its recorded size")
    return into


def _whole_frame(header: bytes) -> zstandard.FrameParameters | None:
    """The parameters of the zstd frame starting with ``header`` when
    ``FrameDecoder`` decodes it whole (its size is recorded and at most
    ``MAX_FRAME``), else None (also for an unreadable header)."""
    try:
        params = zstandard.get_frame_parameters(header)
    except zstandard.ZstdError:
        return None
    size = params.content_size
    return params if size != zstandard.CONTENTSIZE_UNKNOWN and 0 <= size <= MAX_FRAME else None


def starts_with_sized_frame(data: memoryview) -> bool:
    """True if ``data`` begins with a zstd frame that ``FrameDecoder``
    decodes whole (it records a size of at most ``MAX_FRAME``)."""
    return data[:4].tobytes() == MAGIC and _whole_frame(bytes(data[:MAX_FRAME_HEADER])) is not None


class Compressed(Protocol):
    """What ``FrameDecoder`` reads: a binary stream that can ``readinto``."""

    def read(self, size: int = -1, /) -> bytes: ...

    def readinto(self, buffer: memoryview, /) -> int: ...

    def close(self) -> None: ...


class FrameDecoder(io.RawIOBase):
    """The decompressed bytes of ``buffered`` and then the zstd stream
    ``source`` (a readable binary stream; closed with this one). Compressed
    bytes are read with ``readinto`` into one reused block."""

    def __init__(self, source: Compressed, threads: int, *, buffered: Buffer = b"") -> None:
        super().__init__()
        self._source = source
        self._block: memoryview | None = None  # made on the first read
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None
        # Frames being decoded: the result, and the buffer of the input.
        self._frames: deque[tuple[Future[memoryview], bytearray]] = deque()
        self._spare_in: list[bytearray] = []  # buffers free for reuse
        self._spare_out: list[bytearray] = []
        self._buffer = bytearray(buffered)  # compressed bytes read but not yet framed
        self._source_done = False
        self._splitting = True
        self._rest: zstandard.ZstdDecompressionReader | None = None  # once needed
        # A view of the decode buffer of the frame being read (of b"" else).
        self._current = memoryview(b"")
        self._pid = os.getpid()  # the worker threads do not survive a fork

    def readable(self) -> bool:
        return True

    # -- splitting ---------------------------------------------------------

    def _have(self, count: int) -> bool:
        """Read until ``count`` compressed bytes are buffered; False if the
        source ends first."""
        while len(self._buffer) < count and not self._source_done:
            if self._block is None:
                self._block = memoryview(bytearray(BLOCK_SIZE))
            got = self._source.readinto(self._block)
            if not got:
                self._source_done = True
            else:
                self._buffer += self._block[:got]
        return len(self._buffer) >= count

    def _stream_the_rest(self) -> None:
        """Hand the buffered bytes and the rest of the source to zstandard's
        streaming reader."""
        self._splitting = False
        prefix, self._buffer = bytes(self._buffer), bytearray()
        self._rest = zstandard.ZstdDecompressor().stream_reader(
            cast(IO[bytes], Prefixed(prefix, cast(IO[bytes], self._source))),
            read_size=BLOCK_SIZE,
            read_across_frames=True,
        )

    def _frame_length(self) -> tuple[int, int] | None:
        """Compressed and decompressed sizes of the frame at the start of the
        buffer when it can be decoded whole (its size is recorded and small),
        else None."""
        buffer = self._buffer
        if buffer[:4] != MAGIC:
            return None  # skippable frames, garbage: the streaming reader decides
        self._have(MAX_FRAME_HEADER)
        header = bytes(buffer[:MAX_FRAME_HEADER])
        params = _whole_frame(header)
        if params is None:
            return None
        try:
            position = zstandard.frame_header_size(header)
        except zstandard.ZstdError:
            return None
        while True:
            if not self._have(position + BLOCK_HEADER):
                raise truncated()
            last, kind, size = parse_block_header(buffer[position : position + BLOCK_HEADER])
            if kind == BLOCK_RESERVED:
                return None  # corrupt
            position += BLOCK_HEADER + size
            if position > _MAX_COMPRESSED:
                return None
            if last:
                break
        if params.has_checksum:
            position += CHECKSUM
        if not self._have(position):
            raise truncated()
        return position, params.content_size

    def _fill(self) -> None:
        """Keep ``threads + 1`` frames in flight while frames qualify."""
        while self._splitting and len(self._frames) <= self._threads:
            if not self._have(4):
                if self._buffer:
                    self._stream_the_rest()  # a few stray bytes: zstd's error
                else:
                    self._splitting = False
                return
            sizes = self._frame_length()
            if sizes is None:
                self._stream_the_rest()
                return
            length, size = sizes
            source = _spare_buffer(self._spare_in, length)
            with memoryview(self._buffer) as view:
                source[:length] = view[:length]
            del self._buffer[:length]
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self._threads, thread_name_prefix="objectstore-unzstd"
                )
            frame = memoryview(source)[:length]
            into = memoryview(_spare_buffer(self._spare_out, size))[:size]
            self._frames.append((self._pool.submit(_decode, frame, into), source))

    # -- reading -----------------------------------------------------------

    def _next(self) -> bool:
        """Make ``_current`` a non-empty decoded frame, or return False: at
        the end of the stream, or once zstandard's reader has the rest (read
        it directly then, see ``_streaming``)."""
        while not self._current:
            used = self._current.obj  # an emptied view still names its buffer
            if isinstance(used, bytearray):  # a frame read to its end
                self._spare_out.append(used)
                self._current = memoryview(b"")
            self._fill()
            if not self._frames:
                return False
            future, source = self._frames.popleft()
            self._current = future.result()
            self._spare_in.append(source)
        return True

    def _streaming(self) -> bool:
        """True when everything left comes from zstandard's reader."""
        return self._rest is not None and not self._current and not self._frames

    def _take(self, size: int) -> bytes:
        data = bytes(self._current[:size])
        self._current = self._current[len(data) :]
        return data

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("I/O operation on closed payload stream")
        check_same_process(self._pid)
        if size is None or size < 0:
            return self.readall()
        if size == 0:
            return b""
        if self._next():
            return self._take(size)
        if self._streaming():
            assert self._rest is not None
            return self._rest.read(size)  # decompressed straight into the result
        return b""

    def readall(self) -> bytes:
        check_same_process(self._pid)
        chunks: list[Buffer] = []
        while self._next():
            # The decoded frame itself, joined once below: its buffer is not
            # used again (the join would read bytes decoded after it).
            chunks.append(self._current)
            self._current = memoryview(b"")
        if self._streaming():
            assert self._rest is not None
            chunks.append(self._rest.read())
        return b"".join(chunks)

    def readinto(self, buffer: WriteableBuffer) -> int:
        check_same_process(self._pid)
        view = memoryview(buffer).cast("B")
        if not view.nbytes:
            return 0
        if self._next():
            data = self._current[: view.nbytes]
            view[: data.nbytes] = data
            self._current = self._current[data.nbytes :]
            return data.nbytes
        if self._streaming():
            assert self._rest is not None
            return int(self._rest.readinto(view))
        return 0

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
            self._frames.clear()
            self._current = memoryview(b"")
            if self._rest is not None:
                self._rest.close()  # type: ignore[no-untyped-call]  # untyped in the stubs
            else:
                self._source.close()
        finally:
            super().close()
