"""The CLI's worker processes (filesystem storage): several processes serve
one port and one folder, stop together on SIGTERM, die with the supervisor,
and memory storage refuses more than one."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tests.server.helpers import call, cli_server, complete, initiate, run_cli, upload


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(word) for word in text.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until(predicate: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return True
        time.sleep(0.05)
    return False


def test_two_workers_serve_and_stop_on_sigterm(tmp_path: Path) -> None:
    env = {"OS__STORAGE__PATH": str(tmp_path / "data")}
    with cli_server(tmp_path, env, ("run", "--workers", "2")) as (proc, url):
        assert wait_until(lambda: len(children(proc.pid)) == 2)
        workers = children(proc.pid)
        # Each connection may land on either worker; all see one folder.
        for n in range(20):
            assert call(url, "PUT", f"/v1/objects/test/org=1/k{n}", b"v%d" % n).status == 200
        for n in range(20):
            assert call(url, "GET", f"/v1/objects/test/org=1/k{n}").body == b"v%d" % n
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert wait_until(lambda: not any(alive(pid) for pid in workers))


def test_a_dead_worker_is_replaced(tmp_path: Path) -> None:
    env = {"OS__STORAGE__PATH": str(tmp_path / "data")}
    with cli_server(tmp_path, env, ("run", "--workers", "2")) as (proc, url):
        assert wait_until(lambda: len(children(proc.pid)) == 2)
        time.sleep(2.1)  # older than the restart guard
        first = children(proc.pid)[0]
        os.kill(first, signal.SIGKILL)
        assert wait_until(lambda: first not in children(proc.pid) and len(children(proc.pid)) == 2)
        assert call(url, "GET", "/health").status == 200


def test_workers_die_with_a_killed_supervisor(tmp_path: Path) -> None:
    env = {"OS__STORAGE__PATH": str(tmp_path / "data")}
    with cli_server(tmp_path, env, ("run", "--workers", "2")) as (proc, _):
        assert wait_until(lambda: len(children(proc.pid)) == 2)
        workers = children(proc.pid)
        proc.kill()
        proc.wait(10)
        assert wait_until(lambda: not any(alive(pid) for pid in workers))


def test_memory_storage_refuses_several_workers(tmp_path: Path) -> None:
    env = {
        "OS__STORAGE__TYPE": "memory",
        "OS__AUTH__ENFORCE": "false",
        "OS__HTTP_ADDR": "127.0.0.1:0",
    }
    result = run_cli(env, "run", "--workers", "2", cwd=tmp_path)
    assert result.returncode == 2
    assert "memory storage lives in one process" in result.stderr


def test_multipart_across_workers_leaves_no_temp_files(tmp_path: Path) -> None:
    # Parts land on either worker; without background pre-assembly in
    # workers, completion copies them and nothing is left behind.
    data = tmp_path / "data"
    with cli_server(tmp_path, {"OS__STORAGE__PATH": str(data)}, ("run", "--workers", "2")) as (
        proc,
        url,
    ):
        key = "mp-workers"
        uid = initiate(url, key)
        parts = [bytes([65 + n]) * 300_000 for n in range(4)]
        listing = [(n, upload(url, key, uid, n, part)) for n, part in enumerate(parts, 1)]
        assert complete(url, key, uid, listing) == {"key": key}
        assert call(url, "GET", f"/v1/objects/test/org=1/{key}").body == b"".join(parts)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    assert not list(data.rglob("*.tmp"))
