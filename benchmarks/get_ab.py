"""Large gets in fresh processes: the official client and source trees of ours, alternating.

``python benchmarks/get_ab.py --tree base=/tmp/old-tree --tree new=. --rounds 12``

The local server runs in its own process (no auth, filesystem storage). One
object is stored by the official client (one zstd frame, as it streams its
uploads) and one by ours (a frame per 2 MiB), both of the benchmark's text
payload. Each measurement is a fresh process doing one get read in 1 MiB
reads, as ``run.py`` does, so first-use costs (threads, buffers, page faults)
count as they do for a process that serves one download. Per client it prints
the median wall time with its range, CPU time, minor page faults over the get,
the time until ``get()`` returned, and the median of official / this per
round. ``--with-bound`` adds zstd's streamed decompression of the stored bytes
alone (read into memory before the clock starts): no client decodes one frame
faster.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _payloads import write_payload
from _server import ServerProcess, make_keypair
from _worker import READ_BLOCK, _read_all


def _child(spec: dict[str, Any]) -> None:
    """One measured get, printed as JSON."""
    impl = spec["impl"]
    if impl == "official":
        import objectstore_client as module
    else:
        sys.path.insert(0, spec["tree"])
        import django_objectstore.client as module  # type: ignore[no-redef]
    session = module.Client(spec["url"]).session(module.Usecase("bench"), org=1)
    data = b""
    if impl == "bound":
        import zstandard

        data = session.get(spec["key"], decompress=False).payload.read()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    cpu, start = time.process_time(), time.perf_counter()
    if impl == "bound":
        payload = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_size=READ_BLOCK)
    else:
        payload = session.get(spec["key"]).payload
    returned = time.perf_counter()
    size = _read_all(payload)
    end = time.perf_counter()
    result = {
        "wall": end - start,
        "cpu": time.process_time() - cpu,
        "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults,
        "get": returned - start,
    }
    payload.close()
    if size != spec["size"]:
        raise AssertionError(f"read {size} bytes, expected {spec['size']}")
    print(json.dumps(result))


def _store(url: str, tree: str, path: Path) -> None:
    """The payload stored as ``official`` by the official client, as ``ours``
    by ours (from ``tree``)."""
    import objectstore_client as official

    session = official.Client(url).session(
        official.Usecase("bench", resumable_threshold_bytes="none"), org=1
    )
    with path.open("rb") as src:
        session.put(src, key="official")
    sys.path.insert(0, tree)
    import django_objectstore.client as ours

    with path.open("rb") as src:
        ours.Client(url).session(ours.Usecase("bench"), org=1).put(src, key="ours")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tree",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a source tree of this project whose client is measured (repeatable)",
    )
    parser.add_argument("--key", choices=["official", "ours"], default="official")
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--with-bound", action="store_true")
    args = parser.parse_args()
    trees = dict(item.split("=", 1) for item in args.tree) or {"ours": "."}
    trees = {name: str(Path(path).resolve()) for name, path in trees.items()}
    size = args.size_mib << 20
    with tempfile.TemporaryDirectory(prefix="get-ab-") as tmp:
        work = Path(tmp)
        payload = work / "text.bin"
        write_payload(payload, "text", size)
        _private, public = make_keypair(work)
        server = ServerProcess(
            data_dir=work / "data",
            storage="filesystem",
            kid="bench",
            public_key=public,
            log_path=work / "server.log",
        )
        server.env["OS__AUTH__ENFORCE"] = "false"
        server.start()
        try:
            _store(server.url, next(iter(trees.values())), payload)
            runs: list[tuple[str, str, str]] = [("official", "official", "")]
            runs += [(name, "ours", tree) for name, tree in trees.items()]
            if args.with_bound:
                runs.append(("zstd alone", "bound", ""))
            results: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in runs}
            for round_ in range(args.rounds):
                for name, impl, tree in runs if round_ % 2 == 0 else runs[::-1]:
                    spec = {"impl": impl, "tree": tree, "url": server.url}
                    spec.update(key=args.key, size=size)
                    out = subprocess.run(
                        [sys.executable, __file__, "--child", json.dumps(spec)],
                        check=True,
                        capture_output=True,
                        text=True,
                        timeout=120,
                    )
                    results[name].append(json.loads(out.stdout))
        finally:
            server.stop()
    print(
        f"get of {args.size_mib} MiB of text stored by {args.key}, {args.rounds} rounds, "
        "fresh process per get"
    )
    print("| Client | Wall s [min-max] | CPU s | Minor faults | get() ms | official / this |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    reference = [r["wall"] for r in results["official"]]
    for name, rows in results.items():
        walls = [r["wall"] for r in rows]
        ratio = statistics.median(o / w for o, w in zip(reference, walls, strict=True))
        print(
            f"| {name} | {statistics.median(walls):.4f} [{min(walls):.4f}-{max(walls):.4f}] "
            f"| {statistics.median(r['cpu'] for r in rows):.4f} "
            f"| {statistics.median(r['faults'] for r in rows):.0f} "
            f"| {1000 * statistics.median(r['get'] for r in rows):.2f} | {ratio:.2f}x |"
        )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        _child(json.loads(sys.argv[2]))
    else:
        main()
