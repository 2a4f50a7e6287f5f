"""Admission control beyond killswitches (sections 14.3 and 14.4): request
rate (token buckets), bandwidth (debt-based GCRA) and a cap on concurrent
backend operations."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django_objectstore.server.config import ConfigError

__all__ = [
    "BandwidthLimits",
    "ConcurrencyLimit",
    "RateLimiter",
    "RateLimits",
    "ThroughputLimits",
    "ThroughputRule",
]

Scopes = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ThroughputRule:
    """Extra limit for requests matching ``usecase`` (if given) and every
    ``(name, value)`` of ``scopes``: ``rps`` requests per second, or ``pct``
    percent of the global rate."""

    usecase: str | None = None
    scopes: Scopes = ()
    rps: float | None = None
    pct: float | None = None

    def matches(self, usecase: str, scopes: Scopes) -> bool:
        if self.usecase is not None and self.usecase != usecase:
            return False
        return all(pair in scopes for pair in self.scopes)


@dataclass(frozen=True)
class ThroughputLimits:
    """Requests per second: globally, per usecase and per exact scope list
    (the last two as a percentage of the global rate), plus rules."""

    global_rps: float | None = None
    burst: float = 0
    usecase_pct: float | None = None
    scope_pct: float | None = None
    rules: Sequence[ThroughputRule] = ()


@dataclass(frozen=True)
class BandwidthLimits:
    """Bytes per second (request plus response bodies). A request is
    rejected while the accumulated debt exceeds ``burst_ms``; the request
    that creates the debt is itself admitted. ``report_only`` only logs."""

    global_bps: float | None = None
    burst_ms: float = 1000
    usecase_pct: float | None = None
    scope_pct: float | None = None
    report_only: bool = False


@dataclass(frozen=True)
class RateLimits:
    throughput: ThroughputLimits = field(default_factory=ThroughputLimits)
    bandwidth: BandwidthLimits = field(default_factory=BandwidthLimits)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RateLimits:
        """From upstream's shape: ``{"throughput": {"global_rps": 10, "burst": 5,
        "rules": [{"usecase": "u", "scopes": [["org", "1"]], "rps": 1}]},
        "bandwidth": {"global_bps": 1000000}}``."""
        try:
            tp = dict(data.get("throughput") or {})
            rules = [
                ThroughputRule(
                    usecase=r.get("usecase"),
                    scopes=tuple((str(n), str(v)) for n, v in r.get("scopes") or ()),
                    rps=r.get("rps"),
                    pct=r.get("pct"),
                )
                for r in tp.pop("rules", None) or ()
            ]
            bw = dict(data.get("bandwidth") or {})
            return cls(ThroughputLimits(**tp, rules=rules), BandwidthLimits(**bw))
        except (TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"invalid rate_limits configuration: {exc}") from None


class _Bucket:
    """Token bucket holding up to ``rate + burst`` tokens, refilled at ``rate``/s."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.capacity = rate + burst
        self.tokens = self.capacity
        self.stamp = now

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now


class RateLimiter:
    """Thread-safe throughput and bandwidth admission."""

    def __init__(self, limits: RateLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[object, ...], _Bucket] = {}
        self._debt: dict[tuple[object, ...], float] = {}  # key -> theoretical arrival time

    def _throughput_keys(
        self, usecase: str, scopes: Scopes
    ) -> list[tuple[tuple[object, ...], float, float]]:
        tp = self.limits.throughput
        keys: list[tuple[tuple[object, ...], float, float]] = []
        if tp.global_rps is not None:
            keys.append((("global",), tp.global_rps, tp.burst))
            if tp.usecase_pct is not None:
                share = tp.usecase_pct / 100
                keys.append((("usecase", usecase), tp.global_rps * share, tp.burst * share))
            if tp.scope_pct is not None:
                share = tp.scope_pct / 100
                keys.append((("scope", usecase, scopes), tp.global_rps * share, tp.burst * share))
        for index, rule in enumerate(tp.rules):
            if not rule.matches(usecase, scopes):
                continue
            if rule.rps is not None:
                keys.append((("rule", index), rule.rps, 0.0))
            elif rule.pct is not None and tp.global_rps is not None:
                keys.append((("rule", index), tp.global_rps * rule.pct / 100, 0.0))
        return keys

    def _bandwidth_keys(
        self, usecase: str, scopes: Scopes
    ) -> list[tuple[tuple[object, ...], float]]:
        bw = self.limits.bandwidth
        if bw.global_bps is None:
            return []
        keys: list[tuple[tuple[object, ...], float]] = [(("global",), bw.global_bps)]
        if bw.usecase_pct is not None:
            keys.append((("usecase", usecase), bw.global_bps * bw.usecase_pct / 100))
        if bw.scope_pct is not None:
            keys.append((("scope", usecase, scopes), bw.global_bps * bw.scope_pct / 100))
        return keys

    def admit(self, usecase: str, scopes: Scopes, *, bandwidth: bool = True) -> bool:
        """Count one request (or batch operation); False when it must get 429."""
        now = self._clock()
        with self._lock:
            buckets = []
            for key, rate, burst in self._throughput_keys(usecase, scopes):
                bucket = self._buckets.get(key)
                if bucket is None:
                    bucket = self._buckets[key] = _Bucket(rate, burst, now)
                bucket.refill(now)
                buckets.append(bucket)
            if any(bucket.tokens < 1 for bucket in buckets):
                return False
            if bandwidth and not self.limits.bandwidth.report_only:
                window = self.limits.bandwidth.burst_ms / 1000
                for key, _ in self._bandwidth_keys(usecase, scopes):
                    if self._debt.get(key, now) - now > window:
                        return False
            for bucket in buckets:
                bucket.tokens -= 1
            return True

    def record_bytes(self, usecase: str, scopes: Scopes, count: int) -> None:
        """Add the bytes a finished request moved to the bandwidth debt."""
        if count <= 0:
            return
        now = self._clock()
        with self._lock:
            for key, rate in self._bandwidth_keys(usecase, scopes):
                self._debt[key] = max(self._debt.get(key, now), now) + count / rate


class ConcurrencyLimit:
    """At most ``limit`` backend operations at once (``None``: no limit; 0:
    none at all, so every operation gets 429, as upstream's semaphore with no
    permits). Up to ``queue`` operations over the limit wait up to
    ``timeout`` seconds for a permit (upstream's defaults: no queue, 1 s);
    the rest get 429 at once. Batch operations (``bulk``) may hold only
    ``bulk_pct`` percent of the permits."""

    def __init__(
        self,
        limit: int | None,
        *,
        queue: int = 0,
        timeout: float = 1.0,
        bulk_pct: int = 100,
    ) -> None:
        self.limit = limit
        self.running = 0
        self._queue = queue
        self._timeout = timeout
        self._bulk_limit = None if limit is None else limit * bulk_pct // 100
        self._waiting = 0
        self._cond = threading.Condition()

    def _acquire(self, bulk: bool) -> bool:
        cap = self._bulk_limit if bulk else self.limit
        if cap is None:
            self.running += 1
            return True
        if self.running >= cap:
            if self._waiting >= self._queue:
                return False
            self._waiting += 1
            try:
                if not self._cond.wait_for(lambda: self.running < cap, self._timeout):
                    return False
            finally:
                self._waiting -= 1
        self.running += 1
        return True

    @contextlib.contextmanager
    def permit(self, *, bulk: bool = False) -> Iterator[bool]:
        """Yields whether a permit was obtained."""
        with self._cond:
            acquired = self._acquire(bulk)
        try:
            yield acquired
        finally:
            if acquired:
                with self._cond:
                    self.running -= 1
                    self._cond.notify_all()
