"""The local server's data model: object identities and metadata, opened
objects, multipart part records, and the ``Backend`` protocol that the
memory and filesystem backends (``backend_memory``, ``backend_fs``)
implement.

Both backends store the payload exactly as received plus a small metadata
record, make every write atomic (a reader sees the old or the new object,
never a mix, and a failed upload leaves nothing behind) and keep multipart
upload state.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Protocol

from django_objectstore._protocol import ExpirationKind

__all__ = [
    "CHUNK",
    "Backend",
    "Identity",
    "ObjectMeta",
    "PartInfo",
    "StoredObject",
    "UploadNotFound",
    "Writer",
    "from_micros",
    "new_etag",
    "to_micros",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
#: Payloads are read and copied in blocks this big.
CHUNK = 1024 * 1024


def to_micros(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
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
            "time_created": to_micros(self.time_created),
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
            time_created=from_micros(created),
            time_expires=from_micros(expires_us) if expires_us else None,
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
            view = memoryview(self.data)
            for offset in range(start, stop, CHUNK):
                yield view[offset : min(offset + CHUNK, stop)]
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
    #: Whether writes wait for the disk (fsync): the HTTP layer then runs
    #: writing endpoints off its event loop.
    syncs_writes: bool

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


def new_etag(part_number: int) -> str:
    return f'"{part_number}-{uuid.uuid4().hex[:16]}"'
