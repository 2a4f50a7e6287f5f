"""manage.py objectstore_migrate: FileSystemStorage -> Objectstore against a
real local server; reruns, interruption, failures, dry runs, memory."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from django_objectstore.server import LocalServer
from django_objectstore.storage import ObjectstoreStorage
from django_objectstore.testing import objectstore, objectstore_server  # noqa: F401
from tests.testapp.models import LegacyUpload, Note
from tests.testapp.storages import InterruptingStorage

pytestmark = [pytest.mark.usefixtures("objectstore"), pytest.mark.django_db]

ROOT = Path(__file__).resolve().parents[1]
FILES = {"a.txt": b"alpha" * 1000, "b.bin": os.urandom(300_000), "c.txt": b""}


@pytest.fixture(autouse=True)
def media(tmp_path: Path) -> Any:
    with override_settings(MEDIA_ROOT=str(tmp_path / "media")):
        yield tmp_path / "media"


@pytest.fixture
def folder() -> str:
    """A folder of its own per test: the test server keeps objects between
    tests, and names are keys."""
    return f"legacy/{uuid.uuid4().hex[:8]}"


def legacy_rows(folder: str) -> list[LegacyUpload]:
    rows = []
    for name, data in FILES.items():
        stored = default_storage.save(f"{folder}/{name}", ContentFile(data))
        rows.append(LegacyUpload.objects.create(file=stored))
    return rows


def migrate(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("objectstore_migrate", *args, stdout=out, stderr=err)
    except CommandError as exc:
        raise CommandError(f"{exc}\nstdout: {out.getvalue()}\nstderr: {err.getvalue()}") from exc
    return out.getvalue(), err.getvalue()


def assert_in_objectstore(rows: list[LegacyUpload], usecase: str = "plain") -> None:
    storage = ObjectstoreStorage(usecase)
    for row, data in zip(rows, FILES.values(), strict=True):
        row.refresh_from_db()
        with storage.open(row.file.name) as handle:
            assert handle.read() == data, row.file.name


def test_copies_verifies_and_updates_rows(folder: str) -> None:
    rows = legacy_rows(folder)
    out, err = migrate("testapp.LegacyUpload.file", "--usecase", "plain")
    assert "Copied 3 files (297.9 KiB); 0 already in Objectstore; 0 failed." in out
    assert err == ""  # not a terminal: no progress bar
    assert_in_objectstore(rows)
    # The sources are left alone.
    assert all(default_storage.exists(f"{folder}/{name}") for name in FILES)


def test_rerun_skips_what_is_done(folder: str) -> None:
    rows = legacy_rows(folder)
    migrate("testapp.LegacyUpload.file", "--usecase", "plain")
    names = sorted(LegacyUpload.objects.values_list("file", flat=True))
    out, _ = migrate("testapp.LegacyUpload.file", "--usecase", "plain")
    assert "Copied 0 files (0 B); 3 already in Objectstore; 0 failed." in out
    assert sorted(LegacyUpload.objects.values_list("file", flat=True)) == names
    assert_in_objectstore(rows)


def test_interrupted_run_resumes(folder: str) -> None:
    rows = legacy_rows(folder)
    storages = {
        "default": {"BACKEND": "tests.testapp.storages.InterruptingStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(STORAGES=storages):
        InterruptingStorage.opened = 0
        InterruptingStorage.interrupt_at = 3  # each file is opened twice: read, copy
        try:
            with pytest.raises(KeyboardInterrupt):
                migrate("--from", "default", "--usecase", "plain")
        finally:
            InterruptingStorage.interrupt_at = 0
        out, _ = migrate("--from", "default", "--usecase", "plain")
    assert "Copied 2 files" in out
    assert "1 already in Objectstore; 0 failed." in out
    assert_in_objectstore(rows)


def test_a_failing_file_is_reported_and_the_rest_go_on(folder: str) -> None:
    rows = legacy_rows(folder)
    broken = LegacyUpload.objects.create(file=f"{folder}/gone.txt")
    with pytest.raises(CommandError, match="1 file\\(s\\) failed") as raised:
        migrate("testapp.LegacyUpload.file", "--usecase", "plain")
    assert f"FAILED testapp.LegacyUpload.file '{folder}/gone.txt': missing" in str(raised.value)
    assert "Copied 3 files" in str(raised.value)
    assert_in_objectstore(rows)
    broken.refresh_from_db()
    assert broken.file.name == f"{folder}/gone.txt"


def test_dry_run_changes_nothing(folder: str) -> None:
    legacy_rows(folder)
    before = list(LegacyUpload.objects.values_list("file", flat=True))
    out, _ = migrate("testapp.LegacyUpload.file", "--usecase", "plain", "--dry-run", "-v", "2")
    assert "Dry run: would copy 3 files (297.9 KiB); 0 already in Objectstore; 0 failed." in out
    assert f"would copy testapp.LegacyUpload.file {folder}/a.txt (5000 bytes)" in out
    assert list(LegacyUpload.objects.values_list("file", flat=True)) == before
    out, _ = migrate("testapp.LegacyUpload.file", "--usecase", "plain")
    assert "Copied 3 files" in out


def test_whole_storage_and_progress_bar(folder: str) -> None:
    rows = legacy_rows(folder)
    extra = LegacyUpload.objects.create(
        file=rows[0].file.name,
        other=default_storage.save(f"other/{folder}/x.txt", ContentFile(b"x")),
    )
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        "objectstore": {
            "BACKEND": "django_objectstore.storage.ObjectstoreStorage",
            "OPTIONS": {"usecase": "plain"},
        },
    }
    with override_settings(STORAGES=storages):
        out, err = migrate("--from", "default", "--to", "objectstore", "--progress")
    # a.txt is named by two rows but copied once.
    assert "Copied 4 files" in out
    assert "4/4 files" in err
    assert "[" + "#" * 30 + "]" in err
    assert_in_objectstore(rows)
    extra.refresh_from_db()
    assert extra.file.name == LegacyUpload.objects.get(pk=rows[0].pk).file.name
    assert ObjectstoreStorage("plain").open(extra.other.name).read() == b"x"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Name the fields"),
        (["testapp.Nope.file", "--usecase", "plain"], "no such model field"),
        (["testapp.LegacyUpload.id", "--usecase", "plain"], "not a file field"),
        (["testapp.LegacyUpload.file"], "Say where to copy to"),
        (["testapp.LegacyUpload.file", "--to", "nope"], "not in settings.STORAGES"),
        (["testapp.LegacyUpload.file", "--usecase", "nope"], "not in OBJECTSTORE"),
        (["testapp.LegacyUpload.file", "--to", "x", "--usecase", "plain"], "not both"),
        (["testapp.Note.file"], "already uses that ObjectstoreStorage"),
    ],
)
def test_bad_arguments(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        migrate(*args)


@pytest.mark.slow
def test_memory_stays_bounded_for_a_big_file(tmp_path: Path) -> None:
    size = 256 << 20
    media = tmp_path / "big-media"
    (media / "legacy").mkdir(parents=True)
    block = os.urandom(1 << 20)
    digest = hashlib.sha256()
    with (media / "legacy" / "big.bin").open("wb") as out:
        for _ in range(size >> 20):
            out.write(block)
            digest.update(block)
    with LocalServer(storage="filesystem", path=tmp_path / "store", fsync=False) as server:
        result = subprocess.run(
            [
                sys.executable, "-m", "tests._migrate_child", str(media),
                str(tmp_path / "db.sqlite3"), server.url, "legacy/big.bin",
            ],
            cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        report = json.loads(result.stdout.splitlines()[-1])
        with override_settings(
            OBJECTSTORE={"URL": server.url, "USECASES": {"plain": {"COMPRESSION": "none"}}}
        ):
            copy = hashlib.sha256()
            with ObjectstoreStorage("plain").open(report["name"]) as handle:
                while data := handle.read(1 << 20):
                    copy.update(data)
    assert "Copied 1 files (256.0 MiB)" in report["out"]
    assert copy.digest() == digest.digest()
    grown = report["after"] - report["before"]
    assert grown < 64 * 1024, f"peak RSS grew by {grown // 1024} MiB migrating 256 MiB"


def test_scoped_field_gets_the_scope_it_gives_new_files(folder: str) -> None:
    """A field switched to ObjectstoreFileField (scope from the row) while its
    files are still on the old storage: copies land under each row's scope."""
    first = default_storage.save(f"notes/{folder}/a.txt", ContentFile(b"org five"))
    second = default_storage.save(f"notes/{folder}/b.txt", ContentFile(b"org six"))
    rows = [Note.objects.create(org_id=5, file=first), Note.objects.create(org_id=6, file=second)]
    out, _ = migrate("testapp.Note.file", "--from", "default")
    assert "Copied 2 files" in out
    for row, org, data in zip(rows, (5, 6), (b"org five", b"org six"), strict=True):
        row.refresh_from_db()
        assert row.file.name.startswith(f"org={org}/notes/")
        with row.file.open() as handle:
            assert handle.read() == data
    out, _ = migrate("testapp.Note.file", "--from", "default")
    assert "Copied 0 files (0 B); 2 already in Objectstore; 0 failed." in out
