"""The Django storage turns the client's transport failures (urllib3 errors,
as the official client raises them, not ``RequestError``) into the
``OSError`` Django and apps handle, with a hint about the server."""

from __future__ import annotations

import socket

import pytest
import urllib3
from django.core.files.base import ContentFile
from django.test import override_settings

from django_objectstore import factory
from django_objectstore.storage import ObjectstoreStorage


@pytest.fixture
def refused_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.save("a.txt", ContentFile(b"x")),
        lambda s: s.open("a.txt").read(),
        lambda s: s.exists("a.txt"),
        lambda s: s.size("a.txt"),
        lambda s: s.delete("a.txt"),
    ],
    ids=["save", "open", "exists", "size", "delete"],
)
def test_refused_connection_is_an_oserror(refused_url: str, call: object) -> None:
    settings = {"URL": refused_url, "RETRIES": 0, "USECASES": {"plain": {}}}
    with override_settings(OBJECTSTORE=settings):
        storage = ObjectstoreStorage("plain")
        try:
            with pytest.raises(OSError, match="Is the server running") as info:
                call(storage)  # type: ignore[operator]
            assert isinstance(info.value.__cause__, urllib3.exceptions.MaxRetryError)
        finally:
            factory.reset()
