"""Behaviour that needs no server: validation, parsing, formatting."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import urllib3

from django_objectstore.client import (
    Client,
    Metadata,
    Permission,
    SecretKey,
    TimeToIdle,
    TimeToLive,
    Usecase,
    parse_accept_encoding,
)
from django_objectstore.client.metadata import (
    format_expiration,
    format_timedelta,
    parse_expiration,
    parse_timedelta,
)
from django_objectstore.client.presign import build_canonical_form
from django_objectstore.client.scope import EMPTY_SCOPES, Scope
from django_objectstore.client.utils import encode_path, guess_mime_type

from .conftest import PRIVATE_PEM


def test_import_does_not_import_django() -> None:
    code = "import sys, django_objectstore.client; print('django' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_scope_rendering() -> None:
    assert str(Scope(org=42, project=1337)) == "org=42;project=1337"
    assert str(Scope()) == EMPTY_SCOPES == "_"
    assert str(Scope(flag=True, zero=0)) == "flag=True;zero=0"
    assert Scope(a="1").dict() == {"a": "1"}


@pytest.mark.parametrize(
    ("scopes", "message"),
    [
        ({"org": ""}, "Scope value cannot be empty"),
        ({"org": "a.b"}, "Invalid scope value 'a.b'"),
        ({"org": "a/b"}, "character '/'"),
        ({"o.rg": "1"}, "Invalid scope key 'o.rg'"),
        ({"": "1"}, "Scope key cannot be empty"),
    ],
)
def test_scope_validation(scopes: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Scope(**scopes)


@pytest.mark.parametrize("name", ["ab", "a" * 65, "with space", "dot.ted", "café"])
def test_usecase_name_validation(name: str) -> None:
    with pytest.raises(ValueError, match="usecase name"):
        Usecase(name)


def test_usecase_argument_validation() -> None:
    assert Usecase("a_b-C9").name == "a_b-C9"
    with pytest.raises(ValueError, match="Invalid compression"):
        Usecase("test", compression="gzip")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="resumable_threshold_bytes"):
        Usecase("test", resumable_threshold_bytes=-1)
    with pytest.raises(TypeError, match="multipart_threshold"):
        Usecase("test", multipart_threshold=10)  # type: ignore[call-arg]  # a Client option


def test_permissions() -> None:
    assert Permission.max() == [
        Permission.OBJECT_READ,
        Permission.OBJECT_WRITE,
        Permission.OBJECT_DELETE,
    ]
    assert str(Permission.OBJECT_READ) == "object.read"


def test_secret_key_escalation_and_repr() -> None:
    key = SecretKey("test_kid", PRIVATE_PEM, permissions=[Permission.OBJECT_READ])
    with pytest.raises(ValueError, match="not granted"):
        key.token_for_scope("test", Scope(), [Permission.OBJECT_WRITE])
    assert "PRIVATE" not in repr(key)
    assert "test_kid" in repr(key)


def test_bad_secret_key_message_has_no_secret() -> None:
    key = SecretKey("test_kid", "-----BEGIN PRIVATE KEY-----\nnot-a-key\n")
    with pytest.raises(ValueError, match="not a readable unencrypted PEM") as info:
        key.token_for_scope("test", Scope())
    assert "not-a-key" not in str(info.value)


def test_durations_written_compact_and_read_in_every_form() -> None:
    assert format_timedelta(timedelta(days=30)) == "30d"
    assert format_timedelta(timedelta(days=1, seconds=3661, microseconds=5)) == "1d 1h 1m 1s"
    assert format_timedelta(timedelta(0)) == "0s"
    assert format_expiration(TimeToLive(timedelta(hours=2))) == "ttl:2h"
    assert format_expiration(TimeToIdle(timedelta(seconds=90))) == "tti:1m 30s"
    assert parse_timedelta("30days") == timedelta(days=30)
    assert parse_timedelta("1 days 3600 seconds") == timedelta(days=1, hours=1)
    # Never months-as-minutes: 2 months (2 x 30.44 d) + 29 days + 2h 52m 48s = 90 days.
    assert parse_timedelta("2months 29days 2h 52m 48s") == timedelta(days=90)
    assert parse_expiration("ttl:1y") == TimeToLive(timedelta(days=365.25))
    assert parse_expiration("tti:1d") == TimeToIdle(timedelta(days=1))
    assert parse_expiration("manual") is None
    with pytest.raises(ValueError, match="unknown unit"):
        parse_timedelta("5 fortnights")


def test_metadata_from_headers() -> None:
    meta = Metadata.from_headers(
        urllib3.HTTPHeaderDict(
            {
                "Content-Type": "text/plain",
                "content-encoding": "zstd",
                "x-sn-expiration": "tti:30days",
                "x-sn-time-created": "2025-01-01T00:00:00.000000Z",
                "x-sn-time-expires": "2025-01-31T00:00:00.123456Z",
                "x-sn-origin": "203.0.113.42",
                "x-sn-filename": "caf%C3%A9.txt",
                "x-sn-size": "42",
                "x-snme-build_id": "a%25b",
            }
        )
    )
    assert meta == Metadata(
        content_type="text/plain",
        compression="zstd",
        expiration_policy=TimeToIdle(timedelta(days=30)),
        time_created=datetime(2025, 1, 1, tzinfo=UTC),
        time_expires=datetime(2025, 1, 31, 0, 0, 0, 123456, tzinfo=UTC),
        origin="203.0.113.42",
        filename="café.txt",
        size=42,
        custom={"build_id": "a%b"},
    )
    empty = Metadata.from_headers({})
    assert empty.content_type == "application/octet-stream"
    assert empty.size is None
    assert empty.custom == {}


def test_parse_accept_encoding() -> None:
    assert parse_accept_encoding("gzip, ZSTD;q=0.5, br;q=0, identity") == [
        "gzip",
        "zstd",
        "identity",
    ]
    assert parse_accept_encoding("") == []


def test_encode_path_matches_protocol_examples() -> None:
    assert encode_path("/v1/objects/test/org=1/with space") == "/v1/objects/test/org=1/with%20space"
    assert encode_path("100%literal") == "100%25literal"
    assert encode_path("sub!$'()*+,=delims") == "sub!$'()*+,=delims"
    assert encode_path("q?mark#x") == "q%3Fmark%23x"


def test_presign_test_vector() -> None:
    """Section 10.5 of the protocol: Ed25519 is deterministic."""
    key = SecretKey("test_kid", PRIVATE_PEM)
    canonical = build_canonical_form(
        "GET",
        "/v1/objects/test-usecase/org=42;project=1337/dir/with%20space%25",
        "os_kid=test_kid&os_timestamp=2026-01-01T00:00:00Z&os_duration=3600",
    )
    assert key.signature_for_canonical_form(canonical) == (
        "CIxi3KrAnxVMB-t6u-_EwVtaAchKyHUc3AWv_juJmRODV5-HMgELQNRYLSZ9OWCm8qaaph1gdfq9N3m57asUAQ"
    )


def test_guess_mime_type() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 100
    assert guess_mime_type(png) == "image/png"
    assert guess_mime_type(b"plain") is None


def test_client_connection_settings() -> None:
    with Client("http://127.0.0.1:1") as client:
        retries = client._pool.retries
        assert isinstance(retries, urllib3.Retry)
        assert (retries.connect, retries.read) == (3, 0)
        timeout = client._pool.timeout
        assert isinstance(timeout, urllib3.Timeout)
        assert (timeout.connect_timeout, timeout.read_timeout) == (0.1, None)
    with Client("http://127.0.0.1:1", retries=0, timeout_ms=2500) as client:
        assert client._pool.retries.connect == 0  # type: ignore[union-attr]
        assert client._pool.timeout.read_timeout == 2.5  # type: ignore[union-attr]
    custom = urllib3.Timeout(connect=1.0, read=5.0)
    with Client(
        "http://127.0.0.1:1",
        timeout_ms=100,
        connection_kwargs={"timeout": custom, "maxsize": 3, "headers": {"X-Extra": "1"}},
    ) as client:
        assert client._pool.timeout is custom  # connection_kwargs are merged last
        assert client._pool.pool.maxsize == 3  # type: ignore[union-attr]
        assert client._pool.headers["X-Extra"] == "1"
        assert "User-Agent" in client._pool.headers


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"retries": -1}, ValueError, "retries"),
        ({"token": 42}, TypeError, "token must be"),
        ({"multipart_threshold": "big"}, ValueError, "multipart_threshold"),
        ({"multipart_part_size": 0}, ValueError, "multipart_part_size"),
        ({"multipart_workers": 0}, ValueError, "multipart_workers"),
    ],
)
def test_client_argument_validation(kwargs: dict[str, object], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        Client("http://127.0.0.1:1", **kwargs)  # type: ignore[arg-type]


def test_client_rejects_bad_url() -> None:
    with pytest.raises(ValueError, match="base_url"):
        Client("127.0.0.1:8888")


def test_propagate_traces_without_sentry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)  # makes the import fail
    with pytest.raises(ImportError, match="sentry-sdk"):
        Client("http://127.0.0.1:1", propagate_traces=True)
    Client("http://127.0.0.1:1").close()  # not needed when not asked for


def test_session_validation() -> None:
    with Client("http://127.0.0.1:1") as client:
        with pytest.raises(TypeError, match="Usecase"):
            client.session("test")  # type: ignore[arg-type]
        session = client.session(Usecase("test"), org=1)
        with pytest.raises(ValueError, match="no secret key"):
            session.mint_token()
        with pytest.raises(ValueError, match="no secret key"):
            session.presigned_object_url("GET", "k")
        with (
            pytest.deprecated_call(),
            pytest.raises(ValueError, match="Cannot pass both `compress` and `compression`"),
        ):
            session.put(b"x", compress="zstd", compression="none")
        with pytest.raises(ValueError, match="Cannot pass both `compress` and `precompressed`"):
            session.put(b"x", compress="zstd", precompressed="zstd")
        with pytest.raises(ValueError, match="Invalid compression"):
            session.put(b"x", compress="gzip")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="Invalid compression"):
            session.put(b"x", precompressed="none")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="Invalid compression"):
            session.initiate_multipart_upload(compression="lz4")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="not str"):
            session.put("text")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="exactly one"):
            session.extend_expiry("k")
        with pytest.raises(ValueError, match="timezone-aware"):
            session.extend_expiry("k", at=datetime(2030, 1, 1))
        with pytest.raises(ValueError, match="negative"):
            session.extend_expiry("k", from_now=timedelta(seconds=-1))
        with pytest.raises(ValueError, match="before start"):
            session.get_range("k", 5, 2)
        with pytest.raises(ValueError, match="suffix"):
            session.get_range("k", -5, 2)
        keyed = Client("http://127.0.0.1:1", token=SecretKey("test_kid", PRIVATE_PEM))
        with keyed:
            signed = keyed.session(Usecase("test"))
            with pytest.raises(ValueError, match="unsupported pre-signed method"):
                signed.presigned_object_url("PUT", "k")  # type: ignore[arg-type]
            with pytest.raises(ValueError, match="exceeds the maximum"):
                signed.presigned_object_url("GET", "k", timedelta(days=8))


def test_older_names_and_helpers() -> None:
    from django_objectstore.client import TokenGenerator

    assert TokenGenerator is SecretKey
    key = SecretKey("test_kid", PRIVATE_PEM, expiry_seconds=30)
    assert SecretKey.sign_for_scope is SecretKey.token_for_scope
    token = key.sign_for_scope("test", Scope(org=1), [Permission.OBJECT_READ])
    assert token.count(".") == 2
    with pytest.raises(ValueError, match="resumable_threshold_bytes"):
        Usecase("test", resumable_threshold_bytes="never")  # type: ignore[arg-type]
    stream = io.BytesIO(b"GIF89a" + bytes(100))
    stream.seek(0)
    assert guess_mime_type(stream) == "image/gif"
    assert stream.tell() == 0
