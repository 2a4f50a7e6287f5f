"""collectstatic into Objectstore: a second run copies nothing, a changed file
is copied again, and ``{% static %}`` URLs serve the files."""

from __future__ import annotations

import html
import io
import os
import re
import time
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.management import call_command
from django.template import Context, Template
from django.test import Client, override_settings

from tests.apps.conftest import CountingBackend, fetch, png

HERE = Path(__file__).resolve().parent


def collectstatic() -> str:
    out = io.StringIO()
    call_command("collectstatic", interactive=False, stdout=out)
    return out.getvalue()


def test_collectstatic_is_incremental(tmp_path: Path, writes: CountingBackend) -> None:
    (tmp_path / "css").mkdir()
    (tmp_path / "css" / "theme.css").write_text("h1 { color: navy; }")
    (tmp_path / "robots.txt").write_text("User-agent: *\n")
    finders = ["django.contrib.staticfiles.finders.FileSystemFinder"]
    with override_settings(STATICFILES_DIRS=[tmp_path], STATICFILES_FINDERS=finders):
        assert "2 static files copied" in collectstatic()
        assert staticfiles_storage.exists("css/theme.css")
        before = len(writes.written)
        assert "0 static files copied, 2 unmodified" in collectstatic()
        assert len(writes.written) == before
        # An edited file is copied again (its mtime is after the stored copy).
        time.sleep(1.1)
        (tmp_path / "css" / "theme.css").write_text("h1 { color: teal; }")
        os.utime(tmp_path / "css" / "theme.css")
        assert "1 static file copied, 1 unmodified" in collectstatic()
    assert staticfiles_storage.open("css/theme.css").read() == b"h1 { color: teal; }"


def test_static_tag_urls_serve_the_files() -> None:
    finders = ["django.contrib.staticfiles.finders.FileSystemFinder"]
    with override_settings(STATICFILES_DIRS=[HERE / "static"], STATICFILES_FINDERS=finders):
        collectstatic()
    template = Template("""{% load static %}<link href="{% static 'css/site.css' %}">""")
    page = template.render(Context()).strip()
    assert page == template.render(Context())  # url_bucket: stable, cacheable URLs
    url = html.unescape(page.removeprefix('<link href="').removesuffix('">'))
    assert url == staticfiles_storage.url("css/site.css")
    status, body, headers = fetch(url)
    assert status == 200
    assert body == (HERE / "static" / "css" / "site.css").read_bytes()
    assert headers["content-type"] == "text/css"


def test_manifest_static_files(tmp_path: Path) -> None:
    (tmp_path / "css").mkdir()
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "dot.png").write_bytes(png(2, 2))
    (tmp_path / "css" / "page.css").write_text('body { background: url("../img/dot.png"); }')
    manifest = {
        "BACKEND": "tests.apps.shop.storage.ObjectstoreManifestStorage",
        "OPTIONS": {"usecase": "static", "url_strategy": "view-unsigned"},
    }
    public = {
        **settings.OBJECTSTORE,
        "DOWNLOAD_PERMISSION": "tests.apps.shop.storage.static_is_public",
    }
    with override_settings(
        STATICFILES_DIRS=[tmp_path],
        STATICFILES_FINDERS=["django.contrib.staticfiles.finders.FileSystemFinder"],
        STORAGES={**settings.STORAGES, "staticfiles": manifest},
        OBJECTSTORE=public,
    ):
        assert "2 static files copied" in collectstatic()
        assert "0 static files copied, 2 unmodified" in collectstatic()
        css_url = Template("{% load static %}{% static 'css/page.css' %}").render(Context())
        assert css_url.startswith("/files/static/css/page.")
        assert css_url.endswith(".css")
        response = Client().get(css_url)
        assert response.status_code == 200
        css = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
        image_url = re.search(r'url\("\.\./img/(dot\.\w+\.png)"\)', css)
        assert image_url is not None, css
        image = Client().get(f"/files/static/img/{image_url.group(1)}")
        assert image.status_code == 200
        assert b"".join(image.streaming_content).startswith(b"\x89PNG")  # type: ignore[attr-defined]
