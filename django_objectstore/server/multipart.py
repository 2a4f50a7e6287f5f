"""Multipart upload completion (section 11.5/11.6): body validation and the
assembly of the listed parts into one object."""

from __future__ import annotations

from django_objectstore._protocol_parsing import loads_json
from django_objectstore.server.auth import AuthError, Authorization
from django_objectstore.server.service import ClientError, Service
from django_objectstore.server.storage import Identity, UploadNotFound

__all__ = ["complete_upload", "parse_complete_body"]


def parse_complete_body(raw: bytes) -> list[tuple[int, str]] | tuple[int, str]:
    """The ``(part_number, etag)`` list of a complete request, or the
    ``(status, text)`` of the framework-style error to answer with."""
    try:
        data = loads_json(raw)
    except ValueError as exc:
        return 400, f"Failed to parse the request body as JSON: {exc}"
    parts = data.get("parts") if isinstance(data, dict) else None
    if not isinstance(parts, list):
        return 422, "Failed to deserialize the JSON body into the target type: missing `parts`"
    result: list[tuple[int, str]] = []
    for index, part in enumerate(parts):
        number = part.get("part_number") if isinstance(part, dict) else None
        etag = part.get("etag") if isinstance(part, dict) else None
        if (
            not isinstance(number, int)
            or isinstance(number, bool)
            or not 1 <= number <= 2**32 - 1
            or not isinstance(etag, str)
        ):
            return (
                422,
                "Failed to deserialize the JSON body into the target type: "
                f"parts[{index}] needs a part_number >= 1 and an etag string",
            )
        result.append((number, etag))
    return result


def _error(code: str, message: str) -> dict[str, object]:
    return {"error": {"code": code, "message": message}}


def complete_upload(
    service: Service,
    auth: Authorization,
    ident: Identity,
    upload_id: str,
    parts: list[tuple[int, str]],
) -> dict[str, object]:
    """Assemble the object; returns the JSON document to send (the key, or
    an ``error`` member). Never raises for expected failures."""
    backend = service.backend
    try:
        auth.check("object.write", ident.usecase, ident.scopes)
        meta = backend.upload_meta(ident, upload_id)
        uploaded = {p.part_number: p for p in backend.list_parts(ident, upload_id)}
    except AuthError as exc:
        return _error("internal error", exc.detail)
    except UploadNotFound:
        return _error("internal error", "storage backend error: multipart upload not found")
    for number, etag in parts:
        info = uploaded.get(number)
        if info is None:
            return _error("InvalidPart", f"part number {number} was not uploaded")
        if info.etag != etag:
            return _error(
                "InvalidPart",
                f"etag mismatch for part {number}: expected {info.etag}, got {etag}",
            )
    minimum = service.min_part_size
    if minimum is not None:
        for number, _ in parts[:-1]:
            size = uploaded[number].size
            if size < minimum:
                return _error(
                    "EntityTooSmall",
                    f"part {number} is {size} bytes, below the minimum part size of "
                    f"{minimum} bytes; every part but the last must be at least "
                    f"{minimum} bytes",
                )
    try:
        with service.backend_slot():
            backend.assemble(ident, upload_id, [number for number, _ in parts], meta)
    except ClientError as exc:
        return _error("internal error", exc.detail)
    except (OSError, UploadNotFound, KeyError) as exc:
        return _error("internal error", f"storage backend error: {type(exc).__name__}")
    backend.abort_upload(ident, upload_id)
    return {"key": ident.key}
