"""ObjectstoreStorage against the local server: a contract suite modelled on
Django's tests/file_storage (see docs/django-storage-contract.md §4.2)."""

from __future__ import annotations

import io
import os
import pickle
import threading
import urllib.request
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core.exceptions import ImproperlyConfigured, SuspiciousFileOperation
from django.core.files.base import ContentFile, File
from django.core.files.storage import Storage, storages
from django.core.files.uploadedfile import (
    InMemoryUploadedFile,
    SimpleUploadedFile,
    TemporaryUploadedFile,
)
from django.test import override_settings

from django_objectstore import factory, get_session
from django_objectstore.client import TimeToLive
from django_objectstore.storage import SIZE_METADATA_KEY, ObjectstoreStorage
from django_objectstore.testing import objectstore, objectstore_server  # noqa: F401

pytestmark = pytest.mark.usefixtures("objectstore")

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a3a8e4d30000000049454e44ae426082"
)


def fetch(url: str) -> tuple[int, bytes, dict[str, str]]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read(), dict(response.headers)


@pytest.fixture(params=["attachments", "plain"])
def storage(request: pytest.FixtureRequest) -> ObjectstoreStorage:
    """Both a zstd usecase and an uncompressed one."""
    return ObjectstoreStorage(request.param)


# -- construction, deconstruction, pickling --------------------------------


def test_init_does_no_io_and_needs_no_arguments() -> None:
    with override_settings(OBJECTSTORE={"URL": "http://127.0.0.1:9", "USECASES": {"one": {}}}):
        storage = ObjectstoreStorage()
        assert storage.usecase == "one"
        factory.reset()
        ObjectstoreStorage("attachments", scope={"org": 1})
        assert factory._client is None


def test_no_len_or_bool_so_fields_never_replace_it() -> None:
    assert not hasattr(ObjectstoreStorage, "__len__")
    assert not hasattr(ObjectstoreStorage, "__bool__")
    assert isinstance(ObjectstoreStorage("plain"), Storage)


def test_deconstruct_has_only_options() -> None:
    storage = ObjectstoreStorage("plain", scope={"org": 1}, server_chosen_keys=True)
    path, args, kwargs = storage.deconstruct()
    assert path == "django_objectstore.storage.ObjectstoreStorage"
    assert args == ("plain",)
    assert kwargs == {"scope": {"org": 1}, "server_chosen_keys": True}


def test_pickles_without_secrets(objectstore_server) -> None:  # noqa: F811
    storage = ObjectstoreStorage("plain")
    name = storage.save("a.txt", ContentFile(b"x"))
    data = pickle.dumps(storage)
    assert objectstore_server.private_key_pem.encode() not in data
    assert b"PRIVATE" not in data
    clone = pickle.loads(data)
    assert clone.open(name).read() == b"x"


def test_bad_options_are_improperly_configured() -> None:
    with pytest.raises(ImproperlyConfigured, match="url_strategy"):
        ObjectstoreStorage("plain", url_strategy="bogus")
    with pytest.raises(ImproperlyConfigured, match="server_chosen_keys"):
        ObjectstoreStorage("plain", allow_overwrite=True, server_chosen_keys=True)
    with pytest.raises(ImproperlyConfigured, match="scope"):
        ObjectstoreStorage("plain", scope={"org": "a.b"})


def test_missing_usecase_choice_is_explained() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"without a usecase.*DEFAULT_USECASE"):
        ObjectstoreStorage().usecase  # noqa: B018


def test_default_usecase_setting_serves_storages_built_from_backend_alone(
    objectstore_server,  # noqa: F811
) -> None:
    from django.conf import settings

    conf = {**settings.OBJECTSTORE, "DEFAULT_USECASE": "plain"}
    backends = {"default": {"BACKEND": "django_objectstore.storage.ObjectstoreStorage"}}
    with override_settings(OBJECTSTORE=conf, STORAGES={**storages.backends, **backends}):
        storage = storages.create_storage(storages.backends["default"])
        assert storage.usecase == "plain"
        name = storage.save("filer/a.txt", ContentFile(b"a"))
        assert get_session("plain").get(name).payload.read() == b"a"
    empty = {**conf, "DEFAULT_USECASE": ""}
    with override_settings(OBJECTSTORE=empty), pytest.raises(ImproperlyConfigured, match="USECASE"):
        ObjectstoreStorage().usecase  # noqa: B018


def test_usable_from_storages_setting() -> None:
    config = {"BACKEND": "django_objectstore.storage.ObjectstoreStorage"}
    backends = {**storages.backends, "objects": {**config, "OPTIONS": {"usecase": "plain"}}}
    with override_settings(STORAGES=backends):
        storage = storages["objects"]
        assert isinstance(storage, ObjectstoreStorage)
        name = storage.save("x.bin", ContentFile(b"123"))
        assert storage.open(name).read() == b"123"


# -- saving ------------------------------------------------------------------


def test_save_keeps_the_generated_name(storage: ObjectstoreStorage) -> None:
    name = storage.save("path/to/report.txt", ContentFile(b"content"))
    assert name == "path/to/report.txt"
    assert storage.exists(name)
    assert storage.open(name).read() == b"content"


def test_server_chosen_keys_option() -> None:
    storage = ObjectstoreStorage("plain", server_chosen_keys=True)
    name = storage.save("path/to/report.txt", ContentFile(b"content"))
    assert len(name) == 36
    assert "/" not in name
    assert storage.metadata(name).filename == "report.txt"
    assert storage.open(name).read() == b"content"
    scoped = ObjectstoreStorage("plain", scope={"org": 3}, server_chosen_keys=True)
    assert scoped.save("x.txt", ContentFile(b"1")).startswith("org=3/")


def test_save_none_takes_name_from_content(storage: ObjectstoreStorage) -> None:
    name = storage.save(None, ContentFile(b"abc", name="given.txt"))
    assert storage.metadata(name).filename == "given.txt"


def test_scope_option_and_explicit_scope_names() -> None:
    storage = ObjectstoreStorage("plain", scope={"org": 42, "project": 1337})
    name = storage.save("a.txt", ContentFile(b"1"))
    assert name.startswith("org=42;project=1337/")
    other = storage.save("org=7/b.txt", ContentFile(b"2"))
    assert other.startswith("org=7/")
    assert storage.open(other).read() == b"2"
    with pytest.raises(SuspiciousFileOperation, match="scope"):
        storage.save("org=7;bad/c.txt", ContentFile(b"3"))


def test_metadata_content_type_filename_and_size(storage: ObjectstoreStorage) -> None:
    upload = SimpleUploadedFile("My Report.csv", b"a,b\n1,2\n", content_type="text/csv")
    name = storage.save("My Report.csv", upload)
    meta = storage.metadata(name)
    assert meta.content_type == "text/csv"
    assert meta.filename == "My Report.csv"
    assert meta.custom[SIZE_METADATA_KEY] == "8"
    assert storage.size(name) == 8


def test_content_type_sniffed_then_guessed(storage: ObjectstoreStorage) -> None:
    sniffed = storage.save("no-extension", ContentFile(PNG))
    assert storage.metadata(sniffed).content_type == "image/png"
    guessed = storage.save("page.html", ContentFile(b"<p>hi</p>"))
    assert storage.metadata(guessed).content_type == "text/html"
    unknown = storage.save("blob", ContentFile(b"\x00\x01"))
    assert storage.metadata(unknown).content_type == "application/octet-stream"


def test_str_content_file(storage: ObjectstoreStorage) -> None:
    name = storage.save("unicode.txt", ContentFile("héllo ✓"))
    assert storage.open(name).read() == "héllo ✓".encode()
    assert storage.size(name) == len("héllo ✓".encode())


def test_stringio_and_real_file(storage: ObjectstoreStorage, tmp_path) -> None:
    name = storage.save("s.txt", io.StringIO("from stringio"))
    assert storage.open(name).read() == b"from stringio"
    path = tmp_path / "real.bin"
    path.write_bytes(b"real file bytes")
    with path.open("rb") as handle:
        name = storage.save("real.bin", handle)
        assert not handle.closed
    assert storage.open(name).read() == b"real file bytes"


def test_uploads_are_not_closed(storage: ObjectstoreStorage) -> None:
    memory = InMemoryUploadedFile(
        io.BytesIO(b"in memory"), "field", "m.txt", "text/plain", 9, "utf-8"
    )
    name = storage.save("m.txt", memory)
    assert not memory.closed
    assert storage.open(name).read() == b"in memory"
    assert storage.metadata(name).content_type == "text/plain; charset=utf-8"
    temporary = TemporaryUploadedFile("t.bin", "application/x-thing", 0, None)
    temporary.write(b"temporary upload")
    temporary.flush()
    try:
        name = storage.save("t.bin", temporary)
        assert not temporary.closed
        assert storage.open(name).read() == b"temporary upload"
        assert storage.metadata(name).content_type == "application/x-thing"
    finally:
        temporary.close()


class _NonSeekable(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        return self._data.readinto(buffer)


def test_non_seekable_stream(storage: ObjectstoreStorage) -> None:
    data = bytes(range(256)) * 1000
    name = storage.save("stream.bin", File(_NonSeekable(data), name="stream.bin"))
    assert storage.open(name).read() == data
    # Compressed usecases spool unknown-size streams to record the size.
    if storage.usecase == "attachments":
        assert storage.metadata(name).custom[SIZE_METADATA_KEY] == str(len(data))
    assert storage.size(name) == len(data)


def test_urlopen_response_is_saved(storage: ObjectstoreStorage) -> None:
    source = ObjectstoreStorage("plain")
    original = source.save("src.txt", ContentFile(b"downloaded" * 100))
    with urllib.request.urlopen(source.url(original), timeout=10) as response:
        name = storage.save("copy.txt", File(response, name="copy.txt"))
    assert storage.open(name).read() == b"downloaded" * 100


def test_copy_from_another_storage_file(storage: ObjectstoreStorage) -> None:
    first = storage.save("one.txt", ContentFile(b"copied between files"))
    with storage.open(first) as handle:
        second = storage.save("two.txt", handle)
    assert second != first
    assert storage.open(second).read() == b"copied between files"


@pytest.mark.parametrize("usecase", ["plain", "attachments"])
def test_large_file_streams_through_parallel_path(
    tmp_path,
    objectstore_server,  # noqa: F811
    usecase: str,
) -> None:
    from django.conf import settings

    storage = ObjectstoreStorage(usecase)
    size = 14 * 1024 * 1024 + 123
    path = tmp_path / "big.bin"
    # Hex digits: zstd stores them in about 0.55 of their size, so both
    # usecases need more than one 5 MiB part.
    data = os.urandom(size // 2 + 1).hex().encode()[:size]
    path.write_bytes(data)
    conf = {**settings.OBJECTSTORE, "MULTIPART_THRESHOLD": 4 << 20, "MULTIPART_PART_SIZE": 5 << 20}
    counters = objectstore_server.server.service.counters
    with override_settings(OBJECTSTORE=conf), path.open("rb") as handle:
        before = counters.requests
        name = storage.save("big.bin", File(handle))
        # initiate + 2 or 3 parts + complete, not one request: the parallel
        # path. (The server counts a request after answering it: allow slack.)
        assert counters.requests - before >= 3
        assert not handle.closed
    assert storage.size(name) == size
    with storage.open(name) as remote:
        remote.seek(size - 5)
        assert remote.read() == data[-5:]


def test_name_longer_than_max_length_fails_before_upload() -> None:
    scope = {"organization": "x" * 80}
    storage = ObjectstoreStorage("plain", scope=scope, server_chosen_keys=True)
    with pytest.raises(SuspiciousFileOperation, match="max_length=100"):
        storage.save("a.txt", ContentFile(b"1"), max_length=100)
    keyed = ObjectstoreStorage("plain", scope={"organization": "x" * 90})
    with pytest.raises(SuspiciousFileOperation, match="max_length"):
        keyed.save("abc.txt", ContentFile(b"1"), max_length=100)
    assert not keyed.exists("abc.txt")


def test_traversal_names_are_rejected(storage: ObjectstoreStorage) -> None:
    for name in ("../etc/passwd", "/abs/path", "a/../../b"):
        with pytest.raises(SuspiciousFileOperation):
            storage.save(name, ContentFile(b"1"))
    with pytest.raises(SuspiciousFileOperation):
        storage.open("_/a//b")


def test_generate_filename_keeps_keys_and_rejects_dotdot() -> None:
    storage = ObjectstoreStorage("plain")
    assert storage.generate_filename("dir\\sub/./my file.txt") == "dir/sub/my_file.txt"
    with pytest.raises(SuspiciousFileOperation):
        storage.generate_filename("../x.txt")


# -- names as keys -------------------------------------------------------------


def test_no_overwrite_by_default() -> None:
    storage = ObjectstoreStorage("plain")
    first = storage.save("docs/report.tar.gz", ContentFile(b"one"))
    assert first == "docs/report.tar.gz"
    second = storage.save("docs/report.tar.gz", ContentFile(b"two"))
    assert second != first
    assert second.startswith("docs/report_")
    assert second.endswith(".tar.gz")
    assert storage.open(first).read() == b"one"
    assert storage.open(second).read() == b"two"


def test_allow_overwrite_replaces() -> None:
    storage = ObjectstoreStorage("attachments", allow_overwrite=True)
    first = storage.save("over.txt", ContentFile(b"long original content"))
    second = storage.save("over.txt", ContentFile(b"short"))
    assert first == second == "over.txt"
    assert storage.open(first).read() == b"short"
    assert storage.size(first) == 5
    assert storage.exists(first)


def test_names_truncate_to_max_length() -> None:
    storage = ObjectstoreStorage("plain")
    name = storage.save("test_long_file_name.txt", ContentFile(b"1"), max_length=20)
    assert len(name) == 20
    assert name.startswith("test_lon_")
    assert name.endswith(".txt")
    storage.save("abcdefghij.txt", ContentFile(b"1"))
    with pytest.raises(SuspiciousFileOperation, match="max_length"):
        storage.save("abcdefghij.txt", ContentFile(b"2"), max_length=6)


def test_scoped_names_and_max_length_count_the_scope() -> None:
    storage = ObjectstoreStorage("plain", scope={"org": 42, "project": 1337})
    name = storage.save("attachments/quarterly-report.pdf", ContentFile(b"%PDF"))
    assert name == "org=42;project=1337/attachments/quarterly-report.pdf"
    again = storage.save("attachments/quarterly-report.pdf", ContentFile(b"2"), max_length=52)
    assert again.startswith("org=42;project=1337/attachments/quarterl_")
    assert len(again) == len(name)


def test_legacy_names_still_work(storage: ObjectstoreStorage) -> None:
    """Names written by earlier versions (``_/<key>``) address the same object."""
    key = get_session(storage.usecase).put(b"old object", key="legacy/key.txt")
    legacy = f"_/{key}"
    assert storage.open(legacy).read() == b"old object"
    assert storage.size(legacy) == 10
    assert storage.exists(legacy)
    assert storage.canonical_name(legacy) == "legacy/key.txt"
    assert fetch(storage.url(legacy))[0] == 200
    assert storage.url(legacy) == storage.url("legacy/key.txt")
    storage.delete(legacy)
    assert not storage.exists("legacy/key.txt")


def test_first_folder_with_equals_sign_is_a_scope() -> None:
    storage = ObjectstoreStorage("plain")
    scoped = storage.save("year=2024/report.txt", ContentFile(b"s"))
    assert scoped == "year=2024/report.txt"
    assert get_session("plain", year="2024").get("report.txt").payload.read() == b"s"
    unscoped = storage.save("_/year=2024/report.txt", ContentFile(b"u"))
    assert unscoped == "_/year=2024/report.txt"
    assert get_session("plain").get("year=2024/report.txt").payload.read() == b"u"
    assert storage.open(unscoped).read() == b"u"


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("a\x00b.txt", "control character"),
        ("bad\ud800.txt", "UTF-8"),
        ("x" * 256 + ".txt", "255 bytes"),
        ("org=1;bad.scope/x.txt", "scope"),
    ],
)
def test_names_invalid_as_keys_are_suspicious(name: str, why: str) -> None:
    storage = ObjectstoreStorage("plain")
    with pytest.raises(SuspiciousFileOperation, match=why):
        storage.save(name, ContentFile(b"1"))
    with pytest.raises(SuspiciousFileOperation, match=why):
        storage.open(name)


def test_key_from_name_is_deprecated_but_works() -> None:
    with pytest.warns(DeprecationWarning, match="server_chosen_keys"):
        keyed = ObjectstoreStorage("plain", key_from_name=True)
    assert not keyed.server_chosen_keys
    with pytest.warns(DeprecationWarning, match="key_from_name"):
        server = ObjectstoreStorage("plain", key_from_name=False)
    assert server.server_chosen_keys
    with pytest.raises(ImproperlyConfigured, match="contradict"):
        ObjectstoreStorage("plain", key_from_name=True, server_chosen_keys=True)


# -- reading and other methods -------------------------------------------------


def test_missing_object_raises_file_not_found(storage: ObjectstoreStorage) -> None:
    missing = "_/00000000-0000-4000-8000-000000000000"
    with pytest.raises(FileNotFoundError):
        storage.open(missing)
    with pytest.raises(FileNotFoundError):
        storage.size(missing)
    with pytest.raises(FileNotFoundError):
        storage.get_created_time(missing)
    assert storage.exists(missing) is False
    assert storage.exists("") is False
    storage.delete(missing)  # not an error


def test_delete(storage: ObjectstoreStorage) -> None:
    name = storage.save("d.txt", ContentFile(b"x"))
    storage.delete(name)
    assert not storage.exists(name)
    with pytest.raises(ValueError, match="name"):
        storage.delete("")


def test_times_are_aware_with_use_tz(storage: ObjectstoreStorage) -> None:
    name = storage.save("t.txt", ContentFile(b"x"))
    created = storage.get_created_time(name)
    assert created.tzinfo is not None
    assert storage.get_modified_time(name) == created
    with override_settings(USE_TZ=False):
        naive = storage.get_created_time(name)
        assert naive.tzinfo is None
        assert isinstance(naive, datetime)


@pytest.mark.parametrize("method", ["listdir", "path", "get_accessed_time"])
def test_unsupported_methods_explain_why(storage: ObjectstoreStorage, method: str) -> None:
    with pytest.raises(NotImplementedError, match="Objectstore"):
        getattr(storage, method)("_/x")


def test_permission_errors_are_typed() -> None:
    storage = ObjectstoreStorage("plain")
    name = storage.save("p.txt", ContentFile(b"x"))
    from django.conf import settings

    conf = {**settings.OBJECTSTORE, "TOKEN": None}
    with override_settings(OBJECTSTORE=conf), pytest.raises(PermissionError, match="TOKEN"):
        storage.open(name)


def test_unreachable_server_is_an_os_error() -> None:
    storage = ObjectstoreStorage("plain")
    from django.conf import settings

    conf = {**settings.OBJECTSTORE, "URL": _dead_url(), "RETRIES": 0, "TIMEOUT_MS": 2000}
    with override_settings(OBJECTSTORE=conf), pytest.raises(OSError, match=r"p\.txt"):
        storage.save("p.txt", ContentFile(b"x"))


def _dead_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- URLs ----------------------------------------------------------------------


def test_url_is_presigned_and_fetchable_without_network(storage: ObjectstoreStorage) -> None:
    name = storage.save("hello.txt", ContentFile(b"hello"))
    url = storage.url(name)
    assert "os_sig=" in url
    assert "os_duration=3600" in url
    status, _, headers = fetch(url)
    assert status == 200
    assert headers["content-disposition"] == 'attachment; filename="hello.txt"'
    assert "os_duration=60" in storage.url(name, expire=60)


def test_url_needs_no_network() -> None:
    storage = ObjectstoreStorage("plain")
    from django.conf import settings

    conf = {**settings.OBJECTSTORE, "URL": _dead_url()}
    with override_settings(OBJECTSTORE=conf):
        assert storage.url("org=1/some-key").startswith(conf["URL"])


def test_url_public_url_replaces_base() -> None:
    from django.conf import settings

    conf = {**settings.OBJECTSTORE, "PUBLIC_URL": "https://files.example.com/os/"}
    with override_settings(OBJECTSTORE=conf):
        url = ObjectstoreStorage("plain").url("org=1/k y")
    assert url.startswith("https://files.example.com/os/v1/objects/plain/org=1/k%20y?")


def test_plain_url_without_secret_key() -> None:
    from django.conf import settings

    conf = {**settings.OBJECTSTORE, "TOKEN": None}
    with override_settings(OBJECTSTORE=conf):
        url = ObjectstoreStorage("plain").url("_/key")
    assert url.endswith("/v1/objects/plain/_/key")
    with override_settings(OBJECTSTORE=conf), pytest.raises(ImproperlyConfigured):
        ObjectstoreStorage("plain", url_strategy="presigned").url("_/key")


def _public_images(request: object, usecase: str, name: str) -> bool:
    return usecase == "images"


@pytest.mark.django_db
def test_view_unsigned_urls_are_stable_and_left_to_the_permission_hook() -> None:
    from django.conf import settings
    from django.test import Client

    storage = ObjectstoreStorage("images", url_strategy="view-unsigned")
    name = storage.save("logos/brand.png", ContentFile(PNG))
    url = storage.url(name)
    assert url == "/files/images/logos/brand.png"
    assert storage.url(name, expire=5) == url
    assert Client().get(url).status_code == 403
    conf = {**settings.OBJECTSTORE, "DOWNLOAD_PERMISSION": _public_images}
    with override_settings(OBJECTSTORE=conf):
        response = Client().get(url)
        assert response.status_code == 200
        assert b"".join(response.streaming_content) == PNG  # type: ignore[attr-defined]
        response.close()


def test_url_rejects_empty_and_bad_expiry() -> None:
    storage = ObjectstoreStorage("plain")
    with pytest.raises(ValueError, match="name"):
        storage.url(None)
    with pytest.raises(ValueError, match="604800"):
        storage.url("_/k", expire=10**7)
    with pytest.raises(SuspiciousFileOperation):
        storage.url("//evil.com")


# -- settings and threads ------------------------------------------------------


def test_override_settings_reaches_existing_storage(objectstore_server) -> None:  # noqa: F811
    storage = ObjectstoreStorage("plain")
    name = storage.save("o.txt", ContentFile(b"x"))

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    other = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=other.serve_forever, daemon=True)
    thread.start()
    try:
        from django.conf import settings

        conf = {**settings.OBJECTSTORE, "URL": f"http://127.0.0.1:{other.server_port}"}
        with override_settings(OBJECTSTORE=conf):
            assert storage.exists(name) is False
        assert storage.exists(name) is True
    finally:
        other.shutdown()
        other.server_close()
        thread.join()


def test_sixteen_threads_save_and_read(storage: ObjectstoreStorage) -> None:
    errors: list[BaseException] = []
    results: dict[int, str] = {}

    def work(index: int) -> None:
        try:
            payload = f"thread {index} ".encode() * (1000 + index)
            name = storage.save(f"t{index}.txt", ContentFile(payload))
            with storage.open(name) as handle:
                assert handle.read() == payload
            assert storage.size(name) == len(payload)
            results[index] = name
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(results.values())) == 16


def test_non_ascii_file_name_round_trips(storage: ObjectstoreStorage) -> None:
    name = storage.save("résumé 100%.pdf", ContentFile(b"%PDF-1.4 fake"))
    assert storage.metadata(name).filename == "résumé 100%.pdf"
    keyed = ObjectstoreStorage(storage.usecase)
    other = keyed.save("dossier/café.txt", ContentFile(b"x"))
    assert other == "dossier/café.txt"
    assert keyed.open(other).read() == b"x"
    status, _, _ = fetch(keyed.url(other))
    assert status == 200


def test_split_name_for_permission_hooks() -> None:
    from django_objectstore.names import split_name

    assert split_name("org=42;project=7/a/b.txt") == ([("org", "42"), ("project", "7")], "a/b.txt")
    assert split_name("_/k") == ([], "k")
    assert split_name("plain-key") == ([], "plain-key")


class _TaggingStorage(ObjectstoreStorage):
    def get_object_parameters(self, name, content):  # type: ignore[no-untyped-def]
        if name.endswith(".bad"):
            return {"colour": "red"}
        return {
            "expiration_policy": TimeToLive(timedelta(hours=2)),
            "metadata": {"uploaded-by": "alice"},
            "origin": "203.0.113.7",
        }


def test_get_object_parameters_hook() -> None:
    storage = _TaggingStorage("attachments")
    name = storage.save("tagged.txt", ContentFile(b"tagged"))
    meta = storage.metadata(name)
    assert meta.custom["uploaded-by"] == "alice"
    assert meta.custom[SIZE_METADATA_KEY] == "6"
    assert meta.origin == "203.0.113.7"
    assert meta.expiration_policy == TimeToLive(timedelta(hours=2))
    with pytest.raises(TypeError, match="colour"):
        storage.save("x.bad", ContentFile(b"x"))


def test_bucketed_urls_are_stable_and_valid() -> None:
    storage = ObjectstoreStorage("plain", url_bucket=3600)
    name = storage.save("cached.txt", ContentFile(b"cache me"))
    first = storage.url(name, expire=600)
    assert storage.url(name, expire=600) == first
    assert "os_duration=4200" in first
    status, data, _ = fetch(first)
    assert status == 200
    assert data == b"cache me"
    from django.conf import settings

    with override_settings(OBJECTSTORE={**settings.OBJECTSTORE, "URL_BUCKET_SECONDS": 60}):
        plain = ObjectstoreStorage("plain")
        assert "os_duration=3660" in plain.url(name)
        assert fetch(plain.url(name))[1] == b"cache me"


def test_async_siblings(storage: ObjectstoreStorage) -> None:
    import asyncio

    async def scenario() -> tuple[bool, int, bytes, bool]:
        name = await storage.asave("async.txt", ContentFile(b"async bytes"))
        exists = await storage.aexists(name)
        size = await storage.asize(name)
        handle = await storage.aopen(name)
        with handle:
            data = handle.read()
        await storage.adelete(name)
        return exists, size, data, await storage.aexists(name)

    assert asyncio.run(scenario()) == (True, 11, b"async bytes", False)
