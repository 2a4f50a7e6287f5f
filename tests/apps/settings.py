"""A site built as a new user would: Wagtail, easy-thumbnails, sorl-thumbnail,
django-cleanup, django-import-export and django-filer, every file in Objectstore.

Used by ``tests/apps`` only (``OBJECTSTORE_TEST_SETTINGS=tests.apps.settings``,
tox environments ``apps-django52`` and ``apps-django6``); the tests point
``OBJECTSTORE`` at a local server.
"""

from __future__ import annotations

from pathlib import Path

# The basics of the main test settings, shared rather than copied.
from tests.settings import (
    ALLOWED_HOSTS,
    DATABASES,
    DEBUG,
    DEFAULT_AUTO_FIELD,
    MIDDLEWARE,
    SECRET_KEY,
    TEMPLATES,
    TIME_ZONE,
    USE_TZ,
)

__all__ = [
    "ALLOWED_HOSTS",
    "DATABASES",
    "DEBUG",
    "DEFAULT_AUTO_FIELD",
    "MIDDLEWARE",
    "SECRET_KEY",
    "TEMPLATES",
    "TIME_ZONE",
    "USE_TZ",
]

HERE = Path(__file__).resolve().parent

ROOT_URLCONF = "tests.apps.urls"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "taggit",
    "modelcluster",
    "wagtail",
    "wagtail.admin",
    "wagtail.images",
    "wagtail.documents",
    "easy_thumbnails",
    "sorl.thumbnail",
    "import_export",
    "filer",
    "django_objectstore",
    "tests.apps.shop",
    # django-cleanup last, as its README asks.
    "django_cleanup.apps.CleanupConfig",
]

_OURS = "django_objectstore.storage.ObjectstoreStorage"
STORAGES = {
    # No OPTIONS: the usecase comes from OBJECTSTORE["DEFAULT_USECASE"], as for
    # apps (django-filer) that build the storage from BACKEND alone.
    "default": {"BACKEND": _OURS},
    "staticfiles": {"BACKEND": _OURS, "OPTIONS": {"usecase": "static", "url_bucket": 3600}},
    "easy_thumbnails": {"BACKEND": _OURS},
    "import_export": {"BACKEND": _OURS, "OPTIONS": {"usecase": "scratch"}},
}
STATIC_URL = "/static/"
STATICFILES_DIRS = [HERE / "static"]
# Tests point URL and TOKEN at a local server (django_objectstore.testing).
OBJECTSTORE = {
    "URL": "http://127.0.0.1:9",
    "DEFAULT_USECASE": "media",
    "USECASES": {
        "media": {"COMPRESSION": "none", "EXPIRATION": "manual"},
        "static": {"COMPRESSION": "none", "EXPIRATION": "manual"},
        "scratch": {"COMPRESSION": "zstd", "EXPIRATION": "ttl:1d"},
    },
}

WAGTAIL_SITE_NAME = "objectstore apps"
WAGTAILADMIN_BASE_URL = "http://testserver"
WAGTAILIMAGES_EXTENSIONS = ["gif", "jpg", "jpeg", "png", "webp", "svg"]
THUMBNAIL_DEBUG = True
IMPORT_EXPORT_TMP_STORAGE_CLASS = "import_export.tmp_storages.MediaStorage"
