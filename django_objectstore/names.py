"""Stored names: ``<scope>/<key>``.

The scope segment is rendered exactly as on the wire (``org=42;project=1337``,
``_`` for no scope), so every storage method can rebuild the session from the
name alone (Django hands storages nothing but names).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import SuspiciousFileOperation

from django_objectstore._protocol import EMPTY_SCOPES, parse_scopes, render_scopes

__all__ = ["ScopePairs", "join_name", "scope_pairs", "split_name"]

ScopePairs = list[tuple[str, str]]


def _scope_value(value: object) -> str:
    # Matches the client: integers and booleans are rendered with str().
    return str(value)


def scope_pairs(scope: Mapping[str, Any] | Iterable[tuple[str, Any]] | None) -> ScopePairs:
    """Normalise a scope mapping or pair list to ``[(name, str(value)), ...]``
    and validate it (``ValueError`` naming the bad part)."""
    if scope is None:
        return []
    items = scope.items() if isinstance(scope, Mapping) else scope
    pairs = [(str(name), _scope_value(value)) for name, value in items]
    render_scopes(pairs)
    return pairs


def looks_like_scope(segment: str) -> bool:
    return segment == EMPTY_SCOPES or "=" in segment


def split_name(name: object, default_scope: ScopePairs | None = None) -> tuple[ScopePairs, str]:
    """Split a stored name into scope pairs and key.

    A name whose first segment is not a scope segment (no ``=`` and not
    ``_``) is a bare key in ``default_scope``. Raises
    ``SuspiciousFileOperation`` for empty keys and keys with empty, ``.`` or
    ``..`` segments (the server rejects them, and they smell of traversal).
    """
    if not isinstance(name, str) or not name:
        raise SuspiciousFileOperation(f"Objectstore names must be non-empty strings, got {name!r}.")
    head, sep, rest = name.partition("/")
    if sep and looks_like_scope(head):
        try:
            pairs = parse_scopes(head)
        except ValueError as exc:
            raise SuspiciousFileOperation(
                f"Invalid scope segment {head!r} in name {name!r}: {exc}."
            ) from None
        key = rest
    else:
        pairs, key = list(default_scope or []), name
    if not key or any(part in ("", ".", "..") for part in key.split("/")):
        raise SuspiciousFileOperation(
            f"Invalid Objectstore key {key!r} in name {name!r}: keys must be non-empty and "
            "contain no empty, '.' or '..' path segments."
        )
    return pairs, key


def join_name(pairs: ScopePairs, key: str) -> str:
    return f"{render_scopes(pairs)}/{key}"
