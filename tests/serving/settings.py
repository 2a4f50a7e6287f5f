"""Settings of the served test project, from the environment the parent sets:
``OBJECTSTORE_URL`` (required), ``OBJECTSTORE_KID`` and
``OBJECTSTORE_SECRET_KEY_FILE`` (optional: no token without them),
``OBJECTSTORE_USECASES`` (optional JSON, replaces the two usecases below).
``default_storage`` is the ``plain`` usecase (the upload view saves there)."""

from __future__ import annotations

import json
import os
from typing import Any

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "tests.serving.urls"
INSTALLED_APPS = ["django_objectstore"]
MIDDLEWARE: list[str] = []
DATABASES: dict[str, Any] = {}
_kid, _key_file = os.environ.get("OBJECTSTORE_KID"), os.environ.get("OBJECTSTORE_SECRET_KEY_FILE")
OBJECTSTORE = {
    "URL": os.environ["OBJECTSTORE_URL"],
    "TOKEN": {"KID": _kid, "SECRET_KEY_FILE": _key_file} if _kid and _key_file else None,
    # Every download is allowed: this project only ever listens on 127.0.0.1.
    "DOWNLOAD_PERMISSION": "tests.serving.settings.allow_all",
    "USECASES": json.loads(os.environ.get("OBJECTSTORE_USECASES", "null"))
    or {
        "plain": {"COMPRESSION": "none", "EXPIRATION": "manual"},
        "attachments": {"COMPRESSION": "zstd", "EXPIRATION": "manual"},
    },
}


STORAGES = {
    "default": {
        "BACKEND": "django_objectstore.storage.ObjectstoreStorage",
        "OPTIONS": {"usecase": "plain"},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}


def allow_all(request: Any, usecase: str, name: str) -> bool:
    return True
