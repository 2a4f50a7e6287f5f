"""``ObjectstoreStorage``: Django's Storage API over Objectstore.

Names are ``<scope>/<key>`` (see :mod:`django_objectstore.names`). By default
the server picks the key (one POST per save, no ``exists()`` round trip);
with ``key_from_name=True`` the generated name is the key and Django's
no-overwrite rules apply (``allow_overwrite=True`` to replace).

The storage holds only its options: the client comes from
:mod:`django_objectstore.factory` on use, so construction does no I/O, the
storage pickles and deconstructs without secrets, and one instance is safe to
share between threads.
"""

from __future__ import annotations

import io
import mimetypes
import os
import posixpath
import tempfile
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import IO, Any, Final, NoReturn
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, SuspiciousFileOperation
from django.core.files.base import File
from django.core.files.storage import Storage
from django.utils import timezone
from django.utils.deconstruct import deconstructible

from django_objectstore import factory
from django_objectstore._protocol import (
    MAX_PRESIGN_SECONDS,
    encode_path,
    encode_query_value,
    presign_canonical_string,
)
from django_objectstore.conf import objectstore_settings
from django_objectstore.files import BLOCK_SIZE, Fetched, ObjectstoreFile, RemoteReader
from django_objectstore.names import ScopePairs, join_name, scope_pairs, split_name

__all__ = ["SIZE_METADATA_KEY", "URL_STRATEGIES", "ObjectstoreStorage"]

#: Custom metadata entry holding the logical (uncompressed) size in bytes.
SIZE_METADATA_KEY: Final = "original-size"
#: What get_object_parameters() may return (keywords of Session.put()).
OBJECT_PARAMETERS: Final = frozenset(
    {"content_type", "filename", "metadata", "expiration_policy", "origin", "compression"}
)
#: Length of a server-generated key (a canonical UUID4).
SERVER_KEY_LENGTH: Final = 36
URL_STRATEGIES: Final = ("auto", "presigned", "plain", "view")
_SNIFF_BYTES: Final = 262
#: Unknown-size uploads to compressed usecases are spooled; this much in memory.
SPOOL_MEMORY: Final = 8 * 1024 * 1024


@deconstructible(path="django_objectstore.storage.ObjectstoreStorage")
class ObjectstoreStorage(Storage):
    """Store files in one Objectstore usecase.

    Options (keyword-only, all optional, all plain values so they pickle and
    serialise into migrations without secrets):

    * ``usecase``: usecase name; defaults to the only one in ``USECASES``.
    * ``scope``: scope for names that carry no scope segment, e.g.
      ``{"org": 1}``; default no scope (``_``).
    * ``key_from_name``: use the generated name as the key instead of letting
      the server choose one.
    * ``allow_overwrite``: with ``key_from_name``, replace existing objects
      instead of picking an alternative name (Django's semantics).
    * ``url_strategy``: ``"auto"`` (pre-signed if a secret key is configured,
      else plain), ``"presigned"``, ``"plain"`` or ``"view"`` (the download
      view in ``django_objectstore.urls``, signed with Django's SECRET_KEY).
    * ``url_expiry``: validity of signed URLs in seconds (default
      ``OBJECTSTORE["URL_EXPIRY_SECONDS"]``).
    * ``url_bucket``: round pre-signed URLs to this many seconds so they stay
      identical (cacheable) meanwhile (default
      ``OBJECTSTORE["URL_BUCKET_SECONDS"]``, off).
    """

    def __init__(
        self,
        usecase: str | None = None,
        *,
        scope: Mapping[str, Any] | None = None,
        key_from_name: bool = False,
        allow_overwrite: bool = False,
        url_strategy: str = "auto",
        url_expiry: int | None = None,
        url_bucket: int | None = None,
    ) -> None:
        checked: object = usecase
        if checked is not None and (not isinstance(checked, str) or not checked):
            raise ImproperlyConfigured(
                f"ObjectstoreStorage usecase must be a name, got {usecase!r}."
            )
        if url_strategy not in URL_STRATEGIES:
            raise ImproperlyConfigured(
                f"ObjectstoreStorage url_strategy={url_strategy!r}; use one of "
                f"{', '.join(URL_STRATEGIES)}."
            )
        if allow_overwrite and not key_from_name:
            raise ImproperlyConfigured(
                "ObjectstoreStorage(allow_overwrite=True) needs key_from_name=True: "
                "server-chosen keys are always new."
            )
        try:
            self._default_scope = scope_pairs(scope)
        except ValueError as exc:
            raise ImproperlyConfigured(f"ObjectstoreStorage scope={scope!r}: {exc}") from None
        self._usecase = usecase
        self.key_from_name = key_from_name
        self.allow_overwrite = allow_overwrite
        self.url_strategy = url_strategy
        self.url_expiry = url_expiry
        self.url_bucket = url_bucket

    def __repr__(self) -> str:
        return f"<ObjectstoreStorage usecase={self._usecase!r}>"

    # -- configuration ---------------------------------------------------
    @property
    def usecase(self) -> str:
        if self._usecase is not None:
            return self._usecase
        usecases = list(objectstore_settings.usecases)
        if len(usecases) == 1:
            return usecases[0]
        raise ImproperlyConfigured(
            "ObjectstoreStorage needs a usecase: pass OPTIONS={'usecase': ...} (or "
            f"usecase=...) because OBJECTSTORE['USECASES'] has {len(usecases)} entries."
        )

    def _session(self, pairs: ScopePairs) -> Any:
        return factory.get_session(self.usecase, **dict(pairs))

    def _split(self, name: str) -> tuple[ScopePairs, str]:
        return split_name(str(name).replace("\\", "/"), self._default_scope)

    def canonical_name(self, name: str) -> str:
        """``name`` with its scope segment made explicit (``_/`` if none)."""
        pairs, key = self._split(name)
        return join_name(pairs, key)

    # -- names -----------------------------------------------------------
    def generate_filename(self, filename: str | os.PathLike[str]) -> str:
        # Keys are not paths: no os.path.normpath (which would rewrite them on
        # Windows and collapse segments); only drop empty and '.' segments.
        filename = str(filename).replace("\\", "/")
        dirname, _, basename = filename.rpartition("/")
        parts = [part for part in dirname.split("/") if part not in ("", ".")]
        if ".." in parts:
            raise SuspiciousFileOperation(f"Detected path traversal attempt in {dirname!r}")
        return "/".join([*parts, self.get_valid_name(basename)])

    def get_available_name(self, name: str, max_length: int | None = None) -> str:
        name = self.canonical_name(name)
        if not self.key_from_name:
            # The server picks a 36-character key: check the final length now,
            # before uploading, instead of failing in the database afterwards.
            pairs, _ = self._split(name)
            final = len(join_name(pairs, "k")) - 1 + SERVER_KEY_LENGTH
            if max_length is not None and final > max_length:
                raise SuspiciousFileOperation(
                    f"Stored names in usecase {self.usecase!r} with scope "
                    f"{join_name(pairs, '')!r} are {final} characters long (scope + "
                    f"'/' + a {SERVER_KEY_LENGTH}-character server key), more than the "
                    f"field's max_length={max_length}; raise max_length on the field."
                )
            return name
        return super().get_available_name(name, max_length=max_length)

    def is_name_available(self, name: str, max_length: int | None = None) -> bool:
        if max_length is not None and len(name) > max_length:
            return False
        return self.allow_overwrite or not self.exists(name)

    def get_alternative_name(self, file_root: str, file_ext: str) -> str:
        if self.allow_overwrite:
            return f"{file_root}{file_ext}"
        return super().get_alternative_name(file_root, file_ext)

    # -- writing ---------------------------------------------------------
    def _save(self, name: str, content: File) -> str:  # type: ignore[type-arg]
        pairs, key = self._split(name)
        session = self._session(pairs)
        original = getattr(content, "name", None) or key
        filename = posixpath.basename(str(original).replace("\\", "/")) or None
        extra = dict(self.get_object_parameters(name, content))
        unknown = set(extra) - OBJECT_PARAMETERS
        if unknown:
            raise TypeError(
                f"get_object_parameters() returned unknown option(s) {sorted(unknown)}; "
                f"allowed: {sorted(OBJECT_PARAMETERS)}."
            )
        body: Any = None
        try:
            body, size, head = _body_of(content)
            if size is None and objectstore_settings.compression(self.usecase) != "none":
                # A compressed object's logical size is only cheap to answer if
                # recorded at upload: spool unknown-size streams (memory up to
                # SPOOL_MEMORY, then a temporary file) to learn it.
                body, size = _spool(body)
            metadata = dict(extra.pop("metadata", None) or {})
            if size is not None:
                metadata[SIZE_METADATA_KEY] = str(size)
            options: dict[str, Any] = {
                "content_type": _declared_content_type(content)
                or _sniff(head)
                or _guess(filename or key),
                "filename": filename,
                **extra,
                "metadata": metadata or None,
            }
            stored = self._put(session, body, key=key if self.key_from_name else None, **options)
        except (TypeError, ValueError, SuspiciousFileOperation, ImproperlyConfigured):
            raise
        except Exception as exc:  # noqa: BLE001 - translated below
            self._raise(exc, name)
        finally:
            if isinstance(body, _Closeable):
                body.close()
        return join_name(pairs, stored)

    def get_object_parameters(self, name: str, content: File) -> Mapping[str, Any]:  # type: ignore[type-arg]
        """Per-object upload options; override to customise. May return any of
        ``content_type``, ``filename``, ``metadata`` (custom entries, merged),
        ``expiration_policy`` (overrides the usecase's), ``origin`` and
        ``compression``. ``name`` is the stored name being written (scope
        included); ``content`` is what Django is saving."""
        return {}

    def _put(self, session: Any, body: Any, **kwargs: Any) -> str:
        key: str = session.put(body, **kwargs)
        return key

    def _upload_to_name(self, name: str, raw: IO[bytes]) -> None:
        """Write mode: upload ``raw`` under exactly ``name`` (a PUT)."""
        pairs, key = self._split(name)
        size = raw.seek(0, io.SEEK_END)
        raw.seek(0)
        head = raw.read(_SNIFF_BYTES)
        raw.seek(0)
        try:
            self._put(
                self._session(pairs),
                _NonClosing(raw),
                key=key,
                content_type=_sniff(head) or _guess(key),
                filename=posixpath.basename(key),
                metadata={SIZE_METADATA_KEY: str(size)},
            )
        except Exception as exc:  # noqa: BLE001 - translated below
            self._raise(exc, name)

    # -- reading ---------------------------------------------------------
    def _open(self, name: str, mode: str = "rb") -> ObjectstoreFile:
        return ObjectstoreFile(self.canonical_name(name), mode, self)

    def _reader(self, name: str) -> RemoteReader:
        pairs, key = self._split(name)
        session = self._session(pairs)

        def fetch(start: int) -> Fetched:
            try:
                return self._fetch(session, key, start)
            except Exception as exc:  # noqa: BLE001 - translated below
                self._raise(exc, name)

        def count() -> int:
            return self._logical_size(session, key, name, known=None)

        return RemoteReader(fetch, count)

    def _fetch(self, session: Any, key: str, start: int) -> Fetched:
        """Open a ranged GET of ``key`` from logical offset ``start``.

        The first request (``start=0``) learns from its headers whether the
        object is compressed; compressed objects are decoded here and always
        read from 0 (a zstd stream cannot be entered in the middle)."""
        response = session.get_range(key, start)
        if response is None:
            raise FileNotFoundError(
                f"Objectstore has no object {key!r} in usecase {self.usecase!r}."
            )
        meta = response.metadata
        size = _custom_size(meta)
        if meta.compression is None:
            if size is None:
                size = response.total_size
            return Fetched(response.payload, response.start, size, meta, compressed=False)
        if meta.compression != "zstd":
            response.payload.close()
            raise OSError(f"Cannot decode {meta.compression!r}-encoded object {key!r}.")
        if start:
            # Should not happen (the reader restarts compressed reads at 0).
            response.payload.close()
            return self._fetch(session, key, 0)
        import zstandard

        stream = zstandard.ZstdDecompressor().stream_reader(
            response.payload, read_size=BLOCK_SIZE, read_across_frames=True
        )
        return Fetched(stream, 0, size, meta, compressed=True)

    def _logical_size(self, session: Any, key: str, name: str, known: Any) -> int:
        meta = known if known is not None else self._head(session, key, name)
        size = _custom_size(meta)
        if size is not None:
            return size
        if meta.compression is None:
            if meta.size is not None:
                return int(meta.size)
            try:
                response = session.get_range(key, 0, 0)
            except Exception as exc:  # noqa: BLE001 - translated below
                self._raise(exc, name)
            if response is None:
                raise FileNotFoundError(f"Objectstore has no object {name!r}.")
            response.payload.close()
            if response.total_size is not None:
                return int(response.total_size)
        # Compressed and written by another client: count the decoded bytes.
        reader = self._reader(name)
        try:
            total = 0
            while chunk := reader.read(1024 * 1024):
                total += len(chunk)
            return total
        finally:
            reader.close()

    def _head(self, session: Any, key: str, name: str) -> Any:
        try:
            meta = session.head(key)
        except Exception as exc:  # noqa: BLE001 - translated below
            self._raise(exc, name)
        if meta is None:
            raise FileNotFoundError(
                f"Objectstore has no object {name!r} in usecase {self.usecase!r}."
            )
        return meta

    def metadata(self, name: str) -> Any:
        """The object's metadata (one HEAD); ``FileNotFoundError`` if missing."""
        pairs, key = self._split(name)
        return self._head(self._session(pairs), key, name)

    def exists(self, name: str) -> bool:
        if not name:
            # collectstatic --clear asks about the root; there is no listing.
            return False
        pairs, key = self._split(name)
        try:
            self._head(self._session(pairs), key, name)
        except FileNotFoundError:
            return False
        return True

    def size(self, name: str) -> int:
        pairs, key = self._split(name)
        session = self._session(pairs)
        return self._logical_size(session, key, name, known=None)

    def delete(self, name: str) -> None:
        if not name:
            raise ValueError("The name must be given to delete().")
        pairs, key = self._split(name)
        try:
            self._session(pairs).delete(key)
        except Exception as exc:  # noqa: BLE001 - a missing object is not an error
            if _status(exc) == 404:
                return
            self._raise(exc, name)

    def get_created_time(self, name: str) -> datetime:
        return self._time(name)

    def get_modified_time(self, name: str) -> datetime:
        # Objects are immutable; an overwrite resets the creation time.
        return self._time(name)

    def _time(self, name: str) -> datetime:
        created = self.metadata(name).time_created
        if created is None:
            raise NotImplementedError(
                f"Objectstore did not report a creation time for {name!r} (old server?)."
            )
        if settings.USE_TZ:
            return created  # type: ignore[no-any-return]
        return timezone.make_naive(created)

    def get_accessed_time(self, name: str) -> NoReturn:
        raise NotImplementedError(
            "Objectstore does not record access times (TTI expiry tracks accesses "
            "internally but does not expose them)."
        )

    def listdir(self, path: str) -> NoReturn:
        raise NotImplementedError(
            "Objectstore has no listing API: objects can only be reached by name. Keep the "
            "names in your database (FileField does) instead of listing storage."
        )

    def path(self, name: str) -> NoReturn:
        raise NotImplementedError(
            "Objectstore objects are remote and have no local filesystem path; use "
            "storage.open(name) to read them."
        )

    # -- URLs --------------------------------------------------------------
    def url(self, name: str | None, expire: int | None = None) -> str:
        """A URL a browser can fetch, computed locally (no network I/O).

        ``expire`` (seconds) overrides ``url_expiry`` for signed URLs.
        """
        if not name:
            raise ValueError("url() needs the stored name of an object.")
        pairs, key = self._split(name)
        seconds = expire if expire is not None else self.url_expiry
        if seconds is None:
            seconds = objectstore_settings.url_expiry_seconds
        strategy = self.url_strategy
        if strategy == "view":
            return self._view_url(join_name(pairs, key), seconds)
        session = self._session(pairs)
        signs = isinstance(factory.get_token(), _secret_key_class())
        if strategy == "presigned" or (strategy == "auto" and signs):
            if not signs:
                raise ImproperlyConfigured(
                    "url_strategy='presigned' needs OBJECTSTORE['TOKEN'] with a "
                    "SECRET_KEY or SECRET_KEY_FILE to sign URLs."
                )
            if not 0 < seconds <= MAX_PRESIGN_SECONDS:
                raise ValueError(
                    f"Pre-signed URLs can be valid for 1 to {MAX_PRESIGN_SECONDS} seconds, "
                    f"got {seconds}."
                )
            bucket = self.url_bucket
            if bucket is None:
                bucket = objectstore_settings.url_bucket_seconds
            if bucket:
                url: str = self._bucketed_url(pairs, key, seconds, bucket)
            else:
                url = session.presigned_object_url("GET", key, timedelta(seconds=seconds))
        else:
            url = session.object_url(key)
        public = objectstore_settings.public_url
        if public:
            base = objectstore_settings.url
            if url.startswith(base):
                url = public + url[len(base) :]
        return url

    def _bucketed_url(self, pairs: ScopePairs, key: str, seconds: int, bucket: int) -> str:
        """A pre-signed URL that stays byte-identical for ``bucket`` seconds
        (so browsers and CDNs can cache it): the signing time is rounded down
        to the bucket and the validity stretched by one bucket, so it is still
        valid for at least ``seconds`` whenever it is handed out."""
        token = factory.get_token()
        now = int(time.time())
        signed_at = now - now % bucket
        duration = min(seconds + bucket, MAX_PRESIGN_SECONDS)
        parts = urlsplit(objectstore_settings.url)
        path = encode_path(f"{parts.path}/v1/objects/{self.usecase}/{join_name(pairs, key)}")
        stamp = datetime.fromtimestamp(signed_at, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        query = encode_query_value(
            f"os_kid={token.kid}&os_timestamp={stamp}&os_duration={duration}"
        )
        signature = token.signature_for_canonical_form(presign_canonical_string("GET", path, query))
        return f"{parts.scheme}://{parts.netloc}{path}?{query}&os_sig={signature}"

    def _view_url(self, name: str, seconds: int) -> str:
        from django_objectstore.views import signed_download_url

        return signed_download_url(name, seconds, storage=self)

    # -- async siblings (Django has no async storage API) -------------------
    # Each runs the blocking call in a worker thread, so an async view never
    # blocks its event loop on Objectstore I/O. url() does no I/O: call it.
    async def asave(self, name: str | None, content: Any, max_length: int | None = None) -> str:
        return await sync_to_async(self.save, thread_sensitive=False)(name, content, max_length)

    async def aopen(self, name: str, mode: str = "rb") -> File:  # type: ignore[type-arg]
        return await sync_to_async(self.open, thread_sensitive=False)(name, mode)

    async def aexists(self, name: str) -> bool:
        return await sync_to_async(self.exists, thread_sensitive=False)(name)

    async def asize(self, name: str) -> int:
        return await sync_to_async(self.size, thread_sensitive=False)(name)

    async def adelete(self, name: str) -> None:
        await sync_to_async(self.delete, thread_sensitive=False)(name)

    # -- errors ------------------------------------------------------------
    def _raise(self, exc: BaseException, name: str) -> NoReturn:
        if isinstance(exc, OSError | SuspiciousFileOperation | ImproperlyConfigured):
            raise exc
        status = _status(exc)
        where = f"{name!r} in usecase {self.usecase!r}"
        if status == 404:
            raise FileNotFoundError(f"Objectstore has no object {where}.") from exc
        body = str(getattr(exc, "response", "") or "")
        if status in (401, 403) or (status == 400 and "auth error" in body):
            raise PermissionError(
                f"Objectstore refused access to {where} (HTTP {status}); check "
                "OBJECTSTORE['TOKEN'] and the key's permissions on the server."
            ) from exc
        if status is not None or _is_client_error(exc):
            raise OSError(f"Objectstore request for {where} failed: {exc}") from exc
        raise exc


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def _is_client_error(exc: BaseException) -> bool:
    from django_objectstore.client import RequestError

    return isinstance(exc, RequestError)


def _secret_key_class() -> type:
    from django_objectstore.client import SecretKey

    return SecretKey


def _custom_size(meta: Any) -> int | None:
    value = (getattr(meta, "custom", None) or {}).get(SIZE_METADATA_KEY)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _declared_content_type(content: Any) -> str | None:
    for obj in (content, getattr(content, "file", None)):
        value = getattr(obj, "content_type", None)
        if isinstance(value, str) and "/" in value:
            charset = getattr(obj, "charset", None)
            return f"{value}; charset={charset}" if charset else value
    return None


def _sniff(head: bytes) -> str | None:
    if not head:
        return None
    import filetype

    kind = filetype.guess(head)
    return None if kind is None else str(kind.mime)


def _guess(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


class _NonClosing(io.RawIOBase):
    """A read-only view of a caller's file that never closes it."""

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self._raw = raw

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        try:
            return bool(self._raw.seekable())
        except (AttributeError, ValueError):
            return False

    def read(self, size: int | None = -1) -> bytes:
        data: Any = self._raw.read(-1 if size is None else size)
        return data.encode("utf-8") if isinstance(data, str) else data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(memoryview(buffer)))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()


class _Closeable(io.RawIOBase):
    """Marker base for bodies we opened ourselves and must close."""


class _ChunkBody(_Closeable):
    """Bytes from an iterator of chunks (str chunks are UTF-8 encoded)."""

    def __init__(self, head: bytes, chunks: Iterator[bytes | str]) -> None:
        super().__init__()
        self._pending = head
        self._chunks = chunks

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        want = -1 if size is None or size < 0 else size
        out = bytearray()
        while want < 0 or len(out) < want:
            if not self._pending:
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._pending = chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk)
                continue
            take = len(self._pending) if want < 0 else want - len(out)
            out += self._pending[:take]
            self._pending = self._pending[take:]
        return bytes(out)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(memoryview(buffer)))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)


class _PathBody(_Closeable):
    """A temporary upload read from its own file handle (caller's stays open)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.file = open(path, "rb")  # noqa: SIM115 - closed by close()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self.file.read(-1 if size is None else size)

    def readinto(self, buffer: Any) -> int:
        return self.file.readinto(buffer)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.file.seek(offset, whence)

    def tell(self) -> int:
        return self.file.tell()

    def fileno(self) -> int:
        return self.file.fileno()

    def close(self) -> None:
        self.file.close()
        super().close()


class _SpoolBody(_Closeable):
    def __init__(self, spool: IO[bytes]) -> None:
        super().__init__()
        self.spool = spool

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self.spool.read(-1 if size is None else size)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(memoryview(buffer)))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.spool.seek(offset, whence)

    def tell(self) -> int:
        return self.spool.tell()

    def close(self) -> None:
        self.spool.close()
        super().close()


def _spool(body: Any) -> tuple[_SpoolBody, int]:
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115 - body owns it
    try:
        while block := body.read(BLOCK_SIZE):
            spool.write(block)
    finally:
        if isinstance(body, _Closeable):
            body.close()
    size = spool.tell()
    spool.seek(0)
    return _SpoolBody(spool), size


def _body_of(content: Any) -> tuple[Any, int | None, bytes]:
    """Turn Django's content object into an upload body, its byte size when
    known without reading it, and its first bytes (for sniffing). Never
    closes ``content``."""
    temp_path = getattr(content, "temporary_file_path", None)
    if callable(temp_path):
        body = _PathBody(temp_path())
        size = body.seek(0, io.SEEK_END)
        body.seek(0)
        head = body.read(_SNIFF_BYTES)
        body.seek(0)
        return body, size, head
    raw = getattr(content, "file", content)
    if isinstance(raw, io.StringIO):
        data = raw.getvalue().encode("utf-8")
        return data, len(data), data[:_SNIFF_BYTES]
    if isinstance(raw, io.BytesIO):
        data = raw.getvalue()
        return data, len(data), data[:_SNIFF_BYTES]
    seekable = False
    try:
        seekable = bool(raw.seekable())
    except (AttributeError, ValueError, OSError):
        seekable = False
    if seekable:
        try:
            start = raw.seek(0)
            size = raw.seek(0, io.SEEK_END) - start
            raw.seek(0)
            head = raw.read(_SNIFF_BYTES)
            raw.seek(0)
        except (OSError, ValueError):
            seekable = False
        else:
            if isinstance(head, str):
                # A text-mode file: sizes are in characters, so encode chunks.
                return _ChunkBody(b"", content.chunks()), None, head.encode("utf-8")
            return _NonClosing(raw), size, head
    # Non-seekable (e.g. an urlopen() response): read the head, then chain.
    chunks = (
        iter(content.chunks()) if hasattr(content, "chunks") else iter(lambda: raw.read(65536), b"")
    )
    first = next(chunks, b"")
    first_bytes = first.encode("utf-8") if isinstance(first, str) else bytes(first)
    return _ChunkBody(first_bytes, chunks), None, first_bytes[:_SNIFF_BYTES]
