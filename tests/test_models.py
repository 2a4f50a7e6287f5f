"""Model-level behaviour of ObjectstoreFileField / ObjectstoreImageField."""

from __future__ import annotations

import io
import pickle
import threading
import urllib.request

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.db.migrations.writer import MigrationWriter
from django.test import TestCase, TransactionTestCase, override_settings

from django_objectstore.fields import ObjectstoreFileField, ObjectstoreImageField, resolve_scope
from django_objectstore.storage import ObjectstoreStorage
from django_objectstore.testing import ObjectstoreTestMixin
from tests.testapp.models import Document, Note, Organization, Photo, Project


def jpeg(width: int = 40, height: int = 30) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "blue").save(buffer, "JPEG")
    return buffer.getvalue()


class ModelTests(ObjectstoreTestMixin, TestCase):
    @classmethod
    def setUpTestData(cls) -> None:
        cls.org = Organization.objects.create(name="acme")
        cls.project = Project.objects.create(organization=cls.org, name="p")

    def test_save_read_size_url_delete(self) -> None:
        doc = Document(project=self.project)
        doc.file.save("report.txt", ContentFile(b"quarterly numbers"), save=True)
        doc.refresh_from_db()
        name = doc.file.name
        assert name.startswith(f"org={self.org.pk};project={self.project.pk}/")
        assert doc.file.size == len(b"quarterly numbers")
        with doc.file.open() as handle:
            handle.seek(10)
            assert handle.read() == b"numbers"
        with urllib.request.urlopen(doc.file.url, timeout=10) as response:
            assert response.headers["content-disposition"] == 'attachment; filename="report.txt"'
        storage = doc.file.storage
        doc.file.delete(save=True)
        assert not storage.exists(name)
        doc.refresh_from_db()
        assert not doc.file

    def test_callable_scope_and_uncompressed_usecase(self) -> None:
        doc = Document(project=self.project)
        doc.file.save("a.txt", ContentFile(b"a"), save=False)
        doc.attachment.save("b.bin", ContentFile(b"\x00" * 1000), save=False)
        doc.save()
        assert doc.attachment.name.startswith(f"org={self.org.pk};project={self.project.pk}/")
        assert doc.attachment.storage.usecase == "plain"
        assert Document.objects.get(pk=doc.pk).attachment.read() == b"\x00" * 1000

    def test_scope_from_usecase_setting_and_upload_to_key(self) -> None:
        note = Note(org_id=77)
        note.file.save("hello.txt", ContentFile(b"hi"))
        assert note.file.name.startswith("org=77/notes/")
        assert note.file.name.endswith("/hello.txt")
        again = Note(org_id=77)
        again.file.save("hello.txt", ContentFile(b"second"))
        assert again.file.name != note.file.name
        assert note.file.read() == b"hi"

    def test_missing_scope_value_is_a_clear_error(self) -> None:
        note = Note(org_id=None)  # type: ignore[misc]
        with pytest.raises(ValueError, match="org_id"):
            note.file.save("x.txt", ContentFile(b"x"))

    def test_image_field_dimensions(self) -> None:
        photo = Photo(image=ContentFile(jpeg(40, 30), name="pic.jpg"))
        photo.save()
        assert (photo.width, photo.height) == (40, 30)
        assert photo.image.name.startswith("photos/pic")
        assert photo.image.name.endswith(".jpg")
        loaded = Photo.objects.get(pk=photo.pk)
        assert (loaded.image.width, loaded.image.height) == (40, 30)
        assert loaded.image.storage.metadata(loaded.image.name).content_type == "image/jpeg"
        # Empty dimension columns: post_init reads the header from storage.
        Photo.objects.filter(pk=photo.pk).update(width=None, height=None)
        reloaded = Photo.objects.get(pk=photo.pk)
        assert (reloaded.width, reloaded.height) == (40, 30)

    def test_pickling_through_the_cache(self) -> None:
        doc = Document(project=self.project)
        doc.file.save("p.txt", ContentFile(b"pickled"))
        clone = pickle.loads(pickle.dumps(doc))
        assert clone.file.read() == b"pickled"
        with override_settings(
            CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
        ):
            cache.set("doc", doc)
            assert cache.get("doc").file.read() == b"pickled"

    def test_admin_upload(self) -> None:
        from django.contrib.auth.models import User

        admin = User.objects.create_superuser("admin", "a@example.com", "pw")
        self.client.force_login(admin)
        upload = SimpleUploadedFile("from-admin.txt", b"admin upload", content_type="text/plain")
        response = self.client.post(
            "/admin/testapp/document/add/",
            {"project": self.project.pk, "file": upload},
        )
        assert response.status_code == 302, response.content[:2000]
        doc = Document.objects.get()
        assert doc.file.read() == b"admin upload"
        assert doc.file.storage.metadata(doc.file.name).filename == "from-admin.txt"
        page = self.client.get(f"/admin/testapp/document/{doc.pk}/change/")
        assert page.status_code == 200
        assert b"os_sig=" in page.content

    def test_override_settings_reaches_field_storage(self) -> None:
        doc = Document(project=self.project)
        doc.file.save("o.txt", ContentFile(b"x"))
        from django.conf import settings

        conf = {**settings.OBJECTSTORE, "PUBLIC_URL": "https://cdn.example.com"}
        with override_settings(OBJECTSTORE=conf):
            assert doc.file.url.startswith("https://cdn.example.com/v1/objects/attachments/")
        assert not doc.file.url.startswith("https://cdn.example.com")


class ThreadTests(ObjectstoreTestMixin, TransactionTestCase):
    def test_sixteen_threads_save_and_read_models(self) -> None:
        org = Organization.objects.create(name="t")
        project = Project.objects.create(organization=org, name="t")
        errors: list[BaseException] = []

        def work(index: int) -> None:
            try:
                payload = f"{index}".encode() * 5000
                doc = Document(project=project)
                doc.file.save(f"f{index}.txt", ContentFile(payload), save=False)
                assert doc.file.storage.open(doc.file.name).read() == payload
                assert doc.file.size == len(payload)
            except BaseException as exc:
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []


def test_deconstruct_has_no_storage_or_secrets() -> None:
    field = Document._meta.get_field("file")
    _, path, _, kwargs = field.deconstruct()
    assert path == "django_objectstore.fields.ObjectstoreFileField"
    assert kwargs == {
        "usecase": "attachments",
        "scope": {"org": "project.organization_id", "project": "project_id"},
        "upload_to": "",
    } or kwargs == {
        "usecase": "attachments",
        "scope": {"org": "project.organization_id", "project": "project_id"},
    }
    serialized, _ = MigrationWriter.serialize(field)
    assert "storage" not in serialized
    assert "ObjectstoreStorage" not in serialized
    image = ObjectstoreImageField(usecase="images", scope=None)
    assert "storage" not in image.deconstruct()[3]
    callable_scope = Document._meta.get_field("attachment").deconstruct()[3]["scope"]
    assert callable(callable_scope)


def test_custom_storage_is_kept_in_deconstruct() -> None:
    field = ObjectstoreFileField(storage=ObjectstoreStorage("plain", server_chosen_keys=True))
    kwargs = field.deconstruct()[3]
    assert isinstance(kwargs["storage"], ObjectstoreStorage)


def test_resolve_scope_forms() -> None:
    class Obj:
        org_id = 4
        flag = True

    assert resolve_scope(Obj(), {"org": "org_id", "f": "flag"}) == [("org", "4"), ("f", "True")]
    assert resolve_scope(Obj(), lambda o: [("org", o.org_id)]) == [("org", "4")]
    assert resolve_scope(Obj(), None) == []
    with pytest.raises(ValueError, match="invalid character"):
        resolve_scope(Obj(), lambda o: {"org": "a.b"})
    with pytest.raises(TypeError, match="scope"):
        ObjectstoreFileField(usecase="plain", scope="org")  # type: ignore[arg-type]


@pytest.mark.django_db  # makemigrations checks the migration history
def test_makemigrations_output_has_no_storage_or_secrets() -> None:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("makemigrations", "testapp", "--dry-run", "--verbosity", "3", stdout=out)
    text = out.getvalue()
    assert "django_objectstore.fields.ObjectstoreFileField(" in text
    assert "scope={'org': 'project.organization_id', 'project': 'project_id'}" in text
    assert "scope=tests.testapp.models.project_scope" in text
    assert "PRIVATE KEY" not in text
    assert "127.0.0.1" not in text
