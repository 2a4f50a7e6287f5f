"""Management commands: objectstore_sign_token and objectstore_server."""

from __future__ import annotations

import base64
import json
import threading
import urllib.request
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from django_objectstore.management.commands.objectstore_server import Command as ServerCommand
from django_objectstore.testing import objectstore, objectstore_server  # noqa: F401

KEYS = Path(__file__).parent / "keys"
SIGNING = {
    "URL": "http://127.0.0.1:9",
    "TOKEN": {"KID": "test_kid", "SECRET_KEY_FILE": str(KEYS / "test_kid.private.pem")},
    "USECASES": {"attachments": {"EXPIRATION": "manual"}},
}


def claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def sign(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("objectstore_sign_token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@override_settings(OBJECTSTORE=SIGNING)
def test_sign_token_prints_only_the_token() -> None:
    out, err = sign(
        "attachments",
        "--scope",
        "org=42",
        "--scope",
        "project=1337",
        "--permission",
        "object.read",
        "--expiry-seconds",
        "300",
    )
    token = out.strip()
    assert out == token + "\n"
    assert err == ""
    assert token.count(".") == 2
    body = claims(token)
    assert body["res"] == {"os:usecase": "attachments", "org": "42", "project": "1337"}
    assert body["permissions"] == ["object.read"]


@override_settings(OBJECTSTORE=SIGNING)
def test_sign_token_wildcard_and_defaults() -> None:
    body = claims(sign("debug-files", "--scope", "org=*")[0].strip())
    assert body["res"] == {"os:usecase": "debug-files", "org": "*"}
    assert sorted(body["permissions"]) == ["object.delete", "object.read", "object.write"]


@pytest.mark.usefixtures("objectstore")
def test_signed_token_is_accepted_by_the_server(objectstore_server) -> None:  # noqa: F811
    token = sign("attachments", "--scope", "org=5")[0].strip()
    request = urllib.request.Request(
        f"{objectstore_server.url}/v1/objects/attachments/org=5/",
        data=b"hello",
        method="POST",
        headers={"x-os-auth": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["attachments", "--scope", "org"], "name=value"),
        (["attachments", "--scope", "org=a.b"], "not allowed"),
        (["attachments", "--scope", "org=1", "--scope", "org=2"], "unique"),
        (["attachments", "--expiry-seconds", "0"], "positive"),
        (["x"], "usecase"),
    ],
)
@override_settings(OBJECTSTORE=SIGNING)
def test_sign_token_bad_input(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        sign(*args)


def test_sign_token_needs_a_secret_key() -> None:
    with (
        override_settings(OBJECTSTORE={**SIGNING, "TOKEN": None}),
        pytest.raises(CommandError, match="SECRET_KEY"),
    ):
        sign("attachments")
    bad = {**SIGNING, "TOKEN": {"KID": "k", "SECRET_KEY_FILE": "/nonexistent.pem"}}
    with override_settings(OBJECTSTORE=bad), pytest.raises(CommandError, match="cannot be read"):
        sign("attachments")


def test_sign_token_rejects_unknown_permission() -> None:
    with override_settings(OBJECTSTORE=SIGNING), pytest.raises(CommandError):
        sign("attachments", "--permission", "object.admin")


def run_server(*args: str) -> tuple[ServerCommand, threading.Thread, list[BaseException]]:
    command = ServerCommand(stdout=StringIO(), stderr=StringIO())
    errors: list[BaseException] = []

    def target() -> None:
        try:
            call_command(command, *args)
        except BaseException as exc:
            errors.append(exc)
            command.started.set()

    thread = threading.Thread(target=target)
    thread.start()
    assert command.started.wait(10)
    return command, thread, errors


def test_server_command_with_auth_from_settings(tmp_path: Path) -> None:
    conf = {**SIGNING, "URL": "http://127.0.0.1:0"}
    with override_settings(OBJECTSTORE=conf):
        command, thread, errors = run_server("--storage", "filesystem", "--path", str(tmp_path))
        try:
            assert errors == []
            url = command.server.url
            from django_objectstore import factory

            with override_settings(OBJECTSTORE={**conf, "URL": url}):
                session = factory.get_session("attachments", org=1)
                key = session.put(b"through the command's server")
                response = session.get(key)
                assert response is not None
                with response.payload as payload:
                    assert payload.read() == b"through the command's server"
            with pytest.raises(urllib.request.HTTPError) as info:
                urllib.request.urlopen(f"{url}/v1/objects/attachments/org=1/{key}", timeout=5)
            assert info.value.code == 400  # no token: auth is enforced
            info.value.close()
        finally:
            command.shutdown()
            thread.join(10)
    assert "listening on" in command.stderr.getvalue()
    assert any(tmp_path.iterdir())


def test_server_command_memory_without_auth() -> None:
    command, thread, errors = run_server(
        "--storage", "memory", "--no-auth", "--addr", "127.0.0.1:0", "--min-part-size", "1000"
    )
    try:
        assert errors == []
        with urllib.request.urlopen(f"{command.server.url}/health", timeout=5) as response:
            assert response.status == 200
        assert command.server.service.min_part_size == 1000
    finally:
        command.shutdown()
        thread.join(10)


def test_server_command_bad_flags() -> None:
    with pytest.raises(CommandError, match="HOST:PORT"):
        call_command("objectstore_server", "--addr", "nonsense", stderr=StringIO())
    with pytest.raises(CommandError, match="min_part_size"):
        call_command(
            "objectstore_server", "--storage", "memory", "--min-part-size", "-1", stderr=StringIO()
        )
    with (
        override_settings(OBJECTSTORE={**settings.OBJECTSTORE, "TOKEN": None}),
        pytest.raises(CommandError, match="--auth needs"),
    ):
        call_command(
            "objectstore_server",
            "--auth",
            "--storage",
            "memory",
            "--addr",
            "127.0.0.1:0",
            stderr=StringIO(),
        )


def test_server_command_backend_modes() -> None:
    command, thread, errors = run_server(
        "--storage",
        "memory",
        "--no-auth",
        "--addr",
        "127.0.0.1:0",
        "--no-multipart",
        "--no-resumable",
        "--name-limit",
        "gcs",
    )
    try:
        assert errors == []
        service = command.server.service
        assert (service.multipart, service.resumable, service.name_limit) == (False, None, 1024)
        request = urllib.request.Request(
            f"{command.server.url}/v1/objects:multipart/test/org=1/k", data=b"", method="PUT"
        )
        with pytest.raises(urllib.request.HTTPError) as info:
            urllib.request.urlopen(request, timeout=5)
        assert info.value.code == 501
        info.value.close()
    finally:
        command.shutdown()
        thread.join(10)
    command, thread, errors = run_server(
        "--storage", "memory", "--no-auth", "--addr", "127.0.0.1:0", "--resumable-session-ttl", "2h"
    )
    try:
        assert errors == []
        sessions = command.server.service.resumable
        assert sessions is not None
        assert sessions.ttl == timedelta(hours=2)
        assert command.server.service.multipart is True
    finally:
        command.shutdown()
        thread.join(10)
    with pytest.raises(CommandError, match="positive duration"):
        call_command("objectstore_server", "--resumable-session-ttl", "soon", stderr=StringIO())
