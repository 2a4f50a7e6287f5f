"""The backend concurrency limit as the CLI configures it: a wait queue with
a timeout and a smaller share of permits for batch operations (section 14.2)."""

from __future__ import annotations

import contextlib
import threading
import time

from django_objectstore.server.limits import ConcurrencyLimit


def test_queue_waits_for_a_permit_then_times_out() -> None:
    limit = ConcurrencyLimit(1, queue=1, timeout=5.0)
    held = threading.Event()
    release = threading.Event()
    outcome: list[bool] = []

    def holder() -> None:
        with limit.permit() as acquired:
            assert acquired
            held.set()
            release.wait(5)

    def waiter() -> None:
        with limit.permit() as acquired:
            outcome.append(acquired)

    first = threading.Thread(target=holder)
    first.start()
    assert held.wait(5)
    second = threading.Thread(target=waiter)
    second.start()
    time.sleep(0.2)  # the waiter now sits in the queue
    with limit.permit() as acquired:  # queue full: refused at once
        assert acquired is False
    release.set()
    first.join(5)
    second.join(5)
    assert outcome == [True]  # the queued operation got the released permit
    assert limit.running == 0

    short = ConcurrencyLimit(1, queue=1, timeout=0.1)
    with short.permit() as acquired:
        assert acquired
        started = time.monotonic()
        with short.permit() as waited:
            assert waited is False
        assert time.monotonic() - started >= 0.1


def test_zero_permits_refuse_everything() -> None:
    limit = ConcurrencyLimit(0, queue=2, timeout=0.05)
    with limit.permit() as acquired:
        assert acquired is False
    with limit.permit(bulk=True) as acquired:
        assert acquired is False


def test_bulk_share() -> None:
    limit = ConcurrencyLimit(10, bulk_pct=60)
    with contextlib.ExitStack() as stack:
        granted = [stack.enter_context(limit.permit(bulk=True)) for _ in range(6)]
        assert granted == [True] * 6
        with limit.permit(bulk=True) as bulk:
            assert bulk is False  # 60 % of 10 held by batch operations
        with limit.permit() as single:
            assert single is True  # single operations may use the rest
    assert limit.running == 0
