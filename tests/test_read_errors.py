"""What reading a broken or missing object raises through the storage."""

from __future__ import annotations

import pytest

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
