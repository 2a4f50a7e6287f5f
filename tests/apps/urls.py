from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path
from wagtail.documents import urls as wagtaildocs_urls
from wagtail.images.views.serve import ServeView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("documents/", include(wagtaildocs_urls)),
    re_path(
        r"^images/([^/]*)/(\d*)/([^/]*)/[^/]*$",
        ServeView.as_view(action="serve"),
        name="wagtailimages_serve",
    ),
    path("files/", include("django_objectstore.urls")),
]
