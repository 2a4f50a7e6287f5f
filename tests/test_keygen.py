"""manage.py objectstore_keygen: files, permissions, output, and the key pair
working end to end against a local server that enforces auth."""

from __future__ import annotations

import json
import re
import shlex
import stat
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.management import call_command, execute_from_command_line
from django.core.management.base import CommandError, SystemCheckError
from django.test import override_settings

from django_objectstore.server import LocalServer
from django_objectstore.server.config_loader import config_from_env
from django_objectstore.storage import ObjectstoreStorage

USECASES = {"attachments": {"COMPRESSION": "zstd", "EXPIRATION": "manual"}}


def keygen(*args: str) -> str:
    out = StringIO()
    call_command("objectstore_keygen", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_writes_a_private_key_only_its_owner_can_read(tmp_path: Path) -> None:
    out = keygen("--kid", "my-app", "--out", str(tmp_path / "key.pem"))
    private, public = tmp_path / "key.pem", tmp_path / "key.public.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert public.read_text() in out
    secret_body = private.read_text().splitlines()[1]
    assert secret_body not in out
    assert "OS__AUTH__ENFORCE=true" in out
    assert f'"SECRET_KEY_FILE": "{private}"' in out


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    target = tmp_path / "key.pem"
    keygen("--out", str(target))
    first = target.read_bytes()
    with pytest.raises(CommandError, match="--force"):
        keygen("--out", str(target))
    assert target.read_bytes() == first
    keygen("--out", str(target), "--force")
    assert target.read_bytes() != first
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kid", "has space"], "--kid"),
        (["--kid", "a" * 65], "--kid"),
        (["--out", "/nonexistent-dir/key.pem"], "does not exist"),
    ],
)
def test_bad_arguments(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        keygen(*args)


def test_default_path_is_named_after_the_kid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    keygen("--kid", "site")
    assert (tmp_path / "objectstore-site.pem").exists()
    assert (tmp_path / "objectstore-site.public.pem").exists()


def test_key_pair_works_end_to_end(tmp_path: Path) -> None:
    out = keygen("--kid", "my-app", "--out", str(tmp_path / "objectstore.pem"))
    # The server side: exactly the two lines printed, read as the server reads them.
    env = {
        name: shlex.split(value)[0]
        for name, _, value in (
            line.partition("=") for line in out.splitlines() if line.startswith("OS__AUTH__")
        )
    }
    config = config_from_env(env)
    assert config.auth_enforce
    # The Django side: the TOKEN printed in the settings snippet.
    token = json.loads(re.search(r'"TOKEN": (\{.*\}),', out).group(1))  # type: ignore[union-attr]
    with LocalServer(auth_enforce=True, auth_keys=config.auth_keys) as server:
        with override_settings(
            OBJECTSTORE={"URL": server.url, "TOKEN": token, "USECASES": USECASES}
        ):
            storage = ObjectstoreStorage("attachments")
            name = storage.save("hello.txt", ContentFile(b"signed with the new key"))
            with storage.open(name) as handle:
                assert handle.read() == b"signed with the new key"
        no_token = {"URL": server.url, "USECASES": USECASES}
        with override_settings(OBJECTSTORE=no_token), pytest.raises(PermissionError):
            ObjectstoreStorage("attachments").open(name)


def test_runs_while_the_settings_name_the_missing_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new user writes the settings first: the key file they name does not
    exist yet, the check says how to make it, and the command still runs."""
    target = tmp_path / "objectstore-mysite.pem"
    conf = {
        **settings.OBJECTSTORE,
        "TOKEN": {"KID": "mysite", "SECRET_KEY_FILE": str(target)},
    }
    with override_settings(OBJECTSTORE=conf):
        with pytest.raises(SystemCheckError, match="objectstore_keygen --kid mysite --out"):
            call_command("check")
        # As from the shell (call_command() would skip the checks).
        execute_from_command_line(
            ["manage.py", "objectstore_keygen", "--kid", "mysite", "--out", str(target)]
        )
        call_command("check", stdout=StringIO())
    assert target.exists()
    assert "OS__AUTH__KEYS" in capsys.readouterr().out
