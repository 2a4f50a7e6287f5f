"""HTTP layer: routing on the raw path, request bodies (Content-Length and
chunked, streamed), responses and the per-request log line."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

from django_objectstore._protocol import parse_scopes
from django_objectstore._protocol_parsing import U32_MAX, loads_json, parse_range, parse_unsigned
from django_objectstore.server import resumable
from django_objectstore.server.auth import AuthError, Authorization
from django_objectstore.server.backend_modes import NOT_IMPLEMENTED, check_name, multipart_refused
from django_objectstore.server.batch import run_batch
from django_objectstore.server.headers import HeaderError, RequestHeaders, read_headers
from django_objectstore.server.keda import CONTENT_TYPE as KEDA_CONTENT_TYPE
from django_objectstore.server.keda import keda_text
from django_objectstore.server.resumable import is_resumable
from django_objectstore.server.service import (
    REASONS,
    SERVER_HEADER,
    ClientError,
    Service,
    disposition,
    logger,
    meta_from_headers,
    meta_headers,
)
from django_objectstore.server.spool import spooled
from django_objectstore.server.storage import (
    Identity,
    StoredObject,
    UploadNotFound,
    Writer,
)

__all__ = ["ObjectstoreHTTPServer", "RequestHandler"]

BUFFER = 256 * 1024
# Request bodies are read in blocks this big: one write to storage per MiB.
_BODY_BLOCK = 1024 * 1024
_DRAIN_LIMIT = 64 * 1024 * 1024
_COMPLETE_LIMIT = 2 * 1024 * 1024
_REDACTED = frozenset({"os_auth", "os_sig"})
_VERSION = re.compile(r"HTTP/([0-9]{1,10})\.([0-9]{1,10})")


class ClientGone(Exception):
    """The client disconnected or sent a malformed body framing."""


class BadFraming(ClientGone):
    """The chunked body is malformed (answered with 400 and a closed connection)."""


class ObjectstoreHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], service: Service) -> None:
        self.service = service
        self._open: dict[socket.socket, threading.Thread] = {}
        self._open_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, RequestHandler)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open[request] = threading.current_thread()
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._open_lock:
                self._open.pop(request, None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """An exception escaped a connection's handler. A client that reset
        or dropped its connection (between requests, typically) is routine;
        anything else is logged with its traceback, never printed."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            logger.debug("connection from %s ended: %s", client_address[0], exc)
            return
        logger.exception("error on the connection from %s", client_address[0])

    def close_connections(self, timeout: float = 5.0) -> None:
        """Shut down open connections (idle keep-alive ones included) and
        join their threads."""
        with self._open_lock:
            open_now = list(self._open.items())
        for sock, _ in open_now:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for _, thread in open_now:
            if thread is not threading.current_thread():
                thread.join(timeout)


class _Route:
    __slots__ = ("has_key", "key", "kind", "scopes", "trailing", "usecase")

    def __init__(self, kind: str, usecase: str, scopes: str, key: str, trailing: bool) -> None:
        self.kind = kind
        self.usecase = usecase
        self.scopes = scopes
        self.key = key
        self.trailing = trailing
        self.has_key = bool(key)


_PREFIXES = (
    ("/v1/objects:multipart:complete/", "complete"),
    ("/v1/objects:multipart:parts/", "parts"),
    ("/v1/objects:multipart/", "multipart"),
    ("/v1/objects:batch/", "batch"),
    ("/v1/objects/", "object"),
)


def _match(raw_path: str) -> _Route | None:
    for prefix, kind in _PREFIXES:
        if raw_path.startswith(prefix):
            rest = raw_path[len(prefix) :]
            usecase, sep, rest = rest.partition("/")
            if not sep:
                return None
            scopes, sep, key = rest.partition("/")
            return _Route(kind, usecase, scopes, key, bool(sep))
    return None


def _allowed(route: _Route) -> tuple[str, ...] | None:
    """Methods a route accepts, or ``None`` when the path is unknown (404)."""
    kind = route.kind
    if kind == "object":
        return ("GET", "HEAD", "PUT", "DELETE", "PATCH") if route.has_key else ("POST",)
    if kind == "multipart":
        return ("PUT", "DELETE") if route.has_key else ("POST",)
    if kind == "parts":
        return ("GET", "HEAD", "PUT") if route.has_key else None
    if kind == "complete":
        return ("POST",) if route.has_key else None
    if kind == "batch":
        return ("POST",) if route.trailing and not route.has_key else None
    return None


def _decode_component(raw: str, what: str) -> str:
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise _InvalidPath(f"Invalid UTF-8 in `{what}`") from None


class _InvalidPath(Exception):
    pass


def redact_query(raw_query: str) -> str:
    pieces = []
    for piece in raw_query.split("&"):
        name = piece.partition("=")[0]
        pieces.append(f"{name}=[redacted]" if name.lower() in _REDACTED else piece)
    return "&".join(pieces)


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    rbufsize = BUFFER
    server: ObjectstoreHTTPServer
    headers: RequestHeaders  # type: ignore[assignment]  # not an email Message
    raw_requestline: bytes  # set by the standard library before parse_request

    # -- plumbing ------------------------------------------------------------

    def parse_request(self) -> bool:
        """The request line and header block, as the standard library reads
        them but with the headers read by ``read_headers`` (the email parser
        it uses costs a tenth of the time of a small request) and HTTP/1.x
        only. Returns False after answering a request that cannot be read."""
        self.command = None  # type: ignore[assignment]  # as the standard library does
        self.request_version = "HTTP/0.9"
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if not words:
            return False
        if len(words) != 3:
            self.send_error(400, f"Bad request syntax ({self.requestline!r})")
            return False
        command, path, version = words
        match = _VERSION.fullmatch(version)
        if match is None:
            self.send_error(400, f"Bad request version ({version!r})")
            return False
        number = (int(match[1]), int(match[2]))
        if number >= (2, 0):
            self.send_error(505, f"Invalid HTTP version ({version[5:]})")
            return False
        self.request_version = version
        self.close_connection = number < (1, 1)
        self.command = command
        # Like the standard library: "//x" is not a scheme-relative URI here.
        self.path = "/" + path.lstrip("/") if path.startswith("//") else path
        try:
            self.headers = read_headers(self.rfile)
        except HeaderError as exc:
            self.send_error(exc.status, exc.message)
            return False
        connection = (self.headers.get("connection") or "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        if number >= (1, 1) and (self.headers.get("expect") or "").lower() == "100-continue":
            return self.handle_expect_100()
        return True

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._linger = False

    def finish(self) -> None:
        super().finish()
        if self._linger:
            self._lingering_close()

    def _lingering_close(self) -> None:
        """We answered without reading the whole request body. Closing now
        with unread data would make the kernel send a reset, which can destroy
        the response before the client reads it; so stop writing, then read
        and discard what the client still sends (bounded) before closing."""
        try:
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(1.0)
            discarded = 0
            while discarded < _DRAIN_LIMIT:
                data = self.connection.recv(BUFFER)
                if not data:
                    break
                discarded += len(data)
        except OSError:
            pass

    def version_string(self) -> str:
        return SERVER_HEADER

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors found by the stdlib parser (bad request line, too many
        headers, ...): a plain-text response, and the connection closes."""
        self.close_connection = True
        body = (message or REASONS.get(code, "Error")).encode("latin-1", "replace")
        head = self._head(
            code,
            [("content-type", "text/plain; charset=utf-8"), ("content-length", str(len(body)))],
        )
        with contextlib.suppress(OSError):
            self.wfile.write(head + body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self._status = int(code) if str(code).isdigit() else 0

    def handle_one_request(self) -> None:
        self._status = 0
        self._sent = 0
        self._body_state = "none"  # none | pending | done
        self._started = time.perf_counter()
        self.raw_query = ""
        self._received = 0
        self._charged = 0
        self._metered: tuple[str, tuple[tuple[str, str], ...]] | None = None
        super().handle_one_request()

    def _dispatch(self) -> None:
        service = self.server.service
        target = self.path
        if target.startswith(("http://", "https://")):
            target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
        raw_path, _, self.raw_query = target.partition("?")
        self.raw_path = raw_path
        self._body_state = "pending" if self._has_body() else "none"
        with service.counter_lock:
            service.counters.in_flight += 1
        try:
            self._route(service, raw_path)
        except ClientGone as exc:
            self.close_connection = True
            if isinstance(exc, BadFraming) and not self._status:
                self._send_json_error(400, f"client error: invalid request body: {exc}")
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception:  # noqa: BLE001 - one bad request must not kill the connection thread
            logger.exception("error handling %s %s", self.command, raw_path)
            self.close_connection = True
            if not self._status:
                with contextlib.suppress(OSError):
                    self._send_json_error(500, "service error: internal server error")
        finally:
            self._finish_body()
            if self.close_connection and self._body_state in ("pending", "reading"):
                self._linger = True
            if self._metered is not None and service.rate_limiter is not None:
                service.rate_limiter.record_bytes(
                    *self._metered, self._received - self._charged + self._sent
                )
            with service.counter_lock:
                service.counters.in_flight -= 1
                service.counters.requests += 1
                service.counters.bytes += self._sent + self._received
            query = f"?{redact_query(self.raw_query)}" if self.raw_query else ""
            logger.info(
                "%s %s%s %s %d %.1fms",
                self.command,
                raw_path,
                query,
                self._status,
                self._sent,
                (time.perf_counter() - self._started) * 1000,
            )

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = _dispatch

    # -- request bodies ------------------------------------------------------

    def _has_body(self) -> bool:
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            return True
        length = self.headers.get("content-length")
        return length is not None and length.strip() not in ("", "0")

    def _content_length(self) -> int | None:
        value = self.headers.get("content-length")
        if value is None or "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            return None
        value = value.strip()
        if not value.isdigit():
            raise BadFraming(f"invalid Content-Length {value!r}")
        return int(value)

    def body(self) -> Iterator[memoryview]:
        """Yield the request body in blocks (each view is valid until the
        next one is requested): up to 256 KiB for chunked bodies, up to 1 MiB
        for bodies with a Content-Length (no bigger than the body, so a
        small request does not pay for a big buffer). Raises ``ClientGone``
        when the body ends early."""
        if self._body_state != "pending":
            return
        self._body_state = "reading"
        rfile = self.rfile
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            view = memoryview(bytearray(BUFFER))
            while True:
                line = rfile.readline(1024)
                if not line.endswith(b"\n"):
                    raise ClientGone("body ended inside a chunk header")
                size_text = line.split(b";", 1)[0].strip()
                if (
                    not size_text
                    or size_text.strip(b"0123456789abcdefABCDEF")
                    or len(size_text) > 16
                ):
                    raise BadFraming(f"invalid chunk size {size_text[:20]!r}")
                size = int(size_text, 16)
                if size == 0:
                    while True:  # trailers
                        trailer = rfile.readline(65536)
                        if not trailer.endswith(b"\n"):
                            raise ClientGone("body ended inside the trailers")
                        if trailer in (b"\r\n", b"\n"):
                            break
                    break
                while size:
                    got = rfile.readinto(view[: min(size, BUFFER)])
                    if not got:
                        raise ClientGone("body ended inside a chunk")
                    size -= got
                    self._received += got
                    yield view[:got]
                if rfile.readline(3) not in (b"\r\n", b"\n"):
                    raise BadFraming("chunk not followed by CRLF")
        else:
            remaining = self._content_length() or 0
            view = memoryview(bytearray(min(remaining, _BODY_BLOCK)))
            while remaining:
                got = rfile.readinto(view[: min(remaining, _BODY_BLOCK)])
                if not got:
                    raise ClientGone("body shorter than Content-Length")
                remaining -= got
                self._received += got
                yield view[:got]
        self._body_state = "done"

    def read_body(self, limit: int) -> bytes:
        """The whole body; ``ClientError`` 413 past ``limit`` bytes."""
        out = bytearray()
        for block in self.body():
            out += block
            if len(out) > limit:
                raise ClientError(413, "Failed to buffer the request body: length limit exceeded")
        return bytes(out)

    def _finish_body(self) -> None:
        """After the response: drain an unread body of up to 64 MiB so the
        connection stays usable (and the client is not reset mid-send),
        otherwise close the connection."""
        if self._body_state != "pending":
            if self._body_state == "reading":
                self.close_connection = True
            return
        if self.close_connection:
            return
        drained = 0
        try:
            for block in self.body():
                drained += len(block)
                if drained > _DRAIN_LIMIT:
                    self.close_connection = True
                    return
        except (ClientGone, OSError):
            self.close_connection = True

    def write_stream(self, writer: Writer) -> int:
        try:
            for block in self.body():
                writer.write(block)
            return writer.commit()
        except BaseException:
            writer.abort()
            raise

    # -- responses -----------------------------------------------------------

    def _head(self, status: int, headers: Iterable[tuple[str, str]]) -> bytes:
        self._status = status
        limiter = self.server.service.rate_limiter
        if self._metered is not None and limiter is not None and self._received > self._charged:
            # charge the request body before the client can see the response
            limiter.record_bytes(*self._metered, self._received - self._charged)
            self._charged = self._received
        lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}"]
        lines.append(f"server: {SERVER_HEADER}")
        lines.append(f"date: {self.date_time_string()}")
        for name, value in headers:
            lines.append(f"{name}: {value}")
        if self._body_state == "reading":
            self.close_connection = True  # a body we stopped reading halfway
        elif self._body_state == "pending":
            # An unread body is drained after the response when it is small
            # (or chunked, up to the same limit); a large one closes.
            length = self.headers.get("content-length")
            chunked = "chunked" in (self.headers.get("transfer-encoding") or "").lower()
            if not chunked and (
                length is None or not length.strip().isdigit() or int(length) > _DRAIN_LIMIT
            ):
                self.close_connection = True
        if self.close_connection:
            lines.append("connection: close")
        lines.append("")
        lines.append("")
        return "\r\n".join(lines).encode("latin-1")

    def send_simple(
        self,
        status: int,
        body: bytes = b"",
        headers: Iterable[tuple[str, str]] = (),
        *,
        length: bool = True,
    ) -> None:
        all_headers = list(headers)
        if length and status not in (204, 304) and not 100 <= status < 200:
            all_headers.append(("content-length", str(len(body))))
        head = self._head(status, all_headers)
        if self.command == "HEAD":
            body = b""
        self.wfile.write(head + body)
        self._sent += len(body)

    def send_stream(
        self, status: int, headers: list[tuple[str, str]], chunks: Iterable[bytes]
    ) -> None:
        """Send ``chunks`` as they come: chunked for HTTP/1.1, else until close."""
        chunked = self.request_version == "HTTP/1.1"
        if not chunked:
            self.close_connection = True
        framing = [("transfer-encoding", "chunked")] if chunked else []
        self.wfile.write(self._head(status, [*headers, *framing]))
        for chunk in chunks:
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:
                self.wfile.write(chunk)
            self._sent += len(chunk)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def send_json(self, status: int, payload: object) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        self.send_simple(status, body, [("content-type", "application/json")])

    def _send_json_error(self, status: int, detail: str) -> None:
        self.send_json(status, {"detail": detail})

    def send_text(self, status: int, text: str) -> None:
        self.send_simple(
            status, text.encode("utf-8"), [("content-type", "text/plain; charset=utf-8")]
        )

    def send_chunked(
        self,
        status: int,
        headers: list[tuple[str, str]],
        found: StoredObject,
        start: int,
        stop: int,
    ) -> None:
        """Send ``found[start:stop]`` as one chunk of a chunked response,
        with ``sendfile`` for files."""
        head = self._head(status, [*headers, ("transfer-encoding", "chunked")])
        size = stop - start
        if size == 0:
            self.wfile.write(head + b"0\r\n\r\n")
            return
        prefix = head + b"%x\r\n" % size
        self._send_range(prefix, found, start, stop, b"\r\n0\r\n\r\n")

    def send_sized(
        self,
        status: int,
        headers: list[tuple[str, str]],
        found: StoredObject,
        start: int,
        stop: int,
    ) -> None:
        head = self._head(status, [*headers, ("content-length", str(stop - start))])
        self._send_range(head, found, start, stop, b"")

    def _send_range(
        self, prefix: bytes, found: StoredObject, start: int, stop: int, suffix: bytes
    ) -> None:
        if found.data is not None:
            view = memoryview(found.data)[start:stop]
            if len(view) <= BUFFER:
                self.wfile.write(prefix + view + suffix)
            else:
                self.wfile.write(prefix)
                self.connection.sendall(view)
                self.wfile.write(suffix)
        else:
            assert found.file is not None
            self.wfile.write(prefix)
            sent = self.connection.sendfile(found.file, found.offset + start, stop - start)
            if sent != stop - start:
                raise ConnectionError("short sendfile")
            self.wfile.write(suffix)
        self._sent += stop - start

    # -- routing -------------------------------------------------------------

    def _route(self, service: Service, raw_path: str) -> None:
        method = self.command
        if raw_path in ("/health", "/ready", "/keda"):
            if method not in ("GET", "HEAD"):
                self.send_simple(405, headers=[("allow", "GET,HEAD")])
                return
            self._meta_endpoint(service, raw_path)
            return
        if service.max_requests is not None and service.counters.in_flight > service.max_requests:
            self.send_simple(503)
            return
        route = _match(raw_path)
        allowed = _allowed(route) if route is not None else None
        if route is None or allowed is None:
            self.send_simple(404)
            return
        if method not in allowed:
            self.send_simple(405, headers=[("allow", ",".join(allowed))])
            return
        try:
            auth = service.keys.authorize(method, raw_path, self.raw_query, self.headers)
        except AuthError as exc:
            self._send_json_error(exc.status, exc.detail)
            return
        try:
            usecase = _decode_component(route.usecase, "usecase")
            scopes_text = _decode_component(route.scopes, "scopes")
            key = _decode_component(route.key, "key")
            if not usecase:
                raise _InvalidPath("Invalid URL: usecase must be non-empty")
            try:
                scopes = tuple(parse_scopes(scopes_text))
            except ValueError as exc:
                raise _InvalidPath(f"Invalid URL: {exc}") from None
        except _InvalidPath as exc:
            self.send_text(400, str(exc))
            return
        downstream = self.headers.get("x-downstream-service")
        if any(k.matches(usecase, scopes, downstream) for k in service.killswitches):
            self.send_text(403, "Object access is disabled for this scope through killswitches")
            return
        limiter = service.rate_limiter
        if limiter is not None:
            if not limiter.admit(usecase, scopes):
                self.send_text(429, "Object access is rate limited")
                return
            self._metered = (usecase, scopes)
        query = parse_qsl(self.raw_query, keep_blank_values=True)
        ident = Identity(usecase, scopes, key)
        # Backend modes and resumable uploads (backend_modes.py, resumable.py).
        if multipart_refused(service, route.kind):
            if route.kind == "complete":
                self.send_json(
                    200, {"error": {"code": "internal error", "message": NOT_IMPLEMENTED}}
                )
            else:
                self._send_json_error(501, NOT_IMPLEMENTED)
            return
        if route.kind == "object" and is_resumable(method, dict(query)):
            name = "_resumable"
        else:
            name = f"_{route.kind}_{method.lower()}"
        # As upstream (axum): a GET route answers HEAD unless it has a HEAD
        # handler of its own; the GET handlers leave the body out for HEAD.
        if method == "HEAD" and not hasattr(self, name):
            name = f"_{route.kind}_get"
        handler = getattr(self, name)
        try:
            if route.kind != "batch":
                check_name(service, ident)
            handler(service, auth, ident, dict(query))
        except (ClientError, AuthError) as exc:
            if self._status:
                raise
            self._send_json_error(exc.status, exc.detail)
        except _QueryError as exc:
            self.send_text(400, f"Failed to deserialize query string: {exc}")

    def _meta_endpoint(self, service: Service, raw_path: str) -> None:
        if raw_path == "/health":
            self.send_text(200, "OK")
        elif raw_path == "/ready":
            if service.shutting_down or service.shutdown_marker.exists():
                self.send_text(503, "Shutting down")
            else:
                self.send_text(200, "OK")
        else:
            body = keda_text(service).encode("ascii")
            self.send_simple(200, body, [("content-type", KEDA_CONTENT_TYPE)])

    # -- single objects ------------------------------------------------------

    def _insert(self, service: Service, auth: Authorization, ident: Identity) -> str:
        meta = meta_from_headers(self.headers, service.now())
        service.check_policy(ident.usecase, meta)
        auth.check("object.write", ident.usecase, ident.scopes)
        with service.backend_slot():
            self.write_stream(service.backend.writer(ident, meta))
        return ident.key

    def _object_post(
        self, service: Service, auth: Authorization, ident: Identity, query: dict[str, str]
    ) -> None:
        ident = Identity(ident.usecase, ident.scopes, str(uuid.uuid4()))
        self.send_json(201, {"key": self._insert(service, auth, ident)})

    def _object_put(
        self, service: Service, auth: Authorization, ident: Identity, query: dict[str, str]
    ) -> None:
        self.send_json(200, {"key": self._insert(service, auth, ident)})

    def _object_delete(
        self, service: Service, auth: Authorization, ident: Identity, query: dict[str, str]
    ) -> None:
        auth.check("object.delete", ident.usecase, ident.scopes)
        with service.backend_slot():
            service.backend.delete(ident)
        self.send_simple(204)

    def _object_get(
        self, service: Service, auth: Authorization, ident: Identity, query: dict[str, str]
    ) -> None:
        range_header = self.headers.get("range") if self.command == "GET" else None
        byte_range = _parse_range(range_header) if range_header is not None else None
        auth.check("object.read", ident.usecase, ident.scopes)
        with service.backend_slot():
            found = service.open_live(ident)
        if found is None:
            self.send_simple(404)
            return
        with found:
            headers = meta_headers(found.meta, found.size)
            if found.meta.filename is not None:
                headers.append(("content-disposition", disposition(found.meta.filename)))
            headers.append(("accept-ranges", "bytes"))
            if self.command == "HEAD":
                self.send_simple(204, headers=headers)
                return
            if byte_range is None:
                if self.request_version == "HTTP/1.1":
                    self.send_chunked(200, headers, found, 0, found.size)
                else:  # HTTP/1.0 clients cannot read chunked responses
                    self.send_sized(200, headers, found, 0, found.size)
                return
            start, end = byte_range
            size = found.size
            if start is None:  # suffix range
                assert end is not None
                start = max(0, size - end)
                end = size - 1
            elif end is None or end >= size:
                end = size - 1
            if size == 0 or start >= size:
                self.send_simple(
                    416,
                    headers=[("content-range", f"bytes */{size}"), ("accept-ranges", "bytes")],
                )
                return
            headers.append(("content-range", f"bytes {start}-{end}/{size}"))
            self.send_sized(206, headers, found, start, end + 1)

    def _object_patch(
        self, service: Service, auth: Authorization, ident: Identity, query: dict[str, str]
    ) -> None:
        raw = self.read_body(_COMPLETE_LIMIT)
        try:
            request = loads_json(raw)
        except ValueError as exc:
            raise ClientError(400, f"client error: request body is not valid JSON: {exc}") from None
        auth.check("object.write", ident.usecase, ident.scopes)
        with service.backend_slot():
            service.extend_expiry(ident, request)
        self.send_simple(204)

    def _resumable(
        self, service: Service, auth: Authorization, ident: Identity, query: dict[str, str]
    ) -> None:
        answer = resumable.handle(
            service,
            auth,
            self.command,
            ident,
            query,
            self.headers,
            self._content_length(),
            self.body,
        )
        if answer.payload is None:
            self.send_simple(answer.status, headers=answer.headers)
        else:
            body = json.dumps(answer.payload, separators=(",", ":")).encode("utf-8")
            self.send_simple(
                answer.status, body, [*answer.headers, ("content-type", "application/json")]
            )

    # -- multipart -----------------------------------------------------------

    def _multipart_post(
        self, service: Service, auth: Authorization, ident: Identity, query: dict[str, str]
    ) -> None:
        ident = Identity(ident.usecase, ident.scopes, str(uuid.uuid4()))
        self._multipart_put(service, auth, ident, query)

    def _multipart_put(
        self, service: Service, auth: Authorization, ident: Identity, query: dict[str, str]
    ) -> None:
        meta = meta_from_headers(self.headers, service.now())
        service.check_policy(ident.usecase, meta)
        auth.check("object.write", ident.usecase, ident.scopes)
        with service.backend_slot():
            upload_id = service.backend.create_upload(ident, meta)
        self.send_json(200, {"key": ident.key, "upload_id": upload_id})

    def _multipart_delete(
        self, service: Service, auth: Authorization, ident: Identity, query: dict[str, str]
    ) -> None:
        upload_id = _upload_id(query)
        auth.check("object.write", ident.usecase, ident.scopes)
        with service.backend_slot():
            service.backend.abort_upload(ident, upload_id)
        self.send_simple(204)

    def _parts_put(
        self, service: Service, auth: Authorization, ident: Identity, query: dict[str, str]
    ) -> None:
        upload_id = _upload_id(query)
        part_number = _int_param(query, "part_number", required=True, minimum=1)
        assert part_number is not None
        if self._content_length() is None:
            raise ClientError(400, "client error: Content-Length header is required")
        auth.check("object.write", ident.usecase, ident.scopes)
        with service.backend_slot():
            try:
                writer, etag = service.backend.part_writer(ident, upload_id, part_number)
            except UploadNotFound:
                raise ClientError(404, "service error: multipart upload not found") from None
            self.write_stream(writer)
        self.send_json(200, {"etag": etag})

    def _parts_get(
        self, service: Service, auth: Authorization, ident: Identity, query: dict[str, str]
    ) -> None:
        upload_id = _upload_id(query)
        max_parts = _int_param(query, "max_parts", required=False, minimum=0)
        marker = _int_param(query, "part_number_marker", required=False, minimum=0) or 0
        auth.check("object.write", ident.usecase, ident.scopes)
        try:
            with service.backend_slot():
                parts = service.backend.list_parts(ident, upload_id)
        except UploadNotFound:
            raise ClientError(404, "service error: multipart upload not found") from None
        parts = [p for p in parts if p.part_number > marker]
        truncated = max_parts is not None and len(parts) > max_parts
        if max_parts is not None:
            parts = parts[:max_parts]
        listing: dict[str, object] = {
            "parts": [
                {
                    "part_number": p.part_number,
                    "etag": p.etag,
                    "last_modified": p.last_modified.strftime("%Y-%m-%dT%H:%M:%S.%f000Z"),
                    "size": p.size,
                }
                for p in parts
            ],
            "is_truncated": truncated,
        }
        if truncated and parts:
            listing["next_part_number_marker"] = parts[-1].part_number
        self.send_json(200, listing)

    def _complete_post(
        self, service: Service, auth: Authorization, ident: Identity, query: dict[str, str]
    ) -> None:
        from django_objectstore.server.multipart import complete_upload, parse_complete_body

        upload_id = _upload_id(query)
        content_type = (self.headers.get("content-type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            self.send_text(415, "Expected request with `Content-Type: application/json`")
            return
        raw = self.read_body(_COMPLETE_LIMIT)
        parsed = parse_complete_body(raw)
        if isinstance(parsed, tuple):
            self.send_text(*parsed)
            return
        head = self._head(
            200, [("content-type", "application/json"), ("transfer-encoding", "chunked")]
        )
        self.wfile.write(head)
        result: list[dict[str, object]] = []
        worker = threading.Thread(
            target=lambda: result.append(complete_upload(service, auth, ident, upload_id, parsed)),
            daemon=True,
        )
        worker.start()
        while True:
            worker.join(1.0)
            if not worker.is_alive():
                break
            self.wfile.write(b"1\r\n \r\n")  # keep-alive space while the backend works
        outcome = result[0] if result else {"error": {"code": "internal error", "message": "?"}}
        body = json.dumps(outcome, separators=(",", ":")).encode("utf-8")
        self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        self._sent += len(body)

    # -- batch -----------------------------------------------------------------

    def _batch_post(
        self, service: Service, auth: Authorization, ident: Identity, query: dict[str, str]
    ) -> None:
        content_type = self.headers.get("content-type") or ""
        boundary = _form_boundary(content_type)
        if boundary is None:
            self.send_text(400, "Invalid `boundary` for `multipart/form-data` request")
            return
        out_boundary = f"os-boundary-{uuid.uuid4().hex}"
        answer = run_batch(service, auth, ident, boundary, self.body(), out_boundary)
        self.send_stream(
            200,
            [("content-type", f'multipart/form-data; boundary="{out_boundary}"')],
            spooled(answer, name="objectstore-batch"),
        )


class _QueryError(Exception):
    pass


def _upload_id(query: dict[str, str]) -> str:
    upload_id = query.get("upload_id")
    if upload_id is None:
        raise _QueryError("missing field `upload_id`")
    if (
        not upload_id
        or upload_id == "."
        or upload_id.startswith("/")
        or ".." in upload_id
        or "/" in upload_id
    ):
        raise _QueryError("invalid upload id")
    return upload_id


def _int_param(query: dict[str, str], name: str, *, required: bool, minimum: int) -> int | None:
    value = query.get(name)
    if value is None:
        if required:
            raise _QueryError(f"missing field `{name}`")
        return None
    try:
        number = parse_unsigned(value, U32_MAX)
    except ValueError as exc:
        raise _QueryError(f"{name}: {exc}") from None
    if number < minimum:
        raise _QueryError(f"{name}: must be at least {minimum}")
    return number


def _parse_range(value: str) -> tuple[int | None, int | None] | None:
    """``parse_range`` with its errors as the 400 upstream answers."""
    try:
        return parse_range(value)
    except ValueError as exc:
        raise ClientError(400, f"client error: invalid Range header: {exc}") from None


def _form_boundary(content_type: str) -> str | None:
    main, _, params = content_type.partition(";")
    if main.strip().lower() != "multipart/form-data":
        return None
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "boundary":
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return value or None
    return None
