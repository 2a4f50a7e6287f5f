"""Multipart upload endpoints (section 11): create, abort, part uploads and
listings, and the completion that assembles the listed parts into one
object."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator

from django_objectstore._protocol_parsing import loads_json
from django_objectstore.server.auth import Authorization
from django_objectstore.server.endpoints import JSON_LIMIT, write_stream
from django_objectstore.server.errors import HTTPError
from django_objectstore.server.model import Identity, UploadNotFound
from django_objectstore.server.query import int_param, upload_id_param
from django_objectstore.server.request import Call, Response, empty_response, json_response
from django_objectstore.server.service import Service

__all__ = [
    "complete_post",
    "complete_upload",
    "parse_complete_body",
    "parts_get",
    "parts_put",
    "upload_delete",
    "upload_post",
    "upload_put",
]

#: While a completion runs, a space is sent this often to keep the exchange alive.
KEEPALIVE_SECONDS = 1.0


def _not_found() -> HTTPError:
    return HTTPError(404, "service error: multipart upload not found")


def upload_post(call: Call) -> Response:
    ident = Identity(call.ident.usecase, call.ident.scopes, str(uuid.uuid4()))
    return _create(call, ident)


def upload_put(call: Call) -> Response:
    return _create(call, call.ident)


def _create(call: Call, ident: Identity) -> Response:
    service = call.service
    meta = service.write_meta(call.auth, ident, call.request.headers)
    with service.backend_slot():
        upload_id = service.backend.create_upload(ident, meta)
    return json_response(200, {"key": ident.key, "upload_id": upload_id})


def upload_delete(call: Call) -> Response:
    upload_id = upload_id_param(call.query)
    ident = call.ident
    call.auth.check("object.write", ident.usecase, ident.scopes)
    with call.service.backend_slot():
        call.service.backend.abort_upload(ident, upload_id)
    return empty_response(204)


def parts_put(call: Call) -> Response:
    upload_id = upload_id_param(call.query)
    part_number = int_param(call.query, "part_number", required=True, minimum=1)
    assert part_number is not None
    if call.request.content_length is None:
        raise HTTPError(400, "client error: Content-Length header is required")
    ident = call.ident
    call.auth.check("object.write", ident.usecase, ident.scopes)
    with call.service.backend_slot():
        try:
            writer, etag = call.service.backend.part_writer(ident, upload_id, part_number)
        except UploadNotFound:
            raise _not_found() from None
        write_stream(call.request, writer)
    return json_response(200, {"etag": etag})


def parts_get(call: Call) -> Response:
    """GET and HEAD of a part listing."""
    upload_id = upload_id_param(call.query)
    max_parts = int_param(call.query, "max_parts", required=False, minimum=0)
    marker = int_param(call.query, "part_number_marker", required=False, minimum=0) or 0
    ident = call.ident
    call.auth.check("object.write", ident.usecase, ident.scopes)
    try:
        with call.service.backend_slot():
            parts = call.service.backend.list_parts(ident, upload_id)
    except UploadNotFound:
        raise _not_found() from None
    parts = [p for p in parts if p.part_number > marker]
    truncated = max_parts is not None and len(parts) > max_parts
    if max_parts is not None:
        parts = parts[:max_parts]
    listing: dict[str, object] = {
        "parts": [
            {
                "part_number": p.part_number,
                "etag": p.etag,
                "last_modified": p.last_modified.strftime("%Y-%m-%dT%H:%M:%S.%f000Z"),
                "size": p.size,
            }
            for p in parts
        ],
        "is_truncated": truncated,
    }
    if truncated and parts:
        listing["next_part_number_marker"] = parts[-1].part_number
    return json_response(200, listing)


def complete_post(call: Call) -> Response:
    """Answers 200 at once and keeps the exchange alive with spaces while
    the parts are assembled; the JSON outcome (key or error) follows."""
    upload_id = upload_id_param(call.query)
    content_type = (call.request.headers.get("content-type") or "").split(";")[0]
    if content_type.strip().lower() != "application/json":
        raise HTTPError(415, "Expected request with `Content-Type: application/json`", form="text")
    parsed = parse_complete_body(call.request.read_body(JSON_LIMIT))
    if isinstance(parsed, tuple):
        raise HTTPError(parsed[0], parsed[1], form="text")
    return Response(
        200,
        [("content-type", "application/json")],
        stream=_completion(call.service, call.auth, call.ident, upload_id, parsed),
        slow=True,
    )


def _completion(
    service: Service,
    auth: Authorization,
    ident: Identity,
    upload_id: str,
    parts: list[tuple[int, str]],
) -> Iterator[bytes]:
    result: list[dict[str, object]] = []
    worker = threading.Thread(
        target=lambda: result.append(complete_upload(service, auth, ident, upload_id, parts)),
        name="objectstore-complete",
        daemon=True,
    )
    worker.start()
    while True:
        worker.join(KEEPALIVE_SECONDS)
        if not worker.is_alive():
            break
        yield b" "
    outcome = result[0] if result else {"error": {"code": "internal error", "message": "?"}}
    yield json.dumps(outcome, separators=(",", ":")).encode("utf-8")


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
    except HTTPError as exc:
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
    except HTTPError as exc:
        return _error("internal error", exc.detail)
    except (OSError, UploadNotFound, KeyError) as exc:
        return _error("internal error", f"storage backend error: {type(exc).__name__}")
    backend.abort_upload(ident, upload_id)
    return {"key": ident.key}
