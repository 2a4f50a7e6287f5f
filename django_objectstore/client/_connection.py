"""The client's connection pool: safe across ``fork``, with connections whose
request bodies are not bound by the connect timeout and whose responses read
their headers without the email package.

Fork safety: a keep-alive connection inherited by a forked child is the
same TCP connection as the parent's, so two processes using it read each
other's responses. Every pool made here forgets its idle connections in the
child right after ``fork`` (``os.register_at_fork``), with fresh queue locks
(another thread may have held them at the moment of the fork); a connection
checked out at that moment and released later in the child is dropped,
never pooled; and a pool first used in a process it was not set up for
(a ``fork`` that skipped Python's hooks) resets itself. Dropping only
closes the child's copy of the socket: the parent's connection stays open.

urllib3 keeps the *connect* timeout on the socket while it sends the request,
and Python applies a socket timeout to a whole ``sendall``. With the 100 ms
connect timeout, any body the server does not absorb within 100 ms (a large
part, a busy server, a slow link) fails with "Connection aborted: timed out".
These connection classes connect with the connect timeout, then send with the
read timeout (``None`` by default: no limit), as the documentation of
``timeout_ms`` ("between consecutive read operations") implies for writes.
"""

from __future__ import annotations

import http.client
import os
import weakref
from typing import Any, Final, cast

import urllib3
from urllib3 import connection, connectionpool
from urllib3.util.url import parse_url

__all__ = ["connection_pool"]

# The standard library's limits for a response's header block.
_MAX_LINE: Final = 65536
_MAX_HEADERS: Final = 100
_NO_BODY: Final = frozenset({204, 304})


class _Response(http.client.HTTPResponse):
    """``http.client.HTTPResponse`` whose header block is read line by line
    into an ``HTTPMessage`` instead of through ``email.parser`` (a fifth of
    the client's own time on small requests). Same results for the headers
    an HTTP server sends; ``begin`` otherwise follows the standard library."""

    def begin(self) -> None:
        if cast(object, self.headers) is not None:  # None until begin() has run
            return
        while True:
            version, status, reason = self._read_status()  # type: ignore[attr-defined]
            if status != http.client.CONTINUE:
                break
            self._read_fields()  # the headers of a 100 Continue: dropped
        self.code = self.status = status
        self.reason = reason.strip()
        if version in ("HTTP/1.0", "HTTP/0.9"):
            self.version = 10
        elif version.startswith("HTTP/1."):
            self.version = 11
        else:
            raise http.client.UnknownProtocol(version)
        message = http.client.HTTPMessage()
        for name, value in self._read_fields():
            message.set_raw(name, value)
        self.headers = self.msg = message
        encoding = message.get("transfer-encoding")
        self.chunked = encoding is not None and encoding.lower() == "chunked"
        if self.chunked:
            self.chunk_left = None
        self.will_close = self._check_close()  # type: ignore[attr-defined]
        self.length = None
        length = message.get("content-length")
        if length and not self.chunked:
            try:
                self.length = int(length)
            except ValueError:
                self.length = None
            else:
                if self.length < 0:
                    self.length = None
        if status in _NO_BODY or 100 <= status < 200 or self._method == "HEAD":  # type: ignore[attr-defined]
            self.length = 0
        if not self.will_close and not self.chunked and self.length is None:
            self.will_close = True

    def _read_fields(self) -> list[tuple[str, str]]:
        fields: list[tuple[str, str]] = []
        while True:
            line = self.fp.readline(_MAX_LINE + 1)
            if len(line) > _MAX_LINE:
                raise http.client.LineTooLong("header line")
            if line in (b"\r\n", b"\n", b""):
                return fields
            if len(fields) >= _MAX_HEADERS:
                raise http.client.HTTPException(f"got more than {_MAX_HEADERS} headers")
            text = line.decode("iso-8859-1")
            if text[0] in " \t" and fields:  # an obsolete folded continuation
                name, value = fields[-1]
                fields[-1] = (name, f"{value} {text.strip()}")
                continue
            name, colon, value = text.partition(":")
            if colon:
                fields.append((name, value.strip(" \t\r\n")))


class _SendTimeoutMixin:
    send_timeout: float | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The process that opened the connection: the only one that may use it.
        self.owner_pid = os.getpid()

    def request(self, *args: Any, **kwargs: Any) -> None:
        conn: Any = self
        if conn.sock is None:
            conn.connect()  # with the connect timeout urllib3 set
        connect_timeout = conn.timeout
        conn.timeout = self.send_timeout
        try:
            super().request(*args, **kwargs)  # type: ignore[misc]
        finally:
            conn.timeout = connect_timeout


# Named as urllib3's (the name shows in urllib3's error messages) and
# defined at module level (errors that hold a connection can be pickled).
class HTTPConnection(_SendTimeoutMixin, connection.HTTPConnection):
    response_class = _Response


class HTTPSConnection(_SendTimeoutMixin, connection.HTTPSConnection):
    response_class = _Response


def _send_timeout(timeout: object) -> float | None:
    """The read timeout of ``timeout`` (a ``urllib3.Timeout`` or seconds)."""
    if isinstance(timeout, urllib3.Timeout):
        read = timeout.read_timeout
        return read if isinstance(read, int | float) else None
    if isinstance(timeout, int | float):
        return float(timeout)
    return None


class _ForkSafePoolMixin:
    """Per-process connections for an ``HTTPConnectionPool`` (see the module
    docstring). Costs one ``os.getpid()`` per checkout and per release."""

    pool: Any
    _send_timeout: float | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._owner_pid = os.getpid()
        _pools.add(self)

    def _new_conn(self) -> Any:
        made = super()._new_conn()  # type: ignore[misc]
        made.send_timeout = self._send_timeout
        return made

    def _forget_connections(self) -> None:
        """In a forked child: drop the parent's idle connections (closing
        only this process's copy of their sockets) and start afresh."""
        self._owner_pid = os.getpid()
        queue = self.pool
        if queue is None:  # closed
            return
        inherited = list(queue.queue)
        # Re-initialised in place: fresh locks, and the same object urllib3's
        # finalizer closes when the pool is collected.
        queue.__init__(queue.maxsize)
        for _ in range(queue.maxsize):
            queue.put(None)
        for conn in inherited:
            if conn is not None:
                conn.close()

    def _get_conn(self, timeout: float | None = None) -> Any:
        if self._owner_pid != os.getpid():  # forked without Python's hooks
            self._forget_connections()
        return super()._get_conn(timeout)  # type: ignore[misc]

    def _put_conn(self, conn: Any) -> None:
        if conn is not None and getattr(conn, "owner_pid", None) not in (None, os.getpid()):
            # Checked out by the parent before the fork: never reused here.
            # The slot it held was refilled when the child started afresh.
            conn.close()
            return
        super()._put_conn(conn)  # type: ignore[misc]


# Named as urllib3's: the pool's name shows in urllib3's error messages.
class HTTPConnectionPool(_ForkSafePoolMixin, connectionpool.HTTPConnectionPool):
    pass


class HTTPSConnectionPool(_ForkSafePoolMixin, connectionpool.HTTPSConnectionPool):
    pass


_pools: weakref.WeakSet[_ForkSafePoolMixin] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for pool in list(_pools):
        pool._forget_connections()


os.register_at_fork(after_in_child=_after_fork_in_child)


def connection_pool(base_url: str, **kwargs: Any) -> connectionpool.HTTPConnectionPool:
    """A fork-safe pool for ``base_url`` (what ``urllib3.connection_from_url``
    makes, with the connection classes above)."""
    parsed = parse_url(base_url)
    scheme = parsed.scheme or "http"
    port = parsed.port or (443 if scheme == "https" else 80)
    pool_class = HTTPSConnectionPool if scheme == "https" else HTTPConnectionPool
    made = pool_class(parsed.host or "", port=port, **kwargs)
    made.ConnectionCls = HTTPSConnection if scheme == "https" else HTTPConnection
    made._send_timeout = _send_timeout(kwargs.get("timeout"))
    return made
