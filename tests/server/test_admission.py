"""Admission control: the in-flight request limit, killswitches, rate
limits and backend concurrency (protocol section 19, items 114, 121-125)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from django_objectstore.server import (
    BandwidthLimits,
    Killswitch,
    LocalServer,
    RateLimits,
    ThroughputLimits,
    ThroughputRule,
)
from django_objectstore.server.config import ConfigError
from django_objectstore.server.config_loader import config_from_env
from tests.server.helpers import FakeClock, call


def test_max_requests_zero() -> None:
    with LocalServer(max_requests=0) as server:
        r = call(server.url, "GET", "/v1/objects/test/org=1/k")
        assert (r.status, r.body) == (503, b"")
        assert call(server.url, "GET", "/nope").status == 503  # before routing
        assert call(server.url, "GET", "/health").body == b"OK"
        assert call(server.url, "GET", "/ready").status == 200
        keda = call(server.url, "GET", "/keda")
        assert keda.status == 200
        assert b"objectstore_requests_limit 0\n" in keda.body


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


BATCH_CT = {"Content-Type": "multipart/form-data; boundary=b0undary"}


def test_throughput_limit() -> None:
    clock = FakeClock(frozen=True)
    limits = RateLimits(throughput=ThroughputLimits(global_rps=2, burst=1))
    with LocalServer(rate_limits=limits, clock=clock) as server:
        statuses = [call(server.url, "GET", "/v1/objects/test/org=1/k").status for _ in range(4)]
        assert statuses == [404, 404, 404, 429]
        r = call(server.url, "GET", "/v1/objects/test/org=1/k")
        assert (r.status, r.body) == (429, b"Object access is rate limited")
        assert call(server.url, "GET", "/health").status == 200  # never limited
        clock.advance(timedelta(seconds=1))
        assert call(server.url, "GET", "/v1/objects/test/org=1/k").status == 404


def test_throughput_rules_and_shares() -> None:
    limits = RateLimits(
        throughput=ThroughputLimits(
            global_rps=100,
            usecase_pct=1,
            rules=[ThroughputRule(usecase="test", scopes=(("org", "7"),), rps=1)],
        )
    )
    with LocalServer(rate_limits=limits, clock=FakeClock(frozen=True)) as server:
        # rule: org=7 gets 1 request per second
        assert call(server.url, "GET", "/v1/objects/test/org=7/k").status == 404
        assert call(server.url, "GET", "/v1/objects/test/org=7/k").status == 429
        # usecase share: 1 % of 100 rps for "other"
        assert call(server.url, "GET", "/v1/objects/other/org=1/k").status == 404
        assert call(server.url, "GET", "/v1/objects/other/org=1/k").status == 429


@pytest.mark.parametrize("report_only", [False, True])
def test_bandwidth_limit(report_only: bool) -> None:
    clock = FakeClock(frozen=True)
    limits = RateLimits(
        bandwidth=BandwidthLimits(global_bps=100, burst_ms=0, report_only=report_only)
    )
    with LocalServer(rate_limits=limits, clock=clock) as server:
        assert call(server.url, "POST", "/v1/objects/test/org=1/", b"x" * 100).status == 201
        second = call(server.url, "POST", "/v1/objects/test/org=1/", b"x" * 100).status
        assert second == (201 if report_only else 429)
        clock.advance(timedelta(seconds=3))
        assert call(server.url, "POST", "/v1/objects/test/org=1/", b"x" * 100).status == 201


def test_batch_operations_are_counted() -> None:
    limits = RateLimits(throughput=ThroughputLimits(global_rps=2))
    body = (
        b"".join(
            b"--b0undary\r\nx-sn-batch-operation-kind: get\r\n"
            b"x-sn-batch-operation-key: k\r\n\r\n\r\n"
            for _ in range(3)
        )
        + b"--b0undary--\r\n"
    )
    with LocalServer(rate_limits=limits, clock=FakeClock(frozen=True)) as server:
        r = call(server.url, "POST", "/v1/objects:batch/test/org=1/", body, BATCH_CT)
        assert r.status == 200  # the request itself took one token
        assert r.body.count(b"404 Not Found") == 1
        assert r.body.count(b"429 Too Many Requests") == 2


def test_backend_concurrency_limit() -> None:
    with LocalServer(max_concurrency=1) as server:
        host, port = server.address
        with socket.create_connection((host, port)) as slow:
            # A body too big to be read before the endpoint runs: the upload
            # holds the permit while it streams.
            size = 2 * 1024 * 1024
            slow.sendall(
                b"PUT /v1/objects/test/org=1/slow HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % size
                + b"a" * (size - 2)
            )
            deadline = time.monotonic() + 5
            while True:  # wait until the slow upload holds the only permit
                r = call(server.url, "GET", "/v1/objects/test/org=1/k")
                if r.status == 429 or time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            assert r.status == 429
            assert r.json()["detail"] == "service error: concurrency limit reached"
            assert call(server.url, "PUT", "/v1/objects/test/org=1/k", b"x").status == 429
            body = (
                b"--b0undary\r\nx-sn-batch-operation-kind: get\r\n"
                b"x-sn-batch-operation-key: k\r\n\r\n\r\n--b0undary--\r\n"
            )
            r = call(server.url, "POST", "/v1/objects:batch/test/org=1/", body, BATCH_CT)
            assert r.status == 200
            assert b"429 Too Many Requests" in r.body
            slow.sendall(b"cd")
            assert b"200 OK" in slow.recv(4096)
        assert call(server.url, "PUT", "/v1/objects/test/org=1/k", b"x").status == 200
        keda = call(server.url, "GET", "/keda").body
        assert b"objectstore_tasks_limit 1\n" in keda
        assert b"objectstore_tasks_running 0\n" in keda


def test_env_rate_limits() -> None:
    config = config_from_env(
        {
            "OS__RATE_LIMITS": (
                "{throughput={global_rps=10,burst=5,"
                'rules=[{usecase="u",scopes=[["org","1"]],rps=1}]},'
                "bandwidth={global_bps=1000,report_only=true}}"
            ),
            "OS__SERVICE__MAX_CONCURRENCY": "3",
        }
    )
    assert config.max_concurrency == 3
    assert config.rate_limits is not None
    limits = RateLimits.from_mapping(config.rate_limits)
    assert limits.throughput.global_rps == 10
    assert limits.throughput.rules == [ThroughputRule("u", (("org", "1"),), rps=1)]
    assert limits.bandwidth.report_only is True


@pytest.mark.parametrize(
    ("value", "seconds"), [("90", 90.0), ("90s", 90.0), ("2m", 120.0), ("1.5", 1.5)]
)
def test_env_connection_timeouts(value: str, seconds: float) -> None:
    config = config_from_env({"OS__HTTP__IDLE_TIMEOUT": value, "OS__HTTP__HEADER_TIMEOUT": value})
    assert config.idle_timeout == seconds
    assert config.header_timeout == seconds


@pytest.mark.parametrize("value", ["0", "-1", "soon", "2d", "true"])
def test_env_connection_timeout_refused(value: str) -> None:
    with pytest.raises(ConfigError, match=r"OS__HTTP__IDLE_TIMEOUT=.*must be a duration"):
        config_from_env({"OS__HTTP__IDLE_TIMEOUT": value})
