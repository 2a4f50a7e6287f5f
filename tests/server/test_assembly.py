"""Background assembly of multipart uploads in the filesystem backend: the
object is built from the parts as they arrive, and a completion either
finishes that prefix or falls back to copying every part. Either way the
stored object must be exactly the listed parts, in list order."""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from django_objectstore.server import LocalServer
from django_objectstore.server.backend_fs import FilesystemBackend
from django_objectstore.server.model import Identity
from tests.server.helpers import MP, call, complete, initiate, upload

OBJ = "/v1/objects/test/org=1"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalServer]:
    with LocalServer(storage="filesystem", path=tmp_path, sweep_interval=None) as running:
        yield running


def backend_of(server: LocalServer) -> FilesystemBackend:
    backend = server.service.backend
    assert isinstance(backend, FilesystemBackend)
    return backend


def temp_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.tmp"))


def payloads(count: int, size: int = 3 * 1024) -> list[bytes]:
    # Different sizes, so a part copied twice or out of place changes the length too.
    return [os.urandom(size + 17 * number) for number in range(count)]


def upload_all(
    url: str, count: int, headers: dict[str, str] | None = None
) -> tuple[str, str, list[bytes], list[str]]:
    """A new upload with ``count`` parts: (key, upload id, part data, etags)."""
    key = fresh()
    uid = initiate(url, key, headers)
    data = payloads(count)
    etags = [upload(url, key, uid, n, part) for n, part in enumerate(data, 1)]
    return key, uid, data, etags


def fetch(url: str, key: str) -> bytes:
    r = call(url, "GET", f"{OBJ}/{key}")
    assert r.status == 200, r.body
    return r.body


def fresh() -> str:
    return f"asm-{uuid.uuid4().hex[:10]}"


def test_in_order_parts_take_the_fast_path(server: LocalServer, tmp_path: Path) -> None:
    backend = backend_of(server)
    key, uid, data, etags = upload_all(
        server.url, 4, {"Content-Type": "text/plain", "x-snme-origin-app": "assembly-test"}
    )
    backend.wait_for_assembly()
    # The prefix is a temporary file beside the future object.
    assert len(temp_files(tmp_path / "objects")) == 1
    before = backend.fast_completions
    assert complete(server.url, key, uid, list(enumerate(etags, 1))) == {"key": key}
    assert backend.fast_completions == before + 1
    r = call(server.url, "GET", f"{OBJ}/{key}")
    assert r.body == b"".join(data)
    assert r.header("content-type") == "text/plain"
    assert r.header("x-snme-origin-app") == "assembly-test"
    assert temp_files(tmp_path) == []
    assert not (tmp_path / "uploads" / uid).exists()


def test_completion_right_after_the_last_part(server: LocalServer, tmp_path: Path) -> None:
    # No waiting: the completion takes over wherever the worker is.
    key, uid, data, etags = upload_all(server.url, 6)
    assert complete(server.url, key, uid, list(enumerate(etags, 1))) == {"key": key}
    assert fetch(server.url, key) == b"".join(data)
    backend_of(server).wait_for_assembly()
    assert temp_files(tmp_path) == []


def test_parts_out_of_order(server: LocalServer, tmp_path: Path) -> None:
    backend = backend_of(server)
    key = fresh()
    uid = initiate(server.url, key)
    data = payloads(3)
    etags = {}
    for number in (3, 1, 2):
        etags[number] = upload(server.url, key, uid, number, data[number - 1])
        backend.wait_for_assembly()
    before = backend.fast_completions
    assert complete(server.url, key, uid, sorted(etags.items())) == {"key": key}
    assert backend.fast_completions == before + 1  # part 2 filled the gap
    assert fetch(server.url, key) == b"".join(data)
    assert temp_files(tmp_path) == []


def test_reuploaded_part_wins(server: LocalServer, tmp_path: Path) -> None:
    backend = backend_of(server)
    key = fresh()
    uid = initiate(server.url, key)
    old_first, second = payloads(2)
    upload(server.url, key, uid, 1, old_first)
    e2 = upload(server.url, key, uid, 2, second)
    backend.wait_for_assembly()  # the old part 1 is in the prefix now
    new_first = os.urandom(len(old_first))
    e1 = upload(server.url, key, uid, 1, new_first)
    backend.wait_for_assembly()
    before = backend.fast_completions
    assert complete(server.url, key, uid, [(1, e1), (2, e2)]) == {"key": key}
    assert backend.fast_completions == before  # stale prefix dropped
    assert fetch(server.url, key) == new_first + second
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize(
    ("order", "fast"),
    [
        ([1, 3], False),
        ([1, 2], False),
        ([2, 1, 3], False),
        ([3, 2, 1], False),
        ([2, 3], False),
        ([1, 2, 3, 1], True),  # starts with the prefix: part 1 is appended again
    ],
    ids=["skip-middle", "drop-last", "swap-first", "reversed", "no-first", "repeat"],
)
def test_other_listings(server: LocalServer, tmp_path: Path, order: list[int], fast: bool) -> None:
    backend = backend_of(server)
    key, uid, data, etags = upload_all(server.url, 3)
    backend.wait_for_assembly()
    before = backend.fast_completions
    listing = [(number, etags[number - 1]) for number in order]
    assert complete(server.url, key, uid, listing) == {"key": key}
    assert fetch(server.url, key) == b"".join(data[number - 1] for number in order)
    assert backend.fast_completions == before + fast
    assert temp_files(tmp_path) == []


def test_longer_listing_appends_to_the_prefix(server: LocalServer, tmp_path: Path) -> None:
    # Parts 1-2 copied in the background, 4 listed after them but never part 3.
    backend = backend_of(server)
    key = fresh()
    uid = initiate(server.url, key)
    data = payloads(4)
    etags = {n: upload(server.url, key, uid, n, data[n - 1]) for n in (1, 2, 4)}
    backend.wait_for_assembly()
    before = backend.fast_completions
    assert complete(server.url, key, uid, sorted(etags.items())) == {"key": key}
    assert backend.fast_completions == before + 1
    assert fetch(server.url, key) == data[0] + data[1] + data[3]
    assert temp_files(tmp_path) == []


def test_failed_completion_can_be_retried(server: LocalServer, tmp_path: Path) -> None:
    backend = backend_of(server)
    key, uid, data, etags = upload_all(server.url, 2)
    backend.wait_for_assembly()
    answer = complete(server.url, key, uid, [(1, etags[0]), (2, "wrong")])
    assert isinstance(answer, dict)
    assert answer["error"]["code"] == "InvalidPart"
    assert call(server.url, "GET", f"{OBJ}/{key}").status == 404
    assert complete(server.url, key, uid, list(enumerate(etags, 1))) == {"key": key}
    assert fetch(server.url, key) == b"".join(data)
    assert temp_files(tmp_path) == []


def test_abort_removes_the_prefix(server: LocalServer, tmp_path: Path) -> None:
    backend = backend_of(server)
    key = fresh()
    uid = initiate(server.url, key)
    for number, part in enumerate(payloads(3), 1):
        upload(server.url, key, uid, number, part)
    backend.wait_for_assembly()
    assert temp_files(tmp_path) != []
    assert call(server.url, "DELETE", f"{MP}/{key}?upload_id={uid}").status == 204
    assert temp_files(tmp_path) == []
    assert not (tmp_path / "uploads" / uid).exists()
    assert call(server.url, "GET", f"{OBJ}/{key}").status == 404


def test_abort_while_notifications_are_queued(server: LocalServer, tmp_path: Path) -> None:
    # Abort right after the parts, before the worker has caught up: a late
    # notification must not recreate a prefix for the removed upload.
    backend = backend_of(server)
    for _ in range(5):
        key = fresh()
        uid = initiate(server.url, key)
        for number, part in enumerate(payloads(4), 1):
            upload(server.url, key, uid, number, part)
        assert call(server.url, "DELETE", f"{MP}/{key}?upload_id={uid}").status == 204
    backend.wait_for_assembly()
    assert temp_files(tmp_path) == []
    assert list((tmp_path / "uploads").iterdir()) == []


def test_stop_removes_prefixes(tmp_path: Path) -> None:
    with LocalServer(storage="filesystem", path=tmp_path, sweep_interval=None) as server:
        key, uid, data, etags = upload_all(server.url, 2)
        backend_of(server).wait_for_assembly()
        assert temp_files(tmp_path) != []
    assert temp_files(tmp_path) == []
    with server:  # restarted: the upload is still there and completes
        assert complete(server.url, key, uid, list(enumerate(etags, 1))) == {"key": key}
        assert fetch(server.url, key) == b"".join(data)


def test_restart_removes_stale_prefixes(tmp_path: Path) -> None:
    # The first server is left running with its prefixes on disk, as after a
    # crash; a new server on the same root removes them at start.
    with LocalServer(storage="filesystem", path=tmp_path, sweep_interval=None) as first:
        data = payloads(3)
        uploads = []
        for _ in range(2):
            key = fresh()
            uid = initiate(first.url, key)
            etags = [upload(first.url, key, uid, n, part) for n, part in enumerate(data, 1)]
            uploads.append((key, uid, list(enumerate(etags, 1))))
        backend_of(first).wait_for_assembly()
        assert len(temp_files(tmp_path / "objects")) == 2
        for path in temp_files(tmp_path / "objects"):  # as old as a crashed server's
            os.utime(path, (time.time() - 60, time.time() - 60))
        with LocalServer(storage="filesystem", path=tmp_path, sweep_interval=None) as second:
            assert temp_files(tmp_path) == []
            # The upload state survives: the new server copies all parts.
            key, uid, listing = uploads[0]
            assert complete(second.url, key, uid, listing) == {"key": key}
            assert fetch(second.url, key) == b"".join(data)
            assert backend_of(second).fast_completions == 0
        # The old server's prefix file is gone: it falls back to the full copy.
        key, uid, listing = uploads[1]
        assert complete(first.url, key, uid, listing) == {"key": key}
        assert fetch(first.url, key) == b"".join(data)
        assert backend_of(first).fast_completions == 0
    assert temp_files(tmp_path) == []


def test_parallel_uploads(server: LocalServer, tmp_path: Path) -> None:
    def one(seed: int) -> tuple[bytes, bytes]:
        rng = random.Random(seed)
        key = fresh()
        uid = initiate(server.url, key)
        data = [rng.randbytes(rng.randrange(512, 4096)) for _ in range(rng.randrange(1, 7))]
        numbers = list(range(1, len(data) + 1))
        if seed % 2:
            rng.shuffle(numbers)
        etags = {n: upload(server.url, key, uid, n, data[n - 1]) for n in numbers}
        assert complete(server.url, key, uid, sorted(etags.items())) == {"key": key}
        return fetch(server.url, key), b"".join(data)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(24)))
    for stored, expected in results:
        assert stored == expected
    backend_of(server).wait_for_assembly()
    assert temp_files(tmp_path) == []
    assert list((tmp_path / "uploads").iterdir()) == []


def test_without_fsync(tmp_path: Path) -> None:
    with LocalServer(
        storage="filesystem", path=tmp_path, fsync=False, sweep_interval=None
    ) as server:
        backend = backend_of(server)
        key, uid, data, etags = upload_all(server.url, 3)
        backend.wait_for_assembly()
        assert complete(server.url, key, uid, list(enumerate(etags, 1))) == {"key": key}
        assert backend.fast_completions == 1
        assert fetch(server.url, key) == b"".join(data)
    assert temp_files(tmp_path) == []


def test_late_notification_after_abort(server: LocalServer, tmp_path: Path) -> None:
    # White-box: a notification that reaches the worker after the upload was
    # aborted finds no upload folder and starts no prefix.
    backend = backend_of(server)
    key = fresh()
    uid = initiate(server.url, key)
    upload(server.url, key, uid, 1, b"late")
    assert call(server.url, "DELETE", f"{MP}/{key}?upload_id={uid}").status == 204
    backend._assembler.notify(Identity("test", (("org", "1"),), key), uid)
    backend.wait_for_assembly()
    assert temp_files(tmp_path) == []
    assert uid not in backend._assembler._prefixes
