"""The ``/keda`` endpoint's Prometheus text (section 13): request and byte
counters, in-flight gauges and a gauge for every configured limit, which an
autoscaler compares the in-flight gauges with."""

from __future__ import annotations

from django_objectstore.server.service import Service

__all__ = ["CONTENT_TYPE", "keda_text"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def keda_text(service: Service) -> str:
    counters = service.counters
    lines: list[tuple[str, str, float]] = [
        ("objectstore_requests_total", "counter", counters.requests),
        ("objectstore_bytes_total", "counter", counters.bytes),
        ("objectstore_requests_in_flight", "gauge", counters.in_flight),
    ]
    if service.max_requests is not None:
        lines.append(("objectstore_requests_limit", "gauge", service.max_requests))
    lines.append(("objectstore_tasks_running", "gauge", service.concurrency.running))
    if service.concurrency.limit is not None:
        lines.append(("objectstore_tasks_limit", "gauge", service.concurrency.limit))
    limiter = service.rate_limiter
    if limiter is not None:
        throughput = limiter.limits.throughput.global_rps
        if throughput is not None:
            lines.append(("objectstore_throughput_limit", "gauge", throughput))
        bandwidth = limiter.limits.bandwidth.global_bps
        if bandwidth is not None:
            lines.append(("objectstore_bandwidth_limit", "gauge", bandwidth))
    return "".join(
        f"# TYPE {name} {kind}\n{name} {_number(value)}\n" for name, kind, value in lines
    )
