"""Sentry spans: ours are the official client's, span for span.

``tracing_worker.py`` runs the same operations with both clients against the
test server, in a fresh interpreter whose Sentry SDK keeps every envelope it
would send (``traces_sample_rate=1.0``); the spans are compared here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

from django_objectstore.client import Usecase, tracing
from django_objectstore.client.scope import Scope
from django_objectstore.server import LocalServer
from tests.client.conftest import KEYS

WORKER = Path(__file__).with_name("tracing_worker.py")
ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "auto.objectstore.client"


@cache
def _run(url: str, mode: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, str(WORKER), url, str(KEYS / "test_kid.private.pem"), mode],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def _attributes(span: dict[str, Any]) -> dict[str, Any]:
    return {name: value["value"] for name, value in span["attributes"].items()}


def _ours(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in spans if _attributes(s).get("sentry.origin") == ORIGIN]


def _comparable(span: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """Name, op and ``objectstore.*`` attributes; upload ids are random."""
    attributes = _attributes(span)
    kept = {k: v for k, v in attributes.items() if k.startswith("objectstore.")}
    if "objectstore.upload_id" in kept:
        kept["objectstore.upload_id"] = "<upload id>"
    return span["name"], attributes["sentry.op"], kept


def test_same_spans_as_the_official_client(server: LocalServer) -> None:
    data = _run(server.url, "stream")
    official, ours = _ours(data["official"]), _ours(data["ours"])
    assert len(official) == 16  # every operation of the worker
    assert [_comparable(s) for s in ours] == [_comparable(s) for s in official]
    ops = [_attributes(s)["sentry.op"] for s in ours]
    assert set(ops) == {
        "objectstore.put",
        "objectstore.get",
        "objectstore.head",
        "objectstore.delete",
        "objectstore.extend_expiry",
        "objectstore.mint_token",
        "objectstore.presign",
        "objectstore.multipart.initiate",
        "objectstore.multipart.put_part",
        "objectstore.multipart.list_parts",
        "objectstore.multipart.complete",
        "objectstore.multipart.abort",
    }
    put = _comparable(ours[0])
    assert put[0] == "objectstore.put test"
    assert put[2]["objectstore.scopes.org"] == 5
    assert put[2]["objectstore.scopes.project"] == "x"
    assert put[2]["objectstore.uncompressed_size"] == len(b"hello tracing")
    # The HTTP spans Sentry's stdlib integration adds under ours are the same too.
    assert Counter(_attributes(s)["sentry.op"] for s in data["ours"]) == Counter(
        _attributes(s)["sentry.op"] for s in data["official"]
    )


def test_default_sdk_mode_behaves_as_the_official_client(server: LocalServer) -> None:
    """Without span streaming, Sentry's span API warns and records nothing:
    for the official client and for ours alike."""
    data = _run(server.url, "static")
    assert data["ours"] == data["official"] == []
    assert data["warnings"]["ours"] == data["warnings"]["official"]
    assert data["warnings"]["ours"]


def test_parts_uploaded_by_worker_threads_are_children_of_the_put(server: LocalServer) -> None:
    spans = _ours(_run(server.url, "parallel")["ours"])
    (put,) = [s for s in spans if s["name"] == "objectstore.put test"]
    parts = [s for s in spans if s["name"] == "objectstore.multipart.put_part test"]
    assert sorted(_attributes(s)["objectstore.part_number"] for s in parts) == [1, 2, 3, 4]
    children = [s for s in spans if s is not put]
    assert {s["parent_span_id"] for s in children} == {put["span_id"]}
    assert {s["trace_id"] for s in spans} == {put["trace_id"]}
    attributes = _attributes(put)
    assert attributes["objectstore.key"] == "big"
    assert attributes["objectstore.uncompressed_size"] == 16 << 20
    assert "objectstore.compressed_size" not in attributes  # stored as is


def test_without_sentry_nothing_is_imported(server: LocalServer) -> None:
    assert _run(server.url, "no-sdk") == {"sentry_sdk_imported": False}


def test_without_an_active_sdk_spans_are_no_ops() -> None:
    assert tracing.SPAN_ORIGIN == ORIGIN
    with tracing.storage_span("get", Usecase("test"), Scope(org=1), key="k") as span:
        span.set_attribute("objectstore.found", True)
    assert tracing.current_span() is None
