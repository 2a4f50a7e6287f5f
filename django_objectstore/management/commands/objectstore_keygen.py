"""``manage.py objectstore_keygen [--kid KID] [--out PATH] [--force]``: make
the Ed25519 key pair ``OBJECTSTORE["TOKEN"]`` signs with.

Writes the private key (PEM, PKCS#8, unencrypted) to ``--out`` with mode 0600
and the public key beside it (``<out without .pem>.public.pem``), then prints
the public key, the ``OS__AUTH__ENFORCE``/``OS__AUTH__KEYS`` lines a server
needs to trust it, and the ``OBJECTSTORE`` settings that use it. Never prints
the private key; refuses to overwrite a key file unless ``--force``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_objectstore.conf import PERMISSIONS

__all__ = ["Command", "public_key_path"]

_KID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


def public_key_path(private: Path) -> Path:
    """Where the public half of ``private`` is written."""
    stem = private.name[: -len(".pem")] if private.name.endswith(".pem") else private.name
    return private.with_name(f"{stem}.public.pem")


def _write(path: Path, data: bytes, mode: int, *, replace: bool) -> None:
    """Write ``data`` to ``path`` created with ``mode`` (never wider, whatever
    the umask says); with ``replace``, atomically over an existing file."""
    target = path.with_name(f".{path.name}.{os.getpid()}.tmp") if replace else path
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if replace:
        os.replace(target, path)


class Command(BaseCommand):
    # The settings may already name the key file this command is about to
    # create: a failing check (E006, unreadable key) must not stop it.
    requires_system_checks: list[str] = []
    help = (
        "Create the Ed25519 key pair for OBJECTSTORE['TOKEN'] and print what the server "
        "and the settings need."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--kid",
            default="django",
            help="key id: the name the server's OS__AUTH__KEYS gives the public key "
            "(default: django)",
        )
        parser.add_argument(
            "--out",
            default=None,
            metavar="PATH",
            help="private key file to write (default: ./objectstore-<kid>.pem); the public "
            "key goes beside it as <name>.public.pem",
        )
        parser.add_argument(
            "--force", action="store_true", help="replace existing key files at those paths"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        kid: str = options["kid"]
        if not _KID.fullmatch(kid):
            raise CommandError(
                f"--kid {kid!r}: use 1-64 letters, digits, '_' or '-' (the server's "
                "OS__AUTH__KEYS syntax and JWT headers carry it as is)."
            )
        private = Path(options["out"] or f"objectstore-{kid}.pem").expanduser().absolute()
        public = public_key_path(private)
        if any(c in str(public) for c in '"\\'):
            raise CommandError(
                f"--out {str(private)!r}: choose a path without '\"' or '\\' (the server's "
                "OS__AUTH__KEYS syntax cannot quote them)."
            )
        if not private.parent.is_dir():
            raise CommandError(f"--out: directory {str(private.parent)!r} does not exist.")
        existing = [str(p) for p in (private, public) if p.exists()]
        if existing and not options["force"]:
            raise CommandError(
                f"{' and '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; "
                "not overwriting a key (tokens "
                "signed with it would stop working). Pass --force to replace it, or --out "
                "to write elsewhere."
            )
        key = Ed25519PrivateKey.generate()
        private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public_pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        try:
            _write(private, private_pem, 0o600, replace=private.exists())
            _write(public, public_pem, 0o644, replace=public.exists())
        except OSError as exc:
            raise CommandError(f"Cannot write the key files: {exc}") from exc
        keys = "{%s={key_files=[%s],max_permissions=[%s]}}" % (  # noqa: UP031 - braces
            kid,
            json.dumps(str(public)),
            ",".join(json.dumps(p) for p in PERMISSIONS),
        )
        settings_snippet = (
            "OBJECTSTORE = {\n"
            '    "URL": "http://127.0.0.1:8888",\n'
            f'    "TOKEN": {{"KID": {json.dumps(kid)}, '
            f'"SECRET_KEY_FILE": {json.dumps(str(private))}}},\n'
            '    "USECASES": {...},\n'
            "}"
        )
        self.stdout.write(
            f"Private key: {private} (mode 0600; keep it secret, never commit it).\n"
            f"Public key:  {public}\n\n"
            f"{public_pem.decode('ascii')}\n"
            "The server must trust the public key (the real Objectstore, or "
            "`python -m django_objectstore.server run`; key_files is a path on the server's "
            "machine, so copy the public key there if it runs elsewhere):\n\n"
            "OS__AUTH__ENFORCE=true\n"
            f"OS__AUTH__KEYS={shlex.quote(keys)}\n\n"
            "(`manage.py objectstore_server` needs neither: it derives the public key "
            "from the settings below.)\n\n"
            "Django settings:\n\n"
            f"{settings_snippet}\n"
        )
