"""Authentication and authorization as upstream does it (sections 9 and 10):
EdDSA JWTs from ``x-os-auth``/``Authorization``/``os_auth`` and pre-signed
URLs verified on the raw request path."""

from __future__ import annotations

import base64
import binascii
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from django_objectstore._protocol import (
    HEADER_AUTH,
    MAX_PRESIGN_SECONDS,
    presign_canonical_string,
)
from django_objectstore._protocol_parsing import loads_json, parse_unsigned
from django_objectstore.server.config import PERMISSIONS, ConfigError, KeyConfig
from django_objectstore.server.errors import HTTPError
from django_objectstore.server.headers import RequestHeaders

__all__ = ["AuthError", "Authorization", "KeyDirectory"]

_logger = logging.getLogger("django_objectstore.server")
_LEEWAY = 60
_CACHE_SIZE = 4096  # verified tokens remembered (clients reuse tokens)
_PRESIGN_SKEW = timedelta(seconds=60)
_AUDIENCE = "objectstore"
_ISSUERS = ("sentry", "relay")
# PyJWT checks the signature and decodes the claims; upstream validates only
# exp (with the server's clock, which tests may replace), aud and iss, so
# PyJWT's own time and claim checks stay off.
_PYJWT = jwt.PyJWT(
    options={
        "verify_signature": True,
        "verify_exp": False,
        "verify_nbf": False,
        "verify_iat": False,
        "verify_aud": False,
        "verify_iss": False,
        "verify_sub": False,
        "verify_jti": False,
    }
)


#: Authentication and authorization failures are ``HTTPError``s (the one
#: "answer with this status" exception); the old name stays for callers.
AuthError = HTTPError


def _bad_request(reason: str) -> AuthError:
    return AuthError(400, f"auth error: bad request: {reason}")


def _decode_failed(reason: str) -> AuthError:
    return AuthError(401, f"auth error: failed to decode token: {reason}")


_NOT_ALLOWED = "auth error: operation not allowed"


@dataclass(frozen=True)
class Authorization:
    """What a request may do. ``unrestricted`` when auth is not enforced;
    ``presigned`` grants reads of the signed path only; otherwise the
    token's usecase, scope grants and effective permissions."""

    unrestricted: bool = False
    presigned: bool = False
    usecase: str = ""
    scopes: tuple[tuple[str, str], ...] = ()
    permissions: frozenset[str] = frozenset()

    def check(self, permission: str, usecase: str, scopes: Sequence[tuple[str, str]]) -> None:
        """Raise a 403 ``AuthError`` unless ``permission`` is granted on
        (usecase, scopes)."""
        if self.unrestricted:
            return
        if self.presigned:
            if permission != "object.read":
                raise AuthError(403, _NOT_ALLOWED)
            return
        if permission not in self.permissions or usecase != self.usecase:
            raise AuthError(403, _NOT_ALLOWED)
        grants = self.scopes
        for name, value in scopes:
            if not any(g_name == name and g_value in (value, "*") for g_name, g_value in grants):
                raise AuthError(403, _NOT_ALLOWED)


UNRESTRICTED = Authorization(unrestricted=True)


@dataclass(frozen=True)
class _Key:
    versions: tuple[Ed25519PublicKey, ...]
    max_permissions: frozenset[str]


def _load_key(path: Path, kid: str) -> Ed25519PublicKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read key file {str(path)!r} of kid {kid!r}: {exc.strerror}"
        ) from None
    try:
        key = load_pem_public_key(data)
    except ValueError:
        raise ConfigError(
            f"key file {str(path)!r} of kid {kid!r} is not a PEM public key "
            "(expected '-----BEGIN PUBLIC KEY-----')"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"key file {str(path)!r} of kid {kid!r} is not an Ed25519 public key")
    return key


class KeyDirectory:
    """Verifies tokens and pre-signatures against the configured keys."""

    def __init__(
        self,
        keys: Mapping[str, KeyConfig],
        *,
        enforce: bool,
        clock: Callable[[], datetime],
    ) -> None:
        if enforce and not keys:
            raise ConfigError(
                "auth is enforced but no keys are configured; add at least one key "
                "(OS__AUTH__KEYS / auth_keys) or turn enforcement off"
            )
        self.enforce = enforce
        self._clock = clock
        self._verified = _TokenCache(_CACHE_SIZE)
        self._keys = {
            kid: _Key(
                tuple(_load_key(Path(f), kid) for f in config.key_files),
                frozenset(config.max_permissions),
            )
            for kid, config in keys.items()
        }

    def authorize(
        self, method: str, raw_path: str, raw_query: str, headers: RequestHeaders
    ) -> Authorization:
        """Authenticate one request (step 3 of section 8.3). Raises
        ``AuthError`` when enforcing; otherwise failures are ignored."""
        if not self.enforce and not self._keys:
            return UNRESTRICTED
        try:
            result = self._authenticate(method, raw_path, raw_query, headers)
        except AuthError as exc:
            if self.enforce:
                raise
            _logger.info("auth not enforced; this request would fail with: %s", exc.detail)
            return UNRESTRICTED
        return result if self.enforce else UNRESTRICTED

    def _authenticate(
        self, method: str, raw_path: str, raw_query: str, headers: RequestHeaders
    ) -> Authorization:
        raw_names = {piece.partition("=")[0] for piece in raw_query.split("&") if piece}
        if "os_sig" in raw_names:
            return self._presigned(method, raw_path, raw_query)
        token = _find_token(headers, raw_query)
        if token is None:
            raise _bad_request("No authorization token provided")
        return self._verify_token(token)

    def _verify_token(self, token: str) -> Authorization:
        now = self._clock().timestamp()
        cached = self._verified.get(token, now)
        if cached is not None:
            return cached
        segments = _jws_segments(token)
        if segments is None:
            raise _decode_failed("not a compact JWS with canonical base64url segments")
        try:
            header = loads_json(segments[0])
        except ValueError as exc:
            raise _decode_failed(f"invalid token header ({exc})") from None
        if not isinstance(header, dict):
            raise _decode_failed("invalid token header")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise _bad_request("JWT header is missing `kid` field")
        key = self._keys.get(kid)
        if key is None:
            raise AuthError(401, "auth error: unknown key")
        if header.get("alg") != "EdDSA":
            raise _decode_failed("unsupported algorithm (expected EdDSA)")
        claims = _verify_signature(token, key.versions)
        exp = claims.get("exp")
        if not isinstance(exp, int) or isinstance(exp, bool):
            raise _decode_failed("missing or invalid `exp` claim")
        if exp + _LEEWAY < now:
            raise _decode_failed("token has expired")
        authorization = _authorization(claims, key)
        self._verified.put(token, authorization, exp + _LEEWAY)
        return authorization

    def _presigned(self, method: str, raw_path: str, raw_query: str) -> Authorization:
        if method not in ("GET", "HEAD"):
            raise AuthError(403, "auth error: presigned URLs are not supported for this method")
        params: dict[str, str] = {}
        for name, value in parse_qsl(raw_query, keep_blank_values=True):
            params.setdefault(name, value)
        kid = params.get("os_kid")
        sig = params.get("os_sig")
        timestamp = params.get("os_timestamp")
        duration_text = params.get("os_duration")
        if not kid or sig is None or timestamp is None or duration_text is None:
            raise _bad_request("missing pre-signing parameter (os_kid, os_timestamp, os_duration)")
        signed_at = _parse_presign_timestamp(timestamp)
        if signed_at is None:
            raise _bad_request("invalid os_timestamp")
        try:
            duration = parse_unsigned(duration_text)
        except ValueError as exc:
            raise _bad_request(f"invalid os_duration: {exc}") from None
        key = self._keys.get(kid)
        if key is None:
            raise AuthError(401, "auth error: unknown key")
        if duration > MAX_PRESIGN_SECONDS:
            raise _bad_request("os_duration exceeds the maximum of 7 days")
        now = self._clock()
        if not signed_at - _PRESIGN_SKEW <= now <= signed_at + timedelta(seconds=duration):
            raise AuthError(401, "auth error: pre-signed URL is expired or not yet valid")
        signature = _decode_signature(sig)
        message = presign_canonical_string(method, raw_path, raw_query).encode("utf-8")
        for version in key.versions:
            try:
                version.verify(signature, message)
                break
            except InvalidSignature:
                continue
        else:
            raise AuthError(401, "auth error: failed to verify token")
        if "object.read" not in key.max_permissions:
            raise AuthError(403, _NOT_ALLOWED)
        return Authorization(presigned=True, permissions=frozenset({"object.read"}))


def _verify_signature(token: str, versions: Sequence[Ed25519PublicKey]) -> dict[str, Any]:
    """The claims of ``token`` once PyJWT has verified its EdDSA signature
    with one of the key's versions. Time-based and audience/issuer claims are
    checked by the caller (with the server's clock and upstream's rules)."""
    for version in versions:
        try:
            return _PYJWT.decode(token, key=version, algorithms=["EdDSA"])
        except jwt.InvalidSignatureError:
            continue
        except (jwt.InvalidTokenError, RecursionError):
            raise _decode_failed("invalid claims") from None
    raise AuthError(401, "auth error: failed to verify token")


def _authorization(claims: Mapping[str, object], key: _Key) -> Authorization:
    """What verified ``claims`` grant (section 9.3); 401 for invalid claims."""
    if "aud" in claims:
        aud = claims["aud"]
        auds = aud if isinstance(aud, list) else [aud]
        if _AUDIENCE not in auds:
            raise _decode_failed("invalid audience")
    if "iss" in claims and claims["iss"] not in _ISSUERS:
        raise _decode_failed("invalid issuer")
    res = claims.get("res")
    if not isinstance(res, dict) or not isinstance(res.get("os:usecase"), str):
        raise _decode_failed("missing or invalid `res` claim")
    grants: list[tuple[str, str]] = []
    for name, value in res.items():
        if name == "os:usecase":
            continue
        if not isinstance(value, str):
            raise _decode_failed(f"scope {name!r} in `res` must be a string")
        grants.append((name, value))
    permissions = claims.get("permissions")
    if not isinstance(permissions, list) or not all(p in PERMISSIONS for p in permissions):
        raise _decode_failed("missing or invalid `permissions` claim")
    return Authorization(
        usecase=str(res["os:usecase"]),
        scopes=tuple(grants),
        permissions=frozenset(permissions) & key.max_permissions,
    )


class _TokenCache:
    """Authorizations of verified tokens until they expire, at most
    ``size`` of them (the least recently used goes first). Clients reuse a
    token for its whole life, so most requests skip the signature check."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[str, tuple[Authorization, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str, now: float) -> Authorization | None:
        with self._lock:
            entry = self._entries.get(token)
            if entry is None:
                return None
            if entry[1] < now:
                del self._entries[token]
                return None
            self._entries.move_to_end(token)
            return entry[0]

    def put(self, token: str, authorization: Authorization, valid_until: int) -> None:
        with self._lock:
            self._entries[token] = (authorization, valid_until)
            self._entries.move_to_end(token)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


def _find_token(headers: RequestHeaders, raw_query: str) -> str | None:
    for name in (HEADER_AUTH, "authorization"):
        value = headers.get(name)
        if value is not None:
            if value[:7].lower() == "bearer ":
                return value[7:]
            break  # present without the prefix: the next header is not consulted
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        if name == "os_auth":
            return value
    return None


_PRESIGN_TS = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(\.\d+)?(Z|\+00:00|[+-]\d\d:\d\d)?"
)


def _parse_presign_timestamp(text: str) -> datetime | None:
    match = _PRESIGN_TS.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if zone not in (None, "Z", "+00:00") and fraction is None:
        return None
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC
        )
    except ValueError:
        return None
    if moment.year < 1970:
        return None
    if fraction:
        moment += timedelta(microseconds=int(fraction[1:7].ljust(6, "0")))
    return moment


def _jws_segments(token: str) -> tuple[bytes, bytes, bytes] | None:
    """Decode the three segments of a compact JWS; ``None`` unless each is
    canonical unpadded base64url (no stray trailing bits), as upstream's
    strict decoder requires."""
    segments = token.split(".")
    if len(segments) != 3:
        return None
    decoded: list[bytes] = []
    for segment in segments:
        try:
            raw = base64.b64decode(segment + "=" * (-len(segment) % 4), b"-_", validate=True)
        except (binascii.Error, ValueError):
            return None
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != segment:
            return None
        decoded.append(raw)
    return decoded[0], decoded[1], decoded[2]


def _decode_signature(text: str) -> bytes:
    if "=" in text or len(text) != 86:
        raise AuthError(401, "auth error: failed to verify token")
    try:
        raw = base64.b64decode(text + "==", altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise AuthError(401, "auth error: failed to verify token") from None
    if len(raw) != 64 or base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != text:
        # non-canonical encodings (stray trailing bits) are rejected, as upstream
        raise AuthError(401, "auth error: failed to verify token")
    return raw
