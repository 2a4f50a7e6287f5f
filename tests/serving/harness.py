"""Start the served project under a real server in a child process and read
that process's peak resident memory (``VmHWM`` in ``/proc/<pid>/status``)."""

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
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parents[2]
Kind = Literal["asgi", "wsgi"]


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


@contextmanager
def served(kind: Kind, env: Mapping[str, str], *, ready_timeout: float = 60.0) -> Iterator[Served]:
    """Serve ``tests.serving`` with uvicorn (``asgi``) or wsgiref (``wsgi``) on
    127.0.0.1; yields once it answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    fd = listener.fileno()
    if kind == "asgi":
        command = [
            sys.executable, "-m", "uvicorn", "--fd", str(fd), "--lifespan", "off",
            "--no-access-log", "--log-level", "warning", "tests.serving.asgi:application",
        ]  # fmt: skip
    else:
        command = [sys.executable, "-m", "tests.serving.wsgi", str(fd)]
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    process = subprocess.Popen(
        command,
        pass_fds=[fd],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONPATH": pythonpath},
    )
    port = listener.getsockname()[1]
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
