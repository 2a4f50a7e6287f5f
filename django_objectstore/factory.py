"""One shared Objectstore client per process, built from ``OBJECTSTORE``.

The client is created on first use (never at import or in a storage's
``__init__``), shared by every thread (its connection pool is thread-safe),
and rebuilt after ``OBJECTSTORE`` changes (``override_settings`` sends
``setting_changed``, which drops the cached client).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from django_objectstore._redact import looks_secret, scrub, shown
from django_objectstore.conf import PERMISSIONS, TOKEN_KEYS, objectstore_settings

if TYPE_CHECKING:
    from django_objectstore.client import Client, SecretKey, Session, Usecase

__all__ = [
    "KeyMaterialError",
    "build_token",
    "get_client",
    "get_session",
    "get_token",
    "get_usecase",
    "reset",
]

_lock = threading.RLock()
_client: Client | None = None
_token: list[SecretKey | str | None] = []  # [token] once built; a list so None can be cached
_usecases: dict[str, Usecase] = {}


class KeyMaterialError(ImproperlyConfigured):
    """The configured secret key cannot be read or is not an Ed25519 key.

    Its message never contains key material (scrubbed again here, in case a
    caller formats a value that holds some)."""

    def __init__(self, message: str) -> None:
        super().__init__(scrub(message))


def build_token(token: object) -> SecretKey | str | None:
    """Turn ``OBJECTSTORE['TOKEN']`` into what ``Client(token=...)`` takes:
    ``None``, a pre-signed JWT string, or a ``SecretKey`` built from a dict
    with ``KID`` and ``SECRET_KEY`` (PEM text) or ``SECRET_KEY_FILE`` (path).

    Raises ``ImproperlyConfigured`` naming the bad key; never includes key
    material in the message, whichever entry it was pasted into.
    """
    if token is None:
        return None
    if isinstance(token, str):
        if "-----BEGIN" in token:
            raise KeyMaterialError(
                "OBJECTSTORE['TOKEN'] holds PEM text, not a JWT. Put the private key in a "
                "file and use TOKEN = {'KID': '<key id>', 'SECRET_KEY_FILE': '<path>'} "
                "(manage.py objectstore_keygen writes one)."
            )
        if token.count(".") != 2:
            raise ImproperlyConfigured(
                "OBJECTSTORE['TOKEN'] is a string but does not look like a JWT "
                "(three dot-separated parts). Use a dict with KID and SECRET_KEY or "
                "SECRET_KEY_FILE to sign tokens locally."
            )
        return token
    if not isinstance(token, dict):
        raise ImproperlyConfigured(
            "OBJECTSTORE['TOKEN'] must be None, a JWT string or a dict with KID and "
            f"SECRET_KEY or SECRET_KEY_FILE, got a {type(token).__name__}."
        )
    unknown = set(token) - TOKEN_KEYS
    if unknown:
        raise ImproperlyConfigured(
            "Unknown key(s) in OBJECTSTORE['TOKEN']: "
            f"{', '.join(sorted(_key_names(unknown)))}; "
            f"allowed: {', '.join(sorted(TOKEN_KEYS))}."
        )
    kid = token.get("KID")
    if not isinstance(kid, str) or not kid:
        raise ImproperlyConfigured("OBJECTSTORE['TOKEN']['KID'] must be a non-empty string.")
    if looks_secret(kid):
        raise KeyMaterialError(
            "OBJECTSTORE['TOKEN']['KID'] looks like key material (not shown). KID is the "
            "key's id as the server's OS__AUTH__KEYS names it, e.g. 'my-app'; the private "
            "key goes in SECRET_KEY_FILE."
        )
    has_key, has_file = "SECRET_KEY" in token, "SECRET_KEY_FILE" in token
    if has_key == has_file:
        raise ImproperlyConfigured(
            "OBJECTSTORE['TOKEN'] needs exactly one of SECRET_KEY (PEM text) and "
            "SECRET_KEY_FILE (path to a PEM file)."
        )
    if has_file:
        path = token["SECRET_KEY_FILE"]
        if looks_secret(path):
            raise KeyMaterialError(
                "OBJECTSTORE['TOKEN']['SECRET_KEY_FILE'] holds what looks like the key "
                "itself (not shown), not a path. Save the key to a file readable only by "
                "this site and give its path (or put PEM text in SECRET_KEY instead)."
            )
        try:
            secret = Path(path).read_text(encoding="ascii")
        except (OSError, TypeError, UnicodeDecodeError) as exc:
            hint = (
                " Create it with: python manage.py objectstore_keygen "
                f"--kid {kid} --out {shown(path)}"
                if isinstance(exc, FileNotFoundError)
                else ""
            )
            raise KeyMaterialError(
                f"OBJECTSTORE['TOKEN']['SECRET_KEY_FILE'] = {shown(path)} cannot be read: "
                f"{type(exc).__name__}: {getattr(exc, 'strerror', None) or 'not a PEM text file'}."
                + hint
            ) from None
    else:
        secret = token["SECRET_KEY"]
        if not isinstance(secret, str):
            raise KeyMaterialError("OBJECTSTORE['TOKEN']['SECRET_KEY'] must be PEM text.")
    _check_private_key(secret, "SECRET_KEY_FILE" if has_file else "SECRET_KEY")
    expiry = token.get("EXPIRY_SECONDS", 60)
    if isinstance(expiry, bool) or not isinstance(expiry, int) or expiry <= 0:
        raise ImproperlyConfigured(
            f"OBJECTSTORE['TOKEN']['EXPIRY_SECONDS'] must be a positive int, got {shown(expiry)}."
        )
    permissions = token.get("PERMISSIONS")
    from django_objectstore.client import Permission, SecretKey

    perms: list[Any] | None = None
    if permissions is not None:
        if not isinstance(permissions, list | tuple) or not all(
            p in PERMISSIONS for p in permissions
        ):
            raise ImproperlyConfigured(
                f"OBJECTSTORE['TOKEN']['PERMISSIONS'] = {shown(permissions)}: use a list drawn "
                f"from {', '.join(PERMISSIONS)}."
            )
        perms = [Permission(p) for p in permissions]
    return SecretKey(kid, secret, expiry_seconds=expiry, permissions=perms)


def _key_names(keys: set[Any]) -> list[str]:
    return [str(key) if not looks_secret(key) else shown(key) for key in keys]


def _check_private_key(pem: str, key: str) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        loaded = load_pem_private_key(pem.encode("ascii", "replace"), password=None)
    except (ValueError, TypeError):
        raise KeyMaterialError(
            f"OBJECTSTORE['TOKEN'][{key!r}] is not an unencrypted PEM private key"
            + (" (a path belongs in SECRET_KEY_FILE)." if key == "SECRET_KEY" else ".")
        ) from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise KeyMaterialError(
            f"OBJECTSTORE['TOKEN'][{key!r}] holds a {type(loaded).__name__}; Objectstore "
            "needs an Ed25519 (EdDSA) private key."
        )


def _build_client() -> Client:
    from django_objectstore.client import Client

    conf = objectstore_settings
    metrics: Any = None
    if conf.metrics_backend:
        try:
            backend = import_string(conf.metrics_backend)
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"OBJECTSTORE['METRICS_BACKEND'] = {conf.metrics_backend!r} cannot be "
                f"imported: {exc}"
            ) from exc
        metrics = backend() if isinstance(backend, type) else backend
    return Client(
        conf.url,
        metrics_backend=metrics,
        propagate_traces=conf.propagate_traces,
        retries=conf.retries,
        timeout_ms=conf.timeout_ms,
        connection_kwargs=conf.connection_kwargs,
        token=get_token(),
        **conf.multipart,
    )


def get_token() -> SecretKey | str | None:
    """The configured token provider (``None``, a JWT string or a
    ``SecretKey``), built once and cached like the client."""
    if not _token:
        token = build_token(objectstore_settings.token)
        with _lock:
            if not _token:
                _token.append(token)
    return _token[0]


def get_client() -> Client:
    """The shared client, built from ``OBJECTSTORE`` on first use."""
    global _client
    client = _client
    if client is None:
        with _lock:
            client = _client
            if client is None:
                client = _client = _build_client()
    return client


def get_usecase(name: str) -> Usecase:
    """The ``Usecase`` for ``name`` with the configured compression and
    expiration; ``ImproperlyConfigured`` if ``name`` is not in ``USECASES``."""
    usecase = _usecases.get(name)
    if usecase is None:
        from django_objectstore.client import Usecase

        conf = objectstore_settings
        usecase = Usecase(
            name,
            compression=conf.compression(name),  # type: ignore[arg-type]
            expiration_policy=conf.expiration(name),
        )
        with _lock:
            usecase = _usecases.setdefault(name, usecase)
    return usecase


def get_session(usecase_name: str, **scope: str | int | bool) -> Session:
    """A session for ``usecase_name`` and the given scope (keyword order is
    the scope order on the wire). Cheap: no network I/O."""
    return get_client().session(get_usecase(usecase_name), **scope)


def reset() -> None:
    """Forget the shared client and usecases; the next call rebuilds them."""
    global _client
    with _lock:
        old, _client = _client, None
        if old is not None:
            old.close()
        _usecases.clear()
        _token.clear()


def _after_fork_in_child() -> None:
    # The shared client is fork-safe and stays; the lock guarding it must not
    # be inherited held by a thread that does not exist in the child.
    global _lock
    _lock = threading.RLock()


os.register_at_fork(after_in_child=_after_fork_in_child)


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "OBJECTSTORE":
        reset()
