"""``Client`` and ``Session``: the Objectstore client proper (``Usecase``
lives in ``_session``, uploads in ``_upload``, downloads in ``_download``)."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from os import PathLike
from typing import Any, Final, Literal, cast
from urllib.parse import urlparse

from urllib3.response import HTTPResponse

from django_objectstore import __version__, _protocol, _protocol_parsing
from django_objectstore.client import presign
from django_objectstore.client._download import (
    GetResponse,
    RangeResponse,
    payload_stream,
    range_payload,
)
from django_objectstore.client._io import Body
from django_objectstore.client._pool import DEFAULT_CONNECT_TIMEOUT, make_pool
from django_objectstore.client._session import (
    DEFAULT_MULTIPART_PART_SIZE,
    DEFAULT_MULTIPART_THRESHOLD,
    DEFAULT_MULTIPART_WORKERS,
    MIN_MULTIPART_PART_SIZE,
    SessionCore,
    Threshold,
    UploadOptions,
    Usecase,
    check_client_options,
    check_compression,
    check_threshold,
)
from django_objectstore.client._upload import put_object
from django_objectstore.client.auth import Permission, SecretKey, TokenProvider
from django_objectstore.client.errors import (
    ExpiryExtensionRejected,
    ObjectNotFound,
    RequestError,
    raise_for_status,
)
from django_objectstore.client.metadata import (
    Compression,
    ExpirationPolicy,
    Metadata,
    expiry_extension,
)
from django_objectstore.client.metrics import (
    MetricsBackend,
    NoOpMetricsBackend,
    measure_storage_operation,
)
from django_objectstore.client.multipart import MultipartUpload, initiate
from django_objectstore.client.scope import Scope
from django_objectstore.client.tracing import Span, storage_span

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MULTIPART_PART_SIZE",
    "DEFAULT_MULTIPART_THRESHOLD",
    "DEFAULT_MULTIPART_WORKERS",
    "MIN_MULTIPART_PART_SIZE",
    "PARAM_AUTH",
    "USER_AGENT",
    "Client",
    "GetResponse",
    "RangeResponse",
    "Session",
    "Usecase",
]

#: Query parameter carrying a token in ``object_url(..., token_validity=...)``.
PARAM_AUTH: Final = _protocol.PARAM_AUTH
#: Sent as ``User-Agent`` unless ``connection_kwargs["headers"]`` overrides it.
USER_AGENT: Final = f"django-objectstore/{__version__}"


class Client:
    """An Objectstore client: a pool of keep-alive connections to
    ``base_url``, shared by all sessions and threads.

    Same arguments and defaults as the official client, plus keyword-only
    knobs for large uploads: at or above ``multipart_threshold`` bytes (when
    the input size is known; ``"none"`` disables), ``put`` compresses on up
    to ``multipart_workers`` threads and uploads the result in parts of
    ``multipart_part_size`` stored bytes (at least 5 MiB) with that many
    threads (see ``Session.put``).
    Close the client (or use it as a context manager) to close its connections.
    """

    def __init__(
        self,
        base_url: str,
        metrics_backend: MetricsBackend | None = None,
        propagate_traces: bool = False,
        retries: int | None = None,
        timeout_ms: float | None = None,
        connection_kwargs: Mapping[str, Any] | None = None,
        token: TokenProvider | None = None,
        spool_dir: str | PathLike[str] | None = None,
        *,
        multipart_threshold: Threshold = DEFAULT_MULTIPART_THRESHOLD,
        multipart_part_size: int = DEFAULT_MULTIPART_PART_SIZE,
        multipart_workers: int = DEFAULT_MULTIPART_WORKERS,
    ) -> None:
        check_client_options(propagate_traces, retries, token)
        uploads = UploadOptions(multipart_threshold, multipart_part_size, multipart_workers)
        self._pool = make_pool(
            base_url,
            retries=retries,
            timeout_ms=timeout_ms,
            connection_kwargs=connection_kwargs,
            user_agent=USER_AGENT,
        )
        self._base_path = urlparse(base_url).path
        self._metrics_backend = metrics_backend or NoOpMetricsBackend()
        self._propagate_traces = propagate_traces
        self._token = token
        self._spool_dir = spool_dir
        self._uploads = uploads

    def __repr__(self) -> str:
        pool = self._pool
        return f"Client('{pool.scheme}://{pool.host}:{pool.port}{self._base_path}')"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close all pooled connections. Sessions made from this client can
        still be used afterwards (they open new connections)."""
        self._pool.close()

    def session(self, usecase: Usecase, **scopes: str | int | bool) -> Session:
        """A session for ``usecase`` within the scope given by ``scopes``
        (order matters: ``org=1, project=2`` is ``org=1;project=2``)."""
        if not isinstance(usecase, Usecase):
            raise TypeError(f"usecase must be a Usecase, got {type(usecase).__name__}")
        return Session(
            self._pool,
            self._base_path,
            self._metrics_backend,
            self._propagate_traces,
            usecase,
            Scope(**scopes),
            self._token,
            self._spool_dir,
            uploads=self._uploads,
        )


class Session(SessionCore):
    """Operations on one usecase and scope. Make sessions with
    ``Client.session``; they are cheap and thread-safe."""

    # -- tokens and URLs --------------------------------------------------

    def mint_token(
        self,
        permissions: list[Permission] | None = None,
        expiry_seconds: int | None = None,
    ) -> str:
        """A freshly signed token for this usecase and scope. Raises
        ``ValueError`` without a ``SecretKey`` or on permission escalation."""
        if not isinstance(self._token, SecretKey):
            raise ValueError("no secret key configured on this session")
        token = self._token
        expiry = token.expiry_seconds if expiry_seconds is None else expiry_seconds
        with storage_span("mint_token", self._usecase, self._scope, expiry_seconds=expiry) as span:
            minted = token.token_for_scope(
                self._usecase.name, self._scope, permissions, expiry_seconds
            )
            granted = token.permissions if permissions is None else permissions
            span.set_attribute("objectstore.permissions", [str(p) for p in granted])
            return minted

    def object_url(self, key: str, token_validity: timedelta | None = None) -> str:
        """Absolute URL of the object; with ``token_validity`` it carries a
        read-only token (``?os_auth=``) valid that long."""
        url = f"{self._base_url()}{self._path(key)}"
        if token_validity is None:
            return url
        token = self.mint_token(
            permissions=[Permission.OBJECT_READ],
            expiry_seconds=math.ceil(token_validity.total_seconds()),
        )
        return f"{url}?{PARAM_AUTH}={token}"

    def presigned_object_url(
        self,
        method: Literal["GET", "HEAD"],
        key: str,
        duration: timedelta = timedelta(hours=1),
    ) -> str:
        """A pre-signed URL allowing ``method`` (GET or HEAD, which are
        interchangeable) on the object for ``duration`` (at most 7 days).
        Computed locally, without a request. The URL must be used verbatim."""
        path = self._path(key)
        presign.check_presign(self._token, method, duration)  # no span for a refusal
        seconds = math.ceil(duration.total_seconds())
        with storage_span(
            "presign", self._usecase, self._scope, key=key, method=method, duration_seconds=seconds
        ):
            return presign.presigned_url(self._token, method, self._base_url(), path, duration)

    # -- objects ----------------------------------------------------------

    def put(
        self,
        contents: Body,
        key: str | None = None,
        compress: Compression | None = None,
        compression: Compression | Literal["none"] | None = None,
        precompressed: Compression | None = None,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        expiration_policy: ExpirationPolicy | None = None,
        origin: str | None = None,
        filename: str | None = None,
        resumable_threshold_bytes: int | Literal["none"] | None = None,
    ) -> str:
        """Upload ``contents`` (bytes, a binary file-like or an iterable of
        bytes; streamed, never read whole) and return the object's key
        (server-generated when ``key`` is empty).

        ``compress`` (older name: ``compression``, deprecated as in the
        official client since 0.2.10) overrides the usecase's
        compression; pass ``precompressed="zstd"`` for contents that are
        already zstd-compressed. Inputs whose size is known and at least the
        client's ``multipart_threshold`` take a faster path: incompressible
        ones (judged from samples) one request carrying a zstd frame of raw
        blocks, the others a parallel multipart upload of 2 MiB zstd frames
        compressed on worker threads (aborted on any failure). Below the
        threshold, compressible inputs of known size from 4 MiB up go in one
        request of such frames; everything else in one streamed request, as
        the official client sends it. A failed upload never leaves a partial
        object. Seekable inputs of at least ``resumable_threshold_bytes`` (this
        put's, else the usecase's, which yields to the multipart path) go
        through a resumable upload that survives dropped connections and 5xx
        answers (``client/_resumable.py``); ``"none"`` turns that off.
        """
        if compression is not None:
            warnings.warn(
                "`compression` is deprecated, use `compress` instead",
                DeprecationWarning,
                stacklevel=2,
            )
            if compress is not None:
                raise ValueError("Cannot pass both `compress` and `compression`")
            compress = compression
        if compress is not None and precompressed is not None:
            raise ValueError("Cannot pass both `compress` and `precompressed`")
        check_compression("compress", compress, ("zstd", "none"))
        check_compression("precompressed", precompressed, ("zstd",))
        check_threshold("resumable_threshold_bytes", resumable_threshold_bytes, allow_none=True)
        if isinstance(cast(object, contents), str):
            raise TypeError("put() needs bytes or a binary stream, not str; encode it first")

        encoding = precompressed or compress or self._usecase._compression
        headers = self._metadata_headers(
            encoding, content_type, metadata, expiration_policy, origin, filename
        )
        with (
            storage_span("put", self._usecase, self._scope) as span,
            measure_storage_operation(self._metrics_backend, "put", self._usecase.name) as metrics,
        ):
            result_key, source_size, stored_size = put_object(
                self,
                contents,
                key=key or None,
                headers=headers,
                compress=precompressed is None and encoding == "zstd",
                resumable_threshold=resumable_threshold_bytes,
            )
            if precompressed is None:
                metrics.record_uncompressed_size(source_size)
            if encoding != "none":
                metrics.record_compressed_size(stored_size, encoding)
            span.set_attribute("objectstore.key", result_key)
            span.set_attribute("objectstore.compression", encoding)
            if metrics.uncompressed_size is not None:
                span.set_attribute("objectstore.uncompressed_size", metrics.uncompressed_size)
            if metrics.compressed_size is not None:
                span.set_attribute("objectstore.compressed_size", metrics.compressed_size)
        return result_key

    def get(
        self,
        key: str,
        decompress: bool = True,
        accept_encoding: Sequence[str] | None = None,
    ) -> GetResponse | None:
        """Stream the object: ``None`` if it does not exist. The payload is
        decompressed on the fly (across multipart frames) unless
        ``decompress=False`` or its encoding is in ``accept_encoding``.
        Read it in blocks and close it (or use ``with``)."""
        with storage_span("get", self._usecase, self._scope, key=key) as span:
            response = self._open_get(key, self._request_headers(), span)
            if response is None:
                return None
            metadata = Metadata.from_headers(response.headers)
            stored_compression = metadata.compression
            span.set_attribute("objectstore.compression", stored_compression or "none")
            payload = payload_stream(
                response, metadata, decompress=decompress, accept_encoding=accept_encoding
            )
            decompressed = stored_compression is not None and metadata.compression is None
            span.set_attribute("objectstore.decompressed", decompressed)
            return GetResponse(metadata, payload)

    def _open_get(self, key: str, headers: dict[str, str], span: Span) -> HTTPResponse | None:
        """A GET's response with its body unread, or ``None`` for 404; raises
        on an error status (but 416 to a range request, which reads it)."""
        with measure_storage_operation(self._metrics_backend, "get", self._usecase.name):
            response = self._request("GET", self._path(key), headers=headers, preload=False)
            if response.status == 404:
                response.drain_conn()
                response.release_conn()
                span.set_attribute("objectstore.found", False)
                return None
            if response.status >= 400 and (response.status != 416 or "Range" not in headers):
                try:
                    raise_for_status(response)
                finally:
                    response.release_conn()
            span.set_attribute("objectstore.found", True)
            return response

    def get_range(self, key: str, start: int, end: int | None = None) -> RangeResponse | None:
        """Stream stored bytes ``start``..``end`` (inclusive; ``end=None``
        reads to the end; a negative ``start`` with no ``end`` reads the last
        ``-start`` bytes) of the object, or ``None`` if it does not exist.

        Ranges address the bytes *as stored*: for a zstd-compressed object
        they are a slice of the compressed stream (not decodable on its own;
        ``metadata.compression`` says so). ``total_size`` is the stored size
        of the whole object, so ``get_range(key, 0, 0)`` is a cheap way to
        learn it.
        """
        if type(start) is not int or (end is not None and type(end) is not int):
            raise TypeError("start and end must be integers")
        headers = self._request_headers()
        headers["Range"] = _protocol_parsing.format_byte_range(start, end)
        with storage_span("get", self._usecase, self._scope, key=key) as span:
            response = self._open_get(key, headers, span)
            if response is None:
                return None
            metadata = Metadata.from_headers(response.headers)
            span.set_attribute("objectstore.compression", metadata.compression or "none")
            span.set_attribute("objectstore.decompressed", False)  # stored bytes
            payload, first, last, total = range_payload(response, metadata, start, end)
            return RangeResponse(metadata, payload, first, last, total)

    def head(self, key: str) -> Metadata | None:
        """The object's metadata, or ``None`` if it does not exist (counts
        as an access for time-to-idle objects)."""
        with (
            storage_span("head", self._usecase, self._scope, key=key) as span,
            measure_storage_operation(self._metrics_backend, "head", self._usecase.name),
        ):
            response = self._request("HEAD", self._path(key), headers=self._request_headers())
            if response.status == 404:
                span.set_attribute("objectstore.found", False)
                return None
            raise_for_status(response)
            span.set_attribute("objectstore.found", True)
            return Metadata.from_headers(response.headers)

    def delete(self, key: str) -> None:
        """Delete the object (succeeds whether or not it existed, if the
        server says so; raises ``RequestError`` on an error status)."""
        with (
            storage_span("delete", self._usecase, self._scope, key=key),
            measure_storage_operation(self._metrics_backend, "delete", self._usecase.name),
        ):
            response = self._request("DELETE", self._path(key), headers=self._request_headers())
            raise_for_status(response)

    def extend_expiry(
        self,
        key: str,
        at: datetime | None = None,
        from_creation: timedelta | None = None,
        from_now: timedelta | None = None,
    ) -> None:
        """Push the object's expiry out: to ``at`` (aware datetime), or to
        ``from_creation``/``from_now`` after creation/now (exactly one).
        Raises ``ObjectNotFound`` (404) or ``ExpiryExtensionRejected`` (409)."""
        extension = expiry_extension(at, from_creation, from_now)
        headers = self._request_headers()
        headers["Content-Type"] = "application/json"
        body = json.dumps({"extend_expiry": extension}).encode()
        with (
            storage_span("extend_expiry", self._usecase, self._scope, key=key),
            measure_storage_operation(self._metrics_backend, "extend_expiry", self._usecase.name),
        ):
            response = self._request("PATCH", self._path(key), headers=headers, body=body)
            error_type: type[RequestError] = RequestError
            if response.status == 404:
                error_type = ObjectNotFound
            elif response.status == 409:
                error_type = ExpiryExtensionRejected
            raise_for_status(response, error_type=error_type)

    # -- multipart ----------------------------------------------------------

    def initiate_multipart_upload(
        self,
        *,
        key: str | None = None,
        compression: Compression | Literal["none"] | None = None,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        expiration_policy: ExpirationPolicy | None = None,
        origin: str | None = None,
        filename: str | None = None,
    ) -> MultipartUpload:
        """Start a multipart upload. ``compression`` only records the
        encoding: compress each part yourself before ``put_part``."""
        check_compression("compression", compression, ("zstd", "none"))
        headers = self._metadata_headers(
            compression or self._usecase._compression,
            content_type,
            metadata,
            expiration_policy,
            origin,
            filename,
        )
        return initiate(self, key or None, headers)

    def resume_multipart_upload(self, key: str, upload_id: str) -> MultipartUpload:
        """A handle for an existing upload (no request is made)."""
        return MultipartUpload(self, key, upload_id)
