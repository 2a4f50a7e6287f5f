"""Admission control: the in-flight request limit and killswitches
(protocol section 19, items 121-123)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from django_objectstore.server import Killswitch, LocalServer
from django_objectstore.server.config import config_from_env
from tests.server.helpers import call


def test_max_requests_zero() -> None:
    with LocalServer(max_requests=0) as server:
        r = call(server.url, "GET", "/v1/objects/test/org=1/k")
        assert (r.status, r.body) == (503, b"")
        assert call(server.url, "GET", "/nope").status == 503  # before routing
        assert call(server.url, "GET", "/health").body == b"OK"
        assert call(server.url, "GET", "/ready").status == 200
        assert call(server.url, "GET", "/keda").status == 200


@pytest.fixture(scope="module")
def killed() -> Iterator[LocalServer]:
    switch = Killswitch(usecase="blocked", scopes={"org": "42"}, service="test-*")
    with LocalServer(killswitches=[switch]) as server:
        yield server


@pytest.mark.parametrize(
    "service", ["test-service", "test-service-7d8f9c5b6d-abc12", "test-service-0"]
)
def test_killswitch_matches(killed: LocalServer, service: str) -> None:
    headers = {"x-downstream-service": service}
    for method, path in [
        ("GET", "/v1/objects/blocked/org=42;project=4711/k"),
        ("POST", "/v1/objects/blocked/org=42;project=4711/"),
    ]:
        r = call(killed.url, method, path, b"x", headers)
        assert r.status == 403
        assert r.body == b"Object access is disabled for this scope through killswitches"


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/v1/objects/other/org=42;project=4711/k", {"x-downstream-service": "test-service"}),
        ("/v1/objects/blocked/org=43/k", {"x-downstream-service": "test-service"}),
        ("/v1/objects/blocked/org=42/k", {"x-downstream-service": "prod-service"}),
        ("/v1/objects/blocked/org=42/k", {}),
    ],
)
def test_killswitch_no_match(killed: LocalServer, path: str, headers: dict[str, str]) -> None:
    assert call(killed.url, "GET", path, headers=headers).status == 404


def test_empty_killswitch_matches_everything() -> None:
    with LocalServer(killswitches=[Killswitch()]) as server:
        assert call(server.url, "GET", "/v1/objects/any/_/k").status == 403
        assert call(server.url, "GET", "/health").status == 200


def test_env_admission_config() -> None:
    config = config_from_env(
        {
            "OS__HTTP__MAX_REQUESTS": "10",
            "OS__KILLSWITCHES": '[{usecase="blocked",scopes={org="42"},service="test-*"}]',
        }
    )
    assert config.max_requests == 10
    assert config.killswitches == [
        Killswitch(usecase="blocked", scopes={"org": "42"}, service="test-*")
    ]
