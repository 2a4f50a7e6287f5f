"""Upload bodies: what ``ObjectstoreStorage.save()`` sends for Django's content.

Django hands storages ``ContentFile`` (bytes or str), in-memory and temporary
uploads, plain and non-seekable files and other storages' files.
:func:`body_of` turns any of them into something the client can stream, with
its size when known without reading and its first bytes for content-type
sniffing, and never closes the caller's file. Files the body opened itself
(a temporary upload's path, a spool) are closed by :meth:`UploadBody.close`.
"""

from __future__ import annotations

import io
import mimetypes
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, Final, cast

import filetype

__all__ = [
    "SNIFF_BYTES",
    "SPOOL_MEMORY",
    "NonClosing",
    "UploadBody",
    "body_of",
    "body_of_spool",
    "content_type_of",
    "guess_type",
    "sniff_type",
    "spooled",
]

#: Bytes read from the start of a body to sniff its type (what filetype needs).
SNIFF_BYTES: Final = 262
#: Unknown-size uploads to compressed usecases are spooled; this much in memory.
SPOOL_MEMORY: Final = 8 * 1024 * 1024
#: Read size when copying a body into a spool.
_COPY_BLOCK: Final = 64 * 1024


class _Readable(io.RawIOBase):
    """Shared ``readinto`` for the read-only adapters below."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)


class NonClosing(_Readable):
    """A read-only view of a caller's file that never closes it (str reads
    from a text-mode file are UTF-8 encoded)."""

    def __init__(self, raw: IO[Any]) -> None:
        super().__init__()
        self._raw = raw

    def seekable(self) -> bool:
        try:
            return bool(self._raw.seekable())
        except (AttributeError, ValueError):
            return False

    def read(self, size: int | None = -1) -> bytes:
        data: Any = self._raw.read(-1 if size is None else size)
        return data.encode("utf-8") if isinstance(data, str) else data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()


class OwnedFile(_Readable):
    """A binary file this module opened (a temporary upload's path, a spool):
    seekable, and closed with the body."""

    def __init__(self, file: IO[bytes]) -> None:
        super().__init__()
        self.file = file

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self.file.read(-1 if size is None else size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.file.seek(offset, whence)

    def tell(self) -> int:
        return self.file.tell()

    def fileno(self) -> int:
        return self.file.fileno()

    def close(self) -> None:
        self.file.close()
        super().close()


class ChunkStream(_Readable):
    """Bytes from an iterator of chunks (str chunks are UTF-8 encoded)."""

    def __init__(self, head: bytes, chunks: Iterator[bytes | str]) -> None:
        super().__init__()
        self._pending = head
        self._chunks = chunks

    def read(self, size: int | None = -1) -> bytes:
        want = -1 if size is None or size < 0 else size
        out = bytearray()
        while want < 0 or len(out) < want:
            if not self._pending:
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._pending = chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk)
                continue
            take = len(self._pending) if want < 0 else want - len(out)
            out += self._pending[:take]
            self._pending = self._pending[take:]
        return bytes(out)


@dataclass
class UploadBody:
    """What to send: ``data`` (bytes or a readable binary stream), its size
    in bytes if known without reading it, and its first bytes."""

    data: bytes | IO[bytes]
    size: int | None
    head: bytes

    def close(self) -> None:
        """Close what this module opened; the caller's file stays open."""
        if isinstance(self.data, OwnedFile | ChunkStream):
            self.data.close()


def body_of(content: Any) -> UploadBody:
    """Turn Django's content object into an :class:`UploadBody`. Never
    closes ``content``."""
    temp_path = getattr(content, "temporary_file_path", None)
    if callable(temp_path):
        owned = OwnedFile(open(temp_path(), "rb"))  # noqa: SIM115 - closed by UploadBody.close
        size = owned.seek(0, io.SEEK_END)
        owned.seek(0)
        head = owned.read(SNIFF_BYTES)
        owned.seek(0)
        return UploadBody(cast(IO[bytes], owned), size, head)
    raw = getattr(content, "file", content)
    if isinstance(raw, io.StringIO):
        data = raw.getvalue().encode("utf-8")
        return UploadBody(data, len(data), data[:SNIFF_BYTES])
    if isinstance(raw, io.BytesIO):
        data = raw.getvalue()
        return UploadBody(data, len(data), data[:SNIFF_BYTES])
    try:
        seekable = bool(raw.seekable())
    except (AttributeError, ValueError, OSError):
        seekable = False
    if seekable:
        try:
            start = raw.seek(0)
            size = raw.seek(0, io.SEEK_END) - start
            raw.seek(0)
            head = raw.read(SNIFF_BYTES)
            raw.seek(0)
        except (OSError, ValueError):
            pass
        else:
            if isinstance(head, str):
                # A text-mode file: sizes are in characters, so encode chunks.
                return UploadBody(
                    cast(IO[bytes], ChunkStream(b"", content.chunks())), None, head.encode()
                )
            return UploadBody(cast(IO[bytes], NonClosing(raw)), size, head)
    # Non-seekable (e.g. an urlopen() response): read the head, then chain.
    chunks = (
        iter(content.chunks()) if hasattr(content, "chunks") else iter(lambda: raw.read(65536), b"")
    )
    first = next(chunks, b"")
    first_bytes = first.encode("utf-8") if isinstance(first, str) else bytes(first)
    return UploadBody(
        cast(IO[bytes], ChunkStream(first_bytes, chunks)), None, first_bytes[:SNIFF_BYTES]
    )


def body_of_spool(raw: IO[bytes]) -> UploadBody:
    """The body of a write-mode file's seekable spool (left open)."""
    size = raw.seek(0, io.SEEK_END)
    raw.seek(0)
    head = raw.read(SNIFF_BYTES)
    raw.seek(0)
    return UploadBody(cast(IO[bytes], NonClosing(raw)), size, head)


def spooled(body: UploadBody) -> UploadBody:
    """Copy a body of unknown size into a spool (``SPOOL_MEMORY`` in memory,
    then a temporary file) to learn its size; closes ``body``."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115 - owned below
    try:
        source = body.data
        if isinstance(source, bytes):
            spool.write(source)
        else:
            while block := source.read(_COPY_BLOCK):
                spool.write(block)
    except BaseException:
        spool.close()
        raise
    finally:
        body.close()
    size = spool.tell()
    spool.seek(0)
    return UploadBody(cast(IO[bytes], OwnedFile(cast(IO[bytes], spool))), size, body.head)


def declared_content_type(content: Any) -> str | None:
    """The content type an upload declared (``UploadedFile.content_type``)."""
    for obj in (content, getattr(content, "file", None)):
        value = getattr(obj, "content_type", None)
        if isinstance(value, str) and "/" in value:
            charset = getattr(obj, "charset", None)
            return f"{value}; charset={charset}" if charset else value
    return None


def sniff_type(head: bytes) -> str | None:
    """The media type the first bytes reveal, if any."""
    if not head:
        return None
    kind = filetype.guess(head)
    return None if kind is None else str(kind.mime)


def guess_type(name: str) -> str:
    """The media type the name's extension suggests, else octet-stream."""
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


def content_type_of(content: Any, head: bytes, name: str) -> str:
    """Declared by the upload, else sniffed from the bytes, else guessed from
    the name."""
    return declared_content_type(content) or sniff_type(head) or guess_type(name)
