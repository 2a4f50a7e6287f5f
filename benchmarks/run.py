#!/usr/bin/env python3
"""Benchmarks: our client, server and Django storage against the official client.

Run from anywhere::

    python3 benchmarks/run.py            # full run (about 10-15 minutes on 2 cores)
    python3 benchmarks/run.py --quick    # small payloads, 3 repetitions (under 3 minutes)
    python3 benchmarks/run.py --scenarios put_text,get_text --repeat 7

The first run creates ``.venv-bench`` at the repository root with this project
(editable) and the newest ``objectstore-client`` release, so the benchmark does
not disturb the test environment's pinned peer. Every measurement runs in a
fresh child process against one local server process; the official client and
ours alternate (official first in odd repetitions, ours first in even ones) and
the speed-up is the median of the per-pair ratios official/ours. The table is
printed and saved under ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV = ROOT / ".venv-bench"
VENV_PY = VENV / "bin" / "python"
REQUIREMENTS = [
    "objectstore-client>=0.2.10",
    "py-spy>=0.3",
    "pyinstrument>=4.6",
    "uvicorn>=0.30",  # the django_download scenario serves the view under ASGI
]
IMPLS = ("official", "ours")
MIB = 1 << 20
KID = "bench"
USECASE = "bench"

# Targets: minimum median speed-up of ours over the official client.
TARGETS = {
    "put_text": 1.6,
    "put_random": 1.5,
    "get_text": 1.2,
    "get_random": 1.2,
    "get_text_own": 1.2,
    "small_auth": 1.3,
}
RSS_TARGET_MIB = 64

ALL_SCENARIOS = [
    "put_text",
    "put_random",
    "get_text",
    "get_random",
    "get_text_own",
    "small_auth",
    "rss_1g",
    "django_small",
    "django_big",
    "django_download",
    "server_ops",
    "bounds",
]


# -- environment ---------------------------------------------------------------


def _stamp() -> str:
    text = (ROOT / "pyproject.toml").read_bytes() + "\n".join(REQUIREMENTS).encode()
    return hashlib.sha256(text).hexdigest()


def ensure_venv(refresh: bool) -> None:
    """Re-run this script inside .venv-bench, creating or refreshing it first."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    stamp_file = VENV / ".bench-stamp"
    if (
        refresh
        or not VENV_PY.exists()
        or not stamp_file.exists()
        or (stamp_file.read_text() != _stamp())
    ):
        print(f"setting up {VENV} ...", flush=True)
        if not VENV_PY.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [
                str(VENV_PY),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--upgrade",
                "-e",
                str(ROOT),
                *REQUIREMENTS,
            ],
            check=True,
        )
        stamp_file.write_text(_stamp())
    os.execv(str(VENV_PY), [str(VENV_PY), str(Path(__file__).resolve()), *sys.argv[1:]])


# -- child processes -----------------------------------------------------------


class ChildFailed(RuntimeError):
    pass


def run_child(spec: dict[str, Any], ctx: Context, timeout: float = 900.0) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; add its rusage and the server's CPU."""
    with tempfile.NamedTemporaryFile("w+", suffix=".json", dir=ctx.tmp) as out:
        err_path = Path(out.name).with_suffix(".err")
        cpu0 = ctx.server.cpu_seconds()
        load = os.getloadavg()[0]
        with err_path.open("wb") as err:
            env = None
            if spec.get("impl") == "base" and ctx.baseline is not None:
                env = {**os.environ, "PYTHONPATH": str(ctx.baseline)}
            proc = subprocess.Popen(
                [sys.executable, str(HERE / "_worker.py"), json.dumps(spec), out.name],
                stdout=err,
                stderr=subprocess.STDOUT,
                cwd=ctx.tmp,
                env=env,
            )
            deadline = time.monotonic() + timeout
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() > deadline:
                    proc.kill()
                    pid, status, usage = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.01)
        proc.returncode = os.waitstatus_to_exitcode(status)
        server_cpu = ctx.server.cpu_seconds() - cpu0
        log = err_path.read_text(errors="replace")
        err_path.unlink()
        if proc.returncode != 0:
            raise ChildFailed(
                f"{spec['kind']} ({spec.get('impl', spec.get('backend', ''))}) failed "
                f"with exit code {proc.returncode}:\n{log[-3000:]}"
            )
        result: dict[str, Any] = json.loads(Path(out.name).read_text())
    result["ru_maxrss_mib"] = usage.ru_maxrss / 1024
    result["maxrss_mib"] = result["peak_rss_mib"]
    result["child_cpu"] = usage.ru_utime + usage.ru_stime
    result["server_cpu"] = server_cpu
    result["load"] = load
    return result


class Context:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.quick = args.quick
        self.big = (args.size_mib or (32 if args.quick else 256)) * MIB
        #: A source tree whose client runs as a third implementation, "base"
        #: (A/B of two versions of our client in the same run).
        self.baseline: Path | None = Path(args.baseline).resolve() if args.baseline else None
        self.huge = (128 if args.quick else 1024) * MIB
        self.rounds = 200 if args.quick else 1000
        self.repeat = args.repeat or (3 if args.quick else 5)
        self.repeat_huge = min(self.repeat, 3)
        self.ops_seconds = 2.0 if args.quick else 5.0
        self.payloads: dict[str, Path] = {}
        self.ours_error: str | None = None
        self.server: Any = None
        self.private_key = Path()
        self.results: dict[str, Any] = {}
        self.profile_dir = HERE / "results" / "profiles"
        self.load = os.getloadavg()
        self.code_start = _code_state()

    def impls(self) -> list[str]:
        """The implementations measured: the official client, ours when it
        imports, and the baseline tree's when one is given."""
        impls = [impl for impl in IMPLS if impl == "official" or self.ours_error is None]
        return [*impls, "base"] if self.baseline is not None else impls

    def base_spec(self, **extra: Any) -> dict[str, Any]:
        spec = {
            "url": self.server.url,
            "kid": KID,
            "private_key": str(self.private_key),
            "usecase": USECASE,
            "auth": True,
            "tmp": str(self.tmp),
        }
        spec.update(extra)
        return spec

    def payload(self, kind: str, size: int) -> Path:
        name = f"{kind}-{size // MIB}MiB"
        if name not in self.payloads:
            path = self.tmp / f"{name}.bin"
            res = run_child(
                {"kind": "payload", "payload": kind, "size": size, "file": str(path)}, self
            )
            line = f"payload {name}: generated in {res['wall']:.1f}s"
            if kind == "text":
                ratio = res["ratio"]
                self.results.setdefault("payload_ratios", {})[name] = ratio
                line += f", zstd level-3 ratio {ratio:.3f}"
            print(line, flush=True)
            self.payloads[name] = path
        return self.payloads[name]

    def profiled(self, spec: dict[str, Any], label: str) -> dict[str, Any]:
        if self.args.profile:
            self.profile_dir.mkdir(parents=True, exist_ok=True)
            spec = {
                **spec,
                "profile": self.args.profile,
                "profile_out": str(self.profile_dir / label),
            }
        return spec


# -- scenarios -----------------------------------------------------------------


def _pairs(
    ctx: Context, name: str, spec_for: Any, repeat: int, bound: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Alternate official and ours; one dict per repetition, keyed by implementation.
    With ``bound``, each repetition also measures the bound (what no client can beat)
    right after the pair, so the ceiling is taken under the same load."""
    impls = ctx.impls()
    pairs = []
    for rep in range(repeat):
        order = impls if rep % 2 == 0 else impls[::-1]
        pair = {}
        for impl in order:
            spec = ctx.profiled(spec_for(impl), f"{name}-{impl}")
            pair[impl] = run_child(spec, ctx)
        if bound is not None:
            pair["bound"] = run_child(bound, ctx)
        pairs.append(pair)
        line = "  ".join(
            f"{impl} {pair[impl]['wall']:.3f}s/{pair[impl]['maxrss_mib']:.0f}MiB" for impl in impls
        )
        print(f"  {name} rep {rep + 1}/{repeat}: {line}", flush=True)
    return pairs


def scenario_put(ctx: Context, name: str, kind: str) -> None:
    path = ctx.payload(kind, ctx.big)
    if kind == "text":
        bound = ctx.base_spec(kind="bound_compress", file=str(path))
    else:
        bound = ctx.base_spec(kind="bound_raw", op="put", file=str(path), key=f"{name}-raw")
    ctx.results[name] = _pairs(
        ctx,
        name,
        lambda impl: ctx.base_spec(kind="put", impl=impl, file=str(path), key=f"{name}-{impl}"),
        ctx.repeat,
        bound,
    )


def _store_with_official(ctx: Context, path: Path, key: str) -> None:
    run_child(ctx.base_spec(kind="put", impl="official", file=str(path), key=key), ctx)


def scenario_get(ctx: Context, name: str, kind: str) -> None:
    path = ctx.payload(kind, ctx.big)
    key = f"{name}-object"
    # Stored once by the official client, so both clients read identical bytes.
    _store_with_official(ctx, path, key)
    size = path.stat().st_size
    if kind == "text":
        bound = ctx.base_spec(kind="bound_decompress", file=str(path.with_suffix(".zst")))
    else:
        bound = ctx.base_spec(kind="bound_raw", op="get", key=key)
    ctx.results[name] = _pairs(
        ctx,
        name,
        lambda impl: ctx.base_spec(kind="get", impl=impl, key=key, size=size),
        2 * ctx.repeat,  # a fraction of a second each: more pairs to steady the median
        bound,
    )


def scenario_get_own(ctx: Context, name: str, kind: str) -> None:
    """Each client reads back the object it uploaded itself (ours may have stored
    it as a multipart object of several zstd frames, the official client as one)."""
    path = ctx.payload(kind, ctx.big)
    size = path.stat().st_size
    for impl in ctx.impls():
        run_child(ctx.base_spec(kind="put", impl=impl, file=str(path), key=f"{name}-{impl}"), ctx)
    ctx.results[name] = _pairs(
        ctx,
        name,
        lambda impl: ctx.base_spec(kind="get", impl=impl, key=f"{name}-{impl}", size=size),
        2 * ctx.repeat,  # short runs: more pairs, as for the other gets
    )


def scenario_small(ctx: Context, name: str) -> None:
    ctx.results[name] = _pairs(
        ctx,
        name,
        lambda impl: ctx.base_spec(kind="small", impl=impl, size=1024, rounds=ctx.rounds),
        ctx.repeat,
    )


def scenario_rss(ctx: Context, name: str) -> None:
    path = ctx.payload("text", ctx.huge)
    size = path.stat().st_size
    ctx.results["baseline"] = _pairs(
        ctx, "baseline", lambda impl: ctx.base_spec(kind="baseline", impl=impl), ctx.repeat_huge
    )
    ctx.results["rss_put_1g"] = _pairs(
        ctx,
        "rss_put_1g",
        lambda impl: ctx.base_spec(kind="put", impl=impl, file=str(path), key=f"huge-{impl}"),
        ctx.repeat_huge,
    )
    key = "huge-get-object"
    _store_with_official(ctx, path, key)
    ctx.results["rss_get_1g"] = _pairs(
        ctx,
        "rss_get_1g",
        lambda impl: ctx.base_spec(kind="get", impl=impl, key=key, size=size),
        ctx.repeat_huge,
    )


def scenario_django_small(ctx: Context, name: str) -> None:
    out: dict[str, list[dict[str, Any]]] = {}
    backends = ["memory", "filesystem", "objectstore", "objectstore_overwrite"]
    for rep in range(ctx.repeat):
        for backend in backends if rep % 2 == 0 else backends[::-1]:
            shutil.rmtree(ctx.tmp / "media", ignore_errors=True)
            # names new to every storage in every repetition (the server outlives
            # repetitions: reused names would make every save a collision)
            spec = ctx.base_spec(
                kind="django_small",
                backend=backend,
                size=1024,
                rounds=ctx.rounds,
                prefix=f"{backend}-r{rep}",
            )
            out.setdefault(backend, []).append(
                run_child(ctx.profiled(spec, f"{name}-{backend}"), ctx)
            )
        print(
            f"  {name} rep {rep + 1}/{ctx.repeat}: "
            + "  ".join(f"{b} {out[b][-1]['wall']:.3f}s" for b in backends),
            flush=True,
        )
    ctx.results[name] = out


def scenario_django_big(ctx: Context, name: str) -> None:
    path = ctx.payload("text", ctx.huge)
    out: dict[str, list[dict[str, Any]]] = {"baseline": [], "objectstore": []}
    for rep in range(ctx.repeat_huge):
        out["baseline"].append(
            run_child(ctx.base_spec(kind="django_baseline", backend="objectstore"), ctx)
        )
        spec = ctx.base_spec(kind="django_big", backend="objectstore", file=str(path))
        out["objectstore"].append(run_child(ctx.profiled(spec, name), ctx))
        print(
            f"  {name} rep {rep + 1}/{ctx.repeat_huge}: "
            f"{out['objectstore'][-1]['wall']:.3f}s, "
            f"peak RSS {out['objectstore'][-1]['maxrss_mib']:.0f} MiB "
            f"(baseline {out['baseline'][-1]['maxrss_mib']:.0f} MiB)",
            flush=True,
        )
    ctx.results[name] = out


def scenario_django_download(ctx: Context, name: str) -> None:
    """The download view serving a huge zstd object under uvicorn (ASGI) and
    wsgiref (WSGI): the server process's peak RSS above its own baseline
    (measured after a warm-up request), as ``tests/test_serving.py`` does."""
    sys.path.insert(0, str(ROOT))
    from tests.serving.harness import served

    path = ctx.payload("text", ctx.huge)
    key = "django-download"
    run_child(ctx.base_spec(kind="put", impl="ours", file=str(path), key=key), ctx)
    env = {
        "OBJECTSTORE_URL": ctx.server.url,
        "OBJECTSTORE_KID": KID,
        "OBJECTSTORE_SECRET_KEY_FILE": str(ctx.private_key),
        "OBJECTSTORE_USECASES": json.dumps({USECASE: {"COMPRESSION": "zstd"}}),
    }
    out: dict[str, list[dict[str, Any]]] = {"asgi": [], "wsgi": []}
    for rep in range(ctx.repeat_huge):
        for kind in ("asgi", "wsgi") if rep % 2 == 0 else ("wsgi", "asgi"):
            with served(kind, env) as server:  # type: ignore[arg-type]
                url = f"/files/{USECASE}/org=1/{key}"  # the worker writes in scope org=1
                status, _ = server.download(url, headers={"Range": "bytes=0-65535"})
                if status != 206:
                    raise ChildFailed(f"{kind} warm-up answered {status}")
                baseline = server.peak_rss_kib()
                t0 = time.perf_counter()
                status, _ = server.download(url)
                wall = time.perf_counter() - t0
                if status != 200:
                    raise ChildFailed(f"{kind} download answered {status}")
                peak = server.peak_rss_kib()
            out[kind].append(
                {"wall": wall, "baseline_mib": baseline / 1024, "peak_mib": peak / 1024}
            )
            print(
                f"  {name} rep {rep + 1}/{ctx.repeat_huge} {kind}: {wall:.2f}s, peak RSS "
                f"{peak / 1024:.0f} MiB (baseline {baseline / 1024:.0f} MiB)",
                flush=True,
            )
    ctx.results[name] = out


def _download_rows(ctx: Context) -> list[str]:
    """Rows of the memory table for the download view (no official peer)."""
    rows = []
    for kind, label in (("asgi", "ASGI, uvicorn"), ("wsgi", "WSGI, wsgiref")):
        runs = ctx.results.get("django_download", {}).get(kind, [])
        if not runs:
            continue
        peak = _med([r["peak_mib"] for r in runs])
        above = _med([r["peak_mib"] - r["baseline_mib"] for r in runs])
        met = "yes" if above <= RSS_TARGET_MIB else "**no**"
        rows.append(
            f"| Django download view, {ctx.huge // MIB} MiB zstd object ({label}; server "
            f"process, baseline after a warm-up request, {_fmt(_med([r['wall'] for r in runs]), 1)}"
            f" s) | - | - | {_fmt(peak, 0)} | {_fmt(above, 0)} | <= {RSS_TARGET_MIB} | {met} |"
        )
    return rows


def scenario_server_ops(ctx: Context, name: str) -> None:
    out: dict[str, list[dict[str, Any]]] = {}
    for clients in (1, 8):
        for rep in range(min(ctx.repeat, 3)):
            spec = ctx.base_spec(
                kind="server_ops", clients=clients, size=1024, keys=50, seconds=ctx.ops_seconds
            )
            res = run_child(spec, ctx, timeout=ctx.ops_seconds * 10 + 120)
            out.setdefault(str(clients), []).append(res)
            print(
                f"  {name} {clients} clients rep {rep + 1}: PUT {res['put_ops_s']:.0f}/s "
                f"GET {res['get_ops_s']:.0f}/s",
                flush=True,
            )
    ctx.results[name] = out


def scenario_bounds(ctx: Context, name: str) -> None:
    out: dict[str, Any] = {}
    text = ctx.payload("text", ctx.big)
    rnd = ctx.payload("random", ctx.big)
    out["zstd_text"] = [run_child(ctx.base_spec(kind="zstd", file=str(text)), ctx)]
    out["zstd_random"] = [run_child(ctx.base_spec(kind="zstd", file=str(rnd)), ctx)]
    out["raw_random"] = [
        run_child(ctx.base_spec(kind="raw", file=str(rnd), key="raw-random"), ctx)
        for _ in range(min(ctx.repeat, 3))
    ]
    out["raw_text"] = [
        run_child(ctx.base_spec(kind="raw", file=str(text), key="raw-text"), ctx)
        for _ in range(min(ctx.repeat, 3))
    ]
    ctx.results[name] = out
    z = out["zstd_text"][0]
    print(
        f"  zstd on text: compress {z['compress_t0_mib_s']:.0f} MiB/s (1 thread), "
        f"{z['compress_t2_mib_s']:.0f} MiB/s (2 threads), "
        f"decompress {z['decompress_mib_s']:.0f} MiB/s",
        flush=True,
    )


RUNNERS: dict[str, Any] = {
    "put_text": lambda ctx, n: scenario_put(ctx, n, "text"),
    "put_random": lambda ctx, n: scenario_put(ctx, n, "random"),
    "get_text": lambda ctx, n: scenario_get(ctx, n, "text"),
    "get_random": lambda ctx, n: scenario_get(ctx, n, "random"),
    "get_text_own": lambda ctx, n: scenario_get_own(ctx, n, "text"),
    "small_auth": scenario_small,
    "rss_1g": scenario_rss,
    "django_small": scenario_django_small,
    "django_big": scenario_django_big,
    "django_download": scenario_django_download,
    "server_ops": scenario_server_ops,
    "bounds": scenario_bounds,
}


def check_ours(ctx: Context) -> None:
    """Find out whether our client imports and talks to the server; verify the wire."""
    try:
        files = [ctx.payload("text", 4 * MIB), ctx.payload("random", 4 * MIB)]
        res = run_child(ctx.base_spec(kind="verify", files=[str(f) for f in files]), ctx)
        print(f"verified round trips: {', '.join(res['checked'])}", flush=True)
    except ChildFailed as exc:
        ctx.ours_error = str(exc).strip().splitlines()[-1]
        print(f"OUR CLIENT IS NOT USABLE, running the official client only:\n{exc}", flush=True)


# -- report --------------------------------------------------------------------


def _med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _fmt(value: float, digits: int = 2) -> str:
    return "n/a" if value != value else f"{value:.{digits}f}"


def _impl_values(pairs: list[dict[str, Any]], impl: str, field: str) -> list[float]:
    return [float(p[impl][field]) for p in pairs if impl in p]


def _ratio(pairs: list[dict[str, Any]]) -> tuple[float, float, float]:
    ratios = [p["official"]["wall"] / p["ours"]["wall"] for p in pairs if "ours" in p]
    if not ratios:
        return (float("nan"),) * 3
    return _med(ratios), min(ratios), max(ratios)


def _code_state() -> str:
    """The commit under test and whether the package had uncommitted changes (the
    install is editable: the working tree is what runs)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "django_objectstore"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    changed = [line[3:] for line in dirty if line.strip()]
    if not changed:
        return f"commit {head}, clean"
    return f"commit {head} plus uncommitted changes in {', '.join(changed[:6])}" + (
        ", ..." if len(changed) > 6 else ""
    )


def _client_version() -> str:
    from importlib.metadata import version

    return version("objectstore-client")


def _ab_rows(ctx: Context, client_rows: list[tuple[str, str]]) -> list[str]:
    """The A/B table of the baseline tree's client against ours, if measured."""
    if ctx.baseline is None:
        return []
    lines = [
        f"### A/B: baseline `{ctx.baseline}` against ours",
        "",
        "| Scenario | Baseline wall s | Ours wall s | Ours speed-up (median of pairs) [min-max]"
        " | Baseline CPU s | Ours CPU s | n |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, label in client_rows:
        pairs = [p for p in ctx.results.get(name) or [] if "base" in p and "ours" in p]
        if not pairs:
            continue
        ratios = [p["base"]["wall"] / p["ours"]["wall"] for p in pairs]
        lines.append(
            f"| {label} | {_fmt(_med(_impl_values(pairs, 'base', 'wall')), 3)} | "
            f"{_fmt(_med(_impl_values(pairs, 'ours', 'wall')), 3)} | "
            f"{_fmt(_med(ratios))}x [{_fmt(min(ratios))}-{_fmt(max(ratios))}] | "
            f"{_fmt(_med(_impl_values(pairs, 'base', 'cpu')))} | "
            f"{_fmt(_med(_impl_values(pairs, 'ours', 'cpu')))} | {len(pairs)} |"
        )
    return [*lines, ""]


def render(ctx: Context, started: datetime, elapsed: float) -> str:
    res = ctx.results
    command = " ".join(["python3 benchmarks/run.py", *sys.argv[1:]])
    lines = [
        "# Benchmark results",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC, {'quick' if ctx.quick else 'full'} run, "
        f"{elapsed / 60:.1f} min. Command: `{command}`.",
        f"Machine: {os.cpu_count()} CPUs ({_cpu_model()}), Python {platform.python_version()}, "
        f"official `objectstore-client` {_client_version()}, local server storage "
        f"`{ctx.args.storage}`, auth enforced (EdDSA key) for every request. "
        f"Load average (1 min) at start / end: {ctx.load[0]:.1f} / {os.getloadavg()[0]:.1f} "
        "(anything above ~0 means other processes competed for the 2 cores).",
        f"Code under test: {ctx.code_start} at the start, {_code_state()} at the end.",
        "Official client: resumable uploads disabled (`Usecase(..., "
        'resumable_threshold_bytes="none")`), so both clients use a plain streaming upload.',
        "",
    ]
    if ctx.ours_error:
        lines += [f"**Our client was not usable in this run:** `{ctx.ours_error}`", ""]
    ratios = res.get("payload_ratios", {})
    if ratios:
        lines += [
            "Text payload zstd level-3 ratio: "
            + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items())
            + ".",
            "",
        ]

    client_rows = [
        ("put_text", f"put {ctx.big // MIB} MiB text from a file"),
        ("put_random", f"put {ctx.big // MIB} MiB random from a file"),
        ("get_text", f"get {ctx.big // MIB} MiB text, read fully (stored by official)"),
        ("get_random", f"get {ctx.big // MIB} MiB random, read fully (stored by official)"),
        ("get_text_own", f"get {ctx.big // MIB} MiB text, read fully (each its own upload)"),
        ("small_auth", f"1 KiB put+get+delete x{ctx.rounds}, auth"),
        ("rss_put_1g", f"put {ctx.huge // MIB} MiB text from a file"),
        ("rss_get_1g", f"get {ctx.huge // MIB} MiB text, read fully"),
    ]
    if any(name in res for name, _ in client_rows):
        lines += [
            "## Client: ours vs the official client",
            "",
            *(
                [
                    "Quick run: payloads below the 64 MiB threshold of the large-upload "
                    "paths and fewer pairs; the targets apply to the full run only.",
                    "",
                ]
                if ctx.quick
                else []
            ),
            "| Scenario | Official wall s | Ours wall s | Speed-up (median of pairs) [min-max]"
            " | Target | Met | Official CPU s | Ours CPU s | Official peak RSS MiB"
            " | Ours peak RSS MiB | Server CPU s (official / ours) | Load | n |",
            "| --- " + "| ---: " * 4 + "| :---: " + "| ---: " * 7 + "|",
        ]
        for name, label in client_rows:
            pairs = res.get(name)
            if not pairs:
                continue
            med, lo, hi = _ratio(pairs)
            # The targets are for the full run's sizes: quick payloads are below
            # the client's 64 MiB large-upload threshold.
            target = None if ctx.quick else TARGETS.get(name)
            met = "" if target is None or med != med else ("yes" if med >= target else "**no**")
            cells = [
                label,
                _fmt(_med(_impl_values(pairs, "official", "wall")), 3),
                _fmt(_med(_impl_values(pairs, "ours", "wall")), 3),
                f"{_fmt(med)}x [{_fmt(lo)}-{_fmt(hi)}]",
                f">= {target}x" if target else "-",
                met,
                _fmt(_med(_impl_values(pairs, "official", "cpu"))),
                _fmt(_med(_impl_values(pairs, "ours", "cpu"))),
                _fmt(_med(_impl_values(pairs, "official", "maxrss_mib")), 0),
                _fmt(_med(_impl_values(pairs, "ours", "maxrss_mib")), 0),
                f"{_fmt(_med(_impl_values(pairs, 'official', 'server_cpu')))} / "
                f"{_fmt(_med(_impl_values(pairs, 'ours', 'server_cpu')))}",
                _fmt(
                    _med(
                        _impl_values(pairs, "official", "load")
                        + _impl_values(pairs, "ours", "load")
                    ),
                    1,
                ),
                str(len(pairs)),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        lines += _ab_rows(ctx, client_rows)

    if "baseline" in res:
        lines += [
            "## Peak memory of big transfers",
            "",
            "Baseline: an interpreter that imported the client and did nothing. Target: ours at "
            f"most {RSS_TARGET_MIB} MiB above its baseline.",
            "",
            "| Measurement | Official peak RSS MiB | Official above baseline | Ours peak RSS MiB"
            " | Ours above baseline | Target | Met |",
            "| --- | ---: | ---: | ---: | ---: | ---: | :---: |",
        ]
        base = {i: _med(_impl_values(res["baseline"], i, "maxrss_mib")) for i in IMPLS}
        lines.append(
            f"| baseline (import only) | {_fmt(base['official'], 0)} | - | "
            f"{_fmt(base['ours'], 0)} | - | - | |"
        )
        for name, label in (
            ("rss_put_1g", f"put {ctx.huge // MIB} MiB"),
            ("rss_get_1g", f"get {ctx.huge // MIB} MiB"),
        ):
            pairs = res.get(name, [])
            off = _med(_impl_values(pairs, "official", "maxrss_mib"))
            ours = _med(_impl_values(pairs, "ours", "maxrss_mib"))
            above = ours - base["ours"]
            met = "" if above != above else ("yes" if above <= RSS_TARGET_MIB else "**no**")
            lines.append(
                f"| {label} | {_fmt(off, 0)} | {_fmt(off - base['official'], 0)} | "
                f"{_fmt(ours, 0)} | {_fmt(above, 0)} | <= {RSS_TARGET_MIB} | {met} |"
            )
        lines += [*_download_rows(ctx), ""]
    elif "django_download" in res:
        lines += [
            "## Peak memory of big transfers",
            "",
            "| Measurement | Official peak RSS MiB | Official above baseline | Ours peak RSS MiB"
            " | Ours above baseline | Target | Met |",
            "| --- | ---: | ---: | ---: | ---: | ---: | :---: |",
            *_download_rows(ctx),
            "",
        ]

    if "django_small" in res:
        d = res["django_small"]
        n = ctx.rounds
        mem_wall = _med([r["wall"] for r in d.get("memory", [])])
        lines += [
            "## Django storage",
            "",
            f"Save then open and read {n} files of 1 KiB through each storage "
            "(ObjectstoreStorage talks HTTP to the local server, auth enforced). By "
            "default each save first asks whether the name exists (Django's no-overwrite "
            "rule: a HEAD, then the PUT; the read is a GET); with `allow_overwrite=True` "
            "it does not (PUT, GET).",
            "",
            "| Storage | Wall s | Per file ms | Added per file vs InMemoryStorage ms | CPU s"
            " | Peak RSS MiB | Server CPU s |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        names = {
            "memory": "InMemoryStorage",
            "filesystem": "FileSystemStorage",
            "objectstore": "ObjectstoreStorage",
            "objectstore_overwrite": "ObjectstoreStorage(allow_overwrite=True)",
        }
        for backend, label in names.items():
            runs = d.get(backend, [])
            wall = _med([r["wall"] for r in runs])
            lines.append(
                f"| {label} | {_fmt(wall, 3)} | {_fmt(wall / n * 1000, 3)} | "
                f"{_fmt((wall - mem_wall) / n * 1000, 3)} | "
                f"{_fmt(_med([r['cpu'] for r in runs]))} | "
                f"{_fmt(_med([r['maxrss_mib'] for r in runs]), 0)} | "
                f"{_fmt(_med([r['server_cpu'] for r in runs]))} |"
            )
        lines.append("")
    if "django_big" in res:
        d = res["django_big"]
        base = _med([r["maxrss_mib"] for r in d["baseline"]])
        peak = _med([r["maxrss_mib"] for r in d["objectstore"]])
        wall = _med([r["wall"] for r in d["objectstore"]])
        lines += [
            f"Saving a {ctx.huge // MIB} MiB `TemporaryUploadedFile` through ObjectstoreStorage: "
            f"{_fmt(wall, 2)} s, peak RSS {_fmt(peak, 0)} MiB, "
            f"{_fmt(peak - base, 0)} MiB above the baseline of {_fmt(base, 0)} MiB "
            "(Django configured and the storage imported).",
            "",
        ]

    if "server_ops" in res:
        lines += [
            "## Local server alone",
            "",
            f"Raw `http.client` keep-alive clients (separate processes), 1 KiB objects, "
            f"{ctx.ops_seconds:.0f} s per phase, auth header on every request.",
            "",
            "| Concurrent clients | PUT ops/s | GET ops/s | Server CPU s | n |",
            "| ---: | ---: | ---: | ---: | ---: |",
        ]
        for clients, runs in res["server_ops"].items():
            lines.append(
                f"| {clients} | {_fmt(_med([r['put_ops_s'] for r in runs]), 0)} | "
                f"{_fmt(_med([r['get_ops_s'] for r in runs]), 0)} | "
                f"{_fmt(_med([r['server_cpu'] for r in runs]))} | {len(runs)} |"
            )
        lines.append("")

    if "bounds" in res:
        b = res["bounds"]
        lines += [
            "## What bounds the numbers",
            "",
            "| Measurement | Result |",
            "| --- | --- |",
        ]
        for key, label in (("zstd_text", "text"), ("zstd_random", "random")):
            z = b[key][0]
            lines.append(
                f"| zstd level 3 on {ctx.big // MIB} MiB {label}, in memory | compress "
                f"{z['compress_t0_mib_s']:.0f} MiB/s (1 thread), {z['compress_t2_mib_s']:.0f} "
                f"MiB/s (2 threads); decompress {z['decompress_mib_s']:.0f} MiB/s; ratio "
                f"{z['ratio']:.3f} |"
            )
        for key, label in (("raw_random", "random"), ("raw_text", "text")):
            runs = b[key]
            size = ctx.big / MIB
            put = _med([r["put_wall"] for r in runs])
            get = _med([r["get_wall"] for r in runs])
            lines.append(
                f"| trivial client (http.client, no compression, Content-Length, 1 MiB writes), "
                f"{size:.0f} MiB {label} | PUT {put:.3f} s ({size / put:.0f} MiB/s), "
                f"GET {get:.3f} s ({size / get:.0f} MiB/s); server CPU "
                f"{_med([r['server_cpu'] for r in runs]):.2f} s |"
            )
        lines.append("")

    lines += _ceilings(ctx)
    lines += [
        "Columns: *wall s* is the median time of the operation alone (process start, imports "
        "and setup excluded); *CPU s* is the client process's user+system time over the same "
        "span (all threads); *peak RSS* is the child process's own peak resident set "
        "(`VmHWM`, whole process life, imports included); "
        "*speed-up* is the median over repetitions of official wall / ours wall within one "
        "pair (the two ran back to back, order alternating); *server CPU* is the server "
        "process's user+system time during the child's life; *load* is the median 1-minute "
        "load average when the runs started (other processes competing for the 2 cores).",
        "",
    ]
    return "\n".join(lines)


def _ceilings(ctx: Context) -> list[str]:
    """The best speed-up over the official client that the measured bounds allow."""
    res = ctx.results

    def official(name: str) -> float:
        return _med(_impl_values(res.get(name, []), "official", "wall"))

    def ours(name: str) -> float:
        return _med(_impl_values(res.get(name, []), "ours", "wall"))

    def interleaved(name: str) -> float:
        return _med([p["bound"]["wall"] for p in res.get(name, []) if "bound" in p])

    rows = [
        (
            "put_text",
            "zstd level 3 compression alone, best of 1 and 2 threads",
            interleaved("put_text"),
        ),
        ("put_random", "trivial client PUT, no compression", interleaved("put_random")),
        (
            "get_text",
            "zstd streamed decompression alone (one frame, one thread)",
            interleaved("get_text"),
        ),
        ("get_random", "trivial client GET of the stored bytes", interleaved("get_random")),
    ]
    ops = res.get("server_ops", {}).get("1")
    if ops and "small_auth" in res:
        put_ops = _med([r["put_ops_s"] for r in ops])
        get_ops = _med([r["get_ops_s"] for r in ops])
        # DELETE is not measured alone; it costs about what a GET does on this server.
        rows.append(
            (
                "small_auth",
                "trivial keep-alive client, 1 PUT + 2 GET-like requests per round (estimate)",
                ctx.rounds * (1 / put_ops + 2 / get_ops),
            )
        )
    lines = [
        "## Ceilings: the best any client could do here",
        "",
        "Ceiling = median over repetitions of official wall / the time of the bound alone. "
        "The bound is measured in "
        "every repetition right after the pair (so under the same load; small-ops bound from "
        "`server_ops`). A target above its ceiling cannot be met on this machine at this load.",
        "",
        "| Scenario | Bound | Bound s | Official wall s | Ours wall s | Ceiling | Ours |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, label, seconds in rows:
        if name not in res or seconds != seconds:
            continue
        off, our = official(name), ours(name)
        per_pair = [p["official"]["wall"] / p["bound"]["wall"] for p in res[name] if "bound" in p]
        ceiling = _med(per_pair) if per_pair else off / seconds
        lines.append(
            f"| {name} | {label} | {_fmt(seconds, 3)} | {_fmt(off, 3)} | {_fmt(our, 3)} | "
            f"{_fmt(ceiling)}x | {_fmt(_ratio(res[name])[0])}x |"
        )
    lines.append("")
    return lines


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


# -- main ----------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small payloads, 3 repetitions")
    parser.add_argument(
        "--scenarios",
        default=",".join(ALL_SCENARIOS),
        help=f"comma-separated subset of: {', '.join(ALL_SCENARIOS)}",
    )
    parser.add_argument("--repeat", type=int, default=0, help="repetitions (pairs) per scenario")
    parser.add_argument(
        "--size-mib",
        type=int,
        default=0,
        help="payload size of the put/get scenarios in MiB (default 256, 32 with --quick)",
    )
    parser.add_argument(
        "--baseline",
        help="a source tree (e.g. a worktree of the previous commit) whose client is measured "
        "too, as 'base', in the same run: an A/B of two versions of our client (use --no-venv "
        "and PYTHONPATH=. so 'ours' is this tree)",
    )
    parser.add_argument("--storage", choices=["filesystem", "memory"], default="filesystem")
    parser.add_argument(
        "--profile",
        choices=["cprofile", "pyinstrument"],
        help="profile the timed part of each client run into benchmarks/results/profiles/",
    )
    parser.add_argument(
        "--profile-server",
        action="store_true",
        help="sample the server with py-spy during each scenario (results/profiles/server-*)",
    )
    parser.add_argument(
        "--server-cmd",
        help="command that starts the server (default: this interpreter -m "
        "django_objectstore.server run); OS__* variables are set for it",
    )
    parser.add_argument("--tmp-dir", help="parent directory for payloads and server data")
    parser.add_argument("--no-save", action="store_true", help="print the table only")
    parser.add_argument("--refresh-venv", action="store_true", help="reinstall .venv-bench")
    parser.add_argument(
        "--no-venv", action="store_true", help="run with the current interpreter as is"
    )
    args = parser.parse_args(argv)
    unknown = set(args.scenarios.split(",")) - set(ALL_SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {ALL_SCENARIOS}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Clean up (server process, temp dir) on SIGTERM too, not only on Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not args.no_venv:
        ensure_venv(args.refresh_venv)
    sys.path.insert(0, str(HERE))
    from _server import ServerProcess, make_keypair

    started = datetime.now(tz=UTC)
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="os-bench-", dir=args.tmp_dir))
    ctx = Context(args, tmp)
    try:
        ctx.private_key, public_key = make_keypair(tmp)
        server = ServerProcess(
            data_dir=tmp / "server-data",
            storage=args.storage,
            kid=KID,
            public_key=public_key,
            log_path=tmp / "server.log",
            command=shlex.split(args.server_cmd) if args.server_cmd else None,
        )
        ctx.server = server
        with server.running():
            print(f"server {server.url} (pid {server.proc.pid}), work dir {tmp}", flush=True)
            check_ours(ctx)
            for name in args.scenarios.split(","):
                print(f"== {name}", flush=True)
                recorder: Any = contextlib.nullcontext()
                if args.profile_server:
                    from _profiles import record_pid

                    recorder = record_pid(server.proc.pid, ctx.profile_dir / f"server-{name}.txt")
                try:
                    with recorder:
                        RUNNERS[name](ctx, name)
                except ChildFailed as exc:
                    print(f"scenario {name} FAILED: {exc}", flush=True)
                    ctx.results.setdefault("failures", {})[name] = str(exc)[-2000:]
            ctx.results["server_peak_rss_mib"] = server.rss_mib()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report = render(ctx, started, time.perf_counter() - t0)
    failures = ctx.results.get("failures", {})
    if failures:
        report += "\n## Failures\n\n" + "\n".join(
            f"* `{name}`: `{msg.strip().splitlines()[-1]}`" for name, msg in failures.items()
        )
        report += "\n"
    print("\n" + report)
    if not args.no_save:
        out_dir = HERE / "results"
        out_dir.mkdir(exist_ok=True)
        stem = started.strftime("%Y%m%dT%H%M%SZ") + ("-quick" if args.quick else "")
        (out_dir / f"{stem}.md").write_text(report)
        (out_dir / f"{stem}.json").write_text(json.dumps(ctx.results, indent=1, default=str))
        print(f"saved {out_dir / stem}.md and .json")
        if not args.quick and args.scenarios == ",".join(ALL_SCENARIOS):
            (HERE / "RESULTS.md").write_text(report)
            print(f"latest full run copied to {HERE / 'RESULTS.md'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
