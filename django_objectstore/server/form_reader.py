"""An incremental ``multipart/form-data`` reader for the batch endpoint
(section 12.1): parts come out one at a time while the request body is still
arriving, and memory stays bounded whatever the body size or part count (a
part body beyond ``max_body`` bytes is counted, not kept)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["FormError", "FormPart", "FormReader"]

#: Most bytes of header lines (and of transport padding) in one part.
MAX_PART_HEADER = 64 * 1024
MAX_PART_FIELDS = 100


class FormError(ValueError):
    """The body is not a well-formed multipart document; the message says
    what is wrong."""


@dataclass(frozen=True)
class FormPart:
    """One part: its header fields (names lower-cased), the first
    ``max_body + 1`` bytes of its body and the body's full size."""

    headers: list[tuple[str, str]]
    body: bytes
    size: int


class FormReader:
    """Reads parts from ``chunks`` (the request body as it arrives) for the
    given boundary. ``start()`` consumes the preamble and the first
    delimiter (``FormError`` if there is none); iterating then yields the
    parts up to the closing delimiter. ``max_total`` bounds the whole body."""

    def __init__(
        self,
        chunks: Iterable[bytes | bytearray | memoryview],
        boundary: str,
        *,
        max_body: int,
        max_total: int,
    ) -> None:
        self._chunks = iter(chunks)
        self._delimiter = b"\r\n--" + boundary.encode("latin-1")
        # The first delimiter may open the body: it then has no CRLF before it.
        self._buffer = bytearray(b"\r\n")
        self._max_body = max_body
        self._max_total = max_total
        self._total = 0
        self._eof = False

    def _fill(self) -> bool:
        """Append the next chunk; False at the end of the body."""
        if self._eof:
            return False
        for chunk in self._chunks:
            if not chunk:
                continue
            self._total += len(chunk)
            if self._total > self._max_total:
                raise FormError(f"body larger than the limit of {self._max_total} bytes")
            self._buffer += chunk
            return True
        self._eof = True
        return False

    def start(self) -> None:
        keep = len(self._delimiter) - 1
        while True:
            index = self._buffer.find(self._delimiter)
            if index >= 0:
                del self._buffer[: index + len(self._delimiter)]
                return
            del self._buffer[: max(0, len(self._buffer) - keep)]  # preamble
            if not self._fill():
                raise FormError("no multipart boundary found in the body")

    def _until(self, needle: bytes, limit: int, what: str) -> int:
        """Index of ``needle`` in the buffer, reading on as needed; a
        ``FormError`` when it is not within ``limit`` bytes."""
        while True:
            index = self._buffer.find(needle)
            if index > limit or (index < 0 and len(self._buffer) > limit + len(needle)):
                raise FormError(f"{what} longer than {limit} bytes")
            if index >= 0:
                return index
            if not self._fill():
                raise FormError(f"body ends inside {what}")

    def _headers(self) -> list[tuple[str, str]]:
        while len(self._buffer) < 2:
            if not self._fill():
                raise FormError("body ends inside part headers")
        if self._buffer.startswith(b"\r\n"):  # a part without header lines
            del self._buffer[:2]
            return []
        end = self._until(b"\r\n\r\n", MAX_PART_HEADER, "part headers")
        block = bytes(self._buffer[:end])
        del self._buffer[: end + 4]
        fields: list[tuple[str, str]] = []
        for line in block.split(b"\r\n"):
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon or not name.strip():
                raise FormError("malformed part header (expected 'name: value')")
            fields.append((name.strip().lower(), value.strip()))
        if len(fields) > MAX_PART_FIELDS:
            raise FormError(f"more than {MAX_PART_FIELDS} header fields in a part")
        return fields

    def _body(self) -> tuple[bytes, int]:
        kept = bytearray()
        size = 0
        keep_tail = len(self._delimiter) - 1
        while True:
            # What is left of the buffer after a search is shorter than the
            # delimiter, so each byte is searched about once.
            index = self._buffer.find(self._delimiter)
            take = index if index >= 0 else max(0, len(self._buffer) - keep_tail)
            room = self._max_body + 1 - len(kept)
            if room > 0:
                kept += self._buffer[: min(take, room)]
            size += take
            if index >= 0:
                del self._buffer[: index + len(self._delimiter)]
                return bytes(kept), size
            del self._buffer[:take]
            if not self._fill():
                raise FormError("body ends without the closing boundary")

    def __iter__(self) -> Iterator[FormPart]:
        while True:
            while len(self._buffer) < 2:
                if not self._fill():
                    raise FormError("body ends after a delimiter")
            if self._buffer.startswith(b"--"):
                return  # the closing delimiter; the epilogue is ignored
            # Transport padding (whitespace) up to the end of the delimiter line.
            end = self._until(b"\r\n", MAX_PART_HEADER, "a delimiter line")
            del self._buffer[: end + 2]
            headers = self._headers()
            body, size = self._body()
            yield FormPart(headers, body, size)
