"""Request bodies handed from the event loop to a worker thread
(``body_pipe``): the pipe alone, then through a real server on loopback:
large bodies stored byte for byte, a request pipelined behind a large body
answered on the same connection, an unread large body drained, a body cut
short stores nothing, and reading pauses while the thread falls behind."""

from __future__ import annotations

import asyncio
import hashlib
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from django_objectstore.server import LocalServer
from django_objectstore.server.body_pipe import HIGH_WATER, LOW_WATER, BodyPipe
from django_objectstore.server.request import ClientGone
from tests.server.helpers import call

MIB = 1024 * 1024


class _Flow:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause(self) -> None:
        self.calls.append("pause")

    def resume(self) -> None:
        self.calls.append("resume")


@pytest.fixture
def loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def test_pieces_come_out_in_order_then_none(loop: asyncio.AbstractEventLoop) -> None:
    flow = _Flow()
    pipe = BodyPipe(loop, flow.pause, flow.resume)
    big = [os.urandom(100_000), os.urandom(200_000)]
    for piece in big:
        pipe.feed(piece)
    pipe.finish()
    assert pipe.next_block() is big[0]  # handed over as is, not copied
    assert pipe.next_block() is big[1]
    assert pipe.next_block() is None
    assert flow.calls == []


def test_small_pieces_are_joined(loop: asyncio.AbstractEventLoop) -> None:
    pipe = BodyPipe(loop, lambda: None, lambda: None)
    for i in range(100):
        pipe.feed(bytes([i]) * 10)
    pipe.finish()
    assert pipe.next_block() == b"".join(bytes([i]) * 10 for i in range(100))
    assert pipe.next_block() is None


def test_queued_pieces_are_handed_out_before_the_disconnect(
    loop: asyncio.AbstractEventLoop,
) -> None:
    pipe = BodyPipe(loop, lambda: None, lambda: None)
    pipe.feed(b"x" * 70_000)
    pipe.lose()
    assert pipe.next_block() == b"x" * 70_000
    with pytest.raises(ClientGone):
        pipe.next_block()


def test_a_waiting_thread_wakes_for_the_next_piece(loop: asyncio.AbstractEventLoop) -> None:
    pipe = BodyPipe(loop, lambda: None, lambda: None)
    got: list[bytes | None] = []
    reader = threading.Thread(target=lambda: got.extend([pipe.next_block(), pipe.next_block()]))
    reader.start()
    time.sleep(0.05)
    pipe.feed(b"y" * 70_000)
    pipe.finish()
    reader.join(5)
    assert not reader.is_alive()
    assert got == [b"y" * 70_000, None]


def test_reading_pauses_above_the_mark_and_resumes_below_it(
    loop: asyncio.AbstractEventLoop,
) -> None:
    flow = _Flow()
    pipe = BodyPipe(loop, flow.pause, flow.resume)
    piece = b"z" * (LOW_WATER // 2)
    fed = 0
    while not pipe.paused:
        pipe.feed(piece)
        fed += len(piece)
    assert fed > HIGH_WATER
    assert flow.calls == ["pause"]
    taken = 0
    while fed - taken > LOW_WATER:
        block = pipe.next_block()
        assert block is not None
        taken += len(block)
    loop.call_soon(loop.stop)
    loop.run_forever()  # runs the resume the thread scheduled
    assert flow.calls == ["pause", "resume"]
    assert not pipe.paused


def _read_response(sock: socket.socket, buffered: bytearray) -> tuple[int, bytes]:
    """One response (status, body) with a Content-Length from ``sock``."""
    while b"\r\n\r\n" not in buffered:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before a response head"
        buffered += chunk
    head, _, rest = bytes(buffered).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = bytearray(rest)
    while len(body) < length:
        chunk = sock.recv(min(MIB, length - len(body)))
        assert chunk, "connection closed inside a response body"
        body += chunk
    buffered[:] = body[length:]
    return status, bytes(body[:length])


def _exchange(address: Any, raw: bytes, count: int = 1) -> list[tuple[int, bytes]]:
    """Send ``raw`` on a new connection and read ``count`` responses to it."""
    with socket.create_connection(address, timeout=30) as sock:
        sock.sendall(raw)
        buffered = bytearray()
        return [_read_response(sock, buffered) for _ in range(count)]


def _put_head(path: str, length: int, extra: bytes = b"") -> bytes:
    """The head of a PUT of ``length`` body bytes to ``path``."""
    return b"PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n" % (
        path.encode(),
        length,
        extra,
    )


def _wait_until_ended(counters: Any, before: int, seconds: float) -> None:
    """Until the server has ended one more request than ``before``."""
    deadline = time.monotonic() + seconds
    while counters.requests == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert counters.requests == before + 1


@pytest.mark.parametrize("storage", ["memory", "filesystem"])
def test_large_body_then_pipelined_request(storage: str, tmp_path: object) -> None:
    data = os.urandom(9 * MIB + 123)
    kwargs = {"path": tmp_path} if storage == "filesystem" else {}
    with LocalServer(storage=storage, **kwargs) as server:  # type: ignore[arg-type]
        put = _put_head("/v1/objects/test/org=1/piped", len(data))
        get = b"GET /v1/objects/test/org=1/piped HTTP/1.1\r\nHost: x\r\n\r\n"
        (stored, _), (status, body) = _exchange(server.address, put + data + get, 2)
        assert stored in (200, 201)
        assert status == 200
        assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()


def test_large_body_after_100_continue(memory_server: LocalServer) -> None:
    data = os.urandom(3 * MIB)
    head = _put_head("/v1/objects/test/org=1/continued", len(data), b"Expect: 100-continue\r\n")
    with socket.create_connection(memory_server.address, timeout=10) as sock:
        sock.sendall(head)
        assert sock.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"  # before any body byte
        sock.sendall(data)
        status, _ = _read_response(sock, bytearray())
    assert status in (200, 201)
    assert call(memory_server.url, "GET", "/v1/objects/test/org=1/continued").body == data


def test_chunked_large_body_is_stored(memory_server: LocalServer) -> None:
    data = os.urandom(5 * MIB)
    pieces = [data[i : i + 300_000] for i in range(0, len(data), 300_000)]
    framed = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    head = (
        b"PUT /v1/objects/test/org=1/chunked-pipe HTTP/1.1\r\nHost: x\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    [(status, _)] = _exchange(memory_server.address, head + framed)
    assert status in (200, 201)
    got = call(memory_server.url, "GET", "/v1/objects/test/org=1/chunked-pipe")
    assert got.status == 200
    assert got.body == data


def test_unread_large_body_is_drained_and_the_connection_kept(auth_server: LocalServer) -> None:
    # auth enforced, no token: answered (400) without reading the body
    server = auth_server
    data = b"q" * (3 * MIB)
    put = _put_head("/v1/objects/test/org=1/denied", len(data))
    health = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    (status, body), (after, _) = _exchange(server.address, put + data + health, 2)
    assert status == 400
    assert b"No authorization token" in body
    assert after == 200  # answered on the same connection


def test_body_cut_short_stores_nothing(tmp_path: object) -> None:
    with LocalServer(storage="filesystem", path=tmp_path) as server:  # type: ignore[arg-type]
        path = "/v1/objects/test/org=1/cut-pipe"
        counters = server.service.counters
        before = counters.requests
        with socket.create_connection(server.address, timeout=30) as sock:
            sock.sendall(_put_head(path, 20 * MIB))
            sock.sendall(os.urandom(6 * MIB))
        _wait_until_ended(counters, before, 10)
        assert call(server.url, "GET", path).status == 404
        assert list(Path(str(tmp_path)).rglob(".*.tmp")) == []  # no temporary file left


def test_stalled_large_body_closes_the_connection_and_frees_the_thread(tmp_path: object) -> None:
    with LocalServer(storage="filesystem", path=tmp_path, idle_timeout=0.5) as server:  # type: ignore[arg-type]
        path = "/v1/objects/test/org=1/stalled"
        counters = server.service.counters
        before = counters.requests
        with socket.create_connection(server.address, timeout=10) as sock:
            sock.sendall(_put_head(path, 8 * MIB))
            sock.sendall(os.urandom(2 * MIB))  # then nothing more
            started = time.monotonic()
            assert sock.recv(1) == b""  # closed by the server, without an answer
            assert time.monotonic() - started < 5
        _wait_until_ended(counters, before, 5)
        assert counters.in_flight == 0  # the worker thread is free again
        assert call(server.url, "GET", path).status == 404
        assert list(Path(str(tmp_path)).rglob(".*.tmp")) == []


def test_a_slow_but_moving_body_is_not_cut() -> None:
    # pieces every 0.2 s against a 0.5 s stall timeout: stored whole
    with LocalServer(storage="memory", idle_timeout=0.5) as server:
        data = os.urandom(2 * MIB + 10)
        path = "/v1/objects/test/org=1/slow"
        with socket.create_connection(server.address, timeout=10) as sock:
            sock.sendall(_put_head(path, len(data)))
            for start in range(0, len(data), 512 * 1024):
                sock.sendall(data[start : start + 512 * 1024])
                time.sleep(0.2)
            status, _ = _read_response(sock, bytearray())
        assert status in (200, 201)
        assert call(server.url, "GET", path).body == data


def test_allocator_thresholds_are_set_in_a_server_process() -> None:
    # in a child: the thresholds are process-wide, and this is the test runner's
    code = "from django_objectstore.server.allocator import tune_allocator; print(tune_allocator())"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    expected = (
        "True"
        if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
        else "False"
    )
    assert done.stdout.strip() == expected


def test_concurrent_large_bodies_are_stored_byte_for_byte(tmp_path: object) -> None:
    # One read buffer serves every connection of the loop: six connections
    # sending at once must each store exactly their own bytes.
    bodies = {f"conc-{i}": os.urandom(6 * MIB + i * 4099) for i in range(6)}
    with LocalServer(storage="filesystem", path=tmp_path) as server:  # type: ignore[arg-type]

        def put(key: str) -> int:
            data = bodies[key]
            with socket.create_connection(server.address, timeout=30) as sock:
                sock.sendall(_put_head(f"/v1/objects/test/org=1/{key}", len(data)))
                for start in range(0, len(data), 200_000):  # interleave with the others
                    sock.sendall(data[start : start + 200_000])
                return _read_response(sock, bytearray())[0]

        statuses: list[int] = []
        threads = [threading.Thread(target=lambda k=k: statuses.append(put(k))) for k in bodies]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert len(statuses) == len(bodies)
        assert all(status in (200, 201) for status in statuses), statuses
        for key, data in bodies.items():
            got = call(server.url, "GET", f"/v1/objects/test/org=1/{key}")
            assert got.status == 200
            assert hashlib.sha256(got.body).digest() == hashlib.sha256(data).digest()
