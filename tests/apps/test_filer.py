"""django-filer builds its storages from STORAGES["default"]["BACKEND"] alone:
they work because OBJECTSTORE["DEFAULT_USECASE"] names the usecase."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from filer import settings as filer_settings
from filer.models import File, Image

from django_objectstore.storage import ObjectstoreStorage
from tests.apps.conftest import fetch, png

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))
    return client


def test_filer_storages_come_from_the_backend_alone() -> None:
    storage = filer_settings.FILER_PUBLICMEDIA_STORAGE
    assert isinstance(storage, ObjectstoreStorage)
    assert storage.usecase == "media"


def test_upload_through_filer(admin_client: Client) -> None:
    upload = SimpleUploadedFile("price list.txt", b"chairs: 40", content_type="text/plain")
    response = admin_client.post(
        "/admin/filer/clipboard/operations/upload/no_folder/", {"file": upload}
    )
    assert response.status_code == 200, response.content[:2000]
    stored = File.objects.get(pk=json.loads(response.content)["file_id"])
    assert stored.file.name.startswith("filer_public/")
    assert stored.file.name.endswith("/price_list.txt")
    assert stored.original_filename == "price list.txt"
    assert stored.size == 10
    assert stored.file.read() == b"chairs: 40"
    status, body, _ = fetch(stored.url)
    assert (status, body) == (200, b"chairs: 40")


def test_image_upload_and_thumbnail(admin_client: Client) -> None:
    upload = SimpleUploadedFile("tree.png", png(64, 48, "green"), content_type="image/png")
    response = admin_client.post(
        "/admin/filer/clipboard/operations/upload/no_folder/", {"file": upload}
    )
    assert response.status_code == 200, response.content[:2000]
    image = Image.objects.get(pk=json.loads(response.content)["file_id"])
    assert image.file.name.endswith("/tree.png")
    assert (image.width, image.height) == (64, 48)
    thumbnail = image.file.get_thumbnail({"size": (32, 32), "crop": True})
    status, body, _ = fetch(thumbnail.url)
    assert status == 200
    assert body[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xdb")
