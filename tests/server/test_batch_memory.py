"""The batch endpoint streams both ways: peak memory of a server process
stays flat for a 128 MiB request and for 200,000 parts (whose answer is
~45 MiB), also when the client sends everything before reading anything."""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.helpers import cli_server

BOUNDARY = "b"
MIB = 1024 * 1024
# Growth of the server's peak RSS allowed for one batch. Before streaming,
# the 128 MiB body cost +505 MiB and the 200,000 parts +185 MiB.
ALLOWED_GROWTH = 48 * MIB


def peak_rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    assert match is not None
    return int(match.group(1)) * 1024


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, str]]:
    env = {"OS__STORAGE__PATH": str(tmp_path / "data"), "OS__STORAGE__FSYNC": "false"}
    with cli_server(tmp_path, env) as (proc, url):
        yield proc.pid, url


def post_batch(url: str, body: Iterator[bytes], length: int) -> tuple[int, int, bytes]:
    """Send the whole body, then read the answer: (status, parts, tail)."""
    host, _, port = url.removeprefix("http://").rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    try:
        conn.putrequest("POST", "/v1/objects:batch/test/org=1/")
        conn.putheader("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")
        conn.putheader("Content-Length", str(length))
        conn.endheaders()
        for block in body:
            conn.send(block)
        response = conn.getresponse()
        marker = b"x-sn-batch-operation-index: "
        window = b""
        parts = 0
        tail = b""
        while block := response.read(MIB):
            window = tail + block
            parts += window.count(marker) - tail.count(marker)
            tail = window[-(len(marker) - 1) :]
        return response.status, parts, window[-200:]
    finally:
        conn.close()


def insert_parts(count: int, size: int) -> tuple[Iterator[bytes], int]:
    head = b"--%s\r\nx-sn-batch-operation-kind: insert\r\nx-sn-batch-operation-key: k%%d\r\n\r\n"
    payload = b"p" * size

    def blocks() -> Iterator[bytes]:
        for index in range(count):
            yield head % BOUNDARY.encode() % index
            yield payload
            yield b"\r\n"
        yield b"--%s--\r\n" % BOUNDARY.encode()

    length = sum(len(b) for b in blocks()) if count < 1000 else -1
    return blocks(), length


@pytest.mark.slow
def test_large_body_in_bounded_memory(server: tuple[int, str]) -> None:
    pid, url = server
    warm, length = insert_parts(2, MIB)
    assert post_batch(url, warm, length)[:2] == (200, 2)
    before = peak_rss(pid)
    # 120 inserts of 1 MiB (stored) and one 8 MiB part (413): 128 MiB.
    blocks, length = insert_parts(120, MIB)
    big_head = b"--b\r\nx-sn-batch-operation-kind: insert\r\nx-sn-batch-operation-key: big\r\n\r\n"

    def body() -> Iterator[bytes]:
        for block in blocks:
            if block.startswith(b"--b--"):
                yield big_head
                yield b"q" * (8 * MIB)
                yield b"\r\n"
            yield block

    total = length + len(big_head) + 8 * MIB + 2
    status, parts, tail = post_batch(url, body(), total)
    assert (status, parts) == (200, 121)
    assert tail.endswith(b"--")
    growth = peak_rss(pid) - before
    assert growth < ALLOWED_GROWTH, f"peak RSS grew by {growth / MIB:.0f} MiB"


@pytest.mark.slow
def test_many_parts_in_bounded_memory(server: tuple[int, str]) -> None:
    pid, url = server
    empty = b"\r\n--b\r\n\r\n"
    count = 200_000
    body = b"--b\r\n\r\n" + empty * (count - 1) + b"\r\n--b--\r\n"
    warm = post_batch(url, iter([b"--b\r\n\r\n\r\n--b--"]), len(b"--b\r\n\r\n\r\n--b--"))
    assert warm[:2] == (200, 1)
    before = peak_rss(pid)
    status, parts, tail = post_batch(url, iter([body]), len(body))
    assert (status, parts) == (200, count)
    assert tail.endswith(b"--")
    growth = peak_rss(pid) - before
    assert growth < ALLOWED_GROWTH, f"peak RSS grew by {growth / MIB:.0f} MiB"
