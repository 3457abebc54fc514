"""Evidence downloads from the status page: `/outages/<id>/evidence.zip`, built on request.

It reads the ledger through its own read-only connection and never writes evidence; paths,
caching and authentication are `exporter.evidence_download`'s job.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from evidence.ledger import open_ledger
from evidence.signing import NoteSigner, load_private_key
from exporter.evidence_download import evidence_download_handler

if TYPE_CHECKING:
    from exporter.config import Settings
    from exporter.service import Service

__all__ = ["evidence_cache_dir", "make_evidence_handler"]


def evidence_cache_dir(settings: Settings) -> Path:
    """Where generated bundles are cached: beside the artifact store."""
    return settings.ledger.artifacts.parent / "evidence-cache"


def _export_outage(settings: Settings, outage_id: str, path: Path) -> None:
    """Write the bundle of one outage (blocking; runs in a worker thread)."""
    # Imported on the first download: the exporter's ~5 MB stay out of the probing service.
    from evidence.bundle import ExportRequest, export_bundle

    password = settings.ledger.password.get_secret_value() if settings.ledger.password else None
    signer = NoteSigner(settings.vantage.name, load_private_key(settings.signing.key))
    ledger = open_ledger(
        settings.ledger.url, vantage=settings.vantage.name, readonly=True, password=password
    )
    try:
        export_bundle(
            ledger,
            path,
            ExportRequest(
                dt.datetime(1970, 1, 1, tzinfo=dt.UTC), dt.datetime.now(dt.UTC), (), outage_id
            ),
            signer=signer,
            operator=settings.vantage.operator,
            artifacts_dir=settings.ledger.artifacts,
            progress=False,
            settings=settings,
        )
    finally:
        ledger.close()


def make_evidence_handler(
    service: Service,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The handler for ``GET /outages/{id}/evidence.zip`` of this service."""
    settings = service.settings

    def version_of(outage_id: str) -> str | None:
        if service.outages is None:
            return None
        for record in service.outages.tracker.records():
            if record.id == outage_id:
                if record.ended_at is not None:
                    return f"closed-{record.ended_at}"
                return f"open-{record.failed_checks}"
        return None

    def build(outage_id: str, path: Path) -> None:
        _export_outage(settings, outage_id, path)

    auth = None
    if settings.evidence_auth is not None:
        auth = (settings.evidence_auth.user, settings.evidence_auth.password)
    return evidence_download_handler(evidence_cache_dir(settings), version_of, build, auth=auth)
