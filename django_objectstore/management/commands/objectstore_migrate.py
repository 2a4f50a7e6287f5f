"""``manage.py objectstore_migrate``: copy the files a database references
into Objectstore and point the rows at the copies.

::

    manage.py objectstore_migrate shop.Product.image blog.Post.cover --to objectstore
    manage.py objectstore_migrate --from legacy --to objectstore   # every field on 'legacy'
    manage.py objectstore_migrate ... --dry-run

Each distinct name is copied once, streamed (bounded memory for any size),
then read back and compared with the source (size and SHA-256) before any
row is changed; rows are updated right after their file, so an interrupted
run loses nothing and a rerun skips what is already there (same name, same
size in the destination, or the row already naming a destination object).
A failure on one file is reported and the others go on; the exit status is
non-zero if any failed. Source files are never deleted.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Final

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.core.files.base import File
from django.core.files.storage import InvalidStorageError, Storage, storages
from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from django.db import models, transaction
from django.utils.functional import LazyObject, empty

from django_objectstore._protocol import render_scopes
from django_objectstore.conf import objectstore_settings
from django_objectstore.fields import ObjectstoreFieldMixin, resolve_scope
from django_objectstore.names import looks_like_scope
from django_objectstore.storage import ObjectstoreStorage

__all__ = ["Command"]

_BLOCK: Final = 1024 * 1024
_MIB: Final = 1024 * 1024


@dataclass
class _Target:
    label: str  # app_label.Model.field
    model: type[models.Model]
    field: models.FileField
    source: Storage


@dataclass
class _Job:
    """One distinct stored name of one target, the name to give its copy,
    and the rows naming it."""

    target: _Target
    name: str
    dest_name: str
    pks: list[Any] = field(default_factory=list)


class _VerifyError(OSError):
    pass


def _unwrap(storage: Any) -> Any:
    """The storage behind ``default_storage``-style lazy wrappers."""
    if isinstance(storage, LazyObject):
        if storage._wrapped is empty:
            storage._setup()
        return storage._wrapped
    return storage


def _digest(handle: IO[bytes]) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    while block := handle.read(_BLOCK):
        digest.update(block)
        size += len(block)
    return size, digest.hexdigest()


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover - loop returns


class _Progress:
    """A one-line bar on a terminal (redrawn at most 10 times a second);
    silent when ``enabled`` is false (output is not a TTY)."""

    def __init__(self, out: OutputWrapper, files: int, size: int, *, enabled: bool) -> None:
        self.out, self.files, self.size, self.enabled = out, files, size, enabled
        self.done_files = self.done_bytes = 0
        self._drawn = 0.0

    def advance(self, nbytes: int) -> None:
        self.done_files += 1
        self.done_bytes += nbytes
        now = time.monotonic()
        if self.enabled and (now - self._drawn > 0.1 or self.done_files == self.files):
            self._drawn = now
            share = self.done_bytes / self.size if self.size else self.done_files / self.files
            bar = "#" * int(share * 30)
            self.out.write(
                f"\r[{bar:<30}] {self.done_files}/{self.files} files, "
                f"{_fmt_bytes(self.done_bytes)}/{_fmt_bytes(self.size)}",
                ending="",
            )
            self.out.flush()

    def clear(self) -> None:
        if self.enabled and self._drawn:
            self.out.write("")
            self.out.flush()


class Command(BaseCommand):
    help = (
        "Copy files referenced by file fields from their current storage into Objectstore, "
        "verify each copy, and update the rows."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "fields",
            nargs="*",
            metavar="app_label.Model.field",
            help="file fields to migrate (default with --from: every file field on that storage)",
        )
        parser.add_argument(
            "--from",
            dest="source",
            metavar="ALIAS",
            help="STORAGES alias the files are in now (default: each field's own storage)",
        )
        parser.add_argument(
            "--to",
            dest="destination",
            metavar="ALIAS",
            help="STORAGES alias of the ObjectstoreStorage to copy into",
        )
        parser.add_argument(
            "--usecase", help="copy into ObjectstoreStorage(usecase) instead of --to"
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="show what would be copied; change nothing"
        )
        bar = parser.add_mutually_exclusive_group()
        bar.add_argument(
            "--progress", dest="progress", action="store_true", default=None,
            help="draw a progress bar on stderr (default: only when stderr is a terminal)",
        )  # fmt: skip
        bar.add_argument("--no-progress", dest="progress", action="store_false")

    # -- what to migrate ---------------------------------------------------
    def _storage(self, alias: str, option: str) -> Storage:
        try:
            return storages[alias]
        except InvalidStorageError:
            known = ", ".join(sorted(storages.backends)) or "none"
            raise CommandError(
                f"{option} {alias!r} is not in settings.STORAGES (known: {known})."
            ) from None

    def _destination(self, options: dict[str, Any], targets: list[_Target]) -> ObjectstoreStorage:
        if options["destination"] and options["usecase"]:
            raise CommandError("Give --to or --usecase, not both.")
        if options["usecase"]:
            known = list(objectstore_settings.usecases)
            if options["usecase"] not in known:
                raise CommandError(
                    f"--usecase {options['usecase']!r} is not in OBJECTSTORE['USECASES'] "
                    f"(configured: {', '.join(known) or 'none'}); add it there first, since its "
                    "compression and expiration come from that setting."
                )
            return ObjectstoreStorage(options["usecase"])
        if options["destination"]:
            storage = _unwrap(self._storage(options["destination"], "--to"))
        else:
            own = {id(_unwrap(t.field.storage)): _unwrap(t.field.storage) for t in targets}
            storage = next(iter(own.values())) if len(own) == 1 else None
        if not isinstance(storage, ObjectstoreStorage):
            raise CommandError(
                "Say where to copy to: --to ALIAS (a STORAGES entry whose BACKEND is "
                "django_objectstore.storage.ObjectstoreStorage) or --usecase NAME."
            )
        return storage

    def _targets(self, labels: list[str], source_alias: str | None) -> list[_Target]:
        source = _unwrap(self._storage(source_alias, "--from")) if source_alias else None
        targets: list[_Target] = []
        if not labels:
            if source is None:
                raise CommandError(
                    "Name the fields (app_label.Model.field ...) or a storage (--from ALIAS)."
                )
            for model in apps.get_models():
                for f in model._meta.concrete_fields:
                    if isinstance(f, models.FileField) and _unwrap(f.storage) is source:
                        targets.append(_Target(f"{model._meta.label}.{f.name}", model, f, source))
            if not targets:
                raise CommandError(f"No file field uses storage {source_alias!r}.")
            return targets
        for label in labels:
            app_model, _, name = label.rpartition(".")
            try:
                model = apps.get_model(app_model)
                f = model._meta.get_field(name)
            except (LookupError, ValueError, FieldDoesNotExist):
                raise CommandError(
                    f"{label!r}: no such model field; write app_label.Model.field, e.g. "
                    "shop.Product.image."
                ) from None
            if not isinstance(f, models.FileField):
                raise CommandError(f"{label!r} is a {type(f).__name__}, not a file field.")
            targets.append(_Target(label, model, f, source or _unwrap(f.storage)))
        return targets

    def _jobs(
        self, target: _Target, dest: ObjectstoreStorage, failures: list[str]
    ) -> Iterator[_Job]:
        column = target.field.attname
        rows = (
            target.model._default_manager.exclude(**{f"{column}__isnull": True})
            .exclude(**{column: ""})
            .order_by("pk")
        )
        jobs: dict[tuple[str, str], _Job] = {}
        scoped = target.field if isinstance(target.field, ObjectstoreFieldMixin) else None
        if scoped is None or _unwrap(target.field.storage) is not dest:
            for pk, name in rows.values_list("pk", column).iterator(chunk_size=1000):
                jobs.setdefault((name, name), _Job(target, name, name)).pks.append(pk)
            yield from jobs.values()
            return
        # The field's own storage: the copy gets the scope the field gives new files
        # (read from each row, as when it is saved), unless the name has one already.
        for instance in rows.iterator(chunk_size=500):
            name = getattr(instance, column).name
            dest_name = name
            if not looks_like_scope(name.partition("/")[0]):
                try:
                    pairs = resolve_scope(instance, scoped.scope_spec(), field=target.label)
                except ValueError as exc:
                    failures.append(f"{target.label} {name!r} (pk {instance.pk!r}): {exc}")
                    continue
                dest_name = f"{render_scopes(pairs)}/{name}"
            jobs.setdefault((name, dest_name), _Job(target, name, dest_name)).pks.append(
                instance.pk
            )
        yield from jobs.values()

    # -- one file ----------------------------------------------------------
    def _copy(self, job: _Job, dest: ObjectstoreStorage, size: int) -> str:
        """Copy, verify, update the rows; returns the destination name."""
        source = job.target.source
        with source.open(job.name, "rb") as handle:
            src_size, src_sum = _digest(handle)
        with source.open(job.name, "rb") as handle:
            new = dest.save(job.dest_name, File(handle, name=job.name), job.target.field.max_length)
        with dest.open(new, "rb") as copy:
            got_size, got_sum = _digest(copy)
        if (got_size, got_sum) != (src_size, src_sum):
            dest.delete(new)
            raise _VerifyError(
                f"the copy does not match the source ({got_size} bytes, sha256 {got_sum[:12]}... "
                f"vs {src_size} bytes, sha256 {src_sum[:12]}...); it was deleted"
            )
        if new != job.name:
            self._rename(job, new)
        return new

    def _rename(self, job: _Job, new: str) -> None:
        column = job.target.field.attname
        with transaction.atomic(using=job.target.model._default_manager.db):
            job.target.model._default_manager.filter(pk__in=job.pks, **{column: job.name}).update(
                **{column: new}
            )

    def _already_there(self, job: _Job, dest: ObjectstoreStorage, size: int | None) -> bool:
        if not dest.exists(job.dest_name):
            return False
        # The row already names an object in the destination (a renamed copy from an
        # earlier run), or a same-named, same-sized object is there (copied, then
        # interrupted before anything else: the rows are updated now).
        if size is not None and dest.size(job.dest_name) != size:
            return False
        if job.dest_name != job.name:
            self._rename(job, dest.canonical_name(job.dest_name))
        return True

    # -- the run -----------------------------------------------------------
    def handle(self, *args: Any, **options: Any) -> None:
        targets = self._targets(options["fields"], options["source"])
        dest = self._destination(options, targets)
        for target in targets:
            if target.source is dest:
                raise CommandError(
                    f"{target.label} already uses that ObjectstoreStorage; pass --from ALIAS "
                    "naming the storage its files are in now."
                )
        dry_run, verbose = options["dry_run"], options["verbosity"] >= 2
        failures: list[str] = []
        todo: list[tuple[_Job, int]] = []
        skipped = 0
        for target in targets:
            for job in self._jobs(target, dest, failures):
                try:
                    size = job.target.source.size(job.name)
                except FileNotFoundError:
                    size = None
                except Exception as exc:  # noqa: BLE001 - any storage's error is this file's
                    failures.append(f"{target.label} {job.name!r}: {exc}")
                    continue
                try:
                    there = self._already_there(job, dest, size)
                except Exception as exc:  # noqa: BLE001 - reported, the others go on
                    failures.append(f"{target.label} {job.name!r}: {exc}")
                    continue
                if there:
                    skipped += 1
                elif size is None:
                    failures.append(f"{target.label} {job.name!r}: missing in the source storage")
                else:
                    todo.append((job, size))
        total = sum(size for _, size in todo)
        show = options["progress"]
        if show is None:
            show = self.stderr.isatty()
        progress = _Progress(self.stderr, len(todo), total, enabled=bool(show) and not dry_run)
        copied = copied_bytes = 0
        for job, size in todo:
            if dry_run:
                if verbose:
                    self.stdout.write(f"would copy {job.target.label} {job.name} ({size} bytes)")
                continue
            try:
                new = self._copy(job, dest, size)
            except Exception as exc:  # noqa: BLE001 - one file's failure must not stop the rest
                failures.append(f"{job.target.label} {job.name!r}: {type(exc).__name__}: {exc}")
            else:
                copied += 1
                copied_bytes += size
                if verbose:
                    self.stdout.write(f"copied {job.target.label} {job.name} -> {new}")
            progress.advance(size)
        progress.clear()
        for failure in failures:
            self.stderr.write(f"FAILED {failure}")
        if dry_run:
            summary = f"Dry run: would copy {len(todo)} files ({_fmt_bytes(total)})"
        else:
            summary = f"Copied {copied} files ({_fmt_bytes(copied_bytes)})"
        self.stdout.write(f"{summary}; {skipped} already in Objectstore; {len(failures)} failed.")
        if failures:
            raise CommandError(
                f"{len(failures)} file(s) failed (listed above); fix them and rerun: files "
                "already copied are skipped."
            )
