"""Peak memory stays bounded for large puts and gets (measured in a
subprocess, so the test process's own allocations do not count)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from django_objectstore.server import LocalServer

SIZE_MIB = 256
LIMIT_MIB = 64

SCRIPT = r"""
import io, json, random, sys, threading, time
import django_objectstore.client as client_module

url, size = sys.argv[1], int(sys.argv[2]) << 20

# 16 MiB of varied log lines, repeated beyond zstd's window: compresses ~3:1;
# or 16 MiB of random bytes, which do not compress (the worst case for memory).
rnd = random.Random(7)
words = [b"alpha", b"beta", b"error", b"info", b"user", b"GET", b"/api/v1/items"]
lines = []
total = 0
while total < 16 << 20:
    line = b"%d %s %s id=%d\n" % (rnd.getrandbits(40), rnd.choice(words), rnd.choice(words),
                                  rnd.getrandbits(24))
    lines.append(line)
    total += len(line)
BLOCK = b"".join(lines)[: 16 << 20] if sys.argv[5] == "text" else rnd.randbytes(16 << 20)
del lines


class Source(io.RawIOBase):
    # size bytes generated on the fly; seekable (size known) or not.
    def __init__(self, seekable):
        self.pos, self._seekable = 0, seekable
    def readable(self):
        return True
    def seekable(self):
        return self._seekable
    def tell(self):
        return self.pos
    def seek(self, offset, whence=0):
        self.pos = {0: offset, 1: self.pos + offset, 2: size + offset}[whence]
        return self.pos
    def readinto(self, buffer):
        view = memoryview(buffer)
        count = min(len(view), size - self.pos)
        done = 0
        while done < count:
            offset = (self.pos + done) % len(BLOCK)
            step = min(count - done, len(BLOCK) - offset)
            view[done : done + step] = BLOCK[offset : offset + step]
            done += step
        self.pos += count
        return count


def rss_mib():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


def measure(operation):
    base = rss_mib()
    peak = [base]
    stop = threading.Event()
    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mib())
            time.sleep(0.002)
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        operation()
    finally:
        stop.set()
        sampler.join()
    return peak[0] - base


pem = open(sys.argv[3]).read()
operation = sys.argv[4]
with client_module.Client(url, token=client_module.SecretKey("test_kid", pem)) as client:
    session = client.session(client_module.Usecase("test"), org=1, memory="test")

    def read(key, decompress=True):
        got = session.get(key, decompress=decompress)
        seen = 0
        with got.payload as payload:
            while block := payload.read(1 << 20):
                seen += len(block)
        if decompress:
            assert seen == size, seen

    run = {
        "parallel put": lambda: session.put(Source(True), key="big"),
        "streamed put": lambda: session.put(Source(False), key="big2"),
        "get multi-frame": lambda: read("big"),
        "get one frame": lambda: read("big2"),
        "get stored bytes": lambda: read("big", decompress=False),
    }[operation]
    print(json.dumps(measure(run)))
"""

# Each operation in a fresh process: memory freed by one operation would
# otherwise hide the next one's growth. Puts first, the gets read them.
OPERATIONS = [
    "parallel put",
    "streamed put",
    "get multi-frame",
    "get one frame",
    "get stored bytes",
]


@pytest.fixture(scope="module")
def disk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    # Filesystem storage: the stored objects do not grow this process either.
    root = tmp_path_factory.mktemp("objects")
    with LocalServer(storage="filesystem", path=root, fsync=False) as running:
        yield running


@pytest.mark.slow  # about 10-15 s: six 256 MiB transfers
def test_large_put_and_get_stay_within_64_mib(disk_server: LocalServer) -> None:
    keys = Path(__file__).resolve().parent.parent / "keys" / "test_kid.private.pem"
    growth: dict[str, float] = {}
    # Compressible text for everything, and incompressible data (largest
    # compressed parts) for the parallel put.
    runs = [(operation, "text") for operation in OPERATIONS] + [("parallel put", "random")]
    for run in runs:
        result = subprocess.run(
            [sys.executable, "-c", SCRIPT, disk_server.url, str(SIZE_MIB), str(keys), *run],
            # Measured as users run it: dev mode's debug allocator fills every
            # new allocation, which makes all of its pages resident.
            env={k: v for k, v in os.environ.items() if k not in ("PYTHONDEVMODE", "PYTHONMALLOC")},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        growth[" ".join(run)] = json.loads(result.stdout)
    assert len(growth) == 6
    for operation, mib in growth.items():
        assert mib < LIMIT_MIB, f"{operation} grew RSS by {mib:.1f} MiB ({growth})"
