"""How ``Session.get`` and ``Session.get_range`` turn a response into a
payload stream.

A zstd payload is decompressed by one of four pipelines, chosen from its
stored size and its first 64 KiB:

* small (under 4 MiB stored): zstandard's streaming reader on the socket;
* large, starting with a frame that records its size (our large puts: a
  frame per 2 MiB): the reader's thread reads the socket and cuts frames
  while several threads decode them (``FrameDecoder``);
* large, other frames (one big frame, as the official client writes):
  socket reads on a helper thread (``ReadAhead``) while the reader's thread
  decompresses with zstandard's streaming reader;
* large and stored in raw blocks (incompressible data): decoding is a copy,
  which large reads leave to the kernel by receiving the blocks in place
  (``RawBlocks``), on the reader's own thread.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import IO, Final, NamedTuple, cast

import zstandard
from urllib3.response import HTTPResponse

from django_objectstore import _protocol_parsing
from django_objectstore.client._frames import FrameDecoder, starts_with_sized_frame
from django_objectstore.client._io import BLOCK_SIZE
from django_objectstore.client._rawblocks import RawBlocks
from django_objectstore.client._response import (
    ReadAhead,
    Refilled,
    ResponseStream,
    read_first_block,
    skip_bytes,
)
from django_objectstore.client._zstd import starts_with_raw_block
from django_objectstore.client.errors import RequestError
from django_objectstore.client.metadata import Metadata

__all__ = ["GetResponse", "RangeResponse", "payload_stream", "range_payload"]

# Compressed bodies at least this big (or of unknown size) are decoded by
# one of the large-payload pipelines (decoding 8 MiB in 2 MiB frames on two
# threads took 12.4 ms against 11.1 ms for one thread; 32 MiB 26.6 ms
# against 33.4).
_READ_AHEAD_MIN: Final = 4 * BLOCK_SIZE
# Most threads decompressing the frames of one payload.
_DECODE_THREADS: Final = 4


class GetResponse(NamedTuple):
    """Result of ``Session.get``: the metadata and a readable, closeable
    binary stream of the payload (decompressed unless asked otherwise)."""

    metadata: Metadata
    payload: IO[bytes]


class RangeResponse(NamedTuple):
    """Result of ``Session.get_range``: bytes ``start``..``end`` (inclusive)
    of the object *as stored* (compressed bytes for a compressed object),
    and ``total_size``, the stored size of the whole object (``None`` only
    if the server ignored the range and did not report a size). When the
    range starts beyond the object, ``payload`` is empty and ``start`` equals
    ``total_size``."""

    metadata: Metadata
    payload: IO[bytes]
    start: int
    end: int
    total_size: int | None


def payload_stream(
    response: HTTPResponse,
    metadata: Metadata,
    *,
    decompress: bool,
    accept_encoding: Sequence[str] | None,
) -> IO[bytes]:
    """The body of a successful GET, decompressed unless ``decompress`` is
    false or its encoding is accepted. Clears ``metadata.compression`` when
    it decompresses."""
    payload = cast(IO[bytes], ResponseStream(response))
    accepted = accept_encoding is not None and (
        "*" in accept_encoding or metadata.compression in accept_encoding
    )
    if not metadata.compression or not decompress or accepted:
        return payload
    if metadata.compression != "zstd":
        payload.close()
        raise NotImplementedError(
            f"cannot decompress {metadata.compression!r} payloads, only zstd; "
            "pass decompress=False to read the stored bytes"
        )
    metadata.compression = None
    stored_size = response.length_remaining
    if stored_size is None:
        stored_size = metadata.size
    if stored_size is None or stored_size >= _READ_AHEAD_MIN:
        stream = cast(ResponseStream, payload)
        first, count = read_first_block(stream)
        head = memoryview(first)[:count]
        if starts_with_raw_block(head):
            # Incompressible data: raw blocks received in place (large
            # reads) or sliced out of 1 MiB reads, on this thread (see _rawblocks).
            return cast(IO[bytes], RawBlocks(Refilled(stream, first, count)))
        threads = min(os.cpu_count() or 1, _DECODE_THREADS)
        if threads > 1 and starts_with_sized_frame(head):
            # Many frames that record their size (our large puts): decoded
            # on several threads while this one reads the socket.
            return cast(IO[bytes], FrameDecoder(stream, threads, buffered=head))
        # One big frame: socket reads run in a helper thread while this one
        # decompresses (not worth a thread for small bodies).
        payload = cast(IO[bytes], ReadAhead(stream, first, count))
    # A fresh context per payload: payloads may be read interleaved.
    return zstandard.ZstdDecompressor().stream_reader(
        payload, read_size=BLOCK_SIZE, read_across_frames=True
    )


def range_payload(
    response: HTTPResponse, metadata: Metadata, start: int, end: int | None
) -> tuple[IO[bytes], int, int, int | None]:
    """(payload, first, last, total) for a range request answered 206, 416
    or 200 (a server that ignored the Range header: the range is cut out
    of the full body)."""
    if response.status == 416:
        response.drain_conn()
        response.release_conn()
        size = _content_range(response)[2] or 0
        return cast(IO[bytes], ResponseStream(response, limit=0)), size, size - 1, size
    if response.status == 206:
        first, final, whole = _content_range(response)
        if first is None or final is None or whole is None:
            response.close()
            response.release_conn()
            raise RequestError(
                "the server answered a range request without a complete Content-Range "
                f"({response.headers.get('content-range')!r})",
                206,
                None,
            )
        return cast(IO[bytes], ResponseStream(response)), first, final, whole
    total = metadata.size
    stream = cast(IO[bytes], ResponseStream(response))
    if start < 0:
        if total is None:
            stream.close()
            raise RequestError(
                "the server ignored the Range header and did not report the size, so a "
                "suffix range cannot be served",
                response.status,
                None,
            )
        start = max(total + start, 0)
    skip_bytes(stream, start)
    last = end if end is not None else (total - 1 if total is not None else -1)
    if total is not None:
        last = min(last, total - 1)
    limit = None if last < 0 and total is None else max(last - start + 1, 0)
    return cast(IO[bytes], ResponseStream(response, limit=limit)), start, last, total


def _content_range(response: HTTPResponse) -> tuple[int | None, int | None, int | None]:
    value = response.headers.get("content-range") or ""
    try:
        return _protocol_parsing.parse_content_range(value)
    except ValueError:
        if response.status == 416:
            return None, None, None  # the size is only informative here
        response.close()
        response.release_conn()
        raise RequestError(
            f"the server answered a range request with an unreadable Content-Range {value!r}",
            response.status,
            None,
        ) from None
