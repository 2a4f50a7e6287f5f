"""The exceptions Django expects, from the client's.

Storage methods catch the client's errors (``CLIENT_ERRORS``: a
:class:`~django_objectstore.client.RequestError` for an error status, an
:class:`~django_objectstore.client.ObjectstoreConnectionError` -- a urllib3
error, as the official client raises -- when no response came) and raise what
Django and apps handle: ``FileNotFoundError`` for a missing object,
``PermissionError`` when the server refuses the credentials, ``OSError`` for
anything else.
"""

from __future__ import annotations

from typing import Final

from django_objectstore._protocol import is_auth_refusal
from django_objectstore.client import ObjectstoreConnectionError, RequestError

__all__ = ["CLIENT_ERRORS", "missing", "storage_error"]

#: What a client call raises when it fails (catch these, by class).
CLIENT_ERRORS: Final = (RequestError, ObjectstoreConnectionError)


def missing(name: str, usecase: str) -> FileNotFoundError:
    """The error for an object that does not exist (or has expired)."""
    return FileNotFoundError(f"Objectstore has no object {name!r} in usecase {usecase!r}.")


def storage_error(
    exc: RequestError | ObjectstoreConnectionError, name: str, usecase: str
) -> OSError:
    """Translate a failed request about stored name ``name``."""
    if exc.status == 404:
        return missing(name, usecase)
    where = f"{name!r} in usecase {usecase!r}"
    if is_auth_refusal(exc.status, exc.response):
        return PermissionError(
            f"Objectstore refused access to {where} (HTTP {exc.status}); check "
            "OBJECTSTORE['TOKEN'] and the key's permissions on the server."
        )
    if isinstance(exc, ObjectstoreConnectionError):
        return OSError(
            f"Objectstore request for {where} failed: {exc}. Is the server running at "
            "OBJECTSTORE['URL']? For development, start one with "
            "'python manage.py objectstore_server'."
        )
    return OSError(f"Objectstore request for {where} failed: {exc}")
