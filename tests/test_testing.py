"""django_objectstore.testing: the helpers users put in their own suites."""

from __future__ import annotations

import urllib.request

import pytest
from django.conf import settings
from django.core.files.base import ContentFile

from django_objectstore import factory
from django_objectstore.storage import ObjectstoreStorage
from django_objectstore.testing import (
    TEST_KID,
    ObjectstoreTestServer,
    get_test_server,
    objectstore,  # noqa: F401
    objectstore_server,  # noqa: F401
    override_objectstore,
)


def test_context_manager_points_settings_at_the_server() -> None:
    before = settings.OBJECTSTORE
    with override_objectstore() as server:
        assert server is get_test_server()
        assert settings.OBJECTSTORE["URL"] == server.url
        assert settings.OBJECTSTORE["TOKEN"]["KID"] == TEST_KID
        assert settings.OBJECTSTORE["USECASES"] == before["USECASES"]
        name = ObjectstoreStorage("plain").save("a.txt", ContentFile(b"a"))
        assert ObjectstoreStorage("plain").exists(name)
    assert before == settings.OBJECTSTORE


def test_overrides_and_decorator() -> None:
    @override_objectstore(USECASES={"solo": {"EXPIRATION": "ttl:1h"}})
    def body() -> str:
        return ObjectstoreStorage().usecase

    assert body() == "solo"


def test_class_decoration_points_to_the_mixin() -> None:
    with pytest.raises(TypeError, match="ObjectstoreTestMixin"):

        @override_objectstore()
        class Nope:
            pass


def test_fixture_server_enforces_auth(objectstore, objectstore_server) -> None:  # noqa: F811
    assert objectstore is objectstore_server
    key = factory.get_session("plain").put(b"signed")
    with pytest.raises(urllib.request.HTTPError) as info:
        urllib.request.urlopen(f"{objectstore_server.url}/v1/objects/plain/_/{key}", timeout=5)
    assert info.value.code == 400
    info.value.close()


def test_standalone_server_without_auth() -> None:
    with ObjectstoreTestServer(auth=False) as server:
        url = f"{server.url}/v1/objects/plain/_/"
        request = urllib.request.Request(url, data=b"x", method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 201
        assert "ObjectstoreTestServer http://127.0.0.1" in repr(server)
    assert not server.public_key_file.exists()
    with pytest.raises(RuntimeError, match="start"):
        server.url  # noqa: B018


USER_CONFTEST = """
from __future__ import annotations

from django.conf import settings

pytest_plugins = ["django_objectstore.testing"]


def pytest_configure(config):
    settings.configure(
        SECRET_KEY="user-suite",
        INSTALLED_APPS=["django_objectstore"],
        OBJECTSTORE={"URL": "https://objectstore.production.invalid",
                     "USECASES": {"avatars": {"EXPIRATION": "manual"}}},
    )
"""

USER_TEST = """
from __future__ import annotations

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from django_objectstore.storage import ObjectstoreStorage


def test_never_reaches_production():
    assert settings.OBJECTSTORE["URL"].startswith("http://127.0.0.1:")
    storage = ObjectstoreStorage()
    name = storage.save("me.png", ContentFile(b"avatar"))
    assert storage.open(name).read() == b"avatar"


def test_fixture_is_available(objectstore):
    assert settings.OBJECTSTORE["URL"] == objectstore.url
"""


def test_one_line_pytest_plugin_in_a_user_suite(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    (tmp_path / "conftest.py").write_text(USER_CONFTEST)
    (tmp_path / "test_user.py").write_text(USER_TEST)
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nobjectstore_autouse = true\ndjango_find_project = false\n"
        "filterwarnings =\n    error\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
