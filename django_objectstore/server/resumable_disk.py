"""Resumable upload sessions on disk, beside the filesystem backend's objects
(layout and locking rules in ``resumable_store``'s docstring)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol, runtime_checkable

from django_objectstore.server.model import CHUNK, Backend, Identity, ObjectMeta, Writer
from django_objectstore.server.resumable_store import (
    DEFAULT_SESSION_TTL,
    SessionGone,
    SessionHandle,
    SessionRecord,
    Sessions,
)

__all__ = ["FilesystemSessions"]

_STATE = b"%020d %020d %-9s %-36s\n"
_STATE_LEN = len(_STATE % (0, 0, b"open", b""))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@runtime_checkable
class _FileCopier(Protocol):
    def copy_from(self, fd: int, offset: int, count: int) -> None: ...


class _DiskHandle:
    """Open files of one session; valid while ``flock`` is held on ``state``."""

    def __init__(self, folder: Path, state_fd: int, fsync: bool) -> None:
        self._folder = folder
        self._state_fd = state_fd
        self._fsync = fsync
        raw = os.pread(state_fd, _STATE_LEN, 0)
        offset, gen, status, boot = raw.split(maxsplit=3) if raw else (b"0", b"0", b"", b"")
        self.offset = int(offset)
        self.gen = int(gen)
        self.status = status.decode("ascii")
        self.boot = boot.strip().decode("ascii")
        self._data_fd: int | None = None

    def _data(self) -> int:
        if self._data_fd is None:
            self._data_fd = os.open(self._folder / "data", os.O_RDWR | os.O_CREAT, 0o600)
        return self._data_fd

    def close(self) -> None:
        if self._data_fd is not None:
            os.close(self._data_fd)
            self._data_fd = None

    def size(self) -> int:
        return os.fstat(self._data()).st_size

    def write_at(self, position: int, block: bytes | bytearray | memoryview) -> None:
        view = memoryview(block)
        fd = self._data()
        while view:
            written = os.pwrite(fd, view, position)
            view = view[written:]
            position += written

    def truncate(self, size: int) -> None:
        os.ftruncate(self._data(), size)

    def sync(self) -> None:
        if self._fsync:
            os.fdatasync(self._data())

    def save(self, durable: bool) -> None:
        line = _STATE % (
            self.offset,
            self.gen,
            self.status.encode("ascii"),
            self.boot.encode("ascii"),
        )
        os.pwrite(self._state_fd, line, 0)
        if durable and self._fsync:
            os.fdatasync(self._state_fd)

    def read(self, start: int, stop: int) -> Iterator[bytes | memoryview]:
        fd = self._data()
        position = start
        while position < stop:
            block = os.pread(fd, min(CHUNK, stop - position), position)
            if not block:
                raise OSError(f"session data ended at {position} of {stop} bytes")
            position += len(block)
            yield block

    def copy_into(self, writer: Writer, count: int) -> bool:
        """Copy the held bytes in the kernel when the writer can
        (``copy_file_range``: the filesystem backend's writer)."""
        if not isinstance(writer, _FileCopier):
            return False
        writer.copy_from(self._data(), 0, count)
        return True

    def drop_data(self) -> None:
        self.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._folder / "data")


class FilesystemSessions(Sessions):
    """Sessions under ``<root>/resumable``; they survive a server restart."""

    def __init__(
        self,
        backend: Backend,
        root: str | os.PathLike[str],
        *,
        fsync: bool = True,
        ttl: timedelta = DEFAULT_SESSION_TTL,
    ) -> None:
        super().__init__(backend, ttl)
        self._base = Path(root) / "resumable"
        self._base.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync

    def _create(self, digest: str, record: SessionRecord) -> None:
        tmp = self._base / f".{digest}.{uuid.uuid4().hex}.tmp"
        tmp.mkdir()
        try:
            info = {
                "usecase": record.ident.usecase,
                "scopes": record.ident.scopes,
                "key": record.ident.key,
                "meta": record.meta.to_json(),
                "length": record.length,
                "expires": _micros(record.expires),
            }
            self._write_synced(tmp / "session.json", json.dumps(info).encode("utf-8"))
            self._write_synced(tmp / "state", _STATE % (0, 0, b"open", self.boot.encode()))
            os.rename(tmp, self._base / digest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if self._fsync:
            fd = os.open(self._base, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _write_synced(self, path: Path, data: bytes) -> None:
        with open(path, "xb") as file:
            file.write(data)
            if self._fsync:
                os.fsync(file.fileno())

    def _record(self, digest: str) -> SessionRecord | None:
        try:
            raw = (self._base / digest / "session.json").read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        info = json.loads(raw)
        meta = dict(info["meta"])
        return SessionRecord(
            Identity(info["usecase"], tuple(tuple(s) for s in info["scopes"]), info["key"]),
            ObjectMeta.from_json(meta, 0),
            int(info["length"]),
            _EPOCH + timedelta(microseconds=int(info["expires"])),
        )

    @contextlib.contextmanager
    def _locked(self, digest: str) -> Iterator[SessionHandle]:
        folder = self._base / digest
        try:
            state_fd = os.open(folder / "state", os.O_RDWR)
        except (FileNotFoundError, NotADirectoryError):
            raise SessionGone(404, "upload session not found") from None
        try:
            fcntl.flock(state_fd, fcntl.LOCK_EX)
            if os.fstat(state_fd).st_nlink == 0:  # swept while we waited
                raise SessionGone(404, "upload session not found")
            handle = _DiskHandle(folder, state_fd, self._fsync)
            try:
                yield handle
            finally:
                handle.close()
        finally:
            os.close(state_fd)  # releases the lock

    def _remove(self, digest: str) -> None:
        folder = self._base / digest
        try:
            state_fd = os.open(folder / "state", os.O_RDWR)
        except (FileNotFoundError, NotADirectoryError):
            shutil.rmtree(folder, ignore_errors=True)
            return
        try:
            fcntl.flock(state_fd, fcntl.LOCK_EX)
            shutil.rmtree(folder, ignore_errors=True)
        finally:
            os.close(state_fd)

    def _digests(self) -> list[str]:
        return [path.name for path in self._base.iterdir() if not path.name.startswith(".")]

    def sweep(self, now: datetime) -> int:
        """Expired sessions, and folders of creates that never finished (a
        server killed mid-create) once they are a session lifetime old."""
        limit = time.time() - self.ttl.total_seconds()
        for tmp in self._base.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                if tmp.stat().st_mtime < limit:
                    shutil.rmtree(tmp, ignore_errors=True)
        return super().sweep(now)
