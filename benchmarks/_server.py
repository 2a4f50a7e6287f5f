"""The local server under test, in its own process (its own GIL)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

__all__ = ["ServerProcess", "make_keypair"]

_TICKS = os.sysconf("SC_CLK_TCK")


def make_keypair(directory: Path) -> tuple[Path, Path]:
    """A fresh Ed25519 key pair (private PKCS#8 PEM, public SPKI PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = directory / "bench.private.pem"
    public = directory / "bench.public.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``python -m django_objectstore.server run`` configured by ``OS__*`` variables."""

    def __init__(
        self,
        *,
        data_dir: Path,
        storage: str,
        kid: str,
        public_key: Path,
        log_path: Path,
        command: list[str] | None = None,
    ) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        perms = '["object.read","object.write","object.delete"]'
        self.env = {
            **os.environ,
            "OS__HTTP_ADDR": f"127.0.0.1:{self.port}",
            "OS__STORAGE__TYPE": storage,
            "OS__STORAGE__PATH": str(data_dir),
            "OS__AUTH__ENFORCE": "true",
            "OS__AUTH__KEYS": f'{{{kid}={{key_files=["{public_key}"],max_permissions={perms}}}}}',
            "OS__LOGGING__LEVEL": "WARN",
        }
        self.command = command or [sys.executable, "-m", "django_objectstore.server", "run"]
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.command, env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.proc.returncode} during startup; see {self.log_path}"
                )
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/health", timeout=1) as resp,
            ):
                if resp.status == 200:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not answer /health within {timeout}s; see {self.log_path}")

    def _pids(self) -> list[int]:
        """The server process and its worker processes (``run --workers``)."""
        assert self.proc is not None
        pid = self.proc.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            children = []
        return [pid, *(int(child) for child in children)]

    def cpu_seconds(self) -> float:
        """User+system CPU the server has used so far (all its threads and
        worker processes)."""
        total = 0.0
        for pid in self._pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                return float("nan")
            total += (int(fields[11]) + int(fields[12])) / _TICKS
        return total

    def rss_mib(self) -> float:
        """Peak RSS of the largest server process (a worker, with workers)."""
        peak = float("nan")
        for pid in self._pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        value = int(line.split()[1]) / 1024
                        peak = value if peak != peak else max(peak, value)
            except OSError:
                pass
        return peak

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    @contextlib.contextmanager
    def running(self) -> Iterator[ServerProcess]:
        self.start()
        try:
            yield self
        finally:
            self.stop()
