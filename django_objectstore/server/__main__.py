"""Command line: ``python -m django_objectstore.server [-c FILE] COMMAND``
with the real binary's commands: ``run``, ``healthcheck``, ``version``,
``sleep SECS`` and ``down [SECS]``.

Configured like upstream's binary (section 14): ``OS__*`` environment
variables over an optional YAML file (``-c/--config``) over the defaults.
As upstream, auth is enforced unless ``OS__AUTH__ENFORCE=false``, and an
enforcing server without keys refuses to start.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from types import FrameType

from django_objectstore.server.allocator import tune_allocator
from django_objectstore.server.app import LocalServer
from django_objectstore.server.backend_fs import FilesystemBackend
from django_objectstore.server.config import ConfigError, ServerConfig
from django_objectstore.server.config_loader import load_config, read_yaml
from django_objectstore.server.limits import ConcurrencyLimit, RateLimits
from django_objectstore.server.runner import bind
from django_objectstore.server.service import SHUTDOWN_MARKER, VERSION
from django_objectstore.server.workers import default_workers, serve_workers

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
_logger = logging.getLogger("django_objectstore.server")

NO_KEYS = (
    "auth is enforced (the default, as in the real server) but no keys are configured; "
    "either configure a key, e.g. "
    'OS__AUTH__KEYS=\'{my_kid={key_files=["/path/public.pem"],'
    'max_permissions=["object.read","object.write","object.delete"]}}\', '
    "or run an open development server with OS__AUTH__ENFORCE=false"
)


def _fail(message: str, code: int = 2) -> int:
    print(f"objectstore server: error: {message}", file=sys.stderr)
    return code


def _load(config_file: str | None) -> tuple[ServerConfig, list[str]]:
    yaml_data = read_yaml(config_file) if config_file is not None else None
    return load_config(os.environ, yaml_data)


def _build(config: ServerConfig) -> LocalServer:
    if config.auth_enforce and not config.auth_keys:
        raise ConfigError(NO_KEYS)
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
        min_part_size=config.min_part_size,
        multipart=config.multipart,
        resumable=config.resumable,
        resumable_session_ttl=config.resumable_session_ttl,
        name_limit=config.name_limit,
        idle_timeout=config.idle_timeout,
        header_timeout=config.header_timeout,
        rate_limits=(
            RateLimits.from_mapping(config.rate_limits) if config.rate_limits is not None else None
        ),
    )
    server.service.concurrency = ConcurrencyLimit(
        config.max_concurrency,
        queue=config.concurrency_queue,
        timeout=config.concurrency_timeout,
        bulk_pct=config.bulk_concurrency_pct,
    )
    return server


def _worker_count(config: ServerConfig, asked: int | None) -> int:
    """``--workers``, else ``OS__RUNTIME__WORKERS``, else the default (see
    ``workers.default_workers``); 1 when per-process limits (other than
    upstream's defaults) are set, since each worker applies them alone."""
    if asked is None:
        text = os.environ.get("OS__RUNTIME__WORKERS")
        if text is not None:
            try:
                asked = int(text)
            except ValueError:
                raise ConfigError(
                    f"OS__RUNTIME__WORKERS={text!r} is not a whole number of processes"
                ) from None
    defaults = ServerConfig()
    limited = (  # limits set on purpose (upstream's defaults are high enough to ignore)
        config.max_requests != defaults.max_requests
        or config.rate_limits is not None
        or config.max_concurrency != defaults.max_concurrency
    )
    if asked is None:
        return 1 if limited else default_workers(config.storage)
    if asked < 1:
        raise ConfigError(f"--workers={asked} must be at least 1")
    if asked > 1 and config.storage != "filesystem":
        raise ConfigError(
            "memory storage lives in one process: run it with one worker "
            "(or use OS__STORAGE__TYPE=filesystem for several)"
        )
    if asked > 1 and limited:
        _logger.warning(
            "with %d workers, request, rate and concurrency limits apply per worker", asked
        )
    return asked


def _serve_workers(config: ServerConfig, count: int) -> int:
    try:
        sock = bind(config.host, config.port)
    except OSError as exc:
        return _fail(f"cannot listen on {config.host}:{config.port}: {exc.strerror}", 1)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(
        f"objectstore server {VERSION} listening on http://{shown}:{port} "
        f"(storage={config.storage}, auth {'enforced' if config.auth_enforce else 'off'}, "
        f"{count} workers)",
        file=sys.stderr,
        flush=True,
    )

    def serve(listening: socket.socket) -> None:
        server = _build(config)
        backend = server.service.backend
        if isinstance(backend, FilesystemBackend):
            # A worker sees only the parts it stores itself: its background
            # pre-assembly would copy other workers' parts again and leave
            # its prefixes behind. Completion copies the parts instead.
            backend.preassemble = False
        server.serve_on(listening)

    return serve_workers(serve, sock, count)


def _run(config_file: str | None, workers: int | None = None) -> int:
    try:
        config, warnings = _load(config_file)
    except ConfigError as exc:
        return _fail(str(exc))
    level = _LEVELS.get(config.logging_level)
    if level is None:
        return _fail(
            f"OS__LOGGING__LEVEL={config.logging_level!r} is not one of {', '.join(_LEVELS)}"
        )
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for warning in warnings:
        _logger.warning("%s", warning)
    if config.max_concurrency == 0:
        _logger.warning(
            "OS__SERVICE__MAX_CONCURRENCY=0: no backend permits, so every object operation "
            "is answered 429 (as the real server does)"
        )
    try:
        server = _build(config)
        count = _worker_count(config, workers)
    except ConfigError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"cannot use storage path {config.path!r}: {exc.strerror}")
    tune_allocator()  # this process is the server's own (inherited by workers)
    if count > 1:
        return _serve_workers(config, count)
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


def _healthcheck(config_file: str | None) -> int:
    try:
        config = _load(config_file)[0]
    except ConfigError as exc:
        return _fail(str(exc))
    host, port = config.host, config.port
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


def _down(seconds: int | None) -> int:
    """Create the shutdown marker (``/ready`` then answers 503 so a load
    balancer drains this server), then wait ``seconds`` if given."""
    try:
        SHUTDOWN_MARKER.touch()
    except OSError as exc:
        return _fail(f"cannot create {str(SHUTDOWN_MARKER)!r}: {exc.strerror}", 1)
    print(f"marked down: {SHUTDOWN_MARKER} (/ready answers 503 until it is removed)")
    if seconds:
        time.sleep(seconds)
    return 0


def _seconds(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds")
    return int(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m django_objectstore.server",
        description="Local Objectstore-compatible server (development and tests only). "
        "Configured with OS__* environment variables over an optional YAML file, "
        "like the real server.",
    )
    parser.add_argument(
        "-c", "--config", metavar="FILE", help="YAML configuration file (OS__* variables win)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="serve until SIGTERM or Ctrl+C")
    run.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes (local extension; also OS__RUNTIME__WORKERS); default: one "
        "per core for filesystem storage, 1 for memory storage or when per-process limits "
        "(max requests, rate limits, max concurrency) are configured",
    )
    commands.add_parser("healthcheck", help="exit 0 if GET /health answers 200")
    commands.add_parser("version", help="print the version")
    sleep = commands.add_parser("sleep", help="wait SECS seconds (for container hooks)")
    sleep.add_argument("seconds", type=_seconds, metavar="SECS")
    down = commands.add_parser("down", help="make /ready answer 503, then wait SECS if given")
    down.add_argument("seconds", type=_seconds, nargs="?", metavar="SECS")
    args = parser.parse_args(argv)
    if args.command == "run":
        return _run(args.config, args.workers)
    if args.command == "healthcheck":
        return _healthcheck(args.config)
    if args.command == "sleep":
        time.sleep(args.seconds)
        return 0
    if args.command == "down":
        return _down(args.seconds)
    return _version()


if __name__ == "__main__":
    sys.exit(main())
