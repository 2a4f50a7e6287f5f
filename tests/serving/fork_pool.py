"""``python -m tests.serving.fork_pool``, run by tests/test_deploy.py in a
fresh interpreter (the test runner's own threads stay out of the forks): the
Django storage layer in a Celery-prefork-like pool.

The parent saves and reads files through ``default_storage`` (the shared
client now holds pooled connections), then starts a ``multiprocessing``
pool with the ``fork`` start method whose workers are replaced every few
tasks (Celery's ``worker_max_tasks_per_child``), so workers are forked
again and again while a parent thread keeps using the same storage. Every
task saves files through ``default_storage`` and a zstd usecase's storage,
reads them back and reads files the parent saved before the first fork;
every byte is checked. Prints one JSON line (see ``main``)."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import random
import threading
import traceback
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.serving.settings")
django.setup()

from django.core.files.base import ContentFile  # noqa: E402 (needs django.setup())
from django.core.files.storage import default_storage  # noqa: E402

from django_objectstore.storage import ObjectstoreStorage  # noqa: E402

WORKERS = 3
TASKS = 18
TASKS_PER_CHILD = 3  # a fresh fork every 3 tasks: 6 generations of workers
FILES_PER_TASK = 4
PARENT_FILES = 8  # saved before the first fork; each task reads a quarter of them
TIMEOUT = 60.0


def body(rng: random.Random, compressible: bool) -> bytes:
    size = rng.randrange(1024, 160 * 1024)
    if compressible:
        return rng.randbytes(size // 2 + 1).hex().encode()[:size]
    return rng.randbytes(size)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def storages() -> dict[str, Any]:
    return {"plain": default_storage, "attachments": ObjectstoreStorage("attachments")}


def save_and_check(
    label: str, count: int, rng: random.Random, report: dict[str, Any]
) -> dict[str, tuple[str, str]]:
    """Save ``count`` files (alternating usecases), read each back; returns
    name -> (usecase, sha256). Counts into ``report``."""
    saved = {}
    for index in range(count):
        usecase = ("plain", "attachments")[index % 2]
        data = body(rng, compressible=usecase == "attachments")
        storage = storages()[usecase]
        name = storage.save(f"pool/{label}-{index}.bin", ContentFile(data))
        saved[name] = (usecase, digest(data))
        with storage.open(name) as handle:
            check(report, handle.read(), data, f"{usecase}:{name}")
    return saved


def check(report: dict[str, Any], got: bytes, want: bytes, what: str) -> None:
    report["checked"] += 1
    if got != want:
        report["wrong"].append(f"{what}: {len(got)} bytes, not its own {len(want)}")


def verify(saved: dict[str, tuple[str, str]], report: dict[str, Any]) -> None:
    """Read back files saved elsewhere (by the parent, or by the workers)."""
    for name, (usecase, sha) in saved.items():
        with storages()[usecase].open(name) as handle:
            data = handle.read()
        report["checked"] += 1
        if digest(data) != sha:
            report["wrong"].append(f"{usecase}:{name}: {len(data)} bytes, not its own")


def task(args: tuple[int, dict[str, tuple[str, str]]]) -> dict[str, Any]:
    number, parents = args
    report: dict[str, Any] = {"pid": os.getpid(), "checked": 0, "wrong": [], "errors": []}
    try:
        rng = random.Random(os.urandom(8))
        report["saved"] = save_and_check(f"task{number}", FILES_PER_TASK, rng, report)
        verify(dict(list(parents.items())[number % 4 :: 4]), report)
    except Exception:
        report["errors"].append(traceback.format_exc()[-1500:])
    return report


def parent_traffic(stop: threading.Event, report: dict[str, Any]) -> None:
    """The parent keeps saving and reading while workers are forked."""
    rng = random.Random(os.urandom(8))
    round_ = 0
    try:
        while not stop.is_set():
            save_and_check(f"parent-busy{round_}", 2, rng, report)
            round_ += 1
    except Exception:
        report["errors"].append(traceback.format_exc()[-1500:])


def main() -> None:
    """Prints ``{"params": ..., "parent": report, "tasks": [report, ...], "after": report}``:
    each report counts bytes ``checked``, lists ``wrong`` reads and ``errors``."""
    rng = random.Random(os.urandom(8))
    before: dict[str, Any] = {"checked": 0, "wrong": [], "errors": []}
    # Before any fork: the shared client's pool now holds connections.
    parents = save_and_check("parent", PARENT_FILES, rng, before)
    busy: dict[str, Any] = {"checked": 0, "wrong": [], "errors": []}
    stop = threading.Event()
    thread = threading.Thread(target=parent_traffic, args=(stop, busy))
    thread.start()
    context = multiprocessing.get_context("fork")
    try:
        with context.Pool(WORKERS, maxtasksperchild=TASKS_PER_CHILD) as pool:
            jobs = [(number, parents) for number in range(TASKS)]
            results = pool.map_async(task, jobs, chunksize=1).get(TIMEOUT)
    finally:
        stop.set()
        thread.join(TIMEOUT)
    # The parent reads everything the workers saved.
    after: dict[str, Any] = {"checked": 0, "wrong": [], "errors": []}
    try:
        for result in results:
            verify(result.get("saved", {}), after)
    except Exception:
        after["errors"].append(traceback.format_exc()[-1500:])
    for result in results:
        result.pop("saved", None)
    parent = {key: before[key] + busy[key] for key in before}
    params = {
        "workers": WORKERS,
        "tasks": TASKS,
        "files_per_task": FILES_PER_TASK,
        "parent_files": PARENT_FILES,
    }
    print(json.dumps({"params": params, "parent": parent, "tasks": results, "after": after}))


if __name__ == "__main__":
    main()
