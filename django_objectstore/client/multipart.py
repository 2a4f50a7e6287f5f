"""Multipart uploads: starting one, and the low-level handle (as in the
official client).

``Session.put`` drives this protocol by itself for large inputs (in
parallel, see ``Client(multipart_threshold=...)``); use the handle directly
only to upload parts from several processes or to resume an upload.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import IO, cast
from urllib.parse import urlencode

from django_objectstore import _protocol
from django_objectstore.client._io import Buffer, read_json
from django_objectstore.client._session import SessionCore
from django_objectstore.client.errors import RequestError, raise_for_status
from django_objectstore.client.metrics import measure_storage_operation
from django_objectstore.client.tracing import Span, SpanAttributeValue, storage_span

__all__ = ["CompletePart", "MultipartCompleteError", "MultipartUpload", "PartInfo", "initiate"]


@dataclass
class CompletePart:
    """An uploaded part, as needed to complete the upload."""

    part_number: int
    etag: str


@dataclass
class PartInfo:
    """An uploaded part as listed by the server."""

    part_number: int
    etag: str
    last_modified: datetime
    size: int


class MultipartCompleteError(RequestError):
    """The server reported a failure in the body of a (HTTP 200)
    multipart-complete response; ``code`` is the server's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(
            f"Multipart upload completion failed ({code}): {message}", status=200, response=message
        )
        self.code = code


def initiate(session: SessionCore, key: str | None, headers: dict[str, str]) -> MultipartUpload:
    """Start a multipart upload of the object ``key`` (server-chosen if
    ``None``) with the metadata ``headers``."""
    headers = {**headers, "Content-Length": "0"}
    with (
        storage_span("multipart.initiate", session._usecase, session._scope, key=key) as span,
        measure_storage_operation(
            session._metrics_backend, "multipart.initiate", session._usecase.name
        ),
    ):
        response = session._request(
            "PUT" if key else "POST", session._multipart_path(None, key, None), headers=headers
        )
        raise_for_status(response)
        data = read_json(response)
        # Set after the response: the key may be the server's choice.
        span.set_attribute("objectstore.key", str(data["key"]))
        span.set_attribute("objectstore.upload_id", str(data["upload_id"]))
    return MultipartUpload(session, str(data["key"]), str(data["upload_id"]))


class MultipartUpload:
    """Handle of an upload in progress; from ``Session.initiate_multipart_upload``
    or ``Session.resume_multipart_upload``. Parts are sent as given: if the
    upload was initiated with zstd compression, compress each part yourself."""

    def __init__(self, session: SessionCore, key: str, upload_id: str) -> None:
        self._session = session
        self._key = key
        self._upload_id = upload_id

    def __repr__(self) -> str:
        return f"MultipartUpload(key={self._key!r}, upload_id={self._upload_id!r})"

    @property
    def key(self) -> str:
        return self._key

    @property
    def upload_id(self) -> str:
        return self._upload_id

    def _span(
        self, operation: str, **attributes: SpanAttributeValue
    ) -> AbstractContextManager[Span]:
        session = self._session
        return storage_span(
            operation,
            session._usecase,
            session._scope,
            key=self._key,
            upload_id=self._upload_id,
            **attributes,
        )

    def _url(self, action: str | None, **params: str) -> str:
        query = urlencode({"upload_id": self._upload_id, **params})
        return self._session._multipart_path(action, self._key, query)

    def put_part(
        self,
        contents: Buffer | IO[bytes],
        *,
        part_number: int,
        content_length: int,
        content_md5: bytes | None = None,
    ) -> CompletePart:
        """Upload part ``part_number`` (from 1) of exactly ``content_length``
        bytes; ``content_md5`` is the optional raw 16-byte MD5 digest."""
        if (
            isinstance(contents, bytes | bytearray | memoryview)
            and memoryview(contents).nbytes != content_length
        ):
            raise ValueError(
                f"content_length must match the size of the provided payload "
                f"({content_length} != {memoryview(contents).nbytes})"
            )
        if content_md5 is not None and len(content_md5) != 16:
            raise ValueError(
                f"content_md5 must be exactly 16 bytes (a raw MD5 digest), got {len(content_md5)}"
            )
        session = self._session
        headers = session._request_headers()
        headers["Content-Length"] = str(content_length)
        if content_md5 is not None:
            headers["Content-MD5"] = base64.b64encode(content_md5).decode("ascii")
        url = self._url("parts", part_number=str(part_number))
        with (
            self._span("multipart.put_part", part_number=part_number, size=content_length),
            measure_storage_operation(
                session._metrics_backend, "multipart.put_part", session._usecase.name
            ) as metrics,
        ):
            response = session._request("PUT", url, headers=headers, body=contents)
            raise_for_status(response)
            etag = read_json(response).get("etag")
            metrics.record_size(content_length)
        if not isinstance(etag, str):
            raise RequestError(
                f"the server accepted part {part_number} without an etag",
                response.status,
                None,
            )
        return CompletePart(part_number=part_number, etag=etag)

    def list_parts(self) -> list[PartInfo]:
        """All uploaded parts, ordered by part number (follows pagination)."""
        with self._span("multipart.list_parts") as span:
            parts = self._list_parts()
            span.set_attribute("objectstore.part_count", len(parts))
            return parts

    def _list_parts(self) -> list[PartInfo]:
        parts: list[PartInfo] = []
        marker: int | None = None
        session = self._session
        while True:
            params = {} if marker is None else {"part_number_marker": str(marker)}
            response = session._request(
                "GET", self._url("parts", **params), headers=session._request_headers()
            )
            raise_for_status(response)
            data = read_json(response)
            listed = data.get("parts")
            try:
                for part in cast(list[dict[str, str | int]], listed):
                    parts.append(
                        PartInfo(
                            part_number=int(part["part_number"]),
                            etag=str(part["etag"]),
                            last_modified=_protocol.parse_timestamp(str(part["last_modified"])),
                            size=int(part["size"]),
                        )
                    )
            except (TypeError, KeyError, ValueError) as exc:
                raise RequestError(
                    f"the server listed parts in an unexpected form ({exc!r})",
                    response.status,
                    json.dumps(data),
                ) from None
            if not data.get("is_truncated"):
                return parts
            next_marker = data.get("next_part_number_marker")
            marker = next_marker if isinstance(next_marker, int) else None
            if marker is None:
                raise RequestError(
                    "Server listed parts with is_truncated=true but no next_part_number_marker",
                    status=response.status,
                    response=json.dumps(data),
                )

    def abort(self) -> None:
        """Discard the upload and its parts; the object is not created."""
        session = self._session
        with self._span("multipart.abort"):
            response = session._request(
                "DELETE", self._url(None), headers=session._request_headers()
            )
            raise_for_status(response)

    def complete(self, parts: Sequence[CompletePart | PartInfo]) -> str:
        """Assemble ``parts`` (sorted by number) into the object; returns its
        key. Raises :class:`MultipartCompleteError` when the server reports a
        failure in the response body (the HTTP status is 200 either way)."""
        session = self._session
        ordered = sorted(parts, key=lambda part: part.part_number)
        body = json.dumps(
            {"parts": [{"part_number": p.part_number, "etag": p.etag} for p in ordered]}
        ).encode("utf-8")
        headers = session._request_headers()
        headers["Content-Type"] = "application/json"
        with (
            self._span("multipart.complete", part_count=len(ordered)),
            measure_storage_operation(
                session._metrics_backend, "multipart.complete", session._usecase.name
            ),
        ):
            response = session._request("POST", self._url("complete"), headers=headers, body=body)
            raise_for_status(response)
            text = (response.data or b"").decode("utf-8", "replace").strip()
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise RequestError(
                    "Multipart upload completion returned a body that is not JSON",
                    status=response.status,
                    response=text,
                ) from exc
        if "error" in data:
            error = data["error"] or {}
            raise MultipartCompleteError(
                code=str(error.get("code", "")), message=str(error.get("message", ""))
            )
        return str(data["key"])
