"""Django settings for the test suite. OBJECTSTORE is pointed at a local
server by the fixtures in ``django_objectstore.testing``."""

from __future__ import annotations

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "tests.urls"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_objectstore",
    "tests.testapp",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Tests point URL and TOKEN at a local server (django_objectstore.testing);
# port 9 (discard) makes any test that forgot to do so fail fast.
OBJECTSTORE = {
    "URL": "http://127.0.0.1:9",
    "USECASES": {
        "attachments": {"COMPRESSION": "zstd", "EXPIRATION": "tti:30d"},
        "plain": {"COMPRESSION": "none", "EXPIRATION": "ttl:1d"},
        "images": {"COMPRESSION": "none", "EXPIRATION": "manual"},
        "notes": {"EXPIRATION": "manual", "SCOPE": {"org": "org_id"}},
    },
}
