"""Several worker processes on one listening socket (the CLI's ``--workers``,
filesystem storage only): the kernel hands each new connection to one of
them, so the server uses every core. The parent only supervises: it forks
the workers, restarts one that dies, and on SIGTERM or SIGINT stops them all
(each finishes its requests in progress, as a single server does)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from types import FrameType

__all__ = ["default_workers", "serve_workers"]

logger = logging.getLogger("django_objectstore.server")

#: A worker that dies this soon after it started is not restarted (the
#: cause, a configuration or storage error, would kill the next one too).
_MIN_LIFETIME = 2.0
_STOP_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1


def default_workers(storage: str) -> int:
    """One worker per core for filesystem storage; one process for memory
    storage, whose objects live in that process."""
    return max(1, os.cpu_count() or 1) if storage == "filesystem" else 1


def _die_with_parent(parent: int) -> None:
    """Linux: kill this worker when the supervisor dies without stopping it
    (SIGKILL, a crash): no worker outlives it holding the socket, and a
    killed server is killed whole, as a single process would be."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the supervisor died before prctl took effect
        os._exit(0)


def _fork(serve: Callable[[socket.socket], None], sock: socket.socket) -> int:
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:  # the worker: default signal handling, then uvicorn's own
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        _die_with_parent(parent)
        serve(sock)
    except BaseException:
        logger.exception("worker %d failed", os.getpid())
        code = 1
    finally:
        os._exit(code)


def serve_workers(serve: Callable[[socket.socket], None], sock: socket.socket, count: int) -> int:
    """Run ``count`` workers, each calling ``serve(sock)``; returns the exit
    status once they are stopped."""
    started: dict[int, float] = {}
    for _ in range(count):
        started[_fork(serve, sock)] = time.monotonic()
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    while started and not stopping:
        pid, code = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            time.sleep(0.1)
            continue
        lifetime = time.monotonic() - started.pop(pid)
        if lifetime < _MIN_LIFETIME:
            logger.error("worker %d exited (status %d) right after it started; stopping", pid, code)
            status = 1
            break
        logger.warning("worker %d exited (status %d); starting another", pid, code)
        started[_fork(serve, sock)] = time.monotonic()
    for pid in started:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_SECONDS
    while started:
        pid, _ = os.waitpid(-1, os.WNOHANG)
        if pid:
            started.pop(pid, None)
        elif time.monotonic() > deadline:
            for pid in started:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            deadline = float("inf")
        else:
            time.sleep(0.05)
    sock.close()
    return status
