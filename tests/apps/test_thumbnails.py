"""easy-thumbnails and sorl-thumbnail: thumbnails stored under their own names,
found again on the second call (nothing uploaded twice), deletable."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from easy_thumbnails.files import get_thumbnailer
from sorl.thumbnail import delete as sorl_delete
from sorl.thumbnail import get_thumbnail

from tests.apps.conftest import CountingBackend, fetch, png
from tests.apps.shop.models import Product

pytestmark = pytest.mark.django_db


def _product(name: str) -> Product:
    product = Product(name=name)
    product.photo.save(f"{name}.png", ContentFile(png()), save=True)
    return product


def test_easy_thumbnails(writes: CountingBackend) -> None:
    product = _product("lamp")
    assert product.photo.name.startswith("products/")
    assert product.photo.name.endswith("/lamp.png")
    uploaded = len(writes.written)
    thumbnail = get_thumbnailer(product.photo).get_thumbnail({"size": (40, 40), "crop": True})
    assert thumbnail.name.startswith(product.photo.name)
    assert thumbnail.name.endswith(".jpg")
    assert default_storage.exists(thumbnail.name)
    status, body, headers = fetch(thumbnail.url)
    assert status == 200
    assert body.startswith(b"\xff\xd8")
    assert headers["content-type"] == "image/jpeg"

    before = len(writes.written)
    assert before == uploaded + 1  # the thumbnail
    again = get_thumbnailer(Product.objects.get(pk=product.pk).photo).get_thumbnail(
        {"size": (40, 40), "crop": True}
    )
    assert again.name == thumbnail.name
    assert len(writes.written) == before

    assert get_thumbnailer(product.photo).delete_thumbnails() == 1
    assert not default_storage.exists(thumbnail.name)
    assert default_storage.exists(product.photo.name)


def test_sorl_thumbnail(writes: CountingBackend) -> None:
    product = _product("chair")
    uploaded = len(writes.written)
    thumbnail = get_thumbnail(product.photo, "50x30", crop="center", format="PNG")
    assert (thumbnail.width, thumbnail.height) == (50, 30)
    assert default_storage.exists(thumbnail.name)
    status, body, _ = fetch(thumbnail.url)
    assert status == 200
    assert body.startswith(b"\x89PNG")

    before = len(writes.written)
    assert before == uploaded + 1  # the thumbnail
    again = get_thumbnail(
        Product.objects.get(pk=product.pk).photo, "50x30", crop="center", format="PNG"
    )
    assert again.name == thumbnail.name
    assert len(writes.written) == before

    sorl_delete(product.photo, delete_file=False)
    assert not default_storage.exists(thumbnail.name)
    assert default_storage.exists(product.photo.name)
