from __future__ import annotations

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from testproject.demo.models import Attachment, Organization, Project, Screenshot


class ProjectInline(admin.TabularInline):
    model = Project
    extra = 0


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "id"]
    inlines = [ProjectInline]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "id"]
    list_filter = ["organization"]


class ScopedFileAdmin(admin.ModelAdmin):
    """The project is fixed once a file is stored: the scope is part of the
    stored name, so moving the row would not move the object."""

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "project"] if obj is not None else fields


@admin.register(Attachment)
class AttachmentAdmin(ScopedFileAdmin):
    list_display = ["filename", "project", "content_type", "uploaded_at"]
    list_filter = ["project"]
    readonly_fields = ["filename", "content_type", "uploaded_at"]


@admin.register(Screenshot)
class ScreenshotAdmin(ScopedFileAdmin):
    list_display = ["__str__", "project", "width", "height", "uploaded_at"]
    list_filter = ["project"]
    readonly_fields = ["width", "height", "uploaded_at"]
