"""The French status page at `/` and the outage pages: server-rendered HTML, no JavaScript needed.

It shows what the tracker knows; it never changes state and never embeds untrusted markup
(every value from configuration or observations is escaped).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import quote
from zoneinfo import ZoneInfo

from evidence.availability import Availability, percent_fr
from evidence.maintenance import active_label, describe
from evidence.outages import (
    DOWN,
    CheckSummary,
    OutageRecord,
    OutageTracker,
    Period,
    format_duration_fr,
)
from probes.observation import Outcome

if TYPE_CHECKING:
    from exporter.service import Service
    from probes.targets import Target

__all__ = [
    "OUTCOME_LABELS",
    "STATE_LABELS",
    "DayView",
    "OutageView",
    "PeriodView",
    "StatusView",
    "TargetView",
    "build_status_view",
    "html_page",
    "outage_view",
    "paris_time",
    "render_outage_by_id",
    "render_outage_page",
    "render_status_page",
    "render_status_view",
    "service_tracker",
]

PARIS = ZoneInfo("Europe/Paris")
BAR_DAYS = 90
OUTAGE_ROWS = 200  # outages listed on the page, newest first

OUTCOME_LABELS = {
    Outcome.OK: "Fonctionne",
    Outcome.DNS_ERROR: "Nom de domaine introuvable",
    Outcome.CONNECT_ERROR: "Connexion impossible",
    Outcome.TLS_ERROR: "Certificat de sécurité invalide",
    Outcome.TIMEOUT: "Pas de réponse dans le délai",
    Outcome.HTTP_STATUS: "Erreur du serveur",
    Outcome.CONTENT_MISMATCH: "Page incorrecte",
    Outcome.BROWSER_ERROR: "Erreur du navigateur",
    Outcome.STEP_FAILED: "Parcours interrompu",
    Outcome.TOO_LARGE: "Réponse trop volumineuse",
    Outcome.VANTAGE_OFFLINE: "Sonde hors ligne (non imputable au service)",
    Outcome.PROTOCOL_ERROR: "Réponse invalide",
    Outcome.REDIRECT_LOOP: "Boucle de redirections",
    Outcome.BLOCKED: "Requête bloquée (lecture seule)",
}

STATE_LABELS = {
    "up": "Fonctionne",
    "failing": "Erreurs en cours de vérification",
    "down": "En panne",
    "recovering": "Rétablissement en cours",
    "degraded": "Ralenti",
    "unknown": "Pas encore vérifié",
}
_STATE_CSS = {
    "up": "ok",
    "failing": "warn",
    "down": "ko",
    "recovering": "warn",
    "degraded": "warn",
    "unknown": "na",
}
_STATE_MARK = {"ok": "✔", "warn": "!", "ko": "✖", "na": "?"}
_KIND_LABELS = {"down": "Panne", "degraded": "Lenteur"}
_LEVEL_LABELS = {
    "ok": "aucune panne",
    "minor": "panne courte",
    "major": "panne importante",
    "slow": "lenteurs",
    "none": "pas de mesure",
}

# Colours: text at least 4.5:1 and bar cells at least 3:1 against the white background.
_STYLE = """
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:62rem;padding:1rem;color:#1a1a1a;
background:#fff;line-height:1.5}
h1{font-size:1.6rem}h2{font-size:1.3rem;margin-top:2rem}h3{font-size:1.1rem;margin-bottom:.3rem}
table{border-collapse:collapse;width:100%}caption{text-align:left;color:#444;padding:.3rem 0}
th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #ccc;vertical-align:top}
a{color:#0b4ea2}
.ok{color:#0a6b2d;font-weight:bold}.ko{color:#b00020;font-weight:bold}
.warn{color:#8a4b00;font-weight:bold}.na{color:#555555}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.avail{display:flex;gap:1.5rem;margin:.2rem 0;padding:0;list-style:none}
.bar{display:flex;gap:1px;margin:.3rem 0 .2rem;padding:0;list-style:none;height:2rem}
.bar li{flex:1;border-radius:2px}
.d-ok{background:#1e7b34}.d-minor{background:#b35c00}.d-major{background:#b00020}
.d-slow{background:#7a6a00}.d-none{background:#fff;border:1px solid #767676}
.legend{display:flex;flex-wrap:wrap;gap:1rem;padding:0;list-style:none;font-size:.9rem}
.legend span{display:inline-block;width:.9rem;height:.9rem;margin-right:.3rem;
vertical-align:middle;border-radius:2px}
.scale{display:flex;justify-content:space-between;font-size:.85rem;color:#444}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem}
dl.facts dt{font-weight:bold}dl.facts dd{margin:0}
footer{margin-top:2rem;font-size:.9rem;color:#444}
"""


# --- view-model -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class DayView:
    """One day of the 90-day bar."""

    date: dt.date
    ratio: float | None
    level: str  # ok, minor, major, slow, none
    text: str  # French text alternative of the cell


@dataclasses.dataclass(frozen=True, slots=True)
class OutageView:
    """One line of the outage history, ready to show."""

    id: str
    target_id: str
    target_name: str
    kind: str
    kind_label: str
    started: str  # Paris time
    ended: str  # Paris time, or "en cours"
    duration: str
    causes: str
    failed_checks: int
    maintenance: str | None
    url: str
    is_open: bool


@dataclasses.dataclass(frozen=True, slots=True)
class PeriodView:
    """A period Vigie could not see (not running, or its own network down)."""

    kind_label: str
    started: str
    ended: str
    duration: str


@dataclasses.dataclass(frozen=True, slots=True)
class TargetView:
    """One watched service on the page."""

    id: str
    name: str
    state: str
    state_label: str
    since: str | None  # Paris time the current outage started
    last_checked: str | None
    detail: str
    availability: tuple[tuple[str, str], ...]  # (period label, French percentage)
    days: tuple[DayView, ...]
    maintenance_now: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class StatusView:
    """Everything the status page shows, computed once per request."""

    vantage: str
    operator: str
    vantage_online: bool | None
    vantage_since: str | None
    generated_at: str
    targets: tuple[TargetView, ...]
    outages: tuple[OutageView, ...]
    outages_total: int
    periods: tuple[PeriodView, ...]
    maintenance: tuple[str, ...]
    rules: str


def paris_time(moment: dt.datetime | str) -> str:
    """A moment shown as users read it: ``23/11/2026 14:27:18`` in Paris time."""
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    return moment.astimezone(PARIS).strftime("%d/%m/%Y %H:%M:%S")


def _day_level(avail: Availability) -> str:
    ratio = avail.ratio
    if ratio is None:
        return "none"
    if avail.down_s > 0:
        return "major" if ratio < 0.99 else "minor"
    return "slow" if avail.degraded_s > 0 else "ok"


def _day_view(avail: Availability) -> DayView:
    day = avail.start.astimezone(PARIS).date()
    level = _day_level(avail)
    when = day.strftime("%d/%m/%Y")
    if avail.ratio is None:
        text = f"{when} : pas de mesure"
    else:
        parts = [f"{when} : disponible {percent_fr(avail.ratio)}"]
        if avail.down_s > 0:
            parts.append(f"panne {format_duration_fr(avail.down_s)}")
        if avail.degraded_s > 0:
            parts.append(f"lenteurs {format_duration_fr(avail.degraded_s)}")
        if avail.unmonitored_s >= 60 and avail.monitored_s > 0:
            parts.append(f"non surveillé {format_duration_fr(avail.unmonitored_s)}")
        text = ", ".join(parts)
    return DayView(day, avail.ratio, level, text)


def outage_view(
    record: OutageRecord, names: Mapping[str, str], now: dt.datetime, base_url: str = ""
) -> OutageView:
    """One outage as the page shows it."""
    return OutageView(
        id=record.id,
        target_id=record.target_id,
        target_name=names.get(record.target_id, record.target_id),
        kind=record.kind,
        kind_label=_KIND_LABELS.get(record.kind, record.kind),
        started=paris_time(record.started_at),
        ended="en cours" if record.ended_at is None else paris_time(record.ended_at),
        duration=format_duration_fr(record.duration(now))
        + (" (en cours)" if record.is_open else ""),
        causes=record.causes_text_fr,
        failed_checks=record.failed_checks,
        maintenance=record.maintenance,
        url=f"{base_url}/outages/{quote(record.id)}",
        is_open=record.is_open,
    )


def _detail(last: CheckSummary | None) -> str:
    if last is None or last.success:
        return ""
    label = OUTCOME_LABELS.get(Outcome(last.outcome), last.outcome)
    status = f" (HTTP {last.http_status})" if last.http_status else ""
    return f"{label}{status}"


def _period_view(period: Period, now: dt.datetime) -> PeriodView:
    label = "Vigie arrêtée" if period.kind == "unmonitored" else "Connexion de la sonde coupée"
    return PeriodView(
        kind_label=label,
        started=paris_time(period.start),
        ended="en cours" if period.end is None else paris_time(period.end),
        duration=format_duration_fr(period.duration(now)),
    )


def build_status_view(
    tracker: OutageTracker,
    targets: Sequence[Target],
    *,
    vantage: str,
    operator: str = "",
    vantage_online: bool | None = None,
    now: dt.datetime | None = None,
    base_url: str = "",
    days: int = BAR_DAYS,
) -> StatusView:
    """The page's view-model from the tracker's in-memory state (no ledger read)."""
    now = now or dt.datetime.now(dt.UTC)
    names = {t.id: t.display_name for t in targets}
    records = tracker.records()
    open_by_target: dict[str, OutageRecord] = {}
    for record in records:
        if record.is_open and (record.kind == DOWN or record.target_id not in open_by_target):
            open_by_target[record.target_id] = record
    index = tracker.index
    target_views = []
    for target in targets:
        state = tracker.state(target.id)
        last = tracker.last_check(target.id)
        windows = (
            ("24 h", dt.timedelta(hours=24)),
            ("7 jours", dt.timedelta(days=7)),
            (f"{days} jours", dt.timedelta(days=days)),
        )
        availability = tuple(
            (label, percent_fr(index.availability(target.id, now - span, now, now).ratio))
            for label, span in windows
        )
        bar = tuple(_day_view(a) for a in index.daily(target.id, days, now))
        current = open_by_target.get(target.id)
        target_views.append(
            TargetView(
                id=target.id,
                name=target.display_name,
                state=state,
                state_label=STATE_LABELS.get(state, state),
                since=paris_time(current.started_at) if current else None,
                last_checked=paris_time(last.started_at) if last else None,
                detail=_detail(last),
                availability=availability,
                days=bar,
                maintenance_now=active_label(tracker.maintenance, now, target.id),
            )
        )
    horizon = now - dt.timedelta(days=days)
    shown = [r for r in reversed(records) if r.is_open or (r.end is not None and r.end >= horizon)]
    periods = [
        p
        for p in (*tracker.gaps(), *tracker.vantage_periods())
        if p.end is None or dt.datetime.fromisoformat(p.end) >= horizon
    ]
    periods.sort(key=lambda p: p.start, reverse=True)
    online = tracker.vantage_online if tracker.vantage_online is not None else vantage_online
    offline_since = None
    vantage_periods = tracker.vantage_periods()
    if online is False and vantage_periods and vantage_periods[-1].end is None:
        offline_since = paris_time(vantage_periods[-1].start)
    rules = tracker.rules
    return StatusView(
        vantage=vantage,
        operator=operator,
        vantage_online=online,
        vantage_since=offline_since,
        generated_at=paris_time(now),
        targets=tuple(target_views),
        outages=tuple(outage_view(r, names, now, base_url) for r in shown[:OUTAGE_ROWS]),
        outages_total=len(shown),
        periods=tuple(_period_view(p, now) for p in periods[:50]),
        maintenance=tuple(describe(w) + _scope(w.targets, names) for w in tracker.maintenance),
        rules=(
            f"Une panne est confirmée après {rules.confirm_after} vérification(s) en échec "
            f"consécutive(s) ; elle est close après {rules.recover_after} vérification(s) "
            f"réussie(s). Après un échec, le service est revérifié toutes les "
            f"{format_duration_fr(rules.recheck)}. Le début d'une panne est l'heure de la "
            "première vérification en échec, sa fin celle de la première vérification réussie."
        ),
    )


def _scope(target_ids: Iterable[str], names: Mapping[str, str]) -> str:
    ids = list(target_ids)
    if not ids:
        return ""
    return " — " + ", ".join(names.get(i, i) for i in ids)


# --- HTML -------------------------------------------------------------------------------------


_FOOTER = """Vigie observe en lecture seule : aucune démarche n'est effectuée, aucun compte
n'est créé. Chaque observation est conservée dans un registre signé et infalsifiable.
Heures affichées : heure de Paris. <a href="/metrics">Métriques Prometheus</a>.
Données ouvertes : <a href="/outages.atom">flux des pannes (Atom)</a>,
<a href="/outages.csv">CSV</a>, <a href="/datapackage.json">description</a>."""


def html_page(title: str, body: str, *, style: str = _STYLE, footer: str = _FOOTER) -> str:
    """A French HTML page: `title` (escaped), inline `style`, then `body` and `footer` (HTML)."""
    return f"""<!DOCTYPE html>
<html lang="fr">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><style>{style}</style>
<link rel="alternate" type="application/atom+xml" title="Pannes confirmées" href="/outages.atom">
</head>
<body>
{body}
<footer><p>{footer}</p></footer>
</body></html>
"""


def _vantage_text(view: StatusView) -> str:
    if view.vantage_online is False:
        since = f" depuis le {view.vantage_since}" if view.vantage_since else ""
        return (
            f"La connexion de la sonde est coupée{since} : les échecs actuels ne sont pas "
            "imputés aux services surveillés."
        )
    if view.vantage_online is None:
        return "La connexion de la sonde n'a pas encore été vérifiée."
    return "La connexion de la sonde fonctionne normalement."


def _state_cell(target: TargetView) -> str:
    css = _STATE_CSS.get(target.state, "na")
    label = escape(target.state_label)
    return f'<td class="{css}"><span aria-hidden="true">{_STATE_MARK[css]}</span> {label}</td>'


def _current_table(view: StatusView) -> str:
    rows = []
    for t in view.targets:
        maintenance = (
            f"<br><em>{escape(t.maintenance_now)} en cours</em>" if t.maintenance_now else ""
        )
        rows.append(
            f'<tr><th scope="row">{escape(t.name)}</th>{_state_cell(t)}'
            f"<td>{escape(t.since or '—')}</td><td>{escape(t.last_checked or '—')}</td>"
            f"<td>{escape(t.detail)}{maintenance}</td></tr>"
        )
    return (
        "<table>\n<caption>État de chaque service à la dernière vérification "
        "(heure de Paris)</caption>\n"
        '<thead><tr><th scope="col">Service</th><th scope="col">État</th>'
        '<th scope="col">En panne depuis</th><th scope="col">Dernière vérification</th>'
        '<th scope="col">Détail</th></tr></thead>\n<tbody>\n'
        + "\n".join(rows)
        + "\n</tbody></table>"
    )


def _legend() -> str:
    items = "".join(
        f'<li><span class="d-{level}" aria-hidden="true"></span>{escape(label.capitalize())}</li>'
        for level, label in _LEVEL_LABELS.items()
    )
    return f'<ul class="legend" aria-label="Légende des barres">{items}</ul>'


def _availability_section(view: StatusView) -> str:
    parts = [_legend()]
    for t in view.targets:
        figures = "".join(
            f"<li><strong>{escape(value)}</strong> sur {escape(label)}</li>"
            for label, value in t.availability
        )
        cells = "".join(
            f'<li class="d-{d.level}" title="{escape(d.text)}">'
            f'<span class="sr">{escape(d.text)}</span></li>'
            for d in t.days
        )
        n = len(t.days)
        parts.append(
            f'<section aria-labelledby="dispo-{escape(t.id)}">'
            f'<h3 id="dispo-{escape(t.id)}">{escape(t.name)}</h3>'
            f'<ul class="avail" aria-label="Disponibilité de {escape(t.name)}">{figures}</ul>'
            f'<ol class="bar" aria-label="Disponibilité jour par jour sur {n} jours, '
            f'{escape(t.name)}, du plus ancien au plus récent">{cells}</ol>'
            f'<p class="scale" aria-hidden="true"><span>il y a {n} jours</span>'
            "<span>aujourd'hui</span></p></section>"
        )
    return "\n".join(parts)


def _outages_table(view: StatusView) -> str:
    if not view.outages:
        return "<p>Aucune panne confirmée sur la période.</p>"
    rows = []
    for o in view.outages:
        maintenance = escape(o.maintenance) if o.maintenance else "—"
        css = ' class="ko"' if o.is_open else ""
        rows.append(
            f'<tr><th scope="row">{escape(o.target_name)}</th><td>{escape(o.kind_label)}</td>'
            f"<td>{escape(o.started)}</td><td{css}>{escape(o.ended)}</td>"
            f"<td>{escape(o.duration)}</td><td>{escape(o.causes)}</td><td>{maintenance}</td>"
            f'<td><a href="{escape(o.url)}">Détail<span class="sr"> de la panne '
            f"{escape(o.target_name)} du {escape(o.started)}</span></a><br>"
            f'<a href="{escape(o.url)}/attestation.zip">Attestation pour cette panne'
            f'<span class="sr"> ({escape(o.target_name)}, {escape(o.started)})</span></a></td></tr>'
        )
    more = ""
    if view.outages_total > len(view.outages):
        more = (
            f"<p>{len(view.outages)} pannes les plus récentes sur {view.outages_total}. "
            "La liste complète : commande <code>vigie outages</code>.</p>"
        )
    return (
        "<table>\n<caption>Pannes et lenteurs confirmées, les plus récentes d'abord "
        "(heure de Paris)</caption>\n"
        '<thead><tr><th scope="col">Service</th><th scope="col">Type</th>'
        '<th scope="col">Début</th><th scope="col">Fin</th><th scope="col">Durée</th>'
        '<th scope="col">Cause</th><th scope="col">Maintenance annoncée</th>'
        '<th scope="col">Preuves</th></tr></thead>\n<tbody>\n'
        + "\n".join(rows)
        + "\n</tbody></table>"
        + more
    )


def _periods_list(view: StatusView) -> str:
    if not view.periods:
        return "<p>Aucune interruption de la surveillance sur la période.</p>"
    items = "".join(
        f"<li>{escape(p.kind_label)} du {escape(p.started)} au {escape(p.ended)} "
        f"({escape(p.duration)})</li>"
        for p in view.periods
    )
    return (
        "<p>Pendant ces périodes, les services n'ont pas été observés : ce temps n'est compté "
        f"ni comme disponible ni comme en panne.</p><ul>{items}</ul>"
    )


def render_status_view(view: StatusView) -> str:
    """The whole status page as an HTML document."""
    operator = f" (opéré par {escape(view.operator)})" if view.operator else ""
    maintenance = (
        "<ul>" + "".join(f"<li>{escape(m)}</li>" for m in view.maintenance) + "</ul>"
        if view.maintenance
        else "<p>Aucune fenêtre de maintenance annoncée n'est configurée.</p>"
    )
    body = f"""<header><h1>Vigie — état des services surveillés</h1>
<p>Point d'observation <strong>{escape(view.vantage)}</strong>{operator}.
{escape(_vantage_text(view))} Page générée le {escape(view.generated_at)}.</p></header>
<main>
<h2>État actuel</h2>
{_current_table(view)}
<h2>Disponibilité</h2>
<p>Part du temps observé pendant laquelle le service n'était pas en panne confirmée.</p>
{_availability_section(view)}
<h2>Historique des pannes</h2>
{_outages_table(view)}
<h2>Périodes non surveillées</h2>
{_periods_list(view)}
<h2>Maintenances annoncées</h2>
<p>Les pannes survenues pendant une maintenance annoncée sont signalées comme telles, jamais
masquées.</p>
{maintenance}
<h2>Méthode</h2>
<p>{escape(view.rules)} Quand tous les sites de contrôle échouent en même temps, la panne est
celle de la sonde : elle n'est pas imputée aux services surveillés.</p>
</main>"""
    return html_page("Vigie — état des services", body)


def render_outage_page(
    record: OutageRecord, *, target_name: str, now: dt.datetime | None = None
) -> str:
    """The page of one outage (`/outages/<id>`), with a link to its evidence bundle."""
    now = now or dt.datetime.now(dt.UTC)
    view = outage_view(record, {record.target_id: target_name}, now)
    facts: list[tuple[str, str]] = [
        ("Service", view.target_name),
        ("Type", view.kind_label),
        ("Début", f"{view.started} (heure de Paris)"),
        ("Fin", view.ended if record.is_open else f"{view.ended} (heure de Paris)"),
        ("Durée", view.duration),
        (
            "Vérifications en échec" if record.kind == DOWN else "Vérifications lentes",
            str(record.failed_checks),
        ),
        ("Causes", view.causes or "—"),
        ("Maintenance annoncée", record.maintenance or "non"),
        ("Identifiant", record.id),
    ]
    if record.confirmed_at:
        facts.append(("Confirmée le", f"{paris_time(record.confirmed_at)} (heure de Paris)"))
    if record.first_seq is not None:
        facts.append(
            (
                "Observations au registre",
                f"n° {record.first_seq} à {record.last_seq}"
                + (f" (confirmation : {', '.join(map(str, record.seqs))})" if record.seqs else ""),
            )
        )
    dl = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts)
    artifacts = "".join(
        f"<li><code>{escape(sha)}</code> — {escape(kind)}</li>"
        for sha, kind in sorted(record.artifacts.items())
    )
    artifacts_html = (
        f"<h2>Captures</h2><p>{record.artifacts_total} capture(s) enregistrée(s)"
        f"{' (100 premières listées)' if record.artifacts_total > len(record.artifacts) else ''}"
        f", identifiées par leur empreinte SHA-256.</p><ul>{artifacts}</ul>"
        if record.artifacts
        else ""
    )
    title = f"{view.kind_label} — {view.target_name} — {view.started}"
    body = f"""<header><h1>{escape(title)}</h1>
<p><a href="/">Retour à l'état des services</a></p></header>
<main>
<h2>Résumé</h2>
<dl class="facts">{dl}</dl>
{artifacts_html}
<h2>Preuves</h2>
<p><a href="{escape(view.url)}/evidence.zip">Télécharger le dossier de preuves (zip)</a> :
observations, captures, preuves d'inclusion dans le registre signé, et un vérificateur
autonome.</p>
<p><a href="{escape(view.url)}/attestation.zip">Attestation pour cette panne</a> (PDF d'une ou
deux pages, avec son archive de preuves) ; pour une autre plage horaire :
<a href="/attestation">attestation d'observation</a>.</p>
</main>"""
    return html_page(f"Vigie — {title}", body)


def render_status_page(service: Service, *, now: dt.datetime | None = None) -> str:
    """The status page of a running service (uses `service.tracker` when it has one)."""
    settings = service.settings
    tracker = service_tracker(service)
    if tracker is None:  # service without outage tracking: show the last checks only
        tracker = OutageTracker(settings.outages, settings.maintenance, settings.targets)
        for status in service.status.values():
            if status.last is not None:
                tracker.observe(status.last)
    view = build_status_view(
        tracker,
        settings.targets,
        vantage=settings.vantage.name,
        operator=settings.vantage.operator,
        vantage_online=service.vantage_is_online,
        now=now,
    )
    from exporter.witnessing import cosigned_note  # issue 18: "cosigné par N témoins"

    return render_status_view(view).replace("<footer>", cosigned_note(service) + "<footer>", 1)


def service_tracker(service: Service) -> OutageTracker | None:
    """The tracker of a running service: `service.tracker`, or `service.outages.tracker`."""
    tracker = getattr(service, "tracker", None)
    if tracker is None:
        tracker = getattr(getattr(service, "outages", None), "tracker", None)
    return tracker if isinstance(tracker, OutageTracker) else None


def render_outage_by_id(
    service: Service, outage_id: str, *, now: dt.datetime | None = None
) -> str | None:
    """The page of outage `outage_id` of a running service, or None when there is none."""
    tracker = service_tracker(service)
    record = tracker.record(outage_id) if tracker is not None else None
    if record is None:
        return None
    names = {t.id: t.display_name for t in service.settings.targets}
    return render_outage_page(
        record, target_name=names.get(record.target_id, record.target_id), now=now
    )
