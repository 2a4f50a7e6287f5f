"""Organizations own projects; projects own attachments and screenshots. Every
file lives in Objectstore under the ``attachments`` usecase, scoped by the
organization and the project it belongs to (``org=<id>;project=<id>``), so a
token for one project can never read another project's files."""

from __future__ import annotations

import mimetypes
import os

from django.core.files.uploadedfile import UploadedFile
from django.db import models, transaction
from django.db.models.fields.files import FieldFile
from django.db.models.signals import post_delete
from django.dispatch import receiver

from django_objectstore.fields import ObjectstoreFileField, ObjectstoreImageField

#: Scope of every demo file, read from the model instance when it is saved.
PROJECT_SCOPE = {"org": "project.organization_id", "project": "project_id"}


class Organization(models.Model):
    name = models.CharField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Project(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="projects"
    )
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["organization__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="unique_project_name")
        ]

    def __str__(self) -> str:
        return f"{self.organization.name} / {self.name}"


class Attachment(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="attachments")
    file = ObjectstoreFileField(usecase="attachments", scope=PROJECT_SCOPE, max_length=255)
    # What the uploader called the file and what the browser said it is. The
    # stored name is Objectstore's ``<scope>/<key>``, not the original name.
    filename = models.CharField(max_length=255, blank=True, editable=False)
    content_type = models.CharField(max_length=255, blank=True, editable=False)
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-uploaded_at", "-id"]

    def __str__(self) -> str:
        return self.filename or self.file.name or "(no file)"

    def save(self, *args: object, **kwargs: object) -> None:
        upload = self.file.file if self.file and not self.file._committed else None
        if upload is not None:
            self.filename = os.path.basename(upload.name or "")[:255]
            content_type = upload.content_type if isinstance(upload, UploadedFile) else None
            guessed, _ = mimetypes.guess_type(self.filename)
            self.content_type = (content_type or guessed or "application/octet-stream")[:255]
        super().save(*args, **kwargs)  # type: ignore[arg-type]


class Screenshot(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="screenshots")
    image = ObjectstoreImageField(
        usecase="attachments",
        scope=PROJECT_SCOPE,
        max_length=255,
        width_field="width",
        height_field="height",
    )
    width = models.PositiveIntegerField(null=True, blank=True, editable=False)
    height = models.PositiveIntegerField(null=True, blank=True, editable=False)
    caption = models.CharField(max_length=200, blank=True)
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-uploaded_at", "-id"]

    def __str__(self) -> str:
        return self.caption or self.image.name or "(no image)"


@receiver(post_delete, sender=Attachment)
@receiver(post_delete, sender=Screenshot)
def delete_stored_file(
    sender: type[models.Model], instance: models.Model, **kwargs: object
) -> None:
    """Django keeps files when rows go (admin deletes, cascades from a deleted
    project or organization). Delete the object too, once the transaction has
    committed. An object left behind would still go by itself when its
    expiration policy says so; deleting a missing object is not an error."""
    field_file: FieldFile = instance.image if isinstance(instance, Screenshot) else instance.file
    if field_file.name:
        storage, name = field_file.storage, field_file.name
        transaction.on_commit(lambda: storage.delete(name))
