"""Opt-in modes that make the local server answer like production backends
(local-server extensions, off by default; see the README's server section).

- **No multipart** (``multipart=False``, ``OS__MULTIPART__ENABLED=false``):
  the real server's S3-compatible and BigTable backends answer every
  multipart request with 501 ``{"detail": "service error: not implemented"}``
  (section 8.1). A completion has already started its 200 answer by the time
  the backend refuses, so it reports the refusal inside the body (section
  11.6), as upstream does.
- **No resumable uploads** (``resumable=False``, ``OS__RESUMABLE__ENABLED=false``):
  a resumable create is answered 501, after which the 0.2.10 client sends one
  plain put (handled in ``resumable``).
- **GCS name limit** (``name_limit="gcs"``, ``OS__STORAGE__NAME_LIMIT=gcs``): GCS
  refuses object names over 1,024 bytes of UTF-8, and the object name is the
  storage path ``<usecase>/<scope>.<value>/.../objects/<key>``. Upstream's GCS
  backend turns any refusal from GCS into an error of its own
  (``error_for_status`` -> a ``reqwest error``) that the server answers with
  500 ``service error: ...`` (section 8.1: backend failures are 500); it
  does not check names itself. So the mode answers 500 for every operation on
  such a name (single, multipart, resumable and each batch operation), with a
  detail that names the limit and the length, instead of the 4xx a router
  check would give: a client tested against this mode sees what production
  gives it.
"""

from __future__ import annotations

from typing import Literal

from django_objectstore.server.model import Identity
from django_objectstore.server.service import ClientError, Service

__all__ = [
    "GCS_NAME_LIMIT",
    "NAME_LIMITS",
    "NOT_IMPLEMENTED",
    "NameLimit",
    "check_name",
    "multipart_refused",
    "storage_path",
]

NameLimit = Literal["gcs"]
#: Object-name limits by backend, in bytes of UTF-8.
GCS_NAME_LIMIT = 1024
NAME_LIMITS: dict[str, int] = {"gcs": GCS_NAME_LIMIT}
NOT_IMPLEMENTED = "service error: not implemented"
_MULTIPART_KINDS = frozenset({"multipart", "parts", "complete"})
_GENERATED_KEY_LENGTH = 36  # a UUID, as the server picks for POST


def storage_path(ident: Identity) -> str:
    """Upstream's storage path of an object (the GCS object name)."""
    scopes = "".join(f"{name}.{value}/" for name, value in ident.scopes)
    return f"{ident.usecase}/{scopes}objects/{ident.key}"


def check_name(service: Service, ident: Identity) -> None:
    """``ClientError`` 500 when the name limit mode is on and the object's
    storage path is too long (an empty key stands for a generated one)."""
    limit = service.name_limit
    if limit is None:
        return
    size = len(storage_path(ident).encode("utf-8"))
    if not ident.key:
        size += _GENERATED_KEY_LENGTH
    if size > limit:
        raise ClientError(
            500,
            "service error: reqwest error: the storage backend refused the object name: "
            f"it is {size} bytes of UTF-8 (usecase/scopes/objects/key), over the "
            f"{limit}-byte limit of GCS object names; use a shorter key "
            "(this server enforces the limit because it runs with the GCS name limit mode)",
        )


def multipart_refused(service: Service, kind: str) -> bool:
    """Whether a request on route ``kind`` is refused because the server
    emulates a backend without multipart."""
    return not service.multipart and kind in _MULTIPART_KINDS
