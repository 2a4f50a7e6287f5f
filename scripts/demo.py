#!/usr/bin/env python3
"""Run the demo site with one command: ``python3 scripts/demo.py``.

Needs only Python >= 3.11. On first use it creates ``.venv-demo`` and installs
this project (editable) with the ``demo`` extras into it; later runs reuse it and
reinstall only when ``pyproject.toml`` changed. Then it migrates the demo
database, creates the demo login (admin/admin) and an example project, and
serves the site on http://localhost:8000/ until Ctrl-C.

The Objectstore server runs inside the site's own process (no second process to
start) with authentication enforced, and keeps everything under
``testproject/data/``. Set ``OBJECTSTORE_URL`` (plus ``OBJECTSTORE_TOKEN``, or
``OBJECTSTORE_KID`` and ``OBJECTSTORE_SECRET_KEY_FILE``) to use a real
Objectstore instead.

Options: ``--port 8001``, ``--host 0.0.0.0``, ``--reset`` (delete the demo data
first), ``--setup-only`` (install and migrate, do not serve).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-demo"
MANAGE = ROOT / "testproject" / "manage.py"
DATA = ROOT / "testproject" / "data"
STAMP = VENV / ".installed-from"


def venv_python() -> Path:
    if os.name == "nt":
        return VENV / "Scripts" / "python.exe"
    return VENV / "bin" / "python"


def install_fingerprint() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure_venv() -> Path:
    """Create ``.venv-demo`` and install the project into it, unless that is
    already done for the current ``pyproject.toml``."""
    python = venv_python()
    if not python.exists():
        print(f"Creating {VENV.name} (first run only) ...", flush=True)
        try:
            venv.create(VENV, with_pip=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            shutil.rmtree(VENV, ignore_errors=True)
            sys.exit(
                f"Could not create {VENV} ({exc}). On Debian and Ubuntu, "
                "install the venv module first: sudo apt-get install python3-venv"
            )
    fingerprint = install_fingerprint()
    if not STAMP.exists() or STAMP.read_text().strip() != fingerprint:
        print("Installing django-objectstore and the demo extras into it ...", flush=True)
        command = [python, "-m", "pip", "install", "--quiet", "--editable", f"{ROOT}[demo,server]"]
        if subprocess.run(command, check=False).returncode != 0:
            sys.exit(
                "Installing the demo's dependencies failed (see pip's output above); "
                "pip needs access to a package index. Run the demo again once fixed."
            )
        STAMP.write_text(fingerprint + "\n")
    return python


def manage(python: Path, *args: str) -> None:
    if subprocess.run([python, MANAGE, *args], check=False, cwd=ROOT).returncode != 0:
        sys.exit(f"manage.py {args[0]} failed (see above); --reset starts from scratch.")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run the django-objectstore demo site.")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on")
    parser.add_argument("--port", type=int, default=8000, help="port to serve on")
    parser.add_argument(
        "--reset", action="store_true", help=f"delete {DATA.relative_to(ROOT)} first"
    )
    parser.add_argument(
        "--setup-only", action="store_true", help="install and migrate, but do not serve"
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - run by any python3 on PATH
        sys.exit("The django-objectstore demo needs Python >= 3.11.")
    args = parse_args(argv)
    if args.reset and DATA.exists():
        print(f"Deleting {DATA} ...", flush=True)
        shutil.rmtree(DATA)
    python = ensure_venv()
    manage(python, "migrate", "--noinput", "--verbosity", "0")
    manage(python, "demo_setup")
    if args.setup_only:
        return 0
    shown_host = "localhost" if args.host in ("127.0.0.1", "localhost") else args.host
    where = (
        f"Objectstore at {os.environ['OBJECTSTORE_URL']}"
        if os.environ.get("OBJECTSTORE_URL")
        else f"embedded Objectstore server, data in {DATA}"
    )
    print(
        "\n"
        f"  Demo site:   http://{shown_host}:{args.port}/\n"
        f"  Admin:       http://{shown_host}:{args.port}/admin/  (login admin / admin)\n"
        f"  Storage:     {where}\n"
        "  Stop with Ctrl-C.\n",
        flush=True,
    )
    # --noreload: one process, so one embedded Objectstore server.
    command = [python, MANAGE, "runserver", f"{args.host}:{args.port}", "--noreload"]
    try:
        code = subprocess.call(command, cwd=ROOT)
    except KeyboardInterrupt:
        return 0
    if code not in (0, -2):
        print(
            f"The demo server stopped with exit code {code}. If port {args.port} is taken, "
            f"run: python3 scripts/demo.py --port {args.port + 1}",
            file=sys.stderr,
        )
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
