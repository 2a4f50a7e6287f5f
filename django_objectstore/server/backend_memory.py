"""The ``memory`` backend of the local server: objects and multipart uploads
in dicts, lost when the process ends (so it serves one process only)."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

from django_objectstore.server.model import (
    Identity,
    ObjectMeta,
    PartInfo,
    StoredObject,
    UploadNotFound,
    Writer,
    new_etag,
)

__all__ = ["MemoryBackend"]


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

    syncs_writes = False

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
        etag = new_etag(part_number)

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
