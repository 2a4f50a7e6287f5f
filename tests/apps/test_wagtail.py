"""Wagtail images and documents with every file in Objectstore."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.images import ImageFile
from django.test import Client, override_settings
from wagtail.documents import get_document_model
from wagtail.images import get_image_model
from wagtail.images.views.serve import generate_image_url

from tests.apps.conftest import SVG, CountingBackend, fetch, png

pytestmark = pytest.mark.django_db


def test_image_upload_keeps_its_name_and_renditions_are_stored() -> None:
    image = get_image_model().objects.create(
        title="Teal", file=ImageFile(ContentFile(png(), name="teal box.png"))
    )
    assert image.file.name == "original_images/teal_box.png"
    assert image.filename == "teal_box.png"
    assert (image.width, image.height) == (120, 80)
    assert not image.is_svg()
    rendition = image.get_rendition("fill-60x40")
    assert rendition.file.name.startswith("images/teal_box.")
    assert rendition.file.name.endswith(".png")
    assert (rendition.width, rendition.height) == (60, 40)
    status, body, headers = fetch(rendition.url)
    assert status == 200
    assert body.startswith(b"\x89PNG")
    assert headers["content-type"] == "image/png"
    # A second request finds the rendition instead of making it again.
    assert image.get_rendition("fill-60x40").file.name == rendition.file.name


def test_dynamic_serve_view(writes: CountingBackend) -> None:
    image = get_image_model().objects.create(
        title="Served", file=ImageFile(ContentFile(png(90, 90, "navy"), name="served.png"))
    )
    url = generate_image_url(image, "width-30")
    assert url.endswith("/served.png")
    response = Client().get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")  # type: ignore[attr-defined]
    before = len(writes.written)
    again = Client().get(url)
    assert again.status_code == 200
    b"".join(again.streaming_content)  # type: ignore[attr-defined]
    assert len(writes.written) == before  # the rendition is reused, not uploaded again


def test_svg_images() -> None:
    image = get_image_model().objects.create(
        title="Vector", file=ImageFile(ContentFile(SVG, name="logo.svg")), width=40, height=30
    )
    assert image.file.name == "original_images/logo.svg"
    assert image.is_svg()
    rendition = image.get_rendition("fill-20x15")
    assert rendition.file.name.endswith(".svg")
    status, body, _ = fetch(rendition.url)
    assert status == 200
    assert b"<svg" in body


def _document(name: str, data: bytes) -> object:
    return get_document_model().objects.create(title=name, file=ContentFile(data, name=name))


@override_settings(WAGTAILDOCS_SERVE_METHOD="serve_view")
def test_documents_served_through_the_view() -> None:
    document = _document("Quarterly report.csv", b"quarter,total\nQ1,42\n")
    assert document.file.name == "documents/Quarterly_report.csv"
    assert document.filename == "Quarterly_report.csv"
    assert document.file_extension == "csv"
    assert document.content_type == "text/csv"
    response = Client().get(document.url)
    assert response.status_code == 200
    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    assert body == b"quarter,total\nQ1,42\n"
    assert response["Content-Disposition"].startswith("attachment; filename=Quarterly_report.csv")
    assert response["Content-Type"] == "text/csv"


@override_settings(WAGTAILDOCS_SERVE_METHOD="redirect")
def test_documents_served_by_redirect_to_objectstore() -> None:
    document = _document("notes.txt", b"plain notes")
    response = Client().get(document.url)
    assert response.status_code == 302
    status, body, headers = fetch(response["Location"])
    assert (status, body) == (200, b"plain notes")
    assert "notes.txt" in headers["content-disposition"]
