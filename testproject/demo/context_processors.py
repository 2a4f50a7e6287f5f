from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def objectstore(request: HttpRequest) -> dict[str, Any]:
    """Tell every page which Objectstore the demo talks to, and how."""
    config = settings.OBJECTSTORE
    token = config.get("TOKEN")
    if isinstance(token, dict):
        auth = f"tokens signed with key {token.get('KID')!r}"
    elif token:
        auth = "a pre-signed token"
    else:
        auth = "no token"
    expiration = config.get("USECASES", {}).get("attachments", {}).get("EXPIRATION", "manual")
    return {"objectstore_url": config["URL"], "objectstore_auth": auth, "expiration": expiration}
