"""Resumable uploads (protocol section 20, official client 0.2.10).

``resumable_put`` stores a seekable input of known size: compressed first
(when the usecase compresses) into a temporary spool file in ``spool_dir``,
then a session is created with the stored length and the bytes are sent
from the server's offset. After a transient failure (408, 429, 502, 503,
504, a read timeout, a broken connection, or a write the server answered
without taking any bytes) it waits ``2 * 2**n`` seconds plus up to one
second of jitter, asks the server how many bytes it durably holds and goes
on from there, so nothing the server holds is sent twice. Three tries in a
row without progress cancel the session (the server stores nothing) and
raise ``RequestError("upload failed")``. A server that declines the create
(501, or any other failure to create, as the official client) gets one plain
request of the prepared bytes instead. Memory stays bounded: the spool is on
disk and bytes are sent in 1 MiB reads.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from os import PathLike
from typing import IO, Any, Literal, cast
from urllib.parse import quote

import urllib3

from django_objectstore import _protocol_resumable as _wire
from django_objectstore.client._io import (
    BLOCK_SIZE,
    Body,
    Counter,
    known_size,
    plain_chunks,
    read_json,
)
from django_objectstore.client._session import SessionCore
from django_objectstore.client._zstd import frame_chunks, stream_chunks
from django_objectstore.client.errors import RequestError, raise_for_status

__all__ = [
    "MAX_TRIES",
    "UploadFailed",
    "put_resumable",
    "resumable_put",
    "resumable_size",
    "spooled",
]

#: Tries in a row without progress before the upload is cancelled.
MAX_TRIES = 3
#: Inputs from this size up are compressed on several threads for the spool.
_THREADED_MIN = 4 * 1024 * 1024


class UploadFailed(RequestError):
    """Raised as ``RequestError("upload failed")`` (the official message)."""


class _NoProgress(Exception):
    """A chunk write was answered without the server taking any byte."""


@dataclass(frozen=True)
class _Progress:
    held: int
    complete: bool


class _Declined(Exception):
    """The server did not create a session: send one plain request instead."""


class _Status(Exception):
    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        super().__init__(response.status)
        self.status = response.status
        self.text = (response.data or b"").decode("utf-8", "replace")


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, _Status):
        return exc.status in _wire.RESUMABLE_TRANSIENT_STATUSES
    return isinstance(
        exc,
        _NoProgress | urllib3.exceptions.ReadTimeoutError | urllib3.exceptions.ProtocolError,
    )


@contextlib.contextmanager
def spooled(
    contents: Body,
    compress: bool,
    threads: int,
    spool_dir: str | PathLike[str] | None,
) -> Iterator[tuple[IO[bytes], int, int, int] | None]:
    """The bytes to store as ``(file, start, stored size, source size)``:
    ``contents`` itself when it is an uncompressed seekable stream, else a
    temporary file (compressed when ``compress``). ``None`` when no spool
    file can be made (nothing read from ``contents`` yet)."""
    if not compress and isinstance(contents, bytes):
        yield io.BytesIO(contents), 0, len(contents), len(contents)  # shares the bytes
        return
    if not compress and not isinstance(contents, bytearray | memoryview):
        stream = cast(IO[bytes], contents)
        start = stream.tell()
        end = stream.seek(0, os.SEEK_END)
        stream.seek(start)
        yield stream, start, end - start, end - start
        return
    try:
        spool = tempfile.TemporaryFile(dir=spool_dir)  # noqa: SIM115 - closed below
    except OSError:
        yield None
        return
    with spool:
        counter = Counter()
        chunks: Iterator[Any]
        if compress and threads > 1:
            chunks = frame_chunks(contents, threads, counter)
        elif compress:
            chunks = stream_chunks(contents, counter)
        else:
            chunks = plain_chunks(contents, counter)
        for chunk in chunks:
            spool.write(chunk)
        spool.seek(0)
        yield spool, 0, counter.stored, counter.source


class _Upload:
    """Requests of one session. urllib3 only retries failed connects (the
    pool's setting): this module decides what to resend."""

    def __init__(self, session: SessionCore, key: str | None, headers: dict[str, str]) -> None:
        self.session = session
        self.key = key
        self.headers = headers
        self.token = ""

    def _send(self, method: str, url: str, headers: dict[str, str], body: Any = None) -> Any:
        session = self.session
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
            # The error behind the exhausted retry is what the caller judges.
            reason = exc.reason
            raise (reason if isinstance(reason, Exception) else exc) from exc

    def _session_url(self) -> str:
        assert self.key is not None
        return f"{self.session._path(self.key)}?session={quote(self.token, safe='')}"

    def create(self, length: int) -> None:
        headers = {
            **self.headers,
            "Upload-Length": str(length),
            "Content-Length": "0",
        }
        query = f"{_wire.QUERY_UPLOAD_TYPE}={_wire.UPLOAD_TYPE_RESUMABLE}"
        try:
            response = self._send(
                "PUT" if self.key else "POST", f"{self.session._path(self.key)}?{query}", headers
            )
        except urllib3.exceptions.HTTPError as exc:
            raise _Declined from exc
        if not 200 <= response.status < 300:
            raise _Declined
        try:
            answer = json.loads(response.data)
            self.key = str(answer["key"])
            self.token = str(answer["session"])
        except (ValueError, KeyError, TypeError):
            raise _Declined from None

    @staticmethod
    def _parse(response: Any) -> _Progress:
        if response.status == 409:
            return _Progress(int(response.headers[_wire.HEADER_UPLOAD_OFFSET]), False)
        if response.status >= 300:
            raise _Status(response)
        if response.status == 201:
            return _Progress(-1, True)
        return _Progress(int(response.headers[_wire.HEADER_UPLOAD_OFFSET]), False)

    def progress(self) -> _Progress:
        headers = {_wire.HEADER_UPLOAD_OFFSET: _wire.UPLOAD_OFFSET_QUERY}
        return self._parse(self._send("PUT", self._session_url(), headers))

    def put(self, file: IO[bytes], start: int, offset: int, total: int) -> _Progress:
        count = total - offset
        headers = {
            _wire.HEADER_UPLOAD_OFFSET: str(offset),
            "Content-Length": str(count),
        }
        return self._parse(
            self._send("PUT", self._session_url(), headers, _slice(file, start + offset, count))
        )

    def cancel(self) -> None:
        self._send("DELETE", self._session_url(), {})


def _slice(file: IO[bytes], position: int, count: int) -> Iterator[bytes]:
    """``count`` bytes of ``file`` from ``position``, in 1 MiB reads."""
    file.seek(position)
    while count > 0:
        block = file.read(min(BLOCK_SIZE, count))
        if not block:
            raise OSError(f"the upload source ended {count} bytes early")
        count -= len(block)
        yield block


def _send_all(
    upload: _Upload,
    file: IO[bytes],
    start: int,
    total: int,
    sleep: Callable[[float], None],
    jitter: Callable[[], float],
) -> str:
    offset = 0
    failures = 0
    ask = False
    while True:
        try:
            if ask:
                result = upload.progress()
            else:
                result = upload.put(file, start, offset, total)
                if not result.complete and result.held == offset:
                    raise _NoProgress
        except Exception as exc:
            if not _transient(exc) or failures >= MAX_TRIES - 1:
                raise
            sleep(2 * 2**failures + jitter())
            failures += 1
            ask = True
            continue
        if result.complete:
            assert upload.key is not None
            return upload.key
        if not offset <= result.held <= total:
            raise ValueError(
                f"the server reported an offset of {result.held} bytes, outside "
                f"{offset}..{total}; the upload cannot go on"
            )
        if result.held > offset:
            failures = 0
        offset = result.held
        ask = False


def resumable_put(
    session: SessionCore,
    file: IO[bytes],
    start: int,
    stored_size: int,
    key: str | None,
    headers: dict[str, str],
    *,
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[], float] = random.random,
) -> str | None:
    """Store ``stored_size`` bytes of ``file`` from ``start`` through a
    resumable session; the key, or ``None`` when the server declined the
    session (nothing stored; send the bytes another way). ``sleep`` and
    ``jitter`` are the waiting between tries (parameters for tests)."""
    upload = _Upload(session, key, headers)
    try:
        upload.create(stored_size)
    except _Declined:
        return None
    try:
        return _send_all(upload, file, start, stored_size, sleep, jitter)
    except Exception as exc:
        with contextlib.suppress(urllib3.exceptions.HTTPError):  # else it expires
            upload.cancel()
        status = exc.status if isinstance(exc, _Status) else None
        text = exc.text if isinstance(exc, _Status) else str(exc)
        raise UploadFailed("upload failed", status, text) from exc


def resumable_size(
    session: SessionCore, contents: Body, per_put: int | Literal["none"] | None, multipart: bool
) -> int | None:
    """The input's size when ``Session.put`` goes through a resumable upload:
    a seekable input at or above the resumable threshold (this put's, else
    the usecase's). The usecase's threshold yields to a parallel multipart put
    (``multipart``: the size already chose it; faster, see the README); an
    explicit per-put threshold does not."""
    threshold = session._usecase._resumable_threshold_bytes if per_put is None else per_put
    if threshold == "none" or (multipart and per_put is None):
        return None
    size = known_size(contents)
    return size if size is not None and size >= threshold else None


def put_resumable(
    session: SessionCore,
    contents: Body,
    key: str | None,
    headers: dict[str, str],
    *,
    compress: bool,
    threads: int,
) -> tuple[str, int, int] | None:
    """``Session.put`` of a seekable input at or above the resumable
    threshold: ``(key, source bytes, stored bytes)``. Falls back to one plain
    request (of the spooled bytes, not compressed again) when the server
    declines the session; ``None`` (nothing read from ``contents``) when no
    spool file can be made in the client's ``spool_dir``."""
    with spooled(contents, compress, threads, session._spool_dir) as prepared:
        if prepared is None:
            return None
        file, start, stored, source = prepared
        result = resumable_put(session, file, start, stored, key, headers)
        if result is None:
            plain = {**headers, "Content-Length": str(stored)}
            response = session._request(
                "PUT" if key else "POST",
                session._path(key),
                headers=plain,
                body=_slice(file, start, stored),
            )
            raise_for_status(response)
            result = str(read_json(response)["key"])
        return result, source, stored
