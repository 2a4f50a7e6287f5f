"""Metrics hooks. The names and tags match the official client, so
dashboards keep working:

* ``storage.<op>.latency`` (tags ``usecase``), seconds;
* ``storage.<op>.size`` (``usecase`` and, for puts, ``compression``), bytes;
* ``storage.<op>.compression_ratio`` (``usecase``, ``compression``);
* ``storage.<op>.throughput`` and ``storage.<op>.inverse_throughput``.

``<op>`` is ``put``, ``get``, ``head``, ``delete``, ``extend_expiry`` or
``multipart.initiate`` / ``multipart.put_part`` / ``multipart.complete``.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Mapping
from contextlib import contextmanager
from typing import Protocol, TypeAlias, runtime_checkable

__all__ = [
    "MetricsBackend",
    "NoOpMetricsBackend",
    "StorageMetricEmitter",
    "Tags",
    "measure_storage_operation",
]

Tags: TypeAlias = Mapping[str, str]


@runtime_checkable
class MetricsBackend(Protocol):
    """What the client calls to report metrics; implement all three methods."""

    def increment(self, name: str, value: int | float = 1, tags: Tags | None = None) -> None:
        """Add ``value`` to a counter."""
        raise NotImplementedError

    def gauge(self, name: str, value: int | float, tags: Tags | None = None) -> None:
        """Set a gauge."""
        raise NotImplementedError

    def distribution(
        self,
        name: str,
        value: int | float,
        tags: Tags | None = None,
        unit: str | None = None,
    ) -> None:
        """Record one sample of a distribution."""
        raise NotImplementedError


class NoOpMetricsBackend(MetricsBackend):
    """The default backend: records nothing."""

    def increment(self, name: str, value: int | float = 1, tags: Tags | None = None) -> None:
        return None

    def gauge(self, name: str, value: int | float, tags: Tags | None = None) -> None:
        return None

    def distribution(
        self,
        name: str,
        value: int | float,
        tags: Tags | None = None,
        unit: str | None = None,
    ) -> None:
        return None


class StorageMetricEmitter:
    """Collects what is known about one operation and reports it."""

    def __init__(self, backend: MetricsBackend, operation: str, usecase: str) -> None:
        self.backend = backend
        self.operation = operation
        self.usecase = usecase
        self.elapsed: float | None = None
        self.size: int | None = None
        self.uncompressed_size: int | None = None
        self.compressed_size: int | None = None
        self.compression = "unknown"

    def _distribution(
        self, metric: str, value: float, tags: dict[str, str], unit: str | None = None
    ) -> None:
        name = f"storage.{self.operation}.{metric}"
        if unit is None:
            self.backend.distribution(name, value, tags=tags)
        else:
            self.backend.distribution(name, value, tags=tags, unit=unit)

    def record_latency(self, elapsed: float) -> None:
        self.elapsed = elapsed
        self._distribution("latency", elapsed, {"usecase": self.usecase})

    def record_size(self, value: int) -> None:
        self.size = value
        self._distribution("size", value, {"usecase": self.usecase}, unit="byte")

    def record_uncompressed_size(self, value: int) -> None:
        self.uncompressed_size = value
        tags = {"usecase": self.usecase, "compression": "none"}
        self._distribution("size", value, tags, unit="byte")

    def record_compressed_size(self, value: int, compression: str = "unknown") -> None:
        self.compressed_size = value
        self.compression = compression
        tags = {"usecase": self.usecase, "compression": compression}
        self._distribution("size", value, tags, unit="byte")

    def maybe_record_compression_ratio(self) -> None:
        if self.uncompressed_size and self.compressed_size:
            tags = {"usecase": self.usecase, "compression": self.compression}
            ratio = self.compressed_size / self.uncompressed_size
            self._distribution("compression_ratio", ratio, tags)

    def maybe_record_throughputs(self) -> None:
        if not self.elapsed or self.elapsed <= 0:
            return
        samples: list[tuple[int, str | None]] = []
        if self.size:
            samples.append((self.size, None))
        if self.uncompressed_size:
            samples.append((self.uncompressed_size, "none"))
        if self.compressed_size:
            samples.append((self.compressed_size, self.compression))
        for size, compression in samples:
            tags = {"usecase": self.usecase}
            if compression is not None:
                tags["compression"] = compression
            self._distribution("throughput", size / self.elapsed, tags)
            self._distribution("inverse_throughput", self.elapsed / size, tags)


@contextmanager
def measure_storage_operation(
    backend: MetricsBackend,
    operation: str,
    usecase: str,
    uncompressed_size: int | None = None,
    compressed_size: int | None = None,
    compression: str = "unknown",
) -> Generator[StorageMetricEmitter, None, None]:
    """Time the enclosed block and report latency, sizes and throughput
    (also when the block raises). Sizes learnt inside the block can be
    recorded on the yielded emitter."""
    emitter = StorageMetricEmitter(backend, operation, usecase)
    if uncompressed_size:
        emitter.record_uncompressed_size(uncompressed_size)
    if compressed_size:
        emitter.record_compressed_size(compressed_size, compression)
    start = time.monotonic()
    try:
        yield emitter
    finally:
        emitter.record_latency(time.monotonic() - start)
        emitter.maybe_record_compression_ratio()
        emitter.maybe_record_throughputs()
