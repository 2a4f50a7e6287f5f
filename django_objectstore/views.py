"""A download view for deployments where browsers cannot reach Objectstore.

Include ``django_objectstore.urls`` and either hand out signed links
(``ObjectstoreStorage(url_strategy="view")`` makes ``url()`` return them,
signed with Django's ``SECRET_KEY``) or configure
``OBJECTSTORE["DOWNLOAD_PERMISSION"]``, a callable (or dotted path)
``(request, usecase, name) -> bool`` that decides for unsigned requests.
Without either, unsigned requests are refused.

The object is streamed with bounded memory under WSGI and ASGI alike (an
async iterator reading in a worker thread under ASGI, so the server never
buffers the body); a single ``Range`` is honoured (206/416), compressed objects
are sent decompressed with their logical length.

The name in the URL is canonicalised once (``\\`` becomes ``/``, the scope
segment made explicit), before the signature and the permission hook look at
it, so both judge exactly the name that is served.
"""

from __future__ import annotations

import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Final, cast

from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied, SuspiciousFileOperation
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.http import content_disposition_header
from django.utils.module_loading import import_string
from django.views.decorators.http import require_safe

from django_objectstore.conf import objectstore_settings
from django_objectstore.files import ObjectstoreFile
from django_objectstore.links import download_url, valid_download_signature
from django_objectstore.storage import ObjectstoreStorage

__all__ = ["download", "parse_range", "signed_download_url"]

#: Bytes per block handed to the server (one worker-thread hop each under ASGI).
_CHUNK: Final = 256 * 1024
#: One ``bytes=`` range bound: ASCII digits; longer values are treated as absent.
_BOUND: Final = re.compile(r"[0-9]{1,18}")
#: Content types safe to show inline; anything else is sent as an attachment
#: so uploaded HTML/SVG can never run script on this site.
_INLINE_TYPES: Final = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
    "video/",
    "audio/",
)


def signed_download_url(name: str, seconds: int, *, storage: ObjectstoreStorage) -> str:
    """A link to the download view valid for ``seconds``, signed with
    Django's ``SECRET_KEY`` (no network I/O)."""
    # Signed over the canonical name: the view checks that one.
    return download_url(storage.usecase, storage.canonical_name(name), seconds)


def _signed(request: HttpRequest, usecase: str, name: str) -> bool:
    expires, signature = request.GET.get("expires", ""), request.GET.get("signature", "")
    return valid_download_signature(usecase, name, expires, signature)


def _permitted(request: HttpRequest, usecase: str, name: str) -> bool:
    hook = objectstore_settings.download_permission
    if hook is None:
        return False
    check: Callable[[HttpRequest, str, str], bool] = (
        import_string(hook) if isinstance(hook, str) else hook
    )
    return bool(check(request, usecase, name))


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """Parse one ``bytes=`` range against ``size``; returns inclusive
    ``(start, end)``, ``None`` for no/ignored ranges (malformed or several),
    and raises ``ValueError`` when unsatisfiable."""
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = (part.strip() for part in spec.strip().partition("-"))
    has_first, has_last = bool(_BOUND.fullmatch(first)), bool(_BOUND.fullmatch(last))
    if not dash or (first and not has_first) or (last and not has_last):
        return None
    if not has_first:
        if not has_last:
            return None
        length = int(last)
        if length == 0 or size == 0:
            raise ValueError("unsatisfiable")
        return max(size - length, 0), size - 1
    start = int(first)
    if has_last and int(last) < start:
        return None
    if start >= size:
        raise ValueError("unsatisfiable")
    end = int(last) if has_last else size - 1
    return start, min(end, size - 1)


class _Blocks:
    """``remaining`` bytes of an open file, block by block; closes it at the
    end or when Django closes the response (whichever comes first)."""

    def __init__(self, file: ObjectstoreFile, remaining: int) -> None:
        self._file = file
        self._remaining = remaining
        # A client that disconnects under ASGI cancels the response while a
        # worker thread may still be reading: close() waits for that read.
        self._lock = threading.Lock()

    def read_block(self) -> bytes:
        with self._lock:
            if self._remaining <= 0 or self._file.closed:
                return b""
            data: bytes = self._file.read(min(_CHUNK, self._remaining))
            self._remaining = self._remaining - len(data) if data else 0
            return data

    def close(self) -> None:
        with self._lock:
            self._remaining = 0
            self._file.close()


class _SyncBlocks(_Blocks):
    """For WSGI: the server iterates in its own worker thread."""

    def __iter__(self) -> Iterator[bytes]:
        while data := self.read_block():
            yield data


class _AsyncBlocks(_Blocks):
    """For ASGI: each block is read in a worker thread, so neither the event
    loop blocks nor Django buffers the body to serve a sync iterator."""

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        data = await sync_to_async(self.read_block, thread_sensitive=False)()
        if not data:
            raise StopAsyncIteration
        return data


def _served_name(storage: ObjectstoreStorage, name: str) -> str:
    """The name the storage will serve for the URL's ``name``: checks and the
    permission hook must judge this one, not the raw URL text."""
    try:
        return storage.canonical_name(name)
    except SuspiciousFileOperation:
        raise Http404("No such object.") from None


@require_safe
def download(request: HttpRequest, usecase: str, name: str) -> HttpResponseBase:
    if usecase not in objectstore_settings.usecases:
        raise Http404("Unknown usecase.")
    storage = ObjectstoreStorage(usecase)
    name = _served_name(storage, name)
    if not (_signed(request, usecase, name) or _permitted(request, usecase, name)):
        raise PermissionDenied("This download link is invalid or has expired.")
    try:
        file = cast(ObjectstoreFile, storage.open(name))
    except FileNotFoundError:
        raise Http404("No such object.") from None
    size = file.size
    meta = file.metadata
    try:
        byte_range = parse_range(request.headers.get("Range", ""), size)
    except ValueError:
        file.close()
        refused = HttpResponse(status=416)
        refused["Content-Range"] = f"bytes */{size}"
        refused["Accept-Ranges"] = "bytes"
        return refused
    start, end = byte_range if byte_range is not None else (0, size - 1)
    length = max(end - start + 1, 0)
    status = 206 if byte_range else 200
    response: HttpResponseBase
    if request.method == "HEAD":
        # Headers only: servers do not all drop a HEAD response's body, and
        # reading the object just to discard it would cost a full download.
        file.close()
        response = HttpResponse(status=status)
    else:
        if start:
            file.seek(start)
        blocks = (_AsyncBlocks if isinstance(request, ASGIRequest) else _SyncBlocks)(file, length)
        response = StreamingHttpResponse(blocks, status=status)
    content_type = getattr(meta, "content_type", None) or "application/octet-stream"
    response["Content-Type"] = content_type
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    response["X-Content-Type-Options"] = "nosniff"
    if byte_range is not None:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    filename = getattr(meta, "filename", None) or name.rsplit("/", 1)[-1]
    inline = content_type.split(";")[0].strip().startswith(_INLINE_TYPES)
    disposition = content_disposition_header(
        as_attachment=not inline or request.GET.get("download") == "1", filename=filename
    )
    if disposition:
        response["Content-Disposition"] = disposition
    return response
