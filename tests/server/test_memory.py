"""Bodies are streamed both ways: the server's peak memory does not grow
with object size (filesystem backend), measured on a real server process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3

SIZE_MIB = 128


def peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[tuple[int, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS__")}
    env.update(
        {
            "OS__HTTP_ADDR": "127.0.0.1:0",
            "OS__STORAGE__PATH": str(tmp_path / "data"),
            "OS__STORAGE__FSYNC": "false",
            "OS__LOGGING__LEVEL": "WARN",
            "OS__AUTH__ENFORCE": "false",
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "django_objectstore.server", "run"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    url = proc.stderr.readline().split(" listening on ")[1].split()[0]
    try:
        yield proc.pid, url
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stderr.close()


def test_memory_does_not_grow_with_object_size(server_process: tuple[int, str]) -> None:
    pid, url = server_process
    block = os.urandom(1 << 20)
    pool = urllib3.PoolManager(retries=False)
    try:

        def cycle(key: str, mib: int) -> int:
            r = pool.request(
                "PUT", f"{url}/v1/objects/test/org=1/{key}", body=iter([block] * mib), chunked=True
            )
            assert r.status == 200
            response = pool.request(
                "GET", f"{url}/v1/objects/test/org=1/{key}", preload_content=False
            )
            total = sum(len(chunk) for chunk in response.stream(1 << 20))
            response.release_conn()
            return total

        assert cycle("small", 1) == 1 << 20
        baseline = peak_rss_kib(pid)
        assert cycle("big", SIZE_MIB) == SIZE_MIB << 20
        growth_mib = (peak_rss_kib(pid) - baseline) / 1024
    finally:
        pool.clear()
    assert growth_mib < 16, f"server peak memory grew by {growth_mib:.0f} MiB for {SIZE_MIB} MiB"
