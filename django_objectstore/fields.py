"""Model fields that keep files in an Objectstore usecase and scope.

``ObjectstoreFileField(usecase="attachments", scope={"org": "organization_id",
"project": "project.id"})`` reads the scope values from the model instance when
the file is saved and bakes them into the stored name (``org=1;project=2/<key>``),
so reading, URLs and deletion later need nothing but the name. Without a
scope the name is exactly what ``upload_to`` produced.

Migrations record only ``usecase`` and ``scope`` (never a storage instance or
settings), so changing ``OBJECTSTORE`` never creates a migration.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import models

from django_objectstore.conf import ScopeSpec, objectstore_settings
from django_objectstore.names import ScopePairs, scope_pairs
from django_objectstore.storage import ObjectstoreStorage

__all__ = [
    "ObjectstoreFieldMixin",
    "ObjectstoreFileField",
    "ObjectstoreImageField",
    "resolve_scope",
]


def _resolve_path(instance: Any, path: str) -> Any:
    value = instance
    for attr in path.replace("__", ".").split("."):
        value = getattr(value, attr) if value is not None else None
    return value


def resolve_scope(instance: Any, spec: ScopeSpec | None, *, field: str = "field") -> ScopePairs:
    """Scope pairs for ``instance`` from a field's scope spec: a mapping of
    scope name to a dotted attribute path (``"project.organization_id"``) or a
    callable of the instance returning a mapping or ``(name, value)`` pairs."""
    if spec is None:
        return []
    if callable(spec):
        produced = spec(instance)
        try:
            return scope_pairs(produced)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{field}: the scope callable returned {produced!r}: {exc}") from None
    pairs: list[tuple[str, Any]] = []
    for name, path in spec.items():
        value = _resolve_path(instance, path)
        if value is None or value == "":
            raise ValueError(
                f"{field}: scope {name!r} comes from {type(instance).__name__}.{path}, which is "
                f"{value!r}; set it before saving the file (save related objects first)."
            )
        pairs.append((name, value))
    try:
        return scope_pairs(pairs)
    except ValueError as exc:
        raise ValueError(f"{field}: {exc}") from None


class ObjectstoreFieldMixin:
    """Shared by the file and image fields."""

    def __init__(
        self,
        *args: Any,
        usecase: str | None = None,
        scope: ScopeSpec | None = None,
        **kwargs: Any,
    ) -> None:
        if scope is not None and not callable(scope) and not isinstance(scope, Mapping):
            raise TypeError(
                f"scope must be a mapping of scope name to attribute path or a callable, "
                f"got {scope!r}."
            )
        self.usecase = usecase
        self.scope = dict(scope) if isinstance(scope, Mapping) else scope
        if kwargs.get("storage") is None:
            kwargs["storage"] = ObjectstoreStorage(usecase)
            self._own_storage = True
        else:
            self._own_storage = False
        kwargs.setdefault("max_length", 255)
        super().__init__(*args, **kwargs)

    def scope_spec(self) -> ScopeSpec | None:
        """The field's scope, else the usecase's ``SCOPE`` setting."""
        if self.scope is not None:
            return self.scope
        usecase = getattr(self.storage, "usecase", None)  # type: ignore[attr-defined]
        if isinstance(usecase, str):
            try:
                return objectstore_settings.scope(usecase)
            except ImproperlyConfigured:
                return None
        return None

    def generate_filename(self, instance: Any, filename: str | os.PathLike[str]) -> str:
        name: str = super().generate_filename(instance, filename)  # type: ignore[misc]
        if not isinstance(self.storage, ObjectstoreStorage):  # type: ignore[attr-defined]
            return name
        label = f"{type(instance).__name__}.{self.name}"  # type: ignore[attr-defined]
        pairs = resolve_scope(instance, self.scope_spec(), field=label)
        return self.storage.stored_name(pairs, name)  # type: ignore[attr-defined]

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()  # type: ignore[misc]
        if self._own_storage:
            kwargs.pop("storage", None)
        if self.usecase is not None:
            kwargs["usecase"] = self.usecase
        if self.scope is not None:
            kwargs["scope"] = self.scope
        if kwargs.get("max_length") == 255:
            del kwargs["max_length"]
        return name, path, args, kwargs


class ObjectstoreFileField(ObjectstoreFieldMixin, models.FileField):
    """A ``FileField`` stored in Objectstore (see the module docstring)."""


class ObjectstoreImageField(ObjectstoreFieldMixin, models.ImageField):
    """An ``ImageField`` stored in Objectstore. Width/height reads stream only
    the image header through the storage's read-ahead buffer."""
