"""Optional URLs: ``path("files/", include("django_objectstore.urls"))``.

Gives ``django_objectstore:download`` (``<usecase>/<path:name>``).
"""

from __future__ import annotations

from django.urls import path

from django_objectstore.views import download

__all__ = ["app_name", "urlpatterns"]

app_name = "django_objectstore"
urlpatterns = [path("<str:usecase>/<path:name>", download, name="download")]
