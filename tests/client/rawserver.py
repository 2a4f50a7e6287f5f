"""A loopback socket server for faults the real server cannot produce on
demand (canned 5xx answers, captured raw requests, slow readers)."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from typing import Self


def read_head(conn: socket.socket) -> bytes | None:
    """Receive until the blank line ending a request's head: everything read
    so far (the head, maybe the start of the body), or None if the client
    closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        received = conn.recv(65536)
        if not received:
            return None
        data += received
    return data


class RawServer(threading.Thread):
    """Accepts connections on 127.0.0.1 (a free port) and hands each one to
    :meth:`serve` until stopped; use it as a context manager."""

    conn_timeout = 5.0

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.05)
        self.stopping = threading.Event()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def serve(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(self.conn_timeout)
                with contextlib.suppress(OSError):  # the client gave up or closed
                    self.serve(conn)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stopping.set()
        self.join(timeout=5)
        self.sock.close()
