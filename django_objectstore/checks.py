"""System checks for ``OBJECTSTORE`` (run by ``manage.py check`` and on startup).

Errors (the setting cannot work):

* ``E001`` OBJECTSTORE missing or not a dict
* ``E002`` URL missing or malformed; ``E003`` PUBLIC_URL malformed
* ``E004`` unknown top-level keys
* ``E005`` bad TOKEN configuration; ``E006`` unreadable or invalid key file
* ``E007`` bad RETRIES / TIMEOUT_MS / CONNECTION_KWARGS / URL_EXPIRY_SECONDS /
  MULTIPART_THRESHOLD / MULTIPART_PART_SIZE / URL_BUCKET_SECONDS
* ``E008`` METRICS_BACKEND / DOWNLOAD_PERMISSION cannot be imported
* ``E009`` USECASES malformed (not a dict, bad usecase name, unknown keys)
* ``E010`` bad COMPRESSION; ``E011`` bad EXPIRATION; ``E012`` bad SCOPE
* ``E013`` a model field or a ``STORAGES`` entry names a usecase that is not configured
* ``E014`` DEFAULT_USECASE is not a configured usecase

Warnings (works, but risky):

* ``W001`` a usecase without an expiration policy (objects live forever)
* ``W002`` TOKEN is a fixed JWT string (it expires; URLs cannot be signed)
* ``W003`` no TOKEN for a non-loopback URL (only works with auth disabled)
* ``W004`` token EXPIRY_SECONDS above one hour (long-lived bearer tokens)
* ``W005`` ``STORAGES["default"]`` or ``["staticfiles"]`` stores in a usecase
  that expires (every site file would vanish)
* ``W006`` ``STORAGES["default"]`` or ``["staticfiles"]`` uses server-chosen
  keys (apps that read meaning from names break)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from django_objectstore._redact import scrub
from django_objectstore.client.client import MIN_MULTIPART_PART_SIZE
from django_objectstore.conf import (
    COMPRESSIONS,
    DEFAULTS,
    KNOWN_KEYS,
    USECASE_KEYS,
    parse_expiration_setting,
    validate_url,
)

__all__ = ["CHECK_IDS", "check_fields", "check_settings", "check_site_storages"]

CHECK_IDS = tuple(f"django_objectstore.E{n:03d}" for n in range(1, 15)) + tuple(
    f"django_objectstore.W{n:03d}" for n in range(1, 7)
)
_BACKEND = "django_objectstore.storage.ObjectstoreStorage"
#: Aliases whose files make up the site (they must neither expire nor be renamed).
_SITE_ALIASES = ("default", "staticfiles")
_USECASE_NAME = re.compile(r"[A-Za-z0-9_-]{3,64}")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


# Every message goes through scrub(): a key pasted into any setting (URL,
# SECRET_KEY_FILE, a hook path...) is never printed by manage.py check.
def _e(n: int, msg: str, hint: str | None = None, obj: Any = None) -> Error:
    return Error(scrub(msg), hint=hint and scrub(hint), obj=obj, id=f"django_objectstore.E{n:03d}")


def _w(n: int, msg: str, hint: str | None = None) -> Warning:
    return Warning(scrub(msg), hint=hint and scrub(hint), id=f"django_objectstore.W{n:03d}")


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    conf = getattr(settings, "OBJECTSTORE", None)
    if conf is None:
        return [
            _e(
                1,
                "The OBJECTSTORE setting is missing.",
                "Add OBJECTSTORE = {'URL': 'http://127.0.0.1:8888', 'USECASES': {...}}.",
            )
        ]
    if not isinstance(conf, Mapping):
        return [_e(1, f"OBJECTSTORE must be a dict, got {type(conf).__name__}.")]
    errors: list[CheckMessage] = []
    try:
        validate_url(conf.get("URL"), "URL")
    except ImproperlyConfigured as exc:
        errors.append(_e(2, str(exc)))
    if conf.get("PUBLIC_URL") is not None:
        try:
            validate_url(conf["PUBLIC_URL"], "PUBLIC_URL")
        except ImproperlyConfigured as exc:
            errors.append(_e(3, str(exc)))
    unknown = set(conf) - KNOWN_KEYS
    if unknown:
        errors.append(
            _e(
                4,
                f"Unknown key(s) in OBJECTSTORE: {', '.join(sorted(map(str, unknown)))}.",
                f"Known keys: {', '.join(sorted(KNOWN_KEYS))}.",
            )
        )
    errors += _check_token(conf)
    errors += _check_numbers(conf)
    for key in ("METRICS_BACKEND", "DOWNLOAD_PERMISSION"):
        value = conf.get(key)
        if isinstance(value, str):
            try:
                import_string(value)
            except ImportError as exc:
                errors.append(_e(8, f"OBJECTSTORE[{key!r}] = {value!r} cannot be imported: {exc}"))
        elif value is not None and not callable(value):
            errors.append(_e(8, f"OBJECTSTORE[{key!r}] must be a dotted path or a callable."))
    errors += _check_usecases(conf.get("USECASES", DEFAULTS["USECASES"]))
    return errors


def _check_token(conf: Mapping[str, Any]) -> list[CheckMessage]:
    from django_objectstore.factory import KeyMaterialError, build_token

    token = conf.get("TOKEN")
    errors: list[CheckMessage] = []
    if token is None:
        host = urlsplit(str(conf.get("URL", ""))).hostname
        if host and host not in _LOOPBACK:
            errors.append(
                _w(
                    3,
                    f"OBJECTSTORE has no TOKEN but URL points at {host!r}.",
                    "Requests only succeed if that server does not enforce auth; configure "
                    "TOKEN with KID and SECRET_KEY_FILE.",
                )
            )
        return errors
    try:
        build_token(token)
    except KeyMaterialError as exc:
        errors.append(_e(6, str(exc)))
        return errors
    except ImproperlyConfigured as exc:
        errors.append(_e(5, str(exc)))
        return errors
    if isinstance(token, str):
        errors.append(
            _w(
                2,
                "OBJECTSTORE['TOKEN'] is a fixed JWT string.",
                "It stops working when it expires, and url() cannot pre-sign URLs with it; "
                "prefer a dict with KID and SECRET_KEY_FILE.",
            )
        )
    elif isinstance(token, Mapping) and int(token.get("EXPIRY_SECONDS", 60)) > 3600:
        errors.append(
            _w(
                4,
                f"OBJECTSTORE['TOKEN']['EXPIRY_SECONDS'] = {token['EXPIRY_SECONDS']} "
                "(more than an hour).",
                "Long-lived bearer tokens are dangerous if they leak; tokens are reused "
                "for most of their lifetime anyway, so 60-300 seconds costs nothing.",
            )
        )
    return errors


def _check_numbers(conf: Mapping[str, Any]) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    retries = conf.get("RETRIES", DEFAULTS["RETRIES"])
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        errors.append(_e(7, f"OBJECTSTORE['RETRIES'] must be an int >= 0, got {retries!r}."))
    timeout = conf.get("TIMEOUT_MS")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        errors.append(
            _e(7, f"OBJECTSTORE['TIMEOUT_MS'] must be None or a positive number, got {timeout!r}.")
        )
    kwargs = conf.get("CONNECTION_KWARGS", {})
    if not isinstance(kwargs, Mapping):
        errors.append(_e(7, f"OBJECTSTORE['CONNECTION_KWARGS'] must be a dict, got {kwargs!r}."))
    for key in ("MULTIPART_THRESHOLD", "MULTIPART_PART_SIZE", "URL_BUCKET_SECONDS"):
        value = conf.get(key)
        if value is None or (key == "MULTIPART_THRESHOLD" and value == "none"):
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            errors.append(
                _e(
                    7,
                    f"OBJECTSTORE[{key!r}] must be None or a positive int (bytes), got {value!r}.",
                )
            )
        elif key == "MULTIPART_PART_SIZE" and value < MIN_MULTIPART_PART_SIZE:
            errors.append(
                _e(
                    7,
                    f"OBJECTSTORE['MULTIPART_PART_SIZE'] must be at least "
                    f"{MIN_MULTIPART_PART_SIZE} bytes (5 MiB, the smallest part production "
                    f"backends accept), got {value!r}.",
                )
            )
    expiry = conf.get("URL_EXPIRY_SECONDS", DEFAULTS["URL_EXPIRY_SECONDS"])
    if isinstance(expiry, bool) or not isinstance(expiry, int) or not 0 < expiry <= 604800:
        errors.append(
            _e(
                7,
                f"OBJECTSTORE['URL_EXPIRY_SECONDS'] must be an int from 1 to 604800 (7 days), "
                f"got {expiry!r}.",
            )
        )
    return errors


def _check_usecases(usecases: object) -> list[CheckMessage]:
    if not isinstance(usecases, Mapping):
        return [_e(9, f"OBJECTSTORE['USECASES'] must be a dict, got {usecases!r}.")]
    errors: list[CheckMessage] = []
    for name, options in usecases.items():
        where = f"OBJECTSTORE['USECASES'][{name!r}]"
        if not isinstance(name, str) or not _USECASE_NAME.fullmatch(name):
            errors.append(
                _e(9, f"Usecase name {name!r} must be 3-64 characters from A-Z a-z 0-9 _ -.")
            )
            continue
        if options is None:
            options = {}
        if not isinstance(options, Mapping):
            errors.append(_e(9, f"{where} must be a dict of options, got {options!r}."))
            continue
        unknown = set(options) - USECASE_KEYS
        if unknown:
            errors.append(
                _e(
                    9,
                    f"Unknown key(s) in {where}: {', '.join(sorted(map(str, unknown)))}.",
                    f"Known keys: {', '.join(sorted(USECASE_KEYS))}.",
                )
            )
        compression = options.get("COMPRESSION", "zstd")
        if compression not in COMPRESSIONS:
            errors.append(
                _e(10, f"{where}['COMPRESSION'] = {compression!r}; use 'zstd' or 'none'.")
            )
        if "EXPIRATION" not in options:
            errors.append(
                _w(
                    1,
                    f"Usecase {name!r} has no EXPIRATION: its objects never expire.",
                    "Set EXPIRATION to e.g. 'tti:30d' or 'ttl:90d', or to 'manual' to keep "
                    "objects until they are deleted.",
                )
            )
        else:
            try:
                parse_expiration_setting(options["EXPIRATION"], name)
            except ImproperlyConfigured as exc:
                errors.append(_e(11, str(exc)))
        errors += _check_scope(options.get("SCOPE"), where)
    return errors


def _check_scope(scope: object, where: str) -> list[CheckMessage]:
    if scope is None or callable(scope):
        return []
    if not isinstance(scope, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) and k and v for k, v in scope.items()
    ):
        return [
            _e(
                12,
                f"{where}['SCOPE'] must map scope names to model attribute paths, got {scope!r}.",
                "Example: {'org': 'organization_id', 'project': 'project.id'}.",
            )
        ]
    from django_objectstore._protocol import invalid_scope_char

    for name in scope:
        bad = invalid_scope_char(name)
        if bad is not None:
            return [_e(12, f"{where}['SCOPE'] name {name!r} contains {bad!r}.")]
    return []


@register(Tags.models)
def check_fields(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    from django_objectstore.fields import ObjectstoreFieldMixin

    conf = getattr(settings, "OBJECTSTORE", None)
    if not isinstance(conf, Mapping):
        return []  # reported by check_settings (E001)
    usecases = conf.get("USECASES", {})
    if not isinstance(usecases, Mapping):
        return []
    configs = app_configs if app_configs is not None else apps.get_app_configs()
    errors: list[CheckMessage] = []
    if app_configs is None:
        errors += _check_storages(conf, usecases)
    for config in configs:
        for model in config.get_models():
            for field in model._meta.get_fields():
                if not isinstance(field, ObjectstoreFieldMixin):
                    continue
                usecase = field.usecase
                label = f"{model._meta.label}.{getattr(field, 'name', '?')}"
                if usecase is None:
                    if _fallback_usecase(conf) is None:
                        errors.append(
                            _e(
                                13,
                                f"{label} has no usecase, OBJECTSTORE has no DEFAULT_USECASE "
                                f"and OBJECTSTORE['USECASES'] has {len(usecases)} entries.",
                                "Pass usecase='...' to the field or set "
                                "OBJECTSTORE['DEFAULT_USECASE'].",
                                obj=field,
                            )
                        )
                elif usecase not in usecases:
                    errors.append(
                        _e(
                            13,
                            f"{label} uses usecase {usecase!r}, which "
                            "is not in OBJECTSTORE['USECASES'].",
                            f"Add {usecase!r} to OBJECTSTORE['USECASES'].",
                            obj=field,
                        )
                    )
    return errors


def _fallback_usecase(conf: Mapping[str, Any]) -> str | None:
    """The usecase of a storage built without one, if settings name one."""
    default = conf.get("DEFAULT_USECASE")
    if default is not None:
        return default if isinstance(default, str) else None
    usecases = conf.get("USECASES", {})
    return next(iter(usecases)) if isinstance(usecases, Mapping) and len(usecases) == 1 else None


def _objectstore_storages() -> list[tuple[str, Mapping[str, Any]]]:
    """``(alias, OPTIONS)`` of the ``STORAGES`` entries that are ours."""
    found = []
    for alias, config in (getattr(settings, "STORAGES", None) or {}).items():
        if isinstance(config, Mapping) and config.get("BACKEND") == _BACKEND:
            options = config.get("OPTIONS") or {}
            found.append((alias, options if isinstance(options, Mapping) else {}))
    return found


def _check_storages(conf: Mapping[str, Any], usecases: Mapping[str, Any]) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for alias, options in _objectstore_storages():
        usecase = options.get("usecase")
        if usecase is None and _fallback_usecase(conf) is None:
            errors.append(
                _e(
                    13,
                    f"STORAGES[{alias!r}] uses ObjectstoreStorage without a usecase, "
                    "OBJECTSTORE has no DEFAULT_USECASE and OBJECTSTORE['USECASES'] has "
                    f"{len(usecases)} entries.",
                    "Add 'OPTIONS': {'usecase': '...'} or set OBJECTSTORE['DEFAULT_USECASE'].",
                )
            )
        elif usecase is not None and usecase not in usecases:
            errors.append(
                _e(
                    13,
                    f"STORAGES[{alias!r}] uses usecase {usecase!r}, which is not in "
                    "OBJECTSTORE['USECASES'].",
                    f"Add {usecase!r} to OBJECTSTORE['USECASES'].",
                )
            )
    return errors


@register(Tags.compatibility)
def check_site_storages(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The default usecase, and the storages that hold the site's own files."""
    conf = getattr(settings, "OBJECTSTORE", None)
    if not isinstance(conf, Mapping) or not isinstance(conf.get("USECASES", {}), Mapping):
        return []  # reported by check_settings (E001, E009)
    usecases: Mapping[str, Any] = conf.get("USECASES", {})
    errors: list[CheckMessage] = []
    default = conf.get("DEFAULT_USECASE")
    if default is not None and (not isinstance(default, str) or default not in usecases):
        errors.append(
            _e(
                14,
                f"OBJECTSTORE['DEFAULT_USECASE'] = {default!r} is not a configured usecase.",
                f"Use one of {', '.join(map(repr, sorted(usecases)))} or add it to "
                "OBJECTSTORE['USECASES'].",
            )
        )
    for alias, options in _objectstore_storages():
        if alias not in _SITE_ALIASES:
            continue
        usecase = options.get("usecase") or _fallback_usecase(conf)
        expiration = (usecases.get(usecase) or {}).get("EXPIRATION") if usecase else None
        try:
            policy = parse_expiration_setting(expiration, str(usecase))
        except ImproperlyConfigured:
            policy = None  # reported by check_settings (E011)
        if policy is not None:
            errors.append(
                _w(
                    5,
                    f"STORAGES[{alias!r}] stores in usecase {usecase!r}, whose EXPIRATION "
                    f"{expiration!r} deletes objects on their own: every file of the site "
                    "would vanish once it expires, while pages and database rows still "
                    "point at it.",
                    f"Give STORAGES[{alias!r}] a usecase with EXPIRATION 'manual'; keep "
                    "expiring usecases for fields whose files may disappear.",
                )
            )
        server_keys = options.get("server_chosen_keys") or options.get("key_from_name") is False
        if server_keys:
            errors.append(
                _w(
                    6,
                    f"STORAGES[{alias!r}] uses server-chosen keys: every saved name becomes a "
                    "UUID without folders or extension, which breaks apps that read meaning "
                    "from names or ignore the name save() returns (Wagtail, thumbnailers, "
                    "django-import-export, collectstatic).",
                    "Remove server_chosen_keys (names are keys by default), or use "
                    "server-chosen keys only on dedicated fields or storages.",
                )
            )
    return errors
