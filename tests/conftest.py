from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

#: The settings module: tests.settings, or tests.apps.settings for the
#: third-party apps project (tox environments apps-django52 and apps-django6).
SETTINGS = os.environ.get("OBJECTSTORE_TEST_SETTINGS", "tests.settings")
APPS = Path(__file__).resolve().parent / "apps"


def pytest_configure(config: pytest.Config) -> None:
    # Configured here rather than with DJANGO_SETTINGS_MODULE so that, with
    # --import-mode=append, the installed django_objectstore wins over the
    # source tree while tests.settings stays importable.
    from django.conf import settings

    test_settings = importlib.import_module(SETTINGS)
    if not settings.configured:
        settings.configure(
            **{name: getattr(test_settings, name) for name in dir(test_settings) if name.isupper()}
        )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # Each settings module has its own tests: tests/apps needs the third-party
    # apps installed, everything else runs without them.
    inside = collection_path == APPS or APPS in collection_path.parents
    if SETTINGS == "tests.apps.settings":
        return None if inside or collection_path in APPS.parents else True
    return True if inside else None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # A filtered run that selects nothing ("no tests ran") is not a failure.
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK
