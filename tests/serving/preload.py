"""``gunicorn --preload tests.serving.preload:application``: the WSGI app,
plus what a preloaded site does at import time: the shared client
(``get_client()``) makes a request, so the gunicorn master holds a pooled
keep-alive connection when it forks its workers."""

from __future__ import annotations

from django.core.files.storage import default_storage

from django_objectstore.factory import get_client
from tests.serving.wsgi import application

get_client()
# One request before the fork: a HEAD through the shared client leaves its
# connection idle in the pool the workers inherit.
default_storage.exists("preload/warm-up.bin")

__all__ = ["application"]
