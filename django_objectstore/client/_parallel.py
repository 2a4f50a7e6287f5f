"""Parallel multipart upload behind ``Session.put`` for large inputs.

The calling thread reads the source part by part; worker threads compress
each part (zstd releases the GIL) and upload it. At most ``workers`` parts
are in flight, so memory stays near ``workers x part_size`` whatever the
object size. On any failure, including KeyboardInterrupt, the upload is
aborted before the error propagates: no partial object ever becomes visible.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

import zstandard

from django_objectstore.client._io import ZSTD_LEVEL, Body, Buffer, PageBuffer, iter_source
from django_objectstore.client.multipart import CompletePart, MultipartUpload

if TYPE_CHECKING:
    from django_objectstore.client.client import Session

__all__ = ["parallel_put"]


class _Totals:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.source = 0
        self.stored = 0


def _parts(contents: Body, part_size: int) -> Iterator[Buffer | PageBuffer]:
    """The source in parts: views of byte strings, page buffers filled from
    files, or whatever an iterable or a ``read``-only stream yields."""
    readinto = getattr(contents, "readinto", None)
    if isinstance(contents, bytes | bytearray | memoryview) or not callable(readinto):
        yield from iter_source(contents, part_size)
        return
    while True:
        part = PageBuffer(part_size)
        if not part.fill_from(readinto):
            part.close()
            return
        yield part


def _send_part(
    upload: MultipartUpload,
    number: int,
    box: list[Buffer | PageBuffer],
    compress: bool,
    totals: _Totals,
) -> CompletePart:
    raw = box.pop()  # the box held the only other reference
    payload: PageBuffer | None = None
    try:
        with raw.view() if isinstance(raw, PageBuffer) else memoryview(raw) as source:
            source_size = source.nbytes
            if compress:
                # Compressed straight into a page buffer, with the frame's
                # content size recorded (readers decode such frames in parallel).
                payload = PageBuffer(source_size + (source_size >> 7) + 131072)
                sink: Any = payload
                writer: Any = zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(
                    sink, size=source_size, closefd=False
                )
                writer.write(source)
                writer.flush(zstandard.FLUSH_FRAME)
        if compress and isinstance(raw, PageBuffer):
            raw.close()
        upload_from = payload if payload is not None else raw
        with (
            upload_from.view() if isinstance(upload_from, PageBuffer) else memoryview(upload_from)
        ) as body:
            size = body.nbytes
            part = upload.put_part(body, part_number=number, content_length=size)
    finally:
        if isinstance(raw, PageBuffer):
            raw.close()
        if payload is not None:
            payload.close()
    with totals.lock:
        totals.source += source_size
        totals.stored += size
    return part


def parallel_put(
    session: Session,
    contents: Body,
    *,
    key: str | None,
    headers: dict[str, str],
    compress: bool,
    part_size: int,
    workers: int,
) -> tuple[str, int, int]:
    """Upload ``contents`` as a multipart upload; return (key, source bytes,
    stored bytes). ``headers`` are the metadata headers of the object."""
    upload = session._initiate(key, headers)
    totals = _Totals()
    slots = threading.BoundedSemaphore(workers)
    futures: list[Future[CompletePart]] = []
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="objectstore-put") as pool:
            failed = False
            for number, block in enumerate(_parts(contents, part_size), start=1):
                slots.acquire()
                if any(f.done() and f.exception() is not None for f in futures):
                    slots.release()
                    failed = True
                    break
                future = pool.submit(_send_part, upload, number, [block], compress, totals)
                del block
                future.add_done_callback(lambda _f: slots.release())
                futures.append(future)
            if not futures and not failed:
                # Empty source: one empty part makes an empty object.
                futures.append(pool.submit(_send_part, upload, 1, [b""], compress, totals))
            wait(futures, return_when=FIRST_EXCEPTION)
            for future in futures:
                if future.done() and future.exception() is not None:
                    for other in futures:
                        other.cancel()
                    raise future.exception()  # type: ignore[misc]
            parts = [future.result() for future in futures]
        result_key = upload.complete(parts)
    except BaseException as exc:
        try:
            upload.abort()
        except Exception as abort_exc:  # noqa: BLE001 - the first error is the one to raise
            exc.add_note(f"aborting multipart upload {upload.upload_id!r} also failed: {abort_exc}")
        raise
    return result_key, totals.source, totals.stored
