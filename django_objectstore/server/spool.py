"""Decouple a streamed response from the request body it is made of.

The batch endpoint answers each operation while the request body is still
arriving. A client that sends its whole body before reading anything (most
simple HTTP clients do) would then deadlock with the server once the answer
fills the socket buffers: the server blocks writing, so it stops reading,
so the client blocks writing. ``spooled`` runs the producer in a thread of
its own and hands its output to the consumer through a buffer that keeps at
most ``memory_limit`` bytes in memory and the rest in an anonymous
temporary file, so neither side ever waits for the other and memory stays
bounded whatever the size of the answer.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from typing import IO

__all__ = ["spooled"]

MEMORY_LIMIT = 1024 * 1024
_READ_BLOCK = 256 * 1024


class _Cancelled(Exception):
    """The consumer went away; the producer stops."""


class _Spool:
    def __init__(self, memory_limit: int) -> None:
        self._limit = memory_limit
        self._cond = threading.Condition()
        self._memory: deque[bytes] = deque()
        self._memory_bytes = 0
        self._file: IO[bytes] | None = None
        self._written = 0  # file offsets: bytes written / read
        self._read = 0
        self.done = False
        self.cancelled = False
        self.error: BaseException | None = None

    def put(self, data: bytes) -> None:
        with self._cond:
            if self.cancelled:
                raise _Cancelled
            pending_in_file = self._written - self._read
            if not pending_in_file and self._memory_bytes + len(data) <= self._limit:
                self._memory.append(data)
                self._memory_bytes += len(data)
            else:
                if self._file is None:
                    self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
                os.pwrite(self._file.fileno(), data, self._written)
                self._written += len(data)
            self._cond.notify()

    def finish(self, error: BaseException | None) -> None:
        with self._cond:
            self.error = error
            self.done = True
            self._cond.notify()

    def get(self) -> bytes | None:
        """The next block, or ``None`` when the producer is done."""
        with self._cond:
            while True:
                if self._memory:
                    # Everything waiting, up to a block: fewer, larger writes.
                    blocks = [self._memory.popleft()]
                    size = len(blocks[0])
                    while self._memory and size + len(self._memory[0]) <= _READ_BLOCK:
                        blocks.append(self._memory.popleft())
                        size += len(blocks[-1])
                    self._memory_bytes -= size
                    return blocks[0] if len(blocks) == 1 else b"".join(blocks)
                if self._file is not None and self._read < self._written:
                    count = min(_READ_BLOCK, self._written - self._read)
                    data = os.pread(self._file.fileno(), count, self._read)
                    self._read += len(data)
                    if self._read == self._written:  # drained: start over at 0
                        self._read = self._written = 0
                    return data
                if self.done:
                    return None
                self._cond.wait()

    def close(self) -> None:
        with self._cond:
            self.cancelled = True
            if self._file is not None:
                self._file.close()
                self._file = None
            self._memory.clear()


def spooled(
    source: Iterable[bytes | bytearray | memoryview],
    *,
    memory_limit: int = MEMORY_LIMIT,
    name: str = "spool",
) -> Iterator[bytes]:
    """Iterate over ``source`` in a background thread; yield its blocks in
    order as the caller asks for them. An exception in ``source`` is raised
    to the caller after the blocks before it. Closing the returned iterator
    early makes ``source`` stop at its next block."""
    spool = _Spool(memory_limit)

    def produce() -> None:
        error: BaseException | None = None
        iterator = iter(source)
        try:
            for block in iterator:
                if block:
                    spool.put(bytes(block))
        except _Cancelled:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer's thread
            error = exc
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
            spool.finish(error)

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            block = spool.get()
            if block is None:
                break
            yield block
        thread.join()
        if spool.error is not None:
            raise spool.error
    finally:
        spool.close()
