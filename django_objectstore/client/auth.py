"""Authentication: Ed25519-signed JWTs and pre-signature keys.

Tokens are signed with PyJWT (``EdDSA``, header ``kid``), exactly as the
official client signs them: same header, same claims, same bytes for the same
second. ``SecretKey`` parses its PEM private key once (on first use) and hands
PyJWT the parsed key, and it can hand out cached tokens: the client reuses one
signed token per (usecase, scope, permissions, expiry) until only a quarter of
its validity is left, so a busy session signs a few tokens a minute instead of
one per request.
"""

from __future__ import annotations

import base64
import os
import threading
import time
import weakref
from enum import StrEnum
from typing import Final, Self, TypeAlias

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from django_objectstore import _protocol
from django_objectstore.client.scope import Scope

__all__ = ["Permission", "SecretKey", "TokenGenerator", "TokenProvider"]

# A cached token is reused while more than this share of its validity is left.
_REUSE_WHILE_REMAINING: Final = 0.25
# Distinct (usecase, scope, permissions, expiry) entries kept per key.
_MAX_CACHED_TOKENS: Final = 4096
# Clock for token reuse (a seam for tests).
_monotonic = time.monotonic


class Permission(StrEnum):
    """Permissions an Objectstore token can grant."""

    OBJECT_READ = _protocol.PERMISSION_READ
    OBJECT_WRITE = _protocol.PERMISSION_WRITE
    OBJECT_DELETE = _protocol.PERMISSION_DELETE

    @classmethod
    def max(cls) -> list[Self]:
        """All permissions."""
        return list(cls.__members__.values())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class SecretKey:
    """An Ed25519 private key (PEM text) with its key id, used to sign
    request tokens (JWT, EdDSA) and pre-signed URLs.

    ``expiry_seconds`` is the default token validity and ``permissions`` the
    default (and maximum) permissions of the tokens it signs.
    """

    def __init__(
        self,
        kid: str,
        secret_key: str,
        expiry_seconds: int = 60,
        permissions: list[Permission] | None = None,
    ) -> None:
        self.kid = kid
        self.secret_key = secret_key
        self.expiry_seconds = expiry_seconds
        self.permissions = permissions if permissions is not None else Permission.max()
        self._lock = threading.Lock()
        self._parsed: tuple[str, Ed25519PrivateKey] | None = None
        self._tokens: dict[tuple[str, str, tuple[str, ...], int], tuple[str, float]] = {}
        _keys.add(self)

    def __repr__(self) -> str:
        # Never show the key material.
        return (
            f"SecretKey(kid={self.kid!r}, expiry_seconds={self.expiry_seconds!r}, "
            f"permissions={[str(p) for p in self.permissions]!r})"
        )

    def _private_key(self) -> Ed25519PrivateKey:
        parsed = self._parsed
        if parsed is not None and parsed[0] is self.secret_key:
            return parsed[1]
        try:
            key = load_pem_private_key(self.secret_key.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"the secret key for kid {self.kid!r} is not a readable unencrypted PEM "
                "private key; pass the text of an Ed25519 private key "
                "('-----BEGIN PRIVATE KEY-----...')"
            ) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(
                f"the secret key for kid {self.kid!r} is not an Ed25519 key; "
                "Objectstore tokens and pre-signed URLs need an Ed25519 (EdDSA) key"
            )
        self._parsed = (self.secret_key, key)
        return key

    def _check_permissions(self, permissions: list[Permission] | None) -> list[Permission]:
        if permissions is None:
            return list(self.permissions)
        granted = {str(p) for p in self.permissions}
        escalated = sorted({str(p) for p in permissions} - granted)
        if escalated:
            raise ValueError(
                f"requested permissions not granted to this secret key: {escalated} "
                f"(it grants {sorted(granted)})"
            )
        return list(permissions)

    def _sign(self, usecase: str, scope: Scope, permissions: list[Permission], expiry: int) -> str:
        claims = {
            "res": {"os:usecase": usecase, **{k: str(v) for k, v in scope.dict().items()}},
            "permissions": [str(p) for p in permissions],
            "exp": int(time.time()) + expiry,
        }
        return jwt.encode(claims, self._private_key(), algorithm="EdDSA", headers={"kid": self.kid})

    def token_for_scope(
        self,
        usecase: str,
        scope: Scope,
        permissions: list[Permission] | None = None,
        expiry_seconds: int | None = None,
    ) -> str:
        """Sign a fresh token for ``usecase`` and ``scope``. ``permissions``
        must be a subset of this key's; ``expiry_seconds`` defaults to the
        key's. Raises ``ValueError`` on escalation or an unusable key."""
        resolved = self._check_permissions(permissions)
        expiry = self.expiry_seconds if expiry_seconds is None else expiry_seconds
        return self._sign(usecase, scope, resolved, expiry)

    #: Older name of :meth:`token_for_scope`.
    sign_for_scope = token_for_scope

    def cached_token_for_scope(
        self,
        usecase: str,
        scope: Scope,
        permissions: list[Permission] | None = None,
        expiry_seconds: int | None = None,
    ) -> str:
        """Like :meth:`token_for_scope`, but return a previously signed token
        for the same arguments while more than a quarter of its validity is
        left. Thread-safe; this is what the client uses for its requests."""
        resolved = self._check_permissions(permissions)
        expiry = self.expiry_seconds if expiry_seconds is None else expiry_seconds
        cache_key = (usecase, str(scope), tuple(str(p) for p in resolved), expiry)
        now = _monotonic()
        cached = self._tokens.get(cache_key)
        if cached is not None and now < cached[1]:
            return cached[0]
        with self._lock:
            cached = self._tokens.get(cache_key)
            if cached is not None and now < cached[1]:
                return cached[0]
            token = self._sign(usecase, scope, resolved, expiry)
            if len(self._tokens) >= _MAX_CACHED_TOKENS:
                self._tokens.clear()
            # exp has whole-second resolution: keep a second of slack.
            reuse_until = now + expiry * (1 - _REUSE_WHILE_REMAINING) - 1
            self._tokens[cache_key] = (token, reuse_until)
            return token

    def signature_for_canonical_form(self, canonical_form: str) -> str:
        """Ed25519 signature of ``canonical_form``, base64url without padding
        (the ``os_sig`` value of a pre-signed URL)."""
        return _b64url(self._private_key().sign(canonical_form.encode("utf-8")))


# Keys whose token-cache lock a forked child must not inherit held.
_keys: weakref.WeakSet[SecretKey] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # Another thread may have been signing when the parent forked: that lock
    # would stay held forever in the child. The cached tokens stay valid.
    for key in list(_keys):
        key._lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)

#: Older name of :class:`SecretKey`.
TokenGenerator = SecretKey

#: What ``Client(token=...)`` accepts: a key that signs tokens, or a fixed token.
TokenProvider: TypeAlias = SecretKey | str
