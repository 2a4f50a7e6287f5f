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


def test_upload_list_download_delete(page: Any, demo_site: DemoSite, artifacts: Path) -> None:
    data = payload(150_000)
    open_project(page)
    page.set_input_files(
        "#id_file", files=[{"name": "report.txt", "mimeType": "text/plain", "buffer": data}]
    )
    page.get_by_role("button", name="Upload").click()
    page.wait_for_selector("text=Uploaded report.txt.")

    row = page.locator("#attachments tbody tr", has_text="report.txt").first
    assert row.locator("td.size").get_attribute("data-bytes") == str(len(data))
    assert row.locator("td.size").inner_text().strip() == "146.5\xa0KB"
    assert row.locator("td.content-type").inner_text().strip() == "text/plain"
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", row.locator("td.created").inner_text()
    )
    # tti:30d from settings: the object expires 30 days after its last access.
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", row.locator("td.expires").inner_text()
    )
    stored_name = row.locator("td.name .mono").inner_text()
    assert stored_name.startswith("org=1;project=1/"), stored_name

    page.screenshot(path=str(artifacts / "demo-project-page.png"), full_page=True)

    with page.expect_download() as download_info:
        row.locator("a.download").click()
    download = download_info.value
    assert Path(download.path()).read_bytes() == data
    assert download.suggested_filename == "report.txt"

    row.get_by_role("button", name="Delete").click()
    page.wait_for_selector("text=Deleted report.txt.")
    assert page.locator("#attachments tbody tr", has_text="report.txt").count() == 0


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
    page.screenshot(path=str(artifacts / "demo-project-page-with-image.png"), full_page=True)
