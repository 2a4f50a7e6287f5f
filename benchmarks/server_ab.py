"""Same-run A/B of local server versions: each round starts every given
source tree's server in turn (order alternating between rounds) and measures
it with the same raw ``http.client`` clients:

* 1 KiB PUT, GET and HEAD from one keep-alive client: ops/s and server CPU
  per request;
* GET from 8 client processes at once: ops/s;
* a PUT and a GET of one large object (random bytes, from a file), first
  thing on the fresh server: wall and server CPU.

Filesystem storage with fsync, auth enforced, on loopback. Prints medians
per tree and the ratio of each tree to the first. Example (the previous
commit against this tree)::

    git worktree add /tmp/prev HEAD~1
    python benchmarks/server_ab.py --tree prev=/tmp/prev --tree new=. --rounds 5
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _server import ServerProcess, make_keypair
from _worker import _auth_header

KID = "bench"
USECASE = "bench"


def _small_ops(port: int, headers: dict[str, str], method: str, count: int) -> float:
    """``count`` requests of ``method`` on 100 keys; returns ops/s."""
    data = os.urandom(1024)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    started = time.perf_counter()
    for i in range(count):
        path = f"/v1/objects/{USECASE}/org=1/small-{i % 100}"
        if method == "PUT":
            conn.request("PUT", path, body=data, headers={**headers, "Content-Length": "1024"})
        else:
            conn.request(method, path, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status >= 300:
            raise AssertionError(f"{method} answered {response.status}")
    elapsed = time.perf_counter() - started
    conn.close()
    return count / elapsed


def _get_client(port: int, headers: dict[str, str], seconds: float, barrier: Any, out: Any) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    barrier.wait()
    deadline = time.perf_counter() + seconds
    done = 0
    while time.perf_counter() < deadline:
        conn.request("GET", f"/v1/objects/{USECASE}/org=1/small-{done % 100}", headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise AssertionError(f"GET answered {response.status}")
        done += 1
    out.put(done)


def _concurrent_gets(port: int, headers: dict[str, str], clients: int, seconds: float) -> float:
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(clients)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_get_client, args=(port, headers, seconds, barrier, out))
        for _ in range(clients)
    ]
    for proc in procs:
        proc.start()
    total = sum(out.get(timeout=seconds + 60) for _ in procs)
    for proc in procs:
        proc.join()
    return total / seconds


def _big(
    port: int, headers: dict[str, str], path: Path, timeout: float | None
) -> tuple[float, float]:
    """Wall seconds of a PUT of ``path`` and of the GET of it. With a
    ``timeout`` the client's socket sends in the pieces the kernel takes at
    once (as urllib3's clients do); without, each 1 MiB write blocks until
    sent, so the server reads larger pieces."""
    size = path.stat().st_size
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, blocksize=1 << 20)
    started = time.perf_counter()
    with path.open("rb") as body:
        conn.request(
            "PUT",
            f"/v1/objects/{USECASE}/org=1/big",
            body=body,
            headers={**headers, "Content-Length": str(size)},
        )
        response = conn.getresponse()
        response.read()
    put = time.perf_counter() - started
    if response.status >= 300:
        raise AssertionError(f"PUT answered {response.status}")
    started = time.perf_counter()
    conn.request("GET", f"/v1/objects/{USECASE}/org=1/big", headers=headers)
    response = conn.getresponse()
    got = 0
    while block := response.read(1 << 20):
        got += len(block)
    get = time.perf_counter() - started
    conn.close()
    if got != size:
        raise AssertionError(f"GET returned {got} of {size} bytes")
    return put, get


def _measure(
    server: ServerProcess, headers: dict[str, str], args: argparse.Namespace, big: Path
) -> dict[str, float]:
    result: dict[str, float] = {}

    def timed(name: str, action: Callable[[], float], count: int) -> None:
        before = server.cpu_seconds()
        result[f"{name} ops/s"] = action()
        result[f"{name} server CPU us/op"] = (server.cpu_seconds() - before) / count * 1e6

    port = server.port
    # The large object first, on the freshly started server (as a test suite
    # or CI job meets it; a server warmed by other work may do better).
    for label, timeout in (("big, blocking client,", None), ("big", 120.0)):
        before = server.cpu_seconds()
        puts, gets = [], []
        for _ in range(args.big_repeat):
            put, get = _big(port, headers, big, timeout)
            puts.append(put)
            gets.append(get)
        result[f"{label} PUT s"] = statistics.median(puts)
        result[f"{label} GET s"] = statistics.median(gets)
        result[f"{label} PUT+GET server CPU s"] = (server.cpu_seconds() - before) / args.big_repeat
    _small_ops(port, headers, "PUT", 200)  # warm-up, and the keys the GETs read
    for method in ("PUT", "GET", "HEAD"):
        timed(
            f"1 client {method}", lambda m=method: _small_ops(port, headers, m, args.ops), args.ops
        )
    result["8 clients GET ops/s"] = _concurrent_gets(port, headers, 8, args.seconds)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tree", action="append", required=True, help="NAME=PATH of a source tree (repeat)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ops", type=int, default=3000, help="requests per 1-client phase")
    parser.add_argument("--seconds", type=float, default=4.0, help="8-client phase length")
    parser.add_argument("--big-mib", type=int, default=256)
    parser.add_argument("--big-repeat", type=int, default=3)
    parser.add_argument("--workers", default="", help="OS__RUNTIME__WORKERS for every server")
    args = parser.parse_args()
    trees = [tuple(spec.split("=", 1)) for spec in args.tree]
    with tempfile.TemporaryDirectory(prefix="server-ab-") as tmp_name:
        tmp = Path(tmp_name)
        private, public = make_keypair(tmp)
        headers = _auth_header({"usecase": USECASE, "private_key": private, "kid": KID})
        big = tmp / "big.bin"
        with big.open("wb") as out:
            for _ in range(args.big_mib):
                out.write(os.urandom(1 << 20))
        results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in trees}
        for round_no in range(args.rounds):
            order = trees if round_no % 2 == 0 else trees[::-1]
            for name, path in order:
                env = [f"PYTHONPATH={Path(path).resolve()}"]
                if args.workers:
                    env.append(f"OS__RUNTIME__WORKERS={args.workers}")
                command = ["env", *env, sys.executable, "-m", "django_objectstore.server", "run"]
                data = tmp / f"data-{name}-{round_no}"
                server = ServerProcess(
                    data_dir=data,
                    storage="filesystem",
                    kid=KID,
                    public_key=public,
                    log_path=tmp / f"{name}.log",
                    command=command,
                )
                load = os.getloadavg()[0]
                with server.running():
                    measured = _measure(server, headers, args, big)
                shutil.rmtree(data)  # else its dirty pages are written back during the next
                results[name].append(measured)
                print(
                    f"round {round_no + 1} {name} (load {load:.1f}): "
                    + ", ".join(f"{k} {v:,.3g}" for k, v in measured.items()),
                    flush=True,
                )
    first = trees[0][0]
    names = [name for name, _ in trees]
    metrics = list(results[first][0])
    print()
    print(
        f"Medians of {args.rounds} rounds; ratio = tree / {first} (for s and CPU, lower is better)"
    )
    print()
    print(
        "| Measurement | "
        + " | ".join(names)
        + " | "
        + " | ".join(f"{n} / {first}" for n in names[1:])
        + " |"
    )
    print("| --- | " + " | ".join("---:" for _ in names + names[1:]) + " |")
    for metric in metrics:
        medians = [statistics.median(r[metric] for r in results[name]) for name in names]
        ratios = [f"{m / medians[0]:.2f}x" if medians[0] else "-" for m in medians[1:]]
        print(
            f"| {metric} | "
            + " | ".join(f"{m:,.4g}" for m in medians)
            + " | "
            + " | ".join(ratios)
            + " |"
        )


if __name__ == "__main__":
    main()
