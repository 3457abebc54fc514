"""Evidence downloads from the status page: `/outages/<id>/evidence.zip`, built on request.

It reads the ledger through its own read-only connection and never writes evidence; paths,
caching and authentication are `exporter.evidence_download`'s job.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from exporter.evidence_download import NotCoveredYet, download_name, evidence_download_handler

if TYPE_CHECKING:
    from config.settings import Settings
    from evidence.outages.tracker import OutageRecord
    from exporter.service import Service

__all__ = ["evidence_cache_dir", "make_evidence_handler", "outage_version"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)  # an outage bundle dates itself from its entries


def evidence_cache_dir(settings: Settings) -> Path:
    """Where generated bundles are cached: beside the artifact store."""
    return settings.ledger.artifacts.parent / "evidence-cache"


def _export_outage(settings: Settings, outage_id: str, path: Path) -> None:
    """Write the bundle of one outage (blocking; runs in a worker thread).

    Opened exactly as `vigie export --outage ID` opens it (same key, TSA and TSA roots); an
    outage whose entries no checkpoint covers yet raises `NotCoveredYet`.
    """
    # Imported on the first download: the exporter's ~5 MB stay out of the probing service.
    from evidence.bundle.model import ExportRequest, NotCoveredYetError
    from evidence.bundle.with_settings import export_with_settings

    request = ExportRequest(_EPOCH, dt.datetime.now(dt.UTC), (), outage_id)
    try:
        export_with_settings(
            settings, path, request, progress=False, bundle_name=download_name(outage_id)
        )
    except NotCoveredYetError as exc:
        raise NotCoveredYet(str(exc)) from None


def outage_version(record: OutageRecord) -> str:
    """A cache version of an outage's bundle that changes whenever the bundle would: letters,
    digits and '-' only (``closed-20261207T183345123456Z``, ``open-7``)."""
    if record.ended_at is not None:
        return "closed-" + re.sub(r"[^0-9A-Za-z]", "", record.ended_at)[:57]
    return f"open-{record.failed_checks}"


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
                return outage_version(record)
        return None

    def build(outage_id: str, path: Path) -> None:
        _export_outage(settings, outage_id, path)

    auth = None
    if settings.evidence_auth is not None:
        auth = (settings.evidence_auth.user, settings.evidence_auth.password)
    checkpointer = service.checkpointer
    return evidence_download_handler(
        evidence_cache_dir(settings),
        version_of,
        build,
        auth=auth,
        checkpoint=None if checkpointer is None else checkpointer.checkpoint,
    )
