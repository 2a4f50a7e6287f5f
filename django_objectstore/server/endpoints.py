"""Endpoints for single objects (sections 5-8), the batch endpoint (section
12) and the unauthenticated ``/health``, ``/ready`` and ``/keda``."""

from __future__ import annotations

import json
import uuid

from django_objectstore._protocol_parsing import loads_json
from django_objectstore.server import resumable
from django_objectstore.server.batch import run_batch
from django_objectstore.server.errors import HTTPError
from django_objectstore.server.keda import CONTENT_TYPE as KEDA_CONTENT_TYPE
from django_objectstore.server.keda import keda_text
from django_objectstore.server.model import Identity, StoredObject, Writer
from django_objectstore.server.query import form_boundary, parse_range
from django_objectstore.server.request import (
    Call,
    Request,
    Response,
    empty_response,
    json_response,
    text_response,
)
from django_objectstore.server.service import (
    Service,
    disposition,
    meta_headers,
)
from django_objectstore.server.spool import spooled

__all__ = [
    "batch_post",
    "health",
    "keda",
    "object_delete",
    "object_get",
    "object_patch",
    "object_post",
    "object_put",
    "ready",
    "resumable_call",
    "write_stream",
]

#: Smallest stored-file body sent with the kernel's sendfile.
SENDFILE_MIN = 256 * 1024
#: Largest JSON body read into memory (PATCH, multipart completion).
JSON_LIMIT = 2 * 1024 * 1024


def write_stream(request: Request, writer: Writer) -> int:
    """Stream the request body into ``writer`` and commit it (or abort it
    when anything fails); returns the stored size."""
    try:
        for block in request.body():
            writer.write(block)
        return writer.commit()
    except BaseException:
        writer.abort()
        raise


# -- meta endpoints (no auth) ------------------------------------------------------


def health(service: Service) -> Response:
    return text_response(200, "OK")


def ready(service: Service) -> Response:
    if service.shutting_down or service.shutdown_marker.exists():
        return text_response(503, "Shutting down")
    return text_response(200, "OK")


def keda(service: Service) -> Response:
    return Response(200, [("content-type", KEDA_CONTENT_TYPE)], keda_text(service).encode("ascii"))


# -- single objects ----------------------------------------------------------------


def _insert(call: Call, ident: Identity) -> str:
    service = call.service
    meta = service.write_meta(call.auth, ident, call.request.headers)
    with service.backend_slot():
        write_stream(call.request, service.backend.writer(ident, meta))
    return ident.key


def object_post(call: Call) -> Response:
    ident = Identity(call.ident.usecase, call.ident.scopes, str(uuid.uuid4()))
    return json_response(201, {"key": _insert(call, ident)})


def object_put(call: Call) -> Response:
    return json_response(200, {"key": _insert(call, call.ident)})


def object_delete(call: Call) -> Response:
    ident = call.ident
    call.auth.check("object.delete", ident.usecase, ident.scopes)
    with call.service.backend_slot():
        call.service.backend.delete(ident)
    return empty_response(204)


def _payload(
    found: StoredObject, status: int, headers: list[tuple[str, str]], start: int, stop: int
) -> Response:
    """Stream ``found[start:stop]``; closes ``found`` when done."""
    # sendfile costs a few turns of the event loop: worth it for large bodies only
    large = found.file is not None and stop - start >= SENDFILE_MIN
    file = (found.file, found.offset + start, stop - start) if large and found.file else None
    return Response(
        status, headers, stream=found.iter_bytes(start, stop), on_close=found.close, file=file
    )


def object_get(call: Call) -> Response:
    """GET and HEAD. HEAD answers 200 with the headers a GET would carry,
    ``Content-Length`` included, as the current upstream server does (the
    0.2.0 server answered 204; the official 0.2.10 end-to-end tests expect
    200, and every client accepts either)."""
    request, ident = call.request, call.ident
    range_header = request.headers.get("range") if request.method == "GET" else None
    byte_range = parse_range(range_header) if range_header is not None else None
    call.auth.check("object.read", ident.usecase, ident.scopes)
    with call.service.backend_slot():
        found = call.service.open_live(ident)
    if found is None:
        return empty_response(404)
    try:
        headers = meta_headers(found.meta, found.size)
        if found.meta.filename is not None:
            headers.append(("content-disposition", disposition(found.meta.filename)))
        headers.append(("accept-ranges", "bytes"))
        size = found.size
        if request.method == "HEAD":
            found.close()
            return empty_response(200, [*headers, ("content-length", str(size))])
        if byte_range is None:
            headers.append(("content-length", str(size)))
            return _payload(found, 200, headers, 0, size)
        start, end = byte_range
        if start is None:  # suffix range
            assert end is not None
            start = max(0, size - end)
            end = size - 1
        elif end is None or end >= size:
            end = size - 1
        if size == 0 or start >= size:
            found.close()
            return empty_response(
                416, [("content-range", f"bytes */{size}"), ("accept-ranges", "bytes")]
            )
        headers.append(("content-range", f"bytes {start}-{end}/{size}"))
        headers.append(("content-length", str(end + 1 - start)))
        return _payload(found, 206, headers, start, end + 1)
    except BaseException:
        found.close()
        raise


def object_patch(call: Call) -> Response:
    raw = call.request.read_body(JSON_LIMIT)
    try:
        body = loads_json(raw)
    except ValueError as exc:
        raise HTTPError(400, f"client error: request body is not valid JSON: {exc}") from None
    ident = call.ident
    call.auth.check("object.write", ident.usecase, ident.scopes)
    with call.service.backend_slot():
        call.service.extend_expiry(ident, body)
    return empty_response(204)


# -- batch ---------------------------------------------------------------------------


def batch_post(call: Call) -> Response:
    """Operations are answered while the body still arrives; the answer is
    spooled (``spool``) so a client that sends everything first cannot
    deadlock with it."""
    boundary = form_boundary(call.request.headers.get("content-type") or "")
    if boundary is None:
        raise HTTPError(400, "Invalid `boundary` for `multipart/form-data` request", form="text")
    out_boundary = f"os-boundary-{uuid.uuid4().hex}"
    answer = run_batch(
        call.service, call.auth, call.ident, boundary, call.request.body(), out_boundary
    )
    return Response(
        200,
        [("content-type", f'multipart/form-data; boundary="{out_boundary}"')],
        stream=spooled(answer, name="objectstore-batch"),
        slow=True,
    )


# -- resumable uploads (section 20) ---------------------------------------------------


def resumable_call(call: Call) -> Response:
    """An object-route request of the resumable protocol (``resumable``)."""
    request = call.request
    answer = resumable.handle(
        call.service,
        call.auth,
        request.method,
        call.ident,
        call.query,
        request.headers,
        request.content_length,
        request.body,
    )
    if answer.payload is None:
        return empty_response(answer.status, answer.headers)
    body = json.dumps(answer.payload, separators=(",", ":")).encode("utf-8")
    return Response(answer.status, [*answer.headers, ("content-type", "application/json")], body)
