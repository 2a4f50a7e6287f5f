"""16 threads writing, reading and deleting shared and distinct keys: no
errors and no torn reads (every payload verifies against its own seed)."""

from __future__ import annotations

import hashlib
import http.client
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django_objectstore.server import LocalServer

THREADS = 16
ROUNDS = 50
SHARED = [f"shared-{n}" for n in range(4)]


def make_payload(rng: random.Random) -> bytes:
    seed = os.urandom(8)
    size = rng.choice([0, 1, 100, 70_000, 262_144, 300_001])
    return seed + size.to_bytes(4, "big") + hashlib.shake_128(seed).digest(size)


def verify(payload: bytes) -> None:
    seed, size = payload[:8], int.from_bytes(payload[8:12], "big")
    assert len(payload) == 12 + size, "torn read: wrong length"
    assert payload[12:] == hashlib.shake_128(seed).digest(size), "torn read: mixed content"


def worker(server: LocalServer, index: int, scope: str) -> int:
    rng = random.Random(index)
    host, port = server.address
    conn = http.client.HTTPConnection(host, port, timeout=30)
    checked = 0
    try:
        own = f"own-{index}"
        for _ in range(ROUNDS):
            key = rng.choice([*SHARED, own])
            action = rng.choices(["put", "get", "delete"], [4, 5, 1])[0]
            path = f"/v1/objects/test/{scope}/{key}"
            if action == "put":
                body = make_payload(rng)
                conn.request("PUT", path, body=body)
                response = conn.getresponse()
                response.read()
                assert response.status == 200
                if key == own:
                    conn.request("GET", path)
                    response = conn.getresponse()
                    assert response.read() == body
                    checked += 1
            elif action == "get":
                conn.request("GET", path)
                response = conn.getresponse()
                data = response.read()
                assert response.status in (200, 404)
                if response.status == 200:
                    assert response.getheader("x-sn-size") == str(len(data))
                    verify(data)
                    checked += 1
            else:
                conn.request("DELETE", path)
                response = conn.getresponse()
                response.read()
                assert response.status == 204
    finally:
        conn.close()
    return checked


def hammer(server: LocalServer) -> None:
    scope = f"run={os.urandom(4).hex()}"
    started = time.monotonic()
    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(worker, server, n, scope) for n in range(THREADS)]
        checked = sum(f.result(timeout=60) for f in futures)
    assert checked > THREADS  # reads really happened and verified
    assert time.monotonic() - started < 60


def test_concurrent_memory(memory_server: LocalServer) -> None:
    hammer(memory_server)


def test_concurrent_filesystem(fs_server: LocalServer) -> None:
    hammer(fs_server)
    assert not list(fs_server.service.backend.root.rglob("*.tmp"))  # type: ignore[attr-defined]


def test_slow_client_does_not_block_others(memory_server: LocalServer) -> None:
    host, port = memory_server.address
    import socket

    with socket.create_connection((host, port)) as slow:
        slow.sendall(b"PUT /v1/objects/test/org=1/slow HTTP/1.1\r\nContent-Length: 10\r\n\r\nab")
        conn = http.client.HTTPConnection(host, port, timeout=5)
        try:
            started = time.monotonic()
            conn.request("GET", "/health")
            assert conn.getresponse().read() == b"OK"
            assert time.monotonic() - started < 1
        finally:
            conn.close()
        slow.sendall(b"cdefghij")
        assert b"200 OK" in slow.recv(4096)
    assert threading.active_count() < 100
