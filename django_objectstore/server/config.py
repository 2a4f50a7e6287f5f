"""Configuration of the local server: the key directory, per-usecase expiration
rules, and the loader for upstream's ``OS__*`` environment variables.

The environment values use the TOML-like syntax of upstream's configuration
loader (section 14 of ``objectstore-protocol.md``), e.g.
``OS__AUTH__KEYS={test_kid={key_files=["/p.pem"],max_permissions=["object.read"]}}``.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from django_objectstore._protocol import parse_duration
from django_objectstore.server.config_modes import read_modes

__all__ = [
    "PERMISSIONS",
    "ConfigError",
    "ExpirationRule",
    "KeyConfig",
    "Killswitch",
    "ServerConfig",
    "UsecasePolicy",
    "config_from_env",
    "parse_address",
    "parse_env_value",
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


@dataclass
class ServerConfig:
    """Everything ``run`` needs, as read from the environment."""

    host: str = "127.0.0.1"
    port: int = 8888
    storage: StorageType = "filesystem"
    path: str = "data"
    fsync: bool = True
    auth_enforce: bool = False
    auth_keys: dict[str, KeyConfig] = field(default_factory=dict)
    usecases: dict[str, UsecasePolicy] = field(default_factory=dict)
    killswitches: list[Killswitch] = field(default_factory=list)
    max_requests: int | None = None
    max_concurrency: int | None = None
    rate_limits: dict[str, Any] | None = None
    min_part_size: int | None = None
    # Local extensions for production backends' behaviour (config_modes.py).
    multipart: bool = True
    resumable: bool = True
    resumable_session_ttl: timedelta = timedelta(days=7)
    name_limit: Literal["gcs"] | None = None


# -- upstream's value syntax -------------------------------------------------


class _ValueParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, what: str) -> ConfigError:
        return ConfigError(f"{what} at position {self.pos} in {self.text!r}")

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def peek(self) -> str:
        self.skip()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def value(self, nested: bool) -> Any:
        char = self.peek()
        if char == "{":
            return self.mapping()
        if char == "[":
            return self.array()
        if char == '"':
            return self.quoted()
        return self.bare(nested)

    def mapping(self) -> dict[str, Any]:
        self.pos += 1
        result: dict[str, Any] = {}
        while True:
            if self.peek() == "}":
                self.pos += 1
                return result
            name = self.quoted() if self.peek() == '"' else self.bare_key()
            if self.peek() != "=":
                raise self.error("expected '=' after dictionary key")
            self.pos += 1
            result[name] = self.value(nested=True)
            sep = self.peek()
            if sep == ",":
                self.pos += 1
            elif sep != "}":
                raise self.error("expected ',' or '}' in dictionary")

    def array(self) -> list[Any]:
        self.pos += 1
        result: list[Any] = []
        while True:
            if self.peek() == "]":
                self.pos += 1
                return result
            result.append(self.value(nested=True))
            sep = self.peek()
            if sep == ",":
                self.pos += 1
            elif sep != "]":
                raise self.error("expected ',' or ']' in array")

    def quoted(self) -> str:
        self.skip()
        self.pos += 1
        out: list[str] = []
        escapes = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == '"':
                return "".join(out)
            if char == "\\" and self.pos < len(self.text):
                nxt = self.text[self.pos]
                self.pos += 1
                out.append(escapes.get(nxt, nxt))
            else:
                out.append(char)
        raise self.error("unterminated string")

    def bare_key(self) -> str:
        self.skip()
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in "= \t{}[],":
            self.pos += 1
        if start == self.pos:
            raise self.error("expected a dictionary key")
        return self.text[start : self.pos]

    def bare(self, nested: bool) -> Any:
        self.skip()
        start = self.pos
        stops = ",]}" if nested else ""
        while self.pos < len(self.text) and self.text[self.pos] not in stops:
            self.pos += 1
        word = self.text[start : self.pos].strip()
        return _scalar(word)


def _scalar(word: str) -> Any:
    if word == "true":
        return True
    if word == "false":
        return False
    try:
        return int(word)
    except ValueError:
        pass
    try:
        return float(word) if any(c.isdigit() for c in word) else word
    except ValueError:
        return word


def parse_env_value(text: str) -> Any:
    """Parse one ``OS__*`` value: ``true``/``false``, integers, ``[arrays]``,
    ``{key=value}`` dictionaries, ``"quoted"`` or bare strings."""
    parser = _ValueParser(text)
    if parser.peek() in ("{", "["):
        result = parser.value(nested=False)
        if parser.peek():
            raise parser.error("unexpected trailing text")
        return result
    if parser.peek() == '"':
        result = parser.quoted()
        if parser.peek():
            raise parser.error("unexpected trailing text")
        return result
    return _scalar(text.strip())


def parse_address(text: str) -> tuple[str, int]:
    """``IP:port`` (``[v6]:port`` for IPv6) as upstream's ``http_addr``; host
    names are rejected like upstream does."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigError(f"OS__HTTP_ADDR={text!r} is not 'IP:port' (for example 127.0.0.1:8888)")
    host = host.removeprefix("[").removesuffix("]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(
            f"OS__HTTP_ADDR={text!r}: {host!r} is not an IP address (host names are not accepted)"
        ) from None
    return host, int(port_text)


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ConfigError(f"{name}={value!r} must be true or false")


def _keys_from_value(value: Any) -> dict[str, KeyConfig]:
    if not isinstance(value, dict):
        raise ConfigError(
            "OS__AUTH__KEYS must be a dictionary such as "
            '{kid={key_files=["/path/key.pem"],max_permissions=["object.read"]}}'
        )
    keys: dict[str, KeyConfig] = {}
    for kid, entry in value.items():
        if not isinstance(entry, dict):
            raise ConfigError(f"OS__AUTH__KEYS: entry for kid {kid!r} must be a dictionary")
        files = entry.get("key_files", [])
        perms = entry.get("max_permissions", [])
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise ConfigError(f"OS__AUTH__KEYS: key_files of kid {kid!r} must be a list of paths")
        if not files:
            raise ConfigError(f"OS__AUTH__KEYS: kid {kid!r} has no key_files")
        if not isinstance(perms, list) or not all(isinstance(p, str) for p in perms):
            raise ConfigError(
                f"OS__AUTH__KEYS: max_permissions of kid {kid!r} must be a list of strings"
            )
        keys[str(kid)] = KeyConfig(key_files=list(files), max_permissions=list(perms))
    return keys


def config_from_env(environ: Mapping[str, str] | None = None) -> ServerConfig:
    """Read the ``OS__*`` variables the local server understands; unknown ones
    are ignored. Defaults follow upstream's development setup: 127.0.0.1:8888,
    filesystem storage under ``data``, auth not enforced."""
    env = os.environ if environ is None else environ
    config = ServerConfig()
    if "OS__HTTP_ADDR" in env:
        config.host, config.port = parse_address(env["OS__HTTP_ADDR"])
    if "OS__STORAGE__TYPE" in env:
        storage = str(parse_env_value(env["OS__STORAGE__TYPE"]))
        if storage not in ("memory", "filesystem"):
            raise ConfigError(
                f"OS__STORAGE__TYPE={storage!r} is not supported by the local server; "
                "use 'filesystem' or 'memory'"
            )
        config.storage = "memory" if storage == "memory" else "filesystem"
    if "OS__STORAGE__PATH" in env:
        config.path = str(parse_env_value(env["OS__STORAGE__PATH"]))
    if "OS__STORAGE__FSYNC" in env:  # not upstream: trade durability for speed
        config.fsync = _as_bool("OS__STORAGE__FSYNC", parse_env_value(env["OS__STORAGE__FSYNC"]))
    if "OS__MULTIPART__MIN_PART_SIZE" in env:  # not upstream: emulate GCS/S3 part limits
        size = parse_env_value(env["OS__MULTIPART__MIN_PART_SIZE"])
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ConfigError(
                f"OS__MULTIPART__MIN_PART_SIZE={size!r} must be a non-negative integer "
                "number of bytes (for example 5242880 for the 5 MiB of GCS and S3)"
            )
        config.min_part_size = size
    try:  # local extensions: backend modes (config_modes.py)
        for name, value in read_modes(env, parse_env_value).items():
            setattr(config, name, value)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if "OS__AUTH__ENFORCE" in env:
        config.auth_enforce = _as_bool(
            "OS__AUTH__ENFORCE", parse_env_value(env["OS__AUTH__ENFORCE"])
        )
    keys_value: dict[str, Any] = {}
    if "OS__AUTH__KEYS" in env:
        parsed = parse_env_value(env["OS__AUTH__KEYS"])
        keys_value = parsed if isinstance(parsed, dict) else {"": parsed}
    # Nested form: OS__AUTH__KEYS__<KID>__KEY_FILES=[...] (names lower-cased, as upstream).
    for name, value in env.items():
        if name.startswith("OS__AUTH__KEYS__"):
            kid, sep, field_name = name[len("OS__AUTH__KEYS__") :].rpartition("__")
            if sep and kid:
                entry = keys_value.setdefault(kid.lower(), {})
                if isinstance(entry, dict):
                    entry[field_name.lower()] = parse_env_value(value)
    if "OS__AUTH__KEYS" in env or keys_value:
        if "" in keys_value:
            raise ConfigError(
                "OS__AUTH__KEYS must be a dictionary such as "
                '{kid={key_files=["/path/key.pem"],max_permissions=["object.read"]}}'
            )
        config.auth_keys = _keys_from_value(keys_value)
    if "OS__HTTP__MAX_REQUESTS" in env:
        limit = parse_env_value(env["OS__HTTP__MAX_REQUESTS"])
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise ConfigError(f"OS__HTTP__MAX_REQUESTS={limit!r} must be a non-negative integer")
        config.max_requests = limit
    if "OS__SERVICE__MAX_CONCURRENCY" in env:
        limit = parse_env_value(env["OS__SERVICE__MAX_CONCURRENCY"])
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ConfigError(f"OS__SERVICE__MAX_CONCURRENCY={limit!r} must be a positive integer")
        config.max_concurrency = limit
    if "OS__RATE_LIMITS" in env:
        limits = parse_env_value(env["OS__RATE_LIMITS"])
        if not isinstance(limits, dict):
            raise ConfigError(
                "OS__RATE_LIMITS must be a dictionary such as {throughput={global_rps=100}}"
            )
        config.rate_limits = limits
    if "OS__KILLSWITCHES" in env:
        switches = parse_env_value(env["OS__KILLSWITCHES"])
        if not isinstance(switches, list) or not all(isinstance(k, dict) for k in switches):
            raise ConfigError(
                'OS__KILLSWITCHES must be a list such as [{usecase="u",scopes={org="42"}}]'
            )
        config.killswitches = [Killswitch.from_mapping(k) for k in switches]
    if "OS__USECASES" in env:
        usecases = parse_env_value(env["OS__USECASES"])
        if not isinstance(usecases, dict):
            raise ConfigError("OS__USECASES must be a dictionary of usecase policies")
        config.usecases = {
            str(name): UsecasePolicy.from_mapping(policy if isinstance(policy, dict) else {})
            for name, policy in usecases.items()
        }
    return config
