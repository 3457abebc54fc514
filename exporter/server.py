"""The service's HTTP surface: /metrics, /healthz and the French status page at /.

It only answers GET and HEAD, never accepts a body, and serves nothing outside what it builds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from exporter.attestation_routes import add_attestation_routes
from exporter.capture_routes import make_capture_handler
from exporter.evidence_routes import make_evidence_handler
from exporter.hostcheck import HostAllowList, host_middleware
from exporter.metrics import CONTENT_TYPE_LATEST
from exporter.opendata import OpenData, add_open_data_routes, service_open_data
from exporter.review_routes import REVIEW_ROUTE, add_review_routes
from exporter.statuspage import (
    capture_times,
    render_not_found,
    render_outage_by_id,
    render_status_page,
    service_tracker,
)

if TYPE_CHECKING:
    from exporter.service import Service

__all__ = ["build_app"]

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_SERVICE: web.AppKey[Service] = web.AppKey("service")


@web.middleware
async def _read_only(request: web.Request, handler: _Handler) -> web.StreamResponse:
    # One exception: a person's review of an outage, appended to Vigie's own ledger.
    review = request.method == "POST" and request.match_info.route.name == REVIEW_ROUTE
    if request.method not in {"GET", "HEAD"} and not review:
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "HEAD"])
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


async def _metrics(request: web.Request) -> web.Response:
    body = request.app[_SERVICE].metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _healthz(request: web.Request) -> web.Response:
    service = request.app[_SERVICE]
    uptime = time.time() - service.started
    return web.json_response({"status": "ok", "uptime_seconds": round(uptime, 3)})


async def _status(request: web.Request) -> web.Response:
    html = render_status_page(request.app[_SERVICE])
    return web.Response(text=html, content_type="text/html", charset="utf-8")


async def _outage(request: web.Request) -> web.Response:
    outage_id = request.match_info["outage_id"]
    service = request.app[_SERVICE]
    tracker = service_tracker(service)
    record = tracker.record(outage_id) if tracker is not None else None
    captured = None  # the capture times come from the ledger: read outside the event loop
    if record is not None:
        captured = await asyncio.to_thread(capture_times, service.settings, record)
    html = render_outage_by_id(service, outage_id, captured=captured)
    if html is None:
        raise web.HTTPNotFound(text=render_not_found(outage_id), content_type="text/html")
    return web.Response(text=html, content_type="text/html", charset="utf-8")


def build_app(service: Service) -> web.Application:
    """The aiohttp application serving the service's endpoints."""
    settings = service.settings
    allow = HostAllowList(settings.listen_host, settings.public_url, settings.allowed_hosts)
    app = web.Application(
        client_max_size=16 * 1024,  # the review form is the largest body accepted
        middlewares=[host_middleware(allow), _read_only],
    )
    app[_SERVICE] = service
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/", _status)
    app.router.add_get("/outages/{outage_id}", _outage)
    app.router.add_get("/outages/{id}/evidence.zip", make_evidence_handler(service))
    app.router.add_get("/outages/{outage_id}/captures/{sha256}", make_capture_handler(service))

    async def open_data(request: web.Request) -> OpenData:
        return service_open_data(service, request)

    add_open_data_routes(app, open_data)
    add_attestation_routes(app, service)
    add_review_routes(app, service)
    return app
