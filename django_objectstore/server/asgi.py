"""The ASGI application the HTTP server library (uvicorn) runs: turns its
messages into a ``Request``, runs the endpoint and sends its ``Response``
with backpressure, then writes the request log line.

Endpoints are plain functions. Most run right on the event loop: requests
without a body or with a small one (read first, without blocking the loop),
whose work is short. Requests with a large or chunked body, and the
endpoints marked ``blocking``, run on a worker thread, which takes the body
from the connection as it is read (``body_pipe``) and hands the response
back to the loop. The app runs under ``runner``'s protocol, whose ASGI
extensions it uses.
Measured in ``benchmarks/FINDINGS.md``: a thread hop per request would cost
a third of the small-request rate.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterator, MutableMapping
from typing import Any

from django_objectstore.server import routing
from django_objectstore.server.errors import HTTPError
from django_objectstore.server.headers import RequestHeaders
from django_objectstore.server.query import redact_query
from django_objectstore.server.request import BodySource, ClientGone, Request, Response
from django_objectstore.server.service import Service

__all__ = ["PRELOAD_LIMIT", "ObjectstoreApp", "error_response"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Coroutine[Any, Any, None]]

logger = logging.getLogger("django_objectstore.server")

#: Bodies declared this small are read before the endpoint runs on the loop.
PRELOAD_LIMIT = 1024 * 1024
#: An unread request body up to this size is read and dropped after the
#: answer, keeping the connection; a larger one closes it.
DRAIN_LIMIT = 64 * 1024 * 1024
#: Past this many bytes of a streamed answer, a vanished client stops it.
_WATCH_AFTER = 4 * 1024 * 1024
_NO_BODY_STATUS = frozenset({204, 304})
#: The ASGI extension (and message type) for sending a stored file's bytes
#: with the kernel's sendfile (``runner.ObjectstoreProtocol``).
_SENDFILE = "objectstore.sendfile"
#: The ASGI extension whose ``receive`` hands over the body bytes that arrived
#: before a lost connection ahead of the disconnect (``runner``).
_RECEIVE = "objectstore.receive"
#: The ASGI extension that hands the rest of a request body to a worker
#: thread as the connection reads it (``runner``, ``body_pipe``).
_PIPE = "objectstore.body_pipe"
#: A slow stream is read on a worker thread this much (or this long) per hop.
_GATHER_BYTES = 256 * 1024
_GATHER_SECONDS = 0.2


def error_response(exc: HTTPError) -> Response:
    headers = list(exc.headers)
    if exc.form == "json":
        body = json.dumps({"detail": exc.detail}, separators=(",", ":")).encode("utf-8")
        return Response(exc.status, [("content-type", "application/json"), *headers], body)
    if exc.form == "text":
        text = [("content-type", "text/plain; charset=utf-8"), *headers]
        return Response(exc.status, text, exc.detail.encode("utf-8"))
    return Response(exc.status, headers)


class _Buffered:
    """A body already read: in full, or ``cut`` short by the client going
    away (its bytes are handed out, then ``ClientGone`` is raised)."""

    __slots__ = ("_cut", "_data")

    def __init__(self, data: bytes, cut: bool = False) -> None:
        self._data: bytes | None = data
        self._cut = cut

    def next_block(self) -> bytes | None:
        data, self._data = self._data, None
        if data is None and self._cut:
            raise ClientGone("the client disconnected during the request body")
        return data or None


class _Exchange:
    """Accounting for one request: status sent, bytes sent, bytes charged."""

    __slots__ = ("charged", "sent", "status")

    def __init__(self) -> None:
        self.status = 0
        self.sent = 0
        self.charged = 0


class ObjectstoreApp:
    """ASGI 3 application serving ``service``; ``executor`` runs the
    requests that do not run on the event loop."""

    def __init__(self, service: Service, executor: concurrent.futures.Executor) -> None:
        self.service = service
        self.executor = executor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        receive = scope.get("extensions", {}).get(_RECEIVE) or receive
        started = time.perf_counter()
        service = self.service
        method: str = scope["method"]
        raw_path = scope["raw_path"].decode("latin-1")
        raw_query = scope["query_string"].decode("latin-1")
        headers = RequestHeaders(
            [
                (name.decode("latin-1"), value.decode("latin-1").strip(" \t"))
                for name, value in scope["headers"]
            ]
        )
        transfer = headers.get("transfer-encoding")
        length = headers.get("content-length")
        has_body = transfer is not None or (length is not None and length.strip() != "0")
        resolved = routing.resolve(method, raw_path, raw_query)
        exchange = _Exchange()
        with service.counter_lock:
            service.counters.in_flight += 1
        request: Request | None = None
        try:
            endpoint = resolved.endpoint
            # A request that fsyncs goes to a worker thread only while this
            # process serves another request: alone, it may hold the loop for
            # the length of one fsync (the thread hop would cost more).
            on_thread = endpoint is not None and (
                endpoint.blocking
                or (
                    endpoint.syncs
                    and service.backend.syncs_writes
                    and service.counters.in_flight > 1
                )
            )
            source: BodySource | None = None
            loop = asyncio.get_running_loop()
            if has_body and transfer is None and int(length or 0) <= PRELOAD_LIMIT:
                body, complete = await _read_all(receive)
                if not complete:
                    if not body:
                        return  # the client went away
                    # what arrived still counts (resumable uploads keep it);
                    # on a thread, where the ClientGone that follows is handled
                    on_thread = True
                source = _Buffered(body, cut=not complete)
            elif has_body:
                source = scope["extensions"][_PIPE]()
                on_thread = True
            request = Request(method, raw_path, raw_query, headers, scope["http_version"], source)
            if on_thread:
                try:
                    response = await loop.run_in_executor(
                        self.executor, self._respond, request, resolved
                    )
                except ClientGone as exc:
                    logger.debug("%s %s: %s", method, raw_path, exc)
                    return
            else:
                response = self._respond(request, resolved)
            await self._send(scope, receive, send, request, response, exchange)
        finally:
            received = request.received if request is not None else 0
            if request is not None and request.metered is not None and service.rate_limiter:
                service.rate_limiter.record_bytes(
                    *request.metered, received - exchange.charged + exchange.sent
                )
            with service.counter_lock:
                service.counters.in_flight -= 1
                service.counters.requests += 1
                service.counters.bytes += exchange.sent + received
            logger.info(
                "%s %s%s %s %d %.1fms",
                method,
                raw_path,
                f"?{redact_query(raw_query)}" if raw_query else "",
                exchange.status,
                exchange.sent,
                (time.perf_counter() - started) * 1000,
            )

    def _respond(self, request: Request, resolved: routing.Resolved) -> Response:
        try:
            return routing.handle(self.service, request, resolved)
        except HTTPError as exc:
            return error_response(exc)
        except ClientGone:
            raise
        except Exception:
            logger.exception("error handling %s %s", request.method, request.raw_path)
            return error_response(HTTPError(500, "service error: internal server error"))

    def _messages(
        self, request: Request, response: Response, exchange: _Exchange
    ) -> Generator[Message, None, None]:
        """The ASGI messages of ``response``; the caller sends each."""
        limiter = self.service.rate_limiter
        if request.metered is not None and limiter is not None and request.received:
            # charge the request body before the client can see the response
            limiter.record_bytes(*request.metered, request.received - exchange.charged)
            exchange.charged = request.received
        headers = [
            (name.encode("latin-1"), value.encode("latin-1")) for name, value in response.headers
        ]
        if _must_close(request):
            headers.append((b"connection", b"close"))
        status = response.status
        exchange.status = status
        stream = response.stream
        if stream is None:
            sized = any(name == b"content-length" for name, _ in headers)  # a HEAD's own
            if status not in _NO_BODY_STATUS and status >= 200 and not sized:
                headers.append((b"content-length", b"%d" % len(response.body)))
            yield {"type": "http.response.start", "status": status, "headers": headers}
            body = b"" if request.method == "HEAD" else response.body
            exchange.sent += len(body)
            yield {"type": "http.response.body", "body": body}
            return
        try:
            yield {"type": "http.response.start", "status": status, "headers": headers}
            if response.file is not None and request.method != "HEAD":
                # _send hands it to the sendfile extension, or reads the stream
                yield {"type": _SENDFILE, "file": response.file}
            for block in stream:
                if block:
                    exchange.sent += len(block)
                    yield {"type": "http.response.body", "body": block, "more_body": True}
            yield {"type": "http.response.body", "body": b""}
        finally:
            if response.on_close is not None:
                response.on_close()

    async def _send(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        request: Request,
        response: Response,
        exchange: _Exchange,
    ) -> None:
        """Send ``response``; a stream marked ``slow`` is iterated on a
        worker thread, block by block."""
        watch: asyncio.Task[None] | None = None
        messages = self._messages(request, response, exchange)
        loop = asyncio.get_running_loop()
        batch: list[Message] = []
        try:
            while True:
                if not response.slow:
                    message = next(messages, None)
                else:  # blocks gathered on a worker thread, many per hop
                    if not batch:
                        batch = await loop.run_in_executor(self.executor, _gather, messages)
                        batch.reverse()
                    message = batch.pop() if batch else None
                if message is None:
                    break
                if message["type"] == _SENDFILE:
                    sendfile = scope.get("extensions", {}).get(_SENDFILE)
                    if sendfile is None:
                        continue  # the stream that follows carries the same bytes
                    file, offset, count = message["file"]
                    await sendfile(file, offset, count)
                    exchange.sent += count
                    response.stream = None  # the bytes are sent
                    messages.close()
                    messages = _end()
                    continue
                await send(message)
                if (
                    watch is None
                    and exchange.sent > _WATCH_AFTER
                    and request.body_state in ("none", "done")  # else receive() is the body's
                ):
                    watch = asyncio.ensure_future(_until_disconnect(receive))
                elif watch is not None and watch.done():
                    logger.debug(
                        "client left during the answer to %s %s", request.method, request.raw_path
                    )
                    break
        finally:
            messages.close()
            if watch is not None:
                watch.cancel()


def _end() -> Generator[Message, None, None]:
    """The last message of a body whose bytes went out with sendfile."""
    yield {"type": "http.response.body", "body": b""}


def _gather(messages: Iterator[Message]) -> list[Message]:
    """The next messages of a slow stream: up to about 256 KiB of body, or
    what came within 0.2 s (an empty list at the end)."""
    out: list[Message] = []
    size = 0
    started = time.monotonic()
    for message in messages:
        out.append(message)
        size += len(message.get("body", b""))
        if size >= _GATHER_BYTES or time.monotonic() - started > _GATHER_SECONDS:
            break
    return out


def _must_close(request: Request) -> bool:
    """Whether the connection must close after this answer: a body left half
    read cannot be skipped, and a large unread one is not worth reading."""
    if request.body_state == "reading":
        return True
    if request.body_state != "pending":
        return False
    length = request.content_length
    return length is not None and length > DRAIN_LIMIT


async def _read_all(receive: Receive) -> tuple[bytes, bool]:
    """The request body and whether it is complete (not when the client
    disconnects first: then the bytes that arrived)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), False
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), True


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
