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


class ForwardingServer(RawServer):
    """Forwards each request to ``upstream`` (a real server on loopback), one
    request per connection, except the requests :meth:`refuse` answers
    itself; records ``(method, target, status)`` of every request."""

    def __init__(self, upstream: str) -> None:
        super().__init__()
        host, _, port = upstream.removeprefix("http://").partition(":")
        self.upstream = (host, int(port))
        self.log: list[tuple[str, str, int | None]] = []

    def refuse(self, method: str, target: str) -> bytes | None:
        """A whole response for this request, or None to forward it."""
        return None

    def serve(self, conn: socket.socket) -> None:
        data = read_head(conn)
        if data is None:
            return
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        answer = self.refuse(method, target)
        if answer is not None:
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            while len(body) < length:  # read the body the client sends anyway
                received = conn.recv(65536)
                if not received:
                    return
                body += received
            self.log.append((method, target, int(answer.split(b" ", 2)[1])))
            conn.sendall(answer)
            return
        kept = [line for line in lines[1:] if not line.lower().startswith("connection:")]
        forwarded = "\r\n".join([lines[0], *kept, "Connection: close", "", ""]).encode("latin-1")
        with socket.create_connection(self.upstream, timeout=self.conn_timeout) as upstream:
            upstream.sendall(forwarded + body)
            pump = threading.Thread(target=_pipe, args=(conn, upstream), daemon=True)
            pump.start()
            first = True
            while received := upstream.recv(65536):
                if first:  # logged before the client can see the answer
                    self.log.append((method, target, int(received.split(b" ", 2)[1])))
                    first = False
                conn.sendall(received)
            conn.shutdown(socket.SHUT_RDWR)
            pump.join(timeout=self.conn_timeout)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while received := source.recv(65536):
            sink.sendall(received)
