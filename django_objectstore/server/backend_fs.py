"""The ``filesystem`` backend of the local server: objects as files under a
root folder; survives restarts.

Layout (not upstream's; see the README for why)::

    <root>/objects/<h[:2]>/<h>          one file per object, h = sha256 of the identity
    <root>/uploads/<upload_id>/         multipart state: ident, meta, <n>.part files
    <root>/**/.*.tmp                    in-flight writes and multipart uploads being
                                        assembled (removed on failure, and at start
                                        when no process holds their lock)

An object file starts with a fixed-width line holding the expiry deadline in
microseconds (so a TTI bump or an expiry extension is one small in-place
write), then one line of JSON metadata that includes the identity, then the
payload. Files are written to a temporary file in the same directory,
fsynced and moved into place with ``os.replace``; an open file keeps serving
the version it opened.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

from django_objectstore.server.backend_fs_assembly import PrefixAssembler
from django_objectstore.server.backend_fs_writer import FileWriter, copy_part, remove_if_abandoned
from django_objectstore.server.model import (
    CHUNK,
    Identity,
    ObjectMeta,
    PartInfo,
    StoredObject,
    UploadNotFound,
    Writer,
    new_etag,
    to_micros,
)

__all__ = ["FilesystemBackend"]

_EXPIRES_LINE = 21  # 20 digits + "\n"


class FilesystemBackend:
    """Objects as files under ``root``; survives restarts."""

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = Path(root).resolve()
        self._objects = self.root / "objects"
        self._uploads = self.root / "uploads"
        self._fsync = fsync
        self.syncs_writes = fsync
        self._locks = [threading.Lock() for _ in range(64)]
        # Background pre-assembly of multipart uploads (backend_fs_assembly).
        # Off in worker processes: each would see only the parts it stored.
        self.preassemble = True
        self._assembler = PrefixAssembler(self._uploads, self._prefix_writer)
        self._objects.mkdir(parents=True, exist_ok=True)
        self._uploads.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temp_files()

    def _remove_stale_temp_files(self) -> None:
        # Interrupted writes and the prefixes of background assembly, which
        # live beside their object as .<digest>.<uuid>.tmp. Only abandoned
        # ones: another server (or worker process) may be writing to this
        # folder now, and its temporary files are locked.
        for folder in (self._objects, self._uploads):
            for tmp in folder.rglob(".*.tmp"):
                remove_if_abandoned(tmp)

    def _path(self, ident: Identity) -> Path:
        digest = ident.digest()
        return self._objects / digest[:2] / digest

    def _lock(self, path: Path) -> threading.Lock:
        return self._locks[hash(path.name) % len(self._locks)]

    @staticmethod
    def _header(ident: Identity, meta: ObjectMeta) -> bytes:
        expires = to_micros(meta.time_expires) if meta.time_expires is not None else 0
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
        return FileWriter(
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
        self._unlink_if_expired(self._path(ident), to_micros(now))

    def set_expires(self, ident: Identity, old: datetime | None, new: datetime) -> bool:
        path = self._path(ident)
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            with self._lock(path):
                current = int(os.pread(fd, _EXPIRES_LINE, 0))
                expected = to_micros(old) if old is not None else 0
                if current != expected:
                    return False
                os.pwrite(fd, b"%020d" % to_micros(new), 0)
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
        etag = new_etag(part_number)
        header = etag.encode("ascii") + b"\n"
        # Parts are not fsynced: the assembled object is (its bytes are copied
        # from the parts' page cache, in the background as parts arrive, see
        # _advance). A crash before completion loses the upload, which the
        # client retries anyway; syncing every part would write the object's
        # bytes to disk twice.

        def publish(tmp: Path, target: Path) -> None:
            os.replace(tmp, target)
            if self.preassemble:
                self._assembler.notify(ident, upload_id)

        return FileWriter(folder / f"{part_number}.part", header, False, publish), etag

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

    def _prefix_writer(self, ident: Identity, header: bytes) -> FileWriter:
        return FileWriter(self._path(ident), header, self._fsync, self._replace_locked)

    @property
    def fast_completions(self) -> int:
        """Completions that reused parts already copied in the background."""
        return self._assembler.fast_completions

    def wait_for_assembly(self) -> None:
        """Block until the background worker has handled every part stored
        so far (for tests and benchmarks)."""
        self._assembler.wait()

    def assemble(
        self, ident: Identity, upload_id: str, part_numbers: list[int], meta: ObjectMeta
    ) -> None:
        folder = self._upload_dir(ident, upload_id)
        header = self._header(ident, meta)
        if self._assembler.complete(folder, part_numbers, header):
            return
        writer = FileWriter(self._path(ident), header, self._fsync, self._replace_locked)
        try:
            for number in part_numbers:
                copy_part(writer, folder / f"{number}.part")
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
        self._assembler.discard(upload_id)

    def sweep(self, now: datetime) -> int:
        limit = to_micros(now)
        removed = 0
        for path in self._objects.glob("*/*"):
            if not path.name.startswith(".") and self._unlink_if_expired(path, limit):
                removed += 1
        return removed

    def close(self) -> None:
        """Stop the background worker and remove the temporary files of
        unfinished assemblies. The backend stays usable."""
        self._assembler.close()
