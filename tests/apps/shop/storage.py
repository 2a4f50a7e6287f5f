"""Hashed static files in Objectstore: the two lines the README shows."""

from __future__ import annotations

from typing import Any

from django.contrib.staticfiles.storage import ManifestFilesMixin

from django_objectstore.storage import ObjectstoreStorage


class ObjectstoreManifestStorage(ManifestFilesMixin, ObjectstoreStorage):  # type: ignore[misc]
    pass


def static_is_public(request: Any, usecase: str, name: str) -> bool:
    """DOWNLOAD_PERMISSION: anyone may read the static usecase."""
    return usecase == "static"
