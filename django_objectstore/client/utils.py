"""Small helpers: path/query/header encoding, Accept-Encoding parsing, MIME
sniffing."""

from __future__ import annotations

from typing import IO

import filetype

from django_objectstore import _protocol

__all__ = [
    "decode_header_value",
    "encode_header_value",
    "encode_path",
    "encode_query",
    "guess_mime_type",
    "parse_accept_encoding",
]

# filetype looks at no more than this many leading bytes.
_SNIFF_BYTES = 261


def encode_path(path: str) -> str:
    """Percent-encode a request path literally (``%`` becomes ``%25``),
    keeping unreserved characters and ``/ : @ ! $ & ' ( ) * + , ; =``."""
    return _protocol.encode_path(path)


def encode_query(query: str) -> str:
    """Like :func:`encode_path`, additionally keeping ``?``."""
    return _protocol.encode_query_value(query)


def encode_header_value(value: str) -> str:
    """Percent-encode a metadata header value (``%``, controls, non-ASCII)."""
    return _protocol.encode_header_value(value)


def decode_header_value(value: str) -> str:
    """Inverse of :func:`encode_header_value`; plain values pass unchanged."""
    return _protocol.decode_header_value(value)


def parse_accept_encoding(header: str) -> list[str]:
    """Encodings listed in an ``Accept-Encoding`` value, lower-cased, without
    q-values, leaving out those rejected with ``q=0``."""
    accepted: list[str] = []
    for item in header.split(","):
        name, *params = (piece.strip() for piece in item.split(";"))
        if not name:
            continue
        if any(_is_q_zero(param) for param in params):
            continue
        accepted.append(name.lower())
    return accepted


def _is_q_zero(param: str) -> bool:
    name, sep, value = param.partition("=")
    if not sep or name.strip().lower() != "q":
        return False
    try:
        return float(value) == 0.0
    except ValueError:
        return False


def guess_mime_type(contents: bytes | IO[bytes]) -> str | None:
    """Guess a MIME type from the first bytes of ``contents`` (magic numbers).
    A seekable stream is left at its original position; a non-seekable one
    gives ``None`` (nothing is consumed)."""
    if isinstance(contents, bytes | bytearray | memoryview):
        head = bytes(contents[:_SNIFF_BYTES])
    else:
        if not contents.seekable():
            return None
        position = contents.tell()
        head = contents.read(_SNIFF_BYTES)
        contents.seek(position)
    kind = filetype.guess(head)
    return str(kind.mime) if kind is not None else None
