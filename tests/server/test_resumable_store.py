"""The resumable session store on its own: a progress request that comes
while a broken-off chunk write is still winding down."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from django_objectstore.server.backend_memory import MemoryBackend
from django_objectstore.server.model import Identity, ObjectMeta
from django_objectstore.server.request import ClientGone
from django_objectstore.server.resumable_disk import FilesystemSessions
from django_objectstore.server.resumable_store import MemorySessions, Progress, Sessions

IDENT = Identity("test", (("org", "1"),), "k")


@pytest.fixture(params=["memory", "filesystem"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Sessions:
    backend = MemoryBackend()
    if request.param == "memory":
        return MemorySessions(backend)
    return FilesystemSessions(backend, tmp_path, fsync=False)


def test_progress_waits_for_a_write_winding_down(sessions: Sessions) -> None:
    now = datetime.now(UTC)
    token = sessions.create(IDENT, ObjectMeta(), 100, now)
    started = threading.Event()
    gate = threading.Event()

    def body() -> Iterator[bytes]:
        """10 bytes, then (once let through) the 5 the HTTP layer still
        held when the client went away, then the end of the request."""
        yield b"a" * 10
        started.set()
        assert gate.wait(10)
        yield b"b" * 5
        raise ClientGone("gone")

    def write() -> None:
        with pytest.raises(ClientGone):
            sessions.write(token, IDENT, 0, 100, body(), now)

    answers: list[Progress] = []
    writer = threading.Thread(target=write)
    writer.start()
    assert started.wait(10)
    asker = threading.Thread(target=lambda: answers.append(sessions.progress(token, IDENT, now)))
    asker.start()
    time.sleep(0.1)  # time for the progress request to be early (it passes either way)
    gate.set()
    writer.join(10)
    asker.join(10)
    assert answers == [Progress(15, False)]
