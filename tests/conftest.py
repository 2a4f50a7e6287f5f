from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Configured here rather than with DJANGO_SETTINGS_MODULE so that, with
    # --import-mode=append, the installed django_objectstore wins over the
    # source tree while tests.settings stays importable.
    from django.conf import settings

    from tests import settings as test_settings

    if not settings.configured:
        settings.configure(
            **{name: getattr(test_settings, name) for name in dir(test_settings) if name.isupper()}
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # A filtered run that selects nothing ("no tests ran") is not a failure.
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK
