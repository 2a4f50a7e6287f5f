"""Sentry spans for Objectstore operations, as the official client opens them.

Every operation runs inside :func:`storage_span`: a span whose ``op`` is
``objectstore.<operation>`` (the operation's metric name), named
``objectstore.<operation> <usecase>``, with origin ``auto.objectstore.client``
and ``objectstore.*`` attributes for the usecase, each scope, the key, sizes
and upload ids. Spans go through ``sentry_sdk.traces`` (span streaming), like
the official client's: with the SDK in its default, non-streaming mode, that
API warns and records nothing, for ours as for theirs.

sentry-sdk is optional and never imported here: an application that has not
imported it cannot have initialised it, so no span could be sent. Without it
(or before ``sentry_sdk.init``), an operation costs one dictionary lookup and
nothing changes.

The parts a large ``put`` uploads on worker threads are spans of that put
(:func:`spans_under` carries it into the threads).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeAlias

from django_objectstore.client.scope import Scope

if TYPE_CHECKING:
    from django_objectstore.client._session import Usecase

__all__ = ["SPAN_ORIGIN", "SpanAttributeValue", "current_span", "spans_under", "storage_span"]

#: Origin recorded on every span opened here (Sentry's ``auto.<kind>.<library>``
#: convention, the official client's value).
SPAN_ORIGIN: Final = "auto.objectstore.client"

#: The values a span attribute can take.
SpanAttributeValue: TypeAlias = str | int | float | bool | list[str] | list[int] | list[float]


class Span(Protocol):
    """What an operation may do with its span: add attributes known later."""

    def set_attribute(self, key: str, value: Any) -> None: ...


class _NoSpan:
    """The span of an operation when no Sentry client can send one."""

    __slots__ = ()

    def set_attribute(self, key: str, value: Any) -> None:
        pass


_NO_SPAN: Final = _NoSpan()

# The span that spans opened in this context hang under (worker threads of a
# large put); ``None`` leaves the choice to Sentry (the current span).
_parent: ContextVar[Any] = ContextVar("objectstore_span_parent", default=None)


def _sentry() -> Any:
    """The ``sentry_sdk`` module if the application imported it and its
    client is active, else ``None``."""
    sdk = sys.modules.get("sentry_sdk")
    if sdk is None or not sdk.get_client().is_active():
        return None
    return sdk


@contextmanager
def storage_span(
    operation: str,
    usecase: Usecase,
    scope: Scope,
    **attributes: SpanAttributeValue | None,
) -> Iterator[Span]:
    """A span for one operation. Keyword arguments become ``objectstore.<name>``
    attributes (``None`` values are left out); set attributes known only
    after the request on the span this yields."""
    sdk = _sentry()
    if sdk is None:
        yield _NO_SPAN
        return
    op = f"objectstore.{operation}"
    span_attributes: dict[str, SpanAttributeValue] = {
        "sentry.op": op,
        "sentry.origin": SPAN_ORIGIN,
        "objectstore.usecase": usecase.name,
    }
    for scope_name, scope_value in scope.dict().items():
        span_attributes[f"objectstore.scopes.{scope_name}"] = scope_value
    for name, value in attributes.items():
        if value is not None:
            span_attributes[f"objectstore.{name}"] = value
    parent = _parent.get()
    options: dict[str, Any] = {} if parent is None else {"parent_span": parent}
    with sdk.traces.start_span(
        name=f"{op} {usecase.name}", attributes=span_attributes, **options
    ) as span:
        yield span


def current_span() -> Any:
    """The span operations started here would hang under (``None`` without
    an active Sentry client), to hand to :func:`spans_under` in another thread."""
    parent = _parent.get()
    if parent is not None:
        return parent
    sdk = _sentry()
    if sdk is None:
        return None
    return sdk.get_current_scope().streamed_span


@contextmanager
def spans_under(parent: Any) -> Iterator[None]:
    """Spans opened inside (in this thread) are children of ``parent``."""
    token = _parent.set(parent)
    try:
        yield
    finally:
        _parent.reset(token)
