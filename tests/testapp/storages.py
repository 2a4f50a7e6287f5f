"""A FileSystemStorage that stops the process's work mid-run, as Ctrl+C or
a killed deploy job would (fault injection: nothing real does it on demand)."""

from __future__ import annotations

from typing import Any, ClassVar

from django.core.files.storage import FileSystemStorage


class InterruptingStorage(FileSystemStorage):
    #: Raise KeyboardInterrupt when open() is called this many times (0: never).
    interrupt_at: ClassVar[int] = 0
    opened: ClassVar[int] = 0

    def _open(self, name: str, mode: str = "rb") -> Any:
        type(self).opened += 1
        if type(self).opened == type(self).interrupt_at:
            raise KeyboardInterrupt
        return super()._open(name, mode)
