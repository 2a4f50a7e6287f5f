"""Settings (conf.py) and the shared client factory."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

import django_objectstore
from django_objectstore import factory
from django_objectstore.client import Client, SecretKey, TimeToIdle, TimeToLive
from django_objectstore.conf import objectstore_settings, parse_expiration_setting
from django_objectstore.testing import objectstore, objectstore_server  # noqa: F401

KEYS = Path(__file__).parent / "keys"


def test_lazy_exports() -> None:
    assert django_objectstore.get_client is factory.get_client
    assert django_objectstore.get_session is factory.get_session
    assert django_objectstore.get_usecase is factory.get_usecase
    with pytest.raises(AttributeError):
        django_objectstore.nothing  # type: ignore[attr-defined]  # noqa: B018


def test_settings_are_read_on_access() -> None:
    with override_settings(OBJECTSTORE={"URL": "http://a:1/", "USECASES": {}}):
        assert objectstore_settings.url == "http://a:1"
        assert objectstore_settings.retries == 3
        assert objectstore_settings.public_url is None
    with override_settings(OBJECTSTORE={"URL": "http://b:2", "RETRIES": 0, "TIMEOUT_MS": 5}):
        assert objectstore_settings.url == "http://b:2"
        assert objectstore_settings.retries == 0
        assert objectstore_settings.timeout_ms == 5.0


def test_missing_setting_is_explained() -> None:
    with override_settings(OBJECTSTORE=None), pytest.raises(ImproperlyConfigured, match="URL"):
        objectstore_settings.url  # noqa: B018


def test_usecase_policies() -> None:
    assert objectstore_settings.compression("plain") == "none"
    assert objectstore_settings.expiration("attachments") == TimeToIdle(timedelta(days=30))
    assert objectstore_settings.expiration("plain") == TimeToLive(timedelta(days=1))
    assert objectstore_settings.expiration("images") is None
    with pytest.raises(ImproperlyConfigured, match="configured: attachments"):
        objectstore_settings.usecase("nope")
    with pytest.raises(ImproperlyConfigured, match="tti:30d"):
        parse_expiration_setting("sometimes", "x")


@pytest.mark.usefixtures("objectstore")
def test_one_shared_client_rebuilt_on_change() -> None:
    first = factory.get_client()
    assert isinstance(first, Client)
    assert factory.get_client() is first
    results: list[Client] = []
    threads = [
        threading.Thread(target=lambda: results.append(factory.get_client())) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(client is first for client in results)
    from django.conf import settings

    with override_settings(OBJECTSTORE={**settings.OBJECTSTORE, "RETRIES": 1}):
        assert factory.get_client() is not first
    assert factory.get_client() is not first


@pytest.mark.usefixtures("objectstore")
def test_get_usecase_and_session_round_trip() -> None:
    usecase = factory.get_usecase("attachments")
    assert usecase is factory.get_usecase("attachments")
    assert usecase.name == "attachments"
    session = factory.get_session("attachments", org=42, project=1337)
    key = session.put(b"via the factory")
    response = session.get(key)
    assert response is not None
    with response.payload as payload:
        assert payload.read() == b"via the factory"


def test_token_forms() -> None:
    assert factory.build_token(None) is None
    assert factory.build_token("a.b.c") == "a.b.c"
    key = factory.build_token(
        {
            "KID": "test_kid",
            "SECRET_KEY_FILE": str(KEYS / "test_kid.private.pem"),
            "EXPIRY_SECONDS": 120,
            "PERMISSIONS": ["object.read"],
        }
    )
    assert isinstance(key, SecretKey)
    assert key.kid == "test_kid"
    assert key.expiry_seconds == 120
    inline = factory.build_token(
        {"KID": "k", "SECRET_KEY": (KEYS / "test_kid.private.pem").read_text()}
    )
    assert isinstance(inline, SecretKey)


def test_secret_never_in_errors_or_reprs() -> None:
    pem = (KEYS / "test_kid.private.pem").read_text()
    secret_line = pem.splitlines()[1]
    with pytest.raises(ImproperlyConfigured) as info:
        factory.build_token({"KID": "k", "SECRET_KEY": pem, "PERMISSIONS": "object.read"})
    assert secret_line not in str(info.value)
    token = factory.build_token({"KID": "k", "SECRET_KEY": pem})
    assert secret_line not in repr(token)


def test_metrics_backend_is_imported() -> None:
    conf = {
        "URL": "http://127.0.0.1:9",
        "USECASES": {},
        "METRICS_BACKEND": "django_objectstore.client.NoOpMetricsBackend",
    }
    with override_settings(OBJECTSTORE=conf):
        assert isinstance(factory.get_client(), Client)
    with (
        override_settings(OBJECTSTORE={**conf, "METRICS_BACKEND": "no.such.thing"}),
        pytest.raises(ImproperlyConfigured, match="METRICS_BACKEND"),
    ):
        factory.get_client()
