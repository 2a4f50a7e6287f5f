"""The pool of keep-alive connections a ``Client`` shares with its sessions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlparse

import urllib3
from urllib3._collections import HTTPHeaderDict
from urllib3.connectionpool import HTTPConnectionPool

from django_objectstore.client._connection import connection_pool
from django_objectstore.client._io import BLOCK_SIZE

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "make_pool"]

#: Connect timeout in seconds unless ``connection_kwargs`` overrides ``timeout``.
DEFAULT_CONNECT_TIMEOUT: Final = 0.1
# Connections kept per client; the official client keeps one, which makes
# every concurrent request beyond the first open and drop a connection.
_DEFAULT_POOL_MAXSIZE: Final = 16


def make_pool(
    base_url: str,
    *,
    retries: int | None,
    timeout_ms: float | None,
    connection_kwargs: Mapping[str, Any] | None,
    user_agent: str,
) -> HTTPConnectionPool:
    """A pool for ``base_url`` (an http or https URL with a host), configured
    as the official client configures its own; ``connection_kwargs`` (any
    urllib3 pool arguments) override the defaults."""
    parsed = urlparse(base_url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(
            f"base_url must be an http:// or https:// URL with a host, got {base_url!r}"
        )
    kwargs: dict[str, Any] = {
        "retries": urllib3.Retry(connect=3 if retries is None else retries, read=0),
        "timeout": urllib3.Timeout(
            connect=DEFAULT_CONNECT_TIMEOUT, read=timeout_ms / 1000 if timeout_ms else None
        ),
        "maxsize": _DEFAULT_POOL_MAXSIZE,
        "blocksize": BLOCK_SIZE,
    }
    if connection_kwargs:
        kwargs.update(connection_kwargs)
    headers = HTTPHeaderDict({"User-Agent": user_agent})
    headers.update(kwargs.get("headers") or {})
    kwargs["headers"] = headers
    return connection_pool(base_url, **kwargs)
