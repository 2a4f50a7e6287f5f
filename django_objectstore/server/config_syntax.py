"""Upstream's syntax for ``OS__*`` values (section 14.1): ``true``/``false``,
numbers, ``[arrays]``, ``{key=value}`` dictionaries, ``"quoted strings"``
(with escapes) or bare strings, e.g.
``{test_kid={key_files=["/p.pem"],max_permissions=["object.read"]}}``."""

from __future__ import annotations

from typing import Any

from django_objectstore.server.config import ConfigError

__all__ = ["env_value", "parse_env_value"]

_MAX_DEPTH = 32


class _ValueParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def error(self, what: str) -> ConfigError:
        return ConfigError(f"{what} at position {self.pos} in {self.text!r}")

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def peek(self) -> str:
        self.skip()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def value(self, nested: bool) -> Any:
        char = self.peek()
        if char in "{[" and char:
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise self.error(f"nested deeper than {_MAX_DEPTH} levels")
            result = self.mapping() if char == "{" else self.array()
            self.depth -= 1
            return result
        if char == '"':
            return self.quoted()
        return self.bare(nested)

    def mapping(self) -> dict[str, Any]:
        self.pos += 1
        result: dict[str, Any] = {}
        while True:
            if self.peek() == "}":
                self.pos += 1
                return result
            name = self.quoted() if self.peek() == '"' else self.bare_key()
            if self.peek() != "=":
                raise self.error("expected '=' after dictionary key")
            self.pos += 1
            result[name] = self.value(nested=True)
            sep = self.peek()
            if sep == ",":
                self.pos += 1
            elif sep != "}":
                raise self.error("expected ',' or '}' in dictionary")

    def array(self) -> list[Any]:
        self.pos += 1
        result: list[Any] = []
        while True:
            if self.peek() == "]":
                self.pos += 1
                return result
            result.append(self.value(nested=True))
            sep = self.peek()
            if sep == ",":
                self.pos += 1
            elif sep != "]":
                raise self.error("expected ',' or ']' in array")

    def quoted(self) -> str:
        self.skip()
        self.pos += 1
        out: list[str] = []
        escapes = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == '"':
                return "".join(out)
            if char == "\\" and self.pos < len(self.text):
                nxt = self.text[self.pos]
                self.pos += 1
                out.append(escapes.get(nxt, nxt))
            else:
                out.append(char)
        raise self.error("unterminated string")

    def bare_key(self) -> str:
        self.skip()
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in "= \t{}[],":
            self.pos += 1
        if start == self.pos:
            raise self.error("expected a dictionary key")
        return self.text[start : self.pos]

    def bare(self, nested: bool) -> Any:
        self.skip()
        start = self.pos
        stops = ",]}" if nested else ""
        while self.pos < len(self.text) and self.text[self.pos] not in stops:
            self.pos += 1
        word = self.text[start : self.pos].strip()
        return _scalar(word)


def _scalar(word: str) -> Any:
    if word == "true":
        return True
    if word == "false":
        return False
    try:
        return int(word)
    except ValueError:
        pass
    try:
        return float(word) if any(c.isdigit() for c in word) else word
    except ValueError:
        return word


def parse_env_value(text: str) -> Any:
    """Parse one ``OS__*`` value. Raises ``ConfigError`` for a malformed
    array, dictionary or quoted string."""
    parser = _ValueParser(text)
    if parser.peek() in ("{", "["):
        result = parser.value(nested=False)
        if parser.peek():
            raise parser.error("unexpected trailing text")
        return result
    if parser.peek() == '"':
        result = parser.quoted()
        if parser.peek():
            raise parser.error("unexpected trailing text")
        return result
    return _scalar(text.strip())


def env_value(name: str, text: str) -> Any:
    """Like the real loader: a value that does not parse as an array is a
    plain string (so ``[::1]:8888`` works); a broken dictionary is an error."""
    try:
        return parse_env_value(text)
    except ConfigError as exc:
        if text.strip().startswith("{"):
            raise ConfigError(f"{name}: {exc}") from None
        return text.strip()
