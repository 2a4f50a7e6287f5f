"""Stored names: the key, prefixed by its scope when it has one.

* An unscoped name is the key itself: ``attachments/report.pdf``, exactly the
  name Django generated, as with Django's other storages.
* A scoped name is ``<scope>/<key>`` with the scope rendered as on the wire:
  ``org=42;project=1337/attachments/report.pdf``. Every storage method
  rebuilds the session from the name alone (Django hands storages nothing
  but names).
* A first segment that is a scope segment (it contains ``=``) is read as the
  scope, so an unscoped key whose first folder contains ``=`` is written
  with the explicit empty scope, ``_/year=2024/report.pdf``; names written by
  earlier versions, ``_/<key>``, read the same way (the key in no scope).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import SuspiciousFileOperation

from django_objectstore._protocol import EMPTY_SCOPES, parse_scopes, render_scopes
from django_objectstore._protocol_parsing import invalid_key_reason

__all__ = ["ScopePairs", "join_name", "looks_like_scope", "scope_pairs", "split_name"]

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
    """Whether a name's first segment is read as a scope segment."""
    return segment == EMPTY_SCOPES or "=" in segment


def split_name(name: object, default_scope: ScopePairs | None = None) -> tuple[ScopePairs, str]:
    """Split a stored name into scope pairs and key.

    A name whose first segment is not a scope segment (no ``=`` and not
    ``_``) is a key in ``default_scope``. Raises ``SuspiciousFileOperation``
    for invalid scope segments and for keys that cannot be stored (empty,
    empty/``.``/``..`` segments, control characters, invalid UTF-8, segments
    over 255 bytes).
    """
    if not isinstance(name, str) or not name:
        raise SuspiciousFileOperation(f"Objectstore names must be non-empty strings, got {name!r}.")
    head, sep, rest = name.partition("/")
    if sep and looks_like_scope(head):
        try:
            pairs = parse_scopes(head)
        except ValueError as exc:
            raise SuspiciousFileOperation(
                f"Invalid scope segment {head!r} in name {name!r}: {exc}. A first folder "
                "containing '=' is read as a scope; to use such a folder without a scope, "
                f"prefix the name with '{EMPTY_SCOPES}/'."
            ) from None
        key = rest
    else:
        pairs, key = list(default_scope or []), name
    reason = invalid_key_reason(key)
    if reason is not None:
        raise SuspiciousFileOperation(
            f"Name {name!r} cannot be stored in Objectstore: its key {key!r} is invalid because "
            f"{reason}. Rename the file (or change upload_to) so every folder and file name is "
            "non-empty, not '.' or '..', at most 255 bytes, without control characters."
        )
    return pairs, key


def join_name(pairs: ScopePairs, key: str, default_scope: ScopePairs | None = None) -> str:
    """The stored name of ``key`` in scope ``pairs``: the plain key when
    unscoped (unless that would read back differently: a first folder that
    looks like a scope, or a storage whose default scope is not empty),
    else ``<scope>/<key>``."""
    head, sep, _ = key.partition("/")
    if pairs or default_scope or (sep and looks_like_scope(head)):
        return f"{render_scopes(pairs)}/{key}"
    return key
