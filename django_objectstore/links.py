"""Links a browser can follow, made and checked without network I/O.

* Download-view links (``url_strategy="view"``): signed with Django's
  ``SECRET_KEY``; :func:`download_url` makes them for the storage and
  :func:`valid_download_signature` checks them in the view.
* Pre-signed Objectstore URLs that stay byte-identical for a while
  (``url_bucket``): :func:`bucketed_presigned_url`.
"""

from __future__ import annotations

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
    "download_signature",
    "download_url",
    "valid_download_signature",
]

_SALT: Final = "django_objectstore.download"


def download_signature(usecase: str, name: str, expires: int) -> str:
    """The signature of a download link for ``name`` valid until ``expires``."""
    return signing.Signer(salt=_SALT).signature(f"{usecase}\n{name}\n{expires}")


def download_url(usecase: str, name: str, seconds: int) -> str:
    """A link to the download view valid for ``seconds``."""
    expires = int(time.time()) + int(seconds)
    path = reverse("django_objectstore:download", kwargs={"usecase": usecase, "name": name})
    query = urlencode(
        {"expires": str(expires), "signature": download_signature(usecase, name, expires)}
    )
    return f"{path}?{query}"


def valid_download_signature(usecase: str, name: str, expires: str, signature: str) -> bool:
    """Whether a link's ``expires`` and ``signature`` query values are
    authentic and not yet expired."""
    if not expires.isdigit() or not signature or int(expires) < time.time():
        return False
    return constant_time_compare(signature, download_signature(usecase, name, int(expires)))


def bucketed_presigned_url(
    token: SecretKey, base_url: str, usecase: str, name: str, seconds: int, bucket: int
) -> str:
    """A pre-signed GET URL of stored ``name`` (``<scope>/<key>``) that stays
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
