"""Atomic file writes for the filesystem backend: a temporary file beside
the target, fsynced and renamed into place (``FileWriter``), and the copy of
a stored multipart part into such a file."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
import uuid
from pathlib import Path
from typing import IO, Protocol

from django_objectstore.server.model import CHUNK

__all__ = ["FileWriter", "ReplaceHook", "copy_part", "part_etag", "remove_if_abandoned"]

#: A temporary file this old and unlocked is left over by a process that is
#: gone (the age covers the moment between creating a file and locking it).
ABANDONED_AFTER = 5.0


class ReplaceHook(Protocol):
    def __call__(self, tmp: Path, target: Path) -> None: ...


class FileWriter:
    """Streams into a temporary file beside ``target``; ``commit`` fsyncs and
    renames it into place, ``abort`` removes it."""

    def __init__(
        self, target: Path, header: bytes, fsync: bool, on_commit: ReplaceHook | None
    ) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        self._target = target
        self._tmp = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
        self._file: IO[bytes] | None = open(self._tmp, "xb", buffering=0)  # noqa: SIM115
        # Held while the file is open: another server process starting on
        # the same folder removes only unlocked temporary files.
        fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._fsync = fsync
        self._on_commit = on_commit
        self._size = 0
        self._header_len = len(header)
        if header:
            self._file.write(header)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert self._file is not None
        view = memoryview(data)
        while view:
            written = self._file.write(view)
            assert written is not None
            view = view[written:]
        self._size += len(data)

    def copy_from(self, fd: int, offset: int, count: int) -> None:
        """Append ``count`` bytes of file ``fd`` from ``offset``, in the
        kernel where possible."""
        assert self._file is not None
        out = self._file.fileno()
        while count > 0:
            try:
                copied = os.copy_file_range(fd, out, count, offset)
            except OSError:
                copied = 0
            if copied <= 0:  # unsupported here or end of file: plain copy
                os.lseek(fd, offset, os.SEEK_SET)
                block = os.read(fd, min(count, CHUNK))
                if not block:
                    raise OSError(f"part file ended {count} bytes early")
                self.write(block)
                copied = len(block)
            else:
                self._size += copied
            offset += copied
            count -= copied

    def pause(self) -> None:
        """Close the file until ``resume`` (no descriptor held meanwhile); its
        data is flushed to disk first when this writer fsyncs."""
        assert self._file is not None
        file, self._file = self._file, None
        try:
            if self._fsync:
                os.fdatasync(file.fileno())
        finally:
            file.close()

    def resume(self) -> None:
        """Reopen a paused file to append more (not ``O_APPEND``, which
        ``copy_file_range`` refuses)."""
        if self._file is None:
            file = open(self._tmp, "r+b", buffering=0)  # noqa: SIM115
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            file.seek(0, os.SEEK_END)
            self._file = file

    def commit(self) -> int:
        try:
            self.resume()
            assert self._file is not None
            if self._fsync:
                os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
            if self._on_commit is not None:
                self._on_commit(self._tmp, self._target)
            else:
                os.replace(self._tmp, self._target)
        except BaseException:
            self.abort()
            raise
        return self._size

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)


def copy_part(writer: FileWriter, path: Path) -> str:
    """Append the payload of one part file; returns the etag it was stored
    with (the part file's first line)."""
    with open(path, "rb", buffering=0) as file:
        line = file.readline()
        size = os.fstat(file.fileno()).st_size - len(line)
        writer.copy_from(file.fileno(), len(line), size)
    return line.decode("ascii").rstrip("\n")


def part_etag(path: Path) -> str | None:
    """The etag a part file was stored with, or ``None`` when it is gone."""
    try:
        with open(path, "rb") as file:
            return file.readline().decode("ascii").rstrip("\n")
    except FileNotFoundError:
        return None


def remove_if_abandoned(path: Path, now: float | None = None) -> bool:
    """Remove a temporary file that no writer holds (see ``FileWriter``) and
    that is at least ``ABANDONED_AFTER`` seconds old; True when removed."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        if (now if now is not None else time.time()) - os.fstat(fd).st_mtime < ABANDONED_AFTER:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live writer (this or another process) has it
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return True
    finally:
        os.close(fd)
