"""What every request of a session needs: the usecase and its defaults, the
upload options it shares with its client, auth and trace headers, request
paths, metadata headers and the one seam through which requests go.

``SessionCore`` is the base of the public ``Session``; the upload, download
and multipart modules work on it, so none of them imports the public classes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.util import find_spec
from typing import IO, Final, Literal, TypeAlias, cast

import urllib3
from urllib3._base_connection import _TYPE_BODY
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.response import HTTPResponse

from django_objectstore import _protocol
from django_objectstore.client._io import Buffer, translate_transport_error
from django_objectstore.client._resumable import ResumableUpload, create_upload
from django_objectstore.client.auth import SecretKey, TokenProvider
from django_objectstore.client.metadata import (
    HEADER_EXPIRATION,
    HEADER_FILENAME,
    HEADER_META_PREFIX,
    HEADER_ORIGIN,
    Compression,
    ExpirationPolicy,
    format_expiration,
)
from django_objectstore.client.metrics import MetricsBackend
from django_objectstore.client.scope import Scope

__all__ = [
    "DEFAULT_MULTIPART_PART_SIZE",
    "DEFAULT_MULTIPART_THRESHOLD",
    "DEFAULT_MULTIPART_WORKERS",
    "MIN_MULTIPART_PART_SIZE",
    "RequestBody",
    "SessionCore",
    "Threshold",
    "UploadOptions",
    "Usecase",
    "check_client_options",
    "check_compression",
    "check_threshold",
]

#: Inputs of at least this many bytes (when their size is known) take the
#: large-input paths of ``Session.put``. Below it, one streamed request.
DEFAULT_MULTIPART_THRESHOLD: Final = 64 * 1024 * 1024
#: Size of each part of a parallel multipart upload, in stored (compressed)
#: bytes; every part but the last has exactly this size.
DEFAULT_MULTIPART_PART_SIZE: Final = 8 * 1024 * 1024
#: Parts uploaded at the same time; also caps the compression threads of a put.
DEFAULT_MULTIPART_WORKERS: Final = 3
#: Smallest ``multipart_part_size`` accepted: production backends (S3/GCS
#: multipart) reject non-last parts below 5 MiB when the upload completes.
MIN_MULTIPART_PART_SIZE: Final = 5 * 1024 * 1024

#: A size threshold, or ``"none"`` for never.
Threshold: TypeAlias = int | Literal["none"]
#: What a request may carry: bytes, a file, or an iterable of blocks.
RequestBody: TypeAlias = Buffer | IO[bytes] | Iterable[Buffer]


def check_threshold(name: str, value: object, *, allow_none: bool) -> None:
    """``ValueError`` unless ``value`` is a non-negative int or ``"none"``
    (or ``None``, with ``allow_none``)."""
    if value is None and allow_none:
        return
    if value == "none":
        return
    if type(value) is not int or value < 0:
        raise ValueError(f'{name} must be a non-negative integer or "none", got {value!r}')


def check_client_options(propagate_traces: bool, retries: object, token: object) -> None:
    """The checks ``Client`` makes of these arguments, with what to do."""
    if propagate_traces and find_spec("sentry_sdk") is None:
        raise ImportError(
            "propagate_traces=True needs the 'sentry-sdk' package, which is not "
            "installed; install it (pip install sentry-sdk) or pass "
            "propagate_traces=False"
        )
    if retries is not None and (type(retries) is not int or retries < 0):
        raise ValueError(f"retries must be a non-negative integer or None, got {retries!r}")
    if token is not None and not isinstance(token, SecretKey | str):
        raise TypeError(f"token must be a SecretKey or a token string, got {type(token).__name__}")


def check_compression(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise ValueError(f"Invalid compression: {value!r} (for {name}, use one of {allowed})")


class Usecase:
    """A workload in Objectstore with its defaults: compression
    (``"zstd"`` or ``"none"``) and expiration policy.

    Names are 3-64 characters from ``A-Z a-z 0-9 _ -``.
    ``resumable_threshold_bytes``: inputs of at least that many bytes use
    resumable uploads where the server offers them (see the README).
    """

    def __init__(
        self,
        name: str,
        compression: Compression = "zstd",
        expiration_policy: ExpirationPolicy | None = None,
        resumable_threshold_bytes: int | Literal["none"] = 256 * 1024 * 1024,
    ) -> None:
        if not isinstance(name, str):
            raise TypeError(f"usecase name must be a str, got {type(name).__name__}")
        problem = _protocol.invalid_usecase(name)
        if problem is not None:
            raise ValueError(problem)
        check_compression("Usecase", compression, ("zstd", "none"))
        check_threshold("resumable_threshold_bytes", resumable_threshold_bytes, allow_none=False)
        self._name = name
        self._compression: Compression = compression
        self._expiration_policy = expiration_policy
        self._resumable_threshold_bytes = resumable_threshold_bytes

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"Usecase({self._name!r}, compression={self._compression!r})"


@dataclass(frozen=True)
class UploadOptions:
    """How a client's sessions upload large inputs (see ``Client``), and what
    they learnt about the server: one object per client, shared by its
    sessions (and threads)."""

    #: Known-size inputs of at least this many bytes take the large-input paths.
    threshold: Threshold = DEFAULT_MULTIPART_THRESHOLD
    #: Stored bytes per multipart part.
    part_size: int = DEFAULT_MULTIPART_PART_SIZE
    #: Parts in flight, and most compression threads of one put.
    workers: int = DEFAULT_MULTIPART_WORKERS
    #: Usecases whose server answered 501 to a multipart request (its backend
    #: has no multipart): later puts skip the probe, for the client's lifetime.
    #: Only ever grows; set operations are atomic, so no lock.
    no_multipart: set[str] = field(default_factory=set, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Named as the Client's arguments, which these are.
        check_threshold("multipart_threshold", self.threshold, allow_none=False)
        if type(self.part_size) is not int or self.part_size < MIN_MULTIPART_PART_SIZE:
            raise ValueError(
                f"multipart_part_size must be an integer of at least {MIN_MULTIPART_PART_SIZE} "
                f"(5 MiB, the smallest part production backends accept), "
                f"got {self.part_size!r}"
            )
        if type(self.workers) is not int or self.workers < 1:
            raise ValueError(f"multipart_workers must be a positive integer, got {self.workers!r}")

    def compress_threads(self) -> int:
        """Threads compressing one put: the workers, at most one per CPU."""
        return max(1, min(self.workers, os.cpu_count() or 1))


class SessionCore:
    """The state and plumbing of a ``Session`` (see there)."""

    def __init__(
        self,
        pool: HTTPConnectionPool,
        base_path: str,
        metrics_backend: MetricsBackend,
        propagate_traces: bool,
        usecase: Usecase,
        scope: Scope,
        token: TokenProvider | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        *,
        uploads: UploadOptions | None = None,
    ) -> None:
        self._pool = pool
        self._base_path = base_path.rstrip("/")
        self._metrics_backend = metrics_backend
        self._propagate_traces = propagate_traces
        self._usecase = usecase
        self._scope = scope
        self._token = token
        self._spool_dir = spool_dir
        self._uploads = uploads if uploads is not None else UploadOptions()
        self._base_headers = dict(pool.headers)
        self._prefix = f"{usecase.name}/{scope}/"

    def __repr__(self) -> str:
        return f"Session(usecase={self._usecase.name!r}, scope={str(self._scope)!r})"

    def _request_headers(self) -> dict[str, str]:
        headers = self._base_headers.copy()
        if self._propagate_traces:
            # Imported here: sentry-sdk is optional (Client checked it is
            # installed) and takes a quarter of a second to import.
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
        resource = _protocol.OBJECTS_RESOURCE
        return _protocol.encode_path(f"{self._base_path}/v1/{resource}/{self._prefix}{key or ''}")

    def _multipart_path(self, action: str | None, key: str | None, query: str | None) -> str:
        resource = _protocol.MULTIPART_RESOURCE + (f":{action}" if action else "")
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
        body: RequestBody | None = None,
        preload: bool = True,
    ) -> HTTPResponse:
        """Send one request (no redirects, no decoding; the connection goes
        back to the pool once the response is read unless ``preload`` is
        false). Transport failures raise ``ObjectstoreConnectionError``."""
        try:
            response = self._pool.urlopen(
                method,
                url,
                # urllib3 sends any bytes-like object (sendall); its annotation
                # only names bytes.
                body=cast(_TYPE_BODY, body),
                headers=headers,
                preload_content=preload,
                decode_content=False,
                release_conn=preload,
                redirect=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise translate_transport_error(exc, f"{method} {url}") from exc
        return cast(HTTPResponse, response)  # what a connection pool returns

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

    # -- resumable uploads (client/_resumable.py) -------------------------

    def _create_upload(
        self,
        object_length: int,
        key: str | None = None,
        compression: Compression | None = None,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        expiration_policy: ExpirationPolicy | None = None,
        origin: str | None = None,
        filename: str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> ResumableUpload | None:
        """Open a resumable upload of ``object_length`` stored bytes (send
        them compressed as ``compression`` says; the usecase's compression
        does not apply); ``None`` when the server does not offer them.
        ``headers``: metadata headers already made (``Session.put``)."""
        if headers is None:
            check_compression("compression", compression, ("zstd", "none"))
            headers = self._metadata_headers(
                compression, content_type, metadata, expiration_policy, origin, filename
            )
        return create_upload(self, object_length, key or None, headers)

    def _resume_upload(self, key: str, token: str) -> ResumableUpload:
        """A handle for a session created earlier (its token)."""
        return ResumableUpload(self, key, token)
