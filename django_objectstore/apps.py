"""App config: registers the system checks and the settings receiver."""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["ObjectstoreConfig"]


class ObjectstoreConfig(AppConfig):
    name = "django_objectstore"
    verbose_name = "Objectstore"

    def ready(self) -> None:
        # Imported for their side effects: @register checks, @receiver.
        from django_objectstore import checks, factory  # noqa: F401
