"""Pure helpers for the parts of the Objectstore wire protocol that the client
and the local server share verbatim: scope segments, the duration and
expiration grammar, timestamps, path and header-value percent-encoding, and
the canonical form signed by pre-signed URLs.

Nothing here does I/O or imports Django, the client or the server; both layers
import from here so the two sides can never drift apart. Section numbers refer
to ``objectstore-protocol.md``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final
from urllib.parse import unquote

from django_objectstore._protocol_durations import (
    ExpirationKind,
    format_duration,
    format_expiration,
    parse_duration,
    parse_expiration,
)

__all__ = [
    "AUTH_ERROR_PREFIX",
    "EMPTY_SCOPES",
    "HEADER_AUTH",
    "HEADER_EXPIRATION",
    "HEADER_FILENAME",
    "HEADER_META_PREFIX",
    "HEADER_ORIGIN",
    "HEADER_SIZE",
    "HEADER_TIME_CREATED",
    "HEADER_TIME_EXPIRES",
    "MAX_PRESIGN_SECONDS",
    "MULTIPART_RESOURCE",
    "OBJECTS_RESOURCE",
    "PARAM_AUTH",
    "PARAM_DURATION",
    "PARAM_KID",
    "PARAM_SIG",
    "PARAM_TIMESTAMP",
    "PERMISSIONS",
    "PERMISSION_DELETE",
    "PERMISSION_READ",
    "PERMISSION_WRITE",
    "USECASE_CHARS",
    "USECASE_MAX_LENGTH",
    "USECASE_MIN_LENGTH",
    "ExpirationKind",
    "canonical_query",
    "decode_header_value",
    "encode_header_value",
    "encode_path",
    "encode_query_value",
    "format_duration",
    "format_expiration",
    "format_timestamp",
    "invalid_scope_char",
    "invalid_usecase",
    "is_auth_refusal",
    "parse_duration",
    "parse_expiration",
    "parse_scopes",
    "parse_timestamp",
    "presign_canonical_string",
    "render_scopes",
]

# -- header names (section 5) ------------------------------------------------

HEADER_AUTH: Final = "x-os-auth"
HEADER_EXPIRATION: Final = "x-sn-expiration"
HEADER_TIME_CREATED: Final = "x-sn-time-created"
HEADER_TIME_EXPIRES: Final = "x-sn-time-expires"
HEADER_ORIGIN: Final = "x-sn-origin"
HEADER_FILENAME: Final = "x-sn-filename"
HEADER_SIZE: Final = "x-sn-size"
HEADER_META_PREFIX: Final = "x-snme-"

# -- errors (sections 8.1 and 9.6) --------------------------------------------

#: Every authentication/authorization error detail starts with this.
AUTH_ERROR_PREFIX: Final = "auth error: "


def is_auth_refusal(status: int | None, body: str | None) -> bool:
    """Whether a failed response refused the request's credentials: 401 and
    403 always; 400 only with an auth error detail (no token, a JWT without
    ``kid``, malformed pre-signed parameters), which is otherwise a bad request."""
    if status in (401, 403):
        return True
    return status == 400 and AUTH_ERROR_PREFIX in (body or "")


#: Longest validity of a pre-signed URL the server accepts (section 10.1).
MAX_PRESIGN_SECONDS: Final = 7 * 24 * 3600

# -- resources (section 2) ---------------------------------------------------

#: First path segments after ``/v1/`` of single objects and of multipart uploads
#: (whose actions append ``:parts`` or ``:complete``).
OBJECTS_RESOURCE: Final = "objects"
MULTIPART_RESOURCE: Final = "objects:multipart"

# -- tokens and permissions (sections 9.2 and 9.3) ---------------------------

#: Query parameter carrying a JWT (no ``Bearer`` prefix).
PARAM_AUTH: Final = "os_auth"
PERMISSION_READ: Final = "object.read"
PERMISSION_WRITE: Final = "object.write"
PERMISSION_DELETE: Final = "object.delete"
PERMISSIONS: Final = (PERMISSION_READ, PERMISSION_WRITE, PERMISSION_DELETE)

# -- pre-signed URL query parameters (section 10.1) --------------------------

PARAM_KID: Final = "os_kid"
PARAM_TIMESTAMP: Final = "os_timestamp"
PARAM_DURATION: Final = "os_duration"
PARAM_SIG: Final = "os_sig"

# -- usecases (section 3.1) --------------------------------------------------

USECASE_MIN_LENGTH: Final = 3
USECASE_MAX_LENGTH: Final = 64
USECASE_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def invalid_usecase(name: str) -> str | None:
    """Why ``name`` is not a usecase name clients may use (3-64 characters
    from ``A-Z a-z 0-9 _ -``; the server itself only rejects empty names), or
    ``None`` when it is one."""
    if not USECASE_MIN_LENGTH <= len(name) <= USECASE_MAX_LENGTH:
        return (
            f"usecase name must be {USECASE_MIN_LENGTH}-{USECASE_MAX_LENGTH} ASCII "
            f"characters long, got {name!r}"
        )
    if not set(name) <= USECASE_CHARS:
        return f"usecase name must contain only ASCII letters, digits, '_' or '-', got {name!r}"
    return None


# -- scopes (section 3.2) ----------------------------------------------------

EMPTY_SCOPES: Final = "_"

_SCOPE_CHARS: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-()$!+'"
)


def invalid_scope_char(text: str) -> str | None:
    """Return the first character of ``text`` not allowed in a scope name or
    value, or ``None`` when every character is allowed."""
    for char in text:
        if char not in _SCOPE_CHARS:
            return char
    return None


def render_scopes(scopes: list[tuple[str, str]]) -> str:
    """Render ordered ``(name, value)`` pairs as the wire segment
    ``name1=value1;name2=value2``, or ``_`` when there are none.

    Raises ``ValueError`` naming the offending part if a name or value is empty
    or has a character outside ``A-Z a-z 0-9 _ - ( ) $ ! + '``.
    """
    if not scopes:
        return EMPTY_SCOPES
    for name, value in scopes:
        for part, what in ((name, "name"), (value, "value")):
            if not part:
                raise ValueError(f"scope {what} must be non-empty (in {name!r}={value!r})")
            bad = invalid_scope_char(part)
            if bad is not None:
                raise ValueError(
                    f"invalid character {bad!r} in scope {what} {part!r}; "
                    "allowed are letters, digits and _ - ( ) $ ! + '"
                )
    return ";".join(f"{name}={value}" for name, value in scopes)


def parse_scopes(segment: str) -> list[tuple[str, str]]:
    """Parse a (percent-decoded) scopes segment into ordered pairs.

    Raises ``ValueError`` with upstream's wording (without the ``Invalid URL:``
    prefix) for malformed segments.
    """
    if segment == EMPTY_SCOPES:
        return []
    pairs: list[tuple[str, str]] = []
    for element in segment.split(";"):
        name, sep, value = element.partition("=")
        if not sep:
            raise ValueError("scope must be 'key=value'")
        if not name or not value:
            raise ValueError("key and value must be non-empty")
        for part in (name, value):
            bad = invalid_scope_char(part)
            if bad is not None:
                raise ValueError(f"invalid character '{bad}'")
        pairs.append((name, value))
    return pairs


# -- timestamps (section 5.5) ------------------------------------------------


def format_timestamp(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC, as the server emits them."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (``Z`` or an offset; up to 9 fractional
    digits) into an aware UTC ``datetime``. Raises ``ValueError``."""
    match = re.fullmatch(
        r"(\d{4}-\d\d-\d\d)[Tt ](\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?([Zz]|[+-]\d\d:\d\d)?", text
    )
    if match is None:
        raise ValueError(f"invalid timestamp {text!r}")
    date, time, fraction, zone = match.groups()
    micro = (fraction or "").ljust(6, "0")[:6]
    offset = "+00:00" if zone in (None, "Z", "z") else zone
    return datetime.fromisoformat(f"{date}T{time}.{micro}{offset}").astimezone(UTC)


# -- percent-encoding (sections 3.4 and 20) ----------------------------------

_UNRESERVED: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
)
_PATH_SAFE: Final = _UNRESERVED | frozenset(b"/:@!$&'()*+,;=")
_QUERY_SAFE: Final = _PATH_SAFE | frozenset(b"?")
_PATH_TABLE: Final = tuple(chr(b) if b in _PATH_SAFE else f"%{b:02X}" for b in range(256))
_QUERY_TABLE: Final = tuple(chr(b) if b in _QUERY_SAFE else f"%{b:02X}" for b in range(256))
# Visible ASCII except '%' stays literal in metadata header values.
_HEADER_TABLE: Final = tuple(
    chr(b) if 0x20 <= b <= 0x7E and b != 0x25 else f"%{b:02X}" for b in range(256)
)


def encode_path(path: str) -> str:
    """Percent-encode a whole request path as a literal string, the way the
    official Python client does: unreserved characters and
    ``/ : @ ! $ & ' ( ) * + , ; =`` stay, everything else (``%`` included)
    becomes ``%XX`` of its UTF-8 bytes."""
    return "".join(_PATH_TABLE[b] for b in path.encode("utf-8"))


def encode_query_value(value: str) -> str:
    """Like :func:`encode_path`, but also keeps ``?`` (used for pre-signing)."""
    return "".join(_QUERY_TABLE[b] for b in value.encode("utf-8"))


def encode_header_value(value: str) -> str:
    """Percent-encode a metadata header value (clients >= 0.2.1): visible ASCII
    except ``%`` stays; ``%``, controls and non-ASCII become ``%XX``. This makes
    header injection through metadata impossible."""
    return "".join(_HEADER_TABLE[b] for b in value.encode("utf-8"))


def decode_header_value(value: str) -> str:
    """Inverse of :func:`encode_header_value`. Values written by older clients
    (never encoded) read back unchanged unless they happen to contain a valid
    ``%XX`` escape; escapes that do not form UTF-8 are kept as-is."""
    if "%" not in value:
        return value
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError:
        return value


# -- pre-signed URLs (section 10.2) ------------------------------------------


def canonical_query(raw_query: str) -> str:
    """Canonicalise a raw (still encoded) query string for signing: drop empty
    pieces and ``os_sig``, lower-case names, sort whole ``name=value`` strings."""
    pieces: list[str] = []
    for piece in raw_query.split("&"):
        if not piece:
            continue
        name, sep, value = piece.partition("=")
        name = name.lower()
        if name == PARAM_SIG:
            continue
        pieces.append(f"{name}={value}" if sep else name)
    pieces.sort()
    return "&".join(pieces)


def presign_canonical_string(method: str, raw_path: str, raw_query: str) -> str:
    """The exact string a pre-signed URL's signature covers:
    ``METHOD\\nPATH\\nCANONICAL_QUERY`` with ``HEAD`` signed as ``GET``."""
    method = method.upper()
    if method == "HEAD":
        method = "GET"
    return f"{method}\n{raw_path}\n{canonical_query(raw_query)}"
