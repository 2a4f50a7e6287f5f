"""Test helpers: a real local Objectstore, in memory, with auth on.

pytest (one line in the root ``conftest.py``)::

    pytest_plugins = ["django_objectstore.testing"]

then use the ``objectstore`` fixture (or set ``objectstore_autouse = true``
in the pytest ini options to apply it to every test). unittest / Django
``TestCase``: add :class:`ObjectstoreTestMixin` to the bases, or wrap code in
``with override_objectstore(): ...``.

Each helper points ``OBJECTSTORE["URL"]`` at an in-memory
:class:`~django_objectstore.server.LocalServer` on ``127.0.0.1`` (one per
process, started on first use) and ``OBJECTSTORE["TOKEN"]`` at a throwaway
Ed25519 key that only that server trusts, so tests exercise real signing and
can never reach a production Objectstore with real credentials. Your
``USECASES`` and other keys are kept.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from django.conf import settings
from django.test.utils import override_settings

if TYPE_CHECKING:
    from django_objectstore.server import LocalServer

__all__ = [
    "TEST_KID",
    "ObjectstoreTestMixin",
    "ObjectstoreTestServer",
    "get_test_server",
    "override_objectstore",
]

TEST_KID: Final = "django-objectstore-tests"
_PERMISSIONS: Final = ["object.read", "object.write", "object.delete"]


class ObjectstoreTestServer:
    """An in-memory local server that trusts one freshly generated key."""

    def __init__(self, *, auth: bool = True) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        key = Ed25519PrivateKey.generate()
        self.private_key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
        self._dir = Path(tempfile.mkdtemp(prefix="objectstore-test-keys-"))
        self.public_key_file = self._dir / f"{TEST_KID}.public.pem"
        self.public_key_file.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        self.auth = auth
        self._server: LocalServer | None = None

    def __repr__(self) -> str:
        return f"<ObjectstoreTestServer {self.url if self._server else 'stopped'}>"

    def start(self) -> ObjectstoreTestServer:
        from django_objectstore.server import KeyConfig, LocalServer

        keys = {
            TEST_KID: KeyConfig(
                key_files=[str(self.public_key_file)], max_permissions=list(_PERMISSIONS)
            )
        }
        self._server = LocalServer(
            storage="memory", auth_enforce=self.auth, auth_keys=keys, sweep_interval=None
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> ObjectstoreTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def server(self) -> LocalServer:
        if self._server is None:
            raise RuntimeError("ObjectstoreTestServer is not started; call start() first")
        return self._server

    @property
    def url(self) -> str:
        return self.server.url

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """The current ``OBJECTSTORE`` pointed at this server, with ``overrides``."""
        current = getattr(settings, "OBJECTSTORE", None) or {}
        token = {"KID": TEST_KID, "SECRET_KEY": self.private_key_pem}
        return {
            **current,
            "URL": self.url,
            "PUBLIC_URL": None,
            "TOKEN": token,
            **overrides,
        }


_shared: ObjectstoreTestServer | None = None
_shared_lock = threading.Lock()


def get_test_server() -> ObjectstoreTestServer:
    """The process-wide test server, started on first use and stopped at exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ObjectstoreTestServer().start()
            atexit.register(_stop_shared)
        return _shared


def _stop_shared() -> None:
    global _shared
    with _shared_lock:
        if _shared is not None:
            _shared.stop()
            _shared = None


class override_objectstore(override_settings):
    """Point ``OBJECTSTORE`` at a local test server for a block or function.

    ``with override_objectstore() as server: ...`` yields the
    :class:`ObjectstoreTestServer`; keyword arguments override
    ``OBJECTSTORE`` keys (e.g. ``USECASES={...}``). The settings are computed
    when the override is entered, so it picks up the settings in force then.
    (To decorate a ``TestCase`` class, use :class:`ObjectstoreTestMixin`.)
    """

    def __init__(self, server: ObjectstoreTestServer | None = None, **overrides: Any) -> None:
        self._server = server
        self._overrides = overrides
        super().__init__()

    def enable(self) -> None:
        server = self._server or get_test_server()
        self.options = {"OBJECTSTORE": server.settings(**self._overrides)}
        self.server = server
        super().enable()

    def __enter__(self) -> ObjectstoreTestServer:  # type: ignore[override]
        self.enable()
        return self.server

    def decorate_class(self, cls: Any) -> Any:
        raise TypeError(
            "Use ObjectstoreTestMixin to point a whole TestCase at the test server; "
            "override_objectstore decorates functions and blocks."
        )


class ObjectstoreTestMixin:
    """``TestCase`` mixin: the whole class talks to the local test server.

    ``cls.objectstore_server`` is the :class:`ObjectstoreTestServer`; set
    ``objectstore_overrides = {...}`` on the class to override OBJECTSTORE keys.
    """

    objectstore_overrides: dict[str, Any] = {}
    objectstore_server: ObjectstoreTestServer

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()  # type: ignore[misc]
        override = override_objectstore(**cls.objectstore_overrides)
        cls.objectstore_server = override.__enter__()
        cls.addClassCleanup(override.disable)  # type: ignore[attr-defined]


try:
    import pytest
except ImportError:  # pragma: no cover - pytest is optional
    pass
else:

    def pytest_addoption(parser: pytest.Parser) -> None:
        parser.addini(
            "objectstore_autouse",
            "apply django_objectstore's `objectstore` fixture to every test",
            type="bool",
            default=False,
        )

    @pytest.fixture(scope="session")
    def objectstore_server() -> ObjectstoreTestServer:
        """The in-memory local Objectstore (one per process, stopped at exit)."""
        return get_test_server()

    @pytest.fixture
    def objectstore(objectstore_server: ObjectstoreTestServer) -> Iterator[ObjectstoreTestServer]:
        """``OBJECTSTORE`` pointed at the local test server for one test."""
        with override_objectstore(objectstore_server) as server:
            yield server

    @pytest.fixture(autouse=True)
    def _objectstore_autouse(request: pytest.FixtureRequest) -> None:
        try:
            enabled = request.config.getini("objectstore_autouse")
        except ValueError:  # the plugin's fixtures were imported, not the plugin
            enabled = False
        if enabled:
            request.getfixturevalue("objectstore")
