"""``manage.py objectstore_server``: run the local Objectstore-compatible
server for development, configured from ``OBJECTSTORE`` and flags.

By default it listens where ``OBJECTSTORE["URL"]`` points (if that is a
loopback address), stores objects on disk under ``--path``, and, when
``OBJECTSTORE["TOKEN"]`` holds a secret key, enforces auth with the matching
public key (derived from the private key, nothing to copy around).
Not a production store: use the real Objectstore for that.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from argparse import ArgumentTypeError
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_objectstore._protocol import parse_duration

__all__ = ["Command"]

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _duration(text: str) -> timedelta:
    try:
        value = parse_duration(text)
    except ValueError:
        value = timedelta(0)
    if value <= timedelta(0):
        raise ArgumentTypeError(f"{text!r} is not a positive duration such as 30m, 1h or 7d")
    return value


class Command(BaseCommand):
    help = "Run the local Objectstore-compatible server (development and tests only)."

    #: The running server, set by handle() once it listens.
    server: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started = threading.Event()
        self._stop = threading.Event()

    def shutdown(self) -> None:
        """Stop a server running in handle() (from another thread)."""
        self._stop.set()

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--addr",
            default=None,
            help="HOST:PORT to listen on (default: OBJECTSTORE['URL'] if loopback, "
            "else 127.0.0.1:8888; port 0 picks a free port)",
        )
        parser.add_argument("--storage", choices=("filesystem", "memory"), default="filesystem")
        parser.add_argument(
            "--path", default=".objectstore-data", help="storage root for --storage filesystem"
        )
        auth = parser.add_mutually_exclusive_group()
        auth.add_argument(
            "--auth",
            dest="auth",
            action="store_true",
            default=None,
            help="enforce auth (default when OBJECTSTORE['TOKEN'] has a secret key)",
        )
        auth.add_argument("--no-auth", dest="auth", action="store_false", help="disable auth")
        parser.add_argument(
            "--min-part-size",
            type=int,
            default=None,
            metavar="BYTES",
            help="refuse multipart uploads whose parts, except the last, are smaller than this, "
            "as S3/GCS-backed servers do with 5242880 (default: any size)",
        )
        parser.add_argument(
            "--no-multipart",
            dest="multipart",
            action="store_false",
            help="answer multipart requests 501, as the S3-compatible and BigTable backends do",
        )
        parser.add_argument(
            "--no-resumable",
            dest="resumable",
            action="store_false",
            help="answer resumable upload creates 501 (clients then send one plain put)",
        )
        parser.add_argument(
            "--resumable-session-ttl",
            type=_duration,
            default=None,
            metavar="DURATION",
            help="how long a resumable upload session lives after its creation, e.g. 1h or 7d "
            "(default: 7d)",
        )
        parser.add_argument(
            "--name-limit",
            choices=("gcs",),
            default=None,
            help="refuse object names over GCS's 1,024 bytes (usecase/scopes/objects/key) "
            "with the 500 production gives (default: no limit)",
        )

    def _address(self, addr: str | None) -> tuple[str, int]:
        if addr is None:
            from django_objectstore.conf import objectstore_settings

            try:
                parts = urlsplit(objectstore_settings.url)
            except ImproperlyConfigured:
                return "127.0.0.1", 8888
            if parts.hostname in _LOOPBACK:
                return parts.hostname or "127.0.0.1", parts.port or 80
            return "127.0.0.1", 8888
        host, sep, port = addr.rpartition(":")
        if not sep or not port.isdigit():
            raise CommandError(f"--addr {addr!r}: write it as HOST:PORT, e.g. 127.0.0.1:8888.")
        return host.strip("[]") or "127.0.0.1", int(port)

    def handle(self, *args: Any, **options: Any) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        from django_objectstore import factory
        from django_objectstore.client import SecretKey
        from django_objectstore.server import ConfigError, KeyConfig, LocalServer

        host, port = self._address(options["addr"])
        try:
            token = factory.get_token()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        auth = options["auth"]
        if auth is None:
            auth = isinstance(token, SecretKey)
        keys: dict[str, KeyConfig] = {}
        key_dir = Path(tempfile.mkdtemp(prefix="objectstore-keys-"))
        try:
            if auth:
                if not isinstance(token, SecretKey):
                    raise CommandError(
                        "--auth needs OBJECTSTORE['TOKEN'] with KID and SECRET_KEY or "
                        "SECRET_KEY_FILE, to know which public key to trust."
                    )
                private = load_pem_private_key(token.secret_key.encode("ascii"), password=None)
                public = key_dir / f"{token.kid}.public.pem"
                public.write_bytes(
                    private.public_key().public_bytes(
                        serialization.Encoding.PEM,
                        serialization.PublicFormat.SubjectPublicKeyInfo,
                    )
                )
                keys[token.kid] = KeyConfig(
                    key_files=[str(public)],
                    max_permissions=["object.read", "object.write", "object.delete"],
                )
            try:
                self.server = LocalServer(
                    storage=options["storage"],
                    path=options["path"] if options["storage"] == "filesystem" else None,
                    host=host,
                    port=port,
                    auth_enforce=auth,
                    auth_keys=keys,
                    min_part_size=options["min_part_size"],
                    multipart=options["multipart"],
                    resumable=options["resumable"],
                    name_limit=options["name_limit"],
                    **(
                        {"resumable_session_ttl": options["resumable_session_ttl"]}
                        if options["resumable_session_ttl"] is not None
                        else {}
                    ),
                ).start()
            except (ConfigError, OSError) as exc:
                raise CommandError(f"Cannot start the server on {host}:{port}: {exc}") from exc
            where = options["path"] if options["storage"] == "filesystem" else "memory"
            self.stderr.write(
                f"Objectstore (local, {where}, auth {'on' if auth else 'off'}) listening on "
                f"{self.server.url}; press Ctrl+C to stop."
            )
            self.started.set()
            try:
                self._stop.wait()
            except KeyboardInterrupt:
                pass
            finally:
                self.server.stop()
        finally:
            shutil.rmtree(key_dir, ignore_errors=True)
