"""Object metadata and expiration policies, and their header forms."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, TypeAlias

from django_objectstore import _protocol
from django_objectstore._protocol import (
    HEADER_EXPIRATION,
    HEADER_FILENAME,
    HEADER_META_PREFIX,
    HEADER_ORIGIN,
    HEADER_SIZE,
    HEADER_TIME_CREATED,
    HEADER_TIME_EXPIRES,
)

__all__ = [
    "HEADER_EXPIRATION",
    "HEADER_FILENAME",
    "HEADER_META_PREFIX",
    "HEADER_ORIGIN",
    "HEADER_SIZE",
    "HEADER_TIME_CREATED",
    "HEADER_TIME_EXPIRES",
    "Compression",
    "ExpirationPolicy",
    "Metadata",
    "TimeToIdle",
    "TimeToLive",
    "expiry_extension",
    "format_expiration",
    "format_timedelta",
    "parse_expiration",
    "parse_timedelta",
]

Compression: TypeAlias = Literal["zstd", "none"]


@dataclass
class TimeToIdle:
    """Expire the object ``delta`` after its last access."""

    delta: timedelta


@dataclass
class TimeToLive:
    """Expire the object ``delta`` after it was written."""

    delta: timedelta


ExpirationPolicy: TypeAlias = TimeToIdle | TimeToLive


@dataclass
class Metadata:
    """What the server reports about a stored object.

    ``compression`` is the stored encoding (``"zstd"`` or ``None``); after a
    transparently decompressing ``get`` it is ``None``. ``size`` is the stored
    (possibly compressed) size when the server reports ``x-sn-size``, else ``None``.
    ``time_created``/``time_expires`` are aware UTC datetimes computed by the
    server. ``custom`` maps lower-cased ``x-snme-*`` names to decoded values.
    """

    content_type: str | None
    compression: Compression | None
    expiration_policy: ExpirationPolicy | None
    time_created: datetime | None
    time_expires: datetime | None
    origin: str | None
    filename: str | None
    size: int | None
    custom: dict[str, str]

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Metadata:
        """Build metadata from response headers (names in any case)."""
        content_type = "application/octet-stream"
        compression: Compression | None = None
        expiration: ExpirationPolicy | None = None
        created: datetime | None = None
        expires: datetime | None = None
        origin: str | None = None
        filename: str | None = None
        size: int | None = None
        custom: dict[str, str] = {}
        for raw_name, value in headers.items():
            name = raw_name.lower()
            if name == "content-type":
                content_type = value
            elif name == "content-encoding":
                compression = "zstd" if value == "zstd" else value  # type: ignore[assignment]
            elif name == HEADER_EXPIRATION:
                expiration = parse_expiration(value)
            elif name == HEADER_TIME_CREATED:
                created = _protocol.parse_timestamp(value)
            elif name == HEADER_TIME_EXPIRES:
                expires = _protocol.parse_timestamp(value)
            elif name == HEADER_ORIGIN:
                origin = _protocol.decode_header_value(value)
            elif name == HEADER_FILENAME:
                filename = _protocol.decode_header_value(value)
            elif name == HEADER_SIZE:
                size = int(value)
            elif name.startswith(HEADER_META_PREFIX):
                custom[name[len(HEADER_META_PREFIX) :]] = _protocol.decode_header_value(value)
        return cls(
            content_type=content_type,
            compression=compression,
            expiration_policy=expiration,
            time_created=created,
            time_expires=expires,
            origin=origin,
            filename=filename,
            size=size,
            custom=custom,
        )


def format_timedelta(delta: timedelta) -> str:
    """Compact wire form of a duration (``1d 2h 3m 4s``, ``0s`` for zero).
    Sub-second parts are dropped, as the official client does."""
    if delta < timedelta(0):
        raise ValueError(f"expiration duration must not be negative, got {delta}")
    return _protocol.format_duration(timedelta(days=delta.days, seconds=delta.seconds))


def parse_timedelta(delta: str) -> timedelta:
    """Parse a duration in any form servers and clients write (``30d``,
    ``30days``, ``2months 29days 2h``, ``1 days 3600 seconds``). ``ValueError``
    on anything else."""
    return _protocol.parse_duration(delta)


def format_expiration(expiration_policy: ExpirationPolicy) -> str:
    """``ttl:<duration>`` or ``tti:<duration>`` for the ``x-sn-expiration`` header."""
    if isinstance(expiration_policy, TimeToIdle):
        return f"tti:{format_timedelta(expiration_policy.delta)}"
    if isinstance(expiration_policy, TimeToLive):
        return f"ttl:{format_timedelta(expiration_policy.delta)}"
    raise TypeError(
        f"expiration_policy must be TimeToLive or TimeToIdle, got {expiration_policy!r}"
    )


def parse_expiration(value: str) -> ExpirationPolicy | None:
    """Parse an ``x-sn-expiration`` value; ``manual`` (or anything without a
    ``ttl:``/``tti:`` prefix) gives ``None``."""
    if value.startswith("tti:"):
        return TimeToIdle(parse_timedelta(value[4:]))
    if value.startswith("ttl:"):
        return TimeToLive(parse_timedelta(value[4:]))
    return None


def expiry_extension(
    at: datetime | None, from_creation: timedelta | None, from_now: timedelta | None
) -> dict[str, str]:
    """The ``extend_expiry`` member of an expiry-extension request (protocol
    section 20) for exactly one of the three targets."""
    if sum(target is not None for target in (at, from_creation, from_now)) != 1:
        raise ValueError("Supply exactly one of at, from_creation, or from_now")
    if at is not None:
        if at.utcoffset() is None:
            raise ValueError("at must be a timezone-aware datetime")
        return {"at": at.astimezone(UTC).isoformat()}
    delta = from_creation if from_creation is not None else from_now
    assert delta is not None  # exactly one target is set
    if delta < timedelta(0):
        raise ValueError("Expiry extension duration must not be negative")
    return {
        "after": format_timedelta(delta),
        "from": "creation" if from_creation is not None else "now",
    }
