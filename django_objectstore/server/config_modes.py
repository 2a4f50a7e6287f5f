"""The ``OS__*`` variables of the backend modes (local extensions, not
upstream; see ``backend_modes``): read apart from ``config`` so that module
stays about upstream's settings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from django_objectstore._protocol import parse_duration

__all__ = ["read_modes"]

_SWITCHES = {"OS__MULTIPART__ENABLED": "multipart", "OS__RESUMABLE__ENABLED": "resumable"}


def read_modes(env: Mapping[str, str], parse: Callable[[str], Any]) -> dict[str, Any]:
    """``ServerConfig`` fields set by the mode variables present in ``env``
    (``parse`` reads one value in upstream's syntax); ``ValueError`` naming
    the variable for a bad value."""
    fields: dict[str, Any] = {}
    for name, field in _SWITCHES.items():
        if name in env:
            value = parse(env[name])
            if not isinstance(value, bool):
                raise ValueError(f"{name}={value!r} must be true or false")
            fields[field] = value
    if "OS__RESUMABLE__SESSION_TTL" in env:
        text = str(parse(env["OS__RESUMABLE__SESSION_TTL"]))
        try:
            ttl = parse_duration(text)
        except ValueError:
            ttl = timedelta(0)
        if ttl <= timedelta(0):
            raise ValueError(
                f"OS__RESUMABLE__SESSION_TTL={text!r} must be a positive duration "
                "such as 7d or 1h 30m"
            )
        fields["resumable_session_ttl"] = ttl
    if "OS__STORAGE__NAME_LIMIT" in env:
        limit = str(parse(env["OS__STORAGE__NAME_LIMIT"])).lower()
        if limit not in ("gcs", "none"):
            raise ValueError(
                f"OS__STORAGE__NAME_LIMIT={limit!r} must be 'gcs' (object names of at most "
                "1,024 bytes, as on GCS) or 'none'"
            )
        fields["name_limit"] = "gcs" if limit == "gcs" else None
    return fields
