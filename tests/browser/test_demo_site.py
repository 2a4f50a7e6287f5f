"""Drive the demo site in headless Chromium: upload, list, download, delete,
and an image upload through the Django admin."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import DemoSite

pytestmark = pytest.mark.browser


def payload(size: int) -> bytes:
    """Compressible text with some random bytes: zstd shrinks it, so the size
    the page shows is the logical one only if the storage reports it right."""
    text = b"".join(b"line %06d of the demo attachment\n" % i for i in range(size // 32 + 1))
    return (os.urandom(64) + text)[:size]


def png(width: int, height: int) -> bytes:
    from PIL import Image

    image = Image.new("RGB", (width, height), (106, 95, 193))
    for x in range(width // 2):
        image.putpixel((x, height // 2), (255, 200, 0))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def open_project(page: Any, name: str = "Website") -> None:
    page.goto("/")
    page.get_by_role("link", name=name).first.click()
    page.wait_for_selector("form#upload")


def upload(page: Any, name: str, data: bytes, mime_type: str) -> Any:
    page.set_input_files("#id_file", files=[{"name": name, "mimeType": mime_type, "buffer": data}])
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_selector(f"text=Uploaded {name}.")
    return page.locator("#attachments tbody tr", has_text=name).first


def test_upload_list_and_download(page: Any, demo_site: DemoSite, artifacts: Path) -> None:
    data = payload(150_000)
    page.goto("/")
    page.screenshot(path=str(artifacts / "demo-home-page.png"), full_page=True)
    open_project(page)
    row = upload(page, "report.txt", data, "text/plain")

    # The logical size, although zstd stores far fewer bytes.
    assert row.locator("td.size").get_attribute("data-bytes") == str(len(data))
    assert row.locator("td.size").inner_text().split("\n")[0] == "146.5\xa0KB"
    assert row.locator("td.size .badge").inner_text() == "zstd"
    assert row.locator("td.content-type").inner_text().strip() == "text/plain"
    timestamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"
    created = row.locator("td.created").inner_text()
    expires = row.locator("td.expires .when").inner_text()
    assert re.fullmatch(timestamp, created), created
    # tti:30d from settings: the object expires 30 days after its last access.
    assert re.fullmatch(timestamp, expires), expires
    assert row.locator("td.expires .policy").inner_text() == "tti:30d"
    assert expires > created
    stored_name = row.locator("td.name .mono").inner_text()
    assert stored_name.startswith("org=1;project=1/"), stored_name

    # The link is a pre-signed URL of the Objectstore server itself: the
    # browser downloads straight from it, with no token of its own.
    href = row.locator("a.download").get_attribute("href")
    assert href.startswith("http://127.0.0.1:"), href
    assert not href.startswith(demo_site.url), href
    assert "/v1/objects/attachments/org=1;project=1/" in href, href
    assert "os_sig=" in href, href
    with page.expect_download() as download_info:
        row.locator("a.download").click()
    download = download_info.value
    assert download.failure() is None
    assert Path(download.path()).read_bytes() == data
    assert download.suggested_filename == "report.txt"

    # Auth is enforced: the same URL with a broken signature, or without any
    # signature, is refused.
    tampered = page.request.get(re.sub(r"os_sig=[^&]+", "os_sig=" + "A" * 86, href))
    assert tampered.status == 401, tampered.status
    unsigned = page.request.get(href.split("?", 1)[0])
    assert unsigned.status == 400, unsigned.status


def test_delete(page: Any, demo_site: DemoSite) -> None:
    open_project(page, "Mobile app")
    row = upload(page, "scratch.csv", b"a,b\n1,2\n", "text/csv")
    href = row.locator("a.download").get_attribute("href")
    assert page.request.get(href).status == 200
    row.get_by_role("button", name="Delete", exact=True).click()
    page.wait_for_selector("text=Deleted scratch.csv.")
    assert page.locator("#attachments tbody tr", has_text="scratch.csv").count() == 0
    assert page.request.get(href).status == 404


def test_admin_image_upload(page: Any, demo_site: DemoSite, artifacts: Path) -> None:
    image = png(96, 64)
    page.goto("/admin/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "admin")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector("#site-name")

    page.goto("/admin/demo/screenshot/add/")
    page.select_option("#id_project", label="Acme / Website")
    page.fill("#id_caption", "Landing page")
    page.set_input_files(
        "#id_image", files=[{"name": "landing.png", "mimeType": "image/png", "buffer": image}]
    )
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_selector(".messagelist .success")
    assert "was added successfully" in page.locator(".messagelist").inner_text()

    open_project(page)
    figure = page.locator("#screenshots figure", has_text="Landing page")
    assert "96\u00d764" in figure.inner_text()
    img = figure.locator("img")
    img.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
    assert img.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [96, 64]
    page.screenshot(path=str(artifacts / "demo-project-page.png"), full_page=True)
