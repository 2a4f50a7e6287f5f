from __future__ import annotations

from django.contrib import admin

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


@admin.register(Attachment)
class AttachmentAdmin(admin.ModelAdmin):
    list_display = ["filename", "project", "content_type", "uploaded_at"]
    list_filter = ["project"]
    readonly_fields = ["filename", "content_type", "uploaded_at"]


@admin.register(Screenshot)
class ScreenshotAdmin(admin.ModelAdmin):
    list_display = ["__str__", "project", "width", "height", "uploaded_at"]
    list_filter = ["project"]
    readonly_fields = ["width", "height", "uploaded_at"]
