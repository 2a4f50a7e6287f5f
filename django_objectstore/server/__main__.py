"""Command line: ``python -m django_objectstore.server run | healthcheck | version``.

Configured like upstream's binary through ``OS__*`` environment variables
(``OS__HTTP_ADDR``, ``OS__STORAGE__TYPE``, ``OS__STORAGE__PATH``,
``OS__AUTH__ENFORCE``, ``OS__AUTH__KEYS``, ``OS__LOGGING__LEVEL``).
"""

from __future__ import annotations

import argparse
import http.client
import logging
import os
import signal
import sys
from collections.abc import Sequence
from importlib import metadata
from types import FrameType

from django_objectstore.server.app import LocalServer
from django_objectstore.server.config import ConfigError, config_from_env, parse_address
from django_objectstore.server.limits import RateLimits
from django_objectstore.server.service import VERSION

__all__ = ["main"]

_LEVELS = {
    "TRACE": logging.DEBUG,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "OFF": logging.CRITICAL + 10,
}


def _fail(message: str, code: int = 2) -> int:
    print(f"objectstore server: error: {message}", file=sys.stderr)
    return code


def _run() -> int:
    level_name = os.environ.get("OS__LOGGING__LEVEL", "INFO").strip().upper()
    level = _LEVELS.get(level_name)
    if level is None:
        return _fail(f"OS__LOGGING__LEVEL={level_name!r} is not one of {', '.join(_LEVELS)}")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_env()
        server = LocalServer(
            storage=config.storage,
            path=config.path,
            host=config.host,
            port=config.port,
            auth_enforce=config.auth_enforce,
            auth_keys=config.auth_keys,
            usecases=config.usecases,
            fsync=config.fsync,
            killswitches=config.killswitches,
            max_requests=config.max_requests,
            max_concurrency=config.max_concurrency,
            min_part_size=config.min_part_size,
            multipart=config.multipart,
            resumable=config.resumable,
            resumable_session_ttl=config.resumable_session_ttl,
            name_limit=config.name_limit,
            rate_limits=(
                RateLimits.from_mapping(config.rate_limits)
                if config.rate_limits is not None
                else None
            ),
        )
    except ConfigError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"cannot use storage path {config.path!r}: {exc.strerror}")
    try:
        server.start()
    except OSError as exc:
        return _fail(f"cannot listen on {config.host}:{config.port}: {exc.strerror}", 1)

    def stop(signum: int, frame: FrameType | None) -> None:
        server.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(
        f"objectstore server {VERSION} listening on {server.url} "
        f"(storage={config.storage}, auth {'enforced' if config.auth_enforce else 'off'})",
        file=sys.stderr,
        flush=True,
    )
    server.wait()
    server.stop()
    return 0


def _healthcheck() -> int:
    try:
        host, port = parse_address(os.environ.get("OS__HTTP_ADDR", "127.0.0.1:8888"))
    except ConfigError as exc:
        return _fail(str(exc))
    if host in ("0.0.0.0", "::"):  # noqa: S104 - a wildcard bind is reached on loopback
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"  # noqa: S104
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request("GET", "/health")
        status = conn.getresponse().status
    except OSError as exc:
        return _fail(f"health check of {host}:{port} failed: {exc}", 1)
    finally:
        conn.close()
    if status != 200:
        return _fail(f"health check of {host}:{port} answered {status}", 1)
    print("OK")
    return 0


def _version() -> int:
    try:
        package = metadata.version("django-objectstore")
    except metadata.PackageNotFoundError:
        package = "unknown"
    print(f"objectstore-server {VERSION} (django-objectstore {package} local server)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m django_objectstore.server",
        description="Local Objectstore-compatible server (development and tests only). "
        "Configured with OS__* environment variables like the real server.",
    )
    parser.add_argument("command", choices=["run", "healthcheck", "version"])
    args = parser.parse_args(argv)
    if args.command == "run":
        return _run()
    if args.command == "healthcheck":
        return _healthcheck()
    return _version()


if __name__ == "__main__":
    sys.exit(main())
