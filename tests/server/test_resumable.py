"""Resumable uploads (section 20) over HTTP against the local server: every
status of the protocol, durability across a real restart, expiry, auth,
a superseded (stalled) writer, and the 501 / name-limit backend modes."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from django_objectstore.server import KeyConfig, LocalServer, routing
from django_objectstore.server.config import ConfigError
from django_objectstore.server.config_loader import config_from_env
from tests.server.helpers import (
    ALL_PERMISSIONS,
    MP,
    PUBLIC_PEM,
    FakeClock,
    Response,
    bearer,
    call,
    cli_server,
    mint,
)

OBJ = "/v1/objects/test/org=1"


@pytest.fixture(params=["memory", "filesystem"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalServer]:
    path = tmp_path if request.param == "filesystem" else None
    with LocalServer(storage=request.param, path=path, sweep_interval=None) as srv:
        yield srv


def create(url: str, key: str, length: int, headers: dict[str, str] | None = None) -> str:
    r = call(
        url,
        "PUT",
        f"{OBJ}/{key}?upload_type=resumable",
        b"",
        {"Upload-Length": str(length), **(headers or {})},
    )
    assert r.status == 200, r.body
    assert r.json()["key"] == key
    return str(r.json()["session"])


def chunk(
    url: str, key: str, token: str, offset: int | str, data: bytes, **headers: str
) -> Response:
    return call(
        url, "PUT", f"{OBJ}/{key}?session={token}", data, {"Upload-Offset": str(offset), **headers}
    )


def progress(url: str, key: str, token: str) -> Response:
    return call(url, "PUT", f"{OBJ}/{key}?session={token}", None, {"Upload-Offset": "*"})


def partial_chunk(
    url: str, key: str, token: str, offset: int, declared: int, data: bytes
) -> socket.socket:
    """Start a chunk that declares ``declared`` bytes but send only ``data``
    (the socket stays open: close it to simulate a dropped connection)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    head = (
        f"PUT {OBJ}/{key}?session={token} HTTP/1.1\r\nHost: x\r\n"
        f"Upload-Offset: {offset}\r\nContent-Length: {declared}\r\n\r\n"
    )
    sock.sendall(head.encode("ascii") + data)
    return sock


def wait_for(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def test_create_chunks_complete(server: LocalServer) -> None:
    url = server.url
    data = os.urandom(300_000)
    meta = {"Content-Type": "text/plain", "x-snme-origin": "t", "x-sn-expiration": "ttl:1d"}
    token = create(url, "k1", len(data), meta)
    assert len(token) >= 43  # 256 random bits
    r = chunk(url, "k1", token, 0, data[:100_000])
    assert r.status == 204
    assert r.header("upload-offset") == "100000"
    assert call(url, "GET", f"{OBJ}/k1").status == 404  # nothing visible before complete
    r = progress(url, "k1", token)
    assert (r.status, r.header("upload-offset")) == (204, "100000")
    r = chunk(url, "k1", token, 100_000, data[100_000:])
    assert r.status == 201
    assert r.json() == {"key": "k1"}
    got = call(url, "GET", f"{OBJ}/k1")
    assert got.status == 200
    assert got.body == data
    assert got.header("content-type") == "text/plain"
    assert got.header("x-snme-origin") == "t"
    assert got.header("x-sn-expiration") == "ttl:1d"
    # A lost 201 is recovered by asking for progress.
    assert progress(url, "k1", token).status == 201


def test_post_create_picks_key(server: LocalServer) -> None:
    r = call(server.url, "POST", f"{OBJ}/?upload_type=resumable", b"", {"Upload-Length": "3"})
    assert r.status == 200, r.body
    key, token = r.json()["key"], r.json()["session"]
    uuid.UUID(key)
    assert chunk(server.url, key, token, 0, b"abc").status == 201
    assert call(server.url, "GET", f"{OBJ}/{key}").body == b"abc"


def test_offset_mismatch_and_past_length(server: LocalServer) -> None:
    url = server.url
    token = create(url, "k2", 10)
    assert chunk(url, "k2", token, 0, b"01234").status == 204
    r = chunk(url, "k2", token, 3, b"34567")
    assert r.status == 409
    assert r.header("upload-offset") == "5"
    r = chunk(url, "k2", token, 7, b"x")
    assert (r.status, r.header("upload-offset")) == (409, "5")
    r = chunk(url, "k2", token, 5, b"567890")
    assert r.status == 400
    assert "Upload-Length of 10" in r.json()["detail"]
    assert chunk(url, "k2", token, 5, b"56789").status == 201
    assert call(url, "GET", f"{OBJ}/k2").body == b"0123456789"


def test_bad_requests(server: LocalServer) -> None:
    url = server.url
    for headers in ({}, {"Upload-Length": "0"}, {"Upload-Length": "-1"}, {"Upload-Length": "1.5"}):
        r = call(url, "PUT", f"{OBJ}/b?upload_type=resumable", b"", headers)
        assert r.status == 400, (headers, r.body)
    r = call(url, "PUT", f"{OBJ}/b?upload_type=resumable", b"body", {"Upload-Length": "4"})
    assert r.status == 400
    assert "empty body" in r.json()["detail"]
    r = call(url, "PUT", f"{OBJ}/b?upload_type=multipart", b"", {"Upload-Length": "4"})
    assert r.status == 400
    token = create(url, "b", 4)
    r = call(url, "PUT", f"{OBJ}/b?upload_type=resumable&session={token}", b"")
    assert r.status == 400
    assert "mutually exclusive" in r.json()["detail"]
    assert call(url, "PUT", f"{OBJ}/b?session={token}", b"ab").status == 400  # no Upload-Offset
    r = call(url, "PUT", f"{OBJ}/b?session={token}", b"ab", {"Upload-Offset": "x"})
    assert r.status == 400
    r = call(url, "PUT", f"{OBJ}/b?session={token}", b"ab", {"Upload-Offset": "*"})
    assert r.status == 400  # a progress request has no body
    r = call(url, "PUT", f"{OBJ}/b?session={token}", b"ab", {"Upload-Offset": "0"}, chunked=True)
    assert r.status == 400
    assert "Content-Length" in r.json()["detail"]
    assert chunk(url, "b", "not%20base64", 0, b"ab").status == 400
    r = call(
        url,
        "PUT",
        f"{OBJ}/b?upload_type=resumable",
        b"",
        {"Upload-Length": "4", "Content-Type": "bad"},
    )
    assert r.status == 400
    assert chunk(url, "b", token, 0, b"abcd").status == 201


def test_unknown_cancelled_and_foreign_sessions(server: LocalServer) -> None:
    url = server.url
    assert chunk(url, "c", "A" * 43, 0, b"x").status == 404
    assert progress(url, "c", "A" * 43).status == 404
    assert call(url, "DELETE", f"{OBJ}/c?session={'A' * 43}").status == 404
    token = create(url, "c", 10)
    assert progress(url, "other-key", token).status == 404  # bound to its object
    assert chunk(url, "c", token, 0, b"01234").status == 204
    assert call(url, "DELETE", f"{OBJ}/c?session={token}").status == 204
    assert chunk(url, "c", token, 5, b"56789").status == 410
    assert progress(url, "c", token).status == 410
    assert call(url, "DELETE", f"{OBJ}/c?session={token}").status == 410
    assert call(url, "GET", f"{OBJ}/c").status == 404  # cancelled leaves nothing


def test_expiry_with_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    with LocalServer(
        storage="filesystem",
        path=tmp_path,
        clock=clock,
        sweep_interval=None,
        resumable_session_ttl=timedelta(hours=1),
    ) as srv:
        url = srv.url
        token = create(url, "e", 10)
        assert chunk(url, "e", token, 0, b"01234").status == 204
        clock.advance(timedelta(minutes=59))
        assert progress(url, "e", token).status == 204
        clock.advance(timedelta(minutes=2))
        assert chunk(url, "e", token, 5, b"56789").status == 410
        assert progress(url, "e", token).status == 410
        sessions = list((tmp_path / "resumable").iterdir())
        assert len(sessions) == 1
        assert not (sessions[0] / "data").exists()  # bytes discarded at expiry
        stale = tmp_path / "resumable" / ".abc.0123.tmp"  # a create killed half-way
        stale.mkdir()
        os.utime(stale, (0, 0))
        fresh = tmp_path / "resumable" / ".def.4567.tmp"  # a create in progress
        fresh.mkdir()
        srv.sweep()
        assert list((tmp_path / "resumable").iterdir()) == [fresh]
        fresh.rmdir()
        assert progress(url, "e", token).status == 404
        assert call(url, "GET", f"{OBJ}/e").status == 404


def test_auth_on_every_request(tmp_path: Path) -> None:
    keys = {"test_kid": KeyConfig([PUBLIC_PEM], ALL_PERMISSIONS)}
    with LocalServer(storage="memory", auth_enforce=True, auth_keys=keys) as srv:
        url = srv.url
        rw = bearer(mint())
        ro = bearer(mint(permissions=["object.read"]))
        other_scope = bearer(mint(scopes={"org": "2"}))
        path = f"{OBJ}/a?upload_type=resumable"
        assert call(url, "PUT", path, b"", {"Upload-Length": "4"}).status == 400  # no token
        assert call(url, "PUT", path, b"", {"Upload-Length": "4", **ro}).status == 403
        assert call(url, "PUT", path, b"", {"Upload-Length": "4", **other_scope}).status == 403
        token = create(url, "a", 4, rw)
        for headers in ({}, ro, other_scope):
            status = chunk(url, "a", token, 0, b"ab", **headers).status
            assert status in (400, 403), headers
            r = call(
                url, "PUT", f"{OBJ}/a?session={token}", None, {"Upload-Offset": "*", **headers}
            )
            assert r.status in (400, 403)
            assert call(url, "DELETE", f"{OBJ}/a?session={token}", None, headers).status in (
                400,
                403,
            )
        assert chunk(url, "a", token, 0, b"abcd", **rw).status == 201
        assert call(url, "GET", f"{OBJ}/a", None, rw).body == b"abcd"


def test_dropped_connection_keeps_received_bytes(server: LocalServer) -> None:
    url = server.url
    data = os.urandom(2_000_000)
    token = create(url, "d", len(data))
    sock = partial_chunk(url, "d", token, 0, len(data), data[:700_000])
    time.sleep(0.2)
    sock.close()

    def settled() -> bool:
        return progress(url, "d", token).header("upload-offset") == "700000"

    wait_for(settled)
    assert chunk(url, "d", token, 700_000, data[700_000:]).status == 201
    assert call(url, "GET", f"{OBJ}/d").body == data


def test_progress_right_after_a_drop_counts_every_byte(tmp_path: Path) -> None:
    """A progress request that comes while the broken-off chunk write is
    still winding down waits for it: the answer counts every byte that
    arrived (also those the HTTP layer still held when the connection went)."""
    with LocalServer(storage="filesystem", path=tmp_path, sweep_interval=None) as srv:
        data = os.urandom(3_000_000)
        token = create(srv.url, "w", len(data))
        sock = partial_chunk(srv.url, "w", token, 0, len(data), data[:1_500_000])
        held = tmp_path / "resumable"

        def writing() -> bool:  # the chunk write runs: it has written bytes
            return any(f.stat().st_size for f in held.glob("*/data"))

        wait_for(writing)
        sock.close()
        answer = progress(srv.url, "w", token)  # at once, no waiting
        assert answer.header("upload-offset") == "1500000"
        assert chunk(srv.url, "w", token, 1_500_000, data[1_500_000:]).status == 201
        assert call(srv.url, "GET", f"{OBJ}/w").body == data


def test_stalled_writer_is_superseded(server: LocalServer) -> None:
    """A request that stalls mid-chunk must not write after a later request
    on the session took over."""
    url = server.url
    data = os.urandom(1_000_000)
    token = create(url, "s", len(data))
    sock = partial_chunk(url, "s", token, 0, len(data), data[:400_000])
    try:
        time.sleep(0.3)
        held = int(progress(url, "s", token).header("upload-offset") or "-1")
        assert 0 <= held <= 400_000
        # The chunk write takes the session over: the stalled writer's later
        # bytes must not land in it.
        assert chunk(url, "s", token, held, data[held:]).status == 201
        try:
            sock.sendall(b"\xff" * 600_000)  # the stale request goes on: ignored
            answer = sock.recv(4096)
        except OSError:
            answer = b""  # the server closed the stale connection instead
        assert answer == b"" or answer.startswith(b"HTTP/1.1 409") or b" 201 " in answer
    finally:
        sock.close()
    assert call(url, "GET", f"{OBJ}/s").body == data


def test_restart_keeps_offsets(tmp_path: Path) -> None:
    """A real restart of the command-line server, killed with SIGKILL while
    a chunk is half received: the bytes it received are resumed from."""
    data = os.urandom(3_000_000)
    env = {"OS__STORAGE__PATH": str(tmp_path / "data"), "OS__AUTH__ENFORCE": "false"}
    with cli_server(tmp_path, env) as (proc, url):
        token = create(url, "r", len(data))
        assert chunk(url, "r", token, 0, data[:1_000_000]).status == 204
        sock = partial_chunk(url, "r", token, 1_000_000, 2_000_000, data[1_000_000:2_500_000])
        data_files = list((tmp_path / "data" / "resumable").glob("*/data"))
        assert len(data_files) == 1
        # The server writes what it reads, a block at a time: wait for a block.
        wait_for(lambda: data_files[0].stat().st_size > 1_000_000)
        time.sleep(0.2)
        held = data_files[0].stat().st_size
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        sock.close()
    with cli_server(tmp_path, env) as (proc, url):
        r = progress(url, "r", token)
        assert (r.status, r.header("upload-offset")) == (204, str(held))
        assert chunk(url, "r", token, held, data[held:]).status == 201
        assert call(url, "GET", f"{OBJ}/r").body == data
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def test_restart_of_local_server(tmp_path: Path) -> None:
    data = os.urandom(500_000)
    with LocalServer(storage="filesystem", path=tmp_path, sweep_interval=None) as srv:
        token = create(srv.url, "l", len(data), {"x-snme-k": "v"})
        assert chunk(srv.url, "l", token, 0, data[:200_000]).status == 204
    with LocalServer(storage="filesystem", path=tmp_path, sweep_interval=None) as srv:
        assert progress(srv.url, "l", token).header("upload-offset") == "200000"
        assert chunk(srv.url, "l", token, 200_000, data[200_000:]).status == 201
        got = call(srv.url, "GET", f"{OBJ}/l")
        assert got.body == data
        assert got.header("x-snme-k") == "v"


# -- backend modes ------------------------------------------------------------------


def test_no_multipart_and_no_resumable_modes() -> None:
    with LocalServer(storage="memory", multipart=False, resumable=False) as srv:
        url = srv.url
        r = call(url, "PUT", f"{MP}/k", b"")
        assert r.status == 501
        assert r.json() == {"detail": "service error: not implemented"}
        assert call(url, "POST", f"{MP}/", b"").status == 501
        r = call(
            url, "PUT", "/v1/objects:multipart:parts/test/org=1/k?upload_id=x&part_number=1", b"a"
        )
        assert r.status == 501
        r = call(
            url,
            "POST",
            "/v1/objects:multipart:complete/test/org=1/k?upload_id=x",
            b'{"parts":[]}',
            {"Content-Type": "application/json"},
        )
        assert r.status == 200
        assert r.json() == {
            "error": {"code": "internal error", "message": "service error: not implemented"}
        }
        r = call(url, "PUT", f"{OBJ}/k?upload_type=resumable", b"", {"Upload-Length": "3"})
        assert r.status == 501
        assert call(url, "PUT", f"{OBJ}/k", b"abc").status == 200  # plain puts still work
        assert call(url, "GET", f"{OBJ}/k").body == b"abc"


def test_gcs_name_limit_mode() -> None:
    with LocalServer(storage="memory", name_limit="gcs") as srv:
        url = srv.url
        prefix = len("test/org.1/objects/")
        fits = "k" * (1024 - prefix)
        assert call(url, "PUT", f"{OBJ}/{fits}", b"x").status == 200
        r = call(url, "PUT", f"{OBJ}/{fits}k", b"x")
        assert r.status == 500
        assert "1025 bytes" in r.json()["detail"]
        assert "1024-byte limit" in r.json()["detail"]
        long_key = "é" * 2500  # 5,000 bytes of UTF-8
        assert call(url, "GET", f"{OBJ}/{'k' * 5000}").status == 500
        r = call(
            url,
            "PUT",
            f"{OBJ}/{'%C3%A9' * 2500}?upload_type=resumable",
            b"",
            {"Upload-Length": "1"},
        )
        assert r.status == 500
        assert len(long_key.encode()) == 5000
        assert call(url, "PUT", f"{MP}/{'k' * 5000}", b"").status == 500
    with LocalServer(storage="memory") as srv:  # default: no limit
        assert call(srv.url, "PUT", f"{OBJ}/{'k' * 5000}", b"x").status == 200


def test_mode_config_from_env() -> None:
    config = config_from_env(
        {
            "OS__MULTIPART__ENABLED": "false",
            "OS__RESUMABLE__ENABLED": "false",
            "OS__RESUMABLE__SESSION_TTL": "2h",
            "OS__STORAGE__NAME_LIMIT": "gcs",
        }
    )
    assert (config.multipart, config.resumable, config.name_limit) == (False, False, "gcs")
    assert config.resumable_session_ttl == timedelta(hours=2)
    defaults = config_from_env({})
    assert (defaults.multipart, defaults.resumable, defaults.name_limit) == (True, True, None)
    assert defaults.resumable_session_ttl == timedelta(days=7)
    for name, value in (
        ("OS__MULTIPART__ENABLED", "maybe"),
        ("OS__RESUMABLE__SESSION_TTL", "0s"),
        ("OS__RESUMABLE__SESSION_TTL", "soon"),
        ("OS__STORAGE__NAME_LIMIT", "s3"),
    ):
        with pytest.raises(ConfigError, match=name):
            config_from_env({name: value})


def test_cli_modes(tmp_path: Path) -> None:
    env = {
        "OS__STORAGE__TYPE": "memory",
        "OS__AUTH__ENFORCE": "false",
        "OS__MULTIPART__ENABLED": "false",
        "OS__STORAGE__NAME_LIMIT": "gcs",
    }
    with cli_server(tmp_path, env) as (proc, url):
        assert call(url, "PUT", f"{MP}/k", b"").status == 501
        assert call(url, "PUT", f"{OBJ}/{'k' * 2000}", b"x").status == 500
        token = create(url, "k", 2)
        assert chunk(url, "k", token, 0, b"ok").status == 201
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def test_server_memory_bounded(tmp_path: Path) -> None:
    """A 64 MiB upload in two chunks and its completion: the server holds
    no more than a few blocks at a time."""
    total = 64 * 1024 * 1024
    block = os.urandom(1024 * 1024)
    with LocalServer(storage="filesystem", path=tmp_path, sweep_interval=None) as srv:
        token = create(srv.url, "big", total)
        host, port = srv.url.removeprefix("http://").rsplit(":", 1)
        tracemalloc.start()
        try:
            for offset in (0, total // 2):
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
                conn.request(
                    "PUT",
                    f"{OBJ}/big?session={token}",
                    body=(block for _ in range(32)),
                    headers={"Upload-Offset": str(offset), "Content-Length": str(total // 2)},
                )
                status = conn.getresponse().status
                conn.close()
                assert status == (204 if offset == 0 else 201)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 16 * 1024 * 1024, peak
        got = call(srv.url, "HEAD", f"{OBJ}/big")
        assert got.header("x-sn-size") == str(total)


def test_two_servers_share_sessions(tmp_path: Path) -> None:
    """Sessions live in the folder, locked per session: any server (or
    worker process) on the same folder continues them."""
    data = os.urandom(300_000)
    with (
        LocalServer(storage="filesystem", path=tmp_path, sweep_interval=None) as one,
        LocalServer(storage="filesystem", path=tmp_path, sweep_interval=None) as two,
    ):
        token = create(one.url, "two", len(data))
        assert chunk(two.url, "two", token, 0, data[:100_000]).status == 204
        assert progress(one.url, "two", token).header("upload-offset") == "100000"
        assert chunk(one.url, "two", token, 0, data[:100_000]).status == 409
        assert chunk(two.url, "two", token, 100_000, data[100_000:]).status == 201
        assert progress(one.url, "two", token).status == 201
        assert call(one.url, "GET", f"{OBJ}/two").body == data


def test_resumable_requests_run_on_a_worker_thread() -> None:
    """They wait for a session's lock and sync its files: never on the event
    loop, whatever the backend (plain puts of small bodies may be)."""
    for method, path, query in (
        ("PUT", f"{OBJ}/k", "session=abc"),
        ("DELETE", f"{OBJ}/k", "session=abc"),
        ("PUT", f"{OBJ}/k", "upload_type=resumable"),
        ("POST", f"{OBJ}/", "upload_type=resumable"),
    ):
        endpoint = routing.resolve(method, path, query).endpoint
        assert endpoint is not None
        assert endpoint.blocking, (method, query)
    plain = routing.resolve("PUT", f"{OBJ}/k", "").endpoint
    assert plain is not None
    assert not plain.blocking
    assert (
        routing.resolve("GET", f"{OBJ}/k", "session=abc").endpoint
        == routing.resolve("GET", f"{OBJ}/k").endpoint
    )
