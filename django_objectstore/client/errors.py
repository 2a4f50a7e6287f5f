"""Exceptions raised by the client.

::

    Exception
     └── RequestError                  any failed Objectstore call (.status, .response)
          ├── ObjectNotFound           404 where absence is an error (extend_expiry)
          ├── ExpiryExtensionRejected  409 from extend_expiry
          ├── MultipartCompleteError   error reported in a multipart-complete body
          │                            (defined in .multipart)
          └── ObjectstoreConnectionError  transport failure: refused, reset, timeout
                                       (also a urllib3 HTTPError; .status is None)

``RequestError.response`` holds the server's response body as text (JSON or
plain text; never assume either), and ``str()`` of the error includes it.
"""

from __future__ import annotations

import urllib3

__all__ = [
    "ExpiryExtensionRejected",
    "ObjectNotFound",
    "ObjectstoreConnectionError",
    "RequestError",
    "raise_for_status",
]

# Error bodies quoted in messages are cut to this many characters.
_MAX_BODY_IN_MESSAGE = 500


class RequestError(Exception):
    """An Objectstore request failed. ``status`` is the HTTP status (``None``
    when no response arrived) and ``response`` the response body as text."""

    def __init__(self, message: str, status: int | None, response: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.response = response

    def __str__(self) -> str:
        message = super().__str__()
        if self.response:
            body = self.response.strip()
            if len(body) > _MAX_BODY_IN_MESSAGE:
                body = body[:_MAX_BODY_IN_MESSAGE] + "..."
            if body and body not in message:
                return f"{message}: {body}"
        return message


class ObjectNotFound(RequestError):
    """The object does not exist (or has expired)."""


class ExpiryExtensionRejected(RequestError):
    """The server refused to extend the object's expiry (HTTP 409): the object
    never expires, the extension would shorten it, or it changed concurrently."""


class ObjectstoreConnectionError(RequestError, urllib3.exceptions.HTTPError):
    """No usable response: connection refused or reset, timeout, or a broken
    response stream. Subclasses urllib3's ``HTTPError`` too, so code written
    for the official client (which lets urllib3 errors through) still catches it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, None, None)


def raise_for_status(
    response: urllib3.response.HTTPResponse,
    *,
    error_type: type[RequestError] = RequestError,
) -> None:
    """Raise ``error_type`` carrying status and body if ``response`` is >= 400."""
    if response.status < 400:
        return
    try:
        data = response.data or response.read() or b""
    except urllib3.exceptions.HTTPError:
        data = b""
    text = data.decode("utf-8", "replace")
    raise error_type(
        f"Objectstore request failed with status {response.status}", response.status, text
    )
