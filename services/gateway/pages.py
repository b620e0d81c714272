"""The H5 pages: plain HTML/CSS/JS files under ``static/``, served by the gateway.

Every path that is not an API call and not a file gets ``index.html`` (the pages route
themselves in the browser: ``/join/<token>``, ``/ledger/<id>``, ``/me`` …)."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from werkzeug.wrappers import Response

STATIC = Path(__file__).resolve().parent / "static"
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".html": "text/html; charset=utf-8"}


def page(path: str) -> Response:
    target = (STATIC / path).resolve()
    if not path or not target.is_file() or STATIC not in target.parents:
        target = STATIC / "index.html"
    if not target.is_file():
        return Response("Not found", status=404)
    mimetype = TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    # revalidate every time: the pages' modules must never mix versions after a deploy
    cache = "no-cache"
    return Response(target.read_bytes(), headers={"Content-Type": mimetype, "Cache-Control": cache})
