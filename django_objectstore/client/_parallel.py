"""Parallel multipart upload behind ``Session.put`` for large inputs.

The calling thread reads the source part by part; worker threads compress
each part (zstd releases the GIL) and upload it. At most ``workers`` parts
are in flight, so memory stays near ``workers x part_size`` whatever the
object size. On any failure, including KeyboardInterrupt, the upload is
aborted before the error propagates: no partial object ever becomes visible.
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

import zstandard

from django_objectstore.client._io import ZSTD_LEVEL, Body, Buffer, iter_source
from django_objectstore.client.multipart import CompletePart, MultipartUpload

if TYPE_CHECKING:
    from django_objectstore.client.client import Session

__all__ = ["parallel_put"]


class _Totals:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.source = 0
        self.stored = 0


def _send_part(
    upload: MultipartUpload,
    number: int,
    box: list[Buffer],
    compress: bool,
    local: threading.local,
    totals: _Totals,
) -> CompletePart:
    raw = box.pop()  # the box is the only other reference: freed once compressed
    source_size = memoryview(raw).nbytes
    if compress:
        compressor = getattr(local, "compressor", None)
        if compressor is None:
            compressor = local.compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        payload: Buffer = compressor.compress(raw)
        del raw
    else:
        payload = raw
    size = memoryview(payload).nbytes
    part = upload.put_part(payload, part_number=number, content_length=size)
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
    local = threading.local()
    slots = threading.BoundedSemaphore(workers)
    futures: list[Future[CompletePart]] = []
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="objectstore-put") as pool:
            failed = False
            for number, block in enumerate(iter_source(contents, part_size), start=1):
                slots.acquire()
                if any(f.done() and f.exception() is not None for f in futures):
                    slots.release()
                    failed = True
                    break
                future = pool.submit(_send_part, upload, number, [block], compress, local, totals)
                del block
                future.add_done_callback(lambda _f: slots.release())
                futures.append(future)
            if not futures and not failed:
                # Empty source: one empty part makes an empty object.
                futures.append(pool.submit(_send_part, upload, 1, [b""], compress, local, totals))
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
