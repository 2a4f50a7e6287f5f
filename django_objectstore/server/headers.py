"""Request header fields as the server's code reads them: in arrival order,
looked up without regard to case. (Parsing them off the wire is the HTTP
server library's job, see ``asgi``.)"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["RequestHeaders"]


class RequestHeaders:
    """Header fields in arrival order; names match case-insensitively."""

    __slots__ = ("_fields",)

    def __init__(self, fields: list[tuple[str, str]] | None = None) -> None:
        self._fields = fields if fields is not None else []

    def add(self, name: str, value: str) -> None:
        self._fields.append((name, value))

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name``, or ``default``."""
        wanted = name.lower()
        for field, value in self._fields:
            if field.lower() == wanted:
                return value
        return default

    def get_all(self, name: str) -> list[str] | None:
        """Every value of ``name`` in order, or ``None`` if there is none."""
        wanted = name.lower()
        values = [value for field, value in self._fields if field.lower() == wanted]
        return values or None

    def items(self) -> list[tuple[str, str]]:
        return list(self._fields)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[str]:
        return (field for field, _ in self._fields)

    def __len__(self) -> int:
        return len(self._fields)
