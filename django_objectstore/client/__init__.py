"""A fast, memory-bounded drop-in for the official ``objectstore-client``.

Code written for ``objectstore_client`` works by changing the import prefix
to ``django_objectstore.client``: the same names, signatures, defaults,
submodules and wire behaviour (0.2.x). On top of it: streaming compression
and decompression, parallel multipart uploads for large inputs, cached auth
tokens, byte-range reads (``Session.get_range``) and pooled connections.
This package never imports Django.
"""

from __future__ import annotations

from django_objectstore.client.auth import Permission, SecretKey, TokenGenerator, TokenProvider
from django_objectstore.client.client import (
    Client,
    GetResponse,
    RangeResponse,
    Session,
    Usecase,
)
from django_objectstore.client.errors import (
    ExpiryExtensionRejected,
    ObjectNotFound,
    ObjectstoreConnectionError,
    RequestError,
)
from django_objectstore.client.metadata import (
    Compression,
    ExpirationPolicy,
    Metadata,
    TimeToIdle,
    TimeToLive,
)
from django_objectstore.client.metrics import MetricsBackend, NoOpMetricsBackend
from django_objectstore.client.multipart import MultipartCompleteError, MultipartUpload
from django_objectstore.client.utils import parse_accept_encoding

__all__ = [
    "Client",
    "Compression",
    "ExpirationPolicy",
    "ExpiryExtensionRejected",
    "GetResponse",
    "Metadata",
    "MetricsBackend",
    "MultipartCompleteError",
    "MultipartUpload",
    "NoOpMetricsBackend",
    "ObjectNotFound",
    "ObjectstoreConnectionError",
    "Permission",
    "RangeResponse",
    "RequestError",
    "SecretKey",
    "Session",
    "TimeToIdle",
    "TimeToLive",
    "TokenGenerator",
    "TokenProvider",
    "Usecase",
    "parse_accept_encoding",
]
