"""Parallel multipart puts, concurrency, token reuse and failure paths."""

from __future__ import annotations

import io
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
import zstandard

from django_objectstore.client import (
    Client,
    ObjectstoreConnectionError,
    RequestError,
    SecretKey,
    Session,
    Usecase,
    auth,
)
from django_objectstore.client._parallel import MAX_PARTS, effective_part_size
from django_objectstore.client._zstd import FRAME_SIZE
from django_objectstore.client.multipart import MultipartUpload
from django_objectstore.server import LocalServer

from .conftest import PRIVATE_PEM
from .rawserver import RawServer, read_head

KIB = 1024


class Recorder:
    """A metrics backend that keeps what it is given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, dict[str, str]]] = []
        self.lock = threading.Lock()

    def increment(self, name: str, value: float = 1, tags: Any = None) -> None:
        raise AssertionError("not used by the client")

    def gauge(self, name: str, value: float, tags: Any = None) -> None:
        raise AssertionError("not used by the client")

    def distribution(self, name: str, value: float, tags: Any = None, unit: Any = None) -> None:
        with self.lock:
            self.calls.append((name, value, dict(tags or {})))


class PartSpy:
    """Counts multipart requests (and the sizes of the parts sent) without
    changing them."""

    @property
    def sizes(self) -> list[int]:
        """Part sizes in part-number order (workers send them in any order)."""
        return [size for _, size in sorted(self.numbered)]

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.parts = 0
        self.numbered: list[tuple[int, int]] = []
        self.aborts = 0
        self.completes = 0
        self.lock = threading.Lock()
        put_part, abort, complete = (
            MultipartUpload.put_part,
            MultipartUpload.abort,
            MultipartUpload.complete,
        )

        def counting_put_part(upload: MultipartUpload, *args: Any, **kwargs: Any) -> Any:
            with self.lock:
                self.parts += 1
                self.numbered.append((kwargs["part_number"], kwargs["content_length"]))
            return put_part(upload, *args, **kwargs)

        def counting_abort(upload: MultipartUpload) -> None:
            self.aborts += 1
            abort(upload)

        def counting_complete(upload: MultipartUpload, parts: Any) -> str:
            self.completes += 1
            return complete(upload, parts)

        monkeypatch.setattr(MultipartUpload, "put_part", counting_put_part)
        monkeypatch.setattr(MultipartUpload, "abort", counting_abort)
        monkeypatch.setattr(MultipartUpload, "complete", counting_complete)


@pytest.fixture
def small_parts(
    server: LocalServer, secret_key: SecretKey, allow_small_parts: None
) -> Iterator[Client]:
    """A client whose parallel-upload threshold and part size are tiny, so
    tests stay small."""
    with Client(
        server.url,
        token=secret_key,
        multipart_threshold=256 * KIB,
        multipart_part_size=64 * KIB,
        multipart_workers=3,
    ) as made:
        yield made


def payload(size: int) -> bytes:
    """Data zstd compresses to a bit over a quarter of its size (fresh random
    bytes in every 4000, so no window or long-range match finds repeats)."""
    noise = os.urandom(size // 4 + 1000)
    zeros = bytes(3000)
    chunks = [noise[i // 4 : i // 4 + 1000] + zeros for i in range(0, size, 4000)]
    return b"".join(chunks)[:size]


def compressing() -> list[threading.Thread]:
    """The client's compression threads still alive."""
    return [t for t in threading.enumerate() if t.name.startswith("objectstore-zstd")]


def stored_bytes(session: Session, key: str) -> bytes:
    raw = session.get(key, decompress=False)
    assert raw is not None
    with raw.payload as stream:
        return stream.read()


def assert_cut_evenly(sizes: list[int], part_size: int, total: int) -> None:
    """Every part but the last has exactly ``part_size`` bytes (what
    production backends need), and the parts add up to the object."""
    assert sizes, "no parts were uploaded"
    assert all(size == part_size for size in sizes[:-1]), sizes
    assert 0 < sizes[-1] <= part_size
    assert sum(sizes) == total


@pytest.mark.parametrize("compress", ["zstd", "none"])
def test_large_put_goes_multipart_with_identical_result(
    small_parts: Client, org: int, monkeypatch: pytest.MonkeyPatch, compress: str
) -> None:
    spy = PartSpy(monkeypatch)
    session = small_parts.session(Usecase("test"), org=org)
    data = payload(1000 * KIB + 123)
    key = session.put(
        io.BytesIO(data),
        key="big",
        compress=compress,  # type: ignore[arg-type]
        content_type="text/csv",
        metadata={"k": "v"},
        filename="big.csv",
    )
    assert key == "big"
    assert (spy.completes, spy.aborts) == (1, 0)
    stored = stored_bytes(session, key)
    assert_cut_evenly(spy.sizes, 64 * KIB, len(stored))
    if compress == "none":
        assert spy.parts == 16  # ceil(1000.1 KiB / 64 KiB)
    else:
        assert len(stored) < len(data) * 0.4
        assert spy.parts == -(-len(stored) // (64 * KIB)) >= 4
        assert len(zstandard.ZstdDecompressor().decompressobj().decompress(stored)) == len(data)
    got = session.get(key)
    assert got is not None
    with got.payload as stream:
        assert stream.read() == data
    meta = session.head(key)
    assert meta is not None
    assert (meta.content_type, meta.custom, meta.filename) == ("text/csv", {"k": "v"}, "big.csv")
    assert meta.compression == (None if compress == "none" else "zstd")


def test_threshold_boundaries_and_knobs(
    server: LocalServer,
    secret_key: SecretKey,
    small_parts: Client,
    org: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spy = PartSpy(monkeypatch)
    session = small_parts.session(Usecase("test"), org=org)
    session.put(payload(256 * KIB - 1))  # below: one request
    assert spy.completes == 0
    session.put(payload(256 * KIB))  # at the threshold: parts
    assert spy.completes == 1
    # Unknown size (a generator): always one streamed request.
    session.put(iter([payload(300 * KIB)]))
    assert spy.completes == 1
    with Client(server.url, token=secret_key, multipart_threshold="none") as made:
        made.session(Usecase("test"), org=org).put(payload(300 * KIB))  # off
    assert spy.completes == 1
    with Client(server.url, token=secret_key, multipart_threshold=10) as made:
        made.session(Usecase("test"), org=org).put(b"x" * 100)  # lowered
    assert spy.completes == 2


def test_threshold_is_a_client_option_only(session: Session) -> None:
    # As in the official client: no per-usecase or per-call threshold.
    with pytest.raises(TypeError, match="multipart_threshold"):
        session.put(b"x", multipart_threshold=1)  # type: ignore[call-arg]


def test_default_threshold_is_64_mib(client: Client, org: int) -> None:
    session = client.session(Usecase("test"), org=org)
    assert session._uploads.threshold == 64 * 1024 * KIB


def test_part_size_below_the_production_minimum_is_refused(server: LocalServer) -> None:
    with pytest.raises(ValueError, match=r"at least 5242880 \(5 MiB.*got 5242879"):
        Client(server.url, multipart_part_size=5 * 1024 * KIB - 1)
    with Client(server.url, multipart_part_size=5 * 1024 * KIB) as made:
        assert made._uploads.part_size == 5 * 1024 * KIB


def test_default_part_size_is_8_mib(client: Client) -> None:
    assert client._uploads.part_size == 8 * 1024 * KIB


def test_part_size_grows_to_stay_within_10000_parts() -> None:
    assert effective_part_size(8 << 20, 1 << 30) == 8 << 20
    tib = 1 << 40
    grown = effective_part_size(8 << 20, tib)
    assert grown > 8 << 20
    # Even incompressible data (zstd adds a little) fits in 10,000 parts.
    assert -(-(tib + tib // 1024 + 1024) // grown) <= MAX_PARTS


def test_compressible_input_never_makes_short_middle_parts(
    server: LocalServer, secret_key: SecretKey, org: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bug this layout fixes: parts compressed one by one came out far
    below the part size (and below production's 5 MiB minimum)."""
    spy = PartSpy(monkeypatch)
    part = 5 * 1024 * KIB
    data = payload(48 * 1024 * KIB)  # ~13 MiB stored: three parts
    with Client(
        server.url, token=secret_key, multipart_threshold=1024 * KIB, multipart_part_size=part
    ) as made:
        session = made.session(Usecase("test"), org=org)
        key = session.put(io.BytesIO(data))
        stored = stored_bytes(session, key)
        assert_cut_evenly(spy.sizes, part, len(stored))
        assert spy.parts == 3
        got = session.get(key)
        assert got is not None
        with got.payload as stream:
            assert stream.read() == data


def test_multipart_put_metrics(
    server: LocalServer, secret_key: SecretKey, org: int, allow_small_parts: None
) -> None:
    recorder = Recorder()
    with Client(
        server.url,
        token=secret_key,
        metrics_backend=recorder,
        multipart_threshold=64 * KIB,
        multipart_part_size=16 * KIB,
    ) as client:
        session = client.session(Usecase("test"), org=org)
        session.put(bytes(100 * KIB))
        session.put(bytes(10 * KIB))
    sizes = [(v, t) for n, v, t in recorder.calls if n == "storage.put.size"]
    assert (100 * KIB, {"usecase": "test", "compression": "none"}) in sizes
    assert (10 * KIB, {"usecase": "test", "compression": "none"}) in sizes
    assert any(t.get("compression") == "zstd" and v < 10 * KIB for v, t in sizes)
    names = {n for n, _, _ in recorder.calls}
    assert {
        "storage.put.latency",
        "storage.put.compression_ratio",
        "storage.put.throughput",
        "storage.put.inverse_throughput",
        "storage.multipart.initiate.latency",
        "storage.multipart.put_part.size",
        "storage.multipart.complete.latency",
    } <= names


class FailingReader(io.RawIOBase):
    """A seekable source that breaks after ``fail_at`` bytes (a real I/O fault)."""

    def __init__(self, size: int, fail_at: int) -> None:
        self.size, self.fail_at, self.pos = size, fail_at, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: offset, 1: self.pos + offset, 2: self.size + offset}[whence]
        return self.pos

    def readinto(self, buffer: Any) -> int:
        if self.pos >= self.fail_at:
            raise OSError("disk on fire")
        count = min(len(buffer), self.size - self.pos)
        buffer[:count] = b"a" * count
        self.pos += count
        return count


def test_source_failure_aborts_the_upload(
    small_parts: Client, org: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = PartSpy(monkeypatch)
    session = small_parts.session(Usecase("test"), org=org)
    with pytest.raises(OSError, match="disk on fire"):
        session.put(FailingReader(1024 * KIB, 500 * KIB), key="never")
    assert (spy.aborts, spy.completes) == (1, 0)
    assert session.get("never") is None


def test_source_failure_in_a_streamed_put_raises_it_and_stores_nothing(
    streaming_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = PartSpy(monkeypatch)
    session = streaming_session
    with pytest.raises(OSError, match="disk on fire"):  # not a "connection aborted" error
        session.put(FailingReader(1024 * KIB, 500 * KIB), key="never")
    assert (spy.parts, spy.aborts, spy.completes) == (0, 0, 0)
    assert session.get("never") is None
    assert session.put(b"next", key="next") == "next"  # the client is still usable


def test_part_failure_aborts_the_upload(
    small_parts: Client, org: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: the server cannot be told to fail one part on demand."""
    spy = PartSpy(monkeypatch)
    counting = MultipartUpload.put_part

    def flaky(upload: MultipartUpload, contents: Any, *, part_number: int, **kw: Any) -> Any:
        if part_number == 2:
            raise RequestError("Objectstore request failed with status 503", 503, "busy")
        return counting(upload, contents, part_number=part_number, **kw)

    monkeypatch.setattr(MultipartUpload, "put_part", flaky)
    session = small_parts.session(Usecase("test"), org=org)
    with pytest.raises(RequestError) as info:
        session.put(payload(1024 * KIB), key="never")
    assert info.value.status == 503
    assert (spy.aborts, spy.completes) == (1, 0)
    assert session.get("never") is None
    assert compressing() == []  # stopped with the upload, not left to the GC


def test_complete_failure_aborts(
    small_parts: Client, org: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = PartSpy(monkeypatch)
    real_put_part = MultipartUpload.put_part

    def wrong_etag(upload: MultipartUpload, *args: Any, **kwargs: Any) -> Any:
        part = real_put_part(upload, *args, **kwargs)
        part.etag = "tampered"
        return part

    monkeypatch.setattr(MultipartUpload, "put_part", wrong_etag)
    session = small_parts.session(Usecase("test"), org=org)
    with pytest.raises(RequestError, match="completion failed"):
        session.put(payload(512 * KIB), key="never")
    assert spy.aborts == 1
    assert session.get("never") is None


def test_one_client_shared_by_16_threads(client: Client, org: int) -> None:
    session = client.session(Usecase("test"), org=org)
    errors: list[BaseException] = []
    barrier = threading.Barrier(16)

    def work(index: int) -> None:
        try:
            barrier.wait()
            for round_ in range(10):
                data = f"{index}-{round_}-".encode() * (100 * (round_ + 1))
                key = session.put(
                    data, key=f"t{index}/{round_}", compress="zstd" if index % 2 else "none"
                )
                got = session.get(key)
                assert got is not None
                with got.payload as stream:
                    assert stream.read() == data
                assert session.head(key) is not None
                session.delete(key)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_token_is_signed_once_and_reused(
    server: LocalServer, org: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[object] = []
    signed: list[object] = []
    real_load = auth.load_pem_private_key
    real_encode = auth.jwt.encode

    def counting_encode(*args: Any, **kwargs: Any) -> str:
        signed.append(args)
        return real_encode(*args, **kwargs)

    def counting_load(*args: Any, **kwargs: Any) -> Any:
        parsed.append(args)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(auth.jwt, "encode", counting_encode)
    monkeypatch.setattr(auth, "load_pem_private_key", counting_load)
    now = [1000.0]
    monkeypatch.setattr(auth, "_monotonic", lambda: now[0])
    key = SecretKey("test_kid", PRIVATE_PEM)
    with Client(server.url, token=key) as client:
        session = client.session(Usecase("test"), org=org)
        tokens = {session._request_headers()["x-os-auth"] for _ in range(50)}
        session.put(b"x")
        assert len(tokens) == 1
        assert len(signed) == 1
        now[0] += 40  # still more than a quarter of the 60 s left
        assert session._request_headers()["x-os-auth"] in tokens
        assert len(signed) == 1
        now[0] += 10  # 50 s in: renewed
        session._request_headers()
        assert len(signed) == 2
        other = client.session(Usecase("test"), org=org + 1)
        assert other._request_headers()["x-os-auth"] not in tokens
        assert len(signed) == 3
        session.presigned_object_url("GET", "k")  # signed with the same parsed key
    assert len(parsed) == 1  # the PEM was parsed once


def test_token_cache_is_thread_safe(secret_key: SecretKey) -> None:
    from django_objectstore.client.scope import Scope

    results: set[str] = set()
    lock = threading.Lock()

    def grab() -> None:
        for _ in range(200):
            token = secret_key.cached_token_for_scope("test", Scope(org=1))
            with lock:
                results.add(token)

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 1


def test_connection_refused_is_reported(secret_key: SecretKey) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Client(f"http://127.0.0.1:{port}", token=secret_key, retries=0) as client:
        session = client.session(Usecase("test"), org=1)
        with pytest.raises(ObjectstoreConnectionError) as info:
            session.get("k")
        assert info.value.status is None
        assert isinstance(info.value, urllib3.exceptions.MaxRetryError)
        assert "Connection refused" in str(info.value)
        with pytest.raises(urllib3.exceptions.MaxRetryError):
            session.put(b"x" * 10)
        with pytest.raises(ObjectstoreConnectionError):
            session.put(iter([b"streamed"]))


def test_server_gone_mid_session(secret_key: SecretKey, org: int) -> None:
    keys_server = LocalServer(storage="memory")
    keys_server.start()
    client = Client(keys_server.url, retries=1)
    try:
        session = client.session(Usecase("test"), org=org)
        key = session.put(b"before")
        keys_server.stop()
        with pytest.raises(ObjectstoreConnectionError):
            session.get(key)
    finally:
        client.close()
        keys_server.stop()


class _ErrorServer(RawServer):
    """Answers every request with one canned response (5xx bodies cannot be
    produced by the real server on demand)."""

    conn_timeout = 2.0

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__()
        self.response = (
            f"HTTP/1.1 {status} Oops\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode() + body

    def serve(self, conn: socket.socket) -> None:
        if read_head(conn) is not None:
            conn.sendall(self.response)


def test_5xx_body_is_surfaced() -> None:
    with _ErrorServer(500, b"service error: backend exploded") as fake, Client(fake.url) as client:
        session = client.session(Usecase("test"), org=1)
        for call in (
            lambda: session.get("k"),
            lambda: session.head("k"),
            lambda: session.delete("k"),
            lambda: session.put(b"x"),
        ):
            with pytest.raises(RequestError) as info:
                call()
            assert info.value.status == 500
            if info.value.response:  # HEAD responses carry no body
                assert info.value.response == "service error: backend exploded"
                assert "backend exploded" in str(info.value)


def test_frames_are_cut_across_parts(
    small_parts: Client, org: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = PartSpy(monkeypatch)
    session = small_parts.session(Usecase("test"), org=org)
    data = payload(2048 * KIB)  # one frame, in many 64 KiB parts
    key = session.put(data)
    stored = stored_bytes(session, key)
    assert spy.parts >= 8
    reader = zstandard.ZstdDecompressor().decompressobj()
    assert reader.decompress(stored) == data
    assert reader.eof
    assert reader.unused_data == b""


def test_decompression_reads_across_frames(session: Session) -> None:
    """Objects made of several zstd frames (older parallel puts, other
    writers) decompress whole, whatever the frame boundaries."""
    first, second = payload(700 * KIB), payload(300 * KIB) + b"tail"
    cctx = zstandard.ZstdCompressor()
    frames = cctx.compress(first) + cctx.compress(b"") + cctx.compress(second)
    key = session.put(frames, precompressed="zstd")
    got = session.get(key)
    assert got is not None
    with got.payload as stream:
        assert stream.read() == first + second


@pytest.mark.parametrize("compress", ["zstd", "none"])
def test_parts_pass_a_server_enforcing_a_minimum_part_size(
    allow_small_parts: None, org: int, compress: str
) -> None:
    """What S3/GCS-backed servers check at completion, at a small scale: the
    local server refuses non-last parts below ``min_part_size``."""
    with (
        LocalServer(storage="memory", min_part_size=64 * KIB) as strict,
        Client(strict.url, multipart_threshold=256 * KIB, multipart_part_size=64 * KIB) as made,
    ):
        session = made.session(Usecase("test"), org=org)
        data = payload(2048 * KIB + 7)
        key = session.put(io.BytesIO(data), compress=compress)  # type: ignore[arg-type]
        got = session.get(key)
        assert got is not None
        with got.payload as stream:
            assert stream.read() == data
        # The server does refuse short middle parts.
        upload = session.initiate_multipart_upload(compression="none")
        parts = [
            upload.put_part(b"a" * 1000, part_number=1, content_length=1000),
            upload.put_part(b"b" * 1000, part_number=2, content_length=1000),
        ]
        with pytest.raises(RequestError, match="below the minimum part size of 65536 bytes"):
            upload.complete(parts)
        upload.abort()


def test_mid_size_put_is_one_request_of_threaded_frames(
    server: LocalServer, secret_key: SecretKey, org: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = PartSpy(monkeypatch)
    recorder = Recorder()
    data = payload(2 * FRAME_SIZE + 999)  # 4 MiB and more, below the 64 MiB threshold
    with Client(server.url, token=secret_key, metrics_backend=recorder) as made:
        session = made.session(Usecase("test"), org=org)
        key = session.put(io.BytesIO(data))
        assert (spy.parts, spy.completes) == (0, 0)  # one request
        stored = stored_bytes(session, key)
        position, sizes = 0, []
        while position < len(stored):
            header = stored[position : position + 18]
            sizes.append(zstandard.get_frame_parameters(header).content_size)
            reader = zstandard.ZstdDecompressor().decompressobj()
            reader.decompress(stored[position:])
            position = len(stored) - len(reader.unused_data)
        assert sizes == [FRAME_SIZE, FRAME_SIZE, 999]
        got = session.get(key)
        assert got is not None
        with got.payload as stream:
            assert stream.read() == data
    # The official client's single stream when large-input paths are off.
    with Client(server.url, token=secret_key, multipart_threshold="none") as made:
        session = made.session(Usecase("test"), org=org)
        plain = session.put(io.BytesIO(data))
        assert zstandard.get_frame_parameters(stored_bytes(session, plain)[:18]).content_size == (
            zstandard.CONTENTSIZE_UNKNOWN
        )
    sizes_recorded = [(v, t) for n, v, t in recorder.calls if n == "storage.put.size"]
    assert (len(data), {"usecase": "test", "compression": "none"}) in sizes_recorded
    assert (len(stored), {"usecase": "test", "compression": "zstd"}) in sizes_recorded


def test_mid_size_source_failure_stores_nothing(
    client: Client, org: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = client.session(Usecase("test"), org=org)
    assert compressing() == []
    with pytest.raises(OSError, match="disk on fire"):
        session.put(FailingReader(10 * 1024 * KIB, 5 * 1024 * KIB), key="never")
    assert session.get("never") is None
    assert compressing() == []  # the compression threads are gone
    assert session.put(b"next", key="next") == "next"
