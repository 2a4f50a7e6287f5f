"""Reading incompressible payloads: zstd frames of raw blocks, by slicing.

zstd stores data it cannot compress (JPEG, video, encrypted or random bytes)
in *raw* blocks: the bytes themselves after a 3-byte header. Decoding such a
block is a copy, so a decoder costs a second pass over the payload after the
socket read (zstandard's streaming decoder even copies it twice: into its
window, then out). ``RawBlocks`` parses the frames itself (RFC 8878: frame
headers, skippable frames, raw and RLE blocks) and reads each raw block
straight from the socket into the bytes object it returns (http.client
allocates it and receives into it): one copy, as a plain download. (Reading
1 MiB at a time into a reused buffer and copying the blocks out costs fewer
socket reads but a second copy: it measured 5-20% more CPU.)

Any zstd stream still reads correctly. A frame that needs zstd (a checksum,
a dictionary, or a window over ``MAX_WINDOW``) goes to zstandard's streaming
reader from its first byte on. A compressed block inside a frame read so far
by slicing goes there too, preceded by a frame that replays the frame's last
window of output as raw blocks (matches may reach back that far), whose
output is then skipped; the rest of the stream is read by zstandard.
"""

from __future__ import annotations

import io
from collections import deque
from typing import IO, TYPE_CHECKING, Final, Protocol, cast

import zstandard

from django_objectstore.client._frames import Prefixed, truncated
from django_objectstore.client._io import BLOCK_SIZE
from django_objectstore.client._zstd import (
    BLOCK_HEADER,
    BLOCK_RAW,
    BLOCK_RESERVED,
    BLOCK_RLE,
    MAGIC,
    RAW_BLOCK,
    SKIPPABLE_HEADER,
    block_size,
    frame_header,
    frame_header_length,
    frame_info,
    is_skippable,
    parse_block_header,
    raw_block_header,
)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["MAX_WINDOW", "RawBlocks", "Source"]

#: Largest window of a frame read by slicing: the output kept for a switch to
#: zstandard is at most this (level 3 uses 2 MiB or less, raw frames 128 KiB).
MAX_WINDOW: Final = 8 * 1024 * 1024


class Source(Protocol):
    """Where the stream comes from (a ``ResponseStream``)."""

    def read_direct(self, size: int) -> bytes: ...

    def close(self) -> None: ...


class RawBlocks(io.RawIOBase):
    """The decoded bytes of the zstd stream ``prefix`` + ``stream``. ``read``
    returns at most one block (128 KiB), fewer bytes than asked for."""

    def __init__(self, prefix: memoryview, stream: Source) -> None:
        super().__init__()
        self._prefix = prefix
        self._stream = stream
        self._block_left = 0  # bytes of the current raw block not handed out
        self._rle: tuple[bytes, int] | None = None  # byte and count left
        self._in_frame = False
        self._last = False  # the current block ends its frame
        self._window = 0
        self._history: deque[bytes] = deque()  # this frame's recent output
        self._history_size = 0
        self._zstd: IO[bytes] | None = None  # once zstandard reads the rest
        self._skip = 0  # replayed output zstandard gives back first

    def readable(self) -> bool:
        return True

    # -- source ------------------------------------------------------------

    def _read(self, size: int) -> bytes:
        if self._prefix:
            data = bytes(self._prefix[:size])
            self._prefix = self._prefix[size:]
            return data
        return self._stream.read_direct(size)

    def _exact(self, size: int, *, eof_ok: bool = False) -> bytes:
        data = self._read(size)
        while len(data) < size:
            more = self._read(size - len(data))
            if not more:
                if eof_ok and not data:
                    return b""
                raise truncated()
            data += more
        return data

    # -- frames --------------------------------------------------------------

    def _hand_over(self, replay: bytes, skip: int = 0) -> None:
        """Let zstandard read ``replay`` and then the rest of the source."""
        rest = cast(IO[bytes], _Source(self))
        self._zstd = zstandard.ZstdDecompressor().stream_reader(
            cast(IO[bytes], Prefixed(replay, rest)), read_size=BLOCK_SIZE, read_across_frames=True
        )
        self._skip = skip
        self._history.clear()

    def _next_block(self) -> bool:
        """Set up the next raw or RLE block; False at the end of the stream
        or once zstandard reads the rest."""
        while True:
            if self._in_frame and not self._last:
                header = self._exact(BLOCK_HEADER)
                self._last, kind, _ = parse_block_header(header)
                if kind == BLOCK_RAW:
                    self._block_left = block_size(header)
                elif kind == BLOCK_RLE:
                    self._rle = (self._exact(1), block_size(header))
                elif kind == BLOCK_RESERVED:
                    raise zstandard.ZstdError("corrupt zstd data: reserved block type")
                else:  # compressed: replay the window, then zstandard decodes
                    self._switch_mid_frame(header)
                    return False
                return True
            self._in_frame = False
            magic = self._exact(4, eof_ok=True)
            if not magic:
                return False
            if is_skippable(magic):
                length = int.from_bytes(self._exact(SKIPPABLE_HEADER - 4), "little")
                while length:
                    length -= len(self._exact(min(length, BLOCK_SIZE)))
                continue
            if magic != MAGIC:
                self._hand_over(magic)  # not zstd: zstandard says so
                return False
            descriptor = self._exact(1)
            header = magic + descriptor + self._exact(frame_header_length(descriptor[0]) - 5)
            window, checksum, dictionary = frame_info(header)
            if checksum or dictionary or window > MAX_WINDOW:
                self._hand_over(header)  # this frame needs zstd itself
                return False
            self._in_frame, self._last, self._window = True, False, window
            self._history.clear()
            self._history_size = 0

    def _switch_mid_frame(self, block: bytes) -> None:
        """Hand zstandard a frame that replays this frame's last window of
        output as raw blocks and goes on with ``block`` and the rest."""
        replayed = b"".join(self._history)
        parts = [frame_header(self._window)]
        for start in range(0, len(replayed), RAW_BLOCK):
            piece = replayed[start : start + RAW_BLOCK]
            parts += [raw_block_header(len(piece), False), piece]
        self._hand_over(b"".join([*parts, block]), skip=len(replayed))

    def _remember(self, data: bytes) -> bytes:
        """Keep ``data`` as recent output of the frame (references only)."""
        history = self._history
        history.append(data)
        self._history_size += len(data)
        while history and self._history_size - len(history[0]) >= self._window:
            self._history_size -= len(history.popleft())
        return data

    # -- reading -------------------------------------------------------------

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("I/O operation on closed payload stream")
        if size is None or size < 0:
            return self.readall()
        while size:
            if self._zstd is not None:
                return self._read_zstd(size)
            if self._block_left:
                data = self._read(min(size, self._block_left))
                if not data:
                    raise truncated()
                self._block_left -= len(data)
                return self._remember(data)
            if self._rle is not None:
                byte, left = self._rle
                count = min(size, left, BLOCK_SIZE)
                self._rle = (byte, left - count) if left > count else None
                return self._remember(byte * count)
            if not self._next_block() and self._zstd is None:
                return b""
        return b""

    def _read_zstd(self, size: int) -> bytes:
        assert self._zstd is not None
        while self._skip:
            skipped = len(self._zstd.read(min(self._skip, BLOCK_SIZE)))
            if not skipped:
                raise truncated()
            self._skip -= skipped
        return self._zstd.read(size)

    def readall(self) -> bytes:
        chunks = []
        while chunk := self.read(BLOCK_SIZE):
            chunks.append(chunk)
        return b"".join(chunks)

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(view.nbytes)
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._zstd is not None:
                self._zstd.close()
            self._stream.close()
        finally:
            super().close()


class _Source(io.RawIOBase):
    """What ``RawBlocks`` has not read yet, for zstandard."""

    def __init__(self, owner: RawBlocks) -> None:
        super().__init__()
        self._owner = owner

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._owner._read(BLOCK_SIZE if size is None or size < 0 else size)

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(view.nbytes)
        view[: len(data)] = data
        return len(data)
