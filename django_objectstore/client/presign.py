"""Pre-signed URL constants and the canonical form they sign (protocol
section 10). URLs themselves come from ``Session.presigned_object_url``,
computed locally without a request."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from django_objectstore import _protocol

__all__ = [
    "MAX_PRESIGN_DURATION",
    "PARAM_DURATION",
    "PARAM_KID",
    "PARAM_SIG",
    "PARAM_TIMESTAMP",
    "SUPPORTED_METHODS",
    "build_canonical_form",
]

PARAM_TIMESTAMP: Final = "os_timestamp"
PARAM_DURATION: Final = "os_duration"
PARAM_KID: Final = "os_kid"
PARAM_SIG: Final = "os_sig"
MAX_PRESIGN_DURATION: Final = timedelta(seconds=_protocol.MAX_PRESIGN_SECONDS)
SUPPORTED_METHODS: Final = ("GET", "HEAD")


def build_canonical_form(method: str, encoded_path: str, encoded_query: str) -> str:
    """The string signed for a pre-signed request; path and query exactly as
    sent on the wire (already percent-encoded)."""
    return _protocol.presign_canonical_string(method, encoded_path, encoded_query)
