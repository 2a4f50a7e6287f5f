"""The OFFICIAL ``objectstore-client`` (a test peer) completes a full cycle
against the local server with auth enforced. Written against its public API
only, so it runs with 0.2.0 and with the newest release (tox env)."""

from __future__ import annotations

import hashlib
import inspect
import io
import urllib.request
from collections.abc import Iterator
from datetime import timedelta

import pytest
import urllib3
import zstandard
from objectstore_client import Client, Permission, SecretKey, TimeToLive, Usecase
from objectstore_client.multipart import CompletePart

from django_objectstore.server import KeyConfig, LocalServer
from tests.server.helpers import ALL_PERMISSIONS, PRIVATE_PEM, PUBLIC_PEM, mint
from tests.server.test_objects import SPECIAL_KEYS


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    keys = {"test_kid": KeyConfig([PUBLIC_PEM], ALL_PERMISSIONS)}
    with LocalServer(auth_enforce=True, auth_keys=keys) as srv:
        yield srv


@pytest.fixture(scope="module")
def secret_key() -> SecretKey:
    return SecretKey(kid="test_kid", secret_key=PRIVATE_PEM.read_text())


def unzstd(data: bytes) -> bytes:
    return zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True).read()


def fetch(url: str, method: str = "GET") -> tuple[int, bytes, dict[str, str]]:
    """Use the URL verbatim (as a browser would) with a plain HTTP client."""
    pool = urllib3.PoolManager(retries=False)
    try:
        response = pool.request(method, url, decode_content=False)
        return response.status, response.data, dict(response.headers)
    finally:
        pool.clear()


def test_full_cycle_with_secret_key(server: LocalServer, secret_key: SecretKey) -> None:
    client = Client(server.url, token=secret_key)
    session = client.session(
        Usecase("test", expiration_policy=TimeToLive(timedelta(days=1))), org=1
    )
    payload = b"hello official client " * 100

    key = session.put(
        payload,
        key="greeting.txt",
        content_type="text/plain",
        metadata={"build_id": "42"},
        origin="203.0.113.42",
        filename="greeting.txt",
    )
    assert key == "greeting.txt"
    generated = session.put(b"no key given")
    assert len(generated) == 36

    got = session.get(key)
    assert got is not None
    assert got.payload.read() == payload
    meta = got.metadata
    assert meta.content_type == "text/plain"
    assert meta.origin == "203.0.113.42"
    assert meta.custom == {"build_id": "42"}
    assert isinstance(meta.expiration_policy, TimeToLive)
    assert meta.expiration_policy.delta == timedelta(days=1)
    assert meta.time_created is not None
    assert meta.time_expires is not None
    assert meta.time_expires - meta.time_created == timedelta(days=1)

    raw = session.get(key, decompress=False)
    assert raw is not None
    assert raw.metadata.compression == "zstd"
    assert unzstd(raw.payload.read()) == payload

    head = session.head(key)
    assert head is not None
    assert head.content_type == "text/plain"

    if hasattr(session, "extend_expiry"):  # clients >= 0.2.7
        session.extend_expiry(key, from_now=timedelta(days=2))
        extended = session.head(key)
        assert extended is not None
        assert extended.time_expires is not None
        assert extended.time_expires > meta.time_expires

    session.delete(key)
    assert session.get(key) is None
    assert session.head(key) is None
    session.delete(key)  # deleting a missing object is fine


def test_uncompressed_and_streamed(server: LocalServer, secret_key: SecretKey) -> None:
    plain = Usecase("test", compression="none")
    session = Client(server.url, token=secret_key).session(plain, org=1)
    big = hashlib.shake_128(b"seed").digest(3 * 1024 * 1024)
    session.put(io.BytesIO(big), key="big.bin")
    got = session.get("big.bin")
    assert got is not None
    assert got.metadata.compression is None
    assert got.payload.read() == big

    if "resumable_threshold_bytes" in inspect.signature(Usecase).parameters:  # >= 0.2.10
        # A resumable upload (section 20), as the 0.2.10 client sends it.
        eager = Usecase("test", resumable_threshold_bytes=0)
        resumed = Client(server.url, token=secret_key).session(eager, org=1)
        assert resumed.put(io.BytesIO(big), key="resumable.bin") == "resumable.bin"
        again = resumed.get("resumable.bin")
        assert again is not None
        assert again.payload.read() == big


def test_static_token(server: LocalServer) -> None:
    token = mint(usecase="test", scopes={"org": "7"})
    session = Client(server.url, token=token).session(Usecase("test"), org=7)
    session.put(b"static", key="s")
    got = session.get("s")
    assert got is not None
    assert got.payload.read() == b"static"
    other = Client(server.url, token=token).session(Usecase("test"), org=8)
    with pytest.raises(Exception) as info:  # noqa: PT011 - RequestError across versions
        other.put(b"x", key="s")
    assert getattr(info.value, "status", None) == 403


def test_presigned_and_object_urls(server: LocalServer, secret_key: SecretKey) -> None:
    session = Client(server.url, token=secret_key).session(
        Usecase("test", compression="none"), org=1, project=2
    )
    session.put(b"shared bytes", key="share/me.txt")
    status, body, _ = fetch(session.presigned_object_url("GET", "share/me.txt"))
    assert (status, body) == (200, b"shared bytes")
    status, _, headers = fetch(session.presigned_object_url("HEAD", "share/me.txt"), "HEAD")
    assert status == 200
    assert headers["x-sn-time-created"]
    status, body, _ = fetch(session.object_url("share/me.txt", token_validity=timedelta(minutes=5)))
    assert (status, body) == (200, b"shared bytes")
    status, _, _ = fetch(session.object_url("share/me.txt"))
    assert status == 400  # no token
    with urllib.request.urlopen(f"{server.url}/health") as response:
        assert response.read() == b"OK"


def test_special_character_keys(server: LocalServer, secret_key: SecretKey) -> None:
    session = Client(server.url, token=secret_key).session(Usecase("test"), org=1)
    for key in SPECIAL_KEYS:
        assert session.put(key.encode(), key=key) == key
        got = session.get(key)
        assert got is not None, key
        assert got.payload.read() == key.encode()
        status, body, _ = fetch(session.presigned_object_url("GET", key))
        assert status == 200, key
        assert unzstd(body) == key.encode()


def test_multipart_upload(server: LocalServer, secret_key: SecretKey) -> None:
    plain = Usecase("test", compression="none")
    session = Client(server.url, token=secret_key).session(plain, org=1)
    upload = session.initiate_multipart_upload(
        key="multi/part.bin", content_type="application/x-test"
    )
    chunks = [b"a" * 300_000, b"b" * 300_000, b"tail"]
    parts = [
        upload.put_part(chunk, part_number=n, content_length=len(chunk))
        for n, chunk in enumerate(chunks, 1)
    ]
    listed = upload.list_parts()
    assert [p.part_number for p in listed] == [1, 2, 3]
    assert [p.etag for p in listed] == [p.etag for p in parts]
    assert upload.complete(parts) == "multi/part.bin"
    got = session.get("multi/part.bin")
    assert got is not None
    assert got.metadata.content_type == "application/x-test"
    assert got.payload.read() == b"".join(chunks)

    aborted = session.initiate_multipart_upload(key="multi/aborted")
    aborted.put_part(b"x", part_number=1, content_length=1)
    aborted.abort()
    assert session.get("multi/aborted") is None

    bad = session.initiate_multipart_upload(key="multi/bad")
    bad.put_part(b"x", part_number=1, content_length=1)
    with pytest.raises(Exception, match="etag"):
        bad.complete([CompletePart(part_number=1, etag='"wrong"')])
    assert session.get("multi/bad") is None


def test_read_only_key_is_refused_writes(server: LocalServer) -> None:
    key = SecretKey(
        kid="test_kid", secret_key=PRIVATE_PEM.read_text(), permissions=[Permission.OBJECT_READ]
    )
    session = Client(server.url, token=key).session(Usecase("test"), org=1)
    with pytest.raises(Exception) as info:  # noqa: PT011 - RequestError across versions
        session.put(b"x", key="ro")
    assert getattr(info.value, "status", None) == 403


def test_extend_expiry_contract(server: LocalServer, secret_key: SecretKey) -> None:
    """Section 20 as the 0.2.10 client documents it: an already-met target
    succeeds without change, a real extension of a TTL object adjusts its TTL,
    manual objects are rejected, missing ones are not found."""
    client = Client(server.url, token=secret_key)
    session = client.session(
        Usecase("test", expiration_policy=TimeToLive(timedelta(hours=1))), org=1
    )
    if not hasattr(session, "extend_expiry"):  # clients < 0.2.7
        pytest.skip("this objectstore-client has no extend_expiry")
    from objectstore_client import ExpiryExtensionRejected, ObjectNotFound

    key = session.put(b"x", key="extend-contract")
    before = session.head(key)
    assert before is not None
    assert before.time_expires is not None
    session.extend_expiry(key, from_now=timedelta(minutes=1))  # already met
    same = session.head(key)
    assert same is not None
    assert (same.time_expires, same.expiration_policy) == (
        before.time_expires,
        before.expiration_policy,
    )
    session.extend_expiry(key, from_creation=timedelta(days=2))
    extended = session.head(key)
    assert extended is not None
    assert extended.expiration_policy == TimeToLive(timedelta(days=2))
    assert before.time_created is not None
    assert extended.time_expires == before.time_created + timedelta(days=2)

    manual = client.session(Usecase("test"), org=1)
    manual.put(b"m", key="extend-manual")
    with pytest.raises(ExpiryExtensionRejected):
        manual.extend_expiry("extend-manual", from_now=timedelta(days=1))
    with pytest.raises(ObjectNotFound):
        session.extend_expiry("extend-missing", from_now=timedelta(days=1))
