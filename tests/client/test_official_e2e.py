"""The official client's own end-to-end tests, run against our client.

Ported from ``clients/python/tests/test_e2e.py`` of getsentry/objectstore
(commit 0144767656b9029482b0171ab9076cbfee97b954; Copyright Functional
Software, Inc. dba Sentry, FSL-1.1-Apache-2.0). The test bodies are
unchanged. Adapted, and only this: the import prefix
(``objectstore_client`` -> ``django_objectstore.client``), the key files
(ours under ``tests/keys``), and the ``server_url`` fixture, which starts our
``LocalServer`` (filesystem storage, auth enforced with the test key) instead
of the Rust binary. Left out: ``test_connect_timeout``, which connects to an
address outside loopback (10.255.255.1); tests here never leave 127.0.0.1.

The resumable tests use ``django_objectstore.client._resumable``, which
carries the official names.
"""

# ruff: noqa: B008, PT011, PT018, PT030

from __future__ import annotations

import socket
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Generator
from datetime import timedelta
from io import BytesIO
from pathlib import Path
from unittest.mock import Mock

import pytest
import urllib3
import zstandard

from django_objectstore.client import (
    Client,
    ExpiryExtensionRejected,
    ObjectNotFound,
    Session,
    Usecase,
)
from django_objectstore.client._resumable import (
    ResumableUploadUnavailable,
    UploadComplete,
    UploadIncomplete,
    UploadOffsetMismatch,
)
from django_objectstore.client.auth import Permission, SecretKey
from django_objectstore.client.errors import RequestError
from django_objectstore.client.metadata import TimeToLive
from django_objectstore.client.multipart import CompletePart, MultipartCompleteError
from django_objectstore.client.scope import Scope
from django_objectstore.server import KeyConfig, LocalServer

# The official bodies leave clients and a listening socket to the garbage
# collector; under this project's warnings-as-errors that would fail them.
pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

_KEYS = Path(__file__).resolve().parent.parent / "keys"

TEST_EDDSA_KID: str = "test_kid"
TEST_EDDSA_PRIVKEY_PATH: str = str(_KEYS / "test_kid.private.pem")
TEST_EDDSA_PUBKEY_PATH: str = str(_KEYS / "test_kid.public.pem")


class UnrewindableStream(BytesIO):
    """Read-only stream that cannot report or restore position."""

    def seek(self, offset: int, whence: int = 0) -> int:
        raise OSError("stream is not seekable")

    def tell(self) -> int:
        raise OSError("stream does not expose a stable position")


class TestSecretKey:
    _instance: SecretKey | None = None

    @classmethod
    def create(
        cls, expiry_seconds: int = 60, permissions: list[Permission] = Permission.max()
    ) -> SecretKey:
        with open(TEST_EDDSA_PRIVKEY_PATH) as f:
            return SecretKey(TEST_EDDSA_KID, f.read(), expiry_seconds, permissions)

    @classmethod
    def get(cls) -> SecretKey:
        if not cls._instance:
            with open(TEST_EDDSA_PRIVKEY_PATH) as f:
                cls._instance = SecretKey(TEST_EDDSA_KID, f.read())
        return cls._instance


@pytest.fixture(scope="session")
def server_url() -> Generator[str]:
    # Adapted: our local server instead of the Rust binary, configured as the
    # official fixture configures it (filesystem storage, auth enforced).
    keys = {
        TEST_EDDSA_KID: KeyConfig(
            key_files=[TEST_EDDSA_PUBKEY_PATH],
            max_permissions=["object.read", "object.write", "object.delete"],
        )
    }
    with (
        tempfile.TemporaryDirectory() as tempdir,
        LocalServer(
            storage="filesystem", path=tempdir, auth_enforce=True, auth_keys=keys
        ) as server,
    ):
        yield server.url


def test_full_cycle(server_url: str) -> None:
    client = Client(
        server_url,
        token=TestSecretKey.get(),
    )
    test_usecase = Usecase(
        "test-usecase",
        expiration_policy=TimeToLive(timedelta(days=1)),
    )

    session = client.session(test_usecase, org=42, project=1337)

    object_key = session.put(b"test data")
    assert object_key is not None

    retrieved = session.get(object_key)
    assert retrieved is not None
    assert retrieved.payload.read() == b"test data"
    assert retrieved.metadata.time_created is not None
    assert retrieved.metadata.filename is None

    new_key = session.put(b"new data", key=object_key)
    assert new_key == object_key
    retrieved = session.get(object_key)
    assert retrieved is not None
    assert retrieved.payload.read() == b"new data"

    session.delete(object_key)

    assert session.get(object_key) is None


def test_resumable_upload(server_url: str) -> None:
    session = Client(server_url, token=TestSecretKey.get()).session(
        Usecase("test-usecase", expiration_policy=TimeToLive(timedelta(days=1))),
        org=42,
        project=1337,
    )
    upload = session._create_upload(
        6,
        key="resumable-python",
        content_type="text/plain",
        metadata={"source": "test"},
        origin="203.0.113.42",
        filename="example.txt",
    )
    assert upload is not None
    assert upload.key == "resumable-python"
    assert upload.granularity is not None
    assert upload.progress() == UploadIncomplete(0)
    assert upload.put(0, b"abc") == UploadIncomplete(3)

    resumed = session._resume_upload(upload.key, upload.token)
    assert resumed.granularity is None
    assert resumed.progress() == UploadIncomplete(3)
    with pytest.raises(UploadOffsetMismatch) as mismatch:
        resumed.put(0, b"abc")
    assert mismatch.value.status == 409
    assert mismatch.value.offset == 3
    with pytest.raises(RequestError) as oversized:
        resumed.put(3, b"defg")
    assert oversized.value.status == 400
    stream = BytesIO(b"prefix-def")
    stream.seek(7)
    assert resumed.put(3, (stream, 3)) == UploadComplete()

    response = session.get(upload.key)
    assert response is not None
    # The usecase defaults to zstd, but resumable creation must not inherit it.
    assert response.metadata.compression is None
    assert response.payload.read() == b"abcdef"
    assert response.metadata.content_type == "text/plain"
    assert response.metadata.expiration_policy == TimeToLive(timedelta(days=1))
    assert response.metadata.custom == {"source": "test"}
    assert response.metadata.origin == "203.0.113.42"
    assert response.metadata.filename == "example.txt"


def test_resumable_upload_precompressed(server_url: str) -> None:
    session = Client(server_url, token=TestSecretKey.get()).session(
        Usecase("test-usecase", compression="none"), org=42, project=1337
    )
    payload = b"abcdef"
    compressed = zstandard.ZstdCompressor().compress(payload)
    upload = session._create_upload(len(compressed), compression="zstd")
    assert upload is not None
    split = len(compressed) // 2
    assert upload.put(0, compressed[:split]) == UploadIncomplete(split)
    stream = UnrewindableStream(compressed[split:])
    assert upload.put(split, (stream, len(compressed) - split)) == UploadComplete()

    response = session.get(upload.key, decompress=False)
    assert response is not None
    assert response.metadata.compression == "zstd"
    assert response.payload.read() == compressed
    response = session.get(upload.key)
    assert response is not None
    assert response.payload.read() == payload


def test_resumable_upload_cancel(server_url: str) -> None:
    session = Client(server_url, token=TestSecretKey.get()).session(
        Usecase("test-usecase"), org=42, project=1337
    )
    upload = session._create_upload(6)
    assert upload is not None
    assert upload.put(0, b"abc") == UploadIncomplete(3)
    upload.cancel()

    with pytest.raises(ResumableUploadUnavailable):
        upload.progress()
    assert session.get(upload.key) is None


def test_head(server_url: str) -> None:
    client = Client(
        server_url,
        token=TestSecretKey.get(),
    )
    test_usecase = Usecase(
        "test-usecase",
        expiration_policy=TimeToLive(timedelta(days=1)),
    )

    session = client.session(test_usecase, org=42, project=1337)

    payload = b"test data"
    object_key = session.put(payload, origin="203.0.113.42", compress="none")

    metadata = session.head(object_key)
    assert metadata is not None
    assert metadata.time_created is not None
    assert metadata.origin == "203.0.113.42"
    # `size` reports the stored bytes, which match the payload only without compression.
    assert metadata.size == len(payload)

    session.delete(object_key)

    assert session.head(object_key) is None


def test_full_cycle_with_origin(server_url: str) -> None:
    client = Client(
        server_url,
        token=TestSecretKey.get(),
    )
    test_usecase = Usecase(
        "test-usecase",
        expiration_policy=TimeToLive(timedelta(days=1)),
    )

    session = client.session(test_usecase, org=42, project=1337)

    object_key = session.put(b"test data", origin="203.0.113.42", filename="report.pdf")
    assert object_key is not None

    retrieved = session.get(object_key)
    assert retrieved is not None
    assert retrieved.payload.read() == b"test data"
    assert retrieved.metadata.origin == "203.0.113.42"
    assert retrieved.metadata.filename == "report.pdf"


def test_full_cycle_with_unicode_metadata(server_url: str) -> None:
    client = Client(
        server_url,
        token=TestSecretKey.get(),
    )
    test_usecase = Usecase(
        "test-usecase",
        expiration_policy=TimeToLive(timedelta(days=1)),
    )

    session = client.session(test_usecase, org=42, project=1337)

    object_key = session.put(
        b"test data",
        origin="Ünknown-源",
        filename="réport-📄.pdf",
        metadata={"release": "vérsion-1.0-🚀", "note": "100% done"},
    )
    assert object_key is not None

    retrieved = session.get(object_key)
    assert retrieved is not None
    assert retrieved.payload.read() == b"test data"
    assert retrieved.metadata.origin == "Ünknown-源"
    assert retrieved.metadata.filename == "réport-📄.pdf"
    assert retrieved.metadata.custom == {
        "release": "vérsion-1.0-🚀",
        "note": "100% done",
    }

    head = session.head(object_key)
    assert head is not None
    assert head.filename == "réport-📄.pdf"
    assert head.custom["release"] == "vérsion-1.0-🚀"


def test_round_trips_expiration_policy_beyond_a_year(server_url: str) -> None:
    client = Client(
        server_url,
        token=TestSecretKey.get(),
    )

    # Serializes as "400d 1h 18m 31s"
    ttl = timedelta(days=400, seconds=4711)
    test_usecase = Usecase(
        "test-usecase",
        expiration_policy=TimeToLive(ttl),
    )

    session = client.session(test_usecase, org=42, project=1337)

    object_key = session.put(b"test data")

    metadata = session.head(object_key)
    assert metadata is not None
    assert metadata.expiration_policy == TimeToLive(ttl)
    assert metadata.time_expires is not None

    retrieved = session.get(object_key)
    assert retrieved is not None
    assert retrieved.metadata.expiration_policy == TimeToLive(ttl)


def test_extend_expiry(server_url: str) -> None:
    client = Client(server_url, token=TestSecretKey.get())
    policy = TimeToLive(timedelta(days=1))
    session = client.session(Usecase("test-usecase", expiration_policy=policy), org=42)
    key = session.put(b"payload")

    session.extend_expiry(key, from_creation=timedelta(days=3))
    metadata = session.head(key)
    assert metadata is not None and metadata.time_created is not None
    assert metadata.time_expires == metadata.time_created + timedelta(days=3)
    assert metadata.expiration_policy == TimeToLive(timedelta(days=3))

    session.extend_expiry(key, from_creation=timedelta(days=2))
    assert session.head(key) == metadata
    result = session.get(key)
    assert result is not None
    assert result.payload.read() == b"payload"


def test_extend_expiry_missing_object(server_url: str) -> None:
    client = Client(server_url, token=TestSecretKey.get())
    session = client.session(Usecase("test-usecase"), org=42)
    with pytest.raises(ObjectNotFound) as error:
        session.extend_expiry("missing", from_now=timedelta(days=1))
    assert error.value.status == 404


def test_extend_expiry_non_expiring_object(server_url: str) -> None:
    client = Client(server_url, token=TestSecretKey.get())
    session = client.session(Usecase("test-usecase"), org=42)
    key = session.put(b"payload")
    with pytest.raises(ExpiryExtensionRejected) as error:
        session.extend_expiry(key, from_now=timedelta(days=1))
    assert error.value.status == 409


def test_full_cycle_uncompressed(server_url: str) -> None:
    client = Client(
        server_url,
        token=TestSecretKey.get(),
    )
    test_usecase = Usecase(
        "test-usecase",
        compression="none",
        expiration_policy=TimeToLive(timedelta(days=1)),
    )

    session = client.session(test_usecase, my_scope=42, my_nested_scope="something!")

    data = b"test data"
    compressor = zstandard.ZstdCompressor()
    compressed_data = compressor.compress(data)

    object_key = session.put(compressed_data, compress="none")
    assert object_key is not None

    retrieved = session.get(object_key)
    assert retrieved is not None
    retrieved_data = retrieved.payload.read()

    assert retrieved_data == compressed_data

    decompressor = zstandard.ZstdDecompressor()
    decompressed_data = decompressor.decompress(retrieved_data)

    assert decompressed_data == data


def test_precompressed_is_stored_verbatim(server_url: str) -> None:
    client = Client(
        server_url,
        token=TestSecretKey.get(),
    )
    test_usecase = Usecase("test-usecase")
    session = client.session(test_usecase, org=42, project=1337)

    data = b"test data"
    compressed_data = zstandard.ZstdCompressor().compress(data)

    object_key = session.put(compressed_data, precompressed="zstd")

    # the payload is stored as-is, without another compression pass
    retrieved = session.get(object_key, decompress=False)
    assert retrieved is not None
    assert retrieved.metadata.compression == "zstd"
    assert retrieved.payload.read() == compressed_data

    # and the recorded encoding makes downloads decompress transparently
    retrieved = session.get(object_key)
    assert retrieved is not None
    assert retrieved.metadata.compression is None
    assert retrieved.payload.read() == data


def test_precompressed_rejects_conflicting_arguments(server_url: str) -> None:
    client = Client(server_url, token=TestSecretKey.get())
    session = client.session(Usecase("test-usecase"), org=42, project=1337)

    with pytest.raises(ValueError):
        session.put(b"test data", compress="zstd", precompressed="zstd")

    with pytest.raises(ValueError):
        session.put(b"test data", precompressed="none")

    with pytest.raises(ValueError):
        session.put(b"test data", precompressed="brotli")  # type: ignore[arg-type]


def test_compression_argument_is_deprecated(server_url: str) -> None:
    client = Client(server_url, token=TestSecretKey.get())
    session = client.session(Usecase("test-usecase"), org=42, project=1337)

    with pytest.deprecated_call():
        object_key = session.put(b"test data", compression="none")

    retrieved = session.get(object_key)
    assert retrieved is not None
    assert retrieved.metadata.compression is None
    assert retrieved.payload.read() == b"test data"

    with pytest.warns(DeprecationWarning), pytest.raises(ValueError):
        session.put(b"test data", compress="none", compression="none")


def test_full_cycle_structured_key(server_url: str) -> None:
    client = Client(
        server_url,
        token=TestSecretKey.get(),
    )
    test_usecase = Usecase(
        "test-usecase",
        expiration_policy=TimeToLive(timedelta(days=1)),
    )

    session = client.session(test_usecase, org=42, project=1337)
    object_key = session.put(b"test data", key="1/shard-0.json")
    assert object_key == "1/shard-0.json"

    retrieved = session.get(object_key)
    assert retrieved is not None
    assert retrieved.payload.read() == b"test data"


def test_not_found_with_different_scope(server_url: str) -> None:
    client = Client(
        server_url,
        token=TestSecretKey.get(),
    )
    test_usecase = Usecase(
        "test-usecase",
        expiration_policy=TimeToLive(timedelta(days=1)),
    )

    # First create an object with one scope
    session = client.session(test_usecase, org=42, project=1337)
    object_key = session.put(b"test data")

    # Now make sure we can't fetch it
    session = client.session(test_usecase, org=42, project=9999)
    assert session.get(object_key) is None


def test_full_cycle_with_static_token(server_url: str) -> None:
    token_generator = TestSecretKey.get()
    token = token_generator.token_for_scope("test-usecase", Scope(org=42, project=1337))

    client = Client(server_url, token=token)
    test_usecase = Usecase(
        "test-usecase",
        expiration_policy=TimeToLive(timedelta(days=1)),
    )

    session = client.session(test_usecase, org=42, project=1337)

    object_key = session.put(b"static token data")
    assert object_key is not None

    retrieved = session.get(object_key)
    assert retrieved is not None
    assert retrieved.payload.read() == b"static token data"

    session.delete(object_key)

    assert session.get(object_key) is None


def test_fails_with_insufficient_auth_perms(server_url: str) -> None:
    client = Client(server_url, token=TestSecretKey.create(permissions=[]))
    test_usecase = Usecase(
        "test-usecase",
        expiration_policy=TimeToLive(timedelta(days=1)),
    )

    session = client.session(test_usecase, org=42, project=1337)

    with pytest.raises(RequestError) as exc_info:
        _object_key = session.put(b"test data")
    assert exc_info.value.status == 403


def test_read_timeout() -> None:
    # this server accepts the connection
    # (even though the backlog is 0 and we never call `accept`),
    # but will never reply with anything, thus causing a read timeout
    s = socket.create_server(("127.0.0.1", 0), backlog=0)
    addr = s.getsockname()
    url = f"http://127.0.0.1:{addr[1]}"

    client = Client(
        url,
        timeout_ms=500,
        token=TestSecretKey.get(),
    )
    test_usecase = Usecase(
        "test-usecase",
        compression="zstd",
        expiration_policy=TimeToLive(timedelta(days=1)),
    )

    session = client.session(test_usecase, org=12345, project=1337, app_slug="email_app")

    with pytest.raises(urllib3.exceptions.MaxRetryError):
        session.get("foo")


# test_connect_timeout: left out (it connects to 10.255.255.1, outside loopback).


def test_multipart_full_cycle_uncompressed(server_url: str) -> None:
    client = Client(server_url, token=TestSecretKey.get())
    usecase = Usecase(
        "test-usecase",
        compression="none",
        expiration_policy=TimeToLive(timedelta(days=1)),
    )
    session = client.session(usecase, org=42, project=1337)

    upload = session.initiate_multipart_upload(key="mp-uncompressed")
    assert upload.key == "mp-uncompressed"
    assert upload.upload_id

    part1 = upload.put_part(b"hello ", part_number=1, content_length=6)
    part2 = upload.put_part(b"world!", part_number=2, content_length=6)

    final_key = upload.complete([part1, part2])
    assert final_key == "mp-uncompressed"

    retrieved = session.get(final_key, decompress=False)
    assert retrieved is not None
    assert retrieved.payload.read() == b"hello world!"


def test_multipart_full_cycle_compressed(server_url: str) -> None:
    client = Client(server_url, token=TestSecretKey.get())
    usecase = Usecase(
        "test-usecase",
        compression="none",
        expiration_policy=TimeToLive(timedelta(days=1)),
    )
    session = client.session(usecase, org=42, project=1337)

    upload = session.initiate_multipart_upload(
        key="mp-compressed",
        compression="zstd",
    )

    cctx = zstandard.ZstdCompressor()
    compressed_part1 = cctx.compress(b"hello ")
    compressed_part2 = cctx.compress(b"world!")

    part1 = upload.put_part(compressed_part1, part_number=1, content_length=len(compressed_part1))
    part2 = upload.put_part(compressed_part2, part_number=2, content_length=len(compressed_part2))

    final_key = upload.complete([part1, part2])

    # Verify raw compressed round-trip
    retrieved = session.get(final_key, decompress=False)
    assert retrieved is not None
    assert retrieved.metadata.compression == "zstd"
    raw = retrieved.payload.read()
    assert raw == compressed_part1 + compressed_part2

    # Verify transparent decompression
    retrieved = session.get(final_key)
    assert retrieved is not None
    assert retrieved.metadata.compression is None
    assert retrieved.payload.read() == b"hello world!"


def test_multipart_streaming_part_upload_uncompressed(server_url: str) -> None:
    client = Client(server_url, token=TestSecretKey.get())
    usecase = Usecase(
        "test-usecase",
        compression="none",
        expiration_policy=TimeToLive(timedelta(days=1)),
    )
    session = client.session(usecase, org=42, project=1337)

    upload = session.initiate_multipart_upload(key="mp-streaming-uncompressed")

    part1_payload = b"hello "
    part2_payload = b"world!"
    part1 = upload.put_part(
        UnrewindableStream(part1_payload),
        part_number=1,
        content_length=len(part1_payload),
    )
    part2 = upload.put_part(
        UnrewindableStream(part2_payload),
        part_number=2,
        content_length=len(part2_payload),
    )

    final_key = upload.complete([part1, part2])

    retrieved = session.get(final_key)
    assert retrieved is not None
    assert retrieved.payload.read() == b"hello world!"


def test_multipart_streaming_part_upload_compressed(server_url: str) -> None:
    client = Client(server_url, token=TestSecretKey.get())
    usecase = Usecase(
        "test-usecase",
        compression="none",
        expiration_policy=TimeToLive(timedelta(days=1)),
    )
    session = client.session(usecase, org=42, project=1337)

    upload = session.initiate_multipart_upload(
        key="mp-streaming-compressed",
        compression="zstd",
    )

    cctx = zstandard.ZstdCompressor()
    compressed_part1 = cctx.compress(b"hello ")
    compressed_part2 = cctx.compress(b"world!")

    part1 = upload.put_part(
        UnrewindableStream(compressed_part1),
        part_number=1,
        content_length=len(compressed_part1),
    )
    part2 = upload.put_part(
        UnrewindableStream(compressed_part2),
        part_number=2,
        content_length=len(compressed_part2),
    )

    final_key = upload.complete([part1, part2])

    retrieved = session.get(final_key, decompress=False)
    assert retrieved is not None
    assert retrieved.metadata.compression == "zstd"
    assert retrieved.payload.read() == compressed_part1 + compressed_part2

    retrieved = session.get(final_key)
    assert retrieved is not None
    assert retrieved.metadata.compression is None
    assert retrieved.payload.read() == b"hello world!"


def test_multipart_server_generated_key(server_url: str) -> None:
    client = Client(server_url, token=TestSecretKey.get())
    usecase = Usecase(
        "test-usecase",
        compression="none",
        expiration_policy=TimeToLive(timedelta(days=1)),
    )
    session = client.session(usecase, org=42, project=1337)

    upload = session.initiate_multipart_upload()
    assert upload.key

    part = upload.put_part(b"data", part_number=1, content_length=4)
    final_key = upload.complete([part])
    assert final_key

    retrieved = session.get(final_key)
    assert retrieved is not None
    assert retrieved.payload.read() == b"data"


def test_multipart_list_parts(server_url: str) -> None:
    client = Client(server_url, token=TestSecretKey.get())
    usecase = Usecase(
        "test-usecase",
        compression="none",
        expiration_policy=TimeToLive(timedelta(days=1)),
    )
    session = client.session(usecase, org=42, project=1337)

    upload = session.initiate_multipart_upload(key="mp-list-parts")

    upload.put_part(b"part-two", part_number=2, content_length=8)
    upload.put_part(b"part-one", part_number=1, content_length=8)

    parts = upload.list_parts()
    assert len(parts) == 2

    p1 = next(p for p in parts if p.part_number == 1)
    p2 = next(p for p in parts if p.part_number == 2)
    assert p1.size == 8
    assert p2.size == 8

    upload.abort()


def test_multipart_abort(server_url: str) -> None:
    client = Client(server_url, token=TestSecretKey.get())
    usecase = Usecase(
        "test-usecase",
        compression="none",
        expiration_policy=TimeToLive(timedelta(days=1)),
    )
    session = client.session(usecase, org=42, project=1337)

    upload = session.initiate_multipart_upload(key="mp-abort")
    upload.put_part(b"some data", part_number=1, content_length=9)
    upload.abort()


def test_multipart_metadata_preserved(server_url: str) -> None:
    client = Client(server_url, token=TestSecretKey.get())
    usecase = Usecase(
        "test-usecase",
        compression="none",
        expiration_policy=TimeToLive(timedelta(days=1)),
    )
    session = client.session(usecase, org=42, project=1337)

    upload = session.initiate_multipart_upload(
        key="mp-metadata",
        content_type="text/plain",
        origin="203.0.113.42",
        filename="archive.tar.gz",
        metadata={"my-key": "my-value"},
    )

    part = upload.put_part(b"payload", part_number=1, content_length=7)
    final_key = upload.complete([part])

    retrieved = session.get(final_key)
    assert retrieved is not None
    assert retrieved.metadata.content_type == "text/plain"
    assert retrieved.metadata.origin == "203.0.113.42"
    assert retrieved.metadata.filename == "archive.tar.gz"
    assert retrieved.metadata.custom.get("my-key") == "my-value"


def test_multipart_complete_with_bad_etag(server_url: str) -> None:
    client = Client(server_url, token=TestSecretKey.get())
    usecase = Usecase(
        "test-usecase",
        compression="none",
        expiration_policy=TimeToLive(timedelta(days=1)),
    )
    session = client.session(usecase, org=42, project=1337)

    upload = session.initiate_multipart_upload(key="mp-bad-etag")
    upload.put_part(b"real data", part_number=1, content_length=9)

    with pytest.raises(MultipartCompleteError) as exc_info:
        upload.complete([CompletePart(part_number=1, etag="bogus-etag")])

    assert exc_info.value.code
    assert exc_info.value.status == 200


def test_multipart_resume(server_url: str) -> None:
    client = Client(server_url, token=TestSecretKey.get())
    usecase = Usecase(
        "test-usecase",
        compression="none",
        expiration_policy=TimeToLive(timedelta(days=1)),
    )
    session = client.session(usecase, org=42, project=1337)

    upload = session.initiate_multipart_upload(key="mp-resume")
    saved_key = upload.key
    saved_upload_id = upload.upload_id

    upload.put_part(b"first", part_number=1, content_length=5)

    # Simulate resuming from saved state
    resumed = session.resume_multipart_upload(saved_key, saved_upload_id)
    assert resumed.key == saved_key
    assert resumed.upload_id == saved_upload_id

    resumed.put_part(b"second", part_number=2, content_length=6)

    existing = resumed.list_parts()
    assert len(existing) == 2

    final_key = resumed.complete(existing)

    retrieved = session.get(final_key)
    assert retrieved is not None
    assert retrieved.payload.read() == b"firstsecond"


def test_multipart_concurrent_part_uploads(server_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    client = Client(server_url, token=TestSecretKey.get())
    usecase = Usecase(
        "test-usecase",
        compression="none",
        expiration_policy=TimeToLive(timedelta(days=1)),
    )
    session = client.session(usecase, org=42, project=1337)

    upload = session.initiate_multipart_upload(key="mp-concurrent")

    chunks = [f"chunk-{i}".encode() for i in range(8)]

    def put_part(part_number: int, data: bytes) -> CompletePart:
        return upload.put_part(data, part_number=part_number, content_length=len(data))

    with ThreadPoolExecutor(max_workers=4) as executor:
        futures = [executor.submit(put_part, i + 1, chunk) for i, chunk in enumerate(chunks)]
        parts = [f.result() for f in futures]

    final_key = upload.complete(parts)

    retrieved = session.get(final_key)
    assert retrieved is not None
    assert retrieved.payload.read() == b"".join(chunks)


def _fetch(url: str, method: str = "GET") -> tuple[int, bytes]:
    """Fetches ``url`` with plain urllib (no auth header), returning (status, body).

    Using stdlib urllib proves the pre-signed URL is transmitted verbatim by an
    HTTP client other than the objectstore client itself.
    """
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _presign_session(server_url: str) -> Session:
    client = Client(server_url, token=TestSecretKey.get())
    # Store uncompressed so a raw (non-decompressing) urllib GET of the
    # pre-signed URL returns the original bytes verbatim.
    usecase = Usecase(
        "test-usecase",
        compression="none",
        expiration_policy=TimeToLive(timedelta(days=1)),
    )
    return client.session(usecase, org=42, project=1337)


def test_presigned_get_succeeds(server_url: str) -> None:
    session = _presign_session(server_url)
    session.put(b"presigned hello", key="presigned-get")

    url = session.presigned_object_url("GET", "presigned-get", duration=timedelta(hours=1))
    status, body = _fetch(url)

    assert status == 200
    assert body == b"presigned hello"


def test_presigned_head_succeeds(server_url: str) -> None:
    session = _presign_session(server_url)
    session.put(b"presigned hello", key="presigned-head")

    url = session.presigned_object_url("HEAD", "presigned-head", duration=timedelta(hours=1))
    status, _ = _fetch(url, method="HEAD")

    assert status == 200


def test_presigned_case_insensitive_method(server_url: str) -> None:
    session = _presign_session(server_url)
    session.put(b"lowercase method", key="presigned-lower")

    # Lowercase method is normalized to uppercase at runtime.
    url = session.presigned_object_url("GET", "presigned-lower", duration=timedelta(hours=1))  # type: ignore[arg-type]
    status, body = _fetch(url)

    assert status == 200
    assert body == b"lowercase method"


def test_presigned_requires_token_generator(server_url: str) -> None:
    # A static token string cannot sign pre-signed URLs.
    token = TestSecretKey.get().token_for_scope("test-usecase", Scope(org=42, project=1337))
    client = Client(server_url, token=token)
    usecase = Usecase("test-usecase")
    session = client.session(usecase, org=42, project=1337)

    with pytest.raises(ValueError, match="no secret key"):
        session.presigned_object_url("GET", "whatever", duration=timedelta(hours=1))


def test_presigned_rejects_unsupported_method(server_url: str) -> None:
    session = _presign_session(server_url)
    with pytest.raises(ValueError, match="unsupported pre-signed method"):
        session.presigned_object_url("PUT", "whatever", duration=timedelta(hours=1))  # type: ignore[arg-type]


def test_presigned_rejects_duration_over_max(server_url: str) -> None:
    session = _presign_session(server_url)
    with pytest.raises(ValueError, match="exceeds the maximum"):
        session.presigned_object_url("GET", "whatever", duration=timedelta(days=8))


def test_presigned_tampered_signature_unauthorized(server_url: str) -> None:
    session = _presign_session(server_url)
    session.put(b"presigned hello", key="presigned-tamper")

    url = session.presigned_object_url("GET", "presigned-tamper", duration=timedelta(hours=1))
    # Flip the last character of the signature.
    last = url[-1]
    tampered = url[:-1] + ("A" if last != "A" else "B")

    status, _ = _fetch(tampered)
    assert status == 401


# Object keys exercising URL-encoding corner cases. Each must round-trip: the
# normal `put` and the pre-signed `urllib` GET percent-encode the path
# identically (both treat the key as a literal string, see
# `utils.encode_path`), so they resolve to the same stored object. This
# includes keys containing a literal `%XX`: the `%` is escaped to `%25` rather
# than mistaken for an existing escape (see `test_put_stores_under_literal_key`).
ENCODING_CORNER_CASE_KEYS = [
    "plain-key",
    "with space",
    "café-unicode",
    "emoji-😀",
    "plus+sign",
    "sub!$'()*+,=delims",
    "tilde~dot.key",
    "100%literal-percent",
    "looks%20encoded",
    "nested/path/segments",
    "quote'apostrophe",
    "at@sign",
    "colon:separated",
    "ampersand&inside",
    "semi;colon",
    "equals=sign",
]


@pytest.mark.parametrize("key", ENCODING_CORNER_CASE_KEYS)
def test_presigned_get_encoding_corner_cases(server_url: str, key: str) -> None:
    session = _presign_session(server_url)
    payload = f"payload for {key}".encode()
    session.put(payload, key=key)

    url = session.presigned_object_url("GET", key, duration=timedelta(hours=1))
    status, body = _fetch(url)

    assert status == 200, f"key {key!r} failed with status {status}"
    assert body == payload


def test_object_url_read_only_token_succeeds(server_url: str) -> None:
    session = _presign_session(server_url)
    session.put(b"read only hello", key="read-only-url")

    url = session.object_url("read-only-url", token_validity=timedelta(minutes=5))

    # Parse the URL like a real HTTP client would, so this also covers structural
    # breakage such as a duplicate `?` or wrong encoding of the query string.
    query = urllib.parse.parse_qs(urllib.parse.urlparse(url).query, strict_parsing=True)
    assert list(query) == ["os_auth"]
    # The token round-trips verbatim through URL parsing (no encoding applied).
    (token,) = query["os_auth"]
    assert token.count(".") == 2  # a JWT is `header.payload.signature`

    status, body = _fetch(url)
    assert status == 200
    assert body == b"read only hello"


def test_object_url_without_token_is_unauthorized(server_url: str) -> None:
    session = _presign_session(server_url)
    session.put(b"needs auth", key="needs-auth")

    # No token embedded: the server enforces auth, so a bare GET is rejected.
    url = session.object_url("needs-auth")
    assert urllib.parse.urlparse(url).query == ""

    status, _ = _fetch(url)
    assert status == 400


def test_object_url_read_only_token_requires_secret_key(server_url: str) -> None:
    # A static token string cannot mint a re-scoped read-only token.
    token = TestSecretKey.get().token_for_scope("test-usecase", Scope(org=42, project=1337))
    client = Client(server_url, token=token)
    session = client.session(Usecase("test-usecase"), org=42, project=1337)

    with pytest.raises(ValueError, match="no secret key"):
        session.object_url("whatever", token_validity=timedelta(minutes=5))


def test_put_stores_under_literal_key(server_url: str) -> None:
    # A literal "%XX" in a key must be stored verbatim, not decoded: `put` sends
    # `looks%2520encoded` on the wire, which the server decodes back to the
    # literal key `looks%20encoded` rather than `looks encoded`. The server
    # echoes the stored key in the `put` response body, so we can assert directly
    # which key the object landed under.
    session = _presign_session(server_url)
    key = "looks%20encoded"
    payload = b"literal percent key"

    stored_key = session.put(payload, key=key)
    assert stored_key == key

    # Retrievable by that same literal key, both normally and pre-signed.
    retrieved = session.get(key)
    assert retrieved is not None
    assert retrieved.payload.read() == payload
    url = session.presigned_object_url("GET", key, duration=timedelta(hours=1))
    status, body = _fetch(url)
    assert status == 200
    assert body == payload


@pytest.mark.parametrize("precompressed", [False, True])
def test_compressed_file_upload(
    server_url: str, monkeypatch: pytest.MonkeyPatch, precompressed: bool
) -> None:
    from django_objectstore.client import _resumable

    monkeypatch.setattr(_resumable, "RESUMABLE_THRESHOLD", 1)
    session = Client(server_url, token=TestSecretKey.get()).session(
        Usecase("test-usecase", expiration_policy=TimeToLive(timedelta(days=1))), org=42
    )
    create = Mock(wraps=session._create_upload)
    monkeypatch.setattr(session, "_create_upload", create)
    contents = b"file contents\n" * 100
    encoded = zstandard.ZstdCompressor().compress(contents) if precompressed else contents
    with tempfile.TemporaryFile() as source:
        source.write(b"skip this prefix" + encoded)
        source.seek(len(b"skip this prefix"))
        key = session.put(
            source,
            precompressed="zstd" if precompressed else None,
            content_type="text/plain",
            metadata={"source": "file"},
            origin="203.0.113.42",
            filename="example.txt",
        )
        assert create.call_count == int(precompressed)
        assert not source.closed
        stored = session.head(key)
        assert stored is not None
        assert stored.compression == "zstd"
        assert stored.content_type == "text/plain"
        assert stored.filename == "example.txt"
        assert stored.origin == "203.0.113.42"
        assert stored.custom == {"source": "file"}
        retrieved = session.get(key)
        assert retrieved is not None
        assert retrieved.payload.read() == contents
