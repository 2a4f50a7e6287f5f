"""Fork safety: a client used before ``fork`` and then by the parent and its
children at the same time (gunicorn ``--preload``, Celery's prefork pool,
``multiprocessing`` with fork) never hands a process another's response.

Each scenario runs ``fork_worker.py`` in a fresh interpreter against the
test server on 127.0.0.1: the parent warms the client's pool up, forks four
children, and all five processes put and read back their own keys from two
threads each (200 verified reads per process)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from django_objectstore.server import LocalServer
from tests.client.conftest import KEYS

WORKER = Path(__file__).with_name("fork_worker.py")
ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 5
READS_PER_PROCESS = 200


def run_worker(server: LocalServer, mode: str, which: str) -> list[dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [
            sys.executable,
            str(WORKER),
            server.url,
            str(KEYS / "test_kid.private.pem"),
            mode,
            which,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the worker and its own children
        out, err = process.communicate()
        pytest.fail(f"fork worker ({mode}, {which}) hung:\n{err.decode()[-2000:]}")
    assert process.returncode == 0, err.decode()[-3000:]
    results: Any = json.loads(out.decode().strip().splitlines()[-1])
    return results.get("results", results)


def assert_no_crossing(results: list[dict[str, Any]]) -> None:
    assert len(results) == PROCESSES
    assert len({r["pid"] for r in results}) == PROCESSES
    for result in results:
        assert result["errors"] == [], result
        assert result["wrong"] == 0, result
        assert result["checked"] == READS_PER_PROCESS, result


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["os.fork", "mp-fork", "django", "locks-held", "libc-fork"])
def test_forked_processes_read_only_their_own_bytes(server: LocalServer, mode: str) -> None:
    assert_no_crossing(run_worker(server, mode, "ours"))


@pytest.mark.slow
def test_a_payload_opened_before_the_fork_is_the_parents_alone(server: LocalServer) -> None:
    """The child cannot read a payload the parent opened (decompressed by
    zstandard's reader, read ahead and decoded on worker threads, or plain):
    it gets a RuntimeError, never bytes off the parent's connection, and never
    hangs on helper threads that did not survive the fork; the parent reads
    all of each; a fresh get in the child works."""
    result: Any = run_worker(server, "inherited-payload", "ours")
    assert result["child"] == {
        "streamed": "RuntimeError",
        "read-ahead+frames": "RuntimeError",
        "plain": "RuntimeError",
        "raw blocks": "RuntimeError",
        "fresh get": True,
    }
    assert result["parent"] == {
        "streamed": True,
        "read-ahead+frames": True,
        "plain": True,
        "raw blocks": True,
    }
