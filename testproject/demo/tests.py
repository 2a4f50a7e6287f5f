"""Tests of the demo pages with Django's test client, against the embedded,
auth-enforcing Objectstore server that the demo settings start.

Run them with ``python testproject/manage.py test testproject.demo`` (the
project's pytest suite does, in ``tests/test_testproject.py``)."""

from __future__ import annotations

import io
import urllib.error
import urllib.request

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import TestCase
from django.urls import reverse

from testproject.demo.models import Attachment, Organization, Project, Screenshot


def png_bytes(width: int, height: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 90)).save(out, format="PNG")
    return out.getvalue()


class DemoTestCase(TestCase):
    @classmethod
    def setUpTestData(cls) -> None:
        cls.org = Organization.objects.create(name="Acme")
        cls.project = Project.objects.create(organization=cls.org, name="Website")
        cls.other = Project.objects.create(organization=cls.org, name="Mobile app")

    def upload(self, content: bytes, name: str = "notes.txt", content_type: str = "text/plain"):
        response = self.client.post(
            reverse("demo:project", args=[self.project.pk]),
            {"file": SimpleUploadedFile(name, content, content_type=content_type)},
        )
        self.assertRedirects(response, reverse("demo:project", args=[self.project.pk]))
        return Attachment.objects.get(project=self.project, filename=name)


class PageTests(DemoTestCase):
    def test_home_lists_organizations_and_projects(self) -> None:
        response = self.client.get(reverse("demo:home"))
        self.assertContains(response, "Acme")
        self.assertContains(response, reverse("demo:project", args=[self.project.pk]))
        self.assertContains(response, settings.OBJECTSTORE["URL"])

    def test_create_project_creates_the_organization_too(self) -> None:
        response = self.client.post(
            reverse("demo:home"), {"organization": "Initech", "name": "Printers"}
        )
        project = Project.objects.get(name="Printers")
        assert project.organization.name == "Initech"
        self.assertRedirects(response, reverse("demo:project", args=[project.pk]))

    def test_upload_lands_in_objectstore_under_the_project_scope(self) -> None:
        content = b"hello objectstore\n" * 4000
        attachment = self.upload(content)
        scope = f"org={self.org.pk};project={self.project.pk}/"
        assert attachment.file.name.startswith(scope), attachment.file.name
        assert attachment.content_type == "text/plain"
        assert attachment.file.size == len(content)
        with attachment.file.open("rb") as stored:
            assert stored.read() == content

    def test_list_shows_logical_size_type_times_and_a_download_link(self) -> None:
        content = b"a" * 10_000  # compresses to a few bytes: the page shows 10000
        attachment = self.upload(content, name="zeros.txt")
        response = self.client.get(reverse("demo:project", args=[self.project.pk]))
        self.assertContains(response, 'data-bytes="10000"')
        self.assertContains(response, "zeros.txt")
        self.assertContains(response, '<td class="content-type mono">text/plain</td>', html=True)
        (row,) = [row for row in response.context["attachments"] if row[0] == attachment]
        stored = row[1]
        assert not stored.missing
        assert stored.created is not None
        # tti:30d: the object expires 30 days after it was last read
        assert stored.expires is not None
        delta = stored.expires - stored.created
        assert abs(delta.total_seconds() - 30 * 86400) < 60, delta
        assert stored.policy == "tti:30d"
        assert stored.compression == "zstd"
        self.assertContains(response, '<span class="badge"', count=1)
        self.assertContains(response, stored.url.replace("&", "&amp;"))

    def test_download_link_serves_the_bytes(self) -> None:
        content = bytes(range(256)) * 40
        attachment = self.upload(content, name="bytes.bin", content_type="application/x-demo")
        with urllib.request.urlopen(attachment.file.url, timeout=10) as response:
            body = response.read()
            encoding = response.headers.get("Content-Encoding")
            disposition = response.headers.get("Content-Disposition")
        if encoding == "zstd":
            import zstandard

            body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
        assert body == content
        assert disposition == 'attachment; filename="bytes.bin"'

    def test_objectstore_refuses_requests_without_a_token(self) -> None:
        attachment = self.upload(b"secret")
        scope, key = attachment.file.name.split("/", 1)
        url = f"{settings.OBJECTSTORE['URL']}/v1/objects/attachments/{scope}/{key}"
        with self.assertRaises(urllib.error.HTTPError) as caught:  # noqa: PT027
            urllib.request.urlopen(url, timeout=10)
        caught.exception.close()
        assert caught.exception.code in (400, 401)

    def test_delete_removes_row_and_object(self) -> None:
        attachment = self.upload(b"to be deleted")
        name = attachment.file.name
        storage = attachment.file.storage
        assert storage.exists(name)
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(reverse("demo:attachment-delete", args=[attachment.pk]))
        self.assertRedirects(response, reverse("demo:project", args=[self.project.pk]))
        assert not Attachment.objects.filter(pk=attachment.pk).exists()
        assert not storage.exists(name)

    def test_delete_needs_post(self) -> None:
        attachment = self.upload(b"stays")
        response = self.client.get(reverse("demo:attachment-delete", args=[attachment.pk]))
        assert response.status_code == 405
        assert Attachment.objects.filter(pk=attachment.pk).exists()

    def test_an_object_gone_from_objectstore_is_shown_as_gone(self) -> None:
        attachment = self.upload(b"expires soon")
        attachment.file.storage.delete(attachment.file.name)
        response = self.client.get(reverse("demo:project", args=[self.project.pk]))
        self.assertContains(response, "gone: expired or deleted in Objectstore")
        # and it can still be deleted from the page
        with self.captureOnCommitCallbacks(execute=True):
            self.client.post(reverse("demo:attachment-delete", args=[attachment.pk]))
        assert not Attachment.objects.filter(pk=attachment.pk).exists()

    def test_upload_without_a_file_shows_the_error(self) -> None:
        response = self.client.post(reverse("demo:project", args=[self.project.pk]), {})
        assert response.status_code == 200
        self.assertContains(response, "This field is required.")


class AdminTests(DemoTestCase):
    def setUp(self) -> None:
        user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
        self.client.force_login(user)

    def test_image_upload_through_the_admin(self) -> None:
        response = self.client.post(
            reverse("admin:demo_screenshot_add"),
            {
                "project": self.project.pk,
                "caption": "Logo",
                "image": SimpleUploadedFile("logo.png", png_bytes(40, 30), "image/png"),
            },
        )
        self.assertRedirects(response, reverse("admin:demo_screenshot_changelist"))
        screenshot = Screenshot.objects.get(caption="Logo")
        assert (screenshot.width, screenshot.height) == (40, 30)
        assert screenshot.image.name.startswith(f"org={self.org.pk};project=")
        assert screenshot.image.storage.metadata(screenshot.image.name).content_type == "image/png"
        page = self.client.get(reverse("demo:project", args=[self.project.pk]))
        self.assertContains(page, "40\u00d730")

    def test_admin_rejects_a_file_that_is_not_an_image(self) -> None:
        response = self.client.post(
            reverse("admin:demo_screenshot_add"),
            {
                "project": self.project.pk,
                "image": SimpleUploadedFile("fake.png", b"not a png", "image/png"),
            },
        )
        assert response.status_code == 200
        self.assertContains(response, "Upload a valid image.")
        assert not Screenshot.objects.exists()

    def test_admin_change_pages_render_with_stored_files(self) -> None:
        attachment = self.upload(b"admin sees me", name="admin.txt")
        for url in (
            reverse("admin:demo_attachment_changelist"),
            reverse("admin:demo_attachment_change", args=[attachment.pk]),
            reverse("admin:demo_organization_change", args=[self.org.pk]),
        ):
            with self.subTest(url=url):
                assert self.client.get(url).status_code == 200
        change = self.client.get(reverse("admin:demo_attachment_change", args=[attachment.pk]))
        # The pre-signed link to this object; its timestamp and signature
        # depend on the second the page was rendered in, so compare up to them.
        signed_for = attachment.file.url.split("&os_timestamp=")[0].replace("&", "&amp;")
        self.assertContains(change, f'href="{signed_for}&amp;os_timestamp=')
        self.assertContains(change, "&amp;os_sig=")

    def test_deleting_a_project_in_the_admin_deletes_its_objects(self) -> None:
        attachment = self.upload(b"cascade me", name="cascade.txt")
        storage, name = attachment.file.storage, attachment.file.name
        assert storage.exists(name)
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(
                reverse("admin:demo_project_delete", args=[self.project.pk]), {"post": "yes"}
            )
        self.assertRedirects(response, reverse("admin:demo_project_changelist"))
        assert not Attachment.objects.exists()
        assert not storage.exists(name)

    def test_the_project_of_a_stored_file_cannot_be_changed(self) -> None:
        attachment = self.upload(b"pinned", name="pinned.txt")
        page = self.client.get(reverse("admin:demo_attachment_change", args=[attachment.pk]))
        self.assertNotContains(page, 'name="project"')
        add = self.client.get(reverse("admin:demo_attachment_add"))
        self.assertContains(add, 'name="project"')


class SetupCommandTests(TestCase):
    def test_demo_setup_is_idempotent(self) -> None:
        out = io.StringIO()
        call_command("demo_setup", stdout=out)
        call_command("demo_setup", stdout=out)
        assert get_user_model().objects.filter(username="admin").count() == 1
        assert get_user_model().objects.get(username="admin").check_password("admin")
        assert Organization.objects.count() == 1
        assert out.getvalue().count("Created the demo superuser") == 1
