"""Every Session method and argument over HTTP against the local server."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime, timedelta

import pytest
import urllib3
import zstandard

from django_objectstore.client import (
    Client,
    ExpiryExtensionRejected,
    ObjectNotFound,
    Permission,
    RequestError,
    SecretKey,
    Session,
    TimeToIdle,
    TimeToLive,
    Usecase,
)
from django_objectstore.client.multipart import MultipartCompleteError
from django_objectstore.server import LocalServer

KEYS = [
    "with space",
    "café-unicode",
    "emoji-😀",
    "plus+sign",
    "sub!$'()*+,=delims",
    "100%literal-percent",
    "looks%20encoded",
    "q?mark",
    "hash#x",
    "nested/path/segments",
]


def raw_get(url: str, headers: dict[str, str] | None = None) -> urllib3.BaseHTTPResponse:
    with urllib3.PoolManager() as http:
        return http.request("GET", url, headers=headers, decode_content=False)


def test_put_get_roundtrip_compressed(session: Session) -> None:
    data = b"hello objectstore " * 5000
    key = session.put(data)
    assert len(key) == 36  # server-generated UUID
    got = session.get(key)
    assert got is not None
    with got.payload as payload:
        assert payload.read() == data
    assert got.metadata.compression is None  # decompressed for us
    raw = session.get(key, decompress=False)
    assert raw is not None
    with raw.payload as payload:
        stored = payload.read()
    assert raw.metadata.compression == "zstd"
    assert len(stored) < len(data)
    assert zstandard.ZstdDecompressor().decompressobj().decompress(stored) == data


def test_accept_encoding_passes_stored_bytes_through(session: Session) -> None:
    key = session.put(b"abc" * 1000, key="acc")
    for accept in (["zstd"], ["*"]):
        got = session.get(key, accept_encoding=accept)
        assert got is not None
        with got.payload as payload:
            assert payload.read(4) == b"\x28\xb5\x2f\xfd"  # zstd magic
        assert got.metadata.compression == "zstd"
    got = session.get(key, accept_encoding=["gzip"])
    assert got is not None
    with got.payload as payload:
        assert payload.read() == b"abc" * 1000


def test_get_missing_returns_none_and_head_too(session: Session) -> None:
    assert session.get("missing") is None
    assert session.head("missing") is None
    assert session.get_range("missing", 0, 1) is None


@pytest.mark.parametrize("key", KEYS)
def test_keys_are_literal_strings(session: Session, key: str) -> None:
    assert session.put(key.encode(), key=key, compress="none") == key
    got = session.get(key)
    assert got is not None
    with got.payload as payload:
        assert payload.read() == key.encode()
    session.delete(key)
    assert session.head(key) is None


def test_empty_key_means_server_generated(session: Session) -> None:
    key = session.put(b"x", key="")
    assert len(key) == 36


def test_empty_scope_renders_underscore(client: Client, server: LocalServer) -> None:
    session = client.session(Usecase("test"))
    session.put(b"scopeless", key="k-empty-scope", compress="none")
    assert session.object_url("k") == f"{server.url}/v1/objects/test/_/k"
    got = session.get("k-empty-scope")
    assert got is not None
    with got.payload as payload:
        assert payload.read() == b"scopeless"


def test_metadata_roundtrip(session: Session) -> None:
    key = session.put(
        b"{}",
        key="meta",
        content_type="application/json",
        metadata={"build_id": "42", "note": "naïve 100% ok\r\nx: y"},
        expiration_policy=TimeToLive(timedelta(days=30)),
        origin="203.0.113.42",
        filename="rapport d'été.json",
    )
    before = datetime.now(tz=UTC) - timedelta(seconds=5)
    for meta in (session.head(key), session.get(key).metadata):  # type: ignore[union-attr]
        assert meta is not None
        assert meta.content_type == "application/json"
        assert meta.compression == "zstd" or meta.compression is None
        assert meta.expiration_policy == TimeToLive(timedelta(days=30))
        assert meta.custom == {"build_id": "42", "note": "naïve 100% ok\r\nx: y"}
        assert meta.origin == "203.0.113.42"
        assert meta.filename == "rapport d'été.json"
        assert meta.time_created is not None
        assert meta.time_created > before
        assert meta.time_expires == meta.time_created + timedelta(days=30)
    head = session.head(key)
    assert head is not None
    assert head.compression == "zstd"
    assert head.size is None or head.size > 0


def test_usecase_defaults_and_overrides(client: Client, org: int) -> None:
    usecase = Usecase("test", compression="none", expiration_policy=TimeToIdle(timedelta(hours=1)))
    session = client.session(usecase, org=org)
    key = session.put(b"plain")
    meta = session.head(key)
    assert meta is not None
    assert meta.compression is None
    assert meta.expiration_policy == TimeToIdle(timedelta(hours=1))
    key = session.put(b"plain", compress="zstd", expiration_policy=TimeToLive(timedelta(1)))
    meta = session.head(key)
    assert meta is not None
    assert meta.compression == "zstd"
    assert meta.expiration_policy == TimeToLive(timedelta(days=1))
    with pytest.deprecated_call(match="use `compress` instead"):
        key = session.put(b"older name", compression="zstd")
    assert session.head(key).compression == "zstd"  # type: ignore[union-attr]


def test_precompressed(session: Session) -> None:
    frame = zstandard.ZstdCompressor().compress(b"already compressed " * 100)
    key = session.put(frame, precompressed="zstd")
    raw = session.get(key, decompress=False)
    assert raw is not None
    with raw.payload as payload:
        assert payload.read() == frame  # uploaded verbatim
    got = session.get(key)
    assert got is not None
    with got.payload as payload:
        assert payload.read() == b"already compressed " * 100


@pytest.mark.parametrize("compress", ["zstd", "none"])
def test_put_streams_from_files_iterables_and_buffers(
    session: Session, compress: str, tmp_path: object
) -> None:
    data = os.urandom(300_000) + b"z" * 300_000
    sources: list[object] = [
        io.BytesIO(data),
        iter([data[:1000], b"", data[1000:]]),
        (data[i : i + 4096] for i in range(0, len(data), 4096)),
        bytearray(data),
        memoryview(data),
    ]
    path = tmp_path / "blob.bin"  # type: ignore[operator]
    path.write_bytes(data)
    with open(path, "rb") as file:
        file.seek(10)
        key = session.put(file, compress=compress)  # type: ignore[arg-type]
        assert file.tell() == len(data)
    got = session.get(key)
    assert got is not None
    with got.payload as payload:
        assert payload.read() == data[10:]
    for source in sources:
        key = session.put(source, compress=compress)  # type: ignore[arg-type]
        got = session.get(key)
        assert got is not None
        with got.payload as payload:
            assert payload.read() == data


def test_put_rejects_text_streams(session: Session) -> None:
    with pytest.raises(TypeError, match="binary"):
        session.put(io.StringIO("text"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must yield bytes"):
        session.put(iter(["text"]))  # type: ignore[arg-type]


def test_payload_reads_incrementally(session: Session) -> None:
    data = os.urandom(3 * 1024 * 1024)
    for compress in ("zstd", "none"):
        key = session.put(data, compress=compress)  # type: ignore[arg-type]
        got = session.get(key)
        assert got is not None
        with got.payload as payload:
            first = payload.read(10)
            rest = payload.read(100_000)
            assert first + rest == data[:100_010]
        # closed early: the connection is dropped, the pool still works
        assert session.head(key) is not None


def test_empty_object(session: Session) -> None:
    for compress in ("zstd", "none"):
        key = session.put(b"", compress=compress)  # type: ignore[arg-type]
        got = session.get(key)
        assert got is not None
        with got.payload as payload:
            assert payload.read() == b""


def test_get_range_uncompressed(session: Session) -> None:
    text = b"Hello, Range Requests!"
    key = session.put(text, key="range", compress="none")
    cases = [
        ((0, 4), b"Hello", 0, 4),
        ((7, None), text[7:], 7, 21),
        ((-9, None), b"Requests!", 13, 21),
    ]
    cases.append(((0, 9999), text, 0, 21))
    for (start, end), body, first, last in cases:
        got = session.get_range(key, start, end)
        assert got is not None
        with got.payload as payload:
            assert payload.read() == body
        assert (got.start, got.end, got.total_size) == (first, last, 22)
        assert got.metadata.compression is None
    beyond = session.get_range(key, 100)
    assert beyond is not None
    assert (beyond.payload.read(), beyond.start, beyond.total_size) == (b"", 22, 22)
    beyond.payload.close()
    # total stored size cheaply, also for empty objects
    assert session.get_range(session.put(b"", compress="none"), 0, 0).total_size == 0  # type: ignore[union-attr]


def test_get_range_addresses_stored_bytes_of_compressed_objects(session: Session) -> None:
    key = session.put(b"compress me " * 1000)
    raw = session.get(key, decompress=False)
    assert raw is not None
    with raw.payload as payload:
        stored = payload.read()
    got = session.get_range(key, 0, 3)
    assert got is not None
    with got.payload as payload:
        assert payload.read() == stored[:4]
    assert got.total_size == len(stored)
    assert got.metadata.compression == "zstd"


def test_delete(session: Session) -> None:
    key = session.put(b"bye")
    session.delete(key)
    assert session.get(key) is None
    session.delete(key)  # deleting again is fine (204)


def test_object_url_with_token(session: Session) -> None:
    key = session.put(b"via url", key="url key", compress="none")
    assert raw_get(session.object_url(key)).status == 400  # no token
    url = session.object_url(key, token_validity=timedelta(minutes=5))
    assert "os_auth=" in url
    response = raw_get(url)
    assert (response.status, response.data) == (200, b"via url")


def test_presigned_object_url(session: Session) -> None:
    for key in [*KEYS, "plain"]:
        session.put(b"signed", key=key, compress="none")
        url = session.presigned_object_url("GET", key)
        response = raw_get(url)
        assert (response.status, response.data) == (200, b"signed")
        with urllib3.PoolManager() as http:
            head = http.request("HEAD", session.presigned_object_url("HEAD", key, timedelta(1)))
        assert head.status == 200


def test_mint_token(session: Session, server: LocalServer) -> None:
    key = session.put(b"minted", key="minted", compress="none")
    read_only = session.mint_token(permissions=[Permission.OBJECT_READ], expiry_seconds=30)
    url = session.object_url(key)
    response = raw_get(url, headers={"x-os-auth": f"Bearer {read_only}"})
    assert response.status == 200
    with urllib3.PoolManager() as http:
        denied = http.request("DELETE", url, headers={"x-os-auth": f"Bearer {read_only}"})
    assert denied.status == 403


def test_static_token_string(server: LocalServer, secret_key: SecretKey, org: int) -> None:
    usecase = Usecase("test")
    with Client(server.url, token=secret_key) as signer:
        token = signer.session(usecase, org=org).mint_token(expiry_seconds=300)
    with Client(server.url, token=token) as client:
        session = client.session(usecase, org=org)
        key = session.put(b"static")
        assert session.head(key) is not None


def test_errors_carry_status_and_body(server: LocalServer, org: int) -> None:
    with Client(server.url) as anonymous:
        session = anonymous.session(Usecase("test"), org=org)
        with pytest.raises(RequestError) as info:
            session.put(b"x")
    assert info.value.status == 400
    assert "No authorization token" in (info.value.response or "")
    assert "No authorization token" in str(info.value)
    with Client(server.url, token="not-a-jwt") as bad, pytest.raises(RequestError) as info:
        bad.session(Usecase("test"), org=org).get("k")
    assert info.value.status == 401


def test_forbidden(server: LocalServer, org: int) -> None:
    from .conftest import PRIVATE_PEM

    reader = SecretKey("test_kid", PRIVATE_PEM, permissions=[Permission.OBJECT_READ])
    with Client(server.url, token=reader) as client:
        session = client.session(Usecase("test"), org=org)
        with pytest.raises(RequestError) as info:
            session.put(b"x")
        assert info.value.status == 403
        assert session.get("nothing") is None


def test_bad_content_type_is_a_400(session: Session) -> None:
    with pytest.raises(RequestError) as info:
        session.put(b"x", content_type="not a valid media type!")
    assert info.value.status == 400
    assert info.value.response


def test_extend_expiry(session: Session) -> None:
    key = session.put(b"x", expiration_policy=TimeToLive(timedelta(hours=1)))
    session.extend_expiry(key, from_now=timedelta(days=2))
    meta = session.head(key)
    assert meta is not None
    assert meta.time_expires is not None
    assert meta.time_expires > datetime.now(tz=UTC) + timedelta(days=1)
    session.extend_expiry(key, at=datetime.now(tz=UTC) + timedelta(days=3))
    session.extend_expiry(key, from_creation=timedelta(days=4))
    with pytest.raises(ObjectNotFound) as missing:
        session.extend_expiry("missing", from_now=timedelta(days=1))
    assert missing.value.status == 404
    manual = session.put(b"forever")
    with pytest.raises(ExpiryExtensionRejected) as rejected:
        session.extend_expiry(manual, from_now=timedelta(days=1))
    assert rejected.value.status == 409
    assert isinstance(rejected.value, RequestError)


def test_multipart_handle(session: Session) -> None:
    upload = session.initiate_multipart_upload(
        key="mp key",
        compression="none",
        content_type="text/plain",
        metadata={"my-key": "my-value"},
        filename="archive.tar.gz",
        origin="10.0.0.1",
    )
    assert upload.key == "mp key"
    second = upload.put_part(b"world!", part_number=2, content_length=6)
    first = upload.put_part(io.BytesIO(b"hello "), part_number=1, content_length=6)
    listed = upload.list_parts()
    assert [(p.part_number, p.size) for p in listed] == [(1, 6), (2, 6)]
    resumed = session.resume_multipart_upload(upload.key, upload.upload_id)
    assert resumed.complete([second, first]) == "mp key"
    got = session.get("mp key")
    assert got is not None
    with got.payload as payload:
        assert payload.read() == b"hello world!"
    assert got.metadata.content_type == "text/plain"
    assert got.metadata.custom == {"my-key": "my-value"}
    assert got.metadata.filename == "archive.tar.gz"
    assert got.metadata.origin == "10.0.0.1"


def test_multipart_zstd_frames_are_read_across(session: Session) -> None:
    upload = session.initiate_multipart_upload()  # usecase default: zstd
    cctx = zstandard.ZstdCompressor()
    parts = []
    for number, text in enumerate([b"hello " * 1000, b"world!" * 1000], start=1):
        frame = cctx.compress(text)
        parts.append(
            upload.put_part(
                frame, part_number=number, content_length=len(frame), content_md5=b"\0" * 16
            )
        )
    key = upload.complete(parts)
    got = session.get(key)
    assert got is not None
    with got.payload as payload:
        assert payload.read() == b"hello " * 1000 + b"world!" * 1000


def test_multipart_errors(session: Session) -> None:
    upload = session.initiate_multipart_upload(key="mp-bad")
    with pytest.raises(ValueError, match="content_length"):
        upload.put_part(b"abc", part_number=1, content_length=4)
    with pytest.raises(ValueError, match="content_md5"):
        upload.put_part(b"abc", part_number=1, content_length=3, content_md5=b"short")
    part = upload.put_part(b"abc", part_number=1, content_length=3)
    part.etag = "wrong"
    with pytest.raises(MultipartCompleteError) as info:
        upload.complete([part])
    assert info.value.code
    assert session.get("mp-bad") is None
    upload.abort()
    with pytest.raises(RequestError) as bad_number:
        upload.put_part(b"abc", part_number=0, content_length=3)
    assert bad_number.value.status == 400


def test_list_parts_of_an_upload(session: Session) -> None:
    upload = session.initiate_multipart_upload(compression="none")
    for number in (3, 1, 2):
        upload.put_part(b"p" * number, part_number=number, content_length=number)
    listed = upload.list_parts()
    assert [(p.part_number, p.size) for p in listed] == [(1, 1), (2, 2), (3, 3)]
    assert all(p.last_modified.tzinfo is not None and p.etag for p in listed)
    upload.abort()
    assert session.get(upload.key) is None
