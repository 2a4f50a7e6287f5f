"""Upstream's parsers for values a server receives (sections 7, 8.2, 11):
unsigned numbers as Rust's ``str::parse`` reads them, the ``Range`` header
grammar (and the ``Range``/``Content-Range`` forms clients send and read),
JSON bodies that may be nested without bound, and which object keys every
backend can store (section 3.3). Wire rules like
those of ``_protocol`` (kept beside it, which is at its size limit): pure,
no I/O, importing neither Django, the client nor the server."""

from __future__ import annotations

import json
import re
from typing import Final

__all__ = [
    "MAX_KEY_SEGMENT_BYTES",
    "U32_MAX",
    "U64_MAX",
    "format_byte_range",
    "invalid_key_reason",
    "loads_json",
    "parse_content_range",
    "parse_range",
    "parse_unsigned",
]

#: Largest values of the unsigned integer types upstream parses into.
U32_MAX: Final = 2**32 - 1
U64_MAX: Final = 2**64 - 1

_UNSIGNED = re.compile(r"\+?([0-9]+)")


def parse_unsigned(text: str, maximum: int = U64_MAX) -> int:
    """Parse an unsigned decimal the way upstream (Rust's ``str::parse``)
    does: ASCII digits with an optional leading ``+``, no spaces, at most
    ``maximum``. Raises ``ValueError`` saying why, without echoing a long
    value, and never spends more than linear time on a long one."""
    match = _UNSIGNED.fullmatch(text)
    if match is None:
        raise ValueError(f"{text[:20]!r} is not an unsigned decimal number")
    digits = match.group(1).lstrip("0") or "0"
    if len(digits) > len(str(maximum)) or int(digits) > maximum:
        raise ValueError(f"number too large (the maximum is {maximum})")
    return int(digits)


def parse_range(value: str) -> tuple[int | None, int | None] | None:
    """Parse a ``Range`` request header as upstream does (section 7): the
    value is lower-cased; ``bytes=A-B``, ``bytes=A-`` or ``bytes=-N`` with
    each number as :func:`parse_unsigned` reads a 64-bit one (so ``+5`` is
    allowed, spaces and overflow are not). Returns ``None`` for a multi-range
    (which upstream ignores), ``(None, N)`` for a suffix range, else
    ``(A, B)`` with ``B`` ``None`` when open. Raises ``ValueError``."""
    text = value.lower()
    if not text.startswith("bytes="):
        raise ValueError("only the 'bytes' unit is supported")
    spec = text[len("bytes=") :]
    if "," in spec:
        return None
    first, sep, last = spec.partition("-")
    if not sep:
        raise ValueError(f"malformed range {spec[:40]!r} (expected 'A-B', 'A-' or '-N')")
    try:
        start = parse_unsigned(first) if first else None
        end = parse_unsigned(last) if last else None
    except ValueError as exc:
        raise ValueError(f"malformed range {spec[:40]!r}: {exc}") from None
    if start is None:
        if end is None or end == 0:
            raise ValueError("suffix length must be at least 1")
        return None, end
    if end is not None and end < start:
        raise ValueError("range end is before its start")
    return start, end


def loads_json(raw: bytes | str) -> object:
    """``json.loads`` for request bodies: every way a body can fail to parse
    (syntax, bad UTF-8, nesting too deep for the parser) is a ``ValueError``
    whose message says which."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


# -- byte ranges as clients send and read them (section 7) -----------------


def format_byte_range(start: int, end: int | None) -> str:
    """The ``Range`` value for stored bytes ``start``..``end`` (inclusive;
    ``end=None`` reads to the end; a negative ``start`` without ``end`` reads
    the last ``-start`` bytes). ``ValueError`` for ranges that say nothing."""
    if start < 0:
        if end is not None:
            raise ValueError("a suffix range (negative start) takes no end")
        return f"bytes={start}"
    if end is None:
        return f"bytes={start}-"
    if end < start:
        raise ValueError(f"range end {end} is before start {start}")
    return f"bytes={start}-{end}"


def parse_content_range(value: str) -> tuple[int | None, int | None, int | None]:
    """``bytes 0-4/22`` -> (0, 4, 22); ``bytes */22`` -> (None, None, 22);
    an unknown total (``*``) is ``None``. ``ValueError`` if malformed."""
    unit, _, rest = value.strip().partition(" ")
    span, slash, total_text = rest.partition("/")
    if unit.lower() != "bytes" or not slash:
        raise ValueError(f"invalid Content-Range {value!r}")
    total = None if total_text == "*" else int(total_text)
    if span == "*":
        return None, None, total
    first, dash, last = span.partition("-")
    if not dash:
        raise ValueError(f"invalid Content-Range {value!r}")
    return int(first), int(last), total


# -- keys (section 3.3) -------------------------------------------------------

#: Longest ``/``-separated key segment the filesystem backends can store.
MAX_KEY_SEGMENT_BYTES: Final = 255
_CONTROL: Final = re.compile("[\x00-\x1f\x7f]")


def invalid_key_reason(key: str) -> str | None:
    """Why ``key`` cannot be stored under the same name everywhere, or
    ``None``: it must be non-empty valid UTF-8 without control characters,
    without empty, ``.`` or ``..`` segments (servers reject them or
    normalise them away) and without segments longer than
    ``MAX_KEY_SEGMENT_BYTES`` (filesystem backends cannot store them)."""
    if not key:
        return "it is empty"
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid UTF-8 (it contains a lone surrogate)"
    control = _CONTROL.search(key)
    if control is not None:
        return f"it contains the control character {control.group()!r}"
    segments = key.split("/")
    if "" in segments or "." in segments or ".." in segments:
        return "it has an empty, '.' or '..' path segment"
    if len(encoded) > MAX_KEY_SEGMENT_BYTES:
        for segment in segments:
            if len(segment.encode("utf-8")) > MAX_KEY_SEGMENT_BYTES:
                return (
                    f"its segment {segment[:20]!r}... is longer than {MAX_KEY_SEGMENT_BYTES} "
                    "bytes (UTF-8)"
                )
    return None
