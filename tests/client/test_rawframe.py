"""Incompressible large inputs: zstd frames of raw blocks, one request."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator

import objectstore_client as official
import pytest
import zstandard

from django_objectstore.client import Client, SecretKey, Usecase
from django_objectstore.client._rawframe import (
    RAW_BLOCK,
    frame_size,
    is_incompressible,
    raw_frame_chunks,
)
from django_objectstore.client._zstd import FRAME_SIZE
from django_objectstore.server import LocalServer

from .conftest import PRIVATE_PEM
from .test_parallel import PartSpy, payload

KIB = 1024


def _frame(contents: bytes | io.BytesIO, size: int) -> bytes:
    return b"".join(bytes(chunk) for chunk in raw_frame_chunks(contents, size))


@pytest.mark.parametrize(
    "size",
    [0, 1, RAW_BLOCK - 1, RAW_BLOCK, RAW_BLOCK + 1, 8 * RAW_BLOCK, 8 * RAW_BLOCK + 7, 2_000_003],
)
def test_raw_frames_decode_with_zstandard(size: int) -> None:
    data = os.urandom(size)
    for source in (data, io.BytesIO(data)):
        frame = _frame(source, size)
        assert len(frame) == frame_size(size)
        assert zstandard.ZstdDecompressor().decompressobj().decompress(frame) == data
        reader = zstandard.ZstdDecompressor().stream_reader(
            io.BytesIO(frame), read_across_frames=True
        )
        assert reader.read() == data
        params = zstandard.get_frame_parameters(frame)
        assert (params.content_size, params.has_checksum) == (zstandard.CONTENTSIZE_UNKNOWN, 0)


def test_file_position_is_respected() -> None:
    data = os.urandom(300 * KIB)
    source = io.BytesIO(data)
    source.seek(1000)
    assert is_incompressible(source, len(data) - 1000)
    assert source.tell() == 1000
    frame = _frame(source, len(data) - 1000)
    assert zstandard.ZstdDecompressor().decompressobj().decompress(frame) == data[1000:]


def test_incompressibility_is_judged_from_samples() -> None:
    random = os.urandom(600 * KIB)
    assert is_incompressible(random, len(random))
    assert is_incompressible(io.BytesIO(random), len(random))
    assert not is_incompressible(bytes(600 * KIB), 600 * KIB)
    # A compressible stretch where a sample is taken (the middle) is enough.
    mixed = random[: 250 * KIB] + bytes(100 * KIB) + random[350 * KIB :]
    assert not is_incompressible(mixed, len(mixed))
    assert not is_incompressible(os.urandom(1000), 1000)  # too small to judge


def test_source_that_shrinks_or_grows_is_an_error() -> None:
    data = os.urandom(300 * KIB)
    with pytest.raises(ValueError, match="source ended after 307200 of the 307201 bytes"):
        _frame(io.BytesIO(data), len(data) + 1)
    with pytest.raises(ValueError, match="source grew beyond the 307199 bytes"):
        _frame(io.BytesIO(data), len(data) - 1)


@pytest.fixture
def low_threshold(
    server: LocalServer, secret_key: SecretKey, allow_small_parts: None
) -> Iterator[Client]:
    with Client(
        server.url,
        token=secret_key,
        multipart_threshold=256 * KIB,
        multipart_part_size=64 * KIB,
    ) as made:
        yield made


def test_incompressible_put_is_one_raw_frame_readable_by_both_clients(
    low_threshold: Client, server: LocalServer, org: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = PartSpy(monkeypatch)
    session = low_threshold.session(Usecase("test"), org=org)
    data = os.urandom(700 * KIB + 5)
    key = session.put(io.BytesIO(data), key="jpeg-like", content_type="image/jpeg")
    assert spy.parts == 0  # one request, not a multipart upload
    stored = session.get(key, decompress=False)
    assert stored is not None
    assert stored.metadata.compression == "zstd"
    with stored.payload as stream:
        raw = stream.read()
    assert len(raw) == frame_size(len(data))
    got = session.get(key)
    assert got is not None
    with got.payload as stream:
        assert stream.read() == data
    theirs = official.Client(server.url, token=official.SecretKey("test_kid", PRIVATE_PEM))
    try:
        result = theirs.session(official.Usecase("test"), org=org).get(key)
        assert result.payload.read() == data
        result.payload.close()
    finally:
        theirs._pool.close()
    # Bytes work too, and compressible data still goes up in parts.
    assert session.put(data, key="bytes") == "bytes"
    assert spy.parts == 0
    session.put(payload(300 * KIB), key="compressible")
    assert spy.completes == 1


def test_uncompressed_usecase_keeps_its_parts(
    low_threshold: Client, org: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = PartSpy(monkeypatch)
    session = low_threshold.session(Usecase("test", compression="none"), org=org)
    data = os.urandom(300 * KIB)
    session.put(data, key="plain")
    assert spy.parts == 5
    got = session.get("plain")
    assert got is not None
    assert got.metadata.compression is None
    with got.payload as stream:
        assert stream.read() == data


def test_source_change_abandons_the_request(low_threshold: Client, org: int) -> None:
    session = low_threshold.session(Usecase("test"), org=org)
    data = os.urandom(400 * KIB)

    class Shrinking(io.BytesIO):
        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            if self.tell() >= 300 * KIB:
                return 0  # truncated by someone else after the size was taken
            return super().readinto(buffer)

    with pytest.raises(ValueError, match="source ended after"):
        session.put(Shrinking(data), key="shrunk")
    assert session.get("shrunk") is None
    assert session.put(b"still usable", key="after") == "after"


def test_compressed_in_frames_by_worker_threads(
    server: LocalServer, secret_key: SecretKey, org: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = PartSpy(monkeypatch)
    data = os.urandom(6 * 1024 * KIB).hex().encode()  # compresses to ~0.55
    with Client(
        server.url,
        token=secret_key,
        multipart_threshold=256 * KIB,
        multipart_part_size=5 * 1024 * KIB,
        multipart_workers=2,  # two threads compressing the frames
    ) as made:
        session = made.session(Usecase("test"), org=org)
        session.put(io.BytesIO(data), key="threaded")
        assert spy.parts == 2  # ~6.6 MiB stored
        stored = session.get("threaded", decompress=False)
        assert stored is not None
        with stored.payload as stream:
            raw = stream.read()
    assert len(raw) < len(data) * 0.7
    assert spy.sizes[0] == 5 * 1024 * KIB
    frames, position, out = 0, 0, bytearray()
    while position < len(raw):
        reader = zstandard.ZstdDecompressor().decompressobj()
        out += reader.decompress(raw[position:])
        assert reader.eof
        position = len(raw) - len(reader.unused_data)
        frames += 1
    assert frames == -(-len(data) // FRAME_SIZE)  # one frame per FRAME_SIZE of input
    assert out == data
    theirs = official.Client(server.url, token=official.SecretKey("test_kid", PRIVATE_PEM))
    try:
        result = theirs.session(official.Usecase("test"), org=org).get("threaded")
        assert result.payload.read() == data
        result.payload.close()
    finally:
        theirs._pool.close()
