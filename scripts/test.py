#!/usr/bin/env python3
"""Run the whole test suite (every tox environment whose Python is present).

Needs only Python >= 3.11: it creates ``.venv-tools`` with tox and tox-uv on
first use, then runs ``tox``. Extra arguments go to tox, e.g.
``python3 scripts/test.py -e py311-django52 -- -k storage``.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".venv-tools"


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - run by any python3 on PATH
        sys.exit("django-objectstore needs Python >= 3.11 to run its tests.")
    python = TOOLS / "bin" / "python"
    if not python.exists():
        print(f"creating {TOOLS} with tox and tox-uv ...", flush=True)
        venv.create(TOOLS, with_pip=True)
        subprocess.run(
            [python, "-m", "pip", "install", "--quiet", "tox>=4.20", "tox-uv>=1.11"],
            check=True,
        )
    env = dict(os.environ)
    # Interpreters installed with pyenv are not on PATH unless selected; add them
    # so tox finds every Python of the matrix that this machine has.
    pyenv_root = Path(env.get("PYENV_ROOT", Path.home() / ".pyenv"))
    extra = sorted(glob.glob(str(pyenv_root / "versions" / "3.1[1-9]*" / "bin")), reverse=True)
    env["PATH"] = os.pathsep.join([*extra, env.get("PATH", "")])
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    args = argv or ["run-parallel", "--parallel", "2", "--parallel-no-spinner"]
    return subprocess.call([python, "-m", "tox", *args], cwd=ROOT, env=env)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
