"""`GET /outages/{id}/captures/{sha256}`: one capture of an outage, as it was recorded.

It serves only files the outage names (never a path from the request), behind the same password
as the evidence downloads, and never lets a captured page run scripts or load anything.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from evidence.ledger.artifacts import FileArtifactStore
from exporter.evidence_download import check_basic_auth
from exporter.statuspage import service_tracker

if TYPE_CHECKING:
    from exporter.service import Service

__all__ = ["CAPTURE_TYPES", "make_capture_handler"]

_SHA256 = re.compile(r"[0-9a-f]{64}")
# kind -> (Content-Type, shown in the browser rather than downloaded)
CAPTURE_TYPES = {
    "screenshot": ("image/png", True),
    "html": ("text/html; charset=utf-8", True),
    "text": ("text/plain; charset=utf-8", True),
    "json": ("application/json", True),
    "warc": ("application/warc", False),
    "har": ("application/json", False),
}
_EXTENSIONS = {"screenshot": "png", "html": "html", "warc": "warc", "har": "har", "json": "json"}
# A captured page is someone else's markup: an opaque origin, no script, nothing loaded.
_SANDBOX = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def make_capture_handler(
    service: Service,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The handler for ``GET /outages/{outage_id}/captures/{sha256}`` of this service."""
    settings = service.settings
    store = FileArtifactStore(settings.ledger.artifacts)
    auth = None
    if settings.evidence_auth is not None:
        auth = (settings.evidence_auth.user, settings.evidence_auth.password)

    async def handle(request: web.Request) -> web.StreamResponse:
        check_basic_auth(request, auth)
        outage_id, sha = request.match_info["outage_id"], request.match_info["sha256"]
        tracker = service_tracker(service)
        record = tracker.record(outage_id) if tracker is not None else None
        kind = record.artifacts.get(sha) if record is not None and _SHA256.fullmatch(sha) else None
        if kind is None:
            raise web.HTTPNotFound(text="Cette panne n'a pas de capture portant cette empreinte.")
        path = store.path(sha)
        if not path.is_file():
            raise web.HTTPNotFound(text="Capture absente du stockage de cette sonde.")
        content_type, inline = CAPTURE_TYPES.get(kind, ("application/octet-stream", False))
        name = f"{outage_id}-{sha[:12]}.{_EXTENSIONS.get(kind, 'bin')}"
        return web.FileResponse(
            path,
            headers={
                "Content-Type": content_type,
                "Content-Security-Policy": _SANDBOX,
                "Content-Disposition": f'{"inline" if inline else "attachment"}; filename="{name}"',
                "Cache-Control": "private, max-age=86400, immutable",
            },
        )

    return handle
