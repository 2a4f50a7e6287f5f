"""The streaming File returned by ObjectstoreStorage.open()."""

from __future__ import annotations

import io
import os
import tracemalloc

import pytest
from django.core.files.base import ContentFile
from django.core.files.images import get_image_dimensions
from django.http import FileResponse

from django_objectstore import get_session
from django_objectstore.files import HISTORY, ObjectstoreFile
from django_objectstore.storage import ObjectstoreStorage
from django_objectstore.testing import objectstore, objectstore_server  # noqa: F401

pytestmark = pytest.mark.usefixtures("objectstore")

DATA = bytes(range(256)) * 4096  # 1 MiB, position-dependent content


@pytest.fixture(params=["plain", "attachments"])
def stored(request: pytest.FixtureRequest) -> tuple[ObjectstoreStorage, str]:
    storage = ObjectstoreStorage(request.param)
    return storage, storage.save("data.bin", ContentFile(DATA))


def test_small_reads_share_one_request(stored: tuple[ObjectstoreStorage, str]) -> None:
    storage, name = stored
    with storage.open(name) as handle:
        assert isinstance(handle, ObjectstoreFile)
        pieces = [handle.read(1024) for _ in range(32)]
        assert b"".join(pieces) == DATA[: 32 * 1024]
        handle.seek(0)
        assert handle.read(4096) == DATA[:4096]
        assert handle.file.requests == 1


def test_size_known_without_reading(stored: tuple[ObjectstoreStorage, str]) -> None:
    storage, name = stored
    with storage.open(name) as handle:
        assert handle.size == len(DATA)
        assert handle.seek(0, os.SEEK_END) == len(DATA)
        assert handle.tell() == len(DATA)
        assert handle.read() == b""
    assert storage.size(name) == len(DATA)


def test_seek_anywhere_reads_the_right_bytes(stored: tuple[ObjectstoreStorage, str]) -> None:
    storage, name = stored
    with storage.open(name) as handle:
        for offset in (900_000, 10, 500_000, 1_048_000, 0, 123_457):
            handle.seek(offset)
            assert handle.read(100) == DATA[offset : offset + 100], offset
        handle.seek(-10, os.SEEK_END)
        assert handle.read() == DATA[-10:]
        handle.seek(5)
        handle.seek(5, os.SEEK_CUR)
        assert handle.read(3) == DATA[10:13]
        with pytest.raises(ValueError, match="negative"):
            handle.seek(-1)


def test_far_seek_uses_a_range_when_uncompressed() -> None:
    storage = ObjectstoreStorage("plain")
    name = storage.save("big.bin", ContentFile(DATA * 4))
    with storage.open(name) as handle:
        handle.read(10)
        handle.seek(3 * len(DATA) + 7)
        assert handle.read(5) == DATA[7:12]
        assert handle.file.requests == 2
        assert not handle.file.compressed


def test_backward_seek_restarts_when_compressed() -> None:
    storage = ObjectstoreStorage("attachments")
    name = storage.save("big.bin", ContentFile(DATA * 4))
    with storage.open(name) as handle:
        assert handle.file.compressed
        handle.seek(2 * len(DATA) + HISTORY)  # forward: skipped in the same stream
        handle.read(10)
        assert handle.file.requests == 1
        handle.seek(3)  # far behind the history: restart and skip
        assert handle.read(4) == DATA[3:7]
        assert handle.file.requests == 2


def test_bounded_memory_while_streaming() -> None:
    storage = ObjectstoreStorage("attachments")
    name = storage.save("big.bin", ContentFile(DATA * 16))
    total = 0
    tracemalloc.start()
    try:
        with storage.open(name) as handle:
            while chunk := handle.read(64 * 1024):
                total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 16 * len(DATA)
    assert peak < 6 * 1024 * 1024, peak


def test_size_of_objects_written_by_other_clients() -> None:
    raw = ObjectstoreStorage("plain")
    session = get_session("plain")
    key = session.put(DATA[:5000])
    assert raw.size(f"_/{key}") == 5000
    with raw.open(f"_/{key}") as handle:
        assert handle.size == 5000
    zstd = ObjectstoreStorage("attachments")
    key = get_session("attachments").put(io.BytesIO(DATA[:7000]))
    assert zstd.size(f"_/{key}") == 7000
    with zstd.open(f"_/{key}") as handle:
        assert handle.size == 7000
        assert handle.read() == DATA[:7000]


def test_big_reads_bypass_the_buffer(stored: tuple[ObjectstoreStorage, str]) -> None:
    storage, name = stored
    with storage.open(name) as handle:
        assert handle.read(10) == DATA[:10]
        assert handle.read(600_000) == DATA[10:600_010]
        handle.seek(600_000)  # behind the (empty) buffer: fetched again
        assert handle.read(20) == DATA[600_000:600_020]
        assert handle.read(10**7) == DATA[600_020:]


def test_empty_object() -> None:
    for usecase in ("plain", "attachments"):
        storage = ObjectstoreStorage(usecase)
        name = storage.save("empty.txt", ContentFile(b""))
        with storage.open(name) as handle:
            assert handle.size == 0
            assert handle.read() == b""
        assert storage.size(name) == 0


@pytest.mark.django_db  # response.close() sends request_finished (closes DB connections)
def test_file_response_content_length_is_logical(stored) -> None:  # type: ignore[no-untyped-def]
    storage, name = stored
    response = FileResponse(storage.open(name))
    try:
        assert response["Content-Length"] == str(len(DATA))
        assert b"".join(response.streaming_content) == DATA
    finally:
        response.close()


def test_image_dimension_sniffing_costs_one_request() -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (37, 21), "red").save(buffer, "JPEG")
    storage = ObjectstoreStorage("images")
    name = storage.save("pic.jpg", ContentFile(buffer.getvalue()))
    with storage.open(name) as handle:
        assert get_image_dimensions(handle) == (37, 21)
        assert handle.file.requests == 1


def test_write_mode_uploads_on_close() -> None:
    storage = ObjectstoreStorage("attachments")
    handle = storage.open("written/by/open.txt", "wb")
    handle.write(b"written ")
    handle.write(b"in parts")
    handle.close()
    assert storage.open("written/by/open.txt").read() == b"written in parts"
    assert storage.size("written/by/open.txt") == 16
    assert storage.metadata("written/by/open.txt").filename == "open.txt"
    with storage.open("written/by/open.txt", "w") as text:
        text.write("tëxt")
    with storage.open("written/by/open.txt", "r") as text:
        assert text.read() == "tëxt"


def test_read_only_file_rejects_writes(stored) -> None:  # type: ignore[no-untyped-def]
    storage, name = stored
    with storage.open(name) as handle, pytest.raises(io.UnsupportedOperation, match="wb"):
        handle.write(b"x")
    with pytest.raises(ValueError, match="mode"):
        storage.open(name, "r+b")


def test_reopen_after_close_reads_remote_not_local(stored, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    storage, name = stored
    monkeypatch.chdir(tmp_path)
    local = tmp_path / name
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_bytes(b"LOCAL FILE - must never be read")
    handle = storage.open(name)
    handle.close()
    assert handle.closed
    with handle.open() as again:
        assert again.read(16) == DATA[:16]
    with handle.open("rb"):
        assert handle.read(4) == DATA[:4]


def test_closed_file_raises(stored) -> None:  # type: ignore[no-untyped-def]
    storage, name = stored
    handle = storage.open(name)
    handle.close()
    with pytest.raises(ValueError, match="closed"):
        handle.read(1)
