"""Scopes: the ordered ``name=value`` namespace inside a usecase.

``Scope(org=42, project=1337)`` renders as ``org=42;project=1337`` on the wire,
and an empty scope as ``_``. Keyword order is significant (it is part of the
object's identity on the server).
"""

from __future__ import annotations

import string
from typing import Final

from django_objectstore._protocol import EMPTY_SCOPES, invalid_scope_char

__all__ = ["EMPTY_SCOPES", "SCOPE_VALUE_ALLOWED_CHARS", "Scope"]

#: Characters a scope name or value may contain (section 3.2 of the protocol).
SCOPE_VALUE_ALLOWED_CHARS: Final[frozenset[str]] = frozenset(
    string.ascii_letters + string.digits + "-_()$!+'"
)
_ALLOWED_TEXT: Final = "letters, digits and - _ ( ) $ ! + '"


class Scope:
    """An ordered, validated set of scope pairs. Values may be ``str``, ``int``
    or ``bool`` and are rendered with ``str()``."""

    __slots__ = ("_rendered", "_scope")

    def __init__(self, **scopes: str | int | bool) -> None:
        parts: list[str] = []
        for name, value in scopes.items():
            if not name:
                raise ValueError("Scope key cannot be empty")
            if value is None:
                raise ValueError(f"Scope value cannot be empty (scope key {name!r})")
            text = str(value)
            if not text:
                raise ValueError(f"Scope value cannot be empty (scope key {name!r})")
            bad = invalid_scope_char(name)
            if bad is not None:
                raise ValueError(
                    f"Invalid scope key {name!r}: character {bad!r} is not allowed; "
                    f"use only {_ALLOWED_TEXT}"
                )
            bad = invalid_scope_char(text)
            if bad is not None:
                raise ValueError(
                    f"Invalid scope value {text!r} for key {name!r}: character {bad!r} "
                    f"is not allowed; use only {_ALLOWED_TEXT}"
                )
            parts.append(f"{name}={text}")
        self._scope = dict(scopes)
        self._rendered = ";".join(parts) or EMPTY_SCOPES

    def __str__(self) -> str:
        return self._rendered

    def __repr__(self) -> str:
        return f"Scope({self._rendered!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Scope):
            return self._rendered == other._rendered
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._rendered)

    def dict(self) -> dict[str, str | int | bool]:
        """The scope pairs as given (values not converted to strings)."""
        return dict(self._scope)
