"""Exceptions raised by the client: the official client's, so code written
for it catches the same failures with the same ``except`` clauses.

::

    Exception
     └── RequestError                  the server answered with an error status
          │                            (.status, .response)
          ├── ObjectNotFound           404 where absence is an error (extend_expiry)
          ├── ExpiryExtensionRejected  409 from extend_expiry
          └── MultipartCompleteError   error reported in a multipart-complete body
                                       (defined in .multipart)

    urllib3.exceptions.HTTPError       no usable response (as the official client)
     └── ObjectstoreConnectionError    base of what this client raises for them
          (each raised error also subclasses the exact urllib3 class the official
          client raises for that failure: MaxRetryError for a refused connection
          or a connect/read timeout, ProtocolError for a connection broken
          mid-response, ReadTimeoutError for a timed-out POST/PATCH, ...)

Transport failures are *not* ``RequestError``, exactly as with the official
client. ``RequestError.response`` holds the server's response body as text
(JSON or plain text; never assume either), and ``str()`` of the error
includes it.
"""

from __future__ import annotations

import urllib3

__all__ = [
    "ExpiryExtensionRejected",
    "ObjectNotFound",
    "ObjectstoreConnectionError",
    "RequestError",
    "raise_for_status",
    "transport_error",
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


class ObjectstoreConnectionError(urllib3.exceptions.HTTPError):
    """No usable response: connection refused or reset, a timeout, or a
    response broken off. What is raised is always also an instance of the
    urllib3 exception the official client raises for the same failure (see
    :func:`transport_error`); ``str()`` is urllib3's message. ``status`` and
    ``response`` are ``None``, for code that reads them on any error."""

    status: int | None = None
    response: str | None = None

    def __reduce__(self) -> str | tuple[object, ...]:
        # Pickled (Celery results, multiprocessing) as the plain urllib3
        # error, which any process can rebuild.
        reduced = super().__reduce__()
        if isinstance(reduced, tuple):
            return (_urllib3_class(type(self)), *reduced[1:])
        return reduced


_subclasses: dict[type[urllib3.exceptions.HTTPError], type[ObjectstoreConnectionError]] = {}


def _urllib3_class(cls: type[BaseException]) -> type[BaseException]:
    for base in cls.__mro__[1:]:
        if issubclass(base, urllib3.exceptions.HTTPError) and not issubclass(
            base, ObjectstoreConnectionError
        ):
            return base
    return urllib3.exceptions.HTTPError


def _subclass_of(cls: type[urllib3.exceptions.HTTPError]) -> type[ObjectstoreConnectionError]:
    made = _subclasses.get(cls)
    if made is None:
        made = type(f"Objectstore{cls.__name__}", (ObjectstoreConnectionError, cls), {})
        made.__module__ = __name__
        made = _subclasses.setdefault(cls, made)
    return made


def transport_error(exc: urllib3.exceptions.HTTPError, what: str) -> ObjectstoreConnectionError:
    """``exc`` (a urllib3 error, as the official client would let through)
    as an ``ObjectstoreConnectionError`` that is also of ``exc``'s own class,
    with the same message, attributes and cause, and a note naming ``what``
    failed (shown in tracebacks, not in ``str()``)."""
    if isinstance(exc, ObjectstoreConnectionError):
        return exc
    cls = _subclass_of(type(exc))
    made = cls.__new__(cls, *exc.args)
    made.args = exc.args
    made.__dict__.update(exc.__dict__)
    made.__cause__ = exc.__cause__
    made.__context__ = exc.__context__
    made.__traceback__ = exc.__traceback__
    made.add_note(f"Objectstore {what} failed without a complete response")
    return made


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
