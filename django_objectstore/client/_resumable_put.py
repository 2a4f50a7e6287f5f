"""``Session.put`` through a resumable upload (protocol section 20), as the
official client 0.2.10 does it.

A seekable input of known size is compressed first (when the usecase
compresses) into a temporary spool file in ``spool_dir``; a session is
created with the stored length (``Session._create_upload``) and the bytes are
sent from the server's offset. After a transient failure (408, 429, 502,
503, 504, a read timeout, a broken connection, or a write the server
answered without taking any byte) it waits ``2 * 2**n`` seconds plus up to a
second of jitter, asks the server how many bytes it durably holds and goes
on from there, so nothing the server holds is sent twice. Three tries in a
row without progress cancel the session (the server stores nothing) and
raise ``RequestError("upload failed")``. A server that does not create the
session (501, or any failed create, as the official client treats it) gets
one plain request of the prepared bytes. Memory stays bounded: the spool is
on disk and bytes are sent in 1 MiB reads.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from os import PathLike
from typing import IO, Any, Literal, cast

import urllib3

from django_objectstore import _protocol_resumable as _wire
from django_objectstore.client import _resumable
from django_objectstore.client._io import (
    Body,
    Counter,
    known_size,
    plain_chunks,
    read_json,
)
from django_objectstore.client._resumable import (
    ResumableUpload,
    UploadComplete,
    UploadIncomplete,
    UploadOffsetMismatch,
    UploadProgress,
    read_exactly,
)
from django_objectstore.client._session import SessionCore
from django_objectstore.client._zstd import frame_chunks, stream_chunks
from django_objectstore.client.errors import RequestError, raise_for_status

__all__ = [
    "DEFAULT_RESUMABLE_THRESHOLD",
    "MAX_TRIES",
    "UploadFailed",
    "put_resumable",
    "resumable_put",
    "resumable_size",
    "spooled",
]

#: Tries in a row without progress before the upload is cancelled.
MAX_TRIES = 3
#: ``Usecase(resumable_threshold_bytes=...)``'s default, as in 0.2.10.
DEFAULT_RESUMABLE_THRESHOLD = 256 * 1024 * 1024


class UploadFailed(RequestError):
    """Raised as ``RequestError("upload failed")`` (the official message)."""


class _NoProgress(Exception):
    """A chunk write was answered without the server taking any byte."""


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, RequestError):
        return exc.status in _wire.RESUMABLE_TRANSIENT_STATUSES
    return isinstance(
        exc,
        _NoProgress | urllib3.exceptions.ReadTimeoutError | urllib3.exceptions.ProtocolError,
    )


def resumable_size(
    session: SessionCore,
    contents: Body,
    per_put: int | Literal["none"] | None,
    multipart: bool,
    verbatim: bool,
) -> int | None:
    """The input's size when ``Session.put`` goes through a resumable upload:
    a seekable input at or above the resumable threshold (this put's, else
    the usecase's). The usecase's threshold yields to a parallel multipart put
    (``multipart``: the size already chose it; faster, see the README); an
    explicit per-put one does not. Inputs sent as they are (``verbatim``)
    under the usecase's default threshold use ``_resumable.RESUMABLE_THRESHOLD``
    (the same value unless changed)."""
    threshold = per_put
    if threshold is None:
        if multipart:
            return None
        threshold = session._usecase._resumable_threshold_bytes
        if verbatim and threshold == DEFAULT_RESUMABLE_THRESHOLD:
            threshold = _resumable.RESUMABLE_THRESHOLD
    if threshold == "none":
        return None
    size = known_size(contents)
    return size if size is not None and size >= threshold else None


@contextlib.contextmanager
def spooled(
    contents: Body,
    compress: bool,
    threads: int,
    spool_dir: str | PathLike[str] | None,
) -> Iterator[tuple[IO[bytes], int, int, int] | None]:
    """The bytes to store as ``(file, start, stored size, source size)``:
    ``contents`` itself when it is sent as it is (bytes, or a seekable
    stream), else a temporary file of the compressed bytes. ``None`` when no
    spool file can be made (nothing read from ``contents`` yet)."""
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


def _slice(file: IO[bytes], position: int, count: int) -> Iterator[bytes]:
    """``count`` bytes of ``file`` from ``position``, in 1 MiB reads."""
    file.seek(position)
    yield from read_exactly(file, count)


def _send_all(
    handle: ResumableUpload,
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
        result: UploadProgress
        try:
            if ask:
                result = handle.progress()
            else:
                file.seek(start + offset)
                try:
                    result = handle.put(offset, (file, total - offset))
                except UploadOffsetMismatch as mismatch:
                    result = UploadIncomplete(mismatch.offset)
                if isinstance(result, UploadIncomplete) and result.offset == offset:
                    raise _NoProgress
        except (RequestError, urllib3.exceptions.HTTPError, _NoProgress) as exc:
            if not _transient(exc) or failures >= MAX_TRIES - 1:
                raise
            sleep(2 * 2**failures + jitter())
            failures += 1
            ask = True
            continue
        if isinstance(result, UploadComplete):
            return handle.key
        if not offset <= result.offset <= total:
            raise ValueError(
                f"the server reported an offset of {result.offset} bytes, outside "
                f"{offset}..{total}; the upload cannot go on"
            )
        if result.offset > offset:
            failures = 0
        offset = result.offset
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
    resumable session; the key, or ``None`` when no session was created
    (nothing stored; send the bytes another way). ``sleep`` and ``jitter``
    are the waiting between tries (parameters for tests)."""
    try:
        handle = session._create_upload(stored_size, key=key, headers=headers)
    except (RequestError, urllib3.exceptions.HTTPError, ValueError, KeyError):
        handle = None  # as the official client: any failed create means a plain put
    if handle is None:
        return None
    try:
        return _send_all(handle, file, start, stored_size, sleep, jitter)
    except (RequestError, urllib3.exceptions.HTTPError, _NoProgress, OSError, ValueError) as exc:
        with contextlib.suppress(RequestError, urllib3.exceptions.HTTPError):  # else it expires
            handle.cancel()
        status = exc.status if isinstance(exc, RequestError) else None
        text = exc.response if isinstance(exc, RequestError) else str(exc)
        raise UploadFailed("upload failed", status, text) from exc


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
