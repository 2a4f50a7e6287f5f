from __future__ import annotations

from django.urls import include, path

from tests.serving.views import upload

urlpatterns = [
    path("files/", include("django_objectstore.urls")),
    path("upload/", upload),
]
