"""Parallel multipart upload behind ``Session.put`` for large inputs.

The calling thread reads the source in ``FRAME_SIZE`` blocks; when
compressing, worker threads turn each block into one zstd frame (zstd
releases the GIL: both cores busy; see ``_zstd.frame_chunks``), and the
frames, in order, make one compressed stream that is cut into parts of
exactly ``part_size`` bytes (the last may be shorter) while a pool of
threads uploads the parts already cut.
Every part but the last has the same size whatever the compression ratio,
which is what production backends (S3/GCS multipart: at least 5 MiB per
non-last part, at most 10,000 parts) require. Every frame records its size,
so ``Session.get`` decompresses such objects on several threads too; any
zstd reader (the official client's included) reads them as one stream.

At most ``workers`` parts and ``threads + 1`` frames are in flight, so memory
stays near ``(workers + 1) x part_size + 2 x (threads + 1) x FRAME_SIZE``
whatever the object size.
On any failure, including KeyboardInterrupt, the upload is aborted before
the error propagates: no partial object ever becomes visible.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Final

from django_objectstore.client._io import Body, Buffer, Counter, counted, iter_source
from django_objectstore.client._session import SessionCore, UploadOptions
from django_objectstore.client._zstd import frame_chunks
from django_objectstore.client.multipart import CompletePart, MultipartUpload, initiate
from django_objectstore.client.tracing import current_span, spans_under

__all__ = ["MAX_PARTS", "effective_part_size", "parallel_put"]

#: Most parts production backends accept in one upload.
MAX_PARTS: Final = 10_000


class _Totals:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stored = 0


def effective_part_size(part_size: int, source_size: int) -> int:
    """``part_size``, grown if needed so that ``source_size`` bytes (plus
    zstd's worst-case overhead) fit in ``MAX_PARTS`` parts."""
    bound = source_size + source_size // 1024 + 1024
    return max(part_size, -(-bound // MAX_PARTS))


def _cut(chunks: Iterable[Buffer], part_size: int) -> Generator[Buffer]:
    """``chunks`` regrouped into parts of exactly ``part_size`` bytes (the
    last may be shorter). A chunk that is a whole part by itself passes
    uncopied; others are copied into the part being filled as they come, so
    nothing else accumulates."""
    part = bytearray(part_size)
    filled = 0
    for chunk in chunks:
        view = memoryview(chunk).cast("B")
        if not filled and view.nbytes == part_size:
            yield chunk
            continue
        while view:
            count = min(part_size - filled, view.nbytes)
            part[filled : filled + count] = view[:count]
            filled += count
            view = view[count:]
            if filled == part_size:
                yield part
                part = bytearray(part_size)
                filled = 0
    if filled:
        del part[filled:]
        yield part


def _send_part(
    upload: MultipartUpload, number: int, box: list[Buffer], totals: _Totals, span: object
) -> CompletePart:
    payload = box.pop()  # the box is the only other reference: freed once sent
    size = memoryview(payload).nbytes
    with spans_under(span):  # this worker thread's part span is a child of the put's
        part = upload.put_part(payload, part_number=number, content_length=size)
    with totals.lock:
        totals.stored += size
    return part


def parallel_put(
    session: SessionCore,
    contents: Body,
    *,
    key: str | None,
    headers: dict[str, str],
    compress: bool,
    options: UploadOptions,
    source_size: int,
) -> tuple[str, int, int]:
    """Upload ``contents`` (``source_size`` bytes) as a multipart upload;
    return (key, source bytes, stored bytes). ``headers`` are the metadata
    headers of the object."""
    part_size = effective_part_size(options.part_size, source_size)
    workers = options.workers
    upload = initiate(session, key, headers)
    span = current_span()
    totals = _Totals()
    slots = threading.BoundedSemaphore(workers)
    futures: list[Future[CompletePart]] = []
    counter = Counter()
    chunks: Generator[Buffer]
    if compress:
        chunks = frame_chunks(contents, options.compress_threads(), counter)
    else:
        chunks = counted(iter_source(contents, part_size), counter)
    parts = _cut(chunks, part_size)
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="objectstore-put") as pool:
            for number, payload in enumerate(parts, start=1):
                slots.acquire()
                if any(f.done() and f.exception() is not None for f in futures):
                    slots.release()
                    break
                future = pool.submit(_send_part, upload, number, [payload], totals, span)
                del payload
                future.add_done_callback(lambda _f: slots.release())
                futures.append(future)
            else:
                if not futures:
                    # Empty source, uncompressed: one empty part makes an
                    # empty object (a compressed one always has a frame).
                    futures.append(pool.submit(_send_part, upload, 1, [b""], totals, span))
            wait(futures, return_when=FIRST_EXCEPTION)
            for future in futures:
                if future.done() and future.exception() is not None:
                    for other in futures:
                        other.cancel()
                    raise future.exception()  # type: ignore[misc]
            completed = [future.result() for future in futures]
        result_key = upload.complete(completed)
    except BaseException as exc:
        try:
            upload.abort()
        except Exception as abort_exc:  # noqa: BLE001 - the first error is the one to raise
            exc.add_note(f"aborting multipart upload {upload.upload_id!r} also failed: {abort_exc}")
        raise
    finally:
        # When stopped early: the compression threads end now, not at GC.
        parts.close()
        chunks.close()
    return result_key, counter.source, totals.stored
