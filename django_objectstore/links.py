"""Links a browser can follow, made and checked without network I/O.

* Download-view links (``url_strategy="view"``): signed with Django's
  ``SECRET_KEY``; :func:`download_url` makes them for the storage and
  :func:`valid_download_signature` checks them in the view.
* Pre-signed Objectstore URLs that stay byte-identical for a while
  (``url_bucket``): :func:`bucketed_presigned_url`.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Final
from urllib.parse import urlsplit

from django.core import signing
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.utils.http import urlencode

from django_objectstore._protocol import (
    MAX_PRESIGN_SECONDS,
    encode_path,
    encode_query_value,
    presign_canonical_string,
)
from django_objectstore.client import SecretKey

__all__ = [
    "bucketed_presigned_url",
    "download_path",
    "download_signature",
    "download_url",
    "valid_download_signature",
]

_SALT: Final = "django_objectstore.download"
#: ``expires`` is a Unix time: ASCII digits, at most 12 of them (year 33658).
_EXPIRES: Final = re.compile(r"[0-9]{1,12}")


def download_signature(usecase: str, name: str, expires: int) -> str:
    """The signature of a download link for ``name`` valid until ``expires``."""
    return signing.Signer(salt=_SALT).signature(f"{usecase}\n{name}\n{expires}")


def download_path(usecase: str, name: str) -> str:
    """The download view's unsigned URL path for ``name`` (served only if
    ``DOWNLOAD_PERMISSION`` allows the request)."""
    return reverse("django_objectstore:download", kwargs={"usecase": usecase, "name": name})


def download_url(usecase: str, name: str, seconds: int) -> str:
    """A link to the download view valid for ``seconds``."""
    expires = int(time.time()) + int(seconds)
    path = download_path(usecase, name)
    query = urlencode(
        {"expires": str(expires), "signature": download_signature(usecase, name, expires)}
    )
    return f"{path}?{query}"


def valid_download_signature(usecase: str, name: str, expires: str, signature: str) -> bool:
    """Whether a link's ``expires`` and ``signature`` query values are
    authentic and not yet expired."""
    # fullmatch, not str.isdigit(): that accepts "²" and 5,000-digit numbers,
    # which int() then refuses (a 500 instead of a 403).
    if not _EXPIRES.fullmatch(expires) or not signature or int(expires) < time.time():
        return False
    return constant_time_compare(signature, download_signature(usecase, name, int(expires)))


def bucketed_presigned_url(
    token: SecretKey, base_url: str, usecase: str, name: str, seconds: int, bucket: int
) -> str:
    """A pre-signed GET URL of ``name`` (``<scope>/<key>`` as on the wire) that stays
    byte-identical for ``bucket`` seconds (so browsers and CDNs can cache it):
    the signing time is rounded down to the bucket and the validity stretched
    by one bucket, so it is still valid for at least ``seconds`` whenever it is
    handed out."""
    now = int(time.time())
    signed_at = now - now % bucket
    duration = min(seconds + bucket, MAX_PRESIGN_SECONDS)
    parts = urlsplit(base_url)
    path = encode_path(f"{parts.path}/v1/objects/{usecase}/{name}")
    stamp = datetime.fromtimestamp(signed_at, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    query = encode_query_value(f"os_kid={token.kid}&os_timestamp={stamp}&os_duration={duration}")
    signature = token.signature_for_canonical_form(presign_canonical_string("GET", path, query))
    return f"{parts.scheme}://{parts.netloc}{path}?{query}&os_sig={signature}"
