"""Wire rules of resumable uploads (protocol section 20, official client
0.2.10): header and query names, the progress marker and the statuses a
client retries after. Beside ``_protocol`` (at its size limit) and like it:
pure, importing neither Django, the client nor the server."""

from __future__ import annotations

from typing import Final

__all__ = [
    "HEADER_UPLOAD_LENGTH",
    "HEADER_UPLOAD_OFFSET",
    "QUERY_SESSION",
    "QUERY_UPLOAD_TYPE",
    "RESUMABLE_TRANSIENT_STATUSES",
    "UPLOAD_OFFSET_QUERY",
    "UPLOAD_TYPE_RESUMABLE",
]

#: Total stored bytes, declared at create.
HEADER_UPLOAD_LENGTH: Final = "upload-length"
#: Where a chunk starts (request) or how many bytes the server holds (answer).
HEADER_UPLOAD_OFFSET: Final = "upload-offset"
#: ``Upload-Offset`` value of a progress request (no body).
UPLOAD_OFFSET_QUERY: Final = "*"
QUERY_UPLOAD_TYPE: Final = "upload_type"
QUERY_SESSION: Final = "session"
UPLOAD_TYPE_RESUMABLE: Final = "resumable"
#: Statuses a resumable upload retries after (plus timeouts and broken connections).
RESUMABLE_TRANSIENT_STATUSES: Final = frozenset({408, 429, 502, 503, 504})
