"""Byte plumbing shared by uploads and downloads: the types of what a put
accepts, its size when cheap to tell, reading it in big blocks, counting the
bytes, and the one seam where urllib3's transport errors become ours.
Nothing here holds more than a block."""

from __future__ import annotations

import io
import json
import os
import ssl
from collections.abc import Generator, Iterable
from typing import IO, Final, TypeAlias, cast

import urllib3

from django_objectstore.client.errors import (
    ObjectstoreConnectionError,
    RequestError,
    transport_error,
)

__all__ = [
    "BLOCK_SIZE",
    "SEND_CHUNK",
    "Body",
    "Buffer",
    "Counter",
    "check_same_process",
    "counted",
    "iter_source",
    "known_size",
    "plain_chunks",
    "read_json",
    "translate_transport_error",
]

#: Read and write block size: large enough that per-block Python overhead
#: is negligible next to the copy, small enough to stay cache-friendly.
BLOCK_SIZE: Final = 1024 * 1024

#: Size of the pieces of a chunked request body.
SEND_CHUNK: Final = 64 * 1024

#: A block of bytes, sliced or read.
Buffer: TypeAlias = bytes | bytearray | memoryview
#: Anything ``Session.put`` accepts as contents.
Body: TypeAlias = bytes | bytearray | memoryview | IO[bytes] | Iterable[bytes]


def read_json(response: urllib3.response.HTTPResponse) -> dict[str, object]:
    """The JSON object in a (preloaded) successful response body; a
    ``RequestError`` naming what came instead if it is not one."""
    text = (response.data or b"").decode("utf-8", "replace")
    try:
        data: object = json.loads(text)
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise RequestError(
            f"Objectstore answered {response.status} with a body that is not a JSON object",
            response.status,
            text,
        )
    return data


def translate_transport_error(exc: Exception, what: str) -> ObjectstoreConnectionError:
    """The one seam where transport errors become ours: urllib3's error (or,
    for the socket reads that bypass urllib3, the error urllib3 would have
    raised) as an ``ObjectstoreConnectionError`` of the same class."""
    if not isinstance(exc, urllib3.exceptions.HTTPError):
        exc = _as_urllib3_error(exc)
    return transport_error(exc, what)


def _as_urllib3_error(exc: Exception) -> urllib3.exceptions.HTTPError:
    """What urllib3's response reader raises for ``exc`` from the socket."""
    if isinstance(exc, TimeoutError):
        return urllib3.exceptions.ReadTimeoutError(None, None, "Read timed out.")  # type: ignore[arg-type]
    if isinstance(exc, ssl.SSLError):
        return urllib3.exceptions.SSLError(exc)
    return urllib3.exceptions.ProtocolError(f"Connection broken: {exc!r}", exc)


def check_same_process(opened_by: int) -> None:
    """``RuntimeError`` if this is not the process ``opened_by``: a payload
    opened before a ``fork`` shares its socket with the parent (and its helper
    threads did not survive the fork), so a child must not read it."""
    if os.getpid() != opened_by:
        raise RuntimeError(
            f"this payload was opened in process {opened_by}, before a fork; a forked "
            "process cannot read it (its connection belongs to the parent): call get() "
            "again in this process"
        )


def known_size(contents: object) -> int | None:
    """Bytes left in ``contents`` if that is cheap to tell, else ``None``."""
    if isinstance(contents, bytes | bytearray):
        return len(contents)
    if isinstance(contents, memoryview):
        return contents.nbytes
    seekable = getattr(contents, "seekable", None)
    try:
        if callable(seekable) and seekable():
            position: int = contents.tell()  # type: ignore[attr-defined]
            end: int = contents.seek(0, io.SEEK_END)  # type: ignore[attr-defined]
            contents.seek(position)  # type: ignore[attr-defined]
            return max(end - position, 0)
    except (OSError, ValueError, AttributeError):
        return None
    return None


def iter_source(
    contents: Body, block_size: int = BLOCK_SIZE, *, reuse: bool = False
) -> Generator[Buffer]:
    """Yield the contents in blocks of at most ``block_size`` bytes (iterables
    are passed through as they come). Byte strings are sliced without copying.
    With ``reuse``, file blocks are read into one buffer that the next block
    overwrites (no allocation per block): the consumer must be done with a
    block before asking for the next."""
    if isinstance(contents, bytes | bytearray | memoryview):
        view = memoryview(contents).cast("B")
        for start in range(0, view.nbytes, block_size):
            yield view[start : start + block_size]
        return
    readinto = getattr(contents, "readinto", None) if reuse else None
    if callable(readinto):
        buffer = bytearray(block_size)
        window = memoryview(buffer)
        while True:
            count = readinto(window)
            if count is None:
                raise TypeError("put() cannot read from a non-blocking stream with no data ready")
            if not count:
                return
            yield window[:count]
    read = getattr(contents, "read", None)
    if callable(read):
        while True:
            block: object = read(block_size)
            if not block:
                return
            if not isinstance(block, bytes | bytearray | memoryview):
                raise TypeError(
                    f"put() needs a binary stream, but read() returned {type(block).__name__}; "
                    "open files in binary mode ('rb')"
                )
            yield block
    if isinstance(cast(object, contents), str):
        raise TypeError("put() needs bytes or a binary stream, not str; encode it first")
    for item in contents:
        block = cast(object, item)
        if not isinstance(block, bytes | bytearray | memoryview):
            raise TypeError(
                f"put() got an iterable yielding {type(block).__name__}; it must yield bytes"
            )
        if block:
            yield block


class Counter:
    """Counts bytes flowing through a generator (for metrics): ``source``
    bytes read from the input, ``stored`` bytes sent."""

    __slots__ = ("source", "stored")

    def __init__(self) -> None:
        self.source = 0
        self.stored = 0


def counted(blocks: Iterable[Buffer], counter: Counter) -> Generator[Buffer]:
    """``blocks``, added to ``counter.source`` as they are read."""
    for block in blocks:
        counter.source += memoryview(block).nbytes
        yield block


def plain_chunks(
    contents: Body, counter: Counter, *, block_size: int = BLOCK_SIZE
) -> Generator[Buffer]:
    """A chunked request body of ``contents`` as they are: read in big blocks
    (into one reused buffer), sent in ``SEND_CHUNK`` pieces (urllib3 copies
    each piece into its chunk framing: small pieces keep that copy in reused
    heap memory)."""
    for block in iter_source(contents, block_size, reuse=True):
        view = memoryview(block).cast("B")
        counter.source += view.nbytes
        counter.stored += view.nbytes
        for start in range(0, view.nbytes, SEND_CHUNK):
            yield view[start : start + SEND_CHUNK]
