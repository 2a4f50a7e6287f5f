"""A download view for deployments where browsers cannot reach Objectstore.

Include ``django_objectstore.urls`` and either hand out signed links
(``ObjectstoreStorage(url_strategy="view")`` makes ``url()`` return them,
signed with Django's ``SECRET_KEY``) or configure
``OBJECTSTORE["DOWNLOAD_PERMISSION"]``, a callable (or dotted path)
``(request, usecase, name) -> bool`` that decides for unsigned requests.
Without either, unsigned requests are refused.

The object is streamed with bounded memory; a single ``Range`` is honoured
(206/416), compressed objects are sent decompressed with their logical length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Final, cast

from django.core.exceptions import PermissionDenied
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

_CHUNK: Final = 64 * 1024
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
    return download_url(storage.usecase, name, seconds)


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
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first.isdigit() or last.isdigit()):
        return None
    if not first.isdigit():
        length = int(last)
        if length == 0 or size == 0:
            raise ValueError("unsatisfiable")
        return max(size - length, 0), size - 1
    start = int(first)
    if last.isdigit() and int(last) < start:
        return None
    if start >= size:
        raise ValueError("unsatisfiable")
    end = int(last) if last.isdigit() else size - 1
    return start, min(end, size - 1)


def _stream(file: ObjectstoreFile, remaining: int) -> Iterator[bytes]:
    try:
        while remaining > 0:
            data = file.read(min(_CHUNK, remaining))
            if not data:
                break
            remaining -= len(data)
            yield data
    finally:
        file.close()


@require_safe
def download(request: HttpRequest, usecase: str, name: str) -> HttpResponseBase:
    if usecase not in objectstore_settings.usecases:
        raise Http404("Unknown usecase.")
    if not (_signed(request, usecase, name) or _permitted(request, usecase, name)):
        raise PermissionDenied("This download link is invalid or has expired.")
    storage = ObjectstoreStorage(usecase)
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
    if start:
        file.seek(start)
    length = max(end - start + 1, 0)
    response = StreamingHttpResponse(_stream(file, length), status=206 if byte_range else 200)
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
