"""The demo project: its key pair and settings helpers (in process), and its
own Django test suite, ``manage.py check`` and migrations (in a subprocess,
because this process runs with ``tests.settings``)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from testproject.embedded import (
    DEMO_KID,
    ensure_key_pair,
    is_autoreloader_parent,
    objectstore_settings,
)

ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "testproject" / "manage.py"
USECASES = {"attachments": {"COMPRESSION": "zstd", "EXPIRATION": "tti:30d"}}


def manage(
    data_dir: Path,
    *args: str,
    python_flags: tuple[str, ...] = (),
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OBJECTSTORE_", "DEMO_"))}
    env["DEMO_DATA_DIR"] = str(data_dir)
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, *python_flags, str(MANAGE), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_key_pair_is_created_once_and_private_key_is_owner_only(tmp_path):
    private_path, public_path = ensure_key_pair(tmp_path / "keys")
    private_key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
    public_key = serialization.load_pem_public_key(public_path.read_bytes())
    assert isinstance(private_key, Ed25519PrivateKey)
    assert isinstance(public_key, Ed25519PublicKey)
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    signature = private_key.sign(b"demo")
    public_key.verify(signature, b"demo")  # raises if the pair does not match

    before = private_path.read_bytes()
    assert ensure_key_pair(tmp_path / "keys") == (private_path, public_path)
    assert private_path.read_bytes() == before
    assert private_path.name == f"{DEMO_KID}.private.pem"


def test_missing_public_key_is_derived_again(tmp_path):
    _, public_path = ensure_key_pair(tmp_path)
    expected = public_path.read_bytes()
    public_path.unlink()
    ensure_key_pair(tmp_path)
    assert public_path.read_bytes() == expected


def test_a_non_ed25519_private_key_is_refused_with_a_hint(tmp_path):
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / f"{DEMO_KID}.private.pem").write_bytes(pem)
    with pytest.raises(ValueError, match="not an Ed25519 key; delete it"):
        ensure_key_pair(tmp_path)


@pytest.mark.parametrize(
    ("argv", "run_main", "expected"),
    [
        (["manage.py", "runserver"], None, True),
        (["manage.py", "runserver", "8001"], None, True),
        (["manage.py", "runserver"], "true", False),
        (["manage.py", "runserver", "--noreload"], None, False),
        (["manage.py", "migrate"], None, False),
        (["manage.py"], None, False),
    ],
)
def test_autoreloader_parent_detection(argv, run_main, expected):
    environ = {"RUN_MAIN": run_main} if run_main else {}
    assert is_autoreloader_parent(argv, environ) is expected


def test_external_objectstore_with_a_signing_key(tmp_path):
    environ = {
        "OBJECTSTORE_URL": "https://objectstore.example.com",
        "OBJECTSTORE_KID": "prod",
        "OBJECTSTORE_SECRET_KEY_FILE": "/run/secrets/objectstore.pem",
    }
    config = objectstore_settings(tmp_path, USECASES, environ=environ, argv=["manage.py"])
    assert config == {
        "URL": "https://objectstore.example.com",
        "PUBLIC_URL": None,
        "TOKEN": {
            "KID": "prod",
            "SECRET_KEY_FILE": "/run/secrets/objectstore.pem",
            "EXPIRY_SECONDS": 60,
        },
        "USECASES": USECASES,
    }
    # Pointing at a real Objectstore creates no demo keys.
    assert not (tmp_path / "keys").exists()


def test_external_objectstore_with_a_static_token_and_public_url(tmp_path):
    environ = {
        "OBJECTSTORE_URL": "http://objectstore:8888",
        "OBJECTSTORE_PUBLIC_URL": "http://localhost:8888",
        "OBJECTSTORE_TOKEN": "eyJhbGciOiJFZERTQSJ9.e30.c2ln",
    }
    config = objectstore_settings(tmp_path, USECASES, environ=environ)
    assert config["TOKEN"] == "eyJhbGciOiJFZERTQSJ9.e30.c2ln"
    assert config["PUBLIC_URL"] == "http://localhost:8888"


def test_external_objectstore_without_auth(tmp_path):
    config = objectstore_settings(tmp_path, USECASES, environ={"OBJECTSTORE_URL": "http://os:1"})
    assert config["TOKEN"] is None


def test_half_a_signing_configuration_is_an_error(tmp_path):
    environ = {"OBJECTSTORE_URL": "http://os:1", "OBJECTSTORE_KID": "prod"}
    with pytest.raises(ValueError, match="OBJECTSTORE_SECRET_KEY_FILE"):
        objectstore_settings(tmp_path, USECASES, environ=environ)


def test_autoreloader_parent_starts_no_server_but_creates_keys(tmp_path):
    config = objectstore_settings(tmp_path, USECASES, environ={}, argv=["manage.py", "runserver"])
    assert config["URL"] == "http://127.0.0.1:9"
    assert config["TOKEN"]["KID"] == DEMO_KID
    assert Path(config["TOKEN"]["SECRET_KEY_FILE"]).exists()
    assert not (tmp_path / "objects").exists()


def test_check_and_migrations_are_complete(tmp_path):
    done = manage(tmp_path, "check", "--fail-level", "WARNING")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout
    done = manage(tmp_path, "makemigrations", "--check", "--dry-run", "demo")
    assert done.returncode == 0, done.stdout + done.stderr


def test_demo_views_test_suite(tmp_path):
    """The demo's own Django tests (testproject/demo/tests.py) against the
    embedded, auth-enforcing server."""
    # -W error, as for this suite: a leaked file or socket fails the run.
    done = manage(
        tmp_path,
        *("test", "testproject.demo", "--verbosity", "2", "--noinput"),
        python_flags=("-X", "dev", "-W", "error"),
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    ran = [line for line in output.splitlines() if line.startswith("Ran ")]
    assert ran, output
    assert int(ran[0].split()[1]) >= 5, output
    assert "\nOK" in output


EXPIRY_SCRIPT = """
from django.core.files.base import ContentFile
from testproject.demo.models import Attachment, Organization, Project

org = Organization.objects.create(name="Acme")
project = Project.objects.create(organization=org, name="Web")
attachment = Attachment(project=project)
attachment.file.save("log.txt", ContentFile(b"short-lived"))
meta = attachment.file.storage.metadata(attachment.file.name)
lifetime = (meta.time_expires - meta.time_created).total_seconds()
print(attachment.file.name, type(meta.expiration_policy).__name__, round(lifetime))
"""


def test_expiration_comes_from_settings(tmp_path):
    env = {"DEMO_EXPIRATION": "ttl:2m"}
    done = manage(tmp_path, "migrate", "--noinput", "--verbosity", "0", extra_env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    done = manage(tmp_path, "shell", "--command", EXPIRY_SCRIPT, extra_env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    name, policy, lifetime = done.stdout.splitlines()[-1].split()
    assert name.startswith("org=1;project=1/")
    assert policy == "TimeToLive"
    assert lifetime == "120"


def test_demo_against_an_external_objectstore(tmp_path):
    """OBJECTSTORE_URL + OBJECTSTORE_KID + OBJECTSTORE_SECRET_KEY_FILE point the
    demo at another server (here a LocalServer with the test key, standing in
    for a real Objectstore); the demo then starts no server and makes no keys."""
    from django_objectstore.server import KeyConfig, LocalServer

    keys = ROOT / "tests" / "keys"
    server = LocalServer(
        auth_enforce=True,
        auth_keys={
            "test_kid": KeyConfig(
                key_files=[keys / "test_kid.public.pem"],
                max_permissions=["object.read", "object.write", "object.delete"],
            )
        },
    )
    with server:
        env = {
            "OBJECTSTORE_URL": server.url,
            "OBJECTSTORE_KID": "test_kid",
            "OBJECTSTORE_SECRET_KEY_FILE": str(keys / "test_kid.private.pem"),
        }
        done = manage(
            tmp_path,
            *("test", "testproject.demo", "--noinput"),
            python_flags=("-X", "dev", "-W", "error"),
            extra_env=env,
        )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "\nOK" in output
    assert not (tmp_path / "keys").exists()
    assert not (tmp_path / "objects").exists()
