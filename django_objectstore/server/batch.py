"""Batch endpoint (section 12): a multipart/form-data request of get, head,
insert and delete operations, answered with one multipart result part per
operation (in request order here; upstream uses completion order)."""

from __future__ import annotations

import json
import uuid
from http import HTTPStatus
from urllib.parse import unquote_to_bytes

from django_objectstore.server.auth import AuthError, Authorization
from django_objectstore.server.backend_modes import check_name
from django_objectstore.server.headers import RequestHeaders
from django_objectstore.server.service import (
    REASONS,
    ClientError,
    Service,
    meta_from_headers,
    meta_headers,
)
from django_objectstore.server.storage import Identity

__all__ = ["MAX_INSERT_BYTES", "MAX_OPERATIONS", "BatchFormatError", "run_batch"]

MAX_OPERATIONS = 1000
MAX_INSERT_BYTES = 1024 * 1024
_PERMISSION = {
    "get": "object.read",
    "head": "object.read",
    "insert": "object.write",
    "delete": "object.delete",
}
_KEY_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


class BatchFormatError(ValueError):
    """The request body is not a well-formed multipart document."""


def encode_key(key: str) -> str:
    """Every byte that is not ASCII alphanumeric as ``%XX`` (section 12.3)."""
    return "".join(chr(b) if b in _KEY_SAFE else f"%{b:02X}" for b in key.encode("utf-8"))


def split_parts(raw: bytes, boundary: str) -> list[tuple[list[tuple[str, str]], bytes]]:
    """Parse a multipart body into ``(headers, body)`` pairs."""
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    pieces = (b"\r\n" + raw).split(delimiter)
    if len(pieces) < 2:
        raise BatchFormatError("no multipart boundary found in the body")
    parts: list[tuple[list[tuple[str, str]], bytes]] = []
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            return parts
        line_end = piece.find(b"\r\n")
        if line_end < 0:
            raise BatchFormatError("malformed part delimiter")
        piece = piece[line_end + 2 :]
        head, sep, body = piece.partition(b"\r\n\r\n")
        if not sep:
            if not piece.startswith(b"\r\n"):
                raise BatchFormatError("part without a blank line after its headers")
            head, body = b"", piece[2:]
        headers: list[tuple[str, str]] = []
        for line in head.split(b"\r\n"):
            if not line:
                continue
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon:
                raise BatchFormatError("malformed part header")
            headers.append((name.strip().lower(), value.strip()))
        parts.append((headers, body))
    raise BatchFormatError("body ends without the closing boundary")


def _status(code: int) -> str:
    return f"{code} {REASONS.get(code) or HTTPStatus(code).phrase}"


class _Result:
    def __init__(self, index: int, status: int) -> None:
        self.index = index
        self.status = status
        self.headers: list[tuple[str, str]] = []
        self.body = b""


def _error(index: int, status: int, detail: str) -> _Result:
    result = _Result(index, status)
    result.body = json.dumps({"detail": detail}).encode("utf-8")
    return result


def _run_one(
    service: Service,
    auth: Authorization,
    base: Identity,
    index: int,
    headers: list[tuple[str, str]],
    body: bytes,
) -> _Result:
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
        if not key or any(seg in (".", "..") for seg in key.split("/")):
            return _error(index, 400, "client error: invalid operation key")
    if key is None:
        if kind != "insert":
            return _error(index, 400, f"client error: {kind} operation needs a key")
        key = str(uuid.uuid4())
    if kind == "insert" and len(body) > MAX_INSERT_BYTES:
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
            with service.backend_slot():
                writer = service.backend.writer(ident, meta)
                try:
                    writer.write(body)
                    writer.commit()
                except BaseException:
                    writer.abort()
                    raise
            result = _Result(index, 201)
        elif kind == "delete":
            with service.backend_slot():
                service.backend.delete(ident)
            result = _Result(index, 204)
        else:
            with service.backend_slot():
                found = service.open_live(ident)
            if found is None:
                result = _Result(index, 404)
            else:
                with found:
                    result = _Result(index, 200 if kind == "get" else 204)
                    result.headers = meta_headers(found.meta, found.size)
                    if kind == "get":
                        result.body = found.read_all()
    except (AuthError, ClientError) as exc:
        return _error(index, exc.status, exc.detail)
    except OSError as exc:
        return _error(index, 500, f"service error: {type(exc).__name__}")
    result.headers[:0] = [
        ("x-sn-batch-operation-key", encode_key(key)),
        ("x-sn-batch-operation-kind", kind),
    ]
    return result


def run_batch(
    service: Service,
    auth: Authorization,
    ident: Identity,
    boundary: str,
    raw: bytes,
    out_boundary: str,
) -> bytes:
    """Execute every operation; return the multipart response body."""
    try:
        parts = split_parts(raw, boundary)
    except BatchFormatError as exc:
        raise ClientError(400, f"client error: invalid multipart body: {exc}") from None
    out: list[bytes] = []
    for index, (headers, body) in enumerate(parts):
        result = _run_one(service, auth, ident, index, headers, body)
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
        out.append("\r\n".join(lines).encode("latin-1"))
        out.append(result.body)
        out.append(b"\r\n")
    out.append(f"--{out_boundary}--".encode("ascii"))
    return b"".join(out)
