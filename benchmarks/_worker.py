"""One measurement in a fresh process: ``python _worker.py '<json spec>' <result file>``.

The parent (``run.py``) starts one of these per measurement, reads the JSON this
writes to ``<result file>`` and takes peak RSS and total CPU from the child's
rusage (``os.wait4``). Here we time only the operation itself: ``wall`` is
``time.perf_counter`` around it, ``cpu`` is user+system time of this process
(all threads, so zstd worker threads count) over the same span.

The scenario code is the same for both clients: only the imported module
differs (``objectstore_client`` or ``django_objectstore.client``), so both are
driven through the identical public API.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

MODULES = {"official": "objectstore_client", "ours": "django_objectstore.client"}
# "base": our client from another source tree (run.py --baseline sets PYTHONPATH).
IMPL_MODULES = {**MODULES, "base": "django_objectstore.client"}
READ_BLOCK = 1 << 20


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class Timer:
    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    @contextlib.contextmanager
    def measure(self, spec: dict[str, Any]) -> Iterator[None]:
        profiler = _start_profiler(spec)
        cpu0, t0 = _cpu(), time.perf_counter()
        try:
            yield
        finally:
            self.wall += time.perf_counter() - t0
            self.cpu += _cpu() - cpu0
            _stop_profiler(spec, profiler)


def _start_profiler(spec: dict[str, Any]) -> Any:
    kind = spec.get("profile")
    if kind == "cprofile":
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
        return prof
    if kind == "pyinstrument":
        import pyinstrument

        prof = pyinstrument.Profiler(interval=0.0005)
        prof.start()
        return prof
    return None


def _stop_profiler(spec: dict[str, Any], prof: Any) -> None:
    if prof is None:
        return
    out = Path(spec["profile_out"])
    if spec["profile"] == "cprofile":
        import pstats

        prof.disable()
        prof.dump_stats(str(out.with_suffix(".prof")))
        with out.with_suffix(".txt").open("w") as fh:
            stats = pstats.Stats(prof, stream=fh)
            stats.sort_stats("cumulative").print_stats(40)
            stats.sort_stats("tottime").print_stats(30)
    else:
        prof.stop()
        out.with_suffix(".txt").write_text(prof.output_text(unicode=False, show_all=False))
        out.with_suffix(".html").write_text(prof.output_html())


# -- client side ---------------------------------------------------------------


def _module(impl: str) -> Any:
    return importlib.import_module(IMPL_MODULES[impl])


def _session(spec: dict[str, Any], mod: Any) -> Any:
    token = None
    if spec.get("auth"):
        token = mod.SecretKey(spec["kid"], Path(spec["private_key"]).read_text(), expiry_seconds=60)
    client = mod.Client(spec["url"], token=token)
    kwargs: dict[str, Any] = {"compression": spec.get("compression", "zstd")}
    # 0.2.10 spools inputs >= 256 MiB to disk for its resumable-upload protocol, which
    # the local server answers with 501 (fallback to a plain upload). Turn it off so the
    # comparison measures the plain upload path; pass it to ours only if it knows it.
    if "resumable_threshold_bytes" in inspect.signature(mod.Usecase).parameters:
        kwargs["resumable_threshold_bytes"] = "none"
    usecase = mod.Usecase(spec["usecase"], **kwargs)
    return client.session(usecase, org=1)


def _read_all(stream: Any) -> int:
    n = 0
    while chunk := stream.read(READ_BLOCK):
        n += len(chunk)
    return n


def sc_put(spec: dict[str, Any], timer: Timer) -> dict[str, Any]:
    session = _session(spec, _module(spec["impl"]))
    with open(spec["file"], "rb") as src, timer.measure(spec):
        key = session.put(src, key=spec["key"])
    if key != spec["key"]:
        raise AssertionError(f"put returned key {key!r}, expected {spec['key']!r}")
    return {"bytes": os.path.getsize(spec["file"])}


def sc_get(spec: dict[str, Any], timer: Timer) -> dict[str, Any]:
    session = _session(spec, _module(spec["impl"]))
    with timer.measure(spec):
        response = session.get(spec["key"])
        n = _read_all(response.payload)
    response.payload.close()
    if n != spec["size"]:
        raise AssertionError(f"get read {n} bytes, expected {spec['size']}")
    return {"bytes": n}


def sc_small(spec: dict[str, Any], timer: Timer) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).parent))
    from _payloads import small_payload

    session = _session(spec, _module(spec["impl"]))
    data = small_payload(spec["size"])
    rounds = spec["rounds"]
    prefix = f"small-{spec['impl']}-"
    with timer.measure(spec):
        for i in range(rounds):
            key = session.put(data, key=f"{prefix}{i}")
            got = session.get(key).payload.read()
            if got != data:
                raise AssertionError(f"round {i}: got {len(got)} bytes back, not the payload")
            session.delete(key)
    return {"ops": rounds * 3}


def sc_baseline(spec: dict[str, Any], timer: Timer) -> dict[str, Any]:
    _module(spec["impl"])
    return {}


def sc_verify(spec: dict[str, Any], timer: Timer) -> dict[str, Any]:
    """Cross-check wire compatibility: each client reads what the other wrote."""
    import hashlib

    sessions = {impl: _session(spec, _module(impl)) for impl in MODULES}
    checked = []
    for path in spec["files"]:
        want = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        for writer, reader in (("official", "ours"), ("ours", "official"), ("ours", "ours")):
            key = f"verify-{writer}-{Path(path).stem}"
            with open(path, "rb") as src:
                sessions[writer].put(src, key=key)
            response = sessions[reader].get(key)
            digest = hashlib.sha256()
            while chunk := response.payload.read(READ_BLOCK):
                digest.update(chunk)
            if digest.hexdigest() != want:
                raise AssertionError(f"{reader} read back wrong bytes written by {writer}: {path}")
            sessions[writer].delete(key)
            checked.append(f"{writer}->{reader}:{Path(path).name}")
    return {"checked": checked}


# -- Django ----------------------------------------------------------------------


def _django(spec: dict[str, Any]) -> Any:
    import django
    from django.conf import settings

    tmp = spec["tmp"]
    settings.configure(
        DEBUG=False,
        USE_TZ=True,
        INSTALLED_APPS=["django_objectstore"] if spec["backend"].startswith("objectstore") else [],
        MEDIA_ROOT=os.path.join(tmp, "media"),
        FILE_UPLOAD_TEMP_DIR=tmp,
        OBJECTSTORE={
            "URL": spec["url"],
            "TOKEN": {
                "KID": spec["kid"],
                "SECRET_KEY_FILE": spec["private_key"],
                "EXPIRY_SECONDS": 60,
            },
            "USECASES": {spec["usecase"]: {"COMPRESSION": "zstd"}},
        },
    )
    django.setup()
    if spec["backend"] == "objectstore":
        from django_objectstore.storage import ObjectstoreStorage

        return ObjectstoreStorage(usecase=spec["usecase"])
    if spec["backend"] == "objectstore_overwrite":
        from django_objectstore.storage import ObjectstoreStorage

        # no existence check before each save (as django-storages' default)
        return ObjectstoreStorage(usecase=spec["usecase"], allow_overwrite=True)
    if spec["backend"] == "memory":
        from django.core.files.storage import InMemoryStorage

        return InMemoryStorage()
    from django.core.files.storage import FileSystemStorage

    return FileSystemStorage(location=os.path.join(tmp, "media"))


def sc_django_small(spec: dict[str, Any], timer: Timer) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).parent))
    from _payloads import small_payload
    from django.core.files.base import ContentFile

    storage = _django(spec)
    data = small_payload(spec["size"])
    with timer.measure(spec):
        for i in range(spec["rounds"]):
            name = storage.save(f"bench/{spec['prefix']}/file-{i}.txt", ContentFile(data))
            with storage.open(name, "rb") as fh:
                got = fh.read()
            if got != data:
                raise AssertionError(f"file {i}: read back {len(got)} bytes, not the payload")
    return {"files": spec["rounds"]}


def sc_django_baseline(spec: dict[str, Any], timer: Timer) -> dict[str, Any]:
    _django(spec)
    return {}


def sc_django_big(spec: dict[str, Any], timer: Timer) -> dict[str, Any]:
    from django.core.files.uploadedfile import TemporaryUploadedFile

    storage = _django(spec)
    size = os.path.getsize(spec["file"])
    upload = TemporaryUploadedFile("big.bin", "application/octet-stream", size, None)
    with open(spec["file"], "rb") as src:
        while block := src.read(READ_BLOCK):
            upload.write(block)
    upload.seek(0)
    with timer.measure(spec):
        name = storage.save("big.bin", upload)
    upload.close()
    got = storage.size(name)
    return {"name": name, "stored_size": got, "bytes": size}


# -- bounds: what limits the numbers ----------------------------------------------


def sc_zstd(spec: dict[str, Any], timer: Timer) -> dict[str, Any]:
    """zstd's own throughput on this machine (level 3, the clients' setting), streamed
    in 1 MiB blocks from memory as the clients do, no I/O: the ceiling for any
    client that compresses or decompresses on one core (``t0``) or two (``t2``,
    zstd's own worker threads)."""
    import io

    import zstandard

    data = Path(spec["file"]).read_bytes()
    view = memoryview(data)
    mib = len(data) / (1 << 20)
    out: dict[str, Any] = {"mib": mib}
    frame = b""
    for threads in (0, 2):
        cobj = zstandard.ZstdCompressor(level=3, threads=threads).compressobj()
        parts = []
        t0 = time.perf_counter()
        for start in range(0, len(data), READ_BLOCK):
            parts.append(cobj.compress(view[start : start + READ_BLOCK]))
        parts.append(cobj.flush())
        out[f"compress_t{threads}_mib_s"] = mib / (time.perf_counter() - t0)
        if threads == 0:
            frame = b"".join(parts)
    out["ratio"] = len(frame) / len(data)
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(frame), read_size=READ_BLOCK)
    t0 = time.perf_counter()
    n = _read_all(reader)
    out["decompress_mib_s"] = mib / (time.perf_counter() - t0)
    if n != len(data):
        raise AssertionError("zstd round trip lost bytes")
    return out


def sc_bound_compress(spec: dict[str, Any], timer: Timer) -> dict[str, Any]:
    """zstd level 3 alone over the file's bytes (in memory, 1 MiB blocks), with one
    and with two threads; ``wall`` is the faster of the two."""
    import zstandard

    data = Path(spec["file"]).read_bytes()
    view = memoryview(data)
    times = {}
    for threads in (0, 2):
        cobj = zstandard.ZstdCompressor(level=3, threads=threads).compressobj()
        t0 = time.perf_counter()
        for start in range(0, len(data), READ_BLOCK):
            cobj.compress(view[start : start + READ_BLOCK])
        cobj.flush()
        times[threads] = time.perf_counter() - t0
    timer.wall = min(times.values())
    return {"t0": times[0], "t2": times[2]}


def sc_bound_decompress(spec: dict[str, Any], timer: Timer) -> dict[str, Any]:
    """Streamed zstd decompression alone of a stored frame, 1 MiB reads, one thread."""
    import io

    import zstandard

    frame = Path(spec["file"]).read_bytes()
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(frame), read_size=READ_BLOCK)
    with timer.measure({}):
        n = _read_all(reader)
    return {"bytes": n}


def sc_bound_raw(spec: dict[str, Any], timer: Timer) -> dict[str, Any]:
    """A trivial client: PUT the file as is (Content-Length, 1 MiB writes) or GET the
    stored bytes of a key (no decompression), 1 MiB reads."""
    headers = _auth_header(spec)
    path = f"/v1/objects/{spec['usecase']}/org=1/{spec['key']}"
    conn = _conn(spec)
    if spec["op"] == "put":
        size = os.path.getsize(spec["file"])
        with open(spec["file"], "rb") as src, timer.measure({}):
            conn.request("PUT", path, body=src, headers={**headers, "Content-Length": str(size)})
            resp = conn.getresponse()
            resp.read()
        n = size
    else:
        with timer.measure({}):
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            n = _read_all(resp)
    conn.close()
    if resp.status >= 300:
        raise AssertionError(f"raw {spec['op']} answered {resp.status}")
    return {"bytes": n}


def _auth_header(spec: dict[str, Any]) -> dict[str, str]:
    import datetime

    import jwt

    claims = {
        "res": {"os:usecase": spec["usecase"], "org": "1"},
        "permissions": ["object.read", "object.write", "object.delete"],
        "exp": datetime.datetime.now(tz=datetime.UTC) + datetime.timedelta(hours=1),
    }
    token = jwt.encode(
        claims,
        Path(spec["private_key"]).read_text(),
        algorithm="EdDSA",
        headers={"kid": spec["kid"]},
    )
    return {"x-os-auth": f"Bearer {token}"}


def _conn(spec: dict[str, Any]) -> Any:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(spec["url"])
    return http.client.HTTPConnection(parts.hostname, parts.port, blocksize=READ_BLOCK)


def sc_raw(spec: dict[str, Any], timer: Timer) -> dict[str, Any]:
    """A trivial client: one PUT of the file as-is (Content-Length, no compression,
    1 MiB writes), then one GET read in 1 MiB blocks. The server's own ceiling."""
    headers = _auth_header(spec)
    path = f"/v1/objects/{spec['usecase']}/org=1/{spec['key']}"
    size = os.path.getsize(spec["file"])
    conn = _conn(spec)
    out: dict[str, Any] = {}
    put = Timer()
    with open(spec["file"], "rb") as src, put.measure({}):
        conn.request("PUT", path, body=src, headers={**headers, "Content-Length": str(size)})
        resp = conn.getresponse()
        resp.read()
    if resp.status >= 300:
        raise AssertionError(f"raw PUT answered {resp.status}")
    get = Timer()
    with get.measure({}):
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        n = _read_all(resp)
    if n != size:
        raise AssertionError(f"raw GET read {n} bytes, expected {size}")
    conn.request("DELETE", path, headers=headers)
    conn.getresponse().read()
    conn.close()
    timer.wall, timer.cpu = put.wall + get.wall, put.cpu + get.cpu
    out.update(put_wall=put.wall, get_wall=get.wall, put_cpu=put.cpu, get_cpu=get.cpu)
    return out


def _ops_client(spec: dict[str, Any], idx: int, barrier: Any, results: Any) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from _payloads import small_payload

    headers = _auth_header(spec)
    data = small_payload(spec["size"])
    put_headers = {**headers, "Content-Length": str(len(data))}
    conn = _conn(spec)
    base = f"/v1/objects/{spec['usecase']}/org=1/ops-{idx}-"
    keys = spec["keys"]
    counts = {}
    for phase in ("PUT", "GET"):
        barrier.wait()
        deadline = time.perf_counter() + spec["seconds"]
        n = 0
        while time.perf_counter() < deadline:
            if phase == "PUT":
                conn.request("PUT", f"{base}{n % keys}", body=data, headers=put_headers)
            else:
                conn.request("GET", f"{base}{n % keys}", headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status >= 300 or (phase == "GET" and body != data):
                raise AssertionError(f"{phase} answered {resp.status}")
            n += 1
        counts[phase] = n
    conn.close()
    results.put((idx, counts))


def sc_server_ops(spec: dict[str, Any], timer: Timer) -> dict[str, Any]:
    """Raw keep-alive http.client clients in separate processes hammering the server."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    clients = spec["clients"]
    barrier = ctx.Barrier(clients)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_ops_client, args=(spec, i, barrier, results)) for i in range(clients)
    ]
    for proc in procs:
        proc.start()
    totals = {"PUT": 0, "GET": 0}
    for _ in procs:
        _, counts = results.get(timeout=spec["seconds"] * 4 + 60)
        for phase, n in counts.items():
            totals[phase] += n
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise AssertionError(f"an ops client exited with {proc.exitcode}")
    return {
        "put_ops_s": totals["PUT"] / spec["seconds"],
        "get_ops_s": totals["GET"] / spec["seconds"],
    }


SCENARIOS: dict[str, Callable[[dict[str, Any], Timer], dict[str, Any]]] = {
    "put": sc_put,
    "get": sc_get,
    "small": sc_small,
    "baseline": sc_baseline,
    "verify": sc_verify,
    "django_small": sc_django_small,
    "django_baseline": sc_django_baseline,
    "django_big": sc_django_big,
    "zstd": sc_zstd,
    "bound_compress": sc_bound_compress,
    "bound_decompress": sc_bound_decompress,
    "bound_raw": sc_bound_raw,
    "raw": sc_raw,
    "server_ops": sc_server_ops,
}


def sc_payload(spec: dict[str, Any], timer: Timer) -> dict[str, Any]:
    """Generate a payload file here, so the parent stays small (see ``peak_rss_mib``),
    and its zstd level-3 frame beside it (``.zst``) for the decompression bound."""
    import zstandard

    sys.path.insert(0, str(Path(__file__).parent))
    from _payloads import write_payload

    path = Path(spec["file"])
    with timer.measure({}):
        write_payload(path, spec["payload"], spec["size"])
    cctx = zstandard.ZstdCompressor(level=3)
    with path.open("rb") as src, path.with_suffix(".zst").open("wb") as dst:
        cctx.copy_stream(src, dst, read_size=READ_BLOCK, write_size=READ_BLOCK)
    ratio = path.with_suffix(".zst").stat().st_size / max(path.stat().st_size, 1)
    return {"ratio": ratio}


SCENARIOS["payload"] = sc_payload


def peak_rss_mib() -> float:
    """This process's own peak RSS (VmHWM). Linux resets it at exec, unlike the
    ``ru_maxrss`` the parent gets from ``wait4``, which also counts the parent's
    peak from before the exec when the child was forked or vforked."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    spec = json.loads(sys.argv[1])
    timer = Timer()
    extra = SCENARIOS[spec["kind"]](spec, timer)
    result = {"wall": timer.wall, "cpu": timer.cpu, "peak_rss_mib": peak_rss_mib(), **extra}
    Path(sys.argv[2]).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
