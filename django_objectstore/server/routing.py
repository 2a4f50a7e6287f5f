"""Routing: the route kind a raw path names, the explicit table of (method,
route kind) -> endpoint, and what every object request goes through before
its endpoint runs (admission, auth, path decoding, killswitches, rate
limits)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, NamedTuple
from urllib.parse import parse_qsl

from django_objectstore._protocol import parse_scopes
from django_objectstore.server import endpoints, uploads
from django_objectstore.server.backend_modes import NOT_IMPLEMENTED, check_name, multipart_refused
from django_objectstore.server.errors import HTTPError
from django_objectstore.server.model import Identity
from django_objectstore.server.query import decode_component
from django_objectstore.server.request import Call, Request, Response, json_response
from django_objectstore.server.resumable import is_resumable
from django_objectstore.server.service import Service

__all__ = ["META_ROUTES", "ROUTES", "Endpoint", "Resolved", "handle", "resolve"]

#: Route kinds as ``backend_modes`` names them.
_MODE_KINDS = {"upload": "multipart", "uploads": "multipart"}


class Endpoint(NamedTuple):
    """An endpoint function. Endpoints run on the event loop unless they may
    block it: ``blocking`` ones always run on a worker thread, ``syncs``
    ones (they fsync) when the backend syncs its writes. (Requests with a
    large or chunked body always run on a worker thread.)"""

    handler: Callable[[Call], Response]
    blocking: bool = False
    syncs: bool = False


#: Unauthenticated endpoints on fixed paths (GET; HEAD runs the same function).
META_ROUTES: Final[dict[str, Callable[[Service], Response]]] = {
    "/health": endpoints.health,
    "/ready": endpoints.ready,
    "/keda": endpoints.keda,
}

#: (method, route kind) -> endpoint. Route kinds are named in ``_kind``. As
#: upstream's router does, HEAD runs the GET endpoint (which leaves the body out).
ROUTES: Final[dict[tuple[str, str], Endpoint]] = {
    ("GET", "object"): Endpoint(endpoints.object_get),
    ("HEAD", "object"): Endpoint(endpoints.object_get),
    ("PUT", "object"): Endpoint(endpoints.object_put, syncs=True),
    ("DELETE", "object"): Endpoint(endpoints.object_delete),
    ("PATCH", "object"): Endpoint(endpoints.object_patch),
    ("POST", "objects"): Endpoint(endpoints.object_post, syncs=True),
    ("PUT", "upload"): Endpoint(uploads.upload_put),
    ("DELETE", "upload"): Endpoint(uploads.upload_delete, blocking=True),
    ("POST", "uploads"): Endpoint(uploads.upload_post),
    ("GET", "parts"): Endpoint(uploads.parts_get),
    ("HEAD", "parts"): Endpoint(uploads.parts_get),
    ("PUT", "parts"): Endpoint(uploads.parts_put),
    ("POST", "complete"): Endpoint(uploads.complete_post, blocking=True),
    ("POST", "batch"): Endpoint(endpoints.batch_post, blocking=True),
}

_ALLOWED: Final[dict[str, str]] = {}
for _method, _kind_name in ROUTES:
    _ALLOWED[_kind_name] = (
        f"{_ALLOWED[_kind_name]},{_method}" if _kind_name in _ALLOWED else _method
    )

_PREFIXES = (
    ("/v1/objects:multipart:complete/", "complete"),
    ("/v1/objects:multipart:parts/", "parts"),
    ("/v1/objects:multipart/", "multipart"),
    ("/v1/objects:batch/", "batch"),
    ("/v1/objects/", "object"),
)


@dataclass(frozen=True, slots=True)
class _Path:
    kind: str
    usecase: str
    scopes: str
    key: str


def _kind(prefix_kind: str, has_key: bool, trailing: bool) -> str | None:
    if prefix_kind == "object":
        return "object" if has_key else "objects"
    if prefix_kind == "multipart":
        return "upload" if has_key else "uploads"
    if prefix_kind in ("parts", "complete"):
        return prefix_kind if has_key else None
    return "batch" if trailing and not has_key else None


def _split(raw_path: str) -> _Path | None:
    for prefix, prefix_kind in _PREFIXES:
        if raw_path.startswith(prefix):
            usecase, sep, rest = raw_path[len(prefix) :].partition("/")
            if not sep:
                return None
            scopes, sep, key = rest.partition("/")
            kind = _kind(prefix_kind, bool(key), bool(sep))
            return None if kind is None else _Path(kind, usecase, scopes, key)
    return None


class Resolved(NamedTuple):
    """What a method and raw path name: a meta endpoint, an object endpoint
    with its path parts, or an error to answer with."""

    meta: Callable[[Service], Response] | None = None
    endpoint: Endpoint | None = None
    path: _Path | None = None
    error: HTTPError | None = None


def _not_allowed(service: Service) -> Response:
    raise HTTPError(405, form="empty", headers=[("allow", "GET,HEAD")])


#: Requests of the resumable protocol (``resumable``) on object routes: on a
#: worker thread whatever the backend, since they wait for a session's lock
#: and sync its files.
_RESUMABLE: Final = Endpoint(endpoints.resumable_call, blocking=True)


def resolve(method: str, raw_path: str, raw_query: str = "") -> Resolved:
    meta = META_ROUTES.get(raw_path)
    if meta is not None:
        if method not in ("GET", "HEAD"):
            return Resolved(meta=_not_allowed)
        return Resolved(meta=meta)
    path = _split(raw_path)
    if path is None:
        return Resolved(error=HTTPError(404, form="empty"))
    endpoint = ROUTES.get((method, path.kind))
    if endpoint is None:
        allowed = _ALLOWED[path.kind]
        return Resolved(error=HTTPError(405, form="empty", headers=[("allow", allowed)]))
    if (
        path.kind in ("object", "objects")
        and ("upload_type" in raw_query or "session" in raw_query)
        and is_resumable(method, dict(parse_qsl(raw_query, keep_blank_values=True)))
    ):
        endpoint = _RESUMABLE
    return Resolved(endpoint=endpoint, path=path)


def _identity(path: _Path) -> Identity:
    """The object a path names (usecase names and dot-segment keys as
    upstream accepts them: the filesystem backend names files by a hash)."""
    usecase = decode_component(path.usecase, "usecase")
    scopes_text = decode_component(path.scopes, "scopes")
    key = decode_component(path.key, "key")
    if not usecase:
        raise HTTPError(400, "Invalid URL: usecase must be non-empty", form="text")
    try:
        scopes = tuple(parse_scopes(scopes_text))
    except ValueError as exc:
        raise HTTPError(400, f"Invalid URL: {exc}", form="text") from None
    return Identity(usecase, scopes, key)


def handle(service: Service, request: Request, resolved: Resolved) -> Response:
    """Run a resolved request to its response. Raises ``HTTPError``."""
    if resolved.meta is not None:
        return resolved.meta(service)
    if service.max_requests is not None and service.counters.in_flight > service.max_requests:
        raise HTTPError(503, form="empty")  # before routing, as upstream's admission layer
    if resolved.error is not None:
        raise resolved.error
    assert resolved.endpoint is not None
    assert resolved.path is not None
    auth = service.keys.authorize(
        request.method, request.raw_path, request.raw_query, request.headers
    )
    ident = _identity(resolved.path)
    downstream = request.headers.get("x-downstream-service")
    if any(k.matches(ident.usecase, ident.scopes, downstream) for k in service.killswitches):
        raise HTTPError(
            403, "Object access is disabled for this scope through killswitches", form="text"
        )
    limiter = service.rate_limiter
    if limiter is not None:
        if not limiter.admit(ident.usecase, ident.scopes):
            raise HTTPError(429, "Object access is rate limited", form="text")
        request.metered = (ident.usecase, ident.scopes)
    query = dict(parse_qsl(request.raw_query, keep_blank_values=True))
    kind = resolved.path.kind
    # Backend modes (backend_modes): no multipart, production name limits.
    if multipart_refused(service, _MODE_KINDS.get(kind, kind)):
        if kind == "complete":  # its answer has started upstream: the refusal is in the body
            refusal = {"error": {"code": "internal error", "message": NOT_IMPLEMENTED}}
            return json_response(200, refusal)
        raise HTTPError(501, NOT_IMPLEMENTED)
    if kind != "batch":
        check_name(service, ident)
    call = Call(service, request, auth, ident, query)
    if kind in ("object", "objects") and is_resumable(request.method, query):
        return endpoints.resumable_call(call)
    return resolved.endpoint.handler(call)
