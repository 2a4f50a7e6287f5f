"""Reading incompressible payloads: zstd frames of raw blocks, by slicing.

zstd stores data it cannot compress (JPEG, video, encrypted or random bytes)
in *raw* blocks: the bytes themselves after a 3-byte header. Decoding such a
block is a copy, and zstandard's streaming decoder even copies it twice (into
its window, then out). ``RawBlocks`` parses the frames itself (RFC 8878:
frame headers, skippable frames, raw and RLE blocks). A ``read`` of 64 KiB
or more receives raw block contents straight into the ``bytes`` it returns
(``io.BufferedReader`` hands ``readinto`` its inside): one socket read
(``recvmsg_into``) per call scatters the stream over the output and small
header buffers, guessing that full-sized raw blocks follow; where a header
proves the guess wrong, what followed it goes back to the parser. The
kernel's copy is then the only one, at about one socket read per MiB.
Smaller reads (and sources that cannot scatter) slice block contents out of
1 MiB reads into a reused buffer, one copy. (A plain read per block took 9x
the socket reads and more CPU than that copy: benchmarks/FINDINGS.md.)

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
from django_objectstore.client._io import BLOCK_SIZE, Buffer
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

__all__ = ["MAX_WINDOW", "Chunks", "RawBlocks"]

#: Largest window of a frame read by slicing: the output kept for a switch to
#: zstandard is at most this (level 3 uses 2 MiB or less, raw frames 128 KiB).
MAX_WINDOW: Final = 8 * 1024 * 1024

#: Reads at least this big receive raw block contents straight into the
#: bytes they return (smaller ones are sliced out of the 1 MiB buffer).
DIRECT_MIN: Final = 64 * 1024
#: The most one such read returns (allocated up front) and one socket read
#: scatters (a few dozen buffers, far below IOV_MAX).
DIRECT_MAX: Final = 16 * 1024 * 1024
SCATTER_MAX: Final = 4 * 1024 * 1024


class Chunks(Protocol):
    """The stream in pieces: ``read`` returns the next piece (empty at the
    end), valid until the next call; ``readinto`` fills a buffer of the
    caller's with the bytes that follow (all of it unless the stream ends)."""

    def read(self, size: int = -1, /) -> Buffer: ...

    def readinto(self, buffer: memoryview, /) -> int: ...

    def scatter_into(self, buffers: list[memoryview], /) -> int | None: ...

    def close(self) -> None: ...


class RawBlocks(io.RawIOBase):
    """The decoded bytes of the zstd stream that ``chunks`` hands out."""

    def __init__(self, chunks: Chunks) -> None:
        super().__init__()
        self._chunks = chunks
        self._buffer = memoryview(b"")
        self._position = self._end = 0
        self._block_left = 0  # bytes of the current raw block not handed out
        self._rle: tuple[bytes, int] | None = None  # byte and count left
        self._in_frame = False
        self._last = False  # the current block ends its frame
        self._window = 0
        self._history: deque[bytes] = deque()  # this frame's recent output
        self._history_size = 0
        self._zstd: IO[bytes] | None = None  # once zstandard reads the rest
        self._skip = 0  # replayed output zstandard gives back first
        self._scatter = True  # the source may take scatter_into
        # buffer_size 1: reads of any size go to _Direct.readinto whole.
        self._direct = io.BufferedReader(_Direct(self), buffer_size=1)

    def readable(self) -> bool:
        return True

    # -- source ------------------------------------------------------------

    def _read(self, size: int) -> bytes:
        """Up to ``size`` bytes of the source, copied (``b""`` at its end)."""
        if self._position == self._end:
            self._next_piece()
        start = self._position
        self._position = min(start + size, self._end)
        return bytes(self._buffer[start : self._position])

    def _next_piece(self) -> None:
        self._buffer = memoryview(self._chunks.read(BLOCK_SIZE))
        self._position = 0
        self._end = self._buffer.nbytes

    def _refill(self) -> None:
        self._next_piece()
        if not self._end:
            raise truncated()

    def _simple_block_next(self) -> bool:
        """True if the next block belongs to this frame, is raw or RLE and
        its header is in the buffer (so no refill and no switch is needed)."""
        available = self._end - self._position
        if not self._in_frame or self._last or available < BLOCK_HEADER:
            return False
        header = self._buffer[self._position : self._position + BLOCK_HEADER]
        kind = parse_block_header(header)[1]
        return kind == BLOCK_RAW or (kind == BLOCK_RLE and available > BLOCK_HEADER)

    def _next_raw_block(self) -> bool:
        """Start the next block if it is raw, in this frame and its header
        is in the buffer (True), else leave it to ``read``."""
        available = self._end - self._position
        if not self._in_frame or self._last or available < BLOCK_HEADER:
            return False
        header = self._buffer[self._position : self._position + BLOCK_HEADER]
        last, kind, _ = parse_block_header(header)
        if kind != BLOCK_RAW:
            return False
        self._position += BLOCK_HEADER
        self._last, self._block_left = last, block_size(header)
        return True

    def _receive(self, view: memoryview) -> int:
        """Raw block contents straight from the source into ``view`` (0
        where the raw blocks stop): by ``_scatter_blocks`` where the source
        can, else by one read of the rest of the block and the next block's
        header, which is kept in the buffer for the parser."""
        while not self._block_left:  # (a block may be empty)
            if self._next_raw_block():
                continue
            if not (self._scatter and self._in_frame and not self._last):
                return 0
            if self._position < self._end:
                return 0  # not a raw block: read() parses it
            # The next header is not read yet: read it with what follows.
            received = self._scatter_blocks(view[:SCATTER_MAX], 0)
            if received is None:
                self._scatter = False
                return 0
            if received:
                return received
        left = self._block_left
        if self._position < self._end:  # a header's read took more bytes
            take = min(view.nbytes, left, self._end - self._position)
            view[:take] = self._buffer[self._position : self._position + take]
            self._position += take
        elif self._scatter and view.nbytes > left + BLOCK_HEADER:
            received = self._scatter_blocks(view[: left + SCATTER_MAX], left)
            if received is not None:
                return received
            self._scatter = False
            return self._receive(view)
        else:
            count = self._chunks.readinto(view[: left + BLOCK_HEADER])
            if not count:
                raise truncated()
            take = min(count, left)
            if count > take:  # what follows the block, for the parser
                self._buffer = memoryview(bytes(view[take:count]))
                self._position, self._end = 0, count - take
        self._block_left = left - take
        return take

    def _scatter_blocks(self, view: memoryview, left: int) -> int | None:
        """Fill ``view`` by one read that puts the rest of this block (its
        ``left`` bytes) and the blocks after it, assumed raw and full-sized,
        in place, and their headers aside; bytes that prove the guess wrong
        (another block kind or size, a frame's end) go to the buffer for the
        parser. None if the source cannot read so."""
        buffers = [view[:left]] if left else []
        first, start = len(buffers), left
        while True:
            buffers.append(memoryview(bytearray(BLOCK_HEADER)))
            if self._last or start == view.nbytes:
                break
            buffers.append(view[start : start + RAW_BLOCK])
            start += buffers[-1].nbytes
            if buffers[-1].nbytes < RAW_BLOCK:
                break  # the view ends inside this block
        count = self._chunks.scatter_into(buffers)
        if count is None:
            return None
        if not count:
            raise truncated()
        placed = min(count, left)
        self._block_left = left - placed
        rest, index = count - placed, first
        while rest and not self._last and not self._block_left:
            header = buffers[index]
            content = buffers[index + 1] if index + 1 < len(buffers) else view[:0]
            last, kind, _ = parse_block_header(header)
            size = block_size(header)
            if rest < BLOCK_HEADER or kind != BLOCK_RAW or size < content.nbytes:
                break  # not the guessed block: parsed from the buffer
            got = min(rest - BLOCK_HEADER, content.nbytes)
            self._last, self._block_left = last, size - got
            placed, rest, index = placed + got, rest - BLOCK_HEADER - got, index + 2
        if rest:  # the bytes after those placed, in stream order
            after, wanted = [], rest
            for piece in buffers[index:]:
                after.append(piece[:wanted])
                wanted -= after[-1].nbytes
            self._buffer, self._position, self._end = memoryview(b"".join(after)), 0, rest
        return placed

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
        pieces: list[Buffer] = []  # views of the buffer, joined (copied) once
        wanted = size
        while wanted:
            if self._zstd is not None:
                return self._read_zstd(size)
            if self._block_left:
                if self._position == self._end:
                    if pieces:
                        break  # a refill overwrites what the views show
                    if size >= DIRECT_MIN:
                        # Received straight into the bytes handed out.
                        return self._remember(self._direct.read(min(size, DIRECT_MAX)))
                    self._refill()
                take = min(wanted, self._block_left, self._end - self._position)
                pieces.append(self._buffer[self._position : self._position + take])
                self._position += take
                self._block_left -= take
                wanted -= take
            elif self._rle is not None:
                byte, left = self._rle
                count = min(wanted, left, BLOCK_SIZE)
                self._rle = (byte, left - count) if left > count else None
                pieces.append(byte * count)
                wanted -= count
            elif pieces and not self._simple_block_next():
                break  # a frame's end, a refill or zstandard: return what we have
            elif not self._next_block() and self._zstd is None:
                break
        return self._remember(b"".join(pieces)) if pieces else b""

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
            self._chunks.close()
        finally:
            super().close()


class _Direct(io.RawIOBase):
    """Raw block contents for ``io.BufferedReader``, which hands ``readinto``
    the inside of the ``bytes`` it then returns: received without a copy."""

    def __init__(self, owner: RawBlocks) -> None:
        super().__init__()
        self._owner = owner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        return self._owner._receive(memoryview(buffer).cast("B"))


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
