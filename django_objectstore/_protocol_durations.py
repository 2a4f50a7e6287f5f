"""The duration and ``x-sn-expiration`` grammar (sections 5.4 and 20): what
servers and every client version write, and humantime's full unit table for
reading. Part of the wire rules of ``_protocol``, which re-exports all of it
(kept in a module of its own so neither passes 450 lines)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Final, Literal

__all__ = [
    "ExpirationKind",
    "format_duration",
    "format_expiration",
    "parse_duration",
    "parse_expiration",
]

_NANOS_PER_UNIT: Final[dict[str, int]] = {}
for _names, _nanos in (
    (("nanos", "nsec", "ns"), 1),
    (("usec", "us", "µs"), 1_000),
    (("millis", "msec", "ms"), 1_000_000),
    (("seconds", "second", "secs", "sec", "s"), 1_000_000_000),
    (("minutes", "minute", "mins", "min", "m"), 60 * 1_000_000_000),
    (("hours", "hour", "hrs", "hr", "h"), 3_600 * 1_000_000_000),
    (("days", "day", "d"), 86_400 * 1_000_000_000),
    (("weeks", "week", "wks", "wk", "w"), 7 * 86_400 * 1_000_000_000),
    (("months", "month", "M"), 2_630_016 * 1_000_000_000),
    (("years", "year", "yrs", "yr", "y"), 31_557_600 * 1_000_000_000),
):
    for _name in _names:
        _NANOS_PER_UNIT[_name] = _nanos

# ASCII digits only, and few enough that the total stays computable; the
# total must fit a timestamp (Python's datetime ends in the year 9999).
_SPAN = re.compile(r"\s*([0-9]{1,30})(?:\.([0-9]{1,30}))?\s*([A-Za-zµ]*)")
_MAX_DURATION: Final = timedelta(days=999_999_999)


def parse_duration(text: str) -> timedelta:
    """Parse a duration in humantime's grammar, which covers every form seen
    on the wire: the server's ``30days``/``2months 29days``, the compact
    ``1d 2h``, and old clients' ``1 days 3600 seconds``.

    ``months`` are 30.44 days and ``years`` 365.25 days, never minutes.
    Raises ``ValueError`` for an empty string, an unknown unit or a number
    without a unit (except the bare ``0``).
    """
    if text.strip() == "0":
        return timedelta(0)
    nanos = 0
    pos = 0
    spans = 0
    stripped_end = len(text.rstrip())
    while pos < stripped_end:
        match = _SPAN.match(text, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"invalid duration {text!r}: expected a number at {text[pos:]!r}")
        whole, fraction, unit = match.groups()
        if not unit:
            raise ValueError(f"invalid duration {text!r}: number {whole} has no unit")
        per_unit = _NANOS_PER_UNIT.get(unit)
        if per_unit is None:
            raise ValueError(f"invalid duration {text!r}: unknown unit {unit!r}")
        nanos += int(whole) * per_unit
        if fraction:
            scaled = int(fraction) * per_unit
            divisor = 10 ** len(fraction)
            if scaled % divisor:
                raise ValueError(f"invalid duration {text!r}: fraction finer than a nanosecond")
            nanos += scaled // divisor
        pos = match.end()
        spans += 1
    if spans == 0:
        raise ValueError("invalid duration: empty")
    if nanos > _MAX_DURATION.days * 86_400 * 10**9:
        raise ValueError(f"invalid duration {text[:40]!r}: longer than {_MAX_DURATION.days} days")
    # timedelta keeps microseconds; sub-microsecond parts are dropped.
    return timedelta(microseconds=nanos // 1_000)


def format_duration(duration: timedelta) -> str:
    """Format a duration in the compact form servers write and clients since
    0.2.3 require: ``<d>d <h>h <m>m <s>s`` with zero parts left out (``0s``
    for zero), plus ``ms``/``us`` parts when the duration has a fraction."""
    total_us = (duration.days * 86_400 + duration.seconds) * 1_000_000 + duration.microseconds
    if total_us < 0:
        raise ValueError(f"duration must not be negative: {duration!r}")
    seconds, micros = divmod(total_us, 1_000_000)
    parts: list[str] = []
    for size, unit in ((86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    millis, micros = divmod(micros, 1_000)
    if millis:
        parts.append(f"{millis}ms")
    if micros:
        parts.append(f"{micros}us")
    return " ".join(parts) or "0s"


ExpirationKind = Literal["manual", "ttl", "tti"]


def parse_expiration(value: str) -> tuple[ExpirationKind, timedelta | None]:
    """Parse an ``x-sn-expiration`` value: ``manual``, ``ttl:<duration>`` or
    ``tti:<duration>`` (prefixes are case-sensitive). Raises ``ValueError``."""
    if value == "manual":
        return "manual", None
    prefix, sep, rest = value.partition(":")
    if sep and prefix in ("ttl", "tti"):
        kind: ExpirationKind = "ttl" if prefix == "ttl" else "tti"
        return kind, parse_duration(rest)
    raise ValueError(
        f"invalid expiration policy {value!r}: expected 'manual', 'ttl:<duration>' "
        "or 'tti:<duration>'"
    )


def format_expiration(kind: ExpirationKind, duration: timedelta | None) -> str:
    """Inverse of :func:`parse_expiration`, durations in the compact form."""
    if kind == "manual":
        return "manual"
    if duration is None:
        raise ValueError(f"{kind} expiration needs a duration")
    return f"{kind}:{format_duration(duration)}"
