"""The public surface of ``django_objectstore.server``."""

from __future__ import annotations

import inspect
import subprocess
import sys

import django_objectstore.server as server_pkg
from django_objectstore.server import KeyConfig, LocalServer


def test_exported_members() -> None:
    assert sorted(server_pkg.__all__) == [
        "BandwidthLimits",
        "ConfigError",
        "ExpirationRule",
        "KeyConfig",
        "Killswitch",
        "LocalServer",
        "RateLimits",
        "ServerConfig",
        "ThroughputLimits",
        "ThroughputRule",
        "UsecasePolicy",
        "VERSION",
    ]
    for name in server_pkg.__all__:
        assert hasattr(server_pkg, name)


def test_embedding_signature_contract() -> None:
    params = inspect.signature(LocalServer).parameters
    for name, default in [
        ("storage", "memory"),
        ("path", None),
        ("host", "127.0.0.1"),
        ("port", 0),
        ("auth_enforce", False),
        ("auth_keys", None),
        ("usecases", None),
    ]:
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert params[name].default == default
    key = KeyConfig(["/k.pem"])
    assert key.max_permissions == ()


def test_no_django_import() -> None:
    code = (
        "import sys, django_objectstore.server, django_objectstore.server.__main__;"
        "sys.exit(1 if 'django' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_without_the_server_extra_the_error_says_what_to_install() -> None:
    # ``sys.modules[name] = None`` makes importing ``name`` fail, as when
    # uvicorn is not installed.
    code = (
        "import sys; sys.modules['uvicorn'] = None\n"
        "try:\n    import django_objectstore.server\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert "pip install django-objectstore[server]" in out


def test_lifecycle_and_repr() -> None:
    server = LocalServer()
    assert repr(server) == "<LocalServer stopped>"
    assert server.start() is server
    url = server.url
    assert url.startswith("http://127.0.0.1:")
    assert repr(server) == f"<LocalServer {url}>"
    server.stop()
    server.stop()  # idempotent
    assert repr(server) == "<LocalServer stopped>"
    with server:  # restartable
        assert server.url.startswith("http://127.0.0.1:")
        assert server.wait(0) is False
