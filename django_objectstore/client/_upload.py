"""How ``Session.put`` sends an object: the choice of strategy, the
fallback when the server has no multipart, and the two single-request
strategies (the parallel multipart one is ``_parallel``).

* Known size at or above the threshold, incompressible (judged from
  samples): one request carrying a zstd frame of raw blocks (``_rawframe``).
* Known size at or above the threshold, otherwise: a parallel multipart
  upload of 2 MiB zstd frames compressed on worker threads. If the server
  answers 501 (no multipart in its backend), the usecase is remembered as
  such for the client's lifetime and the input goes as below.
* Otherwise, compressible inputs of known size from 4 MiB up: one request of
  such frames; everything else one streamed request, as the official client
  sends it.
* Before all of these: seekable inputs at or above the put's own
  ``resumable_threshold_bytes``, or the usecase's when the multipart path
  does not take them (also after its 501), go through a resumable upload
  (``_resumable_put``).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import IO, Final, Literal, cast

from django_objectstore.client._io import (
    BLOCK_SIZE,
    Body,
    Buffer,
    Counter,
    known_size,
    plain_chunks,
    read_json,
)
from django_objectstore.client._parallel import parallel_put
from django_objectstore.client._rawframe import frame_size, is_incompressible, raw_frame_chunks
from django_objectstore.client._resumable_put import put_resumable, resumable_size
from django_objectstore.client._session import RequestBody, SessionCore
from django_objectstore.client._zstd import compress_small, frame_chunks, stream_chunks
from django_objectstore.client.errors import (
    ObjectstoreConnectionError,
    RequestError,
    raise_for_status,
)

__all__ = ["put_object"]

# Known-size inputs at least this big are compressed on several threads
# even in one request (two frames or more).
_THREADED_COMPRESS_MIN: Final = 4 * BLOCK_SIZE


def put_object(
    session: SessionCore,
    contents: Body,
    *,
    key: str | None,
    headers: dict[str, str],
    compress: bool,
    resumable_threshold: int | Literal["none"] | None = None,
) -> tuple[str, int, int]:
    """Store ``contents`` with the metadata ``headers``, compressing them
    with zstd if ``compress``; return (key, source bytes, stored bytes).
    ``resumable_threshold`` is the put's own ``resumable_threshold_bytes``."""
    options = session._uploads
    threshold = options.threshold
    size = known_size(contents) if threshold != "none" else None
    threads = 1
    if compress and size is not None and size >= _THREADED_COMPRESS_MIN:
        threads = options.compress_threads()
    big = size is not None and threshold != "none" and size >= threshold
    multipart = big and session._usecase.name not in options.no_multipart
    done = _put_resumable(session, contents, key, headers, compress, resumable_threshold, multipart)
    if done is not None:
        return done
    if size is not None and big:
        if compress and is_incompressible(contents, size):
            return _put_raw_frame(session, contents, size, key, headers)
        if multipart:
            done = _put_multipart(session, contents, size, key, headers, compress)
            if done is None:  # 501: resumable where the usecase asks for it
                done = _put_resumable(
                    session, contents, key, headers, compress, resumable_threshold, False
                )
            if done is not None:
                return done
    return _put_single(session, contents, key, headers, compress, threads)


def _put_resumable(
    session: SessionCore,
    contents: Body,
    key: str | None,
    headers: dict[str, str],
    compress: bool,
    per_put: int | Literal["none"] | None,
    multipart: bool,
) -> tuple[str, int, int] | None:
    """A resumable upload (``_resumable_put``) when the input qualifies (see
    ``resumable_size``), else ``None``."""
    verbatim = not compress  # sent as it is (precompressed, or no compression)
    size = resumable_size(session, contents, per_put, multipart, verbatim)
    if size is None:
        return None
    threads = 1
    if compress and size >= _THREADED_COMPRESS_MIN:
        threads = session._uploads.compress_threads()
    return put_resumable(session, contents, key, headers, compress=compress, threads=threads)


def _put_multipart(
    session: SessionCore,
    contents: Body,
    size: int,
    key: str | None,
    headers: dict[str, str],
    compress: bool,
) -> tuple[str, int, int] | None:
    """A parallel multipart put, or ``None`` if the server answered 501 (its
    backend has no multipart; the real server's S3-compatible and BigTable
    backends do that at initiation, before any byte is read). The usecase is
    then remembered as without multipart, anything initiated has been
    aborted (``parallel_put`` aborts on any failure) and ``contents`` is
    back where it started, so the caller can send it another way."""
    # Inputs of known size are bytes or seekable files (see ``known_size``):
    # a 501 that comes after bytes were read is undone by seeking back.
    start = None if isinstance(contents, bytes | bytearray | memoryview) else _tell(contents)
    try:
        return parallel_put(
            session,
            contents,
            key=key,
            headers=headers,
            compress=compress,
            options=session._uploads,
            source_size=size,
        )
    except RequestError as exc:
        if exc.status != 501:
            raise
        session._uploads.no_multipart.add(session._usecase.name)
        if start is not None:
            try:
                cast(IO[bytes], contents).seek(start)
            except (OSError, ValueError) as seek_exc:
                raise RequestError(
                    "the server refused the multipart upload (501) after part of the input "
                    f"was read, and the input cannot seek back to {start} to send it "
                    f"another way ({seek_exc}); put it again (this client no longer tries "
                    "multipart for this usecase)",
                    exc.status,
                    exc.response,
                ) from exc
        return None


def _tell(contents: Body) -> int:
    return cast(IO[bytes], contents).tell()  # a seekable file (see ``known_size``)


def _put_single(
    session: SessionCore,
    contents: Body,
    key: str | None,
    headers: dict[str, str],
    compress: bool,
    threads: int,
) -> tuple[str, int, int]:
    """One request. With ``threads`` > 1 (compressible inputs of a few MiB
    or more) the body is 2 MiB frames compressed on that many threads, as
    in parallel puts; otherwise the official client's single stream."""
    counter = Counter()
    body: RequestBody
    chunks: Generator[Buffer] | None = None
    if compress and threads > 1:
        chunks = frame_chunks(contents, threads, counter)
    elif isinstance(contents, bytes | bytearray | memoryview):
        size = memoryview(contents).nbytes
        counter.source = size
        if not compress:
            body = contents  # sent as is, with a Content-Length
            counter.stored = size
        elif size <= BLOCK_SIZE:
            # Small payloads: compressed in one go (same frame bytes as the
            # stream) and sent with a Content-Length, saving a round of
            # chunk framing and a send.
            body = compress_small(contents)
            counter.stored = len(body)
        else:
            chunks = stream_chunks(contents, counter)
    elif compress:
        chunks = stream_chunks(contents, counter)
    else:
        chunks = plain_chunks(contents, counter)
    source_errors: list[BaseException] = []
    if chunks is not None:
        body = chunks = _noting_errors(chunks, source_errors)
    try:
        response = session._request(
            "PUT" if key else "POST", session._path(key), headers=headers, body=body
        )
    except ObjectstoreConnectionError:
        if source_errors:
            # The source failed (urllib3 reports it as a lost connection):
            # raise the source's own error; the server stored nothing.
            raise source_errors[0] from None
        raise
    finally:
        if chunks is not None:
            chunks.close()  # also closes the source's generators: stops compression threads
    raise_for_status(response)
    return str(read_json(response)["key"]), counter.source, counter.stored


def _put_raw_frame(
    session: SessionCore, contents: Body, size: int, key: str | None, headers: dict[str, str]
) -> tuple[str, int, int]:
    """One request whose body is ``contents`` in a zstd frame of raw
    blocks, with a Content-Length (see ``_rawframe``)."""
    counter = Counter()
    headers = {**headers, "Content-Length": str(frame_size(size))}
    body = raw_frame_chunks(contents, size, counter)
    try:
        response = session._request(
            "PUT" if key else "POST", session._path(key), headers=headers, body=body
        )
    finally:
        body.close()
    raise_for_status(response)
    return str(read_json(response)["key"]), counter.source, counter.stored


def _noting_errors(chunks: Iterator[Buffer], errors: list[BaseException]) -> Generator[Buffer]:
    """``chunks``, remembering an error raised while producing them."""
    try:
        yield from chunks
    except BaseException as exc:
        errors.append(exc)
        raise
