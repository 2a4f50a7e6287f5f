"""The download view (django_objectstore.urls)."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.test import Client, override_settings

from django_objectstore.names import split_name
from django_objectstore.storage import ObjectstoreStorage
from django_objectstore.testing import objectstore, objectstore_server  # noqa: F401
from django_objectstore.views import parse_range

# The test client's request_finished signal closes old DB connections.
pytestmark = [pytest.mark.usefixtures("objectstore"), pytest.mark.django_db]

DATA = b"0123456789" * 1000


def allow_all(request: Any, usecase: str, name: str) -> bool:
    return True


@pytest.fixture(params=["plain", "attachments"])
def storage(request: pytest.FixtureRequest) -> ObjectstoreStorage:
    return ObjectstoreStorage(request.param, url_strategy="view")


def body(response: Any) -> bytes:
    try:
        return b"".join(response.streaming_content)
    finally:
        response.close()


def test_signed_link_streams_the_object(storage: ObjectstoreStorage) -> None:
    name = storage.save("numbers.txt", ContentFile(DATA))
    url = storage.url(name)
    assert url.startswith(f"/files/{storage.usecase}/{name}?")
    response = Client().get(url)
    assert response.status_code == 200
    assert response["Content-Length"] == str(len(DATA))
    assert response["Content-Type"] == "text/plain"
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Disposition"] == 'inline; filename="numbers.txt"'
    assert body(response) == DATA


def test_ranges(storage: ObjectstoreStorage) -> None:
    name = storage.save("numbers.txt", ContentFile(DATA))
    url = storage.url(name)
    client = Client()
    response = client.get(url, headers={"Range": "bytes=5-14"})
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 5-14/{len(DATA)}"
    assert response["Content-Length"] == "10"
    assert body(response) == DATA[5:15]
    response = client.get(url, headers={"Range": "bytes=-4"})
    assert body(response) == DATA[-4:]
    response = client.get(url, headers={"Range": "bytes=9990-"})
    assert body(response) == DATA[9990:]
    response = client.get(url, headers={"Range": f"bytes={len(DATA)}-"})
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(DATA)}"
    response = client.get(url, headers={"Range": "bytes=0-1,5-6"})
    assert response.status_code == 200
    assert body(response) == DATA


def test_unsigned_or_expired_links_are_refused(storage: ObjectstoreStorage) -> None:
    name = storage.save("secret.txt", ContentFile(b"secret"))
    client = Client()
    assert client.get(f"/files/{storage.usecase}/{name}").status_code == 403
    tampered = storage.url(name).replace("signature=", "signature=x")
    assert client.get(tampered).status_code == 403
    expired = storage.url(name, expire=-10)
    assert client.get(expired).status_code == 403


@pytest.mark.parametrize("hook", [allow_all, "tests.test_views.allow_all"])
def test_permission_hook(storage: ObjectstoreStorage, hook: Any) -> None:
    name = storage.save("open.txt", ContentFile(b"open"))
    with override_settings(OBJECTSTORE={**settings.OBJECTSTORE, "DOWNLOAD_PERMISSION": hook}):
        response = Client().get(f"/files/{storage.usecase}/{name}")
        assert response.status_code == 200
        assert body(response) == b"open"


def test_missing_object_and_unknown_usecase(storage: ObjectstoreStorage) -> None:
    missing = storage.url("_/00000000-0000-4000-8000-000000000000")
    assert Client().get(missing).status_code == 404
    assert Client().get("/files/nope/_/x").status_code == 404


def test_only_safe_methods(storage: ObjectstoreStorage) -> None:
    name = storage.save("x.txt", ContentFile(b"x"))
    assert Client().post(storage.url(name)).status_code == 405


def test_active_content_is_an_attachment(storage: ObjectstoreStorage) -> None:
    name = storage.save("page.html", ContentFile(b"<script>alert(1)</script>"))
    response = Client().get(storage.url(name))
    assert response["Content-Disposition"] == 'attachment; filename="page.html"'
    assert response["X-Content-Type-Options"] == "nosniff"
    body(response)


def test_parse_range() -> None:
    assert parse_range("", 10) is None
    assert parse_range("bytes=0-0", 10) == (0, 0)
    assert parse_range("bytes=3-100", 10) == (3, 9)
    assert parse_range("bytes=-100", 10) == (0, 9)
    assert parse_range("items=0-1", 10) is None
    assert parse_range("bytes=5-2", 10) is None
    assert parse_range("bytes=x-y", 10) is None
    with pytest.raises(ValueError, match="unsatisfiable"):
        parse_range("bytes=10-", 10)
    with pytest.raises(ValueError, match="unsatisfiable"):
        parse_range("bytes=-0", 10)


ALLOWED_ORGS = {"1"}
SEEN: list[str] = []


def org_member(request: Any, usecase: str, name: str) -> bool:
    """The hook the README suggests: read the org from the name, check it
    (unscoped names are public here)."""
    SEEN.append(name)
    pairs, _key = split_name(name)
    org = dict(pairs).get("org")
    return org is None or org in ALLOWED_ORGS


def test_hook_sees_the_name_that_is_served() -> None:
    storage = ObjectstoreStorage("notes")
    secret = storage.save("org=2/secret.txt", ContentFile(b"org 2 only"))
    mine = storage.save("org=1/mine.txt", ContentFile(b"org 1"))
    secret_key, mine_key = secret.split("/", 1)[1], mine.split("/", 1)[1]
    SEEN.clear()
    conf = {**settings.OBJECTSTORE, "DOWNLOAD_PERMISSION": org_member}
    with override_settings(OBJECTSTORE=conf):
        client = Client()
        # '\' is a '/' to the storage: the hook must see org=2, not an unscoped name.
        response = client.get(f"/files/notes/org=2%5C{secret_key}")
        assert response.status_code == 403
        assert SEEN[-1] == secret
        response = client.get(f"/files/notes/org=1%5C{mine_key}")
        assert response.status_code == 200
        assert SEEN[-1] == mine
        assert body(response) == b"org 1"
        # Names the storage refuses never reach the hook.
        before = len(SEEN)
        assert client.get("/files/notes/org=1/a%5C..%5Cb").status_code == 404
        assert len(SEEN) == before


@pytest.mark.parametrize(
    "expires",
    ["%C2%B2", "1" * 5000, "-1", "+99999999999", "1e10", " 99999999999", "%EF%BC%99%EF%BC%99"],
)
def test_malformed_expiry_is_refused_not_an_error(
    storage: ObjectstoreStorage, expires: str
) -> None:
    name = storage.save("x.txt", ContentFile(b"x"))
    url = storage.url(name)
    path, query = url.split("?", 1)
    signature = dict(part.split("=", 1) for part in query.split("&"))["signature"]
    response = Client().get(f"{path}?expires={expires}&signature={signature}")
    assert response.status_code == 403


def test_malformed_ranges_are_ignored(storage: ObjectstoreStorage) -> None:
    name = storage.save("numbers.txt", ContentFile(DATA))
    url = storage.url(name)
    for header in ("bytes=\u00b2-", "bytes=0-\u00b2", "bytes=" + "1" * 5000 + "-", "bytes=-"):
        response = Client().get(url, headers={"Range": header})
        assert response.status_code == 200, header
        assert body(response) == DATA


def test_head_sends_headers_only(storage: ObjectstoreStorage) -> None:
    name = storage.save("numbers.txt", ContentFile(DATA))
    url = storage.url(name)
    response = Client().head(url)
    assert response.status_code == 200
    assert response["Content-Length"] == str(len(DATA))
    assert response.content == b""
    response = Client().head(url, headers={"Range": "bytes=10-19"})
    assert response.status_code == 206
    assert response["Content-Length"] == "10"
    assert response["Content-Range"] == f"bytes 10-19/{len(DATA)}"
