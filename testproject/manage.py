#!/usr/bin/env python3
"""Django's command-line utility for the demo site (``python testproject/manage.py``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main() -> None:
    # The repository root makes ``testproject`` importable. Appended, not
    # prepended, so an installed django_objectstore (tox's wheel) wins over the
    # source tree, as in the test suite.
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.append(root)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
