"""django-cleanup deletes objects with their rows; django-import-export's admin
import keeps its uploaded file in Objectstore between preview and confirm."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage, storages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, TestCase

from tests.apps.conftest import png
from tests.apps.shop.models import Product


class CleanupTests(TestCase):
    def test_deleting_the_row_deletes_the_object(self) -> None:
        product = Product(name="desk")
        product.manual.save("desk manual.txt", ContentFile(b"assembly"), save=True)
        name = product.manual.name
        assert name == "manuals/desk_manual.txt"
        assert default_storage.exists(name)
        with self.captureOnCommitCallbacks(execute=True):
            product.delete()
        assert not default_storage.exists(name)

    def test_replacing_the_file_deletes_the_old_object(self) -> None:
        product = Product(name="shelf")
        product.photo.save("shelf.png", ContentFile(png()), save=True)
        old = product.photo.name
        product = Product.objects.get(pk=product.pk)
        with self.captureOnCommitCallbacks(execute=True):
            product.photo.save("shelf-v2.png", ContentFile(png(colour="red")), save=True)
        assert not default_storage.exists(old)
        assert default_storage.exists(product.photo.name)


@pytest.mark.django_db
def test_admin_import_preview_then_confirm() -> None:
    admin = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client = Client()
    client.force_login(admin)
    csv = SimpleUploadedFile("products.csv", b"id,name\n,Sofa\n,Table\n", content_type="text/csv")
    preview = client.post(
        "/admin/shop/product/import/", {"import_file": csv, "format": "0", "resource": "0"}
    )
    assert preview.status_code == 200
    page = preview.content.decode()
    assert "Sofa" in page
    assert "Table" in page
    fields = dict(re.findall(r'name="(\w+)"[^>]*value="([^"]*)"', page))
    stored = f"django-import-export/{fields['import_file_name']}"
    assert storages["import_export"].exists(stored)
    confirm = client.post(
        "/admin/shop/product/process_import/",
        {
            key: fields[key]
            for key in ("import_file_name", "original_file_name", "format", "resource")
            if key in fields
        },
    )
    assert confirm.status_code == 302, confirm.content[:2000]
    assert sorted(Product.objects.values_list("name", flat=True)) == ["Sofa", "Table"]
    assert not storages["import_export"].exists(stored)
