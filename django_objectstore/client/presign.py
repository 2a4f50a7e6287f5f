"""Pre-signed URLs (protocol section 10): the constants of the official
module, the canonical form they sign, and the URL itself, computed locally
without a request (``Session.presigned_object_url``)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Final, cast

from django_objectstore import _protocol
from django_objectstore.client.auth import SecretKey

__all__ = [
    "MAX_PRESIGN_DURATION",
    "PARAM_DURATION",
    "PARAM_KID",
    "PARAM_SIG",
    "PARAM_TIMESTAMP",
    "SUPPORTED_METHODS",
    "build_canonical_form",
    "check_presign",
    "presigned_url",
]

PARAM_TIMESTAMP: Final = _protocol.PARAM_TIMESTAMP
PARAM_DURATION: Final = _protocol.PARAM_DURATION
PARAM_KID: Final = _protocol.PARAM_KID
PARAM_SIG: Final = _protocol.PARAM_SIG
MAX_PRESIGN_DURATION: Final = timedelta(seconds=_protocol.MAX_PRESIGN_SECONDS)
SUPPORTED_METHODS: Final = ("GET", "HEAD")


def build_canonical_form(method: str, encoded_path: str, encoded_query: str) -> str:
    """The string signed for a pre-signed request; path and query exactly as
    sent on the wire (already percent-encoded)."""
    return _protocol.presign_canonical_string(method, encoded_path, encoded_query)


def check_presign(token: object, method: str, duration: timedelta) -> None:
    """``ValueError`` if ``token`` cannot sign ``method`` for ``duration``."""
    if method not in SUPPORTED_METHODS:
        raise ValueError(
            f"unsupported pre-signed method {method!r}, expected one of {SUPPORTED_METHODS}"
        )
    if not isinstance(token, SecretKey):
        raise ValueError("no secret key configured on this session")
    if duration > MAX_PRESIGN_DURATION:
        raise ValueError(f"duration {duration} exceeds the maximum of {MAX_PRESIGN_DURATION}")


def presigned_url(token: object, method: str, origin: str, path: str, duration: timedelta) -> str:
    """``origin`` + ``path`` (encoded) signed with ``token`` (a ``SecretKey``)
    for ``method`` during ``duration`` from now; ``ValueError`` for what
    cannot be signed."""
    check_presign(token, method, duration)
    key = cast(SecretKey, token)  # checked above
    seconds = math.ceil(duration.total_seconds())
    timestamp = datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    query = _protocol.encode_query_value(
        f"{PARAM_KID}={key.kid}&{PARAM_TIMESTAMP}={timestamp}&{PARAM_DURATION}={seconds}"
    )
    signature = key.signature_for_canonical_form(build_canonical_form(method, path, query))
    return f"{origin}{path}?{query}&{PARAM_SIG}={signature}"
