"""Parallel multipart upload behind ``Session.put`` for large inputs.

The calling thread reads the source in ``FRAME_SIZE`` blocks; when
compressing, worker threads turn each block into one zstd frame (zstd
releases the GIL: both cores busy), and the frames, in order, make one
compressed stream that is cut into parts of exactly ``part_size`` bytes (the
last may be shorter) while a pool of threads uploads the parts already cut.
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

import os
import threading
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Final

import zstandard

from django_objectstore.client._io import ZSTD_LEVEL, Body, Buffer, _Counter, iter_source
from django_objectstore.client.multipart import CompletePart, MultipartUpload

if TYPE_CHECKING:
    from django_objectstore.client.client import Session

__all__ = [
    "FRAME_SIZE",
    "MAX_PARTS",
    "compressed_frames",
    "effective_part_size",
    "frame_chunks",
    "parallel_put",
]

#: Most parts production backends accept in one upload.
MAX_PARTS: Final = 10_000

#: Input bytes per zstd frame. Each frame is compressed whole by one of the
#: worker threads (zstd releases the GIL) and records its size, so readers
#: can decompress frames in parallel too. Measured on 256 MiB of text, two
#: threads: compressing with 2 MiB frames took 0.80-0.92 s (4 MiB: 0.84 s;
#: one frame by zstd's own threads: 0.95-0.98 s and 30 MiB more memory);
#: decompressing 2 MiB frames on two threads 0.20 s against 0.29 s for one
#: frame. Stored size +0.4% against a single frame (ratio 0.3514 vs 0.3499).
FRAME_SIZE: Final = 2 * 1024 * 1024


class _Totals:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stored = 0


def _counted(blocks: Iterable[Buffer], counter: _Counter) -> Generator[Buffer]:
    """``blocks``, added to ``counter.source`` as they are read."""
    for block in blocks:
        counter.source += memoryview(block).nbytes
        yield block


def effective_part_size(part_size: int, source_size: int) -> int:
    """``part_size``, grown if needed so that ``source_size`` bytes (plus
    zstd's worst-case overhead) fit in ``MAX_PARTS`` parts."""
    bound = source_size + source_size // 1024 + 1024
    return max(part_size, -(-bound // MAX_PARTS))


_local = threading.local()


def _compress_frame(block: Buffer) -> bytes:
    """One zstd frame of ``block`` (level 3, content size in the header),
    with this thread's own compression context."""
    compressor: zstandard.ZstdCompressor | None = getattr(_local, "compressor", None)
    if compressor is None:
        compressor = _local.compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    return compressor.compress(block)


def compressed_frames(blocks: Iterable[Buffer], threads: int) -> Iterator[bytes]:
    """One zstd frame per block of ``blocks``, in order, compressed by
    ``threads`` threads (every thread busy, one block read ahead). Nothing
    for no blocks."""
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="objectstore-zstd")
    frames: deque[Future[bytes]] = deque()
    try:
        source = iter(blocks)
        exhausted = False
        while True:
            while not exhausted and len(frames) <= threads:
                block = next(source, None)
                if block is None:
                    exhausted = True
                else:
                    frames.append(pool.submit(_compress_frame, block))
            if not frames:
                return
            yield frames.popleft().result()
    finally:
        # Also when the consumer stops early: queued blocks are dropped.
        pool.shutdown(wait=True, cancel_futures=True)


def frame_chunks(contents: Body, threads: int, counter: _Counter) -> Generator[bytes]:
    """``contents`` as ``FRAME_SIZE`` frames compressed by ``threads`` threads
    (see ``compressed_frames``); an empty source gives the frame of no bytes.
    ``counter`` counts the bytes read and produced."""
    sent = False
    for frame in compressed_frames(_counted(iter_source(contents, FRAME_SIZE), counter), threads):
        counter.stored += len(frame)
        sent = True
        yield frame
    if not sent:
        frame = _compress_frame(b"")
        counter.stored += len(frame)
        yield frame


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
    upload: MultipartUpload, number: int, box: list[Buffer], totals: _Totals
) -> CompletePart:
    payload = box.pop()  # the box is the only other reference: freed once sent
    size = memoryview(payload).nbytes
    part = upload.put_part(payload, part_number=number, content_length=size)
    with totals.lock:
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
    source_size: int,
) -> tuple[str, int, int]:
    """Upload ``contents`` (``source_size`` bytes) as a multipart upload;
    return (key, source bytes, stored bytes). ``headers`` are the metadata
    headers of the object."""
    part_size = effective_part_size(part_size, source_size)
    upload = session._initiate(key, headers)
    totals = _Totals()
    slots = threading.BoundedSemaphore(workers)
    futures: list[Future[CompletePart]] = []
    counter = _Counter()
    chunks: Generator[Buffer]
    if compress:
        threads = max(1, min(workers, os.cpu_count() or 1))
        chunks = frame_chunks(contents, threads, counter)
    else:
        chunks = _counted(iter_source(contents, part_size), counter)
    parts = _cut(chunks, part_size)
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="objectstore-put") as pool:
            for number, payload in enumerate(parts, start=1):
                slots.acquire()
                if any(f.done() and f.exception() is not None for f in futures):
                    slots.release()
                    break
                future = pool.submit(_send_part, upload, number, [payload], totals)
                del payload
                future.add_done_callback(lambda _f: slots.release())
                futures.append(future)
            else:
                if not futures:
                    # Empty source, uncompressed: one empty part makes an
                    # empty object (a compressed one always has a frame).
                    futures.append(pool.submit(_send_part, upload, 1, [b""], totals))
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
