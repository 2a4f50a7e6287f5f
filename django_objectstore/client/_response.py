"""Response payloads as readable streams.

``ResponseStream`` reads a response body straight from the socket in the
caller's block size and gives the connection back to the pool at the end
(closing early discards it). ``read_first_block`` takes the first bytes,
which decide how a large payload is decoded; ``Refilled`` hands out what
follows them in pieces read into one reused buffer, and ``ReadAhead`` moves
the socket reads to a helper thread, a few blocks ahead of a reader that
decompresses.
"""

from __future__ import annotations

import http.client
import io
import os
import queue
import socket
import ssl
import sys
import threading
from typing import IO, TYPE_CHECKING, Final

import urllib3

from django_objectstore.client._io import (
    BLOCK_SIZE,
    check_same_process,
    translate_transport_error,
)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "FIRST_READ",
    "READ_AHEAD_BLOCK",
    "READ_AHEAD_BLOCKS",
    "ReadAhead",
    "Refilled",
    "ResponseStream",
    "read_first_block",
    "skip_bytes",
]


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
        self._pid = os.getpid()  # only this process may read (fork safety)
        self._drained = False  # http.client's reader holds no bytes

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
        check_same_process(self._pid)
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

    def readinto(self, buffer: WriteableBuffer) -> int:
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
        check_same_process(self._pid)
        if self._eof or not view.nbytes:
            return 0
        self._drained = False
        try:
            count = fp.readinto(view)
        except (OSError, http.client.HTTPException) as exc:
            self._response.close()
            raise translate_transport_error(exc, "payload read") from exc
        if count:
            return count
        self._check_complete(fp)
        self._finish()
        return 0

    def scatter_into(self, buffers: list[memoryview]) -> int | None:
        """Bytes of the body received into ``buffers`` in order, by one
        socket read where one suffices (``recvmsg_into``: the kernel's copy
        is the only one); 0 at its end. Within a ``Content-Length`` body or
        one chunk of a chunked body; chunk framing, the end and reads too
        small to be worth it go through ``readinto`` (into ``buffers[0]``).
        ``None`` when the body is not read by ``http.client`` from a socket
        (then use ``readinto``)."""
        fp = getattr(self._response, "_fp", None)
        if self._remaining is not None or not isinstance(fp, http.client.HTTPResponse):
            return None
        reader: object = fp.fp  # a BufferedReader over a socket, as a rule
        sock = getattr(getattr(reader, "raw", None), "_sock", None)
        if (
            not isinstance(reader, io.BufferedReader)
            or not isinstance(sock, socket.socket)
            or isinstance(sock, ssl.SSLSocket)  # TLS records: no recvmsg_into
        ):
            return None
        limit = fp.chunk_left if fp.chunked else fp.length
        if limit is None:
            return None
        wanted, clipped = 0, []
        for buffer in buffers:  # never past the body's (or the chunk's) end
            if wanted + buffer.nbytes > limit:
                buffer = buffer[: limit - wanted]
            clipped.append(buffer)
            wanted += buffer.nbytes
        if wanted < _DRAIN_MIN and (not self._drained or not wanted):
            return self.readinto(buffers[0])
        if self.closed:
            raise ValueError("I/O operation on closed payload stream")
        check_same_process(self._pid)
        try:
            if not self._drained:
                count, self._drained = _drain(reader, clipped), True
            else:
                count = sock.recvmsg_into(clipped)[0]
        except OSError as exc:
            self._response.close()
            raise translate_transport_error(exc, "payload read") from exc
        if not count:  # the connection ended inside the body
            self._response.close()
            raise translate_transport_error(http.client.IncompleteRead(b""), "payload read")
        if fp.chunked:
            fp.chunk_left = limit - count
        else:
            fp.length = limit - count
        return count

    def _check_complete(self, fp: http.client.HTTPResponse) -> None:
        if not fp.chunked and fp.length:  # http.client does not complain
            self._response.close()
            # What urllib3 raises for a body shorter than its Content-Length.
            total = int(self._response.headers.get("content-length") or 0)
            short = urllib3.exceptions.IncompleteRead(max(total - fp.length, 0), fp.length)
            broken = urllib3.exceptions.ProtocolError(f"Connection broken: {short!r}", short)
            raise translate_transport_error(broken, "payload read")

    def close(self) -> None:
        if self.closed:
            return
        # Unread data: dropping the connection is cheaper than draining it.
        self._finish(drained=False)
        super().close()


#: Reads smaller than this go through ``http.client`` (scattering them
#: saves too little).
_DRAIN_MIN: Final = 64 * 1024


def _drain(reader: io.BufferedReader, buffers: list[memoryview]) -> int:
    """Move what ``reader`` holds (after one read if nothing) into
    ``buffers`` in order, leaving it empty; the count."""
    held = len(reader.peek(1))
    count = 0
    for buffer in buffers:
        if count == held:
            break
        count += reader.readinto(buffer[: held - count])  # copied from its buffer
    return count


def skip_bytes(stream: IO[bytes], count: int) -> None:
    """Read and discard ``count`` bytes (for servers that ignore Range)."""
    while count > 0:
        block = stream.read(min(count, BLOCK_SIZE))
        if not block:
            return
        count -= len(block)


#: Blocks a read-ahead thread may have read beyond the one being consumed,
#: and their size. Fresh pages cost a fault each: 4 x 512 KiB had a 64 MiB
#: get of one zstd frame at 0.079 s against 0.080 s with 4 x 1 MiB and
#: 0.082 s with 4 x 256 KiB (more handovers), benchmarks/FINDINGS.md.
READ_AHEAD_BLOCKS: Final = 4
READ_AHEAD_BLOCK: Final = 512 * 1024


#: Bytes ``read_first_block`` waits for: enough to tell how the payload is
#: stored, few enough that decoding starts without waiting for a whole
#: block (a 1 MiB first read delayed the first byte of a 64 MiB get by ~2 ms).
FIRST_READ: Final = 64 * 1024


def read_first_block(stream: ResponseStream) -> tuple[bytearray, int]:
    """A buffer of ``FIRST_READ`` bytes and how many bytes of ``stream`` it
    holds (fewer only at the end); the stream is closed if the read fails."""
    first = bytearray(FIRST_READ)
    view = memoryview(first)
    count = 0
    try:
        while count < FIRST_READ and (got := stream.readinto(view[count:])):
            count += got
    except BaseException:
        stream.close()
        raise
    return first, count


class Refilled:
    """``Chunks`` of ``stream`` read into one reused buffer of ``BLOCK_SIZE``
    (``first`` if it is that big), after the ``count`` bytes at the start of
    ``first`` that the caller read already."""

    def __init__(self, stream: ResponseStream, first: bytearray, count: int) -> None:
        self._stream = stream
        self._buffer = memoryview(first)
        self._first: int | None = count

    def read(self, size: int = -1, /) -> memoryview:
        count, self._first = self._first, None
        if count is None:
            if self._buffer.nbytes < BLOCK_SIZE:  # ``first`` was a short read
                self._buffer = memoryview(bytearray(BLOCK_SIZE))
            count = self._stream.readinto(self._buffer)
        return self._buffer[:count]

    def readinto(self, buffer: memoryview, /) -> int:
        # RawBlocks reads the first piece (block headers) before any block.
        assert self._first is None, "read() hands out the first piece first"
        wanted = buffer.nbytes
        count = self._stream.readinto(buffer)
        while 0 < count < wanted and (more := self._stream.readinto(buffer[count:])):
            count += more
        return count

    def scatter_into(self, buffers: list[memoryview], /) -> int | None:
        assert self._first is None, "read() hands out the first piece first"
        return self._stream.scatter_into(buffers)

    def close(self) -> None:
        self._stream.close()


class ReadAhead(io.RawIOBase):
    """A response body read by a helper thread up to ``READ_AHEAD_BLOCKS``
    blocks of ``READ_AHEAD_BLOCK`` bytes ahead of the reader, so socket
    reads overlap what the reader does with the bytes (zstd decompression).
    The blocks are a fixed set of buffers filled with ``readinto`` and
    handed out as views: no allocation or copy per block, and memory
    bounded by the set.

    For zstandard's ``stream_reader`` (and similar consumers): ``read``
    returns a *view* that stays valid only until the next ``read``.

    The thread owns the response: it gives the connection back at end of
    stream, and discards it when the reader closes early or a read fails
    (the error is raised in the reader's thread by its next read)."""

    def __init__(
        self,
        stream: ResponseStream,
        first: bytearray,
        count: int,
        *,
        block_size: int = READ_AHEAD_BLOCK,
    ) -> None:
        super().__init__()
        self._stream = stream
        self._filled: queue.Queue[tuple[bytearray, int] | BaseException] = queue.Queue()
        self._free: queue.Queue[bytearray] = queue.Queue()
        # Blocks are made by the helper as it first needs them: fresh pages
        # cost a fault each (~2 us on a VM), better spent off the reader's thread.
        self._block_size = block_size
        self._made = 0
        self._stop = threading.Event()
        self._held: bytearray | None = None  # the block the reader is on
        self._pending = memoryview(b"")
        self._done = False
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()  # the helper thread does not survive a fork
        # The first block (``count`` bytes of ``first``) was read by the caller.
        self._filled.put((first, count))
        if count:
            self._thread = threading.Thread(
                target=self._pump, name="objectstore-read-ahead", daemon=True
            )
            self._thread.start()

    def _free_buffer(self) -> bytearray | None:
        """A block to fill: a free one, a new one while fewer than
        ``READ_AHEAD_BLOCKS`` exist, else the next one the reader frees
        (None once the reader closed)."""
        if self._made < READ_AHEAD_BLOCKS and self._free.empty():
            self._made += 1
            return bytearray(self._block_size)
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
                if len(self._held) == self._block_size:  # (not the caller's first)
                    self._free.put(self._held)
                self._held = None
            if self._done:
                return False
            # From the helper; without one (the body was empty) the caller's
            # first block, of 0 bytes, is the only item and ends the stream.
            item = self._filled.get()
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
        check_same_process(self._pid)
        if size is None or size < 0:
            size = sys.maxsize
        if size == 0 or not self._next():
            return memoryview(b"")
        pending = self._pending
        self._pending = pending[size:]
        return pending[:size]

    def readinto(self, buffer: WriteableBuffer) -> int:
        check_same_process(self._pid)
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
