"""``python -m tests.serving.wsgi``: serve the project with the standard
library's WSGI server on the listening socket inherited as file descriptor
``argv[1]`` (the parent bound it, so the port is known before the start)."""

from __future__ import annotations

import os
import socket
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.serving.settings")
application = get_wsgi_application()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return


def main() -> None:
    listener = socket.socket(fileno=int(sys.argv[1]))
    server = WSGIServer(listener.getsockname(), _QuietHandler, bind_and_activate=False)
    server.socket.close()
    server.socket = listener
    server.server_name, server.server_port = "127.0.0.1", listener.getsockname()[1]
    server.setup_environ()
    server.set_app(application)
    server.serve_forever()


if __name__ == "__main__":
    main()
