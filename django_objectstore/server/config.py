"""Configuration of the local server as data: the key directory, per-usecase
expiration rules, killswitches and ``ServerConfig`` (what the command line
runs with). ``config_loader`` reads them from ``OS__*`` variables and YAML."""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from django_objectstore._protocol import parse_duration

__all__ = [
    "PERMISSIONS",
    "ConfigError",
    "ExpirationRule",
    "KeyConfig",
    "Killswitch",
    "ServerConfig",
    "UsecasePolicy",
]

#: The permission strings tokens and key configurations may name (section 9.3).
PERMISSIONS = ("object.read", "object.write", "object.delete")

StorageType = Literal["memory", "filesystem"]


class ConfigError(ValueError):
    """The server configuration is invalid; the message names the setting."""


@dataclass(frozen=True)
class KeyConfig:
    """One entry of the key directory: the public key files (several files are
    several versions of the same kid) and the most a token signed with it may
    do. An empty ``max_permissions`` authorizes nothing, as upstream."""

    key_files: Sequence[str | os.PathLike[str]]
    max_permissions: Sequence[str] = ()

    def __post_init__(self) -> None:
        if isinstance(self.key_files, (str, os.PathLike)):
            raise ConfigError("KeyConfig.key_files must be a list of paths, not a single path")
        for permission in self.max_permissions:
            if permission not in PERMISSIONS:
                raise ConfigError(
                    f"unknown permission {permission!r} in max_permissions; "
                    f"expected some of {', '.join(PERMISSIONS)}"
                )


@dataclass(frozen=True)
class ExpirationRule:
    """Whether an expiration kind is allowed for a usecase and, for ``ttl``
    and ``tti``, the longest duration allowed (``None`` = unlimited)."""

    allowed: bool = True
    max: timedelta | None = None


@dataclass(frozen=True)
class UsecasePolicy:
    """Per-usecase expiration rules (section 6.5). Unconfigured usecases and
    unset rules allow everything."""

    manual: ExpirationRule = field(default_factory=ExpirationRule)
    ttl: ExpirationRule = field(default_factory=ExpirationRule)
    tti: ExpirationRule = field(default_factory=ExpirationRule)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> UsecasePolicy:
        """Build from upstream's YAML shape:
        ``{"expiration": {"manual": {"allowed": False}, "ttl": {"max": "90d"}}}``
        (the ``expiration`` level may be left out)."""
        rules = data.get("expiration", data)
        if not isinstance(rules, Mapping):
            raise ConfigError(f"usecase policy must be a mapping, got {rules!r}")
        built: dict[str, ExpirationRule] = {}
        for kind in ("manual", "ttl", "tti"):
            rule = rules.get(kind, {})
            if not isinstance(rule, Mapping):
                raise ConfigError(f"usecase rule {kind!r} must be a mapping, got {rule!r}")
            maximum = rule.get("max")
            try:
                duration = parse_duration(str(maximum)) if maximum is not None else None
            except ValueError as exc:
                raise ConfigError(f"usecase rule {kind}.max: {exc}") from exc
            built[kind] = ExpirationRule(allowed=bool(rule.get("allowed", True)), max=duration)
        return cls(**built)


_POD_SUFFIX = re.compile(r"-(?:[a-z0-9]{6,10}-[a-z0-9]{5}|\d+)$")


@dataclass(frozen=True)
class Killswitch:
    """Rejects matching requests with 403 (section 14.3). Every condition
    given must match: ``usecase`` exactly, each of ``scopes`` present in the
    request with that value, ``service`` as a glob against the
    ``x-downstream-service`` header (Kubernetes pod suffixes stripped; no
    header, no match). A killswitch without conditions matches everything."""

    usecase: str | None = None
    scopes: Mapping[str, str] = field(default_factory=dict)
    service: str | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Killswitch:
        scopes = data.get("scopes") or {}
        if not isinstance(scopes, Mapping):
            raise ConfigError(f"killswitch scopes must be a mapping, got {scopes!r}")
        usecase = data.get("usecase")
        service = data.get("service")
        return cls(
            usecase=None if usecase is None else str(usecase),
            scopes={str(k): str(v) for k, v in scopes.items()},
            service=None if service is None else str(service),
        )

    def matches(self, usecase: str, scopes: Sequence[tuple[str, str]], service: str | None) -> bool:
        if self.usecase is not None and self.usecase != usecase:
            return False
        for name, value in self.scopes.items():
            first = next((v for n, v in scopes if n == name), None)
            if first != value:
                return False
        if self.service is not None:
            if service is None:
                return False
            normalised = _POD_SUFFIX.sub("", service.strip())
            if not fnmatch.fnmatchcase(normalised, self.service):
                return False
        return True


#: Seconds a kept-alive connection may stay idle (or a large request body
#: stop arriving) before the server closes it.
DEFAULT_IDLE_TIMEOUT = 60.0
#: Seconds a client has to send a request head (from connecting, or from the
#: first byte of the request); then the connection closes.
DEFAULT_HEADER_TIMEOUT = 10.0


@dataclass
class ServerConfig:
    """Everything ``run`` needs. The defaults are the real server's (section
    14.2), except the listen address: loopback, not every interface."""

    host: str = "127.0.0.1"
    port: int = 8888
    storage: StorageType = "filesystem"
    path: str = "data"
    fsync: bool = True
    auth_enforce: bool = True
    auth_keys: dict[str, KeyConfig] = field(default_factory=dict)
    usecases: dict[str, UsecasePolicy] = field(default_factory=dict)
    killswitches: list[Killswitch] = field(default_factory=list)
    max_requests: int | None = 10_000
    max_concurrency: int | None = 500
    concurrency_queue: int = 0
    concurrency_timeout: float = 1.0
    bulk_concurrency_pct: int = 60
    rate_limits: dict[str, Any] | None = None
    min_part_size: int | None = None
    # Local extensions for production backends' behaviour (config_modes.py).
    multipart: bool = True
    resumable: bool = True
    resumable_session_ttl: timedelta = timedelta(days=7)
    name_limit: Literal["gcs"] | None = None
    logging_level: str = "INFO"
    # Local extensions: connection timeouts (seconds).
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
