"""Parallel decompression of multi-frame zstd payloads.

Objects written by a parallel put are a sequence of independent zstd frames,
one per part, each recording its decompressed size. This reader finds frame
boundaries from the block headers (RFC 8878, section 3.1), lets a small
thread pool decompress several frames at once (zstd releases the GIL) while
the calling thread keeps reading the network, and hands the output back in
order. At most ``MAX_IN_FLIGHT`` frames of at most ``MAX_FRAME_CONTENT`` bytes
are held, so memory stays bounded.

A frame without a recorded size (what single-request uploads produce) or a
larger one switches the reader, from that point on, to ordinary streaming
decompression, so every valid payload decodes exactly as before.
"""

from __future__ import annotations

import io
import os
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any, Final

import zstandard

from django_objectstore.client._io import BLOCK_SIZE, PageBuffer

__all__ = ["FrameParallelReader", "frame_extent"]

_MAGIC: Final = b"\x28\xb5\x2f\xfd"
#: Frames with a larger recorded size are decompressed by streaming instead.
MAX_FRAME_CONTENT: Final = 8 * 1024 * 1024
#: Frames decompressed (or waiting to be read) at once per payload.
MAX_IN_FLIGHT: Final = 2
# Parallel decoding pays only when frames expand by at least this factor.
_WORTH_IT: Final = 1.2
_FCS_BYTES: Final = (0, 2, 4, 8)
_DICT_ID_BYTES: Final = (0, 1, 2, 4)

_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            workers = max(2, min(4, os.cpu_count() or 2))
            _pool = ThreadPoolExecutor(workers, thread_name_prefix="objectstore-decompress")
        return _pool


def frame_extent(buffer: bytes | bytearray, start: int = 0) -> tuple[int, int | None] | None:
    """For the zstd (or skippable) frame at ``buffer[start:]``, return its end
    offset and its recorded content size (``None`` when not recorded; 0 for a
    skippable frame), or ``None`` when the buffer does not hold the whole
    frame yet. Raises ``ValueError`` for data that is not a zstd frame."""
    size = len(buffer)
    if size - start < 4:
        return None
    magic = bytes(buffer[start : start + 4])
    if magic[1:] == b"\x2a\x4d\x18" and magic[0] & 0xF0 == 0x50:  # skippable frame
        if size - start < 8:
            return None
        length = int.from_bytes(buffer[start + 4 : start + 8], "little")
        end = start + 8 + length
        return (end, 0) if end <= size else None
    if magic != _MAGIC:
        raise ValueError("not a zstd frame")
    pos = start + 4
    if pos >= size:
        return None
    descriptor = buffer[pos]
    pos += 1
    single_segment = bool(descriptor & 0x20)
    fcs_flag = descriptor >> 6
    fcs_bytes = 1 if fcs_flag == 0 and single_segment else _FCS_BYTES[fcs_flag]
    header_rest = (0 if single_segment else 1) + _DICT_ID_BYTES[descriptor & 0x03]
    pos += header_rest
    if pos + fcs_bytes > size:
        return None
    content: int | None = None
    if fcs_bytes:
        content = int.from_bytes(buffer[pos : pos + fcs_bytes], "little")
        if fcs_bytes == 2:
            content += 256
    pos += fcs_bytes
    while True:
        if pos + 3 > size:
            return None
        header = int.from_bytes(buffer[pos : pos + 3], "little")
        pos += 3
        block_type = (header >> 1) & 0x03
        block_size = header >> 3
        if block_type == 3:
            raise ValueError("reserved zstd block type")
        pos += 1 if block_type == 1 else block_size
        if header & 1:  # last block
            break
    if descriptor & 0x04:  # content checksum
        pos += 4
    return (pos, content) if pos <= size else None


def _decompress(frame: PageBuffer, content_size: int) -> PageBuffer:
    """Decode one frame into a page buffer (see ``PageBuffer`` for why)."""
    out = PageBuffer(content_size)
    try:
        with frame.view() as source:
            reader: Any = zstandard.ZstdDecompressor().stream_reader(source)
            with reader:
                out.fill_from(reader.readinto)
        if out.size != content_size:
            raise zstandard.ZstdError(
                f"a zstd frame decoded to {out.size} bytes, but its header says {content_size}"
            )
    except BaseException:
        out.close()
        raise
    finally:
        frame.close()
    return out


def _close_result(future: Future[PageBuffer]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()


class _Chain(io.RawIOBase):
    """``head`` bytes, then the rest of ``tail``."""

    def __init__(self, head: bytes, tail: IO[bytes]) -> None:
        super().__init__()
        self._head: memoryview | None = memoryview(head) if head else None
        self._tail = tail

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if self._head is not None:
            if size is None or size < 0 or size >= len(self._head):
                data, self._head = bytes(self._head), None
                return data
            data, self._head = bytes(self._head[:size]), self._head[size:]
            return data
        return self._tail.read(-1 if size is None else size)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._tail.close()
        super().close()


class FrameParallelReader(io.RawIOBase):
    """Decompressed view of a zstd payload ``raw``; see the module docstring."""

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self._raw = raw
        self._buffer = bytearray()
        self._raw_eof = False
        self._pending: deque[Future[PageBuffer]] = deque()
        self._out = memoryview(b"")
        self._out_buffer: PageBuffer | None = None
        self._stream: Any = None  # streaming fallback for the rest

    def readable(self) -> bool:
        return True

    def _switch_to_streaming(self) -> None:
        source: Any = _Chain(bytes(self._buffer), self._raw)
        self._buffer = bytearray()
        self._stream = zstandard.ZstdDecompressor().stream_reader(
            source, read_size=BLOCK_SIZE, read_across_frames=True
        )

    def _fill(self) -> None:
        """Queue complete frames until enough are in flight."""
        while self._stream is None and len(self._pending) < MAX_IN_FLIGHT:
            try:
                extent = frame_extent(self._buffer)
            except ValueError:
                extent = None
                self._switch_to_streaming()  # let zstd report the damage
                return
            if extent is None:
                if self._raw_eof:
                    if self._buffer:
                        raise zstandard.ZstdError(
                            f"the payload ends inside a zstd frame ({len(self._buffer)} bytes "
                            "of an incomplete frame): the object is truncated or damaged"
                        )
                    return
                if len(self._buffer) > MAX_FRAME_CONTENT + BLOCK_SIZE:
                    self._switch_to_streaming()
                    return
                block = self._raw.read(BLOCK_SIZE)
                if block:
                    self._buffer += block
                else:
                    self._raw_eof = True
                continue
            end, content = extent
            if content is None or content > MAX_FRAME_CONTENT:
                self._switch_to_streaming()
                return
            if content and content < end * _WORTH_IT:
                # Barely compressed (stored blocks): decoding is a copy, so
                # handing frames to threads would cost more than it saves.
                self._switch_to_streaming()
                return
            frame = PageBuffer(end)
            with memoryview(self._buffer) as view:
                frame.write(view[:end])
            del self._buffer[:end]
            if content == 0:
                frame.close()  # skippable or empty frame: nothing to decode
                continue
            self._pending.append(_executor().submit(_decompress, frame, content))

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("I/O operation on closed payload stream")
        if size is None or size < 0:
            return self.readall()
        if size == 0:
            return b""
        while True:
            if self._out:
                data = bytes(self._out[:size])
                self._out = self._out[size:]
                return data
            self._release_out()
            self._fill()
            if self._pending:
                self._out_buffer = self._pending.popleft().result()
                self._out = self._out_buffer.view()
                continue
            if self._stream is not None:
                return bytes(self._stream.read(size))
            return b""

    def readall(self) -> bytes:
        blocks: list[bytes] = []
        while block := self.read(BLOCK_SIZE * 4):
            blocks.append(block)
        return b"".join(blocks)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(view.nbytes)
        view[: len(data)] = data
        return len(data)

    def _release_out(self) -> None:
        if self._out_buffer is not None:
            self._out.release()
            self._out = memoryview(b"")
            self._out_buffer.close()
            self._out_buffer = None

    def close(self) -> None:
        if self.closed:
            return
        for future in self._pending:
            if not future.cancel():
                future.add_done_callback(_close_result)
        self._pending.clear()
        self._release_out()
        if self._stream is not None:
            self._stream.close()
        else:
            self._raw.close()
        super().close()
