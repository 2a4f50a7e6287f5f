"""What reading a broken or missing object raises through the storage."""

from __future__ import annotations

import socket

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.test import override_settings

from django_objectstore import factory
from django_objectstore.storage import ObjectstoreStorage
from django_objectstore.testing import objectstore, objectstore_server  # noqa: F401

pytestmark = pytest.mark.usefixtures("objectstore")


def corrupt_object() -> str:
    """An object stored as zstd whose bytes are no zstd frame (as a broken
    writer or disk would leave it); returns its stored name."""
    session = factory.get_session("attachments")
    key = session.put(b"these bytes are not a zstd frame" * 100, precompressed="zstd")
    return ObjectstoreStorage("attachments").canonical_name(key)


def test_corrupt_zstd_is_an_oserror_naming_the_object() -> None:
    name = corrupt_object()
    with (
        ObjectstoreStorage("attachments").open(name) as handle,
        pytest.raises(OSError, match="corrupt") as raised,
    ):
        handle.read()
    assert type(raised.value) is OSError
    assert repr(name) in str(raised.value)
    assert "'attachments'" in str(raised.value)


def test_refused_connection_suggests_the_local_server() -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conf = {**settings.OBJECTSTORE, "URL": f"http://127.0.0.1:{port}", "RETRIES": 0}
    with override_settings(OBJECTSTORE=conf):
        storage = ObjectstoreStorage("plain")
        for call in (
            lambda: storage.open("notes.txt"),
            lambda: storage.save("a.txt", ContentFile(b"a")),
        ):
            with pytest.raises(OSError, match=r"manage\.py objectstore_server") as raised:
                call()
            assert "OBJECTSTORE['URL']" in str(raised.value)


def test_missing_object_names_the_full_stored_name() -> None:
    storage = ObjectstoreStorage("notes")
    with pytest.raises(FileNotFoundError) as raised:
        storage.open("org=7/reports/q3.pdf")
    assert "'org=7/reports/q3.pdf'" in str(raised.value)
    assert "'notes'" in str(raised.value)
