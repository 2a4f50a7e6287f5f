"""Resumable uploads on the object routes (section 20): which requests are
resumable ones, their headers, and the answers. Independent of the HTTP
layer: it gets the request's parts and returns an ``Answer`` (or raises
``ClientError`` for a JSON error); the session rules live in
``resumable_store``.

- create: ``POST <object URL without key>?upload_type=resumable`` or
  ``PUT <object URL>?upload_type=resumable``, no body, the metadata headers of
  a put plus ``Upload-Length`` -> 200 ``{"key", "session", "granularity"}``
  (1: any chunk length is kept); 501 when the
  server runs without resumable uploads (the client then sends one put);
- chunk: ``PUT <object URL>?session=<token>`` with ``Upload-Offset: <n>`` and
  ``Content-Length`` -> 201 ``{"key"}`` when complete, else 204 with
  ``Upload-Offset`` (bytes held); 409 with ``Upload-Offset`` on a wrong
  offset; 404 unknown, 410 expired or cancelled; 400 past ``Upload-Length``;
- progress: the same with ``Upload-Offset: *`` and no body;
- cancel: ``DELETE <object URL>?session=<token>`` -> 204.

Every request needs ``object.write`` for the usecase and scopes: the token
only names a session, it authorizes nothing.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from django_objectstore._protocol_resumable import (
    HEADER_UPLOAD_LENGTH,
    HEADER_UPLOAD_OFFSET,
    QUERY_SESSION,
    QUERY_UPLOAD_TYPE,
    UPLOAD_OFFSET_QUERY,
    UPLOAD_TYPE_RESUMABLE,
)
from django_objectstore.server.auth import Authorization
from django_objectstore.server.headers import RequestHeaders
from django_objectstore.server.model import Identity
from django_objectstore.server.resumable_store import (
    OffsetMismatch,
    PastLength,
    Progress,
    SessionGone,
)
from django_objectstore.server.service import ClientError, Service

__all__ = ["Answer", "handle", "is_resumable"]

#: Largest Upload-Length accepted (upstream reads it as an unsigned 64-bit number).
MAX_UPLOAD_LENGTH = 2**63 - 1
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_NOT_IMPLEMENTED = "service error: not implemented"

Body = Iterable[bytes | bytearray | memoryview]


@dataclass
class Answer:
    """What to send: a status, extra headers and a JSON payload (or none)."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    payload: object | None = None


def is_resumable(method: str, query: Mapping[str, str]) -> bool:
    """Whether an object-route request belongs to this protocol (GET, HEAD
    and PATCH ignore the parameters like any unknown query parameter)."""
    return method in ("POST", "PUT", "DELETE") and (
        QUERY_UPLOAD_TYPE in query or QUERY_SESSION in query
    )


def _bad(message: str) -> ClientError:
    return ClientError(400, f"client error: {message}")


def _byte_count(headers: RequestHeaders, name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        raise _bad(f"{name} must be a byte count (digits only), got {value[:40]!r}")
    number = int(value)
    if number > MAX_UPLOAD_LENGTH:
        raise _bad(f"{name} {number} is larger than {MAX_UPLOAD_LENGTH}")
    return number


def _require_empty(content_length: int | None, body: Callable[[], Body], what: str) -> None:
    if content_length:
        raise _bad(f"{what} must be sent with an empty body")
    for block in body():
        if len(block):
            raise _bad(f"{what} must be sent with an empty body")


def _progress_answer(progress: Progress, key: str) -> Answer:
    if progress.complete:
        return Answer(201, payload={"key": key})
    return Answer(204, [(HEADER_UPLOAD_OFFSET, str(progress.held))])


def handle(
    service: Service,
    auth: Authorization,
    method: str,
    ident: Identity,
    query: Mapping[str, str],
    headers: RequestHeaders,
    content_length: int | None,
    body: Callable[[], Body],
) -> Answer:
    """Answer one resumable-upload request (see the module docstring).
    ``ident.key`` is empty for a POST create; ``body()`` yields the request
    body and raises when the client goes away."""
    upload_type = query.get(QUERY_UPLOAD_TYPE)
    token = query.get(QUERY_SESSION)
    if upload_type is not None and token is not None:
        raise _bad("`upload_type` and `session` are mutually exclusive")
    if upload_type is not None:
        if upload_type != UPLOAD_TYPE_RESUMABLE:
            raise _bad(f"unknown upload_type {upload_type[:40]!r}; the only one is 'resumable'")
        if method == "DELETE":
            raise _bad("a resumable upload is created with POST or PUT, not DELETE")
        return _create(service, auth, ident, headers, content_length, body)
    assert token is not None
    if method == "POST":
        raise _bad("session requests use PUT (write, progress) or DELETE (cancel)")
    if _TOKEN.fullmatch(token) is None:
        raise _bad("the session token must be unpadded base64url, as the create answer gave it")
    sessions = service.resumable
    now = service.now()
    try:
        if method == "DELETE":
            auth.check("object.write", ident.usecase, ident.scopes)
            if sessions is None:
                raise ClientError(501, _NOT_IMPLEMENTED)
            sessions.cancel(token, ident, now)
            return Answer(204)
        offset_text = headers.get(HEADER_UPLOAD_OFFSET)
        if offset_text is None:
            raise _bad("Upload-Offset header is required (a byte offset, or * for progress)")
        if offset_text.strip() == UPLOAD_OFFSET_QUERY:
            _require_empty(content_length, body, "Upload-Offset: *")
            auth.check("object.write", ident.usecase, ident.scopes)
            if sessions is None:
                raise ClientError(501, _NOT_IMPLEMENTED)
            with service.backend_slot():
                return _progress_answer(sessions.progress(token, ident, now), ident.key)
        offset = _byte_count(headers, HEADER_UPLOAD_OFFSET)
        assert offset is not None
        if content_length is None:
            raise _bad("Content-Length header is required")
        auth.check("object.write", ident.usecase, ident.scopes)
        if sessions is None:
            raise ClientError(501, _NOT_IMPLEMENTED)
        with service.backend_slot():
            progress = sessions.write(token, ident, offset, content_length, body(), now)
        return _progress_answer(progress, ident.key)
    except SessionGone as exc:
        raise ClientError(exc.status, f"client error: {exc.reason}") from None
    except OffsetMismatch as exc:
        return Answer(
            409,
            [(HEADER_UPLOAD_OFFSET, str(exc.held))],
            {"detail": f"client error: upload offset mismatch (the server holds {exc.held} bytes)"},
        )
    except PastLength as exc:
        raise _bad(str(exc)) from None


def _create(
    service: Service,
    auth: Authorization,
    ident: Identity,
    headers: RequestHeaders,
    content_length: int | None,
    body: Callable[[], Body],
) -> Answer:
    length = _byte_count(headers, HEADER_UPLOAD_LENGTH)
    if length is None:
        raise _bad("Upload-Length header is required (the total stored bytes)")
    if length == 0:
        raise _bad("Upload-Length must be at least 1; store an empty object with a plain put")
    _require_empty(content_length, body, "resumable session creation")
    meta = service.write_meta(auth, ident, headers)
    sessions = service.resumable
    if sessions is None:
        raise ClientError(501, _NOT_IMPLEMENTED)
    if not ident.key:
        ident = Identity(ident.usecase, ident.scopes, str(uuid.uuid4()))
    with service.backend_slot():
        token = sessions.create(ident, meta, length, service.now())
    # Held bytes are kept to the byte (see resumable_store), so the unit of
    # persistence the client must respect for chunks that are not the last is 1.
    return Answer(200, payload={"key": ident.key, "session": token, "granularity": 1})
