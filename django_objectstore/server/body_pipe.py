"""A request body handed from the event loop to the worker thread that
stores it, piece by piece as the connection reads it.

The parser's body pieces are queued as they are (no joining, no copy) and
the thread takes them under a lock: no task, future or loop wake-up per
block. Reading pauses while more than ``HIGH_WATER`` bytes wait, and
resumes (one call into the loop) once the thread has taken them below
``LOW_WATER``. A body that stops arriving for ``stall_timeout`` seconds
while the thread waits closes the connection (the thread is not held by a
silent client). Measured in ``benchmarks/FINDINGS.md``: a 256 MiB PUT took
longer when its body went through ASGI ``receive`` messages.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
from collections.abc import Callable
from typing import NoReturn

from django_objectstore.server.request import ClientGone

__all__ = ["HIGH_WATER", "LOW_WATER", "BodyPipe"]

#: Bytes queued for the thread before the connection stops reading.
HIGH_WATER = 1024 * 1024
#: Reading resumes when the thread has left no more than this queued.
LOW_WATER = 256 * 1024
#: Pieces smaller than this are joined with the ones queued behind them
#: (a trickling client must not cost one write per few bytes).
_SMALL = 64 * 1024
_JOINED = 1024 * 1024
#: A waiting thread checks this often whether the server has stopped.
_RECHECK_SECONDS = 1.0


class BodyPipe:
    """Loop side: ``feed``, ``finish``, ``lose`` (call on the loop only).
    Thread side: ``next_block`` (the ``BodySource`` of ``request``)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        pause: Callable[[], None],
        resume: Callable[[], None],
        *,
        abort: Callable[[], None] | None = None,
        stall_timeout: float | None = None,
    ) -> None:
        self._loop = loop
        self._pause = pause
        self._resume = resume
        #: Called (on the loop) when no body byte came for ``stall_timeout``
        #: seconds while the thread waited: the connection is closed.
        self._abort = abort
        self._stall_timeout = stall_timeout
        self._pieces: collections.deque[bytes] = collections.deque()
        self._queued = 0
        self._paused = False
        self._resuming = False
        self._done = False
        self._gone = False
        self._ready = threading.Condition(threading.Lock())

    @property
    def paused(self) -> bool:
        return self._paused

    # -- the event loop's side ---------------------------------------------

    def feed(self, data: bytes) -> None:
        with self._ready:
            self._pieces.append(data)
            self._queued += len(data)
            pause = self._queued > HIGH_WATER and not self._paused
            if pause:
                self._paused = True
            self._ready.notify()
        if pause:  # outside the lock: the transport's calls are not ours to hold it over
            self._pause()

    def finish(self) -> None:
        """The body ended."""
        with self._ready:
            self._done = True
            self._ready.notify()

    def lose(self) -> None:
        """The connection is gone: what was queued is still handed out,
        then ``ClientGone``."""
        with self._ready:
            self._gone = True
            self._ready.notify()

    def _resumed(self) -> None:
        with self._ready:
            self._resuming = False
            resume = self._paused and self._queued <= LOW_WATER
            if resume:
                self._paused = False
        if resume:
            self._resume()

    # -- the worker thread's side ------------------------------------------

    def next_block(self) -> bytes | None:
        with self._ready:
            deadline: float | None = None
            while not self._pieces:
                if self._done:
                    return None
                if self._gone or self._loop.is_closed():
                    raise ClientGone("the client disconnected during the request body")
                wait = _RECHECK_SECONDS
                if self._stall_timeout is not None:
                    now = time.monotonic()
                    if deadline is None:
                        deadline = now + self._stall_timeout
                    elif now >= deadline:
                        self._stalled()
                    wait = min(wait, deadline - now)
                self._ready.wait(wait)
            block = self._pieces.popleft()
            if len(block) < _SMALL and self._pieces:
                parts = [block]
                size = len(block)
                while self._pieces and size + len(self._pieces[0]) <= _JOINED:
                    piece = self._pieces.popleft()
                    parts.append(piece)
                    size += len(piece)
                block = b"".join(parts)
            self._queued -= len(block)
            if self._paused and not self._resuming and self._queued <= LOW_WATER:
                self._resuming = True
                try:
                    self._loop.call_soon_threadsafe(self._resumed)
                except RuntimeError:  # the loop is closed: the server is stopping
                    self._gone = True
            return block

    def _stalled(self) -> NoReturn:
        self._gone = True
        if self._abort is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed
                self._loop.call_soon_threadsafe(self._abort)
        raise ClientGone(f"no request body bytes for {self._stall_timeout:g} seconds")
