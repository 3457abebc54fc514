"""Parts of `ReportData` that come from the configuration and the outage records: what each
target is expected to do, its journey's steps, the methodology, outage rows, thumbnails.

The bundle's report inputs (`evidence.bundle.report_inputs`) assemble them with the figures
gathered while the bundle streamed the ledger.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import TYPE_CHECKING

import structlog

from config.maintenance import describe
from evidence.outages.tracker import OutageRecord, causes_text_fr
from evidence.report.data import Methodology, OutageRow

if TYPE_CHECKING:
    from config.settings import Settings
    from config.targets import Target

__all__ = [
    "MAX_SCREENSHOTS",
    "configured_methodology",
    "expectation_fr",
    "ledger_kind",
    "outage_row",
    "steps_fr",
    "thumbnail",
]

log = structlog.get_logger("vigie.report")

MAX_SCREENSHOTS = 12  # thumbnails in the report
THUMBNAIL_PX = 480


def expectation_fr(target: Target) -> str:
    """What counts as success for `target`, in French."""
    expect = target.expect
    codes = ", ".join(str(c) for c in expect.status)
    parts = [f"code HTTP {codes}" if target.kind == "http" else "le parcours aboutit"]
    if expect.contains:
        parts.append(f"la page contient « {expect.contains} »")
    if expect.not_contains:
        parts.append(f"la page ne contient pas « {expect.not_contains} »")
    if target.slow_after:
        parts.append(f"lenteur au-delà de {target.slow_after:g} s")
    return " ; ".join(parts)


def steps_fr(target: Target) -> tuple[str, ...]:
    """The steps of a browser journey, described in plain French (no selector shown)."""
    from evidence.report.steps import describe_step

    return tuple(describe_step(step) for step in target.steps)


def ledger_kind(url: str) -> str:
    """The ledger backend of `url`, described in French (never the URL itself)."""
    if url.startswith(("postgresql:", "postgres:")):
        return "PostgreSQL (journal en ajout seul, modifications refusées par la base)"
    return "SQLite (journal en ajout seul, modifications refusées par la base)"


def configured_methodology(settings: Settings) -> Methodology:
    """How the observations were made, as the configuration `settings` says."""
    return Methodology(
        user_agent=settings.user_agent,
        confirm_after=settings.outages.confirm_after,
        recover_after=settings.outages.recover_after,
        recheck_s=settings.outages.recheck,
        controls=tuple(settings.controls),
        maintenance=tuple(describe(w) for w in settings.maintenance),
    )


def outage_row(
    record: OutageRecord,
    now: dt.datetime,
    *,
    vantages: tuple[str, ...] = (),
    vantage_count: int = 0,
    review_required: bool = False,
) -> OutageRow:
    """The table row of `record`, lasting until `now` while it is open.

    `vantages`, `vantage_count`: with corroboration, who saw it (by name, or how many).
    `review_required`: an unreviewed outage is shown as awaiting a person's review.
    """
    review = None if record.review is None else record.review.text_fr
    if review is None and review_required:
        review = "en attente de vérification par une personne : non confirmée"
    return OutageRow(
        id=record.id,
        target_id=record.target_id,
        kind=record.kind,
        started_at=record.start,
        ended_at=record.end,
        duration_s=record.duration(now),
        cause=causes_text_fr(record.causes) if record.causes else "",
        maintenance=record.maintenance,
        failed_checks=record.failed_checks,
        vantages=vantages,
        vantage_count=vantage_count,
        review=review,
    )


def thumbnail(data: bytes) -> tuple[bytes, int, int] | None:
    """A PNG thumbnail of a capture and its size (None when it cannot be read)."""
    try:
        from PIL import Image as PILImage  # reportlab's own dependency

        with PILImage.open(io.BytesIO(data)) as image:
            image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            out = io.BytesIO()
            image.convert("RGB").save(out, "PNG", optimize=True)
            return out.getvalue(), image.width, image.height
    except Exception as exc:  # noqa: BLE001 - an unreadable capture must not stop the report
        log.warning("report_thumbnail_failed", error=str(exc))
        return None
