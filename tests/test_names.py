"""Stored names round-trip: whatever scope and key, the name a storage writes
reads back as the same scope and key (django_objectstore.names)."""

from __future__ import annotations

import pytest
from django.core.exceptions import SuspiciousFileOperation
from hypothesis import given
from hypothesis import strategies as st

from django_objectstore.names import join_name, split_name

SCOPE_TEXT = st.text("abcXYZ019_-()$!+'", min_size=1, max_size=8)
SEGMENT = st.text(
    st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="/"),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in (".", ".."))
KEYS = st.lists(SEGMENT, min_size=1, max_size=4).map("/".join)
PAIRS = st.lists(st.tuples(SCOPE_TEXT, SCOPE_TEXT), max_size=3)


@given(pairs=PAIRS, key=KEYS, default=PAIRS)
def test_join_then_split_is_identity(
    pairs: list[tuple[str, str]], key: str, default: list[tuple[str, str]]
) -> None:
    name = join_name(pairs, key, default)
    assert split_name(name, default) == (pairs, key)
    if not pairs and not default:
        # Unscoped names are the plain key unless its first folder reads as a scope.
        head, sep, _ = key.partition("/")
        prefixed = bool(sep) and (head == "_" or "=" in head)
        assert name == (f"_/{key}" if prefixed else key)


def test_examples() -> None:
    assert join_name([], "photos/cat.jpg") == "photos/cat.jpg"
    assert join_name([("org", "42"), ("project", "1337")], "a/report.pdf") == (
        "org=42;project=1337/a/report.pdf"
    )
    assert join_name([], "year=2024/r.pdf") == "_/year=2024/r.pdf"
    assert join_name([], "_/x") == "_/_/x"
    assert join_name([], "a=b") == "a=b"
    assert join_name([], "k", [("org", "1")]) == "_/k"
    assert split_name("_/legacy-key") == ([], "legacy-key")
    assert split_name("k", [("org", "1")]) == ([("org", "1")], "k")


@pytest.mark.parametrize("name", ["", "a//b", "./a", "a/..", "a\x7fb", "x" * 256])
def test_invalid_names(name: str) -> None:
    with pytest.raises(SuspiciousFileOperation):
        split_name(name)
