"""The project served the ways sites deploy it, by servers we did not write:
gunicorn with ``--preload`` (the master's shared client made a request
before forking its workers: the classic fork hazard), uvicorn's
multiprocess mode (``--workers 2``) and Django's ``manage.py runserver``
(threaded, no autoreload), against a real local Objectstore.

Threads in this process upload distinct random bodies through a site view
(``default_storage.save``) and download distinct objects through the
package's download view at the same time; every body must be exactly its
own object's bytes (sha256), every request answered within its timeout."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from django.core.files.base import ContentFile
from django.test import override_settings

from django_objectstore.server import LocalServer
from django_objectstore.storage import ObjectstoreStorage
from tests.serving.harness import ROOT, Kind, Served, served

USECASES = {
    "plain": {"COMPRESSION": "none", "EXPIRATION": "manual"},
    "attachments": {"COMPRESSION": "zstd", "EXPIRATION": "manual"},
}
THREADS = 6  # concurrent requests from this process: more than any server's workers
UPLOADS = 30  # posted through the site's upload view (default_storage.save)
DOWNLOADS = 300  # through the package's download view, spread over every object
PRESTORED = 12  # zstd-compressed objects saved from this process beforehand

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def objectstore_url() -> Iterator[str]:
    with LocalServer(sweep_interval=None) as server:
        yield server.url


def body(rng: random.Random, *, compressible: bool) -> bytes:
    """Random bytes of a random size (1 KiB to 256 KiB): no two bodies alike."""
    size = rng.randrange(1024, 256 * 1024)
    if compressible:  # hex text: zstd halves it, so downloads decompress
        return rng.randbytes(size // 2 + 1).hex().encode()[:size]
    return rng.randbytes(size)


@pytest.fixture(scope="module")
def prestored(objectstore_url: str) -> dict[str, bytes]:
    """URL path -> bytes of objects in the zstd usecase, saved before any server starts."""
    rng = random.Random(os.urandom(8))
    with override_settings(OBJECTSTORE={"URL": objectstore_url, "USECASES": USECASES}):
        storage = ObjectstoreStorage("attachments")
        objects = {}
        for index in range(PRESTORED):
            data = body(rng, compressible=True)
            name = storage.save(f"deploy/{index}.txt", ContentFile(data))
            objects[f"/files/attachments/{name}"] = data
    return objects


@dataclass
class Tally:
    checked: int = 0
    crossed: list[str] = field(default_factory=list)  # another object's bytes
    errors: list[str] = field(default_factory=list)  # wrong status, short body, timeout...
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: digest -> what it is the body of, for every body sent or stored
    known: dict[bytes, str] = field(default_factory=dict)
    servers: set[str] = field(default_factory=set)  # pids of the processes that answered

    def note(self, kind: str, message: str) -> None:
        with self.lock:
            (self.crossed if kind == "crossed" else self.errors).append(message[:300])


def upload_all(server: Served, tally: Tally, count: int) -> dict[str, bytes]:
    """POST ``count`` distinct bodies from ``THREADS`` threads; path -> bytes."""
    rng = random.Random(os.urandom(8))
    bodies = [body(rng, compressible=False) for _ in range(count)]
    for index, data in enumerate(bodies):
        tally.known[hashlib.sha256(data).digest()] = f"posted body {index} of {server.url}"
    uploaded: dict[str, bytes] = {}

    def post(data: bytes) -> None:
        # A name of its own: two concurrent saves of one new name may race
        # (no-overwrite is check-then-write; see the README), not the subject here.
        try:
            status, answer, headers = server.fetch(f"/upload/?name={uuid.uuid4().hex}.bin", data)
        except OSError as exc:
            tally.note("error", f"upload: {type(exc).__name__}: {exc}")
            return
        if status != 200:
            tally.note("error", f"upload: {status} {answer[:200]!r}")
            return
        path = f"/files/plain/{answer.decode()}"
        with tally.lock:
            tally.servers.add(headers["X-Served-By"])
            if path in uploaded:
                tally.crossed.append(f"upload: {path} answered twice")
            uploaded[path] = data

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(post, bodies))
    return uploaded


def download_all(server: Served, objects: dict[str, bytes], tally: Tally, count: int) -> None:
    """``count`` GETs, every object in turn, from ``THREADS`` threads;
    each body checked against its own object's digest."""
    digests = {path: hashlib.sha256(data).digest() for path, data in objects.items()}
    owner = {**tally.known, **{digest: path for path, digest in digests.items()}}
    paths = list(objects)
    order = [paths[(i * 7) % len(paths)] for i in range(count)]

    def get(path: str) -> None:
        try:
            status, data, _ = server.fetch(path)
        except OSError as exc:
            tally.note("error", f"{path}: {type(exc).__name__}: {exc}")
            return
        digest = hashlib.sha256(data).digest()
        with tally.lock:
            tally.checked += 1
        if status != 200:
            tally.note("error", f"{path}: {status} {data[:200]!r}")
        elif digest in owner and owner[digest] != path:
            tally.note("crossed", f"{path}: got the bytes of {owner[digest]}")
        elif digest != digests[path]:
            tally.note("error", f"{path}: {len(data)} bytes, not its own {len(objects[path])}")

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(get, order))


@pytest.mark.parametrize(
    ("kind", "workers", "rounds"),
    [("gunicorn", 3, 3), ("asgi", 2, 1), ("runserver", 1, 1)],
    ids=["gunicorn-preload-3", "uvicorn-workers-2", "runserver-threaded"],
)
def test_concurrent_uploads_and_downloads_never_cross(
    kind: Kind, workers: int, rounds: int, objectstore_url: str, prestored: dict[str, bytes]
) -> None:
    """gunicorn is started ``rounds`` times (the same work in all, split):
    whether the workers' first requests race on an inherited connection is
    down to timing, and every start is a fresh chance."""
    tally = Tally()
    uploads, downloads = UPLOADS // rounds, DOWNLOADS // rounds
    uploaded: dict[str, bytes] = {}
    for _ in range(rounds):
        with served(kind, {"OBJECTSTORE_URL": objectstore_url}, workers=workers) as server:
            # Downloads first: each worker's first requests (on whatever
            # connection it was born with) fetch distinct bodies, so a
            # crossing shows in the bytes.
            download_all(server, prestored, tally, downloads // 3)
            fresh = upload_all(server, tally, uploads)
            download_all(server, {**prestored, **fresh}, tally, downloads - downloads // 3)
        uploaded.update(fresh)
    assert tally.crossed == [], f"{len(tally.crossed)} crossed: {tally.crossed[:5]}"
    assert tally.errors == [], f"{len(tally.errors)} errors: {tally.errors[:5]}"
    assert (len(uploaded), tally.checked) == (UPLOADS, DOWNLOADS)
    # runserver is one threaded process; the others spread the work over
    # several worker processes (new ones each round).
    if workers == 1:
        assert len(tally.servers) == 1
    else:
        assert len(tally.servers) > rounds, tally.servers


def test_storage_in_a_prefork_pool(objectstore_url: str) -> None:
    """``default_storage`` (and a zstd usecase's storage) used by the parent,
    then in ``multiprocessing`` fork-pool workers re-forked every few tasks
    while a parent thread keeps saving (tests/serving/fork_pool.py)."""
    env = {**os.environ, "OBJECTSTORE_URL": objectstore_url, "PYTHONPATH": str(ROOT)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    process = subprocess.run(
        [sys.executable, "-m", "tests.serving.fork_pool"],
        capture_output=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    assert process.returncode == 0, process.stderr.decode()[-3000:]
    report = json.loads(process.stdout.decode().strip().splitlines()[-1])
    tasks, params = report["tasks"], report["params"]
    for part in [report["parent"], report["after"], *tasks]:
        assert (part["wrong"], part["errors"]) == ([], []), part
    assert len(tasks) == params["tasks"] >= 12
    # Workers were replaced: more processes than the pool's size did the work.
    assert len({task["pid"] for task in tasks}) > params["workers"]
    own, shared = params["files_per_task"], params["parent_files"] // 4
    assert all(task["checked"] == own + shared for task in tasks)
    assert report["after"]["checked"] == params["tasks"] * own
    assert report["parent"]["checked"] >= params["parent_files"]
