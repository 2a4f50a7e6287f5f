"""Where the demo's Objectstore comes from.

By default the demo runs an Objectstore-compatible server inside its own process
(``django_objectstore.server.LocalServer``), keeps its data under
``testproject/data/`` and enforces authentication: Django signs a short-lived
EdDSA token for every request with a demo key pair created here on first run, so
the demo goes through the same flow as production.

Setting ``OBJECTSTORE_URL`` points the demo at a real Objectstore instead; the
token then comes from ``OBJECTSTORE_TOKEN`` (a pre-signed JWT) or from
``OBJECTSTORE_KID`` plus ``OBJECTSTORE_SECRET_KEY_FILE`` (an Ed25519 private key
in PEM form), or is left out for a server that does not enforce auth.

Nothing here imports Django, so settings can use it.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = [
    "DEMO_KID",
    "DEMO_PERMISSIONS",
    "ensure_key_pair",
    "is_autoreloader_parent",
    "objectstore_settings",
    "start_embedded_server",
]

#: Key id of the demo key pair, as the embedded server's key directory names it.
DEMO_KID = "demo"
DEMO_PERMISSIONS = ("object.read", "object.write", "object.delete")

# A URL that is never contacted: the parent process of Django's autoreloader
# only watches files and restarts the child, which runs the real server.
_UNUSED_URL = "http://127.0.0.1:9"

_lock = threading.Lock()
_servers: dict[Path, Any] = {}


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def ensure_key_pair(key_dir: Path, kid: str = DEMO_KID) -> tuple[Path, Path]:
    """Return ``(private_pem, public_pem)`` for ``kid`` under ``key_dir``,
    creating an Ed25519 key pair on first use. The private key file is readable
    by its owner only. Safe when two processes start at once: each file is
    written to a temporary name and renamed, and the public key is always
    derived from the private key that won."""
    key_dir.mkdir(parents=True, exist_ok=True)
    private_path = key_dir / f"{kid}.private.pem"
    public_path = key_dir / f"{kid}.public.pem"
    if not private_path.exists():
        private_pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_atomically(private_path, private_pem, 0o600)
    private_key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
    if not isinstance(private_key, Ed25519PrivateKey):
        raise ValueError(
            f"{private_path} holds a {type(private_key).__name__}, not an Ed25519 key; "
            "delete it and the demo creates a new key pair"
        )
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if not public_path.exists() or public_path.read_bytes() != public_pem:
        _write_atomically(public_path, public_pem, 0o644)
    return private_path, public_path


def is_autoreloader_parent(
    argv: list[str] | None = None, environ: Mapping[str, str] | None = None
) -> bool:
    """True in the process that ``manage.py runserver`` uses only to watch files.

    With the autoreloader on, ``runserver`` starts a child process (marked with
    ``RUN_MAIN=true``) that serves requests and restarts it on code changes. The
    parent never handles a request, so it must not start a second server."""
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    return (
        len(argv) > 1
        and argv[1] == "runserver"
        and "--noreload" not in argv
        and environ.get("RUN_MAIN") != "true"
    )


def start_embedded_server(data_dir: Path, public_key: Path, port: int = 0) -> str:
    """Start (once per process and data folder) a local Objectstore server that
    keeps its objects under ``data_dir / "objects"`` and accepts tokens signed
    with the demo key; return its URL. It stops when the process exits."""
    from django_objectstore.server import KeyConfig, LocalServer

    root = (data_dir / "objects").resolve()
    with _lock:
        server = _servers.get(root)
        if server is None:
            root.mkdir(parents=True, exist_ok=True)
            server = LocalServer(
                storage="filesystem",
                path=str(root),
                auth_enforce=True,
                auth_keys={
                    DEMO_KID: KeyConfig(
                        key_files=[str(public_key)], max_permissions=list(DEMO_PERMISSIONS)
                    )
                },
                host="127.0.0.1",
                port=port,
            )
            server.start()
            atexit.register(server.stop)
            _servers[root] = server
    return str(server.url)


def _external_token(environ: Mapping[str, str]) -> str | dict[str, Any] | None:
    token = environ.get("OBJECTSTORE_TOKEN")
    if token:
        return token
    kid = environ.get("OBJECTSTORE_KID")
    key_file = environ.get("OBJECTSTORE_SECRET_KEY_FILE")
    if kid and key_file:
        return {"KID": kid, "SECRET_KEY_FILE": key_file, "EXPIRY_SECONDS": 60}
    if kid or key_file:
        raise ValueError(
            "set both OBJECTSTORE_KID and OBJECTSTORE_SECRET_KEY_FILE to sign tokens "
            "(or OBJECTSTORE_TOKEN for a pre-signed token); only one of the two is set"
        )
    return None


def objectstore_settings(
    data_dir: Path,
    usecases: dict[str, dict[str, Any]],
    environ: Mapping[str, str] | None = None,
    argv: list[str] | None = None,
) -> dict[str, Any]:
    """Build the ``OBJECTSTORE`` setting: a real Objectstore when
    ``OBJECTSTORE_URL`` is set, otherwise the embedded server (started here)."""
    environ = os.environ if environ is None else environ
    url = environ.get("OBJECTSTORE_URL")
    if url:
        return {
            "URL": url,
            "PUBLIC_URL": environ.get("OBJECTSTORE_PUBLIC_URL") or None,
            "TOKEN": _external_token(environ),
            "USECASES": usecases,
        }
    private_key, public_key = ensure_key_pair(data_dir / "keys")
    if is_autoreloader_parent(argv, environ):
        url = _UNUSED_URL
    else:
        port = int(environ.get("DEMO_OBJECTSTORE_PORT", "0"))
        url = start_embedded_server(data_dir, public_key, port=port)
    return {
        "URL": url,
        "PUBLIC_URL": None,
        "TOKEN": {"KID": DEMO_KID, "SECRET_KEY_FILE": str(private_key), "EXPIRY_SECONDS": 60},
        "USECASES": usecases,
    }
