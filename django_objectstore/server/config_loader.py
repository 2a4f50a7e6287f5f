"""Reading the command line's configuration the way the real binary does
(section 14.1): built-in defaults, then a YAML file (``-c/--config``), then
``OS__*`` environment variables, each layer overriding the one before.

Variable names map to nested keys: ``OS__A__B__C`` is ``a.b.c`` (lower-cased),
and a value may itself be a dictionary in upstream's TOML-like syntax
(``OS__RATE_LIMITS={throughput={global_rps=10}}``); both forms merge, the more
specific variable winning. A variable naming no setting gets one warning.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django_objectstore._protocol import parse_duration
from django_objectstore.server.config import (
    ConfigError,
    KeyConfig,
    Killswitch,
    ServerConfig,
    UsecasePolicy,
)
from django_objectstore.server.config_modes import read_modes
from django_objectstore.server.config_syntax import env_value, parse_env_value
from django_objectstore.server.limits import RateLimits

__all__ = ["config_from_env", "load_config", "parse_address", "parse_env_value", "read_yaml"]

PREFIX = "OS__"

# What the loader knows: a dict is a level of named settings ("*" = any name,
# e.g. a kid or a usecase); _LEAF is one setting; _OPAQUE accepts anything
# below it (upstream settings the local server reads as a whole or ignores).
_LEAF = "leaf"
_OPAQUE = "opaque"
_EXPIRATION_RULE = {"allowed": _LEAF, "max": _LEAF}
_SCHEMA: dict[str, Any] = {
    "http_addr": _LEAF,
    "storage": {"type": _LEAF, "path": _LEAF, "fsync": _LEAF, "name_limit": _LEAF},
    "auth": {"enforce": _LEAF, "keys": {"*": {"key_files": _LEAF, "max_permissions": _LEAF}}},
    "logging": {"level": _LEAF, "format": _LEAF},
    "http": {"max_requests": _LEAF, "idle_timeout": _LEAF, "header_timeout": _LEAF},
    "service": {
        "max_concurrency": _LEAF,
        "concurrency_queue": _LEAF,
        "concurrency_timeout": _LEAF,
        "bulk_concurrency_pct": _LEAF,
    },
    "rate_limits": {
        "throughput": {
            "global_rps": _LEAF,
            "burst": _LEAF,
            "usecase_pct": _LEAF,
            "scope_pct": _LEAF,
            "rules": _LEAF,
        },
        "bandwidth": {
            "global_bps": _LEAF,
            "burst_ms": _LEAF,
            "usecase_pct": _LEAF,
            "scope_pct": _LEAF,
            "report_only": _LEAF,
        },
    },
    "killswitches": _LEAF,
    "usecases": {
        "*": {
            "expiration": {
                "manual": {"allowed": _LEAF},
                "ttl": _EXPIRATION_RULE,
                "tti": _EXPIRATION_RULE,
            }
        }
    },
    "multipart": {"min_part_size": _LEAF, "enabled": _LEAF},
    "resumable": {"enabled": _LEAF, "session_ttl": _LEAF},  # local extensions (config_modes)
    # Upstream observability and runtime settings: known, not used here.
    "sentry": _OPAQUE,
    "metrics": _OPAQUE,
    "runtime": _OPAQUE,
}


def env_name(path: tuple[str, ...]) -> str:
    """The variable that sets ``path``: ``("service", "max_concurrency")``
    is ``OS__SERVICE__MAX_CONCURRENCY``."""
    return PREFIX + "__".join(part.upper() for part in path)


def _unknown_part(path: tuple[str, ...], value: Any) -> tuple[str, ...] | None:
    """The first part of ``path`` (plus the keys of a dictionary ``value``)
    that names no setting, or ``None`` when all are known."""
    node: Any = _SCHEMA
    for depth, part in enumerate(path):
        if node == _OPAQUE:
            return None
        if not isinstance(node, dict):
            return path[: depth + 1]
        if part in node:
            node = node[part]
        elif "*" in node:
            node = node["*"]
        else:
            return path[: depth + 1]
    if isinstance(node, dict) and isinstance(value, dict):
        for name, inner in value.items():
            unknown = _unknown_part((*path, str(name)), inner)
            if unknown is not None:
                return unknown
    return None


_MISSING = object()


def _get(tree: Mapping[str, Any], *path: str) -> Any:
    node: Any = tree
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _as_bool(path: tuple[str, ...], value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ConfigError(f"{env_name(path)}={value!r} must be true or false")


def _as_count(path: tuple[str, ...], value: Any, hint: str = "") -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ConfigError(f"{env_name(path)}={value!r} must be a non-negative integer{hint}")


def _as_seconds(path: tuple[str, ...], value: Any) -> float:
    """A positive duration: seconds as a number, or the server's grammar ('90s', '2m')."""
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = parse_duration(value.strip()).total_seconds()
        except (ValueError, OverflowError):
            seconds = None
    if seconds is None or not 0 < seconds <= 86_400:
        raise ConfigError(
            f"{env_name(path)}={value!r} must be a duration of at most a day, "
            "in seconds or such as '90s' or '2m'"
        )
    return seconds


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


def _storage(config: ServerConfig, tree: Mapping[str, Any]) -> None:
    storage = _get(tree, "storage", "type")
    if storage is not _MISSING:
        if storage not in ("memory", "filesystem"):
            raise ConfigError(
                f"OS__STORAGE__TYPE={storage!r} is not supported by the local server; "
                "use 'filesystem' or 'memory'"
            )
        config.storage = "memory" if storage == "memory" else "filesystem"
    path = _get(tree, "storage", "path")
    if path is not _MISSING:
        config.path = str(path)
    fsync = _get(tree, "storage", "fsync")  # not upstream: trade durability for speed
    if fsync is not _MISSING:
        config.fsync = _as_bool(("storage", "fsync"), fsync)
    size = _get(tree, "multipart", "min_part_size")  # not upstream: GCS/S3 part limits
    if size is not _MISSING:
        config.min_part_size = _as_count(
            ("multipart", "min_part_size"),
            size,
            " number of bytes (for example 5242880 for the 5 MiB of GCS and S3)",
        )


def _auth(config: ServerConfig, tree: Mapping[str, Any]) -> None:
    enforce = _get(tree, "auth", "enforce")
    if enforce is not _MISSING:
        config.auth_enforce = _as_bool(("auth", "enforce"), enforce)
    keys = _get(tree, "auth", "keys")
    if keys is not _MISSING:
        config.auth_keys = _keys_from_value(keys)


def _admission(config: ServerConfig, tree: Mapping[str, Any]) -> None:
    for attr, path in (
        ("max_requests", ("http", "max_requests")),
        ("max_concurrency", ("service", "max_concurrency")),
        ("concurrency_queue", ("service", "concurrency_queue")),
    ):
        value = _get(tree, *path)
        if value is not _MISSING:
            setattr(config, attr, _as_count(path, value))
    pct = _get(tree, "service", "bulk_concurrency_pct")
    if pct is not _MISSING:
        if _as_count(("service", "bulk_concurrency_pct"), pct) > 100:
            raise ConfigError(f"OS__SERVICE__BULK_CONCURRENCY_PCT={pct!r} must be at most 100")
        config.bulk_concurrency_pct = pct
    timeout = _get(tree, "service", "concurrency_timeout")
    if timeout is not _MISSING:
        try:
            config.concurrency_timeout = parse_duration(str(timeout)).total_seconds()
        except ValueError as exc:
            raise ConfigError(
                f"OS__SERVICE__CONCURRENCY_TIMEOUT={timeout!r} must be a duration such as "
                f"'1s' or '500ms': {exc}"
            ) from None
    for attr in ("idle_timeout", "header_timeout"):  # not upstream
        value = _get(tree, "http", attr)
        if value is not _MISSING:
            setattr(config, attr, _as_seconds(("http", attr), value))
    limits = _get(tree, "rate_limits")
    if limits is not _MISSING:
        if not isinstance(limits, dict):
            raise ConfigError(
                "OS__RATE_LIMITS must be a dictionary such as {throughput={global_rps=100}}"
            )
        RateLimits.from_mapping(limits)  # validated now, built by the caller
        config.rate_limits = limits
    switches = _get(tree, "killswitches")
    if switches is not _MISSING:
        if not isinstance(switches, list) or not all(isinstance(k, dict) for k in switches):
            raise ConfigError(
                'OS__KILLSWITCHES must be a list such as [{usecase="u",scopes={org="42"}}]'
            )
        config.killswitches = [Killswitch.from_mapping(k) for k in switches]


def _build(tree: Mapping[str, Any]) -> ServerConfig:
    config = ServerConfig()
    addr = _get(tree, "http_addr")
    if addr is not _MISSING:
        config.host, config.port = parse_address(str(addr))
    _storage(config, tree)
    _auth(config, tree)
    _admission(config, tree)
    usecases = _get(tree, "usecases")
    if usecases is not _MISSING:
        if not isinstance(usecases, dict):
            raise ConfigError("OS__USECASES must be a dictionary of usecase policies")
        config.usecases = {
            str(name): UsecasePolicy.from_mapping(policy if isinstance(policy, dict) else {})
            for name, policy in usecases.items()
        }
    level = _get(tree, "logging", "level")
    if level is not _MISSING:
        config.logging_level = str(level).strip().upper()
    try:
        for name, value in read_modes(tree).items():
            setattr(config, name, value)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return config


def _merge(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = target
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    last = path[-1]
    if isinstance(value, dict) and isinstance(node.get(last), dict):
        for name, inner in value.items():
            _merge(node[last], (str(name),), inner)
    else:
        node[last] = value


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping in a ``-c/--config`` YAML file."""
    # PyYAML is part of the optional [server] extra; only -c needs it.
    try:
        import yaml
    except ImportError:
        raise ConfigError(
            "reading a -c/--config file needs PyYAML: pip install 'django-objectstore[server]'"
        ) from None
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of settings")
    return data


def load_config(
    environ: Mapping[str, str] | None = None,
    yaml_data: Mapping[str, Any] | None = None,
) -> tuple[ServerConfig, list[str]]:
    """Defaults, then ``yaml_data``, then the ``OS__*`` variables of
    ``environ`` (``os.environ`` by default). Returns the configuration and
    one warning per variable or YAML key that names no setting."""
    env = os.environ if environ is None else environ
    warnings: list[str] = []
    tree: dict[str, Any] = {}
    for name, value in (yaml_data or {}).items():
        unknown = _unknown_part((str(name),), value)
        if unknown is not None:
            warnings.append(f"config file: unknown setting {'.'.join(unknown)!r} ignored")
            if len(unknown) == 1:
                continue
        _merge(tree, (str(name),), value)
    layered: list[tuple[tuple[str, ...], str, Any]] = []
    for name, text in env.items():
        if not name.startswith(PREFIX) or name == PREFIX:
            continue
        path = tuple(part.lower() for part in name[len(PREFIX) :].split("__"))
        value = env_value(name, text)
        unknown = None if "" in path else _unknown_part(path, value)
        if "" in path or (unknown is not None and len(unknown) <= len(path)):
            warnings.append(f"{name} names no setting of the local server; ignored")
            continue
        if unknown is not None:  # a known setting whose dictionary has an unknown key
            inner = ".".join(unknown[len(path) :])
            warnings.append(f"{name}: unknown setting {inner!r} in its value ignored")
        layered.append((path, name, value))
    # Dictionary forms first, so a more specific variable overrides them.
    for path, _, value in sorted(layered, key=lambda item: (len(item[0]), item[1])):
        _merge(tree, path, value)
    return _build(tree), warnings


def config_from_env(environ: Mapping[str, str] | None = None) -> ServerConfig:
    """The configuration from ``OS__*`` variables alone (no YAML file)."""
    return load_config(environ)[0]


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
