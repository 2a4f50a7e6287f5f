"""The ``OBJECTSTORE`` setting, read on every access.

Nothing here is cached: each property reads ``django.conf.settings`` again, so
``override_settings(OBJECTSTORE=...)`` needs no plumbing. Values that are
expensive to build (the client) are cached by :mod:`django_objectstore.factory`,
which drops its cache when the setting changes.

The parsing helpers raise ``ImproperlyConfigured`` with the offending key and
value; the system checks in :mod:`django_objectstore.checks` run the same
helpers so a bad setting is reported by ``manage.py check`` before the first
request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, Final
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from django_objectstore._protocol import parse_expiration
from django_objectstore._redact import shown
from django_objectstore.client import ExpirationPolicy, TimeToIdle, TimeToLive

__all__ = [
    "COMPRESSIONS",
    "DEFAULTS",
    "KNOWN_KEYS",
    "PERMISSIONS",
    "TOKEN_KEYS",
    "USECASE_KEYS",
    "ObjectstoreSettings",
    "ScopeSpec",
    "objectstore_settings",
    "parse_expiration_setting",
    "validate_url",
]

#: Top-level keys of ``OBJECTSTORE`` and their defaults (``URL`` has none).
DEFAULTS: Final[Mapping[str, Any]] = {
    "PUBLIC_URL": None,
    "TOKEN": None,
    "RETRIES": 3,
    "TIMEOUT_MS": None,
    "CONNECTION_KWARGS": {},
    "PROPAGATE_TRACES": False,
    "METRICS_BACKEND": None,
    "USECASES": {},
    "URL_EXPIRY_SECONDS": 3600,
    "DOWNLOAD_PERMISSION": None,
    "MULTIPART_THRESHOLD": None,
    "MULTIPART_PART_SIZE": None,
    "URL_BUCKET_SECONDS": None,
    "DEFAULT_USECASE": None,
}
KNOWN_KEYS: Final = frozenset({"URL", *DEFAULTS})
TOKEN_KEYS: Final = frozenset(
    {"KID", "SECRET_KEY", "SECRET_KEY_FILE", "EXPIRY_SECONDS", "PERMISSIONS"}
)
USECASE_KEYS: Final = frozenset({"COMPRESSION", "EXPIRATION", "SCOPE"})
COMPRESSIONS: Final = ("zstd", "none")
PERMISSIONS: Final = ("object.read", "object.write", "object.delete")

#: A field's scope: scope name -> dotted attribute path of the model
#: instance, or a callable returning ``(name, value)`` pairs or a mapping.
ScopeSpec = Mapping[str, str] | Callable[[Any], Any]


def validate_url(value: object, key: str) -> str:
    """Return ``value`` if it is an absolute ``http(s)`` URL without query or
    fragment, else raise ``ImproperlyConfigured`` naming ``key``."""
    if not isinstance(value, str) or not value:
        raise ImproperlyConfigured(
            f"OBJECTSTORE[{key!r}] must be a non-empty string such as "
            f"'http://127.0.0.1:8888', got {shown(value)}."
        )
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ImproperlyConfigured(
            f"OBJECTSTORE[{key!r}] = {shown(value)} is not an absolute http(s) URL; "
            "write it like 'http://127.0.0.1:8888' or 'https://objectstore.example.com'."
        )
    if parts.query or parts.fragment:
        raise ImproperlyConfigured(
            f"OBJECTSTORE[{key!r}] = {shown(value)} must not contain a query string or fragment."
        )
    try:
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError as exc:
        raise ImproperlyConfigured(f"OBJECTSTORE[{key!r}] = {shown(value)}: {exc}.") from exc
    return value


def parse_expiration_setting(value: object, usecase: str) -> ExpirationPolicy | None:
    """Turn a usecase's ``EXPIRATION`` into a client expiration policy.

    Accepts ``"manual"`` (returns ``None``: no header, the server's default),
    ``"ttl:<duration>"``, ``"tti:<duration>"`` or a ``TimeToLive``/``TimeToIdle``
    instance (returned unchanged).
    """
    if isinstance(value, TimeToLive | TimeToIdle):
        if value.delta <= timedelta(0):
            raise ImproperlyConfigured(
                f"OBJECTSTORE['USECASES'][{usecase!r}]['EXPIRATION'] has a non-positive "
                f"duration {value.delta!r}."
            )
        return value
    if not isinstance(value, str):
        raise ImproperlyConfigured(
            f"OBJECTSTORE['USECASES'][{usecase!r}]['EXPIRATION'] must be 'manual', "
            f"'ttl:<duration>', 'tti:<duration>' or a TimeToLive/TimeToIdle, got {shown(value)}."
        )
    try:
        kind, duration = parse_expiration(value)
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"OBJECTSTORE['USECASES'][{usecase!r}]['EXPIRATION'] = {shown(value)} is invalid: "
            f"{exc}. "
            "Examples: 'tti:30d', 'ttl:1h', 'manual'."
        ) from exc
    if kind == "manual":
        return None
    assert duration is not None
    if duration <= timedelta(0):
        raise ImproperlyConfigured(
            f"OBJECTSTORE['USECASES'][{usecase!r}]['EXPIRATION'] = {shown(value)}: the duration "
            "must be positive (the server rejects a zero duration)."
        )
    return TimeToLive(duration) if kind == "ttl" else TimeToIdle(duration)


class ObjectstoreSettings:
    """Typed, read-on-access view of ``settings.OBJECTSTORE``."""

    @property
    def raw(self) -> Mapping[str, Any]:
        value = getattr(settings, "OBJECTSTORE", None)
        if value is None:
            raise ImproperlyConfigured(
                "The OBJECTSTORE setting is missing; add OBJECTSTORE = {'URL': "
                "'http://127.0.0.1:8888', 'USECASES': {...}} to your settings."
            )
        if not isinstance(value, Mapping):
            raise ImproperlyConfigured(f"OBJECTSTORE must be a dict, got {type(value).__name__}.")
        return value

    def _get(self, key: str) -> Any:
        return self.raw.get(key, DEFAULTS[key])

    @property
    def url(self) -> str:
        return validate_url(self.raw.get("URL"), "URL").rstrip("/")

    @property
    def public_url(self) -> str | None:
        value = self._get("PUBLIC_URL")
        return None if value is None else validate_url(value, "PUBLIC_URL").rstrip("/")

    @property
    def token(self) -> Any:
        return self._get("TOKEN")

    @property
    def retries(self) -> int:
        return int(self._get("RETRIES"))

    @property
    def timeout_ms(self) -> float | None:
        value = self._get("TIMEOUT_MS")
        return None if value is None else float(value)

    @property
    def connection_kwargs(self) -> dict[str, Any]:
        return dict(self._get("CONNECTION_KWARGS") or {})

    @property
    def propagate_traces(self) -> bool:
        return bool(self._get("PROPAGATE_TRACES"))

    @property
    def metrics_backend(self) -> str | None:
        value = self._get("METRICS_BACKEND")
        return None if value is None else str(value)

    @property
    def usecases(self) -> Mapping[str, Any]:
        value = self._get("USECASES")
        if not isinstance(value, Mapping):
            raise ImproperlyConfigured(
                "OBJECTSTORE['USECASES'] must be a dict of usecase name -> options, "
                f"got {shown(value)}."
            )
        return value

    @property
    def multipart(self) -> dict[str, Any]:
        """Keyword arguments for the client's parallel-upload knobs that are set."""
        options = {}
        for key, kwarg in (
            ("MULTIPART_THRESHOLD", "multipart_threshold"),
            ("MULTIPART_PART_SIZE", "multipart_part_size"),
        ):
            value = self._get(key)
            if value is not None:
                options[kwarg] = value
        return options

    @property
    def url_expiry_seconds(self) -> int:
        return int(self._get("URL_EXPIRY_SECONDS"))

    @property
    def url_bucket_seconds(self) -> int | None:
        value = self._get("URL_BUCKET_SECONDS")
        return None if value is None else int(value)

    @property
    def download_permission(self) -> str | Callable[..., bool] | None:
        value: str | Callable[..., bool] | None = self._get("DOWNLOAD_PERMISSION")
        return value

    @property
    def default_usecase(self) -> str | None:
        """The usecase of storages built without one (``DEFAULT_USECASE``)."""
        value = self._get("DEFAULT_USECASE")
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise ImproperlyConfigured(
                f"OBJECTSTORE['DEFAULT_USECASE'] must be the name of a usecase in "
                f"OBJECTSTORE['USECASES'], got {value!r}."
            )
        return value

    def usecase(self, name: str) -> Mapping[str, Any]:
        """The options of usecase ``name``; ``ImproperlyConfigured`` if it is
        not configured."""
        usecases = self.usecases
        if name not in usecases:
            known = ", ".join(sorted(usecases)) or "none"
            raise ImproperlyConfigured(
                f"Usecase {name!r} is not configured; add it to OBJECTSTORE['USECASES'] "
                f"(configured: {known})."
            )
        options = usecases[name]
        if options is None:
            return {}
        if not isinstance(options, Mapping):
            raise ImproperlyConfigured(
                f"OBJECTSTORE['USECASES'][{name!r}] must be a dict, got {options!r}."
            )
        return options

    def compression(self, usecase: str) -> str:
        value = self.usecase(usecase).get("COMPRESSION", "zstd")
        if value not in COMPRESSIONS:
            raise ImproperlyConfigured(
                f"OBJECTSTORE['USECASES'][{usecase!r}]['COMPRESSION'] = {shown(value)}; "
                "use 'zstd' or 'none'."
            )
        return str(value)

    def expiration(self, usecase: str) -> ExpirationPolicy | None:
        value = self.usecase(usecase).get("EXPIRATION", "manual")
        return parse_expiration_setting(value, usecase)

    def scope(self, usecase: str) -> ScopeSpec | None:
        value: ScopeSpec | None = self.usecase(usecase).get("SCOPE")
        return value


objectstore_settings: Final = ObjectstoreSettings()
