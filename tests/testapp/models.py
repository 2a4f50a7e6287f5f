from __future__ import annotations

from typing import Any

from django.db import models

from django_objectstore.fields import ObjectstoreFileField, ObjectstoreImageField
from django_objectstore.storage import ObjectstoreStorage


class Organization(models.Model):
    name = models.CharField(max_length=50)

    def __str__(self) -> str:
        return self.name


class Project(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    name = models.CharField(max_length=50)

    def __str__(self) -> str:
        return self.name


def project_scope(instance: Any) -> dict[str, Any]:
    return {"org": instance.project.organization_id, "project": instance.project_id}


class Document(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE)
    file = ObjectstoreFileField(
        usecase="attachments",
        scope={"org": "project.organization_id", "project": "project_id"},
    )
    attachment = ObjectstoreFileField(usecase="plain", scope=project_scope, blank=True)

    def __str__(self) -> str:
        return self.file.name or ""


class Photo(models.Model):
    image = ObjectstoreImageField(
        usecase="images", width_field="width", height_field="height", upload_to="photos/"
    )
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return self.image.name or ""


class Note(models.Model):
    """Scope from the usecase's SCOPE setting; upload_to names used as keys."""

    org_id = models.PositiveIntegerField(default=1)
    file = ObjectstoreFileField(
        usecase="notes",
        upload_to="notes/%Y/",
        storage=ObjectstoreStorage("notes"),
    )

    def __str__(self) -> str:
        return self.file.name or ""


class LegacyUpload(models.Model):
    """Files on Django's default storage (FileSystemStorage under
    MEDIA_ROOT), as a site has them before moving to Objectstore."""

    file = models.FileField(upload_to="legacy/")
    other = models.FileField(upload_to="other/", blank=True)

    def __str__(self) -> str:
        return self.file.name or ""
