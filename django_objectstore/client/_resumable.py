"""Resumable upload sessions (protocol section 20) under the names the
official client gives them: ``ResumableUpload`` (one session: ``put`` a
chunk, ask for ``progress``, ``cancel``), the progress values
``UploadIncomplete(offset)`` / ``UploadComplete()`` and the errors
``UploadOffsetMismatch`` (409, with the server's ``offset``),
``ResumableUploadUnavailable`` (404/410) and ``ChunkTooSmall``.
``Session._create_upload`` and ``Session._resume_upload`` make the handles;
``Session.put`` uses them through ``_resumable_put``.

A handle sends exactly what it is given: compress the whole payload first
and pass the compressed bytes. Its requests let urllib3 retry a failed
connect only (nothing was sent); what to resend is the caller's choice.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

import urllib3

from django_objectstore import _protocol_resumable as _wire
from django_objectstore.client._io import BLOCK_SIZE
from django_objectstore.client.errors import RequestError, raise_for_status
from django_objectstore.client.metrics import measure_storage_operation
from django_objectstore.client.tracing import Span, SpanAttributeValue, storage_span

if TYPE_CHECKING:  # SessionCore makes handles (see its _create_upload)
    from django_objectstore.client._session import SessionCore

__all__ = [
    "RESUMABLE_THRESHOLD",
    "ChunkTooSmall",
    "ResumableUpload",
    "ResumableUploadUnavailable",
    "UploadComplete",
    "UploadIncomplete",
    "UploadOffsetMismatch",
    "UploadProgress",
    "create_upload",
]

#: The default threshold for inputs sent as they are (precompressed or not
#: compressed), used while a usecase keeps the default
#: ``resumable_threshold_bytes`` (the official development client's name).
RESUMABLE_THRESHOLD = 256 * 1024 * 1024


class ResumableUploadUnavailable(RequestError):
    """The upload session expired, was cancelled, or could not be found."""


class UploadOffsetMismatch(RequestError):
    """The server refused a chunk at that offset; ``offset`` is what it holds."""

    def __init__(self, offset: int, status: int, response: str) -> None:
        super().__init__(f"Upload offset mismatch (server holds {offset} bytes)", status, response)
        self.offset = offset


class ChunkTooSmall(ValueError):
    """A chunk that is not the last is shorter than the upload granularity."""


@dataclass(frozen=True)
class UploadIncomplete:
    """The upload expects more bytes, from ``offset`` on."""

    offset: int


@dataclass(frozen=True)
class UploadComplete:
    """The upload is complete: the object is stored."""


UploadProgress = UploadIncomplete | UploadComplete


def _text(response: Any) -> str:
    return bytes(response.data or b"").decode("utf-8", "replace")


def _progress(response: Any) -> UploadProgress:
    status = response.status
    if status == 409:
        offset = int(response.headers[_wire.HEADER_UPLOAD_OFFSET])
        raise UploadOffsetMismatch(offset, status, _text(response))
    if status in (404, 410):
        raise_for_status(response, error_type=ResumableUploadUnavailable)
    raise_for_status(response)
    if status == 201:
        return UploadComplete()
    return UploadIncomplete(int(response.headers[_wire.HEADER_UPLOAD_OFFSET]))


class _Measures:
    def __init__(self, span: Span, metrics: Any) -> None:
        self.span = span
        self.metrics = metrics

    def record_size(self, value: int) -> None:
        self.metrics.record_size(value)


@contextlib.contextmanager
def _measured(
    session: SessionCore, operation: str, **attributes: SpanAttributeValue | None
) -> Iterator[_Measures]:
    """A tracing span and the storage metrics of one request."""
    with (
        storage_span(operation, session._usecase, session._scope, **attributes) as span,
        measure_storage_operation(
            session._metrics_backend, operation, session._usecase.name
        ) as metrics,
    ):
        yield _Measures(span, metrics)


def send(
    session: SessionCore, method: str, url: str, headers: dict[str, str], body: Any = None
) -> Any:
    """One request of the protocol: urllib3 retries failed connects as the
    pool says, nothing else; the error behind an exhausted retry is raised."""
    pool_retries = session._pool.retries
    connects = pool_retries.connect if isinstance(pool_retries, urllib3.Retry) else 0
    retries = urllib3.Retry(total=None, connect=connects, read=0, redirect=0, status=0, other=0)
    try:
        return session._pool.urlopen(
            method,
            url,
            body=body,
            headers={**session._request_headers(), **headers},
            retries=retries,
            redirect=False,
            preload_content=True,
            decode_content=False,
        )
    except urllib3.exceptions.MaxRetryError as exc:
        reason = exc.reason
        raise (reason if isinstance(reason, Exception) else exc) from exc


def read_exactly(stream: IO[bytes], count: int) -> Iterator[bytes]:
    """``count`` bytes of ``stream`` from where it is, in 1 MiB reads."""
    while count > 0:
        block = stream.read(min(BLOCK_SIZE, count))
        if not block:
            raise OSError(f"the upload source ended {count} bytes early")
        count -= len(block)
        yield block


class ResumableUpload:
    """A handle bound to one resumable upload session."""

    def __init__(
        self,
        session: SessionCore,
        key: str,
        token: str,
        total_length: int | None = None,
        granularity: int | None = None,
    ) -> None:
        self._session = session
        self._key = key
        self._token = token
        self._total_length = total_length
        self._granularity = granularity

    def __repr__(self) -> str:  # the token stays out: it names the session
        return f"ResumableUpload(key={self._key!r})"

    @property
    def key(self) -> str:
        return self._key

    @property
    def token(self) -> str:
        return self._token

    @property
    def granularity(self) -> int | None:
        """The unit in which the server persists chunks that are not the
        last, if it said so at creation."""
        return self._granularity

    def _url(self) -> str:
        return f"{self._session._path(self._key)}?{_wire.QUERY_SESSION}={quote(self._token)}"

    def _measured(self, operation: str, **attributes: int) -> Any:
        """The span and metrics of one request, as the official client names them."""
        session = self._session
        return _measured(session, f"resumable.{operation}", key=self._key, **attributes)

    def progress(self) -> UploadProgress:
        """The server's offset (``ResumableUploadUnavailable`` when the
        session is gone)."""
        headers = {_wire.HEADER_UPLOAD_OFFSET: _wire.UPLOAD_OFFSET_QUERY}
        with self._measured("progress"):
            return _progress(send(self._session, "PUT", self._url(), headers))

    def put(self, offset: int, contents: bytes | tuple[IO[bytes], int]) -> UploadProgress:
        """Send ``contents`` (bytes, or a stream and the exact number of
        bytes to read from where it is) as the bytes from ``offset``.
        Raises ``UploadOffsetMismatch`` when the server holds another
        offset, ``ResumableUploadUnavailable`` when the session is gone and
        ``ChunkTooSmall`` for a chunk that is not the last and is shorter
        than the granularity."""
        body: Any
        if isinstance(contents, bytes):
            body, length = contents, len(contents)
        else:
            stream, length = contents
            body = read_exactly(stream, length)
        if offset < 0 or length < 0:
            raise ValueError("the chunk's offset and length must not be negative")
        total, unit = self._total_length, self._granularity
        if unit is not None and total is not None and 0 < length < unit and offset + length < total:
            raise ChunkTooSmall(
                f"a chunk of {length} bytes that is not the last is smaller than the "
                f"upload granularity of {unit} bytes"
            )
        headers = {_wire.HEADER_UPLOAD_OFFSET: str(offset), "Content-Length": str(length)}
        with self._measured("put", offset=offset, size=length) as metrics:
            progress = _progress(send(self._session, "PUT", self._url(), headers, body))
            metrics.record_size(length)
            return progress

    def cancel(self) -> None:
        """Cancel the session; the server discards what it holds."""
        with self._measured("cancel"):
            response = send(self._session, "DELETE", self._url(), {})
        gone = response.status in (404, 410)
        raise_for_status(response, error_type=ResumableUploadUnavailable if gone else RequestError)


def create_upload(
    session: SessionCore, object_length: int, key: str | None, headers: dict[str, str]
) -> ResumableUpload | None:
    """Open a session for ``object_length`` stored bytes with the metadata
    ``headers``; ``None`` when the server does not offer resumable uploads
    (501)."""
    if object_length < 0:
        raise ValueError("the object length must not be negative")
    query = f"{_wire.QUERY_UPLOAD_TYPE}={_wire.UPLOAD_TYPE_RESUMABLE}"
    headers = {**headers, "Upload-Length": str(object_length), "Content-Length": "0"}
    with _measured(session, "resumable.create", key=key) as metrics:
        response = send(session, "PUT" if key else "POST", f"{session._path(key)}?{query}", headers)
        if response.status == 501:
            return None
        raise_for_status(response)
        answer = json.loads(response.data)
        metrics.span.set_attribute("objectstore.key", str(answer["key"]))
    granularity = answer.get("granularity")
    return ResumableUpload(
        session,
        str(answer["key"]),
        str(answer["session"]),
        object_length,
        granularity if isinstance(granularity, int) else None,
    )
