"""Streaming plumbing: request bodies read in big blocks (compressed on the
fly when asked), and response payloads that read in big blocks and give the
connection back to the pool. Nothing here holds more than a block or two."""

from __future__ import annotations

import http.client
import io
import json
import queue
import ssl
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import IO, Any, Final, TypeAlias, cast

import urllib3
import zstandard

from django_objectstore.client.errors import ObjectstoreConnectionError, transport_error

__all__ = [
    "BLOCK_SIZE",
    "READ_AHEAD_BLOCKS",
    "Body",
    "ReadAhead",
    "ResponseStream",
    "body_chunks",
    "compress_small",
    "iter_source",
    "known_size",
    "read_json",
    "translate_transport_error",
]

#: Read and write block size: large enough that per-block Python overhead
#: is negligible next to the copy, small enough to stay cache-friendly.
BLOCK_SIZE: Final = 1024 * 1024

#: Size of the pieces of a chunked request body.
SEND_CHUNK: Final = 64 * 1024

# The official client's zstd settings (level 3, no content size in the frame
# header since the stream length is unknown). Single-request puts use these
# so the stored bytes are identical to the official client's.
ZSTD_LEVEL: Final = 3

#: A block of bytes, sliced or read.
Buffer: TypeAlias = bytes | bytearray | memoryview
#: Anything ``Session.put`` accepts as contents.
Body: TypeAlias = bytes | bytearray | memoryview | IO[bytes] | Iterable[bytes]


def read_json(response: urllib3.response.HTTPResponse) -> Any:
    """The JSON document in a (preloaded) response body."""
    return json.loads(response.data or b"null")


def translate_transport_error(exc: Exception, what: str) -> ObjectstoreConnectionError:
    """The one seam where transport errors become ours: urllib3's error (or,
    for the socket reads that bypass urllib3, the error urllib3 would have
    raised) as an ``ObjectstoreConnectionError`` of the same class."""
    if not isinstance(exc, urllib3.exceptions.HTTPError):
        exc = _as_urllib3_error(exc)
    return transport_error(exc, what)


def _as_urllib3_error(exc: Exception) -> urllib3.exceptions.HTTPError:
    """What urllib3's response reader raises for ``exc`` from the socket."""
    if isinstance(exc, TimeoutError):
        return urllib3.exceptions.ReadTimeoutError(None, None, "Read timed out.")  # type: ignore[arg-type]
    if isinstance(exc, ssl.SSLError):
        return urllib3.exceptions.SSLError(exc)
    return urllib3.exceptions.ProtocolError(f"Connection broken: {exc!r}", exc)


def known_size(contents: object) -> int | None:
    """Bytes left in ``contents`` if that is cheap to tell, else ``None``."""
    if isinstance(contents, bytes | bytearray):
        return len(contents)
    if isinstance(contents, memoryview):
        return contents.nbytes
    seekable = getattr(contents, "seekable", None)
    try:
        if callable(seekable) and seekable():
            position: int = contents.tell()  # type: ignore[attr-defined]
            end: int = contents.seek(0, io.SEEK_END)  # type: ignore[attr-defined]
            contents.seek(position)  # type: ignore[attr-defined]
            return max(end - position, 0)
    except (OSError, ValueError, AttributeError):
        return None
    return None


def iter_source(
    contents: Body, block_size: int = BLOCK_SIZE, *, reuse: bool = False
) -> Iterator[Buffer]:
    """Yield the contents in blocks of at most ``block_size`` bytes (iterables
    are passed through as they come). Byte strings are sliced without copying.
    With ``reuse``, file blocks are read into one buffer that the next block
    overwrites (no allocation per block): the consumer must be done with a
    block before asking for the next."""
    if isinstance(contents, bytes | bytearray | memoryview):
        view = memoryview(contents).cast("B")
        for start in range(0, view.nbytes, block_size):
            yield view[start : start + block_size]
        return
    readinto = getattr(contents, "readinto", None) if reuse else None
    if callable(readinto):
        buffer = bytearray(block_size)
        window = memoryview(buffer)
        while True:
            count = readinto(window)
            if count is None:
                raise TypeError("put() cannot read from a non-blocking stream with no data ready")
            if not count:
                return
            yield window[:count]
    read = getattr(contents, "read", None)
    if callable(read):
        while True:
            block: object = read(block_size)
            if not block:
                return
            if not isinstance(block, bytes | bytearray | memoryview):
                raise TypeError(
                    f"put() needs a binary stream, but read() returned {type(block).__name__}; "
                    "open files in binary mode ('rb')"
                )
            yield block
    if isinstance(cast(object, contents), str):
        raise TypeError("put() needs bytes or a binary stream, not str; encode it first")
    for item in contents:
        block = cast(object, item)
        if not isinstance(block, bytes | bytearray | memoryview):
            raise TypeError(
                f"put() got an iterable yielding {type(block).__name__}; it must yield bytes"
            )
        if block:
            yield block


_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    # Contexts are costly to set up and safe to reuse, one thread at a time.
    made: zstandard.ZstdCompressor | None = getattr(_local, "compressor", None)
    if made is None:
        made = _local.compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    return made


def compress_small(data: Buffer) -> bytes:
    """One zstd frame, byte-identical to what :func:`body_chunks` streams.
    Synchronous, so the per-thread context is never used twice at once."""
    stream: Any = _compressor().compressobj()
    return bytes(stream.compress(data) + stream.flush())


class _Counter:
    """Counts bytes flowing through a generator (for metrics)."""

    __slots__ = ("source", "stored")

    def __init__(self) -> None:
        self.source = 0
        self.stored = 0


def body_chunks(
    contents: Body,
    *,
    compress: bool,
    counter: _Counter | None = None,
    block_size: int = BLOCK_SIZE,
) -> Iterator[Buffer]:
    """A chunked request body: the source read in big blocks, zstd-compressed
    on the fly (one frame, official settings) when ``compress`` is true, sent
    in ``SEND_CHUNK`` pieces (urllib3 copies each piece into its chunk framing:
    small pieces keep that copy in reused heap memory)."""
    counter = counter if counter is not None else _Counter()
    if not compress:
        for block in iter_source(contents, block_size, reuse=True):
            view = memoryview(block).cast("B")
            counter.source += view.nbytes
            counter.stored += view.nbytes
            for start in range(0, view.nbytes, SEND_CHUNK):
                yield view[start : start + SEND_CHUNK]
        return
    # A context of its own: the generator may be suspended while other
    # compression happens on this thread.
    chunker: Any = zstandard.ZstdCompressor(level=ZSTD_LEVEL).chunker(chunk_size=SEND_CHUNK)
    for block in iter_source(contents, block_size, reuse=True):
        counter.source += memoryview(block).nbytes
        for out in chunker.compress(block):
            counter.stored += len(out)
            yield out
    for out in chunker.finish():
        counter.stored += len(out)
        yield out


class ResponseStream(io.RawIOBase):
    """A response body as a readable binary stream. Reads go straight to the
    socket in the caller's block size; at end of stream the connection goes
    back to the pool, and closing early discards it (never reads the rest)."""

    def __init__(
        self, response: urllib3.response.HTTPResponse, *, limit: int | None = None
    ) -> None:
        super().__init__()
        self._response = response
        self._remaining = limit  # bytes still to hand out, when cut short
        self._eof = False

    def readable(self) -> bool:
        return True

    def _finish(self, *, drained: bool = True) -> None:
        if not self._eof:
            self._eof = True
            if not drained:
                # Data is left on the wire: the connection cannot be reused.
                self._response.close()
            self._response.release_conn()

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("I/O operation on closed payload stream")
        if size is None or size < 0:
            return self.readall()
        if self._eof or size == 0:
            return b""
        if self._remaining is not None:
            size = min(size, self._remaining)
            if size == 0:
                self._finish(drained=False)
                return b""
        try:
            data: bytes = self._response.read(size)
        except urllib3.exceptions.HTTPError as exc:
            self._response.close()
            raise translate_transport_error(exc, "payload read") from exc
        if not data:
            self._finish()
        elif self._remaining is not None:
            self._remaining -= len(data)
        return data

    def readall(self) -> bytes:
        blocks: list[bytes] = []
        while block := self.read(BLOCK_SIZE):
            blocks.append(block)
        return b"".join(blocks)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        fp = getattr(self._response, "_fp", None)
        if self._remaining is not None or not isinstance(fp, http.client.HTTPResponse):
            data = self.read(view.nbytes)
            view[: len(data)] = data
            return len(data)
        # Straight from the socket into the caller's buffer (urllib3 would
        # read into a buffer of its own and copy).
        if self.closed:
            raise ValueError("I/O operation on closed payload stream")
        if self._eof or not view.nbytes:
            return 0
        try:
            count = fp.readinto(view)
        except (OSError, http.client.HTTPException) as exc:
            self._response.close()
            raise translate_transport_error(exc, "payload read") from exc
        if count:
            return count
        if not fp.chunked and fp.length:  # http.client does not complain
            self._response.close()
            # What urllib3 raises for a body shorter than its Content-Length.
            total = int(self._response.headers.get("content-length") or 0)
            short = urllib3.exceptions.IncompleteRead(max(total - fp.length, 0), fp.length)
            broken = urllib3.exceptions.ProtocolError(f"Connection broken: {short!r}", short)
            raise translate_transport_error(broken, "payload read")
        self._finish()
        return 0

    def close(self) -> None:
        if self.closed:
            return
        # Unread data: dropping the connection is cheaper than draining it.
        self._finish(drained=False)
        super().close()


def skip_bytes(stream: IO[bytes], count: int) -> None:
    """Read and discard ``count`` bytes (for servers that ignore Range)."""
    while count > 0:
        block = stream.read(min(count, BLOCK_SIZE))
        if not block:
            return
        count -= len(block)


#: Blocks a read-ahead thread may have read beyond the one being consumed.
READ_AHEAD_BLOCKS: Final = 4


def _starts_with_raw_block(data: memoryview) -> bool:
    """True if ``data`` begins with a zstd frame whose first block is raw."""
    try:
        header = zstandard.frame_header_size(bytes(data[:18]))
    except zstandard.ZstdError:
        return False
    if data.nbytes < header + 3:
        return False
    block = int.from_bytes(data[header : header + 3], "little")
    return (block >> 1) & 3 == 0


class ReadAhead(io.RawIOBase):
    """A response body read by a helper thread up to ``READ_AHEAD_BLOCKS``
    blocks of ``BLOCK_SIZE`` ahead of the reader, so socket reads overlap
    what the reader does with the bytes (zstd decompression). The blocks are
    a fixed set of buffers filled with ``readinto`` and handed out as views:
    no allocation or copy per block, and memory bounded by the set.

    For zstandard's ``stream_reader`` (and similar consumers): ``read``
    returns a *view* that stays valid only until the next ``read``.

    The thread owns the response: it gives the connection back at end of
    stream, and discards it when the reader closes early or a read fails
    (the error is raised in the reader's thread by its next read)."""

    def __init__(self, stream: ResponseStream, *, block_size: int = BLOCK_SIZE) -> None:
        super().__init__()
        self._stream = stream
        self._filled: queue.Queue[tuple[bytearray, int] | BaseException] = queue.Queue()
        self._free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(READ_AHEAD_BLOCKS + 1):
            self._free.put(bytearray(block_size))
        self._stop = threading.Event()
        self._held: bytearray | None = None  # the block the reader is on
        self._pending = memoryview(b"")
        self._done = False
        self._thread: threading.Thread | None = None
        # The first block is read here. If it starts with a raw (stored) zstd
        # block, the payload does not compress: decoding it is a copy, and a
        # helper thread would cost more than it overlaps, so the reader's own
        # thread reads on (no thread is started).
        first = self._free.get_nowait()
        try:
            count = stream.readinto(first)
        except BaseException:
            stream.close()
            raise
        self._filled.put((first, count))
        #: The payload starts with a raw (stored) zstd block: it does not compress.
        self.raw = bool(count) and _starts_with_raw_block(memoryview(first)[:count])
        if count and not self.raw:
            self._thread = threading.Thread(
                target=self._pump, name="objectstore-read-ahead", daemon=True
            )
            self._thread.start()

    def _take(self) -> tuple[bytearray, int] | BaseException:
        """The next block: from the helper, or read here if there is none."""
        if self._thread is not None or not self._filled.empty():
            return self._filled.get()
        buffer = self._free.get_nowait()
        try:
            return buffer, self._stream.readinto(buffer)
        except BaseException as exc:  # noqa: BLE001 - raised by the caller, as from the helper
            return exc

    def _free_buffer(self) -> bytearray | None:
        while not self._stop.is_set():
            try:
                return self._free.get(timeout=0.05)
            except queue.Empty:
                continue
        return None

    def _pump(self) -> None:
        stream = self._stream
        try:
            while (buffer := self._free_buffer()) is not None:
                count = stream.readinto(buffer)
                self._filled.put((buffer, count))
                if not count:
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the reader
            self._filled.put(exc)
        finally:
            stream.close()  # a no-op at end of stream; discards a half-read connection

    def readable(self) -> bool:
        return True

    def _next(self) -> bool:
        """Make ``_pending`` non-empty; False at end of stream."""
        while not self._pending:
            if self._held is not None:
                self._free.put(self._held)
                self._held = None
            if self._done:
                return False
            item = self._take()
            if isinstance(item, BaseException):
                self._done = True
                raise item
            buffer, count = item
            if not count:
                self._done = True
                return False
            self._held = buffer
            self._pending = memoryview(buffer)[:count]
        return True

    def read(self, size: int | None = -1) -> memoryview:
        if self.closed:
            raise ValueError("I/O operation on closed payload stream")
        if size is None or size < 0:
            size = sys.maxsize
        if size == 0 or not self._next():
            return memoryview(b"")
        pending = self._pending
        self._pending = pending[size:]
        return pending[:size]

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if not view.nbytes or not self._next():
            return 0
        count = min(view.nbytes, self._pending.nbytes)
        view[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def close(self) -> None:
        if self.closed:
            return
        self._stop.set()
        self._pending = memoryview(b"")
        if self._thread is None:
            self._stream.close()  # a no-op at end of stream
        elif self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)
        super().close()
