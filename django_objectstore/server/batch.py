"""Batch endpoint (section 12): a multipart/form-data request of get, head,
insert and delete operations, answered with one multipart result part per
operation (in request order here; upstream uses completion order)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from http import HTTPStatus
from urllib.parse import unquote_to_bytes

from django_objectstore.server.auth import AuthError, Authorization
from django_objectstore.server.backend_modes import check_name
from django_objectstore.server.form_reader import FormError, FormPart, FormReader
from django_objectstore.server.headers import RequestHeaders
from django_objectstore.server.model import Identity, StoredObject
from django_objectstore.server.service import (
    REASONS,
    ClientError,
    Service,
    meta_from_headers,
    meta_headers,
)

__all__ = ["MAX_BODY_BYTES", "MAX_INSERT_BYTES", "MAX_OPERATIONS", "run_batch", "split_parts"]

MAX_OPERATIONS = 1000
MAX_INSERT_BYTES = 1024 * 1024
MAX_BODY_BYTES = 1024 * 1024 * 1024
_PERMISSION = {
    "get": "object.read",
    "head": "object.read",
    "insert": "object.write",
    "delete": "object.delete",
}
_KEY_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def encode_key(key: str) -> str:
    """Every byte that is not ASCII alphanumeric as ``%XX`` (section 12.3)."""
    return "".join(chr(b) if b in _KEY_SAFE else f"%{b:02X}" for b in key.encode("utf-8"))


def split_parts(raw: bytes, boundary: str) -> list[tuple[list[tuple[str, str]], bytes]]:
    """Parse a whole multipart body into ``(headers, body)`` pairs (for
    callers holding a complete document, such as tests reading an answer).
    Raises ``FormError``."""
    reader = FormReader([raw], boundary, max_body=len(raw), max_total=len(raw))
    reader.start()
    return [(part.headers, part.body) for part in reader]


def _status(code: int) -> str:
    return f"{code} {REASONS.get(code) or HTTPStatus(code).phrase}"


class _Result:
    def __init__(self, index: int, status: int) -> None:
        self.index = index
        self.status = status
        self.headers: list[tuple[str, str]] = []
        self.body = b""
        #: An object to stream as the body (a found get); closed once sent.
        self.stored: StoredObject | None = None


def _error(index: int, status: int, detail: str) -> _Result:
    result = _Result(index, status)
    result.body = json.dumps({"detail": detail}).encode("utf-8")
    return result


def _run_one(
    service: Service,
    auth: Authorization,
    base: Identity,
    index: int,
    part: FormPart,
) -> _Result:
    headers, body = part.headers, part.body
    if index >= MAX_OPERATIONS:
        return _error(index, 413, f"client error: at most {MAX_OPERATIONS} operations per batch")
    fields = dict(headers)
    kind = fields.get("x-sn-batch-operation-kind", "").lower()
    if kind not in _PERMISSION:
        return _error(index, 400, f"client error: invalid operation kind {kind[:20]!r}")
    encoded_key = fields.get("x-sn-batch-operation-key")
    key: str | None = None
    if encoded_key is not None:
        try:
            key = unquote_to_bytes(encoded_key).decode("utf-8")
        except UnicodeDecodeError:
            return _error(index, 400, "client error: operation key is not valid UTF-8")
        if not key:  # any other key is accepted, dot segments too, as upstream
            return _error(index, 400, "client error: the operation key is empty")
    if key is None:
        if kind != "insert":
            return _error(index, 400, f"client error: {kind} operation needs a key")
        key = str(uuid.uuid4())
    if kind == "insert" and part.size > MAX_INSERT_BYTES:
        return _error(index, 413, "client error: batch insert payload exceeds 1 MiB")
    ident = Identity(base.usecase, base.scopes, key)
    limiter = service.rate_limiter
    if limiter is not None and not limiter.admit(ident.usecase, ident.scopes, bandwidth=False):
        return _error(index, 429, "Object access is rate limited")
    try:
        check_name(service, ident)  # the GCS name limit mode (backend_modes.py)
        auth.check(_PERMISSION[kind], ident.usecase, ident.scopes)
        if kind == "insert":
            meta = meta_from_headers(RequestHeaders(list(headers)), service.now())
            service.check_policy(ident.usecase, meta)
            with service.backend_slot(bulk=True):
                writer = service.backend.writer(ident, meta)
                try:
                    writer.write(body)
                    writer.commit()
                except BaseException:
                    writer.abort()
                    raise
            result = _Result(index, 201)
        elif kind == "delete":
            with service.backend_slot(bulk=True):
                service.backend.delete(ident)
            result = _Result(index, 204)
        else:
            with service.backend_slot(bulk=True):
                found = service.open_live(ident)
            if found is None:
                result = _Result(index, 404)
            else:
                result = _Result(index, 200 if kind == "get" else 204)
                result.headers = meta_headers(found.meta, found.size)
                if kind == "get":
                    result.stored = found
                else:
                    found.close()
    except (AuthError, ClientError) as exc:
        return _error(index, exc.status, exc.detail)
    except OSError as exc:
        return _error(index, 500, f"service error: {type(exc).__name__}")
    result.headers[:0] = [
        ("x-sn-batch-operation-key", encode_key(key)),
        ("x-sn-batch-operation-kind", kind),
    ]
    return result


def _render(result: _Result, out_boundary: str) -> Iterator[bytes | memoryview]:
    lines = [
        f"--{out_boundary}",
        f"x-sn-batch-operation-index: {result.index}",
        *(f"{name}: {value}" for name, value in result.headers[:2]),
        f"x-sn-batch-operation-status: {_status(result.status)}",
        *(f"{name}: {value}" for name, value in result.headers[2:]),
        "content-disposition: form-data; name=part",
        "",
        "",
    ]
    head = "\r\n".join(lines).encode("latin-1")
    if result.stored is None:
        yield b"%s%s\r\n" % (head, result.body)
        return
    yield head
    with result.stored as found:
        yield from found.iter_bytes(0, found.size)
    yield b"\r\n"


def _answers(
    service: Service,
    auth: Authorization,
    ident: Identity,
    reader: FormReader,
    out_boundary: str,
) -> Iterator[bytes | memoryview]:
    index = 0
    try:
        for part in reader:
            yield from _render(_run_one(service, auth, ident, index, part), out_boundary)
            index += 1
    except FormError as exc:
        # The answer has begun: a body that breaks off or goes wrong midway
        # ends it with an error part for the operation that could not be read.
        detail = f"client error: invalid multipart body: {exc}"
        yield from _render(_error(index, 400, detail), out_boundary)
    yield f"--{out_boundary}--".encode("ascii")


def run_batch(
    service: Service,
    auth: Authorization,
    ident: Identity,
    boundary: str,
    body: Iterable[bytes | bytearray | memoryview],
    out_boundary: str,
) -> Iterator[bytes | memoryview]:
    """Start a batch: read ``body`` (the request body as it arrives) up to
    its first boundary, raising ``ClientError`` 400 when there is none; then
    return the answer as an iterator of chunks that executes each operation
    as its part arrives and yields its result part at once. Memory stays
    bounded whatever the body size or number of parts."""
    reader = FormReader(body, boundary, max_body=MAX_INSERT_BYTES, max_total=MAX_BODY_BYTES)
    try:
        reader.start()
    except FormError as exc:
        raise ClientError(400, f"client error: invalid multipart body: {exc}") from None
    return _answers(service, auth, ident, reader, out_boundary)
