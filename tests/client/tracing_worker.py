"""Run by ``test_tracing.py`` in a fresh interpreter (``sentry_sdk.init``
patches the standard library process-wide, so it stays out of the test run).

``python tracing_worker.py URL PEM_PATH MODE`` initialises Sentry with a
transport that keeps every envelope (``traces_sample_rate=1.0``), runs the
same operations with the official client and ours against the server at URL,
and prints one JSON line: ``{"official": [...spans], "ours": [...spans],
"warnings": {...}}``, each span as sent (name, ids, attributes).

MODE ``stream`` turns span streaming on (``trace_lifecycle="stream"``);
``static`` leaves the SDK in its default mode; ``parallel`` makes one large
put of ours take the parallel multipart path; ``no-sdk`` never imports
sentry_sdk and reports whether anything did.
"""

from __future__ import annotations

import json
import sys
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any


def _operations(lib: Any, url: str, pem: str) -> None:
    client = lib.Client(url, token=lib.SecretKey("test_kid", pem))
    usecase = lib.Usecase("test", expiration_policy=lib.TimeToLive(timedelta(days=1)))
    session = client.session(usecase, org=5, project="x")
    session.put(b"hello tracing", key="k1")
    got = session.get("k1")
    got.payload.read()
    got.payload.close()
    assert session.get("missing") is None
    session.head("k1")
    session.head("missing")
    session.extend_expiry("k1", from_now=timedelta(days=2))
    session.mint_token(expiry_seconds=120)
    session.presigned_object_url("GET", "k1", timedelta(minutes=5))
    upload = session.initiate_multipart_upload(key="k2", compression="none")
    part = upload.put_part(b"part one", part_number=1, content_length=8)
    upload.list_parts()
    upload.complete([part])
    session.initiate_multipart_upload(key="k3").abort()
    session.delete("k1")
    session.delete("k2")


def main(url: str, pem_path: str, mode: str) -> None:
    pem = Path(pem_path).read_text()
    if mode == "no-sdk":
        import django_objectstore.client as ours

        _operations(ours, url, pem)
        print(json.dumps({"sentry_sdk_imported": "sentry_sdk" in sys.modules}))
        return

    import sentry_sdk
    from sentry_sdk.transport import Transport

    class Keep(Transport):
        def __init__(self) -> None:
            super().__init__({})
            self.spans: list[dict[str, Any]] = []

        def capture_envelope(self, envelope: Any) -> None:
            for item in envelope.items:
                if item.headers.get("type") == "span":
                    self.spans.extend(item.payload.json["items"])

    keep = Keep()
    options: dict[str, Any] = {"trace_lifecycle": "stream"} if mode != "static" else {}
    sentry_sdk.init(
        dsn="http://public@127.0.0.1:9/1",  # never contacted: the transport keeps everything
        transport=keep,
        traces_sample_rate=1.0,
        **options,
    )
    import objectstore_client as official

    import django_objectstore.client as ours

    result: dict[str, Any] = {"warnings": {}}
    for name, lib in (("official", official), ("ours", ours)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if mode == "parallel":
                if name == "official":
                    continue
                client = ours.Client(
                    url,
                    token=ours.SecretKey("test_kid", pem),
                    multipart_threshold=1024,
                    multipart_part_size=5 << 20,
                )
                session = client.session(ours.Usecase("test"), org=6)
                # 16 MiB sent as is: four parts uploaded by worker threads.
                session.put(b"0123456789abcdef" * (1 << 20), key="big", compress="none")
            else:
                _operations(lib, url, pem)
        result["warnings"][name] = sorted(
            {str(w.message) for w in caught if "span streaming" in str(w.message)}
        )
        sentry_sdk.flush()
        result[name] = keep.spans
        keep.spans = []
    print(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:4])
