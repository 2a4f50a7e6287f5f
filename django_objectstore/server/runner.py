"""Running the ASGI app under uvicorn (httptools parser): the listening
socket, uvicorn's configuration, the connection protocol and a server that
leaves no connection open when it stops."""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import threading
from typing import IO, Any

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from django_objectstore.server.asgi import ObjectstoreApp
from django_objectstore.server.body_pipe import BodyPipe
from django_objectstore.server.config import DEFAULT_HEADER_TIMEOUT, DEFAULT_IDLE_TIMEOUT
from django_objectstore.server.service import REASONS, SERVER_HEADER

__all__ = [
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "UvicornServer",
    "bind",
    "make_config",
]

logger = logging.getLogger("django_objectstore.server")

#: Most header fields in one request, and most bytes in them (as the
#: standard library's and most servers' limits); beyond, 431.
MAX_FIELDS = 100
MAX_HEADER_BYTES = 64 * 1024
#: Longest request target (path and query); beyond, 414.
MAX_TARGET = 64 * 1024
#: A closing connection reads away at most this much of an unfinished
#: request body, for at most this long.
LINGER_BYTES = 64 * 1024 * 1024
LINGER_SECONDS = 2.0
#: Request body buffered before reading from the socket pauses.
BODY_HIGH_WATER = 1024 * 1024
#: Most bytes one read from a connection takes (asyncio's default is 256 KiB).
RECV_SIZE = 1024 * 1024
#: Writes at least this big are not held back to be joined with others.
_DIRECT_WRITE = 64 * 1024
#: Seconds a stopping server waits for requests in progress.
_GRACE_SECONDS = 5


#: The read buffer of the event loop running in this thread.
_per_thread = threading.local()


class _Rejected(Exception):
    """Raised in a parser callback to refuse the request with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Transport:
    """The connection's transport as uvicorn's request cycle sees it.

    Writes made in one turn of the event loop go out as one ``send``
    (uvicorn writes a response's head, body and chunk trailer separately,
    and each send to a waiting client costs a wake-up: a quarter of a small
    request's time). Large writes go straight through. ``close`` lets the
    protocol read away an unfinished request body first."""

    def __init__(self, transport: asyncio.Transport, protocol: ObjectstoreProtocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._pending: list[bytes | bytearray | memoryview] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if len(data) >= _DIRECT_WRITE:
            self.flush()
            self._transport.write(data)
            return
        if not self._pending:
            self._protocol.loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, []
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._protocol.close_after_response()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class ObjectstoreProtocol(HttpToolsProtocol, asyncio.BufferedProtocol):
    """uvicorn's httptools protocol with the limits and answers of a strict
    HTTP/1.1 server: header blocks and request targets are bounded (431,
    414), versions other than 1.0 and 1.1 are refused (505, 400), refusals
    carry a reason phrase, a connection closed while the client still sends
    its body is read away first (so the client sees the answer, not a
    reset), and connections ending in an error are logged."""

    #: Seconds a client has, from connecting or from the first byte of a
    #: request, to send the whole request head (``make_config`` sets it).
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    #: Seconds a request body handed to a worker thread may stop arriving
    #: before the connection is closed (``make_config``: the idle timeout).
    body_timeout: float = DEFAULT_IDLE_TIMEOUT

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._raw_transport = transport
        self._rejection: _Rejected | None = None
        self._lingering = False
        self._eof = False
        self._discarded = 0
        self._linger_timer: asyncio.TimerHandle | None = None
        self._target_bytes = 0
        self._header_bytes = 0
        self._header_count = 0
        #: The body pipe of the current request, while its body is arriving.
        self._pipe: BodyPipe | None = None
        self._proxy = _Transport(transport, self)
        super().connection_made(self._proxy)  # type: ignore[arg-type]
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._linger_timer is not None:
            self._linger_timer.cancel()
        self._disarm_header_timer()
        if self._pipe is not None:
            self._pipe.lose()
        if exc is not None and self.client is not None:
            logger.debug("connection from %s ended: %s", self.client[0], exc)
        super().connection_lost(exc)

    # -- limits -----------------------------------------------------------------

    def _reject(self, status: int, message: str) -> None:
        """Refuse the request being parsed (the parser stops and uvicorn
        calls ``send_400_response``, which answers with this)."""
        self._rejection = _Rejected(status, message)
        raise self._rejection

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._header_timed_out)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        """No complete request head in time (a silent or trickling client):
        close, so idle sockets cannot pile up."""
        self._header_timer = None
        if self.client is not None:
            logger.debug(
                "closing %s: no request head within %ss", self.client[0], self.header_timeout
            )
        self._raw_transport.close()

    def on_message_begin(self) -> None:
        self._target_bytes = self._header_bytes = self._header_count = 0
        self._arm_header_timer()
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._target_bytes += len(url)
        if self._target_bytes > MAX_TARGET:
            self._reject(414, "Request target too long")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._header_bytes += len(name) + len(value)
        if self._header_count > MAX_FIELDS or self._header_bytes > MAX_HEADER_BYTES:
            self._reject(431, "Request header fields too large")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        codings = [value for name, value in self.headers if name == b"transfer-encoding"]
        if codings and b",".join(codings).replace(b" ", b"").lower() != b"chunked":
            # llhttp refuses most smuggling shapes itself; this adds a coding
            # list spread over several fields (gzip, then chunked) and any
            # coding but chunked, which this server cannot decode.
            self._reject(400, "Transfer-Encoding other than a single chunked is not supported")
        version = self.parser.get_http_version()
        if version not in ("1.0", "1.1"):
            if version.startswith(("0.", "1.")):
                self._reject(400, f"Bad request version HTTP/{version}")
            self._reject(505, f"HTTP version {version} is not supported")
        super().on_headers_complete()
        cycle = getattr(self, "cycle", None)  # not made for an upgrade request
        if cycle is not None and cycle.scope is self.scope:
            extensions: dict[str, Any] = {
                "objectstore.sendfile": functools.partial(self._sendfile, cycle),
                "objectstore.receive": functools.partial(_receive_all, cycle),
                "objectstore.body_pipe": functools.partial(self._body_pipe, cycle),
            }
            self.scope["extensions"] = extensions

    def on_body(self, body: bytes) -> None:
        """As uvicorn's, with a higher mark before reading pauses (uvicorn's
        64 KiB makes a large upload stop and start reading every few reads)."""
        cycle = self.cycle
        if cycle.response_complete:
            return
        if self._pipe is not None:
            self._pipe.feed(body)
            return
        cycle.body += body
        if len(cycle.body) > BODY_HIGH_WATER:
            self.flow.pause_reading()
        cycle.message_event.set()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self._pipe is not None:
            self._pipe.finish()
            self._pipe = None

    def _body_pipe(self, cycle: Any) -> BodyPipe:
        """The rest of ``cycle``'s request body, handed to a worker thread
        through a ``BodyPipe`` instead of ASGI messages: the ASGI extension
        ``objectstore.body_pipe`` (call it on the loop, before ``receive``)."""
        pipe = BodyPipe(
            self.loop,
            self.flow.pause_reading,
            self.flow.resume_reading,
            abort=self._raw_transport.close,
            stall_timeout=self.body_timeout,
        )
        if cycle.waiting_for_100_continue and not self._raw_transport.is_closing():
            cycle.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # as uvicorn's receive()
            cycle.waiting_for_100_continue = False
        if cycle.body:
            pipe.feed(bytes(cycle.body))
            cycle.body = bytearray()
        if not cycle.more_body:
            pipe.finish()
        elif cycle.disconnected or cycle is not self.cycle:
            pipe.lose()
        else:
            self._pipe = pipe  # until the body ends (a next request's cycle comes after)
            if not pipe.paused:
                self.flow.resume_reading()  # uvicorn's mark may have paused it
        return pipe

    async def _sendfile(self, cycle: Any, file: IO[bytes], offset: int, count: int) -> None:
        """Send ``count`` bytes of ``file`` as (part of) the body of the answer
        ``cycle`` has started, with the kernel's sendfile: the ASGI extension
        ``objectstore.sendfile`` (``asgi`` uses it for stored files)."""
        transport = self._raw_transport
        if cycle.disconnected or transport.is_closing():
            return
        if cycle.chunked_encoding:
            self._proxy.write(b"%x\r\n" % count)
        self._proxy.flush()
        await self.loop.sendfile(transport, file, offset, count)
        if cycle.chunked_encoding:
            self._proxy.write(b"\r\n")
        else:
            cycle.expected_content_length -= count

    # asyncio reads into a buffer (``BufferedProtocol``) instead of a new
    # bytes object per read. One buffer serves every connection of the event
    # loop's thread: each read is parsed before the next one starts, and the
    # parser copies out what it keeps (the request head, body pieces).

    def get_buffer(self, sizehint: int) -> memoryview:
        buffer: memoryview | None = getattr(_per_thread, "buffer", None)
        if buffer is None:
            buffer = _per_thread.buffer = memoryview(bytearray(RECV_SIZE))
        return buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(_per_thread.buffer[:nbytes])

    def data_received(self, data: bytes | memoryview) -> None:
        if self._lingering:
            self._discarded += len(data)
            if self._discarded > LINGER_BYTES:
                self._raw_transport.close()
            return
        # As uvicorn's, but a refused request is logged at DEBUG (uvicorn
        # warns for each: one hostile client would flood the log).
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.send_400_response("Upgrades are not supported")
        except httptools.HttpParserError as exc:
            if self.client is not None:
                logger.debug("refused a request from %s: %s", self.client[0], exc)
            self.send_400_response("Invalid HTTP request received.")

    def send_400_response(self, msg: str) -> None:
        """Answer a request the parser refused and close (uvicorn calls this
        for every parse error; ``_Rejected`` picks another status)."""
        rejection = self._rejection or _Rejected(400, msg)
        body = rejection.message.encode("ascii", "replace")
        head = [f"HTTP/1.1 {rejection.status} {REASONS.get(rejection.status, 'Error')}"]
        head += [f"{k.decode()}: {v.decode()}" for k, v in self.server_state.default_headers]
        head += [
            "content-type: text/plain; charset=utf-8",
            f"content-length: {len(body)}",
            "connection: close",
            "",
            "",
        ]
        self._proxy.write("\r\n".join(head).encode("latin-1") + body)
        self.close_after_response()

    # -- closing ----------------------------------------------------------------

    def eof_received(self) -> bool | None:  # type: ignore[override]  # asyncio's signature
        """The client finished sending (a half close): a request received in
        full still gets its answer, then the connection closes. (A request
        whose body was cut short ends as a disconnect.)"""
        self._eof = True
        cycle = getattr(self, "cycle", None)
        if self._lingering or cycle is None or cycle.response_complete or cycle.more_body:
            return None  # asyncio closes the transport
        return True

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._eof:
            self._proxy.close()

    def close_after_response(self) -> None:
        """Close; when the client may still be sending (a request body not
        read to its end), stop writing and read away what it sends (bounded
        in bytes and time) before closing, so that closing with unread data
        does not reset the connection and destroy the answer."""
        transport = self._raw_transport
        if transport.is_closing() or self._lingering:
            return
        self._proxy.flush()
        # ``cycle`` is None before the first request (uvicorn types it as always set).
        unfinished = self._rejection is not None or bool(getattr(self.cycle, "more_body", False))
        if not unfinished or not transport.can_write_eof():
            transport.close()
            return
        self._lingering = True
        transport.write_eof()
        transport.resume_reading()
        self._linger_timer = self.loop.call_later(LINGER_SECONDS, transport.close)


async def _receive_all(cycle: Any) -> dict[str, Any]:
    """uvicorn's ``receive`` of ``cycle``, but body bytes that arrived before
    the connection was lost are handed over before the disconnect (uvicorn's
    own answers ``http.disconnect`` at once and drops them; a resumable
    upload keeps every byte it received). The ASGI extension
    ``objectstore.receive``: ``asgi`` uses it in place of ``receive``."""
    message: dict[str, Any] = await cycle.receive()
    if message["type"] == "http.disconnect" and cycle.body and not cycle.response_complete:
        body = bytes(cycle.body)
        cycle.body = bytearray()
        return {"type": "http.request", "body": body, "more_body": True}
    return message


class UvicornServer(uvicorn.Server):
    """Closes the connections still open once the grace period is over."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        for connection in list(self.server_state.connections):
            transport = getattr(connection, "transport", None)
            if isinstance(transport, asyncio.Transport):
                transport.abort()


def bind(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that
    # say so (with proto 0 every small write after the first waits ~40 ms
    # for a delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def make_config(
    app: ObjectstoreApp,
    *,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
) -> uvicorn.Config:
    protocol = type(
        "ObjectstoreProtocol",
        (ObjectstoreProtocol,),
        {"header_timeout": header_timeout, "body_timeout": idle_timeout},
    )
    return uvicorn.Config(
        app,
        http=protocol,
        loop="asyncio",
        ws="none",
        lifespan="off",
        interface="asgi3",
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        headers=[("server", SERVER_HEADER)],
        timeout_keep_alive=idle_timeout,  # type: ignore[arg-type]  # a float works
        timeout_graceful_shutdown=_GRACE_SECONDS,
    )
