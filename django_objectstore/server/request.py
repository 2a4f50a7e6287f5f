"""What an endpoint sees of one HTTP exchange: the ``Request`` (method, raw
path and query, headers, a streamed body), the ``Call`` (the request once
routed and authorized) and the ``Response`` it returns
(a small body, or a stream of blocks sent with backpressure). The HTTP
server library does the framing; ``asgi`` turns its messages into these."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Protocol

from django_objectstore.server.auth import Authorization
from django_objectstore.server.errors import HTTPError
from django_objectstore.server.headers import RequestHeaders
from django_objectstore.server.model import Identity
from django_objectstore.server.service import Service

__all__ = [
    "BodySource",
    "Call",
    "ClientGone",
    "Request",
    "Response",
    "empty_response",
    "json_response",
    "text_response",
]


class ClientGone(Exception):
    """The client disconnected before its request body ended."""


class BodySource(Protocol):
    def next_block(self) -> bytes | memoryview | None:
        """The next block of the body, ``None`` at its end; raises
        ``ClientGone`` when the client went away."""


class Request:
    """One request. ``raw_path`` and ``raw_query`` are as sent (not
    percent-decoded); ``headers`` keep arrival order. ``body()`` may be
    iterated once; ``received`` counts the body bytes read so far."""

    __slots__ = (
        "_source",
        "body_state",
        "headers",
        "http_version",
        "metered",
        "method",
        "raw_path",
        "raw_query",
        "received",
    )

    def __init__(
        self,
        method: str,
        raw_path: str,
        raw_query: str,
        headers: RequestHeaders,
        http_version: str,
        source: BodySource | None,
    ) -> None:
        self.method = method
        self.raw_path = raw_path
        self.raw_query = raw_query
        self.headers = headers
        self.http_version = http_version
        self._source = source
        #: ``none`` (no body), ``pending``, ``reading`` or ``done``.
        self.body_state = "pending" if source is not None else "none"
        self.received = 0
        #: ``(usecase, scopes)`` when the rate limiter meters this request's bytes.
        self.metered: tuple[str, tuple[tuple[str, str], ...]] | None = None

    @property
    def content_length(self) -> int | None:
        """The declared body length; ``None`` for a chunked body."""
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            return None
        value = self.headers.get("content-length")
        return int(value) if value is not None and value.strip().isdigit() else None

    def body(self) -> Iterator[bytes | memoryview]:
        """Yield the body in blocks of up to about 1 MiB (each valid until
        the next is requested). Raises ``ClientGone`` when it ends early."""
        if self.body_state != "pending" or self._source is None:
            return
        self.body_state = "reading"
        while True:
            block = self._source.next_block()
            if block is None:
                break
            self.received += len(block)
            yield block
        self.body_state = "done"

    def read_body(self, limit: int) -> bytes:
        """The whole body; ``HTTPError`` 413 past ``limit`` bytes."""
        out = bytearray()
        for block in self.body():
            out += block
            if len(out) > limit:
                raise HTTPError(413, "Failed to buffer the request body: length limit exceeded")
        return bytes(out)


@dataclass(slots=True)
class Response:
    """``body`` is sent with a Content-Length. With ``stream``, its blocks
    are sent as they come (chunked unless ``headers`` has a Content-Length)
    and ``on_close`` runs once the stream is done or abandoned. A ``slow``
    stream may wait between blocks, so it is iterated off the event loop."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    stream: Iterable[bytes | memoryview] | None = None
    on_close: Callable[[], None] | None = None
    slow: bool = False
    #: ``(file, offset, count)``: a stream of a stored file the HTTP layer
    #: may send with the kernel's sendfile (``stream`` reads the same bytes).
    file: tuple[IO[bytes], int, int] | None = None


def empty_response(status: int, headers: Iterable[tuple[str, str]] = ()) -> Response:
    return Response(status, list(headers))


def json_response(status: int, payload: object) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return Response(status, [("content-type", "application/json")], body)


def text_response(status: int, text: str) -> Response:
    return Response(status, [("content-type", "text/plain; charset=utf-8")], text.encode("utf-8"))


@dataclass(slots=True)
class Call:
    """An authorized call to an object endpoint: the request, the server's
    state, the caller's permissions, the object it names and its query."""

    service: Service
    request: Request
    auth: Authorization
    ident: Identity
    query: dict[str, str]
