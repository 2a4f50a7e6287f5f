"""What a site's own upload view does: save the posted body through
``default_storage`` as ``uploads/<?name=>`` and answer with the name it was
saved under."""

from __future__ import annotations

import os

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed


def upload(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    wanted = request.GET.get("name") or "posted.bin"
    name = default_storage.save(f"uploads/{wanted}", ContentFile(request.body))
    response = HttpResponse(name, content_type="text/plain")
    response["X-Served-By"] = str(os.getpid())  # which worker process answered
    return response
