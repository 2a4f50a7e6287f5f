"""Fallback server launcher: the embedded ``LocalServer`` configured from the same
``OS__*`` variables the CLI reads, for trees where ``python -m
django_objectstore.server run`` is not available yet. Runs until SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import sys

from django_objectstore.server import KeyConfig, LocalServer


def main() -> None:
    host, port = os.environ["OS__HTTP_ADDR"].rsplit(":", 1)
    keys_text = os.environ.get("OS__AUTH__KEYS", "{}")
    keys = {}
    # Only the shape run.py writes: {kid={key_files=["p"],max_permissions=["a","b"]}}
    for kid, files, perms in re.findall(
        r"(\w+)=\{key_files=\[([^\]]*)\],max_permissions=\[([^\]]*)\]\}", keys_text
    ):
        keys[kid] = KeyConfig(
            key_files=re.findall(r'"([^"]+)"', files),
            max_permissions=re.findall(r'"([^"]+)"', perms),
        )
    server = LocalServer(
        storage=os.environ.get("OS__STORAGE__TYPE", "memory"),  # type: ignore[arg-type]
        path=os.environ.get("OS__STORAGE__PATH"),
        host=host,
        port=int(port),
        auth_enforce=os.environ.get("OS__AUTH__ENFORCE", "false") == "true",
        auth_keys=keys,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.serve_forever()


if __name__ == "__main__":
    main()
