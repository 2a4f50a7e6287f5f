"""Show setting values in messages without ever showing key material.

A value pasted into the wrong setting (a PEM private key in
``SECRET_KEY_FILE`` or ``KID``, a JWT in ``EXPIRY_SECONDS``) must not end up
in ``manage.py check`` output, exceptions or logs: :func:`shown` replaces
anything that looks like a key or a token by a description of its shape.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["looks_secret", "scrub", "shown"]

#: PEM armour or a JWT (base64url JSON header ``eyJ...`` and two more parts).
_ARMOUR: Final = re.compile(r"-----BEGIN|PRIVATE KEY|eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.")
#: A long base64 run (a bare DER key or signature) ...
_RUN: Final = re.compile(r"[A-Za-z0-9+/_-]{40,}")
#: ... that mixes upper case, lower case and digits (a long path rarely does).
_MIXED: Final = (re.compile(r"[A-Z]"), re.compile(r"[a-z]"), re.compile(r"[0-9]"))
#: What scrub() cuts out of a finished message: PEM blocks (to their END line
#: or the end of the text), JWTs or any part of one starting at its header,
#: long base64 runs.
_PEM_BLOCK: Final = re.compile(r"-----BEGIN.*?(?:-----END[^-]*-----|\Z)", re.DOTALL)
_JWT: Final = re.compile(r"eyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*){0,2}")
HIDDEN: Final = "[key material not shown]"


def looks_secret(value: object) -> bool:
    """True if ``value`` (or its ``repr``) may hold key material or a token."""
    text = value if isinstance(value, str) else repr(value)
    if "\n" in text or _ARMOUR.search(text):
        return True
    return any(all(p.search(run) for p in _MIXED) for run in _RUN.findall(text))


def shown(value: object) -> str:
    """``repr(value)``, or a shape description if it looks like a secret."""
    if not looks_secret(value):
        return repr(value)
    size = f" of {len(value)} characters" if isinstance(value, str | bytes) else ""
    return f"<a {type(value).__name__}{size} that looks like key material, not shown>"


def scrub(text: str) -> str:
    """``text`` with anything that looks like key material replaced by
    ``[key material not shown]``: the last line of defence for messages."""
    text = _PEM_BLOCK.sub(HIDDEN, text)
    text = _JWT.sub(HIDDEN, text)
    return _RUN.sub(
        lambda m: HIDDEN if all(p.search(m.group()) for p in _MIXED) else m.group(), text
    )
