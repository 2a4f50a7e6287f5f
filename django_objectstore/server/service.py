"""The server's shared state (backend, keys, usecase rules, clock, counters)
and the protocol rules that do not depend on HTTP framing: metadata headers
in and out, usecase policy, expiry and the TTI bump."""

from __future__ import annotations

import contextlib
import logging
import re
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django_objectstore._protocol import (
    HEADER_EXPIRATION,
    HEADER_FILENAME,
    HEADER_META_PREFIX,
    HEADER_ORIGIN,
    HEADER_SIZE,
    HEADER_TIME_CREATED,
    HEADER_TIME_EXPIRES,
    ExpirationKind,
    format_duration,
    format_expiration,
    format_timestamp,
    parse_duration,
    parse_expiration,
    parse_timestamp,
)
from django_objectstore.server.auth import Authorization, KeyDirectory
from django_objectstore.server.config import Killswitch, UsecasePolicy
from django_objectstore.server.errors import HTTPError
from django_objectstore.server.headers import RequestHeaders
from django_objectstore.server.limits import ConcurrencyLimit, RateLimiter
from django_objectstore.server.model import Backend, Identity, ObjectMeta, StoredObject
from django_objectstore.server.resumable_store import Sessions

__all__ = [
    "REASONS",
    "VERSION",
    "ClientError",
    "Service",
    "disposition",
    "meta_from_headers",
    "meta_headers",
]

#: Reported in ``Server`` headers and by ``version``: upstream's server crate version.
VERSION = "0.1.0"
SERVER_HEADER = f"objectstore/{VERSION}"
SHUTDOWN_MARKER = Path(tempfile.gettempdir()) / "objectstore.down"

logger = logging.getLogger("django_objectstore.server")

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"  # noqa: S105 - an RFC 9110 token, not a secret
_MEDIA_TYPE = re.compile(
    rf"{_TOKEN}/{_TOKEN}(?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|\"(?:[^\"\\]|\\.)*\"))*[ \t]*"
)
_HEADER_NAME = re.compile(_TOKEN)

#: Reason phrases as upstream (hyper) writes them.
REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    206: "Partial Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    411: "Length Required",
    413: "Payload Too Large",
    414: "URI Too Long",
    415: "Unsupported Media Type",
    416: "Range Not Satisfiable",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}


#: The name the service's errors had before ``HTTPError`` was the only one
#: (kept so code written against it keeps working).
ClientError = HTTPError


def _valid_value(value: str) -> bool:
    return all(char == "\t" or " " <= char <= "~" for char in value)


def _last(headers: RequestHeaders, name: str) -> str | None:
    values = headers.get_all(name)
    return values[-1] if values else None


def _header_error() -> ClientError:
    return HTTPError(400, "service error: metadata error: error dealing with http headers")


def meta_from_headers(headers: RequestHeaders, now: datetime) -> ObjectMeta:
    """Build the metadata of an insert from its request headers (section 5.1).
    Raises ``HTTPError`` (400) for invalid values."""
    content_type = _last(headers, "content-type") or "application/octet-stream"
    if not _valid_value(content_type):
        raise _header_error()
    if _MEDIA_TYPE.fullmatch(content_type) is None:
        raise HTTPError(400, "service error: metadata error: invalid content type")
    compression = _last(headers, "content-encoding")
    if compression is not None and compression != "zstd":
        raise HTTPError(400, "service error: metadata error: invalid compression value")
    expiration = _last(headers, HEADER_EXPIRATION)
    kind: ExpirationKind = "manual"
    duration: timedelta | None = None
    if expiration is not None:
        try:
            kind, duration = parse_expiration(expiration)
        except ValueError as exc:
            raise ClientError(
                400, f"service error: metadata error: invalid expiration policy value: {exc}"
            ) from None
    origin = _last(headers, HEADER_ORIGIN)
    filename = _last(headers, HEADER_FILENAME)
    custom: dict[str, str] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered.startswith(HEADER_META_PREFIX) and len(lowered) > len(HEADER_META_PREFIX):
            custom_name = lowered[len(HEADER_META_PREFIX) :]
            if _HEADER_NAME.fullmatch(custom_name) is None:
                raise _header_error()
            custom[custom_name] = value
    checked: list[str | None] = [origin, filename, *custom.values()]
    if any(item is not None and not _valid_value(item) for item in checked):
        raise _header_error()
    return ObjectMeta(
        content_type=content_type,
        compression=compression,
        expiration=kind,
        duration=duration,
        time_created=now,
        time_expires=_deadline(now, duration, expiration) if duration is not None else None,
        origin=origin,
        filename=filename,
        custom=tuple(custom.items()),
    )


def _deadline(now: datetime, duration: timedelta, shown: str | None) -> datetime:
    try:
        return now + duration
    except OverflowError:
        raise ClientError(
            400,
            f"service error: metadata error: invalid expiration policy value: {shown!r} "
            "ends after the year 9999; use a shorter duration",
        ) from None


def stored_duration(meta: ObjectMeta) -> timedelta | None:
    """The expiration duration to report. A ``ttl:`` object whose deadline an
    extension moved reports about its new total lifetime since creation
    (section 20), to the second; otherwise the duration it was stored with."""
    if meta.expiration != "ttl" or meta.time_expires is None or meta.duration is None:
        return meta.duration
    lifetime = meta.time_expires - meta.time_created
    if lifetime == meta.duration:
        return meta.duration
    return timedelta(seconds=round(lifetime.total_seconds()))


def disposition(filename: str) -> str:
    """``Content-Disposition`` for a stored filename (section 5.6)."""
    if filename and set(filename) == {"."}:
        safe = "-" * len(filename)
    else:
        safe = filename.replace("/", "-").replace("\\", "-")
    safe = safe.replace('"', '\\"')
    return f'attachment; filename="{safe}"'


def meta_headers(meta: ObjectMeta, size: int) -> list[tuple[str, str]]:
    """Metadata response headers (section 5.2), without Content-Disposition."""
    out = [("content-type", meta.content_type)]
    if meta.compression:
        out.append(("content-encoding", meta.compression))
    if meta.expiration != "manual":
        out.append((HEADER_EXPIRATION, format_expiration(meta.expiration, stored_duration(meta))))
    out.append((HEADER_TIME_CREATED, format_timestamp(meta.time_created)))
    if meta.time_expires is not None:
        out.append((HEADER_TIME_EXPIRES, format_timestamp(meta.time_expires)))
    if meta.origin is not None:
        out.append((HEADER_ORIGIN, meta.origin))
    if meta.filename is not None:
        out.append((HEADER_FILENAME, meta.filename))
    out.extend((f"{HEADER_META_PREFIX}{name}", value) for name, value in meta.custom)
    out.append((HEADER_SIZE, str(size)))
    return out


@dataclass
class Counters:
    requests: int = 0
    bytes: int = 0
    in_flight: int = 0


class Service:
    """State shared by all request threads."""

    def __init__(
        self,
        backend: Backend,
        keys: KeyDirectory,
        usecases: Mapping[str, UsecasePolicy],
        clock: Callable[[], datetime],
    ) -> None:
        self.backend = backend
        self.keys = keys
        self.usecases = dict(usecases)
        self.clock = clock
        self.counters = Counters()
        self.counter_lock = threading.Lock()
        self.shutting_down = False
        self.shutdown_marker = SHUTDOWN_MARKER
        self.killswitches: list[Killswitch] = []
        self.max_requests: int | None = None
        self.rate_limiter: RateLimiter | None = None
        self.concurrency = ConcurrencyLimit(None)
        #: Smallest size of every part but the last at completion (None: any).
        self.min_part_size: int | None = None
        #: Backend modes (backend_modes.py): resumable sessions (None: create
        #: answers 501), multipart support, object-name limit in bytes.
        self.resumable: Sessions | None = None
        self.multipart = True
        self.name_limit: int | None = None

    @contextlib.contextmanager
    def backend_slot(self, *, bulk: bool = False) -> Iterator[None]:
        """Hold one of the backend concurrency permits (``bulk`` for batch
        operations, which may use only a share of them); 429 when none is free."""
        with self.concurrency.permit(bulk=bulk) as acquired:
            if not acquired:
                raise HTTPError(429, "service error: concurrency limit reached")
            yield

    def now(self) -> datetime:
        return self.clock()

    def write_meta(
        self, auth: Authorization, ident: Identity, headers: RequestHeaders
    ) -> ObjectMeta:
        """The metadata of a write (a put, a multipart or a resumable create)
        after the checks every write makes, in upstream's order: the headers
        and the usecase's policy (400), then ``object.write`` (403)."""
        meta = meta_from_headers(headers, self.now())
        self.check_policy(ident.usecase, meta)
        auth.check("object.write", ident.usecase, ident.scopes)
        return meta

    def check_policy(self, usecase: str, meta: ObjectMeta) -> None:
        """Enforce the usecase's expiration rules (section 6.5); 400 on violation."""
        policy = self.usecases.get(usecase)
        if policy is None:
            return
        rule = getattr(policy, meta.expiration)
        shown = format_expiration(meta.expiration, meta.duration)
        if not rule.allowed:
            raise HTTPError(
                400,
                f"client error: expiration policy '{shown}' is not allowed "
                f"for use case '{usecase}'",
            )
        if rule.max is not None and meta.duration is not None and meta.duration > rule.max:
            raise HTTPError(
                400,
                f"client error: expiration duration {format_duration(meta.duration)} "
                f"exceeds maximum of {format_duration(rule.max)} for use case '{usecase}'",
            )

    def open_live(self, ident: Identity) -> StoredObject | None:
        """Open an object unless missing or expired (expired ones are removed).
        Counts as an access for TTI objects: the deadline moves to
        ``now + tti`` unless still within the debounce window; the returned
        metadata shows the deadline from before the bump (section 6.3)."""
        found = self.backend.open(ident)
        if found is None:
            return None
        now = self.now()
        meta = found.meta
        if meta.time_expires is not None and meta.time_expires <= now:
            found.close()
            self.backend.remove_expired(ident, now)
            return None
        if meta.expiration == "tti" and meta.duration is not None:
            debounce = min(meta.duration / 4, timedelta(hours=24))
            if meta.time_expires is None or meta.time_expires < now + meta.duration - debounce:
                self.backend.set_expires(ident, meta.time_expires, now + meta.duration)
        return found

    def extend_expiry(self, ident: Identity, request: object) -> None:
        """Apply a PATCH ``extend_expiry`` request (section 20, revised): a
        target at or before the current deadline succeeds and changes
        nothing. Raises ``ClientError`` 400 (bad body), 404 (missing or
        expired) or 409 (manual expiration, or changed concurrently). Not an
        access: a TTI deadline is not bumped by it."""
        if not isinstance(request, dict) or set(request) != {"extend_expiry"}:
            raise ClientError(400, 'client error: expected {"extend_expiry": {...}}')
        target = parse_extension(request["extend_expiry"])
        now = self.now()
        found = self.backend.open(ident)
        if found is None:
            raise HTTPError(404, "client error: object not found")
        found.close()
        meta = found.meta
        if meta.time_expires is not None and meta.time_expires <= now:
            self.backend.remove_expired(ident, now)
            raise ClientError(404, "client error: object not found (expired)")
        if meta.time_expires is None or meta.expiration == "manual":
            raise ClientError(
                409,
                "client error: the object has manual expiration; there is no deadline to extend",
            )
        deadline = target.resolve(now, meta.time_created)
        if deadline <= meta.time_expires:
            return  # already met: never shortened
        if not self.backend.set_expires(ident, meta.time_expires, deadline):
            raise ClientError(409, "client error: the object changed concurrently; retry")


@dataclass(frozen=True)
class Extension:
    """A parsed ``extend_expiry`` target: an absolute time, or a duration
    after ``now`` or after the object's creation."""

    at: datetime | None = None
    after: timedelta = timedelta(0)
    base: str = "now"

    def resolve(self, now: datetime, created: datetime) -> datetime:
        """The deadline asked for; 400 when it lies past the year 9999."""
        if self.at is not None:
            return self.at
        try:
            return (now if self.base == "now" else created) + self.after
        except OverflowError:
            raise ClientError(
                400,
                "client error: extend_expiry: the target lies after the year 9999; "
                "use a shorter 'after'",
            ) from None


_FRACTION = re.compile(r"\.([0-9]+)")
_EXTENSION_SHAPE = (
    'client error: extend_expiry needs {"at": "<RFC 3339 time>"} or '
    '{"after": "<duration>", "from": "now"|"creation"}'
)


def parse_extension(spec: object) -> Extension:
    """Validate an ``extend_expiry`` object (400 on any problem): ``at`` is
    rounded up to whole seconds, fractional seconds of ``after`` are
    truncated."""
    if isinstance(spec, dict) and set(spec) == {"at"} and isinstance(spec["at"], str):
        text = spec["at"]
        try:
            moment = parse_timestamp(text)
        except ValueError as exc:
            raise ClientError(400, f"client error: extend_expiry: invalid 'at': {exc}") from None
        fraction = _FRACTION.search(text)
        if fraction is not None and fraction.group(1).strip("0"):
            try:
                moment = moment.replace(microsecond=0) + timedelta(seconds=1)
            except OverflowError:
                raise ClientError(
                    400, "client error: extend_expiry: 'at' lies after the year 9999"
                ) from None
        return Extension(at=moment)
    if (
        isinstance(spec, dict)
        and set(spec) == {"after", "from"}
        and isinstance(spec["after"], str)
        and spec["from"] in ("now", "creation")
    ):
        try:
            after = parse_duration(spec["after"])
        except ValueError as exc:
            raise ClientError(400, f"client error: extend_expiry: invalid 'after': {exc}") from None
        return Extension(after=timedelta(days=after.days, seconds=after.seconds), base=spec["from"])
    raise ClientError(400, _EXTENSION_SHAPE)
