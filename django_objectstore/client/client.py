"""``Client``, ``Usecase`` and ``Session``: the Objectstore client proper."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from os import PathLike
from typing import IO, Any, Final, Literal, NamedTuple, cast
from urllib.parse import urlparse

import urllib3
import zstandard
from urllib3._collections import HTTPHeaderDict
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.response import HTTPResponse

from django_objectstore import __version__, _protocol
from django_objectstore.client import presign
from django_objectstore.client._connection import connection_class
from django_objectstore.client._frames import FrameDecoder
from django_objectstore.client._io import (
    BLOCK_SIZE,
    Body,
    ReadAhead,
    ResponseStream,
    _Counter,
    body_chunks,
    compress_small,
    known_size,
    read_json,
    skip_bytes,
    translate_transport_error,
)
from django_objectstore.client._rawframe import frame_size, is_incompressible, raw_frame_chunks
from django_objectstore.client._resumable import put_resumable
from django_objectstore.client.auth import Permission, SecretKey, TokenProvider
from django_objectstore.client.errors import (
    ExpiryExtensionRejected,
    ObjectNotFound,
    ObjectstoreConnectionError,
    RequestError,
    raise_for_status,
)
from django_objectstore.client.metadata import (
    HEADER_EXPIRATION,
    HEADER_FILENAME,
    HEADER_META_PREFIX,
    HEADER_ORIGIN,
    Compression,
    ExpirationPolicy,
    Metadata,
    format_expiration,
    format_timedelta,
)
from django_objectstore.client.metrics import (
    MetricsBackend,
    NoOpMetricsBackend,
    measure_storage_operation,
)
from django_objectstore.client.multipart import MultipartUpload
from django_objectstore.client.scope import Scope

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

#: Connect timeout in seconds unless ``connection_kwargs`` overrides ``timeout``.
DEFAULT_CONNECT_TIMEOUT: Final = 0.1
#: Inputs of at least this many bytes (when their size is known) take the
#: large-input paths of ``Session.put``. Below it, one streamed request.
DEFAULT_MULTIPART_THRESHOLD: Final = 64 * 1024 * 1024
#: Size of each part of a parallel multipart upload, in stored (compressed)
#: bytes; every part but the last has exactly this size.
DEFAULT_MULTIPART_PART_SIZE: Final = 8 * 1024 * 1024
#: Smallest ``multipart_part_size`` accepted: production backends (S3/GCS
#: multipart) reject non-last parts below 5 MiB when the upload completes.
MIN_MULTIPART_PART_SIZE: Final = 5 * 1024 * 1024
#: Parts uploaded at the same time; also caps the compression threads of a put.
DEFAULT_MULTIPART_WORKERS: Final = 3
# Connections kept per client; the official client keeps one, which makes
# every concurrent request beyond the first open and drop a connection.
_DEFAULT_POOL_MAXSIZE: Final = 16
# Compressed bodies at least this big (or of unknown size) are read ahead
# by a helper thread.
_READ_AHEAD_MIN: Final = 4 * BLOCK_SIZE
# Known-size inputs at least this big are compressed on several threads
# even in one request (two frames or more).
_THREADED_COMPRESS_MIN: Final = 4 * BLOCK_SIZE
# Most threads decompressing the frames of one payload, and the smallest
# stored size worth them (decoding 8 MiB in 2 MiB frames on two threads
# took 12.4 ms against 11.1 ms for one thread; 32 MiB 26.6 ms against 33.4).
_DECODE_THREADS: Final = 4
_PARALLEL_DECODE_MIN: Final = 4 * BLOCK_SIZE
#: Query parameter carrying a token in ``object_url(..., token_validity=...)``.
PARAM_AUTH: Final = "os_auth"
#: Sent as ``User-Agent`` unless ``connection_kwargs["headers"]`` overrides it.
USER_AGENT: Final = f"django-objectstore/{__version__}"
_USECASE_CHARS: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
)

Threshold = int | Literal["none"]


def _check_threshold(name: str, value: object, *, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if value == "none":
        return
    if type(value) is not int or value < 0:
        raise ValueError(f'{name} must be a non-negative integer or "none", got {value!r}')


def _check_compression(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise ValueError(f"Invalid compression: {value!r} (for {name}, use one of {allowed})")


class GetResponse(NamedTuple):
    """Result of ``Session.get``: the metadata and a readable, closeable
    binary stream of the payload (decompressed unless asked otherwise)."""

    metadata: Metadata
    payload: IO[bytes]


class RangeResponse(NamedTuple):
    """Result of ``Session.get_range``: bytes ``start``..``end`` (inclusive)
    of the object *as stored* (compressed bytes for a compressed object),
    and ``total_size``, the stored size of the whole object (``None`` only
    if the server ignored the range and did not report a size). When the
    range starts beyond the object, ``payload`` is empty and ``start`` equals
    ``total_size``."""

    metadata: Metadata
    payload: IO[bytes]
    start: int
    end: int
    total_size: int | None


class Usecase:
    """A workload in Objectstore with its defaults: compression
    (``"zstd"`` or ``"none"``) and expiration policy.

    Names are 3-64 characters from ``A-Z a-z 0-9 _ -``.
    Seekable inputs of at least ``resumable_threshold_bytes`` (``"none"``:
    never) are stored through a resumable upload unless a parallel multipart
    put takes them (see ``Session.put`` and the README). ``multipart_threshold``
    overrides the client's parallel-upload threshold for this usecase:
    ``None`` inherits it, ``"none"`` disables parallel uploads.
    """

    def __init__(
        self,
        name: str,
        compression: Compression = "zstd",
        expiration_policy: ExpirationPolicy | None = None,
        resumable_threshold_bytes: int | Literal["none"] = 256 * 1024 * 1024,
        *,
        multipart_threshold: Threshold | None = None,
    ) -> None:
        if not isinstance(name, str):
            raise TypeError(f"usecase name must be a str, got {type(name).__name__}")
        if not 3 <= len(name) <= 64:
            raise ValueError(f"usecase name must be 3-64 ASCII characters long, got {name!r}")
        if not set(name) <= _USECASE_CHARS:
            raise ValueError(
                f"usecase name must contain only ASCII letters, digits, '_' or '-', got {name!r}"
            )
        _check_compression("Usecase", compression, ("zstd", "none"))
        _check_threshold("resumable_threshold_bytes", resumable_threshold_bytes, allow_none=False)
        _check_threshold("multipart_threshold", multipart_threshold, allow_none=True)
        self._name = name
        self._compression: Compression = compression
        self._expiration_policy = expiration_policy
        self._resumable_threshold_bytes = resumable_threshold_bytes
        self._multipart_threshold = multipart_threshold

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"Usecase({self._name!r}, compression={self._compression!r})"


class Client:
    """An Objectstore client: a pool of keep-alive connections to
    ``base_url``, shared by all sessions and threads.

    Same arguments and defaults as the official client, plus keyword-only
    knobs for large uploads: at or above ``multipart_threshold`` bytes (when
    the input size is known; ``"none"`` disables), ``put`` compresses on up
    to ``multipart_workers`` threads and uploads the result in parts of
    ``multipart_part_size`` stored bytes (at least 5 MiB) with that many
    threads (see ``Session.put``). ``spool_dir`` is where resumable uploads
    keep their compressed temporary file (``None``: the system's temp dir).
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
        if propagate_traces:
            try:
                import sentry_sdk  # noqa: F401
            except ImportError as exc:
                raise ImportError(
                    "propagate_traces=True needs the 'sentry-sdk' package, which is not "
                    "installed; install it (pip install sentry-sdk) or pass "
                    "propagate_traces=False"
                ) from exc
        if retries is not None and (type(retries) is not int or retries < 0):
            raise ValueError(f"retries must be a non-negative integer or None, got {retries!r}")
        if token is not None and not isinstance(token, SecretKey | str):
            raise TypeError(
                f"token must be a SecretKey or a token string, got {type(token).__name__}"
            )
        _check_threshold("multipart_threshold", multipart_threshold, allow_none=False)
        if type(multipart_part_size) is not int or multipart_part_size < MIN_MULTIPART_PART_SIZE:
            raise ValueError(
                f"multipart_part_size must be an integer of at least {MIN_MULTIPART_PART_SIZE} "
                f"(5 MiB, the smallest part production backends accept), "
                f"got {multipart_part_size!r}"
            )
        if type(multipart_workers) is not int or multipart_workers < 1:
            raise ValueError(
                f"multipart_workers must be a positive integer, got {multipart_workers!r}"
            )
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
        headers = HTTPHeaderDict({"User-Agent": USER_AGENT})
        headers.update(kwargs.get("headers") or {})
        kwargs["headers"] = headers
        self._pool: HTTPConnectionPool = urllib3.connectionpool.connection_from_url(
            base_url, **kwargs
        )
        self._pool.ConnectionCls = connection_class(parsed.scheme, kwargs["timeout"])
        self._base_path = parsed.path
        self._metrics_backend = metrics_backend or NoOpMetricsBackend()
        self._propagate_traces = propagate_traces
        self._token = token
        self._spool_dir = spool_dir
        self._multipart = (multipart_threshold, multipart_part_size, multipart_workers)

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
        threshold, part_size, workers = self._multipart
        if usecase._multipart_threshold is not None:
            threshold = usecase._multipart_threshold
        return Session(
            self._pool,
            self._base_path,
            self._metrics_backend,
            self._propagate_traces,
            usecase,
            Scope(**scopes),
            self._token,
            self._spool_dir,
            multipart_threshold=threshold,
            multipart_part_size=part_size,
            multipart_workers=workers,
        )


class Session:
    """Operations on one usecase and scope. Make sessions with
    ``Client.session``; they are cheap and thread-safe."""

    def __init__(
        self,
        pool: HTTPConnectionPool,
        base_path: str,
        metrics_backend: MetricsBackend,
        propagate_traces: bool,
        usecase: Usecase,
        scope: Scope,
        token: TokenProvider | None = None,
        spool_dir: str | PathLike[str] | None = None,
        *,
        multipart_threshold: Threshold = DEFAULT_MULTIPART_THRESHOLD,
        multipart_part_size: int = DEFAULT_MULTIPART_PART_SIZE,
        multipart_workers: int = DEFAULT_MULTIPART_WORKERS,
    ) -> None:
        self._pool = pool
        self._base_path = base_path.rstrip("/")
        self._metrics_backend = metrics_backend
        self._propagate_traces = propagate_traces
        self._usecase = usecase
        self._scope = scope
        self._token = token
        self._spool_dir = spool_dir
        self._multipart_threshold = multipart_threshold
        self._multipart_part_size = multipart_part_size
        self._multipart_workers = multipart_workers
        self._base_headers = dict(pool.headers)
        self._prefix = f"{usecase.name}/{scope}/"

    def __repr__(self) -> str:
        return f"Session(usecase={self._usecase.name!r}, scope={str(self._scope)!r})"

    # -- plumbing ---------------------------------------------------------

    def _request_headers(self) -> dict[str, str]:
        headers = self._base_headers.copy()
        if self._propagate_traces:
            import sentry_sdk

            headers.update(sentry_sdk.get_current_scope().iter_trace_propagation_headers())
        token = self._token
        if isinstance(token, SecretKey):
            headers[_protocol.HEADER_AUTH] = (
                f"Bearer {token.cached_token_for_scope(self._usecase.name, self._scope)}"
            )
        elif token:
            headers[_protocol.HEADER_AUTH] = f"Bearer {token}"
        return headers

    def _path(self, key: str | None) -> str:
        return _protocol.encode_path(f"{self._base_path}/v1/objects/{self._prefix}{key or ''}")

    def _multipart_path(self, action: str | None, key: str | None, query: str | None) -> str:
        resource = "objects:multipart" + (f":{action}" if action else "")
        path = _protocol.encode_path(f"{self._base_path}/v1/{resource}/{self._prefix}{key or ''}")
        return f"{path}?{query}" if query else path

    def _base_url(self) -> str:
        host = self._pool.host
        if ":" in host:
            host = f"[{host}]"
        return f"{self._pool.scheme}://{host}:{self._pool.port}"

    def _request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        body: Any = None,
        preload: bool = True,
    ) -> HTTPResponse:
        urlopen: Any = self._pool.urlopen
        try:
            response: HTTPResponse = urlopen(
                method,
                url,
                body=body,
                headers=headers,
                preload_content=preload,
                decode_content=False,
                release_conn=preload,
                redirect=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise translate_transport_error(exc, f"{method} {url}") from exc
        return response

    def _metadata_headers(
        self,
        compression: str | None,
        content_type: str | None,
        metadata: Mapping[str, str] | None,
        expiration_policy: ExpirationPolicy | None,
        origin: str | None,
        filename: str | None,
    ) -> dict[str, str]:
        headers = self._request_headers()
        if compression and compression != "none":
            headers["Content-Encoding"] = compression
        if content_type:
            headers["Content-Type"] = content_type
        policy = expiration_policy or self._usecase._expiration_policy
        if policy:
            headers[HEADER_EXPIRATION] = format_expiration(policy)
        if origin:
            headers[HEADER_ORIGIN] = _protocol.encode_header_value(origin)
        if filename is not None:
            headers[HEADER_FILENAME] = _protocol.encode_header_value(filename)
        for name, value in (metadata or {}).items():
            if not isinstance(value, str):
                raise TypeError(
                    f"metadata values must be str, got {type(value).__name__} for {name!r}"
                )
            headers[f"{HEADER_META_PREFIX}{name}"] = _protocol.encode_header_value(value)
        return headers

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
        return self._token.token_for_scope(
            self._usecase.name, self._scope, permissions, expiry_seconds
        )

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
        if method not in presign.SUPPORTED_METHODS:
            raise ValueError(
                f"unsupported pre-signed method {method!r}, "
                f"expected one of {presign.SUPPORTED_METHODS}"
            )
        if not isinstance(self._token, SecretKey):
            raise ValueError("no secret key configured on this session")
        if duration > presign.MAX_PRESIGN_DURATION:
            raise ValueError(
                f"duration {duration} exceeds the maximum of {presign.MAX_PRESIGN_DURATION}"
            )
        seconds = math.ceil(duration.total_seconds())
        path = self._path(key)
        timestamp = datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        query = _protocol.encode_query_value(
            f"{presign.PARAM_KID}={self._token.kid}"
            f"&{presign.PARAM_TIMESTAMP}={timestamp}&{presign.PARAM_DURATION}={seconds}"
        )
        signature = self._token.signature_for_canonical_form(
            presign.build_canonical_form(method, path, query)
        )
        return f"{self._base_url()}{path}?{query}&{presign.PARAM_SIG}={signature}"

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
        *,
        multipart_threshold: Threshold | None = None,
    ) -> str:
        """Upload ``contents`` (bytes, a binary file-like or an iterable of
        bytes; streamed, never read whole) and return the object's key
        (server-generated when ``key`` is empty).

        ``compress`` (older name: ``compression``) overrides the usecase's
        compression; pass ``precompressed="zstd"`` for contents that are
        already zstd-compressed. Inputs whose size is known and at least the
        multipart threshold take a faster path: incompressible ones (judged
        from samples) one request carrying a zstd frame of raw blocks, the
        others a parallel multipart upload of 2 MiB zstd frames compressed
        on worker threads (aborted on any failure). Below the threshold,
        compressible inputs of known size from 4 MiB up go in one request of
        such frames; everything else in one streamed request, as the official
        client sends it. A failed upload never leaves a partial object.
        Seekable inputs of at least ``resumable_threshold_bytes`` (this put's,
        else the usecase's, which yields to the multipart path) go through a
        resumable upload that survives dropped connections and 5xx answers
        (``client/_resumable.py``); ``"none"`` turns that off.
        """
        if compression is not None:
            if compress is not None:
                raise ValueError("Cannot pass both `compress` and `compression`")
            compress = compression
        if compress is not None and precompressed is not None:
            raise ValueError("Cannot pass both `compress` and `precompressed`")
        _check_compression("compress", compress, ("zstd", "none"))
        _check_compression("precompressed", precompressed, ("zstd",))
        _check_threshold("resumable_threshold_bytes", resumable_threshold_bytes, allow_none=True)
        _check_threshold("multipart_threshold", multipart_threshold, allow_none=True)
        if isinstance(cast(object, contents), str):
            raise TypeError("put() needs bytes or a binary stream, not str; encode it first")

        encoding = precompressed or compress or self._usecase._compression
        do_compress = precompressed is None and encoding == "zstd"
        headers = self._metadata_headers(
            encoding, content_type, metadata, expiration_policy, origin, filename
        )
        key = key or None
        threshold = (
            self._multipart_threshold if multipart_threshold is None else multipart_threshold
        )
        size = known_size(contents) if threshold != "none" else None

        with measure_storage_operation(self._metrics_backend, "put", self._usecase.name) as metrics:
            big = size is not None and threshold != "none" and size >= threshold
            resumable = _resumable_size(contents, self._usecase, resumable_threshold_bytes, big)
            if resumable is not None:  # client/_resumable.py
                threads = 1
                if do_compress and resumable >= _THREADED_COMPRESS_MIN:
                    threads = min(self._multipart_workers, os.cpu_count() or 1)
                result_key, source_size, stored_size = put_resumable(
                    self,
                    contents,
                    key,
                    headers,
                    compress=do_compress,
                    threads=threads,
                    spool_dir=self._spool_dir,
                )
            elif big and do_compress and is_incompressible(contents, cast(int, size)):
                result_key, source_size, stored_size = self._put_raw_frame(
                    contents, cast(int, size), key, headers
                )
            elif big:
                from django_objectstore.client._parallel import parallel_put

                result_key, source_size, stored_size = parallel_put(
                    self,
                    contents,
                    key=key,
                    headers=headers,
                    compress=do_compress,
                    part_size=self._multipart_part_size,
                    workers=self._multipart_workers,
                    source_size=cast(int, size),
                )
            else:
                threads = 1
                if do_compress and size is not None and size >= _THREADED_COMPRESS_MIN:
                    threads = min(self._multipart_workers, os.cpu_count() or 1)
                result_key, source_size, stored_size = self._put_single(
                    contents, key, headers, do_compress, threads
                )
            if precompressed is None:
                metrics.record_uncompressed_size(source_size)
            if encoding != "none":
                metrics.record_compressed_size(stored_size, encoding)
        return result_key

    def _put_single(
        self,
        contents: Body,
        key: str | None,
        headers: dict[str, str],
        compress: bool,
        threads: int = 1,
    ) -> tuple[str, int, int]:
        """One request. With ``threads`` > 1 (compressible inputs of a few MiB
        or more) the body is 2 MiB frames compressed on that many threads, as
        in parallel puts; otherwise the official client's single stream."""
        counter = _Counter()
        body: Any
        if compress and threads > 1:
            from django_objectstore.client._parallel import frame_chunks

            body = frame_chunks(contents, threads, counter)
        elif isinstance(contents, bytes | bytearray | memoryview):
            size = memoryview(contents).nbytes
            counter.source = size
            if not compress:
                body = contents  # sent as is, with a Content-Length
            elif size <= BLOCK_SIZE:
                # Small payloads: compressed in one go (same frame bytes as the
                # stream) and sent with a Content-Length, saving a round of
                # chunk framing and a send.
                body = compress_small(contents)
            else:
                body = body_chunks(contents, compress=True, counter=counter)
            if not isinstance(body, Iterator):
                counter.stored = len(body)
        else:
            body = body_chunks(contents, compress=compress, counter=counter)
        source_errors: list[BaseException] = []
        if isinstance(body, Iterator):
            body = _noting_errors(body, source_errors)
        try:
            response = self._request(
                "PUT" if key else "POST", self._path(key), headers=headers, body=body
            )
        except ObjectstoreConnectionError:
            if source_errors:
                # The source failed (urllib3 reports it as a lost connection):
                # raise the source's own error; the server stored nothing.
                raise source_errors[0] from None
            raise
        finally:
            if isinstance(body, Iterator):
                body.close()  # type: ignore[attr-defined]  # stops compression threads
        raise_for_status(response)
        return str(read_json(response)["key"]), counter.source, counter.stored

    def _put_raw_frame(
        self, contents: Body, size: int, key: str | None, headers: dict[str, str]
    ) -> tuple[str, int, int]:
        """One request whose body is ``contents`` in a zstd frame of raw
        blocks, with a Content-Length (see ``_rawframe``)."""
        counter = _Counter()
        headers = {**headers, "Content-Length": str(frame_size(size))}
        body = raw_frame_chunks(contents, size, counter)
        try:
            response = self._request(
                "PUT" if key else "POST", self._path(key), headers=headers, body=body
            )
        finally:
            body.close()
        raise_for_status(response)
        return str(read_json(response)["key"]), counter.source, counter.stored

    def _initiate(self, key: str | None, headers: dict[str, str]) -> MultipartUpload:
        headers = {**headers, "Content-Length": "0"}
        with measure_storage_operation(
            self._metrics_backend, "multipart.initiate", self._usecase.name
        ):
            response = self._request(
                "PUT" if key else "POST", self._multipart_path(None, key, None), headers=headers
            )
            raise_for_status(response)
            data = read_json(response)
        return MultipartUpload(self, str(data["key"]), str(data["upload_id"]))

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
        with measure_storage_operation(self._metrics_backend, "get", self._usecase.name):
            response = self._request(
                "GET", self._path(key), headers=self._request_headers(), preload=False
            )
            if response.status == 404:
                response.drain_conn()
                response.release_conn()
                return None
            if response.status >= 400:
                try:
                    raise_for_status(response)
                finally:
                    response.release_conn()
        metadata = Metadata.from_headers(response.headers)
        payload: IO[bytes] = cast(IO[bytes], ResponseStream(response))
        accepted = accept_encoding is not None and (
            "*" in accept_encoding or metadata.compression in accept_encoding
        )
        if metadata.compression and decompress and not accepted:
            if metadata.compression != "zstd":
                payload.close()
                raise NotImplementedError(
                    f"cannot decompress {metadata.compression!r} payloads, only zstd; "
                    "pass decompress=False to read the stored bytes"
                )
            metadata.compression = None
            stored_size = response.length_remaining
            if stored_size is None:
                stored_size = metadata.size
            raw = False
            if stored_size is None or stored_size >= _READ_AHEAD_MIN:
                # Big bodies: socket reads run in a helper thread while this
                # one decompresses (not worth a thread for small ones).
                ahead = ReadAhead(cast(ResponseStream, payload))
                raw = ahead.raw  # incompressible data: decoding is a copy
                payload = cast(IO[bytes], ahead)
            threads = min(os.cpu_count() or 1, _DECODE_THREADS)
            if (
                threads > 1
                and not raw
                and (stored_size is None or stored_size >= _PARALLEL_DECODE_MIN)
            ):
                # Objects made of many frames that record their size (our
                # large puts) are decompressed on several threads.
                payload = cast(IO[bytes], FrameDecoder(payload, threads))
            else:
                # A fresh context per payload: payloads may be read interleaved.
                payload = zstandard.ZstdDecompressor().stream_reader(
                    payload, read_size=BLOCK_SIZE, read_across_frames=True
                )
        return GetResponse(metadata, payload)

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
        if start < 0:
            if end is not None:
                raise ValueError("a suffix range (negative start) takes no end")
            spec = f"bytes={start}"
        elif end is None:
            spec = f"bytes={start}-"
        elif end < start:
            raise ValueError(f"range end {end} is before start {start}")
        else:
            spec = f"bytes={start}-{end}"
        headers = self._request_headers()
        headers["Range"] = spec
        with measure_storage_operation(self._metrics_backend, "get", self._usecase.name):
            response = self._request("GET", self._path(key), headers=headers, preload=False)
            if response.status == 404:
                response.drain_conn()
                response.release_conn()
                return None
            if response.status == 416:
                response.drain_conn()
                response.release_conn()
                total = _total_from_content_range(response.headers.get("content-range"))
                empty = cast(IO[bytes], ResponseStream(response, limit=0))
                if total is None:
                    total = 0
                return RangeResponse(
                    Metadata.from_headers(response.headers), empty, total, total - 1, total
                )
            if response.status >= 400:
                try:
                    raise_for_status(response)
                finally:
                    response.release_conn()
        metadata = Metadata.from_headers(response.headers)
        if response.status == 206:
            first, last, total = _parse_content_range(response.headers.get("content-range"))
            return RangeResponse(
                metadata, cast(IO[bytes], ResponseStream(response)), first, last, total
            )
        # The server ignored the Range header: cut the range out of the full body.
        total = metadata.size
        stream = cast(IO[bytes], ResponseStream(response))
        if start < 0:
            if total is None:
                stream.close()
                raise RequestError(
                    "the server ignored the Range header and did not report the size, so a "
                    "suffix range cannot be served",
                    response.status,
                    None,
                )
            start = max(total + start, 0)
        skip_bytes(stream, start)
        last = end if end is not None else (total - 1 if total is not None else -1)
        if total is not None:
            last = min(last, total - 1)
        limit = None if last < 0 and total is None else max(last - start + 1, 0)
        return RangeResponse(
            metadata, cast(IO[bytes], ResponseStream(response, limit=limit)), start, last, total
        )

    def head(self, key: str) -> Metadata | None:
        """The object's metadata, or ``None`` if it does not exist (counts
        as an access for time-to-idle objects)."""
        with measure_storage_operation(self._metrics_backend, "head", self._usecase.name):
            response = self._request("HEAD", self._path(key), headers=self._request_headers())
            if response.status == 404:
                return None
            raise_for_status(response)
            return Metadata.from_headers(response.headers)

    def delete(self, key: str) -> None:
        """Delete the object (succeeds whether or not it existed, if the
        server says so; raises ``RequestError`` on an error status)."""
        with measure_storage_operation(self._metrics_backend, "delete", self._usecase.name):
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
        if sum(target is not None for target in (at, from_creation, from_now)) != 1:
            raise ValueError("Supply exactly one of at, from_creation, or from_now")
        extension: dict[str, str]
        if at is not None:
            if at.utcoffset() is None:
                raise ValueError("at must be a timezone-aware datetime")
            extension = {"at": at.astimezone(UTC).isoformat()}
        else:
            delta = from_creation if from_creation is not None else from_now
            assert delta is not None
            if delta < timedelta(0):
                raise ValueError("Expiry extension duration must not be negative")
            extension = {
                "after": format_timedelta(delta),
                "from": "creation" if from_creation is not None else "now",
            }
        import json

        headers = self._request_headers()
        headers["Content-Type"] = "application/json"
        body = json.dumps({"extend_expiry": extension}).encode()
        with measure_storage_operation(self._metrics_backend, "extend_expiry", self._usecase.name):
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
        _check_compression("compression", compression, ("zstd", "none"))
        headers = self._metadata_headers(
            compression or self._usecase._compression,
            content_type,
            metadata,
            expiration_policy,
            origin,
            filename,
        )
        return self._initiate(key or None, headers)

    def resume_multipart_upload(self, key: str, upload_id: str) -> MultipartUpload:
        """A handle for an existing upload (no request is made)."""
        return MultipartUpload(self, key, upload_id)


def _resumable_size(
    contents: Body, usecase: Usecase, per_put: int | Literal["none"] | None, multipart: bool
) -> int | None:
    """The input's size when the put goes through a resumable upload: a
    seekable input at or above the resumable threshold (per put, else the
    usecase's). A usecase-level threshold yields to a parallel multipart put
    (faster; see the README); an explicit per-put one does not."""
    threshold = usecase._resumable_threshold_bytes if per_put is None else per_put
    if threshold == "none" or (multipart and per_put is None):
        return None
    size = known_size(contents)
    return size if size is not None and size >= threshold else None


def _noting_errors(chunks: Iterator[Any], errors: list[BaseException]) -> Iterator[Any]:
    """``chunks``, remembering an error raised while producing them."""
    try:
        yield from chunks
    except BaseException as exc:
        errors.append(exc)
        raise


def _parse_content_range(value: str | None) -> tuple[int, int, int]:
    """``bytes 0-4/22`` -> (0, 4, 22)."""
    try:
        unit, _, rest = (value or "").partition(" ")
        span, _, total = rest.partition("/")
        first, _, last = span.partition("-")
        if unit.lower() != "bytes":
            raise ValueError(unit)
        return int(first), int(last), int(total)
    except ValueError:
        raise RequestError(
            f"the server answered a range request with an unreadable Content-Range {value!r}",
            206,
            None,
        ) from None


def _total_from_content_range(value: str | None) -> int | None:
    """``bytes */22`` -> 22."""
    _, _, total = (value or "").partition("/")
    return int(total) if total.isdigit() else None
