"""Reading stored objects, and the ``File`` that ``ObjectstoreStorage.open()`` returns.

Reading streams the object with bounded memory: one GET feeds a read-ahead
buffer (so Pillow's 1/2/4 KiB header sniffing and ``FileResponse``'s 4 KiB
blocks never cost a request each); ``seek()`` inside the buffer is free, a
far seek re-requests a byte range (uncompressed objects) or restarts and skips
(zstd objects, whose stored bytes cannot be entered in the middle). ``size``
is the logical (uncompressed) size and comes from headers, not from reading.

Writing (``open(name, "wb")``) spools locally and uploads on ``close()``.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, Final

import zstandard
from django.core.files.base import File

from django_objectstore.client import Metadata, Session
from django_objectstore.errors import CLIENT_ERRORS, missing, storage_error

__all__ = [
    "BLOCK_SIZE",
    "SIZE_METADATA_KEY",
    "Fetched",
    "ObjectstoreFile",
    "RemoteObject",
    "RemoteReader",
    "custom_size",
]

#: Bytes read from the network at a time; also the smallest read-ahead.
BLOCK_SIZE: Final = 64 * 1024
#: Bytes kept behind the read position so short backward seeks are free.
HISTORY: Final = 1024 * 1024
#: Forward seeks shorter than this read and discard instead of a new request.
SKIP_LIMIT: Final = 256 * 1024
#: Custom metadata entry holding the logical (uncompressed) size in bytes.
SIZE_METADATA_KEY: Final = "original-size"


def custom_size(meta: Metadata) -> int | None:
    """The logical size recorded at upload, if any."""
    value = meta.custom.get(SIZE_METADATA_KEY)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


@dataclass
class Fetched:
    """One open GET: decoded bytes from logical offset ``start``."""

    stream: IO[bytes]
    start: int
    size: int | None
    metadata: Metadata
    compressed: bool


Fetcher = Callable[[int], Fetched]
SizeProbe = Callable[[], int]


@dataclass(frozen=True)
class RemoteObject:
    """One stored object: the session of its scope, its key, and its full
    stored name and usecase (for messages). Cheap: no I/O until asked."""

    session: Session
    key: str
    name: str
    usecase: str

    def head(self) -> Metadata:
        """The object's metadata (one HEAD); ``FileNotFoundError`` if missing."""
        try:
            meta = self.session.head(self.key)
        except CLIENT_ERRORS as exc:
            raise storage_error(exc, self.name, self.usecase) from exc
        if meta is None:
            raise missing(self.name, self.usecase)
        return meta

    def reader(self) -> RemoteReader:
        """A seekable stream of the object's logical bytes (first GET now)."""
        return RemoteReader(
            self.fetch, self.size, label=f"object {self.name!r} in usecase {self.usecase!r}"
        )

    def fetch(self, start: int) -> Fetched:
        """Open a ranged GET from logical offset ``start``.

        The first request (``start=0``) learns from its headers whether the
        object is compressed; compressed objects are decoded here and always
        read from 0 (a zstd stream cannot be entered in the middle)."""
        try:
            response = self.session.get_range(self.key, start)
        except CLIENT_ERRORS as exc:
            raise storage_error(exc, self.name, self.usecase) from exc
        if response is None:
            raise missing(self.name, self.usecase)
        meta = response.metadata
        size = custom_size(meta)
        if meta.compression is None:
            if size is None:
                size = response.total_size
            return Fetched(response.payload, response.start, size, meta, compressed=False)
        if meta.compression != "zstd":
            response.payload.close()
            raise OSError(f"Cannot decode {meta.compression!r}-encoded object {self.name!r}.")
        if start:
            # Should not happen (the reader restarts compressed reads at 0).
            response.payload.close()
            return self.fetch(0)
        stream = zstandard.ZstdDecompressor().stream_reader(
            response.payload, read_size=BLOCK_SIZE, read_across_frames=True
        )
        return Fetched(stream, 0, size, meta, compressed=True)

    def size(self, known: Metadata | None = None) -> int:
        """The logical (uncompressed) size: recorded at upload, else the
        stored size of an uncompressed object, else counted by decoding."""
        meta = known if known is not None else self.head()
        size = custom_size(meta)
        if size is not None:
            return size
        if meta.compression is None:
            if meta.size is not None:
                return int(meta.size)
            try:
                response = self.session.get_range(self.key, 0, 0)
            except CLIENT_ERRORS as exc:
                raise storage_error(exc, self.name, self.usecase) from exc
            if response is None:
                raise missing(self.name, self.usecase)
            response.payload.close()
            if response.total_size is not None:
                return int(response.total_size)
        # Compressed and written by another client: count the decoded bytes.
        reader = self.reader()
        try:
            total = 0
            while chunk := reader.read(1024 * 1024):
                total += len(chunk)
            return total
        finally:
            reader.close()


class RemoteReader(io.RawIOBase):
    """A seekable, read-only byte stream over one object."""

    def __init__(self, fetch: Fetcher, count_size: SizeProbe, *, label: str = "object") -> None:
        super().__init__()
        # Set before the first request: if it raises, io's finalizer still
        # calls close(), which must find a (closed) stream attribute.
        self._stream: IO[bytes] | None = None
        self._fetch = fetch
        self._count_size = count_size
        first = fetch(0)
        self.metadata = first.metadata
        self.compressed = first.compressed
        self._size = first.size
        self._stream = first.stream
        self._buf = bytearray()
        self._buf_start = 0  # logical offset of _buf[0]; the stream sits at its end
        self._pos = 0
        self.requests = 1  # GETs issued; tests and benchmarks read it
        #: How errors name the object ("object 'org=1/a.txt' in usecase 'x'").
        self.label = label

    # -- io.RawIOBase ----------------------------------------------------
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._check_open()
        return self._pos

    @property
    def size(self) -> int:
        if self._size is None:
            self._size = self._count_size()
        return self._size

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._check_open()
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._pos + offset
        elif whence == io.SEEK_END:
            target = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence!r}")
        if target < 0:
            raise ValueError(f"negative seek position {target}")
        self._pos = target
        return target

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        return self.read(-1)

    def read(self, size: int | None = -1) -> bytes:
        self._check_open()
        want = -1 if size is None or size < 0 else size
        out = bytearray()
        while want != 0:
            offset = self._pos - self._buf_start
            if 0 <= offset < len(self._buf):
                end = len(self._buf) if want < 0 else offset + want
                piece = self._buf[offset:end]
                out += piece
                self._pos += len(piece)
                if want > 0:
                    want -= len(piece)
                continue
            if self._size is not None and self._pos >= self._size:
                break
            stream = self._position_stream()
            if want >= 4 * BLOCK_SIZE:
                # Big reads go straight to the caller, not through the buffer.
                data = self._pull(stream, want)
                if not data:
                    self._at_eof()
                    break
                out += data
                self._pos += len(data)
                want -= len(data)
                self._buf = bytearray()
                self._buf_start = self._pos
                continue
            data = self._pull(stream, max(want, BLOCK_SIZE) if want > 0 else 4 * BLOCK_SIZE)
            if not data:
                self._at_eof()
                break
            self._append(data)
        return bytes(out)

    def close(self) -> None:
        if not self.closed:
            self._drop_stream()
            self._buf = bytearray()
        super().close()

    # -- internals -------------------------------------------------------
    def _pull(self, stream: IO[bytes], size: int) -> bytes:
        try:
            return stream.read(size)
        except zstandard.ZstdError as exc:
            raise OSError(
                f"Objectstore {self.label} is corrupt: its zstd-compressed data cannot be "
                f"decoded ({exc}). Upload it again, or delete it."
            ) from exc

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file.")

    def _at_eof(self) -> None:
        if self._size is None:
            self._size = self._buf_start + len(self._buf)

    def _append(self, data: bytes) -> None:
        self._buf += data
        excess = self._pos - self._buf_start - HISTORY
        if excess > 0:
            del self._buf[:excess]
            self._buf_start += excess

    def _drop_stream(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def _reopen(self, start: int) -> IO[bytes]:
        self._drop_stream()
        fetched = self._fetch(start)
        self.requests += 1
        self._stream = fetched.stream
        self._buf = bytearray()
        self._buf_start = fetched.start
        if self._size is None:
            self._size = fetched.size
        return fetched.stream

    def _position_stream(self) -> IO[bytes]:
        """Make the stream deliver the byte at ``self._pos`` next."""
        end = self._buf_start + len(self._buf)
        stream = self._stream
        if stream is not None and end == self._pos:
            return stream
        if (
            stream is None
            or self._pos < end
            or (not self.compressed and self._pos - end > SKIP_LIMIT)
        ):
            stream = self._reopen(0 if self.compressed else self._pos)
            end = self._buf_start
        # Read and discard up to the target (compressed objects, short skips).
        while end < self._pos:
            skipped = self._pull(stream, min(self._pos - end, 4 * BLOCK_SIZE))
            if not skipped:
                break
            end += len(skipped)
        self._buf = bytearray()
        self._buf_start = end
        return stream


class ObjectstoreFile(File):  # type: ignore[type-arg]
    """A ``django.core.files.File`` backed by an Objectstore object.

    Read mode streams (see :class:`RemoteReader`); write mode spools into a
    temporary file and uploads it to the same name on ``close()``.
    """

    def __init__(
        self, name: str, mode: str, remote: RemoteObject, upload: Callable[[IO[bytes]], None]
    ) -> None:
        self.name = name
        self.mode = mode
        self._remote = remote
        self._upload = upload
        self._dirty = False
        self.file: Any = self._make_file(mode)

    def _make_file(self, mode: str) -> Any:
        if "r" in mode and "+" not in mode:
            reader = self._remote.reader()
            return reader if "b" in mode else io.TextIOWrapper(io.BufferedReader(reader), "utf-8")
        if any(flag in mode for flag in "wax"):
            spool = tempfile.SpooledTemporaryFile(max_size=2 * 1024 * 1024, mode="w+b")  # noqa: SIM115
            self._dirty = True
            return spool if "b" in mode else io.TextIOWrapper(spool, "utf-8", write_through=True)
        raise ValueError(
            f"Unsupported mode {mode!r} for an Objectstore file; use 'rb', 'r', 'wb' or 'w'."
        )

    @property
    def size(self) -> int:
        reader = self._reader_or_none()
        if reader is not None:
            return reader.size
        return super().size

    @size.setter
    def size(self, value: int) -> None:
        self._size = value

    @property
    def metadata(self) -> Metadata | None:
        """The object's metadata (content type, filename, times, custom)."""
        reader = self._reader_or_none()
        return None if reader is None else reader.metadata

    def _reader_or_none(self) -> RemoteReader | None:
        file = self.file
        if isinstance(file, io.TextIOWrapper):
            file = file.buffer
        if isinstance(file, io.BufferedReader):
            file = file.raw
        return file if isinstance(file, RemoteReader) else None

    def open(self, mode: str | None = None, *args: Any, **kwargs: Any) -> ObjectstoreFile:
        # Never fall back to File.open(), which would open a same-named file
        # on the local disk once this one is closed.
        if not self.closed:
            self.seek(0)
            if mode is None or mode == self.mode:
                return self
            self.close()
        self.mode = mode or self.mode
        self.file = self._make_file(self.mode)
        return self

    def write(self, data: Any) -> int:
        if not self._dirty:
            raise io.UnsupportedOperation(
                f"{self.name!r} was opened for reading ({self.mode!r}); open it with 'wb' to write."
            )
        written: int = self.file.write(data)
        return written

    def close(self) -> None:
        file = self.file
        if file is None or file.closed:
            return
        try:
            if self._dirty:
                file.flush()
                raw = file.buffer if isinstance(file, io.TextIOWrapper) else file
                raw.seek(0)
                self._upload(raw)
        finally:
            self._dirty = False
            file.close()
