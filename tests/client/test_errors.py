"""Exceptions: code written for the official client catches the same
failures with the same ``except`` clauses.

The class trees are compared with the installed official client, and every
transport failure is produced on loopback and met by both clients side by
side: the error ours raises must be an instance of the very class the
official client raises (ours may only add a subclass), and a ``RequestError``
exactly when the official one is.
"""

from __future__ import annotations

import contextlib
import inspect
import pickle
import socket
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from types import ModuleType
from typing import Any

import objectstore_client
import pytest
import urllib3
import zstandard

import django_objectstore.client as ours
from django_objectstore.client import ObjectstoreConnectionError

from .rawserver import RawServer, read_head

OFFICIAL_MODULES = ["errors", "multipart", "auth", "client", "metadata", "metrics", "utils"]


def _exception_classes(package: ModuleType, name: str) -> dict[str, type[BaseException]]:
    module = __import__(f"{package.__name__}.{name}", fromlist=["_"])
    return {
        attr: value
        for attr, value in vars(module).items()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__.startswith(package.__name__)
    }


def _official_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in OFFICIAL_MODULES:
        found.update(_exception_classes(objectstore_client, name))
    return found


def _counterpart(official: type[BaseException]) -> type[BaseException]:
    module = official.__module__.replace("objectstore_client", "django_objectstore.client")
    made: type[BaseException] = getattr(__import__(module, fromlist=["_"]), official.__name__)
    return made


def test_every_official_exception_class_has_a_counterpart() -> None:
    official = _official_classes()
    assert {"RequestError", "ObjectNotFound", "ExpiryExtensionRejected"} <= set(official)
    for cls in official.values():
        assert issubclass(_counterpart(cls), BaseException)


def test_class_trees_match_the_official_client() -> None:
    """Same subclass relations among the official classes, and with every
    outside base (``Exception``, urllib3's errors, ...)."""
    official = _official_classes()
    outside = {
        base
        for cls in official.values()
        for base in cls.__mro__
        if not base.__module__.startswith("objectstore_client")
    } | {urllib3.exceptions.HTTPError, urllib3.exceptions.MaxRetryError}
    for first in official.values():
        mine = _counterpart(first)
        for second in official.values():
            assert issubclass(mine, _counterpart(second)) == issubclass(first, second), (
                first,
                second,
            )
        for base in outside:
            assert issubclass(mine, base) == issubclass(first, base), (first, base)


def test_our_own_exception_classes_subclass_official_types_only() -> None:
    """Classes only we export are subclasses of a type the official client
    raises for the same failures, never siblings that change what matches."""
    official_names = set(_official_classes())
    extra = [
        value
        for value in vars(ours).values()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__name__ not in official_names
    ]
    assert extra == [ObjectstoreConnectionError]
    assert issubclass(ObjectstoreConnectionError, urllib3.exceptions.HTTPError)
    assert not issubclass(ObjectstoreConnectionError, ours.RequestError)


# -- loopback faults ----------------------------------------------------------


class _NeverAnswers(RawServer):
    """Reads the request and waits for the client to give up."""

    def serve(self, conn: socket.socket) -> None:
        read_head(conn)
        while conn.recv(65536):
            pass


class _ClosesWithoutAnswer(RawServer):
    def serve(self, conn: socket.socket) -> None:
        read_head(conn)
        time.sleep(0.02)


class _ClosesMidResponse(RawServer):
    """Sends the head and part of the body, then closes."""

    def __init__(self, head: bytes, partial: bytes) -> None:
        super().__init__()
        self.head = head
        self.partial = partial

    def serve(self, conn: socket.socket) -> None:
        read_head(conn)
        time.sleep(0.02)
        conn.sendall(self.head + self.partial)


class _Refused:
    """A port nothing listens on (bound and released)."""

    def __enter__(self) -> _Refused:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.url = f"http://127.0.0.1:{probe.getsockname()[1]}"
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class _BacklogFull:
    """A listener whose accept queue is full: new connections get no answer
    to their SYN, so connecting times out (on loopback)."""

    def __enter__(self) -> _BacklogFull:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.fillers = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(self.listener.getsockname())
            self.fillers.append(filler)
        time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        return self

    def __exit__(self, *exc: object) -> None:
        for filler in self.fillers:
            filler.close()
        self.listener.close()


_JSON_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
_BIG = b"".join(b"line %d of a compressible payload\n" % i for i in range(300_000))
_BIG_STORED = zstandard.ZstdCompressor().compress(_BIG)
_ZSTD_HEAD = b"HTTP/1.1 200 OK\r\nContent-Encoding: zstd\r\nContent-Length: %d\r\n\r\n" % len(
    _BIG_STORED
)

FAULTS: dict[str, Callable[[], Any]] = {
    "refused": _Refused,
    "connect-timeout": _BacklogFull,
    "read-timeout": _NeverAnswers,
    "closed-without-answer": _ClosesWithoutAnswer,
    "closed-mid-response": lambda: _ClosesMidResponse(_JSON_HEAD, b'{"key": "k"'),
}


def _read_all(got: Any) -> bytes:
    with got.payload as stream:
        data: bytes = stream.read()
        return data


OPERATIONS: dict[str, Callable[[Any], object]] = {
    "get": lambda s: _read_all(s.get("k")),
    "put": lambda s: s.put(b"hello", key="k"),
    "put-new-key": lambda s: s.put(b"hello"),
    # 8 MiB: still being sent when the server closes (a broken pipe or a reset).
    "put-large": lambda s: s.put(_BIG[: 8 << 20], key="big"),
    "head": lambda s: s.head("k"),
    "delete": lambda s: s.delete("k"),
    "extend_expiry": lambda s: s.extend_expiry("k", from_now=timedelta(days=1)),
}


def _raised(lib: ModuleType, url: str, operation: Callable[[Any], object]) -> BaseException | None:
    client = lib.Client(url, timeout_ms=300)
    session = client.session(lib.Usecase("test"), org=1)
    try:
        operation(session)
    except Exception as exc:  # compared below
        return exc
    finally:
        client._pool.close()
    return None


def _side_by_side(
    make_fault: Callable[[], Any], operation: Callable[[Any], object]
) -> Iterator[tuple[BaseException | None, BaseException | None]]:
    with make_fault() as fault:
        official = _raised(objectstore_client, fault.url, operation)
    with make_fault() as fault:
        mine = _raised(ours, fault.url, operation)
    yield official, mine


def _assert_same_failure(official: BaseException | None, mine: BaseException | None) -> None:
    if official is None:
        assert mine is None, repr(mine)
        return
    assert mine is not None, f"the official client raised {official!r}, ours nothing"
    assert isinstance(mine, type(official)), (official, mine)
    assert isinstance(mine, ours.RequestError) == isinstance(
        official, objectstore_client.RequestError
    )
    official_reason = getattr(official, "reason", None)
    if official_reason is not None:
        assert type(getattr(mine, "reason", None)) is type(official_reason)
    if isinstance(official, urllib3.exceptions.HTTPError):
        assert isinstance(mine, ObjectstoreConnectionError)
        assert mine.status is None
        assert mine.response is None
        # Pickled (Celery, multiprocessing) as the plain urllib3 class.
        assert type(pickle.loads(pickle.dumps(mine))) is type(official)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("operation", list(OPERATIONS))
@pytest.mark.parametrize("fault", list(FAULTS))
def test_transport_failures_raise_what_the_official_client_raises(
    fault: str, operation: str
) -> None:
    for official, mine in _side_by_side(FAULTS[fault], OPERATIONS[operation]):
        _assert_same_failure(official, mine)
        if fault != "closed-mid-response" or operation != "head":  # HEAD reads no body
            assert official is not None


def test_timeouts_and_refusals_are_max_retry_errors() -> None:
    """What the official end-to-end ``test_read_timeout`` expects."""
    for make_fault in (_Refused, _BacklogFull, _NeverAnswers):
        with make_fault() as fault:
            error = _raised(ours, fault.url, OPERATIONS["get"])
        assert isinstance(error, urllib3.exceptions.MaxRetryError), error


def test_compressed_body_broken_off_is_a_protocol_error() -> None:
    """A large compressed body (read ahead and decoded on several threads by
    ours) cut in the middle."""
    make = lambda: _ClosesMidResponse(_ZSTD_HEAD, _BIG_STORED[: len(_BIG_STORED) // 2])  # noqa: E731
    for official, mine in _side_by_side(make, OPERATIONS["get"]):
        assert isinstance(official, urllib3.exceptions.ProtocolError)
        _assert_same_failure(official, mine)


class _Answers(RawServer):
    def __init__(self, status: bytes) -> None:
        super().__init__()
        self.status = status

    def serve(self, conn: socket.socket) -> None:
        read_head(conn)
        body = b"backend unavailable"
        conn.sendall(
            b"HTTP/1.1 %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (self.status, len(body), body)
        )


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("operation", ["get", "put", "delete", "extend_expiry"])
@pytest.mark.parametrize("status", [b"500 Internal Server Error", b"503 Service Unavailable"])
def test_error_statuses_are_request_errors_in_both(operation: str, status: bytes) -> None:
    for official, mine in _side_by_side(lambda: _Answers(status), OPERATIONS[operation]):
        assert isinstance(official, objectstore_client.RequestError)
        assert isinstance(mine, ours.RequestError)
        assert not isinstance(mine, urllib3.exceptions.HTTPError)
        assert (mine.status, mine.response) == (official.status, official.response)
