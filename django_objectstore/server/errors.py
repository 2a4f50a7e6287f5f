"""The one exception for "answer this request with that status"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

__all__ = ["ErrorForm", "HTTPError"]

#: How the error is written: ``json`` is ``{"detail": ...}`` (the service's
#: own errors upstream), ``text`` is ``text/plain`` (errors upstream's HTTP
#: framework writes: bad paths, query strings, media types), ``empty`` is a
#: status alone (404 and 405 of unknown routes, 503 overload).
ErrorForm = Literal["json", "text", "empty"]


class HTTPError(Exception):
    """Raised anywhere below the HTTP layer to answer with ``status``;
    ``detail`` is the message the client reads (never a secret)."""

    def __init__(
        self,
        status: int,
        detail: str = "",
        *,
        form: ErrorForm = "json",
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.form: ErrorForm = form
        self.headers = tuple(headers)
