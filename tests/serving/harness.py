"""Start the served project under a real server in a child process and read
that process's peak resident memory (``VmHWM`` in ``/proc/<pid>/status``).

The servers: uvicorn (``asgi``, ``workers`` > 1 for its multiprocess mode),
the standard library's wsgiref (``wsgi``), gunicorn with ``--preload``
(``gunicorn``: ``tests.serving.preload`` uses the shared client before the
fork) and Django's own ``manage.py runserver`` (``runserver``, threaded,
no autoreload)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parents[2]
Kind = Literal["asgi", "wsgi", "gunicorn", "runserver"]
TIMEOUT = 30.0  # seconds, for every request a helper here makes


@dataclass
class Served:
    url: str
    pid: int

    def peak_rss_kib(self) -> int:
        """The child's peak resident set size so far (kernel's high-water mark)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise RuntimeError(f"no VmHWM in /proc/{self.pid}/status")

    def download(
        self, path: str, block: int = 1 << 20, headers: Mapping[str, str] | None = None
    ) -> tuple[int, bytes]:
        """GET ``path``; returns (status, first 64 KiB) after reading the whole
        body in blocks (the body is counted, not kept)."""
        request = urllib.request.Request(self.url + path, headers=dict(headers or {}))
        try:
            response = urllib.request.urlopen(request, timeout=120)
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read(65536)
        with response:
            head = response.read(65536)
            total = len(head)
            while data := response.read(block):
                total += len(data)
            expected = response.headers.get("Content-Length")
            if expected is not None and int(expected) != total:
                raise AssertionError(f"{path}: got {total} bytes of {expected}")
            return response.status, head

    def fetch(self, path: str, data: bytes | None = None) -> tuple[int, bytes, Message]:
        """GET ``path`` (POST ``data`` when given); returns (status, whole body, headers)."""
        request = urllib.request.Request(self.url + path, data=data)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return response.status, response.read(), response.headers
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read(), exc.headers


def _command(kind: Kind, fd: int, port: int, workers: int) -> list[str]:
    if kind == "asgi":
        return [
            sys.executable, "-m", "uvicorn", "--fd", str(fd), "--lifespan", "off",
            "--no-access-log", "--log-level", "warning", "--workers", str(workers),
            "tests.serving.asgi:application",
        ]  # fmt: skip
    if kind == "gunicorn":
        return [
            sys.executable, "-m", "gunicorn", "--preload", "--workers", str(workers),
            "--bind", f"fd://{fd}", "--log-level", "warning", "--timeout", "30",
            "--graceful-timeout", "5", "tests.serving.preload:application",
        ]  # fmt: skip
    if kind == "runserver":
        return [
            sys.executable, "-m", "django", "runserver", "--noreload", "--skip-checks",
            "--settings", "tests.serving.settings", f"127.0.0.1:{port}",
        ]  # fmt: skip
    return [sys.executable, "-m", "tests.serving.wsgi", str(fd)]


@contextmanager
def served(
    kind: Kind, env: Mapping[str, str], *, workers: int = 1, ready_timeout: float = 60.0
) -> Iterator[Served]:
    """Serve ``tests.serving`` with ``kind`` (see the module docstring) on
    127.0.0.1; yields once it answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    fd, port = listener.fileno(), listener.getsockname()[1]
    if kind == "runserver":
        # runserver binds its own socket (to a port known now, free again).
        listener.close()
    command = _command(kind, fd, port, workers)
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    process = subprocess.Popen(
        command,
        pass_fds=[] if kind == "runserver" else [fd],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONPATH": pythonpath},
    )
    listener.close()
    try:
        result = Served(f"http://127.0.0.1:{port}", process.pid)
        deadline = time.monotonic() + ready_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{kind} server exited with {process.returncode}")
            try:
                # An unknown usecase: a 404 from Django proves the app is up.
                status, _ = result.download("/files/no-such-usecase/x")
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
                continue
            if status != 404:
                raise RuntimeError(f"{kind} server answered {status} to the readiness probe")
            break
        yield result
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
