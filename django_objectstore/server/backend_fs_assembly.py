"""Background pre-assembly of multipart uploads for the filesystem backend.

Completing an upload means copying all its parts into one new file and
syncing it, while the client waits. So a single worker thread does most of
that ahead of time: after each part is stored it appends parts 1, 2, 3, ...
that are present, in order, to a temporary object file (the upload's
"prefix"), stopping at the first gap. At completion, when the request lists
the prefix's parts first and they are unchanged, only the remaining parts
are appended before the rename; otherwise the prefix is dropped and the
backend copies all parts as usual. Measured in ``benchmarks/FINDINGS.md``
(completion of a 90 MiB upload: 120-131 ms without, 11-12 ms with).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from django_objectstore.server.backend_fs_writer import FileWriter, copy_part, part_etag
from django_objectstore.server.model import Identity

__all__ = ["PrefixAssembler"]

logger = logging.getLogger("django_objectstore.server")


@dataclass
class _Prefix:
    """The background assembly of one multipart upload: a temporary file
    beside the final object holding the upload's header and then parts 1, 2,
    ... (``parts``: their numbers and etags, in order). ``lock`` is held
    while the worker appends or a completion or abort uses it; once
    ``closed`` (claimed by a completion, discarded, or failed) the worker
    leaves it alone."""

    header: bytes
    writer: FileWriter | None = None
    parts: list[tuple[int, str]] = field(default_factory=list)
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class PrefixAssembler:
    """Keeps one prefix per upload under ``uploads``; ``new_writer(ident,
    header)`` opens the temporary object file a prefix is built in."""

    def __init__(self, uploads: Path, new_writer: Callable[[Identity, bytes], FileWriter]) -> None:
        self._uploads = uploads
        self._new_writer = new_writer
        self._lock = threading.Lock()
        self._prefixes: dict[str, _Prefix] = {}
        self._pending: set[str] = set()
        self._executor: ThreadPoolExecutor | None = None
        #: Completions that reused parts already copied in the background.
        self.fast_completions = 0

    def notify(self, ident: Identity, upload_id: str) -> None:
        """A part of ``upload_id`` was stored: extend its prefix soon."""
        with self._lock:
            if upload_id in self._pending:
                return  # the queued run will see this part too
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="objectstore-assembler"
                )
            try:
                self._executor.submit(self._advance, ident, upload_id)
            except RuntimeError:  # interpreter shutting down: completion copies everything
                return
            self._pending.add(upload_id)

    def _advance(self, ident: Identity, upload_id: str) -> None:
        folder = self._uploads / upload_id
        with self._lock:
            self._pending.discard(upload_id)
            prefix = self._prefixes.get(upload_id)
            if prefix is None:
                # Checked under the lock: abort removes the folder before it
                # discards the prefix, so no prefix outlives its upload.
                try:
                    header = (folder / "meta").read_bytes()
                except FileNotFoundError:
                    return
                prefix = self._prefixes[upload_id] = _Prefix(header)
            if prefix.closed or not prefix.lock.acquire(blocking=False):
                return
        try:
            if prefix.writer is None:
                prefix.writer = self._new_writer(ident, prefix.header)
            else:
                prefix.writer.resume()
            try:
                number = len(prefix.parts) + 1
                while not prefix.closed:
                    try:
                        etag = copy_part(prefix.writer, folder / f"{number}.part")
                    except FileNotFoundError:
                        break  # not uploaded yet (or the upload is gone)
                    prefix.parts.append((number, etag))
                    number += 1
            finally:
                prefix.writer.pause()  # syncs, so the completion's fsync has little left
        except Exception:
            logger.warning(
                "background assembly of upload %s failed; its completion will copy all parts",
                upload_id,
                exc_info=True,
            )
            prefix.closed = True
            if prefix.writer is not None:
                prefix.writer.abort()
                prefix.writer = None
        finally:
            prefix.lock.release()

    def _claim(self, folder: Path) -> _Prefix | None:
        """Stop background work on this upload and take its prefix (waiting
        for a copy in progress); release ``prefix.lock`` when done."""
        with self._lock:
            prefix = self._prefixes.get(folder.name)
            if prefix is None:
                if (folder / "meta").exists():
                    # Keeps the worker from starting a prefix that nobody would use.
                    self._prefixes[folder.name] = _Prefix(b"", closed=True)
                return None
            prefix.closed = True
        prefix.lock.acquire()
        return prefix

    @staticmethod
    def _finish(prefix: _Prefix, folder: Path, part_numbers: list[int], header: bytes) -> bool:
        """Finish the object from the prefix when it is a prefix of the
        requested parts (same numbers, unchanged etags, same header); False
        (prefix dropped, nothing stored) otherwise."""
        writer, prefix.writer = prefix.writer, None
        if writer is None:
            return False
        done = len(prefix.parts)
        usable = (
            done > 0
            and prefix.header == header
            and part_numbers[:done] == [number for number, _ in prefix.parts]
            and all(part_etag(folder / f"{n}.part") == etag for n, etag in prefix.parts)
        )
        if not usable:
            writer.abort()
            return False
        try:
            writer.resume()
            for number in part_numbers[done:]:
                copy_part(writer, folder / f"{number}.part")
        except BaseException:
            writer.abort()
            raise
        writer.commit()
        return True

    def complete(self, folder: Path, part_numbers: list[int], header: bytes) -> bool:
        """Store the object from the upload's prefix if it can be used; False
        when the caller must copy every part itself."""
        prefix = self._claim(folder)
        if prefix is None:
            return False
        try:
            fast = self._finish(prefix, folder, part_numbers, header)
        except OSError:
            fast = False  # e.g. its temporary file was removed: copy everything
        finally:
            prefix.lock.release()
        if fast:
            with self._lock:
                self.fast_completions += 1
        return fast

    def discard(self, upload_id: str) -> None:
        """Drop the prefix of an aborted or completed upload."""
        with self._lock:
            prefix = self._prefixes.pop(upload_id, None)
            if prefix is None:
                return
            prefix.closed = True
        with prefix.lock:
            if prefix.writer is not None:
                prefix.writer.abort()
                prefix.writer = None

    def wait(self) -> None:
        """Block until the worker has handled every part stored so far."""
        with self._lock:
            executor = self._executor
        if executor is not None:
            with contextlib.suppress(RuntimeError, CancelledError):  # closed meanwhile
                executor.submit(lambda: None).result()

    def close(self) -> None:
        """Stop the worker and remove the temporary files of unfinished
        prefixes. Stays usable (a later part starts a new worker and its
        upload's prefix over)."""
        with self._lock:
            executor, self._executor = self._executor, None
            prefixes = list(self._prefixes.values())
            self._prefixes.clear()
            self._pending.clear()
            for prefix in prefixes:
                prefix.closed = True
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        for prefix in prefixes:
            with prefix.lock:
                if prefix.writer is not None:
                    prefix.writer.abort()
                    prefix.writer = None
