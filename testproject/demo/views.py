"""The demo pages: projects, an upload form, and a list of each project's files
with what Objectstore reports about them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib import messages
from django.db.models.fields.files import FieldFile
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from django_objectstore._protocol import format_expiration
from django_objectstore.client import TimeToIdle, TimeToLive
from testproject.demo.forms import AttachmentForm, ProjectForm
from testproject.demo.models import Attachment, Organization, Project


@dataclass(frozen=True)
class StoredFile:
    """What the page shows about one stored object, as Objectstore reports it."""

    size: int | None = None
    compression: str | None = None
    policy: str | None = None
    content_type: str | None = None
    created: datetime | None = None
    expires: datetime | None = None
    url: str | None = None
    missing: bool = False


def describe_policy(policy: TimeToIdle | TimeToLive | None) -> str | None:
    """``tti:30d`` for a policy object, as in settings; ``None`` for manual."""
    if isinstance(policy, TimeToIdle):
        return format_expiration("tti", policy.delta)
    if isinstance(policy, TimeToLive):
        return format_expiration("ttl", policy.delta)
    return None


def describe(field_file: FieldFile) -> StoredFile:
    """Ask Objectstore about one file: its metadata (created, expires, content
    type) and its logical (uncompressed) size. An object that expired, or was
    deleted behind Django's back, reads as missing while its row stays."""
    storage = field_file.storage
    name = field_file.name or ""
    try:
        meta = storage.metadata(name)
        size = storage.size(name)
    except FileNotFoundError:
        return StoredFile(missing=True)
    return StoredFile(
        size=size,
        compression=meta.compression,
        policy=describe_policy(meta.expiration_policy),
        content_type=meta.content_type,
        created=meta.time_created,
        expires=meta.time_expires,
        url=field_file.url,
    )


def home(request: HttpRequest) -> HttpResponse:
    form = ProjectForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        project = form.save()
        return redirect("demo:project", pk=project.pk)
    organizations = Organization.objects.prefetch_related("projects")
    return render(request, "demo/home.html", {"organizations": organizations, "form": form})


def project_detail(request: HttpRequest, pk: int) -> HttpResponse:
    project = get_object_or_404(Project.objects.select_related("organization"), pk=pk)
    posted = request.method == "POST"
    form = AttachmentForm(request.POST if posted else None, request.FILES if posted else None)
    if form.is_bound and form.is_valid():
        attachment = form.save(commit=False)
        attachment.project = project
        attachment.save()
        messages.success(request, f"Uploaded {attachment.filename}.")
        return redirect("demo:project", pk=project.pk)
    attachments = [(a, describe(a.file)) for a in project.attachments.all()]
    screenshots = [(s, describe(s.image)) for s in project.screenshots.all()]
    return render(
        request,
        "demo/project.html",
        {
            "project": project,
            "form": form,
            "attachments": attachments,
            "screenshots": screenshots,
            "scope": f"org={project.organization_id};project={project.pk}",
        },
    )


@require_POST
def attachment_delete(request: HttpRequest, pk: int) -> HttpResponse:
    attachment = get_object_or_404(Attachment, pk=pk)
    project_pk = attachment.project_id
    # The object in Objectstore goes with the row (see models.delete_stored_file).
    attachment.delete()
    messages.success(request, f"Deleted {attachment.filename}.")
    return redirect("demo:project", pk=project_pk)
