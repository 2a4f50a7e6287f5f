"""Storage backends of the local server: ``memory`` and ``filesystem``.

Both store the payload exactly as received plus a small metadata record, make
every write atomic (a reader sees the old or the new object, never a mix,
and a failed upload leaves nothing behind) and keep multipart upload state.

Filesystem layout (not upstream's; see the README for why)::

    <root>/objects/<h[:2]>/<h>          one file per object, h = sha256 of the identity
    <root>/uploads/<upload_id>/         multipart state: ident, meta, <n>.part files
    <root>/**/.*.tmp                    in-flight writes and multipart uploads being
                                        assembled (removed on failure and at start)

An object file starts with a fixed-width line holding the expiry deadline in
microseconds (so a TTI bump or an expiry extension is one small in-place
write), then one line of JSON metadata that includes the identity, then the
payload. Files are written to a temporary file in the same directory,
fsynced and moved into place with ``os.replace``; an open file keeps serving
the version it opened.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import CancelledError, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Protocol

from django_objectstore._protocol import ExpirationKind

__all__ = [
    "Backend",
    "FilesystemBackend",
    "Identity",
    "MemoryBackend",
    "ObjectMeta",
    "PartInfo",
    "StoredObject",
    "UploadNotFound",
    "Writer",
]

logger = logging.getLogger("django_objectstore.server")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_EXPIRES_LINE = 21  # 20 digits + "\n"
CHUNK = 1024 * 1024


def _to_micros(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True)
class Identity:
    """Where an object lives: usecase, ordered scopes, key."""

    usecase: str
    scopes: tuple[tuple[str, str], ...]
    key: str

    def digest(self) -> str:
        raw = json.dumps([self.usecase, self.scopes, self.key], ensure_ascii=True)
        return hashlib.sha256(raw.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class ObjectMeta:
    """Metadata of one stored object (the server's view, not header forms)."""

    content_type: str = "application/octet-stream"
    compression: str | None = None
    expiration: ExpirationKind = "manual"
    duration: timedelta | None = None
    time_created: datetime = field(default_factory=lambda: datetime.now(UTC))
    time_expires: datetime | None = None
    origin: str | None = None
    filename: str | None = None
    custom: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "content_type": self.content_type,
            "compression": self.compression,
            "expiration": self.expiration,
            "duration_us": None if self.duration is None else self.duration // _MICROSECOND,
            "time_created": _to_micros(self.time_created),
            "origin": self.origin,
            "filename": self.filename,
            "custom": [list(item) for item in self.custom],
        }

    @classmethod
    def from_json(cls, data: dict[str, object], expires_us: int) -> ObjectMeta:
        duration = data["duration_us"]
        custom = data["custom"]
        assert isinstance(custom, list)
        kind = data["expiration"]
        assert kind in ("manual", "ttl", "tti")
        created = data["time_created"]
        assert isinstance(created, int)
        return cls(
            content_type=str(data["content_type"]),
            compression=None if data["compression"] is None else str(data["compression"]),
            expiration=kind,
            duration=None if duration is None else timedelta(microseconds=int(str(duration))),
            time_created=_from_micros(created),
            time_expires=_from_micros(expires_us) if expires_us else None,
            origin=None if data["origin"] is None else str(data["origin"]),
            filename=None if data["filename"] is None else str(data["filename"]),
            custom=tuple((str(name), str(value)) for name, value in custom),
        )


@dataclass(frozen=True)
class PartInfo:
    part_number: int
    etag: str
    size: int
    last_modified: datetime


class UploadNotFound(LookupError):
    """The multipart upload id is unknown (or belongs to another object)."""


class Writer(Protocol):
    def write(self, data: bytes | bytearray | memoryview) -> None: ...
    def commit(self) -> int: ...
    def abort(self) -> None: ...


class StoredObject:
    """An opened object: metadata, payload size and a way to read the
    payload. Close it when done (the filesystem version holds a file)."""

    def __init__(
        self,
        meta: ObjectMeta,
        size: int,
        *,
        data: bytes | bytearray | None = None,
        file: IO[bytes] | None = None,
        offset: int = 0,
    ) -> None:
        self.meta = meta
        self.size = size
        self.data = data
        self.file = file
        self.offset = offset

    def iter_bytes(self, start: int, stop: int) -> Iterator[bytes | memoryview]:
        if self.data is not None:
            yield memoryview(self.data)[start:stop]
            return
        assert self.file is not None
        self.file.seek(self.offset + start)
        remaining = stop - start
        while remaining > 0:
            block = self.file.read(min(CHUNK, remaining))
            if not block:
                raise OSError("object file ended early")
            remaining -= len(block)
            yield block

    def read_all(self) -> bytes:
        return b"".join(bytes(b) for b in self.iter_bytes(0, self.size))

    def close(self) -> None:
        if self.file is not None:
            self.file.close()

    def __enter__(self) -> StoredObject:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Backend(Protocol):
    def writer(self, ident: Identity, meta: ObjectMeta) -> Writer: ...
    def open(self, ident: Identity) -> StoredObject | None: ...
    def delete(self, ident: Identity) -> None: ...
    def set_expires(self, ident: Identity, old: datetime | None, new: datetime) -> bool: ...
    def create_upload(self, ident: Identity, meta: ObjectMeta) -> str: ...
    def part_writer(
        self, ident: Identity, upload_id: str, part_number: int
    ) -> tuple[Writer, str]: ...
    def remove_expired(self, ident: Identity, now: datetime) -> None: ...
    def list_parts(self, ident: Identity, upload_id: str) -> list[PartInfo]: ...
    def abort_upload(self, ident: Identity, upload_id: str) -> None: ...
    def upload_meta(self, ident: Identity, upload_id: str) -> ObjectMeta: ...
    def assemble(
        self, ident: Identity, upload_id: str, part_numbers: list[int], meta: ObjectMeta
    ) -> None: ...
    def sweep(self, now: datetime) -> int: ...
    def close(self) -> None: ...


def _new_etag(part_number: int) -> str:
    return f'"{part_number}-{uuid.uuid4().hex[:16]}"'


# -- memory ------------------------------------------------------------------


@dataclass
class _Upload:
    ident: Identity
    meta: ObjectMeta
    parts: dict[int, tuple[PartInfo, bytearray]] = field(default_factory=dict)


class _MemoryWriter:
    def __init__(self, commit: _CommitFn) -> None:
        self._buffer = bytearray()
        self._commit = commit

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._buffer += data

    def commit(self) -> int:
        # The bytearray is never changed after this point, so it is stored
        # as is instead of being copied into a bytes object.
        payload, self._buffer = self._buffer, bytearray()
        self._commit(payload)
        return len(payload)

    def abort(self) -> None:
        self._buffer = bytearray()


class _CommitFn(Protocol):
    def __call__(self, payload: bytearray) -> None: ...


class MemoryBackend:
    """Objects in a dict; lost when the process ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[Identity, tuple[ObjectMeta, bytearray]] = {}
        self._uploads: dict[str, _Upload] = {}

    def writer(self, ident: Identity, meta: ObjectMeta) -> Writer:
        def commit(payload: bytearray) -> None:
            with self._lock:
                self._objects[ident] = (meta, payload)

        return _MemoryWriter(commit)

    def open(self, ident: Identity) -> StoredObject | None:
        with self._lock:
            found = self._objects.get(ident)
        if found is None:
            return None
        return StoredObject(found[0], len(found[1]), data=found[1])

    def delete(self, ident: Identity) -> None:
        with self._lock:
            self._objects.pop(ident, None)

    def remove_expired(self, ident: Identity, now: datetime) -> None:
        with self._lock:
            found = self._objects.get(ident)
            expires = found[0].time_expires if found is not None else None
            if expires is not None and expires <= now:
                del self._objects[ident]

    def set_expires(self, ident: Identity, old: datetime | None, new: datetime) -> bool:
        with self._lock:
            found = self._objects.get(ident)
            if found is None or found[0].time_expires != old:
                return False
            self._objects[ident] = (replace(found[0], time_expires=new), found[1])
            return True

    def create_upload(self, ident: Identity, meta: ObjectMeta) -> str:
        upload_id = uuid.uuid4().hex
        with self._lock:
            self._uploads[upload_id] = _Upload(ident, meta)
        return upload_id

    def _upload(self, ident: Identity, upload_id: str) -> _Upload:
        upload = self._uploads.get(upload_id)
        if upload is None or upload.ident != ident:
            raise UploadNotFound(upload_id)
        return upload

    def part_writer(self, ident: Identity, upload_id: str, part_number: int) -> tuple[Writer, str]:
        with self._lock:
            self._upload(ident, upload_id)
        etag = _new_etag(part_number)

        def commit(payload: bytearray) -> None:
            info = PartInfo(part_number, etag, len(payload), datetime.now(UTC))
            with self._lock:
                self._upload(ident, upload_id).parts[part_number] = (info, payload)

        return _MemoryWriter(commit), etag

    def list_parts(self, ident: Identity, upload_id: str) -> list[PartInfo]:
        with self._lock:
            parts = self._upload(ident, upload_id).parts
            return sorted((info for info, _ in parts.values()), key=lambda p: p.part_number)

    def upload_meta(self, ident: Identity, upload_id: str) -> ObjectMeta:
        with self._lock:
            return self._upload(ident, upload_id).meta

    def assemble(
        self, ident: Identity, upload_id: str, part_numbers: list[int], meta: ObjectMeta
    ) -> None:
        with self._lock:
            parts = self._upload(ident, upload_id).parts
            payloads = [parts[number][1] for number in part_numbers]
        writer = self.writer(ident, meta)
        for payload in payloads:
            writer.write(payload)
        writer.commit()

    def abort_upload(self, ident: Identity, upload_id: str) -> None:
        with self._lock:
            upload = self._uploads.get(upload_id)
            if upload is not None and upload.ident == ident:
                del self._uploads[upload_id]

    def sweep(self, now: datetime) -> int:
        with self._lock:
            expired = [
                ident
                for ident, (meta, _) in self._objects.items()
                if meta.time_expires is not None and meta.time_expires <= now
            ]
            for ident in expired:
                del self._objects[ident]
        return len(expired)

    def close(self) -> None:
        with self._lock:
            self._objects.clear()
            self._uploads.clear()


# -- filesystem --------------------------------------------------------------


class _FileWriter:
    """Streams into a temporary file beside ``target``; ``commit`` fsyncs and
    renames it into place, ``abort`` removes it."""

    def __init__(self, target: Path, header: bytes, fsync: bool, on_commit: _Hook | None) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        self._target = target
        self._tmp = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
        self._file: IO[bytes] | None = open(self._tmp, "xb", buffering=0)  # noqa: SIM115
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


class _Hook(Protocol):
    def __call__(self, tmp: Path, target: Path) -> None: ...


@dataclass
class _Prefix:
    """The background assembly of one multipart upload: a temporary file
    beside the final object holding the upload's header and then parts 1, 2,
    ... (``parts``: their numbers and etags, in order). ``lock`` is held
    while the worker appends or a completion or abort uses it; once
    ``closed`` (claimed by a completion, discarded, or failed) the worker
    leaves it alone."""

    header: bytes
    writer: _FileWriter | None = None
    parts: list[tuple[int, str]] = field(default_factory=list)
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class FilesystemBackend:
    """Objects as files under ``root``; survives restarts."""

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = Path(root).resolve()
        self._objects = self.root / "objects"
        self._uploads = self.root / "uploads"
        self._fsync = fsync
        self._locks = [threading.Lock() for _ in range(64)]
        # Background assembly of multipart uploads (see _advance): one worker
        # thread, started on the first part and stopped by close().
        self._assembly_lock = threading.Lock()
        self._prefixes: dict[str, _Prefix] = {}
        self._pending: set[str] = set()
        self._executor: ThreadPoolExecutor | None = None
        #: Completions that reused parts already copied in the background.
        self.fast_completions = 0
        self._objects.mkdir(parents=True, exist_ok=True)
        self._uploads.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temp_files()

    def _remove_stale_temp_files(self) -> None:
        # Covers interrupted writes and the prefixes of background assembly,
        # which live beside their object as .<digest>.<uuid>.tmp.
        for folder in (self._objects, self._uploads):
            for tmp in folder.rglob(".*.tmp"):
                with contextlib.suppress(OSError):
                    tmp.unlink()

    def _path(self, ident: Identity) -> Path:
        digest = ident.digest()
        return self._objects / digest[:2] / digest

    def _lock(self, path: Path) -> threading.Lock:
        return self._locks[hash(path.name) % len(self._locks)]

    @staticmethod
    def _header(ident: Identity, meta: ObjectMeta) -> bytes:
        expires = _to_micros(meta.time_expires) if meta.time_expires is not None else 0
        record: dict[str, object] = {
            "usecase": ident.usecase,
            "scopes": ident.scopes,
            "key": ident.key,
        }
        record.update(meta.to_json())
        line = json.dumps(record, ensure_ascii=True, separators=(",", ":"))
        return b"%020d\n%s\n" % (expires, line.encode("ascii"))

    def _replace_locked(self, tmp: Path, target: Path) -> None:
        with self._lock(target):
            os.replace(tmp, target)

    def writer(self, ident: Identity, meta: ObjectMeta) -> Writer:
        return _FileWriter(
            self._path(ident), self._header(ident, meta), self._fsync, self._replace_locked
        )

    def open(self, ident: Identity) -> StoredObject | None:
        path = self._path(ident)
        try:
            file = open(path, "rb", buffering=CHUNK)  # noqa: SIM115
        except FileNotFoundError:
            return None
        try:
            with self._lock(path):
                expires = int(file.read(_EXPIRES_LINE))
            line = file.readline()
            record = json.loads(line)
            if (record["usecase"], [tuple(s) for s in record["scopes"]], record["key"]) != (
                ident.usecase,
                list(ident.scopes),
                ident.key,
            ):
                file.close()  # a hash collision: treat as missing
                return None
            offset = _EXPIRES_LINE + len(line)
            size = os.fstat(file.fileno()).st_size - offset
            return StoredObject(
                ObjectMeta.from_json(record, expires), size, file=file, offset=offset
            )
        except BaseException:
            file.close()
            raise

    def delete(self, ident: Identity) -> None:
        path = self._path(ident)
        with self._lock(path), contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    def _unlink_if_expired(self, path: Path, limit: int) -> bool:
        with self._lock(path):
            try:
                with open(path, "rb") as file:
                    expires = int(file.read(_EXPIRES_LINE))
                if expires and expires <= limit:
                    os.unlink(path)
                    return True
            except (OSError, ValueError):
                pass
        return False

    def remove_expired(self, ident: Identity, now: datetime) -> None:
        self._unlink_if_expired(self._path(ident), _to_micros(now))

    def set_expires(self, ident: Identity, old: datetime | None, new: datetime) -> bool:
        path = self._path(ident)
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            with self._lock(path):
                current = int(os.pread(fd, _EXPIRES_LINE, 0))
                expected = _to_micros(old) if old is not None else 0
                if current != expected:
                    return False
                os.pwrite(fd, b"%020d" % _to_micros(new), 0)
            return True
        finally:
            os.close(fd)

    # multipart

    def _upload_dir(self, ident: Identity, upload_id: str) -> Path:
        if len(upload_id) != 32 or not all(c in "0123456789abcdef" for c in upload_id):
            raise UploadNotFound(upload_id)
        folder = self._uploads / upload_id
        try:
            owner = (folder / "ident").read_text("ascii")
        except FileNotFoundError:
            raise UploadNotFound(upload_id) from None
        if owner != ident.digest():
            raise UploadNotFound(upload_id)
        return folder

    def create_upload(self, ident: Identity, meta: ObjectMeta) -> str:
        upload_id = uuid.uuid4().hex
        folder = self._uploads / upload_id
        folder.mkdir()
        (folder / "meta").write_bytes(self._header(ident, meta))
        (folder / "ident").write_text(ident.digest(), "ascii")
        return upload_id

    def part_writer(self, ident: Identity, upload_id: str, part_number: int) -> tuple[Writer, str]:
        folder = self._upload_dir(ident, upload_id)
        etag = _new_etag(part_number)
        header = etag.encode("ascii") + b"\n"
        # Parts are not fsynced: the assembled object is (its bytes are copied
        # from the parts' page cache, in the background as parts arrive, see
        # _advance). A crash before completion loses the upload, which the
        # client retries anyway; syncing every part would write the object's
        # bytes to disk twice.

        def publish(tmp: Path, target: Path) -> None:
            os.replace(tmp, target)
            self._notify(ident, upload_id)

        return _FileWriter(folder / f"{part_number}.part", header, False, publish), etag

    def list_parts(self, ident: Identity, upload_id: str) -> list[PartInfo]:
        folder = self._upload_dir(ident, upload_id)
        parts: list[PartInfo] = []
        for path in folder.glob("*.part"):
            try:
                with open(path, "rb") as file:
                    etag = file.readline()
                    stat = os.fstat(file.fileno())
            except FileNotFoundError:
                continue
            parts.append(
                PartInfo(
                    int(path.stem),
                    etag.decode("ascii").rstrip("\n"),
                    stat.st_size - len(etag),
                    datetime.fromtimestamp(stat.st_mtime, UTC),
                )
            )
        parts.sort(key=lambda p: p.part_number)
        return parts

    def upload_meta(self, ident: Identity, upload_id: str) -> ObjectMeta:
        folder = self._upload_dir(ident, upload_id)
        with open(folder / "meta", "rb") as file:
            expires = int(file.read(_EXPIRES_LINE))
            return ObjectMeta.from_json(json.loads(file.readline()), expires)

    # Background assembly. Completing an upload means copying all its parts
    # into one new file and syncing it, while the client waits. So a single
    # worker does most of that ahead of time: after each part is stored it
    # appends parts 1, 2, 3, ... that are present, in order, to a temporary
    # object file (the upload's "prefix"), stopping at the first gap. At
    # completion, when the request lists the prefix's parts first and they
    # are unchanged, only the remaining parts are appended before the rename;
    # otherwise the prefix is dropped and all parts are copied as before.

    def _notify(self, ident: Identity, upload_id: str) -> None:
        with self._assembly_lock:
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
        with self._assembly_lock:
            self._pending.discard(upload_id)
            prefix = self._prefixes.get(upload_id)
            if prefix is None:
                # Checked under the lock: abort_upload removes the folder before
                # it discards the prefix, so no prefix outlives its upload.
                try:
                    header = (folder / "meta").read_bytes()
                except FileNotFoundError:
                    return
                prefix = self._prefixes[upload_id] = _Prefix(header)
            if prefix.closed or not prefix.lock.acquire(blocking=False):
                return
        try:
            if prefix.writer is None:
                prefix.writer = _FileWriter(
                    self._path(ident), prefix.header, self._fsync, self._replace_locked
                )
            else:
                prefix.writer.resume()
            try:
                number = len(prefix.parts) + 1
                while not prefix.closed:
                    try:
                        etag = self._copy_part(prefix.writer, folder / f"{number}.part")
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

    @staticmethod
    def _copy_part(writer: _FileWriter, path: Path) -> str:
        """Append the payload of one part file; returns the etag it was
        stored with."""
        with open(path, "rb", buffering=0) as file:
            line = file.readline()
            size = os.fstat(file.fileno()).st_size - len(line)
            writer.copy_from(file.fileno(), len(line), size)
        return line.decode("ascii").rstrip("\n")

    @staticmethod
    def _part_etag(path: Path) -> str | None:
        try:
            with open(path, "rb") as file:
                return file.readline().decode("ascii").rstrip("\n")
        except FileNotFoundError:
            return None

    def _claim_prefix(self, folder: Path) -> _Prefix | None:
        """Stop background work on this upload and take its prefix (waiting
        for a copy in progress); release ``prefix.lock`` when done."""
        with self._assembly_lock:
            prefix = self._prefixes.get(folder.name)
            if prefix is None:
                if (folder / "meta").exists():
                    # Keeps the worker from starting a prefix that nobody would use.
                    self._prefixes[folder.name] = _Prefix(b"", closed=True)
                return None
            prefix.closed = True
        prefix.lock.acquire()
        return prefix

    def _complete_from_prefix(
        self, prefix: _Prefix, ident: Identity, folder: Path, part_numbers: list[int], header: bytes
    ) -> bool:
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
            and all(self._part_etag(folder / f"{n}.part") == etag for n, etag in prefix.parts)
        )
        if not usable:
            writer.abort()
            return False
        try:
            writer.resume()
            for number in part_numbers[done:]:
                self._copy_part(writer, folder / f"{number}.part")
        except BaseException:
            writer.abort()
            raise
        writer.commit()
        return True

    def _discard_prefix(self, upload_id: str) -> None:
        with self._assembly_lock:
            prefix = self._prefixes.pop(upload_id, None)
            if prefix is None:
                return
            prefix.closed = True
        with prefix.lock:
            if prefix.writer is not None:
                prefix.writer.abort()
                prefix.writer = None

    def wait_for_assembly(self) -> None:
        """Block until the background worker has handled every part stored
        so far (for tests and benchmarks)."""
        with self._assembly_lock:
            executor = self._executor
        if executor is not None:
            with contextlib.suppress(RuntimeError, CancelledError):  # closed meanwhile
                executor.submit(lambda: None).result()

    def assemble(
        self, ident: Identity, upload_id: str, part_numbers: list[int], meta: ObjectMeta
    ) -> None:
        folder = self._upload_dir(ident, upload_id)
        header = self._header(ident, meta)
        prefix = self._claim_prefix(folder)
        if prefix is not None:
            try:
                fast = self._complete_from_prefix(prefix, ident, folder, part_numbers, header)
            except OSError:
                fast = False  # e.g. its temporary file was removed: copy everything
            finally:
                prefix.lock.release()
            if fast:
                with self._assembly_lock:
                    self.fast_completions += 1
                return
        writer = _FileWriter(self._path(ident), header, self._fsync, self._replace_locked)
        try:
            for number in part_numbers:
                self._copy_part(writer, folder / f"{number}.part")
        except BaseException:
            writer.abort()
            raise
        writer.commit()

    def abort_upload(self, ident: Identity, upload_id: str) -> None:
        try:
            folder = self._upload_dir(ident, upload_id)
        except UploadNotFound:
            return
        # The folder goes first: the worker checks it before starting a prefix.
        shutil.rmtree(folder, ignore_errors=True)
        self._discard_prefix(upload_id)

    def sweep(self, now: datetime) -> int:
        limit = _to_micros(now)
        removed = 0
        for path in self._objects.glob("*/*"):
            if not path.name.startswith(".") and self._unlink_if_expired(path, limit):
                removed += 1
        return removed

    def close(self) -> None:
        """Stop the background worker and remove the temporary files of
        unfinished assemblies. The backend stays usable (a later part starts
        a new worker and its upload's assembly over)."""
        with self._assembly_lock:
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
