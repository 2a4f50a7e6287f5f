"""Bad input and broken clients, over raw sockets: the server never crashes,
never keeps a partial object and never leaves a temporary file behind."""

from __future__ import annotations

import os
import socket
import struct
import time
import uuid
from pathlib import Path

import pytest

from django_objectstore.server import LocalServer
from django_objectstore.server.backend_fs_writer import FileWriter
from tests.server.helpers import call

OBJ = "/v1/objects/test/org=1"


def connect(server: LocalServer) -> socket.socket:
    host, port = server.address
    sock = socket.create_connection((host, port), timeout=10)
    return sock


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def temp_files(root: Path) -> list[Path]:
    return list(root.rglob("*.tmp"))


def wait_for(predicate: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


def head(path: str, extra: str) -> bytes:
    return f"PUT {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()


@pytest.mark.parametrize(
    "body",
    [
        b"Transfer-Encoding: chunked\r\n\r\n100\r\n" + b"a" * 10,  # inside a chunk
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",  # no terminating chunk
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n",  # no end of trailers
        b"Content-Length: 1000\r\n\r\n" + b"a" * 10,  # shorter than declared
    ],
    ids=["mid-chunk", "no-last-chunk", "no-trailer-end", "short-content-length"],
)
def test_truncated_upload_leaves_nothing(
    fs_server: LocalServer, fs_root: Path, body: bytes
) -> None:
    key = f"trunc-{uuid.uuid4().hex}"
    head_line, _, rest = body.partition(b"\r\n\r\n")
    with connect(fs_server) as sock:
        sock.sendall(head(f"{OBJ}/{key}", head_line.decode() + "\r\n") + rest)
        sock.shutdown(socket.SHUT_WR)
        response = read_all(sock)  # the server closes once it gave up on the body
    assert response == b"" or response.startswith(b"HTTP/1.1 400")
    assert call(fs_server.url, "GET", f"{OBJ}/{key}").status == 404
    assert wait_for(lambda: not temp_files(fs_root))


def test_reset_mid_upload_leaves_nothing(fs_server: LocalServer, fs_root: Path) -> None:
    key = f"reset-{uuid.uuid4().hex}"
    sock = connect(fs_server)
    sock.sendall(head(f"{OBJ}/{key}", "Transfer-Encoding: chunked\r\n"))
    sock.sendall(b"10000\r\n" + b"x" * 30000)
    assert wait_for(lambda: bool(temp_files(fs_root)))  # the upload is in flight
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # RST
    assert wait_for(lambda: not temp_files(fs_root))
    assert call(fs_server.url, "GET", f"{OBJ}/{key}").status == 404


def test_truncated_part_not_listed(memory_server: LocalServer) -> None:
    key = f"part-{uuid.uuid4().hex}"
    uid = call(memory_server.url, "PUT", f"/v1/objects:multipart/test/org=1/{key}").json()[
        "upload_id"
    ]
    path = f"/v1/objects:multipart:parts/test/org=1/{key}?upload_id={uid}&part_number=1"
    with connect(memory_server) as sock:
        sock.sendall(head(path, "Content-Length: 100\r\n") + b"abc")
        sock.shutdown(socket.SHUT_WR)
        read_all(sock)
    listing = call(
        memory_server.url, "GET", f"/v1/objects:multipart:parts/test/org=1/{key}?upload_id={uid}"
    )
    assert listing.json()["parts"] == []


@pytest.mark.parametrize("size", [b"zz", b"0x5", b"+5", b"5_0", b"-5", b""])
def test_bad_chunk_size_is_400(memory_server: LocalServer, size: bytes) -> None:
    key = f"bad-{uuid.uuid4().hex}"
    with connect(memory_server) as sock:
        sock.sendall(
            head(f"{OBJ}/{key}", "Transfer-Encoding: chunked\r\n")
            + size
            + b"\r\nhello\r\n0\r\n\r\n"
        )
        response = read_all(sock)
    assert response.startswith(b"HTTP/1.1 400")
    assert call(memory_server.url, "GET", f"{OBJ}/{key}").status == 404


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"\x00\x01\x02\r\n\r\n",
        b"PUT /v1/objects/test/org=1/k HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"GET /v1/objects/test/org=1/k HTTP/1.1\r\n" + b"X-A: b\r\n" * 150 + b"\r\n",
        b"GET /v1/objects/test/org=1/" + b"k" * 70000 + b" HTTP/1.1\r\n\r\n",
    ],
    ids=["garbage", "version", "binary", "bad-length", "many-headers", "long-uri"],
)
def test_malformed_requests(memory_server: LocalServer, raw: bytes) -> None:
    with connect(memory_server) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        response = read_all(sock)
    status = int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/") else 0
    assert 400 <= status <= 505 or response == b""
    assert call(memory_server.url, "GET", "/health").status == 200


def test_keep_alive_pipelining_and_drain(memory_server: LocalServer) -> None:
    key = f"ka-{uuid.uuid4().hex}"
    requests = (
        head(f"{OBJ}/{key}", "Content-Length: 5\r\n")
        + b"hello"
        # rejected before its body is read: the body must be drained
        + head(f"{OBJ}/{key}-x", "Content-Length: 3\r\nContent-Type: bad type\r\n")
        + b"abc"
        + f"GET {OBJ}/{key} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    )
    with connect(memory_server) as sock:
        sock.sendall(requests)
        response = read_all(sock)
    assert response.count(b"HTTP/1.1 ") == 3
    assert b"HTTP/1.1 400" in response
    assert response.endswith(b"content-length: 5\r\nconnection: close\r\n\r\nhello")


def test_expect_continue(memory_server: LocalServer) -> None:
    key = f"exp-{uuid.uuid4().hex}"
    with connect(memory_server) as sock:
        sock.sendall(head(f"{OBJ}/{key}", "Content-Length: 2\r\nExpect: 100-continue\r\n"))
        assert sock.recv(1024).startswith(b"HTTP/1.1 100")
        sock.sendall(b"ok")
        assert b"HTTP/1.1 200" in sock.recv(1024)
    assert call(memory_server.url, "GET", f"{OBJ}/{key}").body == b"ok"


def test_no_tokens_in_logs(auth_server: LocalServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="django_objectstore.server")
    secret = "eyJhbGciOiJFZERTQSJ9.secret-token-value.sig"
    call(auth_server.url, "GET", f"{OBJ}/k?os_auth={secret}&x=1")
    call(
        auth_server.url, "GET", f"{OBJ}/k?os_kid=a&os_sig=topsecretsig&os_timestamp=1&os_duration=1"
    )
    call(auth_server.url, "GET", f"{OBJ}/k", headers={"Authorization": f"Bearer {secret}"})
    text = caplog.text
    assert "secret-token-value" not in text
    assert "topsecretsig" not in text
    assert "os_auth=[redacted]&x=1" in text
    assert "GET /v1/objects/test/org=1/k" in text


@pytest.mark.parametrize(
    "name", ["os_auth", "os%5Fauth", "os%5fauth", "%6Fs_auth", "OS_AUTH", "os_auth%20", "os%5Fsig"]
)
def test_no_token_in_logs_for_any_spelling(
    auth_server: LocalServer, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    # The query parser decodes parameter names, so redaction compares them decoded.
    caplog.set_level("INFO", logger="django_objectstore.server")
    secret = "eyJhbGciOiJFZERTQSJ9.eyJzZWNyZXQiOjF9.c2lnbmF0dXJl"
    call(auth_server.url, "GET", f"{OBJ}/k?{name}={secret}&x=1")
    assert f"?{name}=[redacted]&x=1" in caplog.text
    assert secret not in caplog.text
    assert "eyJzZWNyZXQiOjF9" not in caplog.text


def test_restart_keeps_objects_and_removes_stale_temp_files(tmp_path: Path) -> None:
    with LocalServer(storage="filesystem", path=tmp_path) as server:
        call(server.url, "PUT", f"{OBJ}/persist", b"still here", {"x-snme-a": "b"})
    stale = tmp_path / "objects" / "ab" / ".leftover.1234.tmp"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"partial")
    os.utime(stale, (time.time() - 60, time.time() - 60))  # left by a process long gone
    with LocalServer(storage="filesystem", path=tmp_path) as server:
        r = call(server.url, "GET", f"{OBJ}/persist")
        assert (r.status, r.body, r.header("x-snme-a")) == (200, b"still here", "b")
    assert not stale.exists()


def test_two_servers_share_a_folder(tmp_path: Path) -> None:
    """A second server starting on the folder of a running one must not remove
    the first one's in-flight temporary files: the upload in progress on the
    first completes and both serve it."""
    size = 4 * 1024 * 1024
    with LocalServer(storage="filesystem", path=tmp_path) as first:
        host, port = first.address
        with socket.create_connection((host, port), timeout=30) as sock:
            sock.sendall(
                b"PUT %s/shared HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n\r\n" % (OBJ.encode(), size) + b"a" * (size // 2)
            )
            assert wait_for(lambda: len(temp_files(tmp_path)) == 1)
            in_flight = temp_files(tmp_path)[0]
            os.utime(in_flight, (time.time() - 60, time.time() - 60))  # old, but locked
            with LocalServer(storage="filesystem", path=tmp_path) as second:
                assert in_flight.exists()
                sock.sendall(b"a" * (size // 2))
                assert read_all(sock).startswith(b"HTTP/1.1 200")
                assert call(second.url, "GET", f"{OBJ}/shared").body == b"a" * size
        assert call(first.url, "GET", f"{OBJ}/shared").body == b"a" * size
    assert not temp_files(tmp_path)


def test_disk_full_mid_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Fault injection (a real disk cannot be filled on demand): the write
    fails half-way, the client gets a 500, no object and no temp file remain,
    and the server keeps serving."""
    real_write = FileWriter.write
    calls = {"n": 0}

    def failing_write(self: FileWriter, data: bytes | bytearray | memoryview) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        real_write(self, data)

    monkeypatch.setattr(FileWriter, "write", failing_write)
    caplog.set_level("ERROR", logger="django_objectstore.server")
    with LocalServer(storage="filesystem", path=tmp_path) as server:
        r = call(server.url, "PUT", f"{OBJ}/full", b"x" * 8_000_000)
        assert r.status == 500
        assert r.json()["detail"].startswith("service error")
        assert call(server.url, "GET", f"{OBJ}/full").status == 404
        assert not temp_files(tmp_path)
        assert call(server.url, "GET", "/health").status == 200
    assert "No space left" in caplog.text


def test_client_reset_between_requests_is_logged_not_printed(
    memory_server: LocalServer, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level("DEBUG", logger="django_objectstore.server")
    with connect(memory_server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        # Close with a reset while the server waits for the next request.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert wait_for(lambda: any("ended" in r.getMessage() for r in caplog.records))
    assert "Traceback" not in capfd.readouterr().err
    assert call(memory_server.url, "GET", "/health").status == 200
