"""``python -m tests._migrate_child MEDIA_ROOT DB URL NAME``: in a fresh
process, migrate the LegacyUpload row naming NAME into Objectstore and print
the process's peak RSS (VmHWM, KiB) before and after, as JSON."""

from __future__ import annotations

import json
import sys
from io import StringIO
from pathlib import Path

import django
from django.conf import settings
from django.core.management import call_command

from tests import settings as test_settings


def peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    media, db, url, name = sys.argv[1:5]
    conf = {key: getattr(test_settings, key) for key in dir(test_settings) if key.isupper()}
    conf.update(
        MEDIA_ROOT=media,
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": db}},
        OBJECTSTORE={"URL": url, "USECASES": {"plain": {"COMPRESSION": "none"}}},
    )
    settings.configure(**conf)
    django.setup()
    from tests.testapp.models import LegacyUpload

    call_command("migrate", run_syncdb=True, verbosity=0)
    row = LegacyUpload.objects.create(file=name)
    before = peak_rss_kib()
    out = StringIO()
    call_command(
        "objectstore_migrate", "testapp.LegacyUpload.file", "--usecase", "plain", stdout=out
    )
    after = peak_rss_kib()
    row.refresh_from_db()
    print(
        json.dumps({"before": before, "after": after, "name": row.file.name, "out": out.getvalue()})
    )


if __name__ == "__main__":
    main()
