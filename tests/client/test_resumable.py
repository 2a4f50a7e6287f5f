"""Resumable uploads of our client (section 20) against the local server,
with faults injected mid-upload by a loopback proxy (dropped connections,
503 answers, stalls), and the official 0.2.10 client's resumable put against
our server."""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import os
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import objectstore_client
import pytest

from django_objectstore.client import Client, RequestError, Session, Usecase
from django_objectstore.client._resumable_put import resumable_put
from django_objectstore.server import LocalServer
from tests.client.rawserver import read_head

MIB = 1024 * 1024


@dataclass
class Chunk:
    """A chunk write seen by the proxy: its offset and the body bytes it
    forwarded to the server."""

    offset: int
    forwarded: int


@dataclass
class FaultProxy:
    """Forwards requests from 127.0.0.1 to ``upstream``, one fresh upstream
    connection per request. Chunk writes (PUT ?session= with a numeric
    Upload-Offset) take the next fault of ``plan``: ``("drop", n)`` forwards
    n body bytes then closes both connections, ``("503", 0)`` answers 503
    without forwarding, ``("stall", n)`` forwards n bytes then stops reading
    until the client gives up. Progress requests (``Upload-Offset: *``) wait
    for ``settle`` (given how many requests were forwarded before them)
    before they are forwarded; ``progress`` records the Upload-Offset of
    their answers."""

    upstream: str
    plan: list[tuple[str, int]] = field(default_factory=list)
    settle: Callable[[int], None] | None = None
    chunks: list[Chunk] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    progress: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.forwarded = 0  # requests sent upstream (whole or broken off)

    def __enter__(self) -> FaultProxy:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self.threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        with self.lock:
            for conn in self.conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        for thread in self.threads:
            thread.join(10)
        self.sock.close()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with self.lock:
                self.conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        with conn, contextlib.suppress(OSError):
            while not self.stopping.is_set():
                data = read_head(conn)
                if data is None:
                    return
                head, _, body_start = data.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in lines[1:])
                }
                length = int(headers.get("content-length", "0"))
                offset = headers.get("upload-offset", "")
                fault: tuple[str, int] | None = None
                chunk: Chunk | None = None
                with self.lock:
                    self.requests.append(f"{method} {target}")
                    if method == "PUT" and "session=" in target and offset.isdigit():
                        chunk = Chunk(int(offset), 0)
                        self.chunks.append(chunk)
                        fault = self.plan.pop(0) if self.plan else None
                if fault is not None and fault[0] == "503":
                    self._discard(conn, length - len(body_start))
                    conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                    continue
                limit = length if fault is None else fault[1]
                asking = method == "PUT" and "session=" in target and offset == "*"
                if asking and self.settle is not None:
                    with self.lock:
                        forwarded = self.forwarded
                    self.settle(forwarded)
                if not self._forward(conn, head, body_start, limit, fault, chunk, asking):
                    return

    @staticmethod
    def _discard(conn: socket.socket, count: int) -> None:
        while count > 0:
            got = conn.recv(min(count, 1 << 16))
            if not got:
                raise OSError("client closed")
            count -= len(got)

    def _forward(
        self,
        conn: socket.socket,
        head: bytes,
        body_start: bytes,
        limit: int,
        fault: tuple[str, int] | None,
        chunk: Chunk | None,
        asking: bool,
    ) -> bool:
        host, port = self.upstream.removeprefix("http://").rsplit(":", 1)
        with self.lock:
            self.forwarded += 1
        with socket.create_connection((host, int(port)), timeout=10) as up:
            up.sendall(head + b"\r\n\r\n")
            sent = 0
            pending = body_start
            while sent < limit:
                if not pending:
                    pending = conn.recv(min(limit - sent, 1 << 16))
                    if not pending:
                        return False
                piece = pending[: limit - sent]
                pending = pending[len(piece) :]
                up.sendall(piece)
                sent += len(piece)
                if chunk is not None:
                    chunk.forwarded += len(piece)
            if fault is not None:
                if fault[0] == "stall":
                    with contextlib.suppress(OSError):
                        while conn.recv(1 << 16):  # until the client gives up
                            pass
                return False  # closes both sides; the server keeps what it got
            answer = read_head(up)
            if answer is None:
                return False
            status_head, _, rest = answer.partition(b"\r\n\r\n")
            answer_headers = status_head.decode("latin-1").lower()
            size = 0
            for line in answer_headers.split("\r\n")[1:]:
                if line.startswith("content-length:"):
                    size = int(line.split(":", 1)[1])
                if asking and line.startswith("upload-offset:"):
                    with self.lock:
                        self.progress.append(int(line.split(":", 1)[1]))
            while len(rest) < size:
                more = up.recv(1 << 16)
                if not more:
                    return False
                rest += more
            conn.sendall(status_head + b"\r\n\r\n" + rest)
            return "connection: close" not in answer_headers


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalServer]:
    with LocalServer(storage="filesystem", path=tmp_path / "data", sweep_interval=None) as srv:
        yield srv


def settled(server: LocalServer) -> Callable[[int], None]:
    """A ``FaultProxy.settle``: waits (at most 10 s) until the server has
    finished every request the proxy forwarded, so a progress request comes
    after the server has wound down the chunk write the proxy broke off and
    taken in what it had received (the client's real wait gives it seconds
    for that). Nothing in flight is not enough: on a loaded host the broken
    request may not have started yet. Call it before the proxy's traffic."""
    counters = server.service.counters
    before = counters.requests

    def settle(forwarded: int) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (
            counters.in_flight or counters.requests < before + forwarded
        ):
            time.sleep(0.01)

    return settle


class Sleeps:
    """Stands in for time.sleep: records the waits without waiting (the
    proxy holds progress requests until the server has settled)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def session_for(url: str, **client: Any) -> Session:
    return Client(url, **client).session(Usecase("test", compression="none"), org=1)


def upload(session: Session, data: bytes, key: str, sleeps: Sleeps) -> str | None:
    headers = session._metadata_headers(None, "application/x-test", {"a": "b"}, None, None, None)
    return resumable_put(
        session, io.BytesIO(data), 0, len(data), key, headers, sleep=sleeps, jitter=lambda: 0.5
    )


def stored(server: LocalServer, key: str) -> bytes | None:
    got = session_for(server.url).get(key)
    return None if got is None else got.payload.read()


def test_dropped_connection_resumes_without_resending(server: LocalServer) -> None:
    data = os.urandom(6 * MIB)
    with FaultProxy(server.url, plan=[("drop", 2 * MIB + 12345)], settle=settled(server)) as proxy:
        sleeps = Sleeps()
        assert upload(session_for(proxy.url), data, "drop", sleeps) == "drop"
    assert stored(server, "drop") == data
    assert sleeps.waits == [2.5]  # 2 * 2**0 + jitter
    first, second = proxy.chunks
    assert (first.offset, first.forwarded) == (0, 2 * MIB + 12345)
    # Resumed from the server's progress answer, which counts every byte the
    # server received: nothing was sent twice.
    assert second.offset == proxy.progress[0] == first.forwarded
    assert first.forwarded + second.forwarded == len(data)
    assert any("Upload-Offset" not in r and "session=" in r for r in proxy.requests)
    meta = session_for(server.url).head("drop")
    assert meta is not None
    assert meta.content_type == "application/x-test"
    assert meta.custom == {"a": "b"}


def test_503_then_resume(server: LocalServer) -> None:
    data = os.urandom(3 * MIB)
    with FaultProxy(server.url, plan=[("503", 0), ("503", 0)], settle=settled(server)) as proxy:
        sleeps = Sleeps()
        assert upload(session_for(proxy.url), data, "busy", sleeps) == "busy"
    assert stored(server, "busy") == data
    assert sleeps.waits == [2.5, 4.5]  # no progress in between: the third and last try
    assert [c.offset for c in proxy.chunks] == [0, 0, 0]
    assert sum(c.forwarded for c in proxy.chunks) == len(data)


def test_stall_times_out_and_resumes(server: LocalServer) -> None:
    data = os.urandom(5 * MIB)
    with FaultProxy(server.url, plan=[("stall", 3 * MIB)], settle=settled(server)) as proxy:
        sleeps = Sleeps()
        session = session_for(proxy.url, timeout_ms=1500)
        assert upload(session, data, "stall", sleeps) == "stall"
    assert stored(server, "stall") == data
    first, second = proxy.chunks
    assert first.forwarded == 3 * MIB
    # Resumed from what the server held when asked: all it had received.
    assert second.offset == proxy.progress[0] == first.forwarded
    assert second.offset + second.forwarded == len(data)


def test_progress_resets_the_tries(server: LocalServer) -> None:
    data = os.urandom(4 * MIB)
    plan = [("drop", MIB // 2)] * 5  # five faults, but each one made progress
    with FaultProxy(server.url, plan=list(plan), settle=settled(server)) as proxy:
        sleeps = Sleeps()
        assert upload(session_for(proxy.url), data, "steps", sleeps) == "steps"
    assert stored(server, "steps") == data
    assert sleeps.waits == [2.5] * 5
    offsets = [c.offset for c in proxy.chunks]
    assert offsets[1:] == proxy.progress  # each resume where the server said
    assert offsets == [n * (MIB // 2) for n in range(6)]


def test_small_chunk_dropped_keeps_what_arrived(server: LocalServer) -> None:
    """A chunk small enough that the server reads it whole before answering
    (1 MiB): the part that arrived before the drop is kept as well."""
    data = os.urandom(MIB)
    with FaultProxy(server.url, plan=[("drop", 300_000)], settle=settled(server)) as proxy:
        sleeps = Sleeps()
        assert upload(session_for(proxy.url), data, "small", sleeps) == "small"
    assert stored(server, "small") == data
    assert sleeps.waits == [2.5]
    assert proxy.progress == [300_000]
    assert [c.offset for c in proxy.chunks] == [0, 300_000]


def test_cancelled_when_it_cannot_finish(server: LocalServer) -> None:
    data = os.urandom(2 * MIB)
    with FaultProxy(server.url, plan=[("drop", 0)] * 10, settle=settled(server)) as proxy:
        sleeps = Sleeps()
        with pytest.raises(RequestError, match="upload failed"):
            upload(session_for(proxy.url), data, "never", sleeps)
    assert sleeps.waits == [2.5, 4.5]  # 2 * 2**n + jitter, three tries in all
    assert any(r.startswith("DELETE ") and "session=" in r for r in proxy.requests)
    assert stored(server, "never") is None  # nothing stored
    assert list((Path(server.service.backend.root) / "resumable").glob("*/data")) == []


def test_create_declined_falls_back_to_one_request(tmp_path: Path) -> None:
    data = os.urandom(3 * MIB) + b"z" * (3 * MIB)
    with LocalServer(storage="memory", resumable=False) as srv, FaultProxy(srv.url) as proxy:
        session = Client(proxy.url).session(Usecase("test"), org=1)
        assert session.put(io.BytesIO(data), key="plain", resumable_threshold_bytes=MIB) == "plain"
        assert [r.split("?")[0] for r in proxy.requests] == [
            "PUT /v1/objects/test/org=1/plain",
            "PUT /v1/objects/test/org=1/plain",
        ]
        assert "upload_type=resumable" in proxy.requests[0]
        got = session_for(srv.url).get("plain")
        assert got is not None
        assert got.metadata.size is not None
        assert got.metadata.size < len(data)  # the compressed spool, sent as it was
        assert got.payload.read() == data


def test_session_put_thresholds_and_spool_dir(server: LocalServer, tmp_path: Path) -> None:
    data = hashlib.shake_128(b"r").digest(2 * MIB) + b"t" * (4 * MIB)
    sessions = Path(server.service.backend.root) / "resumable"

    def created() -> int:  # resumable sessions the server has seen
        return len(list(sessions.iterdir()))

    client = Client(server.url, spool_dir=tmp_path)
    eager = client.session(Usecase("test", resumable_threshold_bytes=MIB), org=1)
    assert eager.put(io.BytesIO(data), key="u") == "u"
    assert created() == 1
    assert eager.put(io.BytesIO(data), key="off", resumable_threshold_bytes="none") == "off"
    assert created() == 1
    small = client.session(Usecase("test"), org=1)  # default threshold: 256 MiB
    assert small.put(io.BytesIO(data), key="small") == "small"
    assert created() == 1
    assert small.put(data, key="bytes", resumable_threshold_bytes=0) == "bytes"
    assert created() == 2
    # An unusable spool_dir: the put goes out as one ordinary request.
    broken = Client(server.url, spool_dir=tmp_path / "missing").session(Usecase("test"), org=1)
    assert broken.put(io.BytesIO(data), key="nospool", resumable_threshold_bytes=0) == "nospool"
    assert created() == 2
    for key in ("u", "off", "small", "bytes", "nospool"):
        got = session_for(server.url).get(key)
        assert got is not None
        assert got.payload.read() == data
    with pytest.raises(ValueError, match="resumable_threshold_bytes"):
        Usecase("test", resumable_threshold_bytes=-1)


def test_session_put_resumes_after_a_drop(server: LocalServer) -> None:
    """End to end through Session.put (real 2-3 s wait)."""
    data = os.urandom(3 * MIB)
    with FaultProxy(server.url, plan=[("drop", MIB)], settle=settled(server)) as proxy:
        session = Client(proxy.url).session(Usecase("test", compression="none"), org=1)
        started = time.monotonic()
        assert session.put(data, key="e2e", resumable_threshold_bytes=MIB) == "e2e"
        assert 2.0 <= time.monotonic() - started < 10
    assert proxy.progress == [MIB]
    assert [c.offset for c in proxy.chunks] == [0, MIB]
    assert stored(server, "e2e") == data


def test_memory_bounded(server: LocalServer, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    with open(source, "wb") as file:
        for _ in range(48):
            file.write(os.urandom(MIB))
    session = Client(server.url, spool_dir=tmp_path).session(Usecase("test"), org=1)
    tracemalloc.start()
    try:
        with open(source, "rb") as file:
            session.put(file, key="big", resumable_threshold_bytes=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 24 * MIB, peak
    got = session.get("big")
    assert got is not None
    assert (
        hashlib.sha256(got.payload.read()).digest() == hashlib.sha256(source.read_bytes()).digest()
    )


def test_official_client_resumable_put(server: LocalServer) -> None:
    """The official client's resumable put (0.2.10; older ones send a plain
    put) through a dropped connection, read back by both clients."""
    data = os.urandom(2 * MIB) + b"o" * (3 * MIB)
    resumable = (
        "resumable_threshold_bytes" in inspect.signature(objectstore_client.Usecase).parameters
    )
    with FaultProxy(server.url, plan=[("drop", MIB)], settle=settled(server)) as proxy:
        official = objectstore_client.Client(proxy.url).session(
            objectstore_client.Usecase("test"), org=1
        )
        if resumable:
            assert official.put(data, key="off", resumable_threshold_bytes=MIB) == "off"
            assert any("upload_type=resumable" in r for r in proxy.requests)
            assert len(proxy.chunks) == 2
            assert proxy.chunks[1].offset == proxy.progress[0] == proxy.chunks[0].forwarded == MIB
        else:
            assert official.put(data, key="off") == "off"
            assert proxy.chunks == []
    got = official_get(server.url, "off")
    assert got == data
    ours = session_for(server.url).get("off")
    assert ours is not None
    assert ours.payload.read() == data


def official_get(url: str, key: str) -> bytes:
    session = objectstore_client.Client(url).session(objectstore_client.Usecase("test"), org=1)
    result = session.get(key)
    payload: bytes = result.payload.read()
    return payload


def test_multipart_501_falls_back_to_resumable(tmp_path: Path) -> None:
    """A server without multipart (the real S3-compatible and BigTable
    backends): the put goes resumable where the usecase's threshold asks for
    it, stored once, nothing left behind."""
    data = hashlib.shake_128(b"m").digest(3 * MIB) + b"m" * (5 * MIB)
    with (
        LocalServer(storage="filesystem", path=tmp_path, multipart=False) as srv,
        FaultProxy(srv.url) as proxy,
    ):
        client = Client(proxy.url, multipart_threshold=6 * MIB)
        session = client.session(Usecase("test", resumable_threshold_bytes=MIB), org=1)
        assert session.put(io.BytesIO(data), key="mp") == "mp"
        paths = [r.split("?")[0] for r in proxy.requests]
        assert paths[0] == "PUT /v1/objects:multipart/test/org=1/mp"  # answered 501
        assert "upload_type=resumable" in proxy.requests[1]
        assert len(proxy.chunks) == 1
        assert stored(srv, "mp") == data
        assert list((tmp_path / "uploads").iterdir()) == []
        proxy.requests.clear()
        # Remembered: the next big put skips multipart and goes resumable.
        assert session.put(io.BytesIO(data), key="mp2") == "mp2"
        assert "upload_type=resumable" in proxy.requests[0]
        assert stored(srv, "mp2") == data
