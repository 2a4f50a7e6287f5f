"""The settings of the backend modes (local extensions, not upstream; see
``backend_modes``), read from the configuration tree ``config_loader``
builds from YAML and ``OS__*`` variables::

    multipart.enabled        OS__MULTIPART__ENABLED       true | false
    resumable.enabled        OS__RESUMABLE__ENABLED       true | false
    resumable.session_ttl    OS__RESUMABLE__SESSION_TTL   a duration (7d)
    storage.name_limit       OS__STORAGE__NAME_LIMIT      gcs | none
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django_objectstore._protocol import parse_duration

__all__ = ["read_modes"]

_SWITCHES = {("multipart", "enabled"): "multipart", ("resumable", "enabled"): "resumable"}


def _name(path: tuple[str, ...]) -> str:
    return "OS__" + "__".join(part.upper() for part in path)


def _get(tree: Mapping[str, Any], path: tuple[str, ...]) -> tuple[bool, Any]:
    node: Any = tree
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def read_modes(tree: Mapping[str, Any]) -> dict[str, Any]:
    """``ServerConfig`` fields set by the mode settings present in ``tree``;
    ``ValueError`` naming the variable for a bad value."""
    fields: dict[str, Any] = {}
    for path, field in _SWITCHES.items():
        found, value = _get(tree, path)
        if found:
            if not isinstance(value, bool):
                raise ValueError(f"{_name(path)}={value!r} must be true or false")
            fields[field] = value
    found, value = _get(tree, ("resumable", "session_ttl"))
    if found:
        try:
            ttl = parse_duration(str(value))
        except ValueError:
            ttl = timedelta(0)
        if ttl <= timedelta(0):
            raise ValueError(
                f"OS__RESUMABLE__SESSION_TTL={value!r} must be a positive duration "
                "such as 7d or 1h 30m"
            )
        fields["resumable_session_ttl"] = ttl
    found, value = _get(tree, ("storage", "name_limit"))
    if found:
        limit = str(value).lower()
        if limit not in ("gcs", "none"):
            raise ValueError(
                f"OS__STORAGE__NAME_LIMIT={value!r} must be 'gcs' (object names of at most "
                "1,024 bytes, as on GCS) or 'none'"
            )
        fields["name_limit"] = "gcs" if limit == "gcs" else None
    return fields
