"""Batch endpoint (section 12): placeholder until implemented."""

from __future__ import annotations

from django_objectstore.server.auth import Authorization
from django_objectstore.server.service import ClientError, Service
from django_objectstore.server.storage import Identity

__all__ = ["run_batch"]


def run_batch(
    service: Service,
    auth: Authorization,
    ident: Identity,
    boundary: str,
    raw: bytes,
    out_boundary: str,
) -> bytes:
    raise ClientError(501, "service error: not implemented")
