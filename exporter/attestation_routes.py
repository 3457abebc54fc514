"""Attestations from the status page, behind `evidence_auth`: a link per outage
(`/outages/<id>/attestation.zip`) and a small page where a window is typed (`/attestation`).

GET only: nothing is written but a temporary directory; the ledger is opened read-only. No
reference of a person's case is taken over the web (it would travel in URLs and logs): the
`vigie attestation --reference` command prints one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import tempfile
import zipfile
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from aiohttp import web

from evidence.outages.availability import PARIS
from exporter.evidence_download import OUTAGE_ID, EvidenceDownload
from exporter.evidence_routes import evidence_cache_dir
from exporter.statuspage import html_page, service_tracker

if TYPE_CHECKING:
    from evidence.bundle.attestation import TargetInfo, Window
    from exporter.service import Service

__all__ = ["WEB_MAX_WINDOWS", "WEB_MAX_WINDOW_HOURS", "add_attestation_routes"]

log = structlog.get_logger("vigie.attestation_routes")

WEB_MAX_WINDOWS = 5
WEB_MAX_WINDOW_HOURS = 48  # longer windows: the command (a bundle can be large)


def _minute(moment: dt.datetime, *, up: bool = False) -> dt.datetime:
    floor = moment.replace(second=0, microsecond=0)
    return floor + dt.timedelta(minutes=1) if up and floor != moment else floor


def _window_text(start: dt.datetime, end: dt.datetime) -> str:
    a, b = start.astimezone(PARIS), end.astimezone(PARIS)
    return f"{a:%Y-%m-%dT%H:%M}/{b:%Y-%m-%dT%H:%M}"


def _package(pdf: Path) -> bytes:
    """The PDF and the bundle beside it, in one zip for the browser to save."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.write(pdf, pdf.name)
        bundle = pdf.with_suffix(".zip")
        if bundle.is_file():
            zf.write(bundle, bundle.name)
    return buffer.getvalue()


def add_attestation_routes(app: web.Application, service: Service) -> None:
    """Register `/attestation`, `/attestation.zip` and `/outages/{id}/attestation.zip`."""
    from evidence.bundle.with_settings import chosen_targets, write_attestation

    settings = service.settings
    auth = None
    if settings.evidence_auth is not None:
        auth = (settings.evidence_auth.user, settings.evidence_auth.password)
    # The evidence download's own credential check (constant-time), not a second copy of it.
    guard = EvidenceDownload(
        evidence_cache_dir(settings), lambda _: None, lambda *_: None, auth=auth
    )
    builds = asyncio.Semaphore(1)

    def build(targets: list[TargetInfo], windows: list[Window]) -> bytes:
        with tempfile.TemporaryDirectory(prefix="vigie-attestation-") as tmp:
            pdf = Path(tmp) / "attestation.pdf"
            write_attestation(settings, targets, windows, pdf)
            return _package(pdf)

    async def send(targets: list[TargetInfo], windows: list[Window]) -> web.Response:
        async with builds:
            try:
                body = await asyncio.to_thread(build, targets, windows)
            except Exception as exc:
                log.exception("attestation_failed", error=str(exc))
                raise web.HTTPInternalServerError(
                    text="L'attestation n'a pas pu être produite ; réessayez plus tard."
                ) from None
        day = windows[0].start.astimezone(PARIS).strftime("%Y%m%d")
        name = f"vigie-attestation-{targets[0].id}-{day}.zip"
        return web.Response(
            body=body,
            headers={
                "Content-Type": "application/zip",
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "private, no-store",
            },
        )

    async def for_outage(request: web.Request) -> web.Response:
        guard._check_auth(request)
        outage_id = request.match_info["id"]
        tracker = service_tracker(service)
        record = None
        if OUTAGE_ID.fullmatch(outage_id) and tracker is not None:
            record = tracker.record(outage_id)
        if record is None:
            raise web.HTTPNotFound(text="Aucune panne ne porte cet identifiant.")
        from evidence.bundle.attestation import parse_window

        end = record.end or dt.datetime.now(dt.UTC)
        window = parse_window(_window_text(_minute(record.start), _minute(end, up=True)))
        try:
            targets = chosen_targets(settings, [record.target_id], None)
        except ValueError:
            raise web.HTTPNotFound(text="Ce service n'est plus surveillé.") from None
        return await send(targets, [window])

    async def typed(request: web.Request) -> web.Response:
        guard._check_auth(request)
        from evidence.bundle.attestation import WindowError, parse_window

        texts = request.query.getall("window", [])
        try:
            targets = chosen_targets(settings, request.query.getall("target", []), None)
            if not texts or len(texts) > WEB_MAX_WINDOWS:
                raise WindowError(f"give 1 to {WEB_MAX_WINDOWS} windows (window=START/END)")
            windows = [parse_window(text) for text in texts]
        except ValueError as exc:
            raise web.HTTPBadRequest(text=f"Demande invalide : {exc}") from None
        if any(w.real_seconds > WEB_MAX_WINDOW_HOURS * 3600 for w in windows):
            raise web.HTTPBadRequest(
                text=f"Demande invalide : au plus {WEB_MAX_WINDOW_HOURS} h par plage ici ; "
                "pour davantage, la commande « vigie attestation »."
            )
        return await send(targets, windows)

    async def page(request: web.Request) -> web.Response:
        guard._check_auth(request)
        options = "".join(
            f'<option value="{escape(t.id)}">{escape(t.name or t.id)}</option>'
            for t in settings.targets
        )
        today = dt.datetime.now(PARIS).strftime("%Y-%m-%d")
        body = f"""<header><h1>Attestation d'observation</h1>
<p><a href="/">Retour à l'état des services</a></p></header>
<main>
<p>Pour le dossier d'une personne qui n'a pas pu utiliser un service : indiquez le service et
la plage horaire où elle a essayé (heure de Paris). Vous recevez un fichier zip qui contient
l'attestation (PDF, une ou deux pages) et l'archive de preuves signée qui l'accompagne.</p>
<form method="get" action="/attestation.zip">
<p><label for="target">Service</label><br>
<select id="target" name="target">{options}</select></p>
<p><label for="window">Plage horaire (début/fin, heure de Paris)</label><br>
<input id="window" name="window" size="40" required
 placeholder="{today}T09:00/11:30" aria-describedby="window-help"></p>
<p id="window-help">Par exemple <code>{today}T09:00/11:30</code> (même jour) ou
<code>{today}T22:00/…T01:00</code> (sur deux jours) ; au plus {WEB_MAX_WINDOW_HOURS} h.</p>
<p><button type="submit">Obtenir l'attestation</button></p>
</form>
<p>L'attestation ne contient aucun nom. Pour y imprimer la référence du dossier, utilisez la
commande <code>vigie attestation --reference "dossier n° …"</code> : cette référence n'est
jamais enregistrée.</p>
</main>"""
        html = html_page("Vigie — attestation d'observation", body)
        return web.Response(
            text=html,
            content_type="text/html",
            charset="utf-8",
            headers={"Cache-Control": "private, no-store"},
        )

    app.router.add_get("/attestation", page)
    app.router.add_get("/attestation.zip", typed)
    app.router.add_get("/outages/{id}/attestation.zip", for_outage)
