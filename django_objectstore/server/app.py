"""``LocalServer``: start the local Objectstore-compatible server in a
background thread (tests, demos) or in the foreground (the CLI)."""

from __future__ import annotations

import concurrent.futures
import os
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from django_objectstore.server.asgi import ObjectstoreApp
from django_objectstore.server.auth import KeyDirectory
from django_objectstore.server.backend_fs import FilesystemBackend
from django_objectstore.server.backend_memory import MemoryBackend
from django_objectstore.server.backend_modes import NAME_LIMITS, NameLimit
from django_objectstore.server.config import ConfigError, KeyConfig, Killswitch, UsecasePolicy
from django_objectstore.server.limits import ConcurrencyLimit, RateLimiter, RateLimits
from django_objectstore.server.model import Backend
from django_objectstore.server.resumable_disk import FilesystemSessions
from django_objectstore.server.resumable_store import DEFAULT_SESSION_TTL, MemorySessions
from django_objectstore.server.runner import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    UvicornServer,
    bind,
    make_config,
)
from django_objectstore.server.service import Service, logger

__all__ = ["LocalServer"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _is_byte_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class LocalServer:
    """A local Objectstore-compatible server.

    ``start()`` binds (port 0 picks a free port), serves in a daemon thread
    and returns once requests are accepted; ``url`` is then the base URL.
    ``stop()`` shuts down (requests in progress get a few seconds), closes
    open connections and joins the threads.
    Also a context manager. ``clock`` (a callable returning an aware UTC
    ``datetime``) replaces the wall clock for expiry and token checks, so
    tests need not sleep. ``sweep_interval`` is how often expired objects
    are removed in the background (``None``: only when read).
    ``/ready`` answers 503 while ``shutdown_marker`` exists (default: upstream's
    ``objectstore.down`` in the system temp directory). ``fsync=False``
    skips the fsync of each written object (faster, less durable).
    ``killswitches`` reject matching requests with 403 and ``max_requests``
    answers 503 beyond that many requests in flight, ``rate_limits`` answers
    429 above a request or byte rate and ``max_concurrency`` caps concurrent
    backend operations (429 beyond), as upstream's admission control does.
    ``min_part_size`` (bytes; not upstream) makes a multipart completion fail
    with ``EntityTooSmall`` when a listed part other than the last is smaller,
    as GCS and S3 do (5 MiB there); ``None`` accepts any size.
    ``idle_timeout`` (seconds) closes kept-alive connections idle that long,
    and connections whose large request body stops arriving that long;
    ``header_timeout`` (seconds) closes connections that have not sent a
    whole request head that long after connecting or starting a request.
    HTTP framing is uvicorn's (httptools parser), run on the thread.
    Resumable uploads (section 20) are on unless ``resumable=False`` (creates
    answered 501, as a backend without them); their sessions expire
    ``resumable_session_ttl`` after creation (default 7 days, as GCS's).
    ``multipart=False`` answers multipart requests 501 like upstream's
    S3-compatible and BigTable backends; ``name_limit="gcs"`` refuses object
    names over GCS's 1,024 bytes as production does (500).
    """

    def __init__(
        self,
        *,
        storage: Literal["memory", "filesystem"] = "memory",
        path: str | os.PathLike[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        auth_enforce: bool = False,
        auth_keys: Mapping[str, KeyConfig] | None = None,
        usecases: Mapping[str, UsecasePolicy] | None = None,
        clock: Callable[[], datetime] | None = None,
        fsync: bool = True,
        sweep_interval: float | None = 60.0,
        shutdown_marker: str | os.PathLike[str] | None = None,
        killswitches: Sequence[Killswitch] = (),
        max_requests: int | None = None,
        rate_limits: RateLimits | None = None,
        max_concurrency: int | None = None,
        min_part_size: int | None = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        multipart: bool = True,
        resumable: bool = True,
        resumable_session_ttl: timedelta = DEFAULT_SESSION_TTL,
        name_limit: NameLimit | None = None,
    ) -> None:
        if min_part_size is not None and not _is_byte_count(min_part_size):
            raise ConfigError(
                f"min_part_size={min_part_size!r} must be a non-negative number of bytes or None"
            )
        self._clock = clock or _utcnow
        # Keys first: a bad auth configuration must not leave a storage dir behind.
        keys = KeyDirectory(auth_keys or {}, enforce=auth_enforce, clock=self._clock)
        backend: Backend
        if storage == "memory":
            backend = MemoryBackend()
        elif storage == "filesystem":
            if path is None:
                raise ConfigError("storage='filesystem' needs path= (the storage root)")
            backend = FilesystemBackend(path, fsync=fsync)
        else:
            raise ConfigError(f"storage must be 'memory' or 'filesystem', not {storage!r}")
        self.service = Service(backend, keys, usecases or {}, self._clock)
        if shutdown_marker is not None:
            self.service.shutdown_marker = Path(shutdown_marker)
        self.service.killswitches = list(killswitches)
        self.service.max_requests = max_requests
        if rate_limits is not None:
            clock_seconds = self._clock
            self.service.rate_limiter = RateLimiter(
                rate_limits, clock=lambda: clock_seconds().timestamp()
            )
        self.service.concurrency = ConcurrencyLimit(max_concurrency)
        self.service.min_part_size = min_part_size
        self._configure_modes(multipart, resumable, resumable_session_ttl, name_limit, fsync)
        self._host = host
        self._port = port
        self._sweep_interval = sweep_interval
        self._idle_timeout = idle_timeout
        self._header_timeout = header_timeout
        self._uvicorn: UvicornServer | None = None
        self._socket: socket.socket | None = None
        self._address: tuple[str, int] | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._sweeper: threading.Thread | None = None

    def _configure_modes(
        self,
        multipart: bool,
        resumable: bool,
        session_ttl: timedelta,
        name_limit: NameLimit | None,
        fsync: bool,
    ) -> None:
        """Resumable sessions and the backend modes (backend_modes.py)."""
        if session_ttl <= timedelta(0):
            raise ConfigError(
                f"resumable_session_ttl={session_ttl!r} must be a positive timedelta "
                "(for example timedelta(days=7))"
            )
        if name_limit is not None and name_limit not in NAME_LIMITS:
            raise ConfigError(
                f"name_limit={name_limit!r} is not one of {', '.join(NAME_LIMITS)} (or None)"
            )
        service = self.service
        service.multipart = bool(multipart)
        service.name_limit = NAME_LIMITS[name_limit] if name_limit is not None else None
        backend = service.backend
        if not resumable:
            service.resumable = None
        elif isinstance(backend, FilesystemBackend):
            service.resumable = FilesystemSessions(
                backend, backend.root, fsync=fsync, ttl=session_ttl
            )
        else:
            service.resumable = MemorySessions(backend, session_ttl)

    @property
    def url(self) -> str:
        host, port = self.address
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    @property
    def address(self) -> tuple[str, int]:
        if self._address is None:
            raise RuntimeError("LocalServer is not started; call start() first")
        return self._address

    def start(self) -> LocalServer:
        if self._uvicorn is not None:
            raise RuntimeError("LocalServer is already started")
        self._stopping.clear()
        self.service.shutting_down = False
        sock = bind(self._host, self._port)
        host, port = sock.getsockname()[:2]
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=128, thread_name_prefix="objectstore-request"
        )
        app = ObjectstoreApp(self.service, self._executor)
        server = UvicornServer(
            make_config(app, idle_timeout=self._idle_timeout, header_timeout=self._header_timeout)
        )
        self._uvicorn, self._socket, self._address = server, sock, (str(host), int(port))
        self._thread = threading.Thread(
            target=server.run, args=([sock],), name="objectstore-server", daemon=True
        )
        self._thread.start()
        while not server.started:
            if not self._thread.is_alive():
                self._cleanup()
                raise RuntimeError("the objectstore server thread ended during start-up")
            self._thread.join(0.005)
        if self._sweep_interval is not None:
            self._sweeper = threading.Thread(
                target=self._sweep_loop, name="objectstore-sweeper", daemon=True
            )
            self._sweeper.start()
        logger.info("objectstore server listening on %s", self.url)
        return self

    def serve_on(self, sock: socket.socket) -> None:
        """Serve on an already listening socket in this (main) thread until
        SIGTERM or SIGINT: what each worker process of the CLI runs."""
        host, port = sock.getsockname()[:2]
        self._address = (str(host), int(port))
        executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=128, thread_name_prefix="objectstore-request"
        )
        app = ObjectstoreApp(self.service, executor)
        config = make_config(
            app, idle_timeout=self._idle_timeout, header_timeout=self._header_timeout
        )
        if self._sweep_interval is not None:
            self._sweeper = threading.Thread(
                target=self._sweep_loop, name="objectstore-sweeper", daemon=True
            )
            self._sweeper.start()
        try:
            UvicornServer(config).run([sock])
        finally:
            self._stopping.set()
            self.service.shutting_down = True
            if self._sweeper is not None:
                self._sweeper.join()
            executor.shutdown(wait=False, cancel_futures=True)
            if isinstance(self.service.backend, FilesystemBackend):
                self.service.backend.close()
            self._address = None
            self._sweeper = None

    def serve_forever(self) -> None:
        """Start and block until ``stop()`` is called (or KeyboardInterrupt)."""
        self.start()
        try:
            self._stopping.wait()
        finally:
            self.stop()

    def request_stop(self) -> None:
        """Ask ``serve_forever``/``wait`` to return (safe from signal handlers)."""
        self._stopping.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until ``request_stop()``/``stop()``; True when stopping."""
        return self._stopping.wait(timeout)

    def _sweep_loop(self) -> None:
        assert self._sweep_interval is not None
        while not self._stopping.wait(self._sweep_interval):
            self.sweep()

    def sweep(self) -> int:
        """Remove expired objects now; returns how many were removed."""
        try:
            now = self._clock()
            removed = self.service.backend.sweep(now)
            if self.service.resumable is not None:
                self.service.resumable.sweep(now)  # expired resumable sessions
            return removed
        except OSError:
            logger.exception("expiry sweep failed")
            return 0

    def stop(self) -> None:
        self._stopping.set()
        server = self._uvicorn
        if server is None:
            return
        self.service.shutting_down = True
        server.should_exit = True
        if self._thread is not None:
            self._thread.join()
        if self._sweeper is not None:
            self._sweeper.join()
        backend = self.service.backend
        if isinstance(backend, FilesystemBackend):
            # Stops its background worker; the files stay. (MemoryBackend.close
            # would drop the data, and a stopped server may be started again.)
            backend.close()
        self._cleanup()

    def _cleanup(self) -> None:
        if self._socket is not None:
            self._socket.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._uvicorn = None
        self._socket = None
        self._address = None
        self._executor = None
        self._thread = None
        self._sweeper = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._address is not None else "stopped"
        return f"<LocalServer {where}>"
