"""Same scenarios through the official client and ours, against one server:
the stored bytes and metadata headers (read back with a raw GET) must match,
and each client must read what the other wrote."""

from __future__ import annotations

import inspect
import io
import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import objectstore_client as official
import pytest
import urllib3

import django_objectstore.client as ours
from django_objectstore.server import LocalServer

from .conftest import PRIVATE_PEM

# Headers that legitimately differ between two writes (time, transport).
VOLATILE = {"date", "x-sn-time-created", "x-sn-time-expires", "transfer-encoding", "connection"}
TEXT = b"The quick brown fox jumps over the lazy dog. " * 2000


@pytest.fixture
def pair(server: LocalServer, org: int) -> Iterator[tuple[Any, Any]]:
    theirs = official.Client(server.url, token=official.SecretKey("test_kid", PRIVATE_PEM))
    with ours.Client(server.url, token=ours.SecretKey("test_kid", PRIVATE_PEM)) as mine:
        yield (
            theirs.session(official.Usecase("test"), org=org, side="official"),
            mine.session(ours.Usecase("test"), org=org, side="ours"),
        )
    theirs._pool.close()


def stored(session: Any, key: str) -> tuple[int, bytes, dict[str, str]]:
    """Status, raw stored bytes and stable headers of the object."""
    url = session.object_url(key, token_validity=timedelta(minutes=1))
    with urllib3.PoolManager() as http:
        response = http.request("GET", url, decode_content=False)
    headers = {k.lower(): v for k, v in response.headers.items() if k.lower() not in VOLATILE}
    return response.status, response.data, headers


Scenario = Callable[[Any, Any], str]


def uncompressed(session: Any) -> dict[str, str]:
    """The put argument for no compression: ``compress`` where the client has
    it (ours, official 0.2.10, where ``compression`` is deprecated), else
    ``compression`` (official 0.2.0)."""
    name = "compress" if "compress" in inspect.signature(session.put).parameters else "compression"
    return {name: "none"}


def _meta_put(session: Any, module: Any) -> str:
    return str(
        session.put(
            TEXT,
            key="with meta",
            content_type="text/plain; charset=utf-8",
            metadata={"build_id": "42", "Mixed-Case": "value with spaces"},
            expiration_policy=module.TimeToLive(timedelta(days=30)),
            origin="203.0.113.42",
            filename='report "final".txt',
        )
    )


SCENARIOS: dict[str, Scenario] = {
    "compressed bytes": lambda s, m: s.put(TEXT, key="k1"),
    "uncompressed bytes": lambda s, m: s.put(TEXT, key="k2", **uncompressed(s)),
    "compressed stream": lambda s, m: s.put(io.BytesIO(TEXT * 10), key="k3"),
    "empty": lambda s, m: s.put(b"", key="k4"),
    "special key": lambda s, m: s.put(b"x", key="dir/with space%/café?#"),
    "metadata": _meta_put,
    "tti": lambda s, m: s.put(
        TEXT[:100], key="k5", expiration_policy=m.TimeToIdle(timedelta(hours=1, seconds=30))
    ),
    "ttl 90 days": lambda s, m: s.put(
        TEXT[:100], key="k6", expiration_policy=m.TimeToLive(timedelta(days=90))
    ),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_same_stored_bytes_and_headers(pair: tuple[Any, Any], scenario: str) -> None:
    theirs, mine = pair
    run = SCENARIOS[scenario]
    key_theirs = run(theirs, official)
    key_mine = run(mine, ours)
    assert key_theirs == key_mine
    status_theirs, body_theirs, headers_theirs = stored(theirs, key_theirs)
    status_mine, body_mine, headers_mine = stored(mine, key_mine)
    assert status_theirs == status_mine == 200
    assert body_mine == body_theirs
    assert headers_mine == headers_theirs
    got_theirs = theirs.get(key_theirs)
    got_mine = mine.get(key_mine)
    with got_mine.payload as payload:
        assert payload.read() == got_theirs.payload.read()


def test_each_reads_the_others_objects(
    pair: tuple[Any, Any], server: LocalServer, allow_small_parts: None
) -> None:
    theirs, mine = pair
    org = str(mine._scope).split(";")[0].split("=")[1]
    with ours.Client(server.url, token=ours.SecretKey("test_kid", PRIVATE_PEM)) as client:
        mine_on_theirs = client.session(ours.Usecase("test"), org=org, side="official")
        _meta_put(theirs, official)
        got = mine_on_theirs.get("with meta")
        assert got is not None
        with got.payload as payload:
            assert payload.read() == TEXT
        meta_theirs = theirs.head("with meta")
        meta_mine = got.metadata
        for field in (
            "content_type",
            "expiration_policy",
            "time_created",
            "time_expires",
            "origin",
            "filename",
            "custom",
        ):
            mine_value = getattr(meta_mine, field)
            theirs_value = getattr(meta_theirs, field)
            if field == "expiration_policy":
                assert mine_value.delta == theirs_value.delta
            else:
                assert mine_value == theirs_value, field
    # The official client reads an object written by our parallel put.
    with ours.Client(
        server.url,
        token=ours.SecretKey("test_kid", PRIVATE_PEM),
        multipart_threshold=100_000,
        multipart_part_size=30_000,
    ) as client:
        session = client.session(ours.Usecase("test"), org=org, side="official")
        words = os.urandom(150_000).hex().encode()  # ~300 KB, stored in several parts
        completed: list[int] = []
        complete = ours.multipart.MultipartUpload.complete

        def spy(upload: Any, parts: list[Any]) -> str:
            completed.append(len(parts))
            return complete(upload, parts)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(ours.multipart.MultipartUpload, "complete", spy)
            session.put(words, key="parallel")
        assert len(completed) == 1
        assert completed[0] > 1  # parts
    got = theirs.get("parallel")
    assert got.payload.read() == words
    assert theirs.head("parallel").compression == "zstd"


def test_multipart_handles_agree(pair: tuple[Any, Any]) -> None:
    theirs, mine = pair
    for session in (theirs, mine):
        upload = session.initiate_multipart_upload(
            key="mp", compression="none", content_type="text/plain", filename="a.txt"
        )
        parts = [
            upload.put_part(b"hello ", part_number=1, content_length=6),
            upload.put_part(b"world", part_number=2, content_length=5),
        ]
        assert [p.part_number for p in upload.list_parts()] == [1, 2]
        assert upload.complete(parts) == "mp"
    assert stored(theirs, "mp")[1:] == stored(mine, "mp")[1:]
    assert stored(mine, "mp")[1] == b"hello world"


def test_presigned_urls_agree(pair: tuple[Any, Any]) -> None:
    theirs, mine = pair
    key = "dir/with space%"
    for session in (theirs, mine):
        session.put(b"signed", key=key, **uncompressed(session))
    theirs_url = theirs.presigned_object_url("GET", key).replace("side=official", "side=ours")
    mine_url = mine.presigned_object_url("GET", key)
    strip = lambda url: url.split("&os_timestamp=")[0]  # noqa: E731
    assert strip(theirs_url) == strip(mine_url)
    with urllib3.PoolManager() as http:
        assert http.request("GET", mine_url).data == b"signed"
