"""Keep Django files in Sentry's Objectstore.

Three layers, each importable on its own:

* :mod:`django_objectstore.client`: the Objectstore client (no Django import);
* :mod:`django_objectstore.server`: a local Objectstore-compatible server (no Django import);
* this package's top level: the Django integration. The client factory below is
  imported lazily so that importing the client or the server never imports Django.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

__all__ = ["__version__", "get_client", "get_session", "get_usecase"]

if TYPE_CHECKING:
    from django_objectstore.factory import get_client, get_session, get_usecase


def __getattr__(name: str) -> Any:
    if name in ("get_client", "get_session", "get_usecase"):
        from django_objectstore import factory

        return getattr(factory, name)
    raise AttributeError(f"module 'django_objectstore' has no attribute {name!r}")
