"""``ObjectstoreStorage``: Django's Storage API over Objectstore.

Names are keys, as in Django's other storages: the name Django generated
(``upload_to`` folders and extension kept) is the key, prefixed by the scope
when there is one (see :mod:`django_objectstore.names`). Django's no-overwrite
rules apply (``allow_overwrite=True`` replaces); ``server_chosen_keys=True``
lets the server pick every key instead.

The storage holds only its options: the client comes from
:mod:`django_objectstore.factory` on use, so construction does no I/O, the
storage pickles and deconstructs without secrets, and one instance is safe to
share between threads.

Neighbours: :mod:`~django_objectstore.uploads` turns Django's content into
upload bodies, :mod:`~django_objectstore.files` reads objects (and is the
``File`` returned by ``open()``), :mod:`~django_objectstore.links` makes
browser links, :mod:`~django_objectstore.errors` maps the client's exceptions
to Django's.
"""

from __future__ import annotations

import functools
import os
import posixpath
import warnings
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import IO, Any, Final, NoReturn

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, SuspiciousFileOperation
from django.core.files.base import File
from django.core.files.storage import Storage
from django.utils import timezone
from django.utils.deconstruct import deconstructible

from django_objectstore import factory
from django_objectstore._protocol import MAX_PRESIGN_SECONDS, render_scopes
from django_objectstore.client import Metadata, SecretKey, Session
from django_objectstore.conf import objectstore_settings
from django_objectstore.errors import CLIENT_ERRORS, storage_error
from django_objectstore.files import SIZE_METADATA_KEY, ObjectstoreFile, RemoteObject
from django_objectstore.links import bucketed_presigned_url, download_path, download_url
from django_objectstore.names import ScopePairs, join_name, scope_pairs, split_name
from django_objectstore.uploads import body_of, body_of_spool, content_type_of, spooled

__all__ = ["SIZE_METADATA_KEY", "URL_STRATEGIES", "ObjectstoreStorage"]

#: What get_object_parameters() may return (keywords of Session.put()).
OBJECT_PARAMETERS: Final = frozenset(
    {"content_type", "filename", "metadata", "expiration_policy", "origin", "compression"}
)
#: Length of a server-generated key (a canonical UUID4).
SERVER_KEY_LENGTH: Final = 36
URL_STRATEGIES: Final = ("auto", "presigned", "plain", "view", "view-unsigned")


@deconstructible(path="django_objectstore.storage.ObjectstoreStorage")
class ObjectstoreStorage(Storage):
    """Store files in one Objectstore usecase.

    Options (keyword-only, all optional, all plain values so they pickle and
    serialise into migrations without secrets):

    * ``usecase``: usecase name; defaults to ``OBJECTSTORE["DEFAULT_USECASE"]``,
      else the only one in ``USECASES``.
    * ``scope``: scope for names that carry no scope segment, e.g.
      ``{"org": 1}``; default no scope.
    * ``allow_overwrite``: replace an existing object of the same name
      instead of picking an alternative name (Django's semantics).
    * ``server_chosen_keys``: let the server pick every key (a UUID; one POST
      per save, no existence check) instead of using the name Django
      generated. ``key_from_name`` (deprecated) is its opposite.
    * ``url_strategy``: ``"auto"`` (pre-signed if a secret key is configured,
      else plain), ``"presigned"``, ``"plain"``, ``"view"`` (the download view
      in ``django_objectstore.urls``, signed with Django's SECRET_KEY) or
      ``"view-unsigned"`` (the download view, unsigned: stable URLs for
      objects ``DOWNLOAD_PERMISSION`` lets anyone read, such as static files).
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
        allow_overwrite: bool = False,
        server_chosen_keys: bool = False,
        key_from_name: bool | None = None,
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
        if key_from_name is not None:
            if server_chosen_keys and key_from_name:
                raise ImproperlyConfigured(
                    "ObjectstoreStorage(key_from_name=True, server_chosen_keys=True) "
                    "contradict each other; drop key_from_name (deprecated)."
                )
            warnings.warn(
                "ObjectstoreStorage(key_from_name=...) is deprecated: names are keys by "
                "default now. Drop key_from_name=True; write server_chosen_keys=True "
                "instead of key_from_name=False.",
                DeprecationWarning,
                stacklevel=2,
            )
            server_chosen_keys = not key_from_name
        if allow_overwrite and server_chosen_keys:
            raise ImproperlyConfigured(
                "ObjectstoreStorage(allow_overwrite=True) cannot be combined with "
                "server_chosen_keys=True: server-chosen keys are always new."
            )
        try:
            self._default_scope = scope_pairs(scope)
        except ValueError as exc:
            raise ImproperlyConfigured(f"ObjectstoreStorage scope={scope!r}: {exc}") from None
        self._usecase = usecase
        self.server_chosen_keys = server_chosen_keys
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
        default = objectstore_settings.default_usecase
        if default is not None:
            return default
        usecases = list(objectstore_settings.usecases)
        if len(usecases) == 1:
            return usecases[0]
        raise ImproperlyConfigured(
            "ObjectstoreStorage was built without a usecase, and OBJECTSTORE has no "
            f"DEFAULT_USECASE to fall back on ({len(usecases)} usecases configured). Set "
            "OBJECTSTORE['DEFAULT_USECASE'] = '<usecase>' (apps such as django-filer build "
            "the storage from STORAGES[...]['BACKEND'] alone, without OPTIONS), or pass "
            "OPTIONS={'usecase': ...}."
        )

    def _session(self, pairs: ScopePairs) -> Session:
        return factory.get_session(self.usecase, **dict(pairs))

    def _object(self, name: str) -> RemoteObject:
        pairs, key = self._split(name)
        return RemoteObject(self._session(pairs), key, self._join(pairs, key), self.usecase)

    def _split(self, name: str) -> tuple[ScopePairs, str]:
        return split_name(str(name).replace("\\", "/"), self._default_scope)

    def _join(self, pairs: ScopePairs, key: str) -> str:
        return join_name(pairs, key, self._default_scope)

    def stored_name(self, scope: ScopePairs, key: str) -> str:
        """The name of ``key`` in ``scope`` (pairs) as this storage stores it."""
        return self._join(scope, key)

    def canonical_name(self, name: str) -> str:
        """The stored name for ``name``: the key alone when unscoped, else
        ``<scope>/<key>`` (legacy ``_/<key>`` names become ``<key>``)."""
        pairs, key = self._split(name)
        return self._join(pairs, key)

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
        if self.server_chosen_keys:
            # The server picks a 36-character key: check the final length now,
            # before uploading, instead of failing in the database afterwards.
            pairs, _ = self._split(name)
            final = len(self._join(pairs, "k" * SERVER_KEY_LENGTH))
            if max_length is not None and final > max_length:
                raise SuspiciousFileOperation(
                    f"Stored names in usecase {self.usecase!r} with scope "
                    f"{render_scopes(pairs)!r} are {final} characters long (scope + "
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
        body = body_of(content)
        try:
            if body.size is None and objectstore_settings.compression(self.usecase) != "none":
                # A compressed object's logical size is only cheap to answer if
                # recorded at upload: spool unknown-size streams (memory up to
                # SPOOL_MEMORY, then a temporary file) to learn it.
                body = spooled(body)
            metadata = dict(extra.pop("metadata", None) or {})
            if body.size is not None:
                metadata[SIZE_METADATA_KEY] = str(body.size)
            options: dict[str, Any] = {
                "content_type": content_type_of(content, body.head, filename or key),
                "filename": filename,
                **extra,
                "metadata": metadata or None,
            }
            stored = self._put(
                session, body.data, key=None if self.server_chosen_keys else key, **options
            )
        except CLIENT_ERRORS as exc:
            raise storage_error(exc, self._join(pairs, key), self.usecase) from exc
        finally:
            body.close()
        return self._join(pairs, stored)

    def get_object_parameters(self, name: str, content: File) -> Mapping[str, Any]:  # type: ignore[type-arg]
        """Per-object upload options; override to customise. May return any of
        ``content_type``, ``filename``, ``metadata`` (custom entries, merged),
        ``expiration_policy`` (overrides the usecase's), ``origin`` and
        ``compression``. ``name`` is the stored name being written (scope
        included); ``content`` is what Django is saving."""
        return {}

    def _put(self, session: Session, body: bytes | IO[bytes], **kwargs: Any) -> str:
        return session.put(body, **kwargs)

    def _upload_to_name(self, name: str, raw: IO[bytes]) -> None:
        """Write mode: upload ``raw`` under exactly ``name`` (a PUT)."""
        pairs, key = self._split(name)
        body = body_of_spool(raw)
        try:
            self._put(
                self._session(pairs),
                body.data,
                key=key,
                content_type=content_type_of(None, body.head, key),
                filename=posixpath.basename(key),
                metadata={SIZE_METADATA_KEY: str(body.size)},
            )
        except CLIENT_ERRORS as exc:
            raise storage_error(exc, self._join(pairs, key), self.usecase) from exc

    # -- reading ---------------------------------------------------------
    def _open(self, name: str, mode: str = "rb") -> ObjectstoreFile:
        name = self.canonical_name(name)
        upload = functools.partial(self._upload_to_name, name)
        return ObjectstoreFile(name, mode, self._object(name), upload)

    def metadata(self, name: str) -> Metadata:
        """The object's metadata (one HEAD); ``FileNotFoundError`` if missing."""
        return self._object(name).head()

    def exists(self, name: str) -> bool:
        if not name:
            # collectstatic --clear asks about the root; there is no listing.
            return False
        try:
            self._object(name).head()
        except FileNotFoundError:
            return False
        return True

    def size(self, name: str) -> int:
        return self._object(name).size()

    def delete(self, name: str) -> None:
        if not name:
            raise ValueError("The name must be given to delete().")
        remote = self._object(name)
        try:
            remote.session.delete(remote.key)
        except CLIENT_ERRORS as exc:
            if exc.status == 404:
                return  # a missing object is not an error
            raise storage_error(exc, remote.name, self.usecase) from exc

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
            return created
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
            return download_url(self.usecase, self._join(pairs, key), seconds)
        if strategy == "view-unsigned":
            return download_path(self.usecase, self._join(pairs, key))
        session = self._session(pairs)
        token = factory.get_token()
        if strategy == "presigned" or (strategy == "auto" and isinstance(token, SecretKey)):
            if not isinstance(token, SecretKey):
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
                url = bucketed_presigned_url(
                    token,
                    objectstore_settings.url,
                    self.usecase,
                    f"{render_scopes(pairs)}/{key}",
                    seconds,
                    bucket,
                )
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
