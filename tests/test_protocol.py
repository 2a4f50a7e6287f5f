from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from django_objectstore import _protocol as p

KEYS = Path(__file__).parent / "keys"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("30 days", timedelta(days=30)),
        ("1 days 3600 seconds", timedelta(days=1, hours=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2 hours 1 min", timedelta(hours=2, minutes=1)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("0", timedelta(0)),
        ("1day 1h", timedelta(days=1, hours=1)),
        ("2months 29days 2h 52m 48s", timedelta(days=90)),
        ("11months 30days 3h 50m 24s", timedelta(days=365)),
        ("1y", timedelta(days=365.25)),
        ("250ms", timedelta(milliseconds=250)),
        (" 5m ", timedelta(minutes=5)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert p.parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "5", "5 fortnights", "h", "1h x", "1.h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        p.parse_duration(text)


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=30), "30s"),
        (timedelta(days=30), "30d"),
        (timedelta(days=1, hours=1), "1d 1h"),
        (timedelta(minutes=1, seconds=30), "1m 30s"),
        (timedelta(seconds=1, milliseconds=5), "1s 5ms"),
    ],
)
def test_format_duration_compact(duration: timedelta, text: str) -> None:
    assert p.format_duration(duration) == text
    assert p.parse_duration(text) == duration


@pytest.mark.parametrize(
    ("value", "kind", "duration"),
    [
        ("manual", "manual", None),
        ("ttl:30s", "ttl", timedelta(seconds=30)),
        ("tti:1h", "tti", timedelta(hours=1)),
    ],
)
def test_parse_expiration(value: str, kind: str, duration: timedelta | None) -> None:
    assert p.parse_expiration(value) == (kind, duration)


@pytest.mark.parametrize("value", ["garbage", "ttl:", "TTL:1h", "ttl:5 fortnights", "Manual"])
def test_parse_expiration_rejects(value: str) -> None:
    with pytest.raises(ValueError, match=r"expiration|duration"):
        p.parse_expiration(value)


def test_scopes_round_trip() -> None:
    assert p.render_scopes([]) == "_"
    assert p.render_scopes([("org", "42"), ("project", "1337")]) == "org=42;project=1337"
    assert p.parse_scopes("org=42;project=1337") == [("org", "42"), ("project", "1337")]
    assert p.parse_scopes("_") == []


@pytest.mark.parametrize(
    ("segment", "message"),
    [
        ("invalid-no-equals", "scope must be 'key=value'"),
        ("=value", "key and value must be non-empty"),
        ("key=", "key and value must be non-empty"),
        ("org=1.5", "invalid character '.'"),
        ("org=hello world", "invalid character ' '"),
    ],
)
def test_parse_scopes_rejects(segment: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        p.parse_scopes(segment)


def test_render_scopes_names_the_bad_value() -> None:
    with pytest.raises(ValueError, match=r"'1\.5'"):
        p.render_scopes([("org", "1.5")])


def test_timestamps() -> None:
    moment = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert p.format_timestamp(moment) == "2023-11-14T22:13:20.000000Z"
    assert p.parse_timestamp("2023-11-14T22:13:20.000000Z") == moment
    assert p.parse_timestamp("2025-01-01T00:00:00.123456789Z").microsecond == 123456


@pytest.mark.parametrize(
    ("key", "wire"),
    [
        ("with space", "with%20space"),
        ("café-unicode", "caf%C3%A9-unicode"),
        ("emoji-😀", "emoji-%F0%9F%98%80"),
        ("100%literal-percent", "100%25literal-percent"),
        ("looks%20encoded", "looks%2520encoded"),
        ("sub!$'()*+,=delims", "sub!$'()*+,=delims"),
        ("q?mark", "q%3Fmark"),
        ("hash#x", "hash%23x"),
        ("nested/path/segments", "nested/path/segments"),
    ],
)
def test_encode_path(key: str, wire: str) -> None:
    assert p.encode_path(key) == wire


@pytest.mark.parametrize("value", ["plain", "50% off", "naïve\r\nx-evil: 1", "emoji 😀"])
def test_header_value_round_trip(value: str) -> None:
    encoded = p.encode_header_value(value)
    assert all(0x20 <= ord(c) <= 0x7E for c in encoded)
    assert p.decode_header_value(encoded) == value


def test_presign_test_vector() -> None:
    key = load_pem_private_key((KEYS / "test_kid.private.pem").read_bytes(), None)
    assert isinstance(key, Ed25519PrivateKey)
    canonical = p.presign_canonical_string(
        "GET",
        "/v1/objects/test-usecase/org=42;project=1337/dir/with%20space%25",
        "os_kid=test_kid&os_timestamp=2026-01-01T00:00:00Z&os_duration=3600",
    )
    signature = base64.urlsafe_b64encode(key.sign(canonical.encode())).rstrip(b"=").decode()
    assert signature == (
        "CIxi3KrAnxVMB-t6u-_EwVtaAchKyHUc3AWv_juJmRODV5-HMgELQNRYLSZ9OWCm8qaaph1gdfq9N3m57asUAQ"
    )
    assert p.presign_canonical_string("HEAD", "/x", "") == "GET\n/x\n"


def test_canonical_query() -> None:
    raw = (
        "os_kid=test_kid&os_timestamp=2026-01-01T00:00:00Z&os_duration=3600"
        "&os_sig=zzz&Zed=1&a-b=2&a=1"
    )
    assert p.canonical_query(raw) == (
        "a-b=2&a=1&os_duration=3600&os_kid=test_kid&os_timestamp=2026-01-01T00:00:00Z&zed=1"
    )
