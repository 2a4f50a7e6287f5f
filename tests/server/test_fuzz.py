"""Property tests: any key round-trips, and arbitrary path segments and
metadata header values never make the server fail with a 5xx."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_objectstore._protocol import encode_path
from django_objectstore.server import LocalServer
from tests.server.helpers import call

FAST = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
keys = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=40).filter(
    lambda k: not any(seg in (".", "..") for seg in k.split("/"))
)


@FAST
@given(key=keys, payload=st.binary(max_size=300))
def test_any_key_round_trips(memory_server: LocalServer, key: str, payload: bytes) -> None:
    path = encode_path(f"/v1/objects/test/org=fuzz/{key}")
    r = call(memory_server.url, "PUT", path, payload)
    assert r.status == 200
    assert r.json() == {"key": key}
    got = call(memory_server.url, "GET", path)
    assert (got.status, got.body) == (200, payload)


segment = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=20).map(
    lambda s: s.replace("/", "%2F").replace("?", "%3F").replace("#", "%23")
)


@FAST
@given(usecase=segment, scopes=segment, key=segment)
def test_arbitrary_paths_never_5xx(
    memory_server: LocalServer, usecase: str, scopes: str, key: str
) -> None:
    r = call(memory_server.url, "PUT", f"/v1/objects/{usecase}/{scopes}/{key}", b"x")
    assert r.status < 500
    assert r.status in (200, 400, 404, 405)


@FAST
@given(
    name=st.sampled_from(
        ["content-type", "content-encoding", "x-sn-expiration", "x-sn-filename", "x-snme-k"]
    ),
    value=st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=30).map(str.strip),
)
def test_arbitrary_header_values_never_5xx(
    memory_server: LocalServer, name: str, value: str
) -> None:
    r = call(memory_server.url, "PUT", "/v1/objects/test/org=fuzz/h", b"x", {name: value})
    assert r.status in (200, 400)
