"""Connections whose request bodies are not bound by the connect timeout.

urllib3 keeps the *connect* timeout on the socket while it sends the request,
and Python applies a socket timeout to a whole ``sendall``. With the 100 ms
connect timeout, any body the server does not absorb within 100 ms (a large
part, a busy server, a slow link) fails with "Connection aborted: timed out".
These connection classes connect with the connect timeout, then send with the
read timeout (``None`` by default: no limit), as the documentation of
``timeout_ms`` ("between consecutive read operations") implies for writes.
"""

from __future__ import annotations

from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection

__all__ = ["connection_class"]


class _SendTimeoutMixin:
    send_timeout: float | None = None

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


class _HTTPConnection(_SendTimeoutMixin, HTTPConnection):
    pass


class _HTTPSConnection(_SendTimeoutMixin, HTTPSConnection):
    pass


def connection_class(scheme: str, timeout: object) -> type[HTTPConnection]:
    """A connection class for ``scheme`` sending with ``timeout``'s read timeout."""
    send_timeout: float | None = None
    if isinstance(timeout, urllib3.Timeout):
        read = timeout.read_timeout
        send_timeout = read if isinstance(read, int | float) else None
    elif isinstance(timeout, int | float):
        send_timeout = float(timeout)
    base = _HTTPSConnection if scheme == "https" else _HTTPConnection
    return type(base.__name__, (base,), {"send_timeout": send_timeout})
