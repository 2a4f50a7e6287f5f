"""Resumable upload sessions of the local server (section 20): where their
state and held bytes live, and the offset rules.

A session belongs to one object identity, declares its total length at
create and holds the bytes received so far. A chunk write appends from the
held offset; when the held bytes reach the declared length the object is
stored through the backend's ordinary writer (so it appears atomically, like
any put) and the session becomes a "completed" record that keeps answering
201 until it expires. Cancelled sessions keep a record too (answered 410).
Every session expires ``ttl`` after its creation: its bytes are discarded and
it answers 410 until the sweep removes the record (404 after that).

Two stores: ``MemorySessions`` (state in a dict, for the memory backend) and
``FilesystemSessions``, durable across restarts::

    <root>/resumable/<sha256 of the token>/session.json   identity, metadata, length, expiry
    <root>/resumable/<sha256 of the token>/state          offset, generation, status, boot id
    <root>/resumable/<sha256 of the token>/data           the held bytes

Only the token's hash is on disk. Every operation holds ``flock`` on
``state`` (several threads or server processes may share a folder). A chunk
write bumps the session's generation; a later chunk write (or a cancel)
bumps it again, and a writer whose generation is no longer current stops
writing (a stalled request cannot write over bytes sent after it). Bytes
that arrived but were not yet recorded (a dropped connection, a server
stopped mid-chunk, a request still sending) are adopted by the next request
(they are the object's bytes at those offsets) after an ``fdatasync`` as long as
the machine has not rebooted since (same kernel boot id): until then they
are in the page cache even if the process died. Recorded offsets are fsynced
before they are reported (unless the server runs with ``fsync=False``). A
progress request first waits (bounded) for chunk writes of its session still
running in this process, so that one broken off just before reports every
byte it received.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from django_objectstore.server.model import CHUNK, Backend, Identity, ObjectMeta, Writer

__all__ = [
    "DEFAULT_SESSION_TTL",
    "MemorySessions",
    "OffsetMismatch",
    "PastLength",
    "Progress",
    "SessionGone",
    "SessionHandle",
    "SessionRecord",
    "Sessions",
]

#: How long a session lives after its creation (GCS resumable sessions: one week).
DEFAULT_SESSION_TTL = timedelta(days=7)
#: How long a progress request waits for chunk writes of the same session
#: still running in this process (a broken-off one writing what it received).
WRITER_WAIT_SECONDS = 5.0


def _boot_id() -> str:
    """The kernel's boot id (bytes written before a process died are still
    readable while it is unchanged); a per-process id where unavailable."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as file:
            return file.read().strip()[:36]
    except OSError:
        return uuid.uuid4().hex


class SessionGone(Exception):
    """Unknown (404), or expired or cancelled (410)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class OffsetMismatch(Exception):
    """The chunk does not start where the held bytes end (409)."""

    def __init__(self, held: int) -> None:
        super().__init__(f"the server holds {held} bytes")
        self.held = held


class PastLength(Exception):
    """The chunk would run past the declared length (400)."""


class Superseded(Exception):
    """A later request on the same session took over while this one wrote."""


@dataclass(frozen=True)
class Progress:
    held: int
    complete: bool


@dataclass(frozen=True)
class SessionRecord:
    ident: Identity
    meta: ObjectMeta
    length: int
    expires: datetime


class SessionHandle(Protocol):
    """One session's mutable state, used while its lock is held."""

    offset: int
    gen: int
    status: str
    boot: str

    def size(self) -> int: ...
    def write_at(self, position: int, block: bytes | bytearray | memoryview) -> None: ...
    def truncate(self, size: int) -> None: ...
    def sync(self) -> None: ...
    def save(self, durable: bool) -> None: ...
    def read(self, start: int, stop: int) -> Iterator[bytes | memoryview]: ...
    def copy_into(self, writer: Writer, count: int) -> bool: ...
    def drop_data(self) -> None: ...


class Sessions:
    """The protocol rules, over a store's records and locked handles."""

    def __init__(self, backend: Backend, ttl: timedelta) -> None:
        self.backend = backend
        self.ttl = ttl
        self.boot = _boot_id()
        self._writers: dict[str, int] = {}  # digest -> chunk writes running here
        self._writers_done = threading.Condition()

    # -- store primitives (subclasses) ---------------------------------------

    def _create(self, digest: str, record: SessionRecord) -> None:
        raise NotImplementedError

    def _record(self, digest: str) -> SessionRecord | None:
        raise NotImplementedError

    def _locked(self, digest: str) -> contextlib.AbstractContextManager[SessionHandle]:
        raise NotImplementedError

    def _remove(self, digest: str) -> None:
        raise NotImplementedError

    def _digests(self) -> list[str]:
        raise NotImplementedError

    # -- operations ------------------------------------------------------------

    @staticmethod
    def _digest(token: str) -> str:
        return hashlib.sha256(token.encode("utf-8")).hexdigest()

    def create(self, ident: Identity, meta: ObjectMeta, length: int, now: datetime) -> str:
        """Open a session; returns its token (unguessable, 256 random bits)."""
        token = secrets.token_urlsafe(32)
        self._create(self._digest(token), SessionRecord(ident, meta, length, now + self.ttl))
        return token

    def _find(self, token: str, ident: Identity, now: datetime) -> tuple[str, SessionRecord]:
        digest = self._digest(token)
        record = self._record(digest)
        if record is None or record.ident != ident:
            raise SessionGone(404, "upload session not found")
        if record.expires <= now:
            with self._locked(digest) as handle:
                if handle.status == "open":
                    handle.status = "expired"
                    handle.drop_data()
                    handle.save(durable=False)
            raise SessionGone(410, "upload session expired")
        return digest, record

    @staticmethod
    def _check_open(handle: SessionHandle) -> None:
        if handle.status == "cancelled":
            raise SessionGone(410, "upload session was cancelled")
        if handle.status == "expired":
            raise SessionGone(410, "upload session expired")

    def _adopt(self, handle: SessionHandle, record: SessionRecord) -> None:
        """Record the bytes a writer left beyond the recorded offset (see
        the module docstring), or drop them after a reboot."""
        size = handle.size()
        if size > handle.offset:
            if handle.boot == self.boot:
                handle.sync()
                handle.offset = min(size, record.length)
            else:
                handle.truncate(handle.offset)
        handle.boot = self.boot

    def _finish(self, handle: SessionHandle, record: SessionRecord, now: datetime) -> Progress:
        """Store the object once every byte is held."""
        if handle.offset < record.length:
            return Progress(handle.offset, False)
        meta = record.meta
        meta = replace(
            meta,
            time_created=now,
            time_expires=now + meta.duration if meta.duration is not None else None,
        )
        writer = self.backend.writer(record.ident, meta)
        try:
            if not handle.copy_into(writer, record.length):
                for block in handle.read(0, record.length):
                    writer.write(block)
        except BaseException:
            writer.abort()
            raise
        writer.commit()
        handle.status = "completed"
        handle.save(durable=True)
        handle.drop_data()
        return Progress(record.length, True)

    @contextlib.contextmanager
    def _writing(self, digest: str) -> Iterator[None]:
        with self._writers_done:
            self._writers[digest] = self._writers.get(digest, 0) + 1
        try:
            yield
        finally:
            with self._writers_done:
                left = self._writers.pop(digest) - 1
                if left:
                    self._writers[digest] = left
                self._writers_done.notify_all()

    def _await_writers(self, digest: str) -> None:
        """Wait (at most ``WRITER_WAIT_SECONDS``) until no chunk write of the
        session runs in this process: a progress request that follows a
        broken-off write then reports what that write received, not what it
        had written when the progress request came. (A write in another
        worker process is not waited for: its bytes already on disk are
        adopted.)"""
        with self._writers_done:
            self._writers_done.wait_for(
                lambda: digest not in self._writers, timeout=WRITER_WAIT_SECONDS
            )

    def progress(self, token: str, ident: Identity, now: datetime) -> Progress:
        """Where the upload stands; completes it when every byte is held."""
        digest, record = self._find(token, ident, now)
        self._await_writers(digest)
        with self._locked(digest) as handle:
            if handle.status == "completed":
                return Progress(record.length, True)
            self._check_open(handle)
            self._adopt(handle, record)  # also what a request still sending has written
            handle.save(durable=True)
            return self._finish(handle, record, now)

    def write(
        self,
        token: str,
        ident: Identity,
        offset: int,
        count: int,
        body: Iterable[bytes | bytearray | memoryview],
        now: datetime,
    ) -> Progress:
        """Append ``count`` bytes from ``body`` at ``offset``. When ``body``
        raises (the client went away) the bytes received so far are kept and
        the exception propagates."""
        digest, record = self._find(token, ident, now)
        with self._writing(digest):
            return self._write(digest, record, offset, count, body, now)

    def _write(
        self,
        digest: str,
        record: SessionRecord,
        offset: int,
        count: int,
        body: Iterable[bytes | bytearray | memoryview],
        now: datetime,
    ) -> Progress:
        with self._locked(digest) as handle:
            if handle.status == "completed":
                return Progress(record.length, True)
            self._check_open(handle)
            self._adopt(handle, record)
            if offset != handle.offset:
                handle.save(durable=True)
                raise OffsetMismatch(handle.offset)
            if offset + count > record.length:
                raise PastLength(
                    f"a chunk of {count} bytes at offset {offset} runs past the "
                    f"Upload-Length of {record.length} bytes"
                )
            handle.gen += 1
            mine = handle.gen
            handle.truncate(offset)
            handle.save(durable=False)
        position = offset
        try:
            for block in body:
                with self._locked(digest) as handle:
                    if handle.gen != mine:
                        raise Superseded
                    handle.write_at(position, block)
                position += len(block)
        except Superseded:
            with self._locked(digest) as handle:
                raise OffsetMismatch(handle.offset) from None
        except BaseException:
            with self._locked(digest) as handle:
                if handle.gen == mine and handle.status == "open":
                    handle.sync()
                    handle.offset = position
                    handle.save(durable=True)
            raise
        with self._locked(digest) as handle:
            if handle.gen != mine:
                raise OffsetMismatch(handle.offset)
            handle.sync()
            handle.offset = position
            handle.save(durable=True)
            return self._finish(handle, record, now)

    def cancel(self, token: str, ident: Identity, now: datetime) -> None:
        """Discard the held bytes; the session answers 410 from now on."""
        digest, _ = self._find(token, ident, now)
        with self._locked(digest) as handle:
            if handle.status != "open":
                raise SessionGone(410, f"upload session is already {handle.status}")
            handle.status = "cancelled"
            handle.gen += 1
            handle.save(durable=True)
            handle.drop_data()

    def sweep(self, now: datetime) -> int:
        """Remove sessions past their expiry (held bytes and record)."""
        removed = 0
        for digest in self._digests():
            record = self._record(digest)
            if record is None or record.expires <= now:
                self._remove(digest)
                removed += 1
        return removed


# -- memory --------------------------------------------------------------------


class _MemoryHandle:
    def __init__(self, boot: str) -> None:
        self.offset = 0
        self.gen = 0
        self.status = "open"
        self.boot = boot
        self.data = bytearray()
        self.lock = threading.Lock()

    def size(self) -> int:
        return len(self.data)

    def write_at(self, position: int, block: bytes | bytearray | memoryview) -> None:
        self.data[position : position + len(block)] = block

    def truncate(self, size: int) -> None:
        del self.data[size:]

    def sync(self) -> None:
        pass

    def save(self, durable: bool) -> None:
        pass

    def read(self, start: int, stop: int) -> Iterator[bytes | memoryview]:
        view = memoryview(self.data)
        for begin in range(start, stop, CHUNK):
            yield bytes(view[begin : min(stop, begin + CHUNK)])

    def copy_into(self, writer: Writer, count: int) -> bool:
        return False

    def drop_data(self) -> None:
        self.data = bytearray()


class MemorySessions(Sessions):
    """Sessions in memory (lost with the process, like the memory backend)."""

    def __init__(self, backend: Backend, ttl: timedelta = DEFAULT_SESSION_TTL) -> None:
        super().__init__(backend, ttl)
        self._lock = threading.Lock()
        self._sessions: dict[str, tuple[SessionRecord, _MemoryHandle]] = {}

    def _create(self, digest: str, record: SessionRecord) -> None:
        with self._lock:
            self._sessions[digest] = (record, _MemoryHandle(self.boot))

    def _record(self, digest: str) -> SessionRecord | None:
        with self._lock:
            found = self._sessions.get(digest)
        return found[0] if found is not None else None

    @contextlib.contextmanager
    def _locked(self, digest: str) -> Iterator[SessionHandle]:
        with self._lock:
            found = self._sessions.get(digest)
        if found is None:
            raise SessionGone(404, "upload session not found")
        with found[1].lock:
            yield found[1]

    def _remove(self, digest: str) -> None:
        with self._lock:
            self._sessions.pop(digest, None)

    def _digests(self) -> list[str]:
        with self._lock:
            return list(self._sessions)
