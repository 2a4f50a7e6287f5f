"""Settings of the demo site. Everything the demo writes (database, key pair,
objects) goes to ``testproject/data/`` (or ``DEMO_DATA_DIR``); delete that folder
to start over. See ``testproject/embedded.py`` for where Objectstore comes from."""

from __future__ import annotations

import os
from pathlib import Path

from testproject.embedded import objectstore_settings

BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = Path(os.environ.get("DEMO_DATA_DIR") or BASE_DIR / "data").resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

# A demo on localhost: not a deployment. Never reuse this key.
SECRET_KEY = "demo-only-insecure-secret-key"
DEBUG = os.environ.get("DEMO_DEBUG", "1") == "1"
ALLOWED_HOSTS = os.environ.get("DEMO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_objectstore",
    "testproject.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "testproject.urls"
WSGI_APPLICATION = "testproject.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "testproject.demo.context_processors.objectstore",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "db.sqlite3",
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
LOGIN_URL = "admin:login"

# Uploads over 2.5 MB (Django's default threshold) are spooled to a temporary
# file, which the storage streams to Objectstore without reading it into memory.

# One usecase for every file of the demo. Its expiration comes from here (or
# DEMO_EXPIRATION): "tti:30d" keeps a file while it is read at least once a
# month; try "ttl:2m" to watch files expire.
OBJECTSTORE = objectstore_settings(
    DATA_DIR,
    usecases={
        "attachments": {
            "COMPRESSION": "zstd",
            "EXPIRATION": os.environ.get("DEMO_EXPIRATION", "tti:30d"),
        },
    },
)
