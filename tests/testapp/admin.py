from __future__ import annotations

from django.contrib import admin

from tests.testapp.models import Document, Photo

admin.site.register(Document)
admin.site.register(Photo)
