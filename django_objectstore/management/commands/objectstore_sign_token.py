"""``manage.py objectstore_sign_token <usecase> [--scope k=v]... [--permission p]...
[--expiry-seconds N]``: print a JWT signed with ``OBJECTSTORE["TOKEN"]``'s key.

Only the token goes to stdout, so ``TOKEN=$(python manage.py objectstore_sign_token
attachments --scope org=42)`` works.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_objectstore._protocol import invalid_scope_char
from django_objectstore.conf import PERMISSIONS

__all__ = ["Command"]


def _scope_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise CommandError(f"--scope {text!r}: write it as name=value, e.g. --scope org=42.")
    for part in (name, value) if value != "*" else (name,):
        bad = invalid_scope_char(part)
        if bad is not None:
            raise CommandError(
                f"--scope {text!r}: {bad!r} is not allowed in scope names and values "
                "(use letters, digits and _ - ( ) $ ! + ')."
            )
    return name, value


class Command(BaseCommand):
    help = "Print a JWT for a usecase and scope, signed with OBJECTSTORE['TOKEN']'s secret key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("usecase", help="usecase name, e.g. attachments")
        parser.add_argument(
            "--scope",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="a scope entry (repeat in order; value '*' grants every value)",
        )
        parser.add_argument(
            "--permission",
            action="append",
            default=[],
            choices=PERMISSIONS,
            help="a permission to grant (repeatable; default: all the key allows)",
        )
        parser.add_argument(
            "--expiry-seconds",
            type=int,
            default=None,
            help="validity in seconds (default: TOKEN['EXPIRY_SECONDS'], 60)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from django_objectstore import factory
        from django_objectstore.client import Permission, SecretKey, Usecase

        pairs = [_scope_pair(text) for text in options["scope"]]
        names = [name for name, _ in pairs]
        if len(set(names)) != len(names):
            raise CommandError(f"--scope names must be unique, got {', '.join(names)}.")
        expiry = options["expiry_seconds"]
        if expiry is not None and expiry <= 0:
            raise CommandError(f"--expiry-seconds must be positive, got {expiry}.")
        try:
            token = factory.get_token()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        if not isinstance(token, SecretKey):
            raise CommandError(
                "OBJECTSTORE['TOKEN'] has no secret key to sign with; set it to a dict "
                "with KID and SECRET_KEY or SECRET_KEY_FILE."
            )
        try:
            usecase = Usecase(options["usecase"])
        except (TypeError, ValueError) as exc:
            raise CommandError(f"usecase {options['usecase']!r}: {exc}") from exc
        permissions = [Permission(p) for p in options["permission"]] or None
        # Scope values must be JSON strings in the token: keep them as text.
        scope_view: Any = _TextScope(pairs)
        try:
            jwt = token.token_for_scope(usecase.name, scope_view, permissions, expiry)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(jwt)


class _TextScope:
    """The one thing ``SecretKey.token_for_scope`` needs from a scope."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    def dict(self) -> dict[str, str]:
        return dict(self._pairs)
