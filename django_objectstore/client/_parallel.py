"""Parallel multipart upload behind ``Session.put`` for large inputs.

The calling thread reads the source part by part and, when compressing,
compresses each part with zstd's own threads (outside the GIL: both cores
busy) into one frame per part; a pool of worker threads uploads the parts
meanwhile. At most ``workers`` parts are in flight, so memory stays near
``workers x part_size`` whatever the object size. On any failure, including
KeyboardInterrupt, the upload is aborted before the error propagates: no
partial object ever becomes visible.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

import zstandard

from django_objectstore.client._io import ZSTD_LEVEL, Body, Buffer, iter_source
from django_objectstore.client.multipart import CompletePart, MultipartUpload

if TYPE_CHECKING:
    from django_objectstore.client.client import Session

__all__ = ["parallel_put"]

# Smallest zstd job worth a thread.
_MIN_JOB = 512 * 1024


class _Totals:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.source = 0
        self.stored = 0


def _send_part(
    upload: MultipartUpload, number: int, box: list[Buffer], source_size: int, totals: _Totals
) -> CompletePart:
    payload = box.pop()  # the box is the only other reference: freed once sent
    size = memoryview(payload).nbytes
    part = upload.put_part(payload, part_number=number, content_length=size)
    with totals.lock:
        totals.source += source_size
        totals.stored += size
    return part


def _compressor(part_size: int, threads: int) -> zstandard.ZstdCompressor:
    """Level 3, with ``threads`` zstd threads splitting each part into jobs
    (two per thread: bigger jobs measured faster than four per thread, 1.61x
    vs 1.45x over the official client on 256 MiB of text, and a 1 GiB put
    still peaks about 51 MiB above an idle process)."""
    if threads < 2:
        return zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    job = max(_MIN_JOB, part_size // (2 * threads))
    params = zstandard.ZstdCompressionParameters.from_level(
        ZSTD_LEVEL, threads=threads, job_size=job
    )
    return zstandard.ZstdCompressor(compression_params=params)


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
    compressor = _compressor(part_size, min(workers, os.cpu_count() or 1)) if compress else None
    slots = threading.BoundedSemaphore(workers)
    futures: list[Future[CompletePart]] = []
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="objectstore-put") as pool:
            failed = False
            for number, block in enumerate(
                iter_source(contents, part_size, reuse=compressor is not None), start=1
            ):
                slots.acquire()
                if any(f.done() and f.exception() is not None for f in futures):
                    slots.release()
                    failed = True
                    break
                source_size = memoryview(block).nbytes
                # This thread compresses (zstd's threads, outside the GIL) while
                # the pool uploads the parts already made.
                payload = compressor.compress(block) if compressor is not None else block
                del block
                future = pool.submit(_send_part, upload, number, [payload], source_size, totals)
                del payload
                future.add_done_callback(lambda _f: slots.release())
                futures.append(future)
            if not futures and not failed:
                # Empty source: one empty part makes an empty object.
                empty = compressor.compress(b"") if compressor is not None else b""
                futures.append(pool.submit(_send_part, upload, 1, [empty], 0, totals))
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
