"""Parsing of request values that are not metadata: query parameters
(``upload_id``, part numbers), the ``Range`` header, the batch form
boundary; and the redaction of secrets from a query before it is logged."""

from __future__ import annotations

from urllib.parse import unquote_plus, unquote_to_bytes

from django_objectstore._protocol_parsing import U32_MAX, parse_unsigned
from django_objectstore._protocol_parsing import parse_range as parse_range_value
from django_objectstore.server.errors import HTTPError

__all__ = [
    "MAX_PART_NUMBER",
    "form_boundary",
    "int_param",
    "parse_range",
    "query_error",
    "redact_query",
    "upload_id_param",
]

MAX_PART_NUMBER = U32_MAX
_REDACTED = frozenset({"os_auth", "os_sig"})


def query_error(reason: str) -> HTTPError:
    """The 400 upstream's framework answers for a query it cannot read."""
    return HTTPError(400, f"Failed to deserialize query string: {reason}", form="text")


def redact_query(raw_query: str) -> str:
    """``raw_query`` with the values of token and signature parameters
    replaced, for the request log."""
    pieces = []
    for piece in raw_query.split("&"):
        name = piece.partition("=")[0]
        # Compared decoded, as the query parser that finds tokens reads them
        # (``os%5Fauth`` is ``os_auth``).
        decoded = unquote_plus(name, errors="replace").strip().lower()
        pieces.append(f"{name}=[redacted]" if decoded in _REDACTED else piece)
    return "&".join(pieces)


def upload_id_param(query: dict[str, str]) -> str:
    upload_id = query.get("upload_id")
    if upload_id is None:
        raise query_error("missing field `upload_id`")
    if (
        not upload_id
        or upload_id == "."
        or upload_id.startswith("/")
        or ".." in upload_id
        or "/" in upload_id
    ):
        raise query_error("invalid upload id")
    return upload_id


def int_param(query: dict[str, str], name: str, *, required: bool, minimum: int) -> int | None:
    value = query.get(name)
    if value is None:
        if required:
            raise query_error(f"missing field `{name}`")
        return None
    try:
        number = parse_unsigned(value, U32_MAX)
    except ValueError as exc:
        raise query_error(f"{name}: {exc}") from None
    if number < minimum:
        raise query_error(f"{name}: must be at least {minimum}")
    return number


def parse_range(value: str) -> tuple[int | None, int | None] | None:
    """The ``Range`` header's range (``_protocol_parsing.parse_range``), its
    errors as the 400 upstream answers."""
    try:
        return parse_range_value(value)
    except ValueError as exc:
        raise HTTPError(400, f"client error: invalid Range header: {exc}") from None


def form_boundary(content_type: str) -> str | None:
    main, _, params = content_type.partition(";")
    if main.strip().lower() != "multipart/form-data":
        return None
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "boundary":
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return value or None
    return None


def decode_component(raw: str, what: str) -> str:
    """A percent-decoded path component; 400 when it is not UTF-8."""
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPError(400, f"Invalid UTF-8 in `{what}`", form="text") from None
