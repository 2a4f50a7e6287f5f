"""A local Objectstore-compatible server for development, tests and demos.

Not a production store: use the real Objectstore for that. Start it with
``python -m django_objectstore.server run`` or embed it::

    from django_objectstore.server import LocalServer
    with LocalServer() as server:
        ...  # talk to server.url
"""

from __future__ import annotations

try:
    import uvicorn  # noqa: F401 - only checked for here
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "django_objectstore.server needs the HTTP server library uvicorn (with httptools); "
        "install the server extra: pip install django-objectstore[server]"
    ) from exc

from django_objectstore.server.app import LocalServer
from django_objectstore.server.config import (
    ConfigError,
    ExpirationRule,
    KeyConfig,
    Killswitch,
    ServerConfig,
    UsecasePolicy,
)
from django_objectstore.server.limits import (
    BandwidthLimits,
    RateLimits,
    ThroughputLimits,
    ThroughputRule,
)
from django_objectstore.server.service import VERSION

__all__ = [
    "VERSION",
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
]
