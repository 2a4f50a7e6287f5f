"""Large puts against a server whose backend has no multipart (it answers
501, as the real server's S3-compatible and BigTable backends do): the put
falls back to one request, stores the object once, leaves no upload behind,
and later puts of the same client and usecase skip the multipart probe.

A loopback proxy in front of the local server answers 501 to the multipart
requests it is told to refuse and forwards everything else."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from django_objectstore.client import Client, RequestError, SecretKey, Usecase
from django_objectstore.server import LocalServer

from .rawserver import ForwardingServer
from .test_parallel import payload

KIB = 1024
NOT_IMPLEMENTED = json.dumps({"detail": "service error: not implemented"}).encode()


def answer(status: int, body: bytes) -> bytes:
    return (
        f"HTTP/1.1 {status} Status\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


class NoMultipart(ForwardingServer):
    """Answers 501 to multipart requests whose resource starts with
    ``refused`` (``objects:multipart`` refuses them all)."""

    def __init__(self, upstream: str, refused: str = "objects:multipart") -> None:
        super().__init__(upstream)
        self.refused = f"/v1/{refused}"

    def refuse(self, method: str, target: str) -> bytes | None:
        if target.startswith(self.refused):
            return answer(501, NOT_IMPLEMENTED)
        return None

    def requests(self, resource: str) -> list[tuple[str, int | None]]:
        return [(m, s) for m, t, s in self.log if t.startswith(f"/v1/{resource}/")]


@pytest.fixture
def proxy(server: LocalServer) -> Iterator[NoMultipart]:
    with NoMultipart(server.url) as running:
        yield running


def small_client(url: str, secret_key: SecretKey) -> Client:
    return Client(
        url, token=secret_key, multipart_threshold=256 * KIB, multipart_part_size=64 * KIB
    )


@pytest.mark.usefixtures("allow_small_parts")
def test_501_at_initiation_falls_back_to_one_request_and_is_remembered(
    proxy: NoMultipart, server: LocalServer, secret_key: SecretKey, org: int
) -> None:
    data = payload(600 * KIB)  # compressible, above the threshold
    with small_client(proxy.url, secret_key) as client:
        session = client.session(Usecase("test"), org=org)
        key = session.put(data, key="big")
        assert key == "big"
        # One initiation answered 501, then the object in one plain request.
        assert proxy.requests("objects:multipart") == [("PUT", 501)]
        assert proxy.requests("objects") == [("PUT", 200)]
        # Later puts of this client and usecase skip the probe.
        session.put(io.BytesIO(data), key="again")
        other = client.session(Usecase("test"), org=org, part="other")
        other.put(data, key="third")
        assert proxy.requests("objects:multipart") == [("PUT", 501)]
        assert [s for _, s in proxy.requests("objects")] == [200, 200, 200]
        # Another usecase probes once for itself.
        client.session(Usecase("other"), org=org).put(data, key="fourth")
        assert proxy.requests("objects:multipart") == [("PUT", 501), ("PUT", 501)]
    # Stored once each, whole, read straight from the server.
    with Client(server.url, token=secret_key) as direct:
        session = direct.session(Usecase("test"), org=org)
        for name in ("big", "again"):
            got = session.get(name)
            assert got is not None
            with got.payload as stream:
                assert stream.read() == data
        assert direct.session(Usecase("test"), org=org, part="other").get("third") is not None


@pytest.mark.usefixtures("allow_small_parts")
def test_a_new_client_probes_again(proxy: NoMultipart, secret_key: SecretKey, org: int) -> None:
    data = payload(300 * KIB)
    for _ in range(2):
        with small_client(proxy.url, secret_key) as client:
            client.session(Usecase("test"), org=org).put(data)  # server-chosen key: POST
    assert proxy.requests("objects:multipart") == [("POST", 501), ("POST", 501)]


@pytest.mark.usefixtures("allow_small_parts")
@pytest.mark.parametrize("kind", ["bytes", "file"])
def test_501_on_a_part_aborts_rewinds_and_falls_back(
    server: LocalServer, secret_key: SecretKey, org: int, kind: str
) -> None:
    # A backend that accepts the initiation but refuses parts: parts may
    # already have been read from the input when the 501 arrives.
    data = payload(700 * KIB)
    source: bytes | io.BytesIO = data
    if kind == "file":
        source = io.BytesIO(b"prefix" + data)
        source.seek(6)
    with (
        NoMultipart(server.url, refused="objects:multipart:parts") as proxy,
        small_client(proxy.url, secret_key) as client,
    ):
        session = client.session(Usecase("test"), org=org)
        key = session.put(source, key=f"parts-{kind}")
        initiations = [r for r in proxy.requests("objects:multipart") if r[0] == "PUT"]
        aborts = [r for r in proxy.requests("objects:multipart") if r[0] == "DELETE"]
        assert initiations == [("PUT", 200)]
        assert aborts == [("DELETE", 204)]  # the upload was aborted: no orphan
        assert proxy.requests("objects:multipart:complete") == []
        assert proxy.requests("objects") == [("PUT", 200)]
        got = session.get(key)
        assert got is not None
        with got.payload as stream:
            assert stream.read() == data


@pytest.mark.usefixtures("allow_small_parts")
def test_uncompressed_and_incompressible_inputs(
    proxy: NoMultipart, server: LocalServer, secret_key: SecretKey, org: int
) -> None:
    text = payload(400 * KIB)
    noise = os.urandom(400 * KIB)
    with small_client(proxy.url, secret_key) as client:
        session = client.session(Usecase("test"), org=org)
        # Incompressible inputs never use multipart: no probe.
        session.put(noise, key="noise")
        assert proxy.requests("objects:multipart") == []
        session.put(io.BytesIO(text), key="plain", compress="none")
        assert proxy.requests("objects:multipart") == [("PUT", 501)]
    with Client(server.url, token=secret_key) as direct:
        session = direct.session(Usecase("test"), org=org)
        for name, expected in (("noise", noise), ("plain", text)):
            got = session.get(name)
            assert got is not None
            with got.payload as stream:
                assert stream.read() == expected


class Unrewindable(io.BytesIO):
    """A file that can say its size but cannot seek once read from."""

    started = False

    def read(self, size: int | None = -1) -> bytes:
        self.started = True
        return super().read(size)

    def readinto(self, buffer: Any) -> int:
        self.started = True
        return super().readinto(buffer)

    def seek(self, offset: int, whence: int = 0) -> int:
        if self.started:
            raise OSError("cannot rewind")
        return super().seek(offset, whence)


@pytest.mark.usefixtures("allow_small_parts")
def test_an_input_that_cannot_rewind_gets_a_clear_error(
    server: LocalServer, secret_key: SecretKey, org: int
) -> None:
    with (
        NoMultipart(server.url, refused="objects:multipart:parts") as proxy,
        small_client(proxy.url, secret_key) as client,
    ):
        session = client.session(Usecase("test"), org=org)
        with pytest.raises(RequestError, match="cannot seek back") as caught:
            session.put(Unrewindable(payload(700 * KIB)), key="lost")
        assert caught.value.status == 501
        assert [m for m, _ in proxy.requests("objects:multipart")].count("DELETE") == 1
        assert proxy.requests("objects") == []
        # Nothing was stored; the next put goes straight to one request.
        assert session.get("lost") is None
        session.put(payload(700 * KIB), key="next")
        assert [m for m, _ in proxy.requests("objects:multipart")].count("PUT") == 1


@pytest.mark.usefixtures("allow_small_parts")
def test_local_server_without_multipart(tmp_path: Path, org: int) -> None:
    # The local server's mode that answers 501 to multipart, as the real
    # S3-compatible and BigTable backends do; inputs below the usecase's
    # resumable threshold go in one request.
    data = payload(600 * KIB)
    with (
        LocalServer(storage="filesystem", path=tmp_path, multipart=False) as server,
        Client(server.url, multipart_threshold=256 * KIB, multipart_part_size=64 * KIB) as client,
    ):
        session = client.session(Usecase("test"), org=org)
        assert session.put(io.BytesIO(data), key="one") == "one"
        assert client._uploads.no_multipart == {"test"}
        assert session.put(data, key="two") == "two"
        for name in ("one", "two"):
            got = session.get(name)
            assert got is not None
            with got.payload as stream:
                assert stream.read() == data
        uploads = tmp_path / "uploads"
        assert not uploads.exists() or list(uploads.iterdir()) == []
