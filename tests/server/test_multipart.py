"""Conformance: multipart uploads (protocol section 19, items 89-106)."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import zstandard

from django_objectstore.server import LocalServer
from tests.server.helpers import COMPLETE, MP, PARTS, bearer, call, complete, initiate, mint, upload

OBJ = "/v1/objects/test/org=1"
JSON = {"Content-Type": "application/json"}


def fresh() -> str:
    return f"mp-{uuid.uuid4().hex[:10]}"


def test_full_flow(any_server: LocalServer) -> None:
    url = any_server.url
    key = fresh()
    uid = initiate(url, key)
    e2 = upload(url, key, uid, 2, b"world!")
    e1 = upload(url, key, uid, 1, b"hello ")
    listing = call(url, "GET", f"{PARTS}/{key}?upload_id={uid}").json()
    assert [p["part_number"] for p in listing["parts"]] == [1, 2]
    assert [p["size"] for p in listing["parts"]] == [6, 6]
    assert [p["etag"] for p in listing["parts"]] == [e1, e2]
    assert listing["is_truncated"] is False
    assert "next_part_number_marker" not in listing
    assert listing["parts"][0]["last_modified"].endswith("Z")
    assert complete(url, key, uid, [(1, e1), (2, e2)]) == {"key": key}
    assert call(url, "GET", f"{OBJ}/{key}").body == b"hello world!"
    # the upload is gone after completion
    assert call(url, "GET", f"{PARTS}/{key}?upload_id={uid}").status == 404


def test_post_generates_key(memory_server: LocalServer) -> None:
    for path in (MP, f"{MP}/"):
        r = call(memory_server.url, "POST", path, b"")
        assert r.status == 200
        assert len(r.json()["key"]) == 36
        assert r.json()["upload_id"]


def test_pagination(memory_server: LocalServer) -> None:
    url = memory_server.url
    key = fresh()
    uid = initiate(url, key)
    for n in (3, 1, 2):
        upload(url, key, uid, n, b"x" * n)
    page = call(url, "GET", f"{PARTS}/{key}?upload_id={uid}&max_parts=2").json()
    assert [p["part_number"] for p in page["parts"]] == [1, 2]
    assert (page["is_truncated"], page["next_part_number_marker"]) == (True, 2)
    page = call(url, "GET", f"{PARTS}/{key}?upload_id={uid}&max_parts=2&part_number_marker=2")
    assert [p["part_number"] for p in page.json()["parts"]] == [3]
    assert page.json()["is_truncated"] is False


def test_reupload_replaces_part(any_server: LocalServer) -> None:
    url = any_server.url
    key = fresh()
    uid = initiate(url, key)
    old = upload(url, key, uid, 1, b"first")
    new = upload(url, key, uid, 1, b"second!")
    assert old != new
    parts = call(url, "GET", f"{PARTS}/{key}?upload_id={uid}").json()["parts"]
    assert [(p["etag"], p["size"]) for p in parts] == [(new, 7)]
    assert complete(url, key, uid, [(1, new)]) == {"key": key}
    assert call(url, "GET", f"{OBJ}/{key}").body == b"second!"


def test_part_needs_content_length(memory_server: LocalServer) -> None:
    key = fresh()
    uid = initiate(memory_server.url, key)
    path = f"{PARTS}/{key}?upload_id={uid}&part_number=1"
    r = call(memory_server.url, "PUT", path, b"data", chunked=True)
    assert r.status == 400
    assert "Content-Length" in r.json()["detail"]


@pytest.mark.parametrize(
    "query", ["part_number=0", "part_number=x", "", "upload_id=&part_number=1"]
)
def test_bad_part_query(memory_server: LocalServer, query: str) -> None:
    key = fresh()
    uid = initiate(memory_server.url, key)
    q = query if "upload_id" in query else f"upload_id={uid}&{query}"
    r = call(memory_server.url, "PUT", f"{PARTS}/{key}?{q}", b"x")
    assert r.status == 400
    assert r.body.startswith(b"Failed to deserialize query string")


def test_complete_validation(memory_server: LocalServer) -> None:
    url = memory_server.url
    key = fresh()
    uid = initiate(url, key)
    path = f"{COMPLETE}/{key}?upload_id={uid}"
    zero = json.dumps({"parts": [{"part_number": 0, "etag": "x"}]}).encode()
    assert call(url, "POST", path, zero, JSON).status == 422
    assert call(url, "POST", path, b"{not json", JSON).status == 400
    r = call(url, "POST", path, b'{"parts":[]}', {"Content-Type": "text/plain"})
    assert r.status == 415
    assert call(url, "POST", f"{COMPLETE}/{key}", b'{"parts":[]}', JSON).status == 400
    assert call(url, "DELETE", f"{MP}/{key}").status == 400


def test_complete_errors_are_200(any_server: LocalServer) -> None:
    url = any_server.url
    key = fresh()
    uid = initiate(url, key)
    etag = upload(url, key, uid, 1, b"data")
    for parts in ([(1, "wrong-etag")], [(1, etag), (2, etag)]):
        result = complete(url, key, uid, parts)
        error = result["error"]
        assert isinstance(error, dict)
        assert error["code"]
        assert error["message"]
        assert call(url, "GET", f"{OBJ}/{key}").status == 404
    assert complete(url, key, uid, [(1, etag)]) == {"key": key}


def test_abort(any_server: LocalServer) -> None:
    url = any_server.url
    key = fresh()
    uid = initiate(url, key)
    upload(url, key, uid, 1, b"data")
    assert call(url, "DELETE", f"{MP}/{key}?upload_id={uid}").status == 204
    assert call(url, "DELETE", f"{MP}/{key}?upload_id={uid}").status == 204
    assert call(url, "GET", f"{OBJ}/{key}").status == 404
    assert complete(url, key, uid, [])["error"]


def test_structured_key_and_metadata(any_server: LocalServer) -> None:
    url = any_server.url
    key = f"path/to/{fresh()}"
    headers = {
        "Content-Type": "text/plain",
        "x-sn-origin": "203.0.113.42",
        "x-sn-filename": "archive.tar.gz",
        "x-snme-my-key": "my-value",
        "x-sn-expiration": "ttl:1h",
    }
    uid = initiate(url, key, headers)
    etag = upload(url, key, uid, 1, b"payload")
    assert complete(url, key, uid, [(1, etag)]) == {"key": key}
    r = call(url, "GET", f"{OBJ}/{key}")
    assert r.body == b"payload"
    assert r.header("content-type") == "text/plain"
    assert r.header("x-sn-origin") == "203.0.113.42"
    assert r.header("x-sn-filename") == "archive.tar.gz"
    assert r.header("x-snme-my-key") == "my-value"
    assert r.header("x-sn-expiration") == "ttl:1h"


def test_zstd_frames(memory_server: LocalServer) -> None:
    url = memory_server.url
    key = fresh()
    uid = initiate(url, key, {"Content-Encoding": "zstd"})
    frames = [zstandard.ZstdCompressor().compress(p) for p in (b"hello ", b"world!")]
    etags = [upload(url, key, uid, n, f) for n, f in enumerate(frames, 1)]
    complete(url, key, uid, list(enumerate(etags, 1)))
    r = call(url, "GET", f"{OBJ}/{key}")
    assert r.header("content-encoding") == "zstd"
    assert r.body == b"".join(frames)
    reader = zstandard.ZstdDecompressor().stream_reader(r.body, read_across_frames=True)
    assert reader.read() == b"hello world!"


def test_concurrent_parts(any_server: LocalServer) -> None:
    url = any_server.url
    key = fresh()
    uid = initiate(url, key)
    chunks = {n: bytes([64 + n]) * (1000 + n) for n in range(1, 9)}
    with ThreadPoolExecutor(8) as pool:
        results = pool.map(lambda n: upload(url, key, uid, n, chunks[n]), chunks)
        etags = dict(zip(chunks, results, strict=True))
    # resume: list parts as a re-created handle would, then complete with them
    listed = call(url, "GET", f"{PARTS}/{key}?upload_id={uid}").json()["parts"]
    assert {p["part_number"]: p["etag"] for p in listed} == etags
    assert complete(url, key, uid, [(p["part_number"], p["etag"]) for p in listed])["key"] == key
    assert call(url, "GET", f"{OBJ}/{key}").body == b"".join(chunks[n] for n in sorted(chunks))


def test_unknown_upload(memory_server: LocalServer) -> None:
    key = fresh()
    r = call(memory_server.url, "PUT", f"{PARTS}/{key}?upload_id=nope&part_number=1", b"x")
    assert r.status == 404
    other = initiate(memory_server.url, fresh())
    r = call(memory_server.url, "PUT", f"{PARTS}/{key}?upload_id={other}&part_number=1", b"x")
    assert r.status == 404


def test_multipart_auth(auth_server: LocalServer) -> None:
    url = auth_server.url
    key = fresh()
    rw = bearer(mint())
    ro = bearer(mint(permissions=["object.read"]))
    assert call(url, "PUT", f"{MP}/{key}", b"", ro).status == 403
    r = call(url, "PUT", f"{MP}/{key}", b"", rw)
    uid = r.json()["upload_id"]
    path = f"{PARTS}/{key}?upload_id={uid}&part_number=1"
    assert call(url, "PUT", path, b"data", ro).status == 403
    etag = call(url, "PUT", path, b"data", rw).json()["etag"]
    assert call(url, "GET", f"{PARTS}/{key}?upload_id={uid}", headers=ro).status == 403
    body = json.dumps({"parts": [{"part_number": 1, "etag": etag}]}).encode()
    r = call(url, "POST", f"{COMPLETE}/{key}?upload_id={uid}", body, {**JSON, **ro})
    assert r.status == 200
    assert r.json()["error"]["message"] == "auth error: operation not allowed"
    r = call(url, "POST", f"{COMPLETE}/{key}?upload_id={uid}", body, {**JSON, **rw})
    assert r.json() == {"key": key}


def test_complete_body_too_large(memory_server: LocalServer) -> None:
    key = fresh()
    uid = initiate(memory_server.url, key)
    body = b'{"parts":[' + b" " * (2 * 1024 * 1024 + 10) + b"]}"
    r = call(memory_server.url, "POST", f"{COMPLETE}/{key}?upload_id={uid}", body, JSON)
    assert r.status == 413
    assert r.header("connection") == "close"
