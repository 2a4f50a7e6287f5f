"""Expiry: TTL/TTI with production semantics (items 118-120), the TTI
debounce, the background sweep and PATCH expiry extension (section 20).
Time moves through an injected clock, never by sleeping."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from django_objectstore._protocol import format_duration
from django_objectstore.server import LocalServer
from tests.server.helpers import FakeClock, bearer, call, mint

OBJ = "/v1/objects/test/org=1"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "filesystem"])
def server(
    request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path
) -> Iterator[LocalServer]:
    with LocalServer(
        storage=request.param, path=tmp_path, clock=clock, sweep_interval=None, fsync=False
    ) as srv:
        yield srv


def expires(server: LocalServer, key: str, method: str = "GET") -> datetime:
    r = call(server.url, method, f"{OBJ}/{key}")
    assert r.status in (200, 204), r.status
    value = r.header("x-sn-time-expires")
    assert value is not None
    return datetime.fromisoformat(value)


def test_ttl_expires(server: LocalServer, clock: FakeClock) -> None:
    call(server.url, "PUT", f"{OBJ}/k", b"x", {"x-sn-expiration": "ttl:1s"})
    assert call(server.url, "GET", f"{OBJ}/k").status == 200
    clock.advance(timedelta(seconds=2))
    assert call(server.url, "HEAD", f"{OBJ}/k").status == 404
    assert call(server.url, "GET", f"{OBJ}/k").status == 404
    # expired objects can be overwritten and deleted
    assert call(server.url, "DELETE", f"{OBJ}/k").status == 204
    call(server.url, "PUT", f"{OBJ}/k", b"y", {"x-sn-expiration": "ttl:1s"})
    assert call(server.url, "GET", f"{OBJ}/k").body == b"y"


def test_ttl_not_extended_by_reads(server: LocalServer, clock: FakeClock) -> None:
    call(server.url, "PUT", f"{OBJ}/k", b"x", {"x-sn-expiration": "ttl:1h"})
    first = expires(server, "k")
    clock.advance(timedelta(minutes=50))
    assert expires(server, "k") == first


def test_tti_debounce(server: LocalServer, clock: FakeClock) -> None:
    call(server.url, "PUT", f"{OBJ}/k", b"x", {"x-sn-expiration": "tti:2h"})
    first = expires(server, "k")
    clock.advance(timedelta(minutes=10))
    assert expires(server, "k") == first  # within the 30 min debounce: no bump
    assert expires(server, "k", "HEAD") == first
    clock.advance(timedelta(minutes=35))  # 45 min after creation
    bumped_at = clock()
    assert expires(server, "k") == first  # this read shows the old deadline ...
    later = expires(server, "k")  # ... the next one the bumped deadline
    assert abs(later - (bumped_at + timedelta(hours=2))) < timedelta(seconds=5)
    clock.advance(timedelta(hours=1, minutes=59))
    assert call(server.url, "GET", f"{OBJ}/k").status == 200  # kept alive by the bump
    clock.advance(timedelta(hours=3))
    assert call(server.url, "GET", f"{OBJ}/k").status == 404


def test_sweep_removes_expired(server: LocalServer, clock: FakeClock, tmp_path: Path) -> None:
    call(server.url, "PUT", f"{OBJ}/gone", b"x", {"x-sn-expiration": "ttl:1s"})
    call(server.url, "PUT", f"{OBJ}/kept", b"x", {"x-sn-expiration": "ttl:1h"})
    call(server.url, "PUT", f"{OBJ}/manual", b"x")
    clock.advance(timedelta(seconds=5))
    assert server.sweep() == 1
    assert call(server.url, "GET", f"{OBJ}/kept").status == 200
    assert call(server.url, "GET", f"{OBJ}/manual").status == 200
    if server.service.backend.__class__.__name__ == "FilesystemBackend":
        assert len([p for p in (tmp_path / "objects").rglob("*") if p.is_file()]) == 2


def patch(
    server: LocalServer, key: str, body: object, headers: dict[str, str] | None = None
) -> int:
    data = json.dumps(body).encode()
    return call(
        server.url,
        "PATCH",
        f"{OBJ}/{key}",
        data,
        {"Content-Type": "application/json", **(headers or {})},
    ).status


def test_patch_extend_expiry(server: LocalServer, clock: FakeClock) -> None:
    call(server.url, "PUT", f"{OBJ}/k", b"x", {"x-sn-expiration": "ttl:1h"})
    created = datetime.fromisoformat(
        call(server.url, "GET", f"{OBJ}/k").header("x-sn-time-created") or ""
    )
    assert patch(server, "k", {"extend_expiry": {"after": "2h", "from": "creation"}}) == 204
    assert expires(server, "k") == created + timedelta(hours=2)
    now = clock()
    assert patch(server, "k", {"extend_expiry": {"after": "1d", "from": "now"}}) == 204
    assert abs(expires(server, "k") - (now + timedelta(days=1))) < timedelta(seconds=5)
    target = datetime(2100, 1, 1, tzinfo=UTC)
    assert patch(server, "k", {"extend_expiry": {"at": target.isoformat()}}) == 204
    assert expires(server, "k") == target
    # the TTL follows the new total lifetime since creation (section 20)
    lifetime = round((target - created).total_seconds())
    shown = call(server.url, "GET", f"{OBJ}/k").header("x-sn-expiration")
    assert shown == f"ttl:{format_duration(timedelta(seconds=lifetime))}"
    # an extension never shortens: an already-met target succeeds, nothing changes
    assert patch(server, "k", {"extend_expiry": {"after": "1h", "from": "now"}}) == 204
    assert expires(server, "k") == target
    clock.advance(timedelta(days=365 * 80))
    assert call(server.url, "GET", f"{OBJ}/k").status == 404


def test_patch_rounding_and_new_ttl(server: LocalServer, clock: FakeClock) -> None:
    call(server.url, "PUT", f"{OBJ}/r", b"x", {"x-sn-expiration": "ttl:1h"})
    created = datetime.fromisoformat(
        call(server.url, "GET", f"{OBJ}/r").header("x-sn-time-created") or ""
    )
    # fractional 'after' seconds are truncated; the TTL becomes the lifetime
    assert patch(server, "r", {"extend_expiry": {"after": "2d 0.9s", "from": "creation"}}) == 204
    assert expires(server, "r") == created + timedelta(days=2)
    assert call(server.url, "HEAD", f"{OBJ}/r").header("x-sn-expiration") == "ttl:2d"
    # 'at' rounds up to whole seconds (also past six fractional digits)
    at = datetime(2030, 5, 1, 12, 0, 0, tzinfo=UTC)
    body = {"extend_expiry": {"at": "2030-05-01T12:00:00.000000001Z"}}
    assert patch(server, "r", body) == 204
    assert expires(server, "r") == at + timedelta(seconds=1)
    body = {"extend_expiry": {"at": "2030-05-01T12:00:05.000Z"}}
    assert patch(server, "r", body) == 204
    assert expires(server, "r") == at + timedelta(seconds=5)
    # a zero extension from now is already met: success, unchanged
    assert patch(server, "r", {"extend_expiry": {"after": "0s", "from": "now"}}) == 204
    assert expires(server, "r") == at + timedelta(seconds=5)


def test_patch_tti_keeps_duration(server: LocalServer, clock: FakeClock) -> None:
    call(server.url, "PUT", f"{OBJ}/i", b"x", {"x-sn-expiration": "tti:1h"})
    now = clock()
    assert patch(server, "i", {"extend_expiry": {"after": "3d", "from": "now"}}) == 204
    r = call(server.url, "HEAD", f"{OBJ}/i")
    assert r.header("x-sn-expiration") == "tti:1h"
    assert abs(
        datetime.fromisoformat(r.header("x-sn-time-expires") or "") - (now + timedelta(days=3))
    ) < timedelta(seconds=2)


@pytest.mark.parametrize(
    "target",
    [
        {"after": "9999999d", "from": "now"},
        {"after": "999999999y", "from": "creation"},
        {"after": "1e30s", "from": "now"},
        {"after": "9" * 5000 + "s", "from": "now"},
        {"at": "9999-12-31T23:59:59.5Z"},
    ],
)
def test_patch_overflowing_targets_are_400(server: LocalServer, target: object) -> None:
    call(server.url, "PUT", f"{OBJ}/o", b"x", {"x-sn-expiration": "ttl:1h"})
    r = call(
        server.url,
        "PATCH",
        f"{OBJ}/o",
        json.dumps({"extend_expiry": target}).encode(),
        {"Content-Type": "application/json"},
    )
    assert r.status == 400
    assert r.json()["detail"].startswith("client error: extend_expiry")
    assert call(server.url, "HEAD", f"{OBJ}/o").header("x-sn-expiration") == "ttl:1h"


def test_patch_refusals(server: LocalServer) -> None:
    call(server.url, "PUT", f"{OBJ}/manual", b"x")
    body = {"extend_expiry": {"after": "1d", "from": "now"}}
    assert patch(server, "manual", body) == 409
    assert patch(server, "missing", body) == 404
    call(server.url, "PUT", f"{OBJ}/ttl", b"x", {"x-sn-expiration": "ttl:1h"})
    assert patch(server, "ttl", {"extend": 1}) == 400
    assert patch(server, "ttl", {"extend_expiry": {"after": "soon", "from": "now"}}) == 400
    assert patch(server, "ttl", {"extend_expiry": {"after": "1h", "from": "later"}}) == 400
    assert patch(server, "ttl", {"extend_expiry": {"at": "tomorrow"}}) == 400
    r = call(server.url, "PATCH", f"{OBJ}/ttl", b"{nope", {"Content-Type": "application/json"})
    assert r.status == 400


def test_patch_needs_write(auth_server: LocalServer) -> None:
    call(auth_server.url, "PUT", f"{OBJ}/p", b"x", {"x-sn-expiration": "ttl:1h", **bearer(mint())})
    body = {"extend_expiry": {"after": "2h", "from": "now"}}
    ro = bearer(mint(permissions=["object.read"]))
    assert patch(auth_server, "p", body, ro) == 403
    assert patch(auth_server, "p", body, bearer(mint())) == 204
