"""Upstream's value parsers (``_protocol_parsing``) and the duration limits."""

from __future__ import annotations

from datetime import timedelta

import pytest

from django_objectstore._protocol import parse_duration
from django_objectstore._protocol_parsing import (
    U32_MAX,
    U64_MAX,
    loads_json,
    parse_range,
    parse_unsigned,
)


@pytest.mark.parametrize(
    ("text", "value"), [("0", 0), ("+7", 7), ("0007", 7), (str(U64_MAX), U64_MAX)]
)
def test_unsigned(text: str, value: int) -> None:
    assert parse_unsigned(text) == value


@pytest.mark.parametrize(
    "text", ["", "+", "-1", " 1", "1 ", "²", "٣", "0x1", "1e3", str(U64_MAX + 1), "9" * 5000]
)
def test_unsigned_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"not an unsigned decimal|too large"):
        parse_unsigned(text)
    assert parse_unsigned("4294967295", U32_MAX) == U32_MAX
    with pytest.raises(ValueError, match="the maximum is 4294967295"):
        parse_unsigned("4294967296", U32_MAX)


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("bytes=0-4", (0, 4)),
        ("BYTES=7-", (7, None)),
        ("bytes=-9", (None, 9)),
        ("bytes=+1-+2", (1, 2)),
        ("bytes=0-4,6-8", None),
    ],
)
def test_range(value: str, parsed: tuple[int | None, int | None] | None) -> None:
    assert parse_range(value) == parsed


@pytest.mark.parametrize(
    "value",
    ["items=0-1", "bytes= 0-4", "bytes=0-4 ", "bytes=5-2", "bytes=-0", "bytes=", "bytes=1"],
)
def test_range_rejects(value: str) -> None:
    with pytest.raises(ValueError, match=r"unit|malformed|before its start|at least 1"):
        parse_range(value)


def test_loads_json_depth() -> None:
    assert loads_json(b"[[1]]") == [[1]]
    with pytest.raises(ValueError, match="nested too deeply"):
        loads_json(b"[" * 100_000)
    with pytest.raises(UnicodeDecodeError):
        loads_json(b"\xff")


@pytest.mark.parametrize(
    "text", ["9999999999d", "999999999y", "9" * 5000 + "s", "1.0000000000000000000000000001s"]
)
def test_duration_limits(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)
    assert parse_duration("999999999d") == timedelta(days=999_999_999)
