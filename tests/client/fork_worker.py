"""Run by ``test_fork.py`` in a fresh interpreter: one client used before a
fork, then by the parent and its forked children at the same time.

``python fork_worker.py URL PEM_PATH MODE CLIENT`` prints one JSON line:
``{"results": [{"pid": ..., "checked": n, "wrong": n, "errors": [...]}, ...]}``
(the parent's own result first), or exits non-zero.

MODE is ``os.fork``, ``mp-fork`` (multiprocessing's fork context),
``django`` (the shared ``get_client()`` used before ``os.fork``) or
``locks-held`` (``os.fork`` while the parent holds the token cache's and
the connection pool's locks, as another thread may at any moment) or
``libc-fork`` (the C library's ``fork()``, which skips Python's at-fork
hooks, as a C extension's fork would); ``inherited-payload`` prints
``{"child": ..., "parent": ...}`` instead (see ``inherited_payloads``).
CLIENT is ``ours`` or ``official`` (objectstore_client, to compare by hand: in
this harness 0.2.10 also crosses responses, seen as a 400 or a hang).

A fresh interpreter keeps the test runner's threads (its in-process
servers) out of the forked children.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

CHILDREN = 4
THREADS = 2  # concurrent workers per process
ROUNDS = 100  # put + get per worker: 200 verified reads per process
CHILD_TIMEOUT = 60.0


def payload(pid: int, worker: int, round_: int) -> bytes:
    """Bytes unique to this process, worker and round, of varying size."""
    tag = f"<{pid}:{worker}:{round_}>".encode()
    return tag * (1 + (round_ * 37 + worker * 11) % 700)


def run_workload(session: Any, label: str) -> dict[str, Any]:
    """``THREADS`` threads, each putting and reading back its own key
    ``ROUNDS`` times; every byte read is checked."""
    pid = os.getpid()
    result: dict[str, Any] = {"pid": pid, "label": label, "checked": 0, "wrong": 0, "errors": []}
    lock = threading.Lock()

    def worker(index: int) -> None:
        key = f"{label}-{pid}-{index}"
        for round_ in range(ROUNDS):
            data = payload(pid, index, round_)
            try:
                stored = session.put(data, key=key)
                got = session.get(stored)
                body = got.payload.read() if got is not None else None
                if got is not None:
                    got.payload.close()
            except Exception as exc:  # counted and reported, not hidden
                with lock:
                    result["errors"].append(f"{type(exc).__name__}: {exc}"[:300])
                continue
            with lock:
                result["checked"] += 1
                if body != data:
                    result["wrong"] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return result


def warm_up(session: Any, label: str) -> None:
    """Requests in the parent before any fork, from several threads at once,
    so the pool holds several idle keep-alive connections."""
    key = session.put(b"warm-up", key=f"{label}-warm")

    def read() -> None:
        got = session.get(key)
        got.payload.read()
        got.payload.close()

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def child_main(make_session: Callable[[], Any], label: str, write_fd: int) -> None:
    signal.alarm(int(CHILD_TIMEOUT))  # a deadlocked child dies instead of hanging the test
    try:
        result = run_workload(make_session(), label)
    except BaseException:
        result = {"pid": os.getpid(), "checked": 0, "wrong": 0, "errors": [traceback.format_exc()]}
    os.write(write_fd, (json.dumps(result) + "\n").encode())


def _libc_fork() -> int:
    pid: int = ctypes.CDLL(None, use_errno=True).fork()
    if pid < 0:
        raise OSError(ctypes.get_errno(), "fork() failed")
    return pid


def fork_children(
    make_session: Callable[[], Any], label: str, use_mp: bool, raw_fork: bool = False
) -> list[Any]:
    """Start the children; return handles (pid, read end) or Process objects."""
    handles: list[Any] = []
    for _ in range(CHILDREN):
        read_fd, write_fd = os.pipe()
        if use_mp:
            ctx = multiprocessing.get_context("fork")
            process = ctx.Process(target=child_main, args=(make_session, label, write_fd))
            process.start()
            os.close(write_fd)
            handles.append((process, read_fd))
            continue
        pid = _libc_fork() if raw_fork else os.fork()
        if pid == 0:  # the child
            os.close(read_fd)
            code = 0
            try:
                child_main(make_session, label, write_fd)
            except BaseException:
                code = 1
            os._exit(code)
        os.close(write_fd)
        handles.append((pid, read_fd))
    return handles


def collect(handles: list[Any], use_mp: bool) -> list[dict[str, Any]]:
    results = []
    for handle, read_fd in handles:
        with os.fdopen(read_fd, "rb") as reader:
            line = reader.readline()
        if use_mp:
            handle.join(CHILD_TIMEOUT)
        else:
            os.waitpid(handle, 0)
        if not line:
            results.append({"pid": None, "checked": 0, "wrong": 0, "errors": ["child died"]})
        else:
            results.append(json.loads(line))
    return results


def inherited_payloads(lib: Any, url: str, pem: str) -> None:
    """Payloads opened (and partly read) before a fork: the child's reads
    fail at once instead of taking bytes off the parent's connection (or
    waiting for helper threads that did not survive the fork); the parent
    then reads every byte of each; a fresh get in the child works."""
    client = lib.Client(url, token=lib.SecretKey("test_kid", pem))
    session = client.session(lib.Usecase("test"), org=os.getpid())
    # Hex text compresses to about half: 12 MiB stores about 6.5 MB.
    text = os.urandom(6 << 20).hex().encode()
    noise = os.urandom(6 << 20)
    objects = {
        # About 2 MB stored: zstandard's reader straight on the socket.
        "streamed": (session.put(text[: 4 << 20], key="streamed"), text[: 4 << 20]),
        # Over 4 MiB stored, frames of 2 MiB: ReadAhead thread + FrameDecoder threads.
        "read-ahead+frames": (session.put(text, key="large"), text),
        "plain": (session.put(text, key="plain", compress="none"), text),
        # Incompressible, over 4 MiB: raw zstd blocks read by RawBlocks.
        "raw blocks": (session.put(noise, key="noise"), noise),
    }
    opened = {}
    for name, (key, data) in objects.items():
        got = session.get(key)
        head = got.payload.read(1000)
        assert head == data[:1000], name
        opened[name] = got.payload
    assert type(opened["read-ahead+frames"]).__name__ == "FrameDecoder"
    assert type(opened["raw blocks"]).__name__ == "RawBlocks"
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        signal.alarm(int(CHILD_TIMEOUT))
        report: dict[str, Any] = {}
        try:
            for name, payload in opened.items():
                try:
                    report[name] = f"read {len(payload.read())} bytes"
                except Exception as exc:  # reported to the parent
                    report[name] = type(exc).__name__
            fresh = session.get(objects["read-ahead+frames"][0])
            report["fresh get"] = fresh.payload.read() == text
        except BaseException:
            report["error"] = traceback.format_exc()
        finally:
            os.write(write_fd, (json.dumps(report) + "\n").encode())
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as reader:
        child = json.loads(reader.readline() or b"{}")
    os.waitpid(pid, 0)
    parent = {}
    for name, payload in opened.items():
        rest = payload.read()
        parent[name] = 1000 + len(rest) == len(objects[name][1]) and rest == objects[name][1][1000:]
        payload.close()
    print(json.dumps({"child": child, "parent": parent}))


def main(url: str, pem_path: str, mode: str, which: str) -> None:
    pem = Path(pem_path).read_text()
    if mode == "inherited-payload":
        import django_objectstore.client as ours

        inherited_payloads(ours, url, pem)
        return
    label = f"{mode}-{which}-{os.getpid()}"
    if which == "official":
        import objectstore_client as lib
    else:
        import django_objectstore.client as lib  # type: ignore[no-redef]

    secret = lib.SecretKey("test_kid", pem)
    if mode == "django":
        from django.conf import settings

        settings.configure(
            OBJECTSTORE={
                "URL": url,
                "TOKEN": {"KID": "test_kid", "SECRET_KEY": pem},
                "USECASES": {"test": {}},
            }
        )
        from django_objectstore.factory import get_client, get_session

        get_client()
        orgs = iter(range(1, 10_000))

        def make_session() -> Any:
            return get_session("test", org=os.getpid(), team=next(orgs))

    else:
        client = lib.Client(url, token=secret)
        usecase = lib.Usecase("test")

        def make_session() -> Any:
            # A scope per process: the child's first token is signed in the child.
            return client.session(usecase, org=os.getpid())

    parent_session = make_session()
    warm_up(parent_session, label)
    held: list[Any] = []
    if mode == "locks-held":
        # Another thread inside the token cache or the pool queue at the
        # moment of the fork leaves those locks held in the child.
        pool = client._pool
        held = [secret._lock, pool.pool.mutex]
        for lock in held:
            lock.acquire()
    handles = fork_children(
        make_session, label, use_mp=mode == "mp-fork", raw_fork=mode == "libc-fork"
    )
    for lock in held:
        lock.release()
    own = run_workload(parent_session, label)
    results = [own, *collect(handles, use_mp=mode == "mp-fork")]
    print(json.dumps({"results": results}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
