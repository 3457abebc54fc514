"""The French status page at `/` and the outage pages: server-rendered HTML, no JavaScript needed.

It shows what the tracker knows; it never changes state and never embeds untrusted markup
(every value from configuration or observations is escaped).

Why it is long: the status page, the outage list and the outage detail page share their French
wording, layout and 90-day bars, rendered without a template engine.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import structlog

from config.french import format_duration_fr, paris_time_fr, percent_fr, plural_fr, span_fr
from config.maintenance import active_label, describe
from config.vocabulary import PARIS, Outcome
from evidence.outages.availability import Availability
from evidence.outages.tracker import (
    DOWN,
    JOURNEY_DRIFT,
    CheckSummary,
    OutageRecord,
    OutageTracker,
    Period,
    cause_label_fr,
)

if TYPE_CHECKING:
    from config.settings import Settings
    from config.targets import Target
    from exporter.service import Service

log = structlog.get_logger("vigie.statuspage")

__all__ = [
    "OUTCOME_LABELS",
    "STATE_LABELS",
    "DayView",
    "OutageView",
    "PeriodView",
    "StatusView",
    "TargetView",
    "build_status_view",
    "capture_times",
    "cards_table",
    "causes_fr",
    "html_page",
    "key_note",
    "outage_view",
    "render_not_found",
    "render_outage_by_id",
    "render_outage_page",
    "render_status_page",
    "render_status_view",
    "service_tracker",
]

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
    Outcome.JOURNEY_DRIFT: "Parcours à revoir : la page a changé",
}

STATE_LABELS = {
    "up": "Fonctionne",
    "failing": "Erreurs en cours de vérification",
    "down": "En panne",
    "recovering": "Rétablissement en cours",
    "degraded": "Ralenti",
    "unknown": "Pas encore vérifié",
    "drift": "Surveillance du parcours à revoir",  # journey drift: a gap, not an outage
}
_STATE_CSS = {
    "up": "ok",
    "failing": "warn",
    "down": "ko",
    "recovering": "warn",
    "degraded": "warn",
    "unknown": "na",
    "drift": "na",
}
_STATE_MARK = {"ok": "✔", "warn": "!", "ko": "✖", "na": "\N{EN DASH}"}
_KIND_LABELS = {"down": "Panne", "degraded": "Lenteur"}
_LEVEL_LABELS = {
    "ok": "aucune panne",
    "minor": "panne courte",
    "major": "panne importante",
    "slow": "lenteurs",
    "none": "pas de mesure",
}
MAJOR_BELOW = 0.99  # a day with an outage is "major" below this share of its observed time
# What each colour of the bar means, as the legend says it (thresholds from `_day_level`).
_LEVEL_MEANINGS = {
    "ok": "le service a fonctionné pendant tout le temps observé",
    "minor": "panne confirmée, mais service disponible au moins 99 % du temps observé "
    "(moins de 15 min sur une journée entière)",
    "major": "panne confirmée, service disponible moins de 99 % du temps observé "
    "(15 min ou plus sur une journée entière)",
    "slow": "service lent, sans panne confirmée",
    "none": "Vigie n'a pas observé le service ce jour-là",
}

# Colours: text at least 4.5:1 and bar cells at least 3:1 against the white background.
_STYLE = """
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:62rem;padding:1rem;color:#1a1a1a;
background:#fff;line-height:1.5}
h1{font-size:1.6rem}h2{font-size:1.3rem;margin-top:2rem}h3{font-size:1.1rem;margin-bottom:.3rem}
table{border-collapse:collapse;width:100%}caption{text-align:left;color:#444;padding:.3rem 0}
th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #ccc;vertical-align:top;
overflow-wrap:break-word}
code{overflow-wrap:anywhere}
a{color:#0b4ea2}
.ok{color:#0a6b2d;font-weight:bold}.ko{color:#b00020;font-weight:bold}
.warn{color:#8a4b00;font-weight:bold}.na{color:#555555}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.avail{display:flex;flex-wrap:wrap;gap:.3rem 1.5rem;margin:.2rem 0;padding:0;list-style:none}
.bar{display:flex;gap:1px;margin:.3rem 0 .2rem;padding:0;list-style:none;height:2rem}
.bar li{flex:1;border-radius:2px}
.d-ok{background:#1e7b34}.d-minor{background:#b35c00}.d-major{background:#b00020}
.d-slow{background:#7a6a00}.d-none{background:#fff;border:1px solid #767676}
.legend{padding:0;list-style:none;font-size:.9rem}.legend li{margin:.2rem 0}
.legend span{display:inline-block;width:.9rem;height:.9rem;margin-right:.3rem;
vertical-align:middle;border-radius:2px}
.scale{display:flex;justify-content:space-between;font-size:.85rem;color:#444}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem}
dl.facts dt{font-weight:bold}dl.facts dd{margin:0;min-width:0;overflow-wrap:anywhere}
@media (max-width:40rem){
dl.facts{display:block}dl.facts dd{margin:0 0 .5rem}
table.cards thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
table.cards,table.cards caption,table.cards tbody,table.cards tr,table.cards th,table.cards td{
display:block}
table.cards tr{border-bottom:1px solid #999;padding:.5rem 0}
table.cards th,table.cards td{border:0;padding:.1rem 0}
table.cards td[data-label]::before{content:attr(data-label) " : ";font-weight:bold;color:#444}
}
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
    review: str = ""  # French review state: "constatée et vérifiée par …", "écartée : …"


@dataclasses.dataclass(frozen=True, slots=True)
class PeriodView:
    """A period Vigie could not see (not running, or its own network down)."""

    kind_label: str
    started: str
    ended: str | None  # None while it goes on
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
    days: int = BAR_DAYS  # length of the bars and of the outage history shown


def _day_level(avail: Availability) -> str:
    ratio = avail.ratio
    if ratio is None:
        return "none"
    if avail.down_s > 0:
        return "major" if ratio < MAJOR_BELOW else "minor"
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
        started=paris_time_fr(record.started_at),
        ended="en cours" if record.ended_at is None else paris_time_fr(record.ended_at),
        duration=format_duration_fr(record.duration(now))
        + (" (en cours)" if record.is_open else ""),
        causes=causes_fr(record.causes),
        failed_checks=record.failed_checks,
        maintenance=record.maintenance,
        url=f"{base_url}/outages/{quote(record.id)}",
        is_open=record.is_open,
        review="" if record.review is None else record.review.text_fr,
    )


def _state_label(state: str, last: CheckSummary | None) -> str:
    """The state in words; "unknown" after checks says why no state could be told yet."""
    if state == "unknown" and last is not None and last.outcome == Outcome.VANTAGE_OFFLINE:
        # Only checks made while the probe's own network was down: they say nothing of it.
        return "Non vérifiable : connexion de la sonde coupée"
    return STATE_LABELS.get(state, state)


def _detail(last: CheckSummary | None) -> str:
    if last is None or last.success:
        return ""
    label = OUTCOME_LABELS.get(Outcome(last.outcome), last.outcome)
    status = f" (HTTP {last.http_status})" if last.http_status else ""
    return f"{label}{status}"


def _period_view(period: Period, now: dt.datetime, names: Mapping[str, str]) -> PeriodView:
    label = "Vigie arrêtée" if period.kind == "unmonitored" else "Connexion de la sonde coupée"
    if period.kind == JOURNEY_DRIFT and period.target_id is not None:
        name = names.get(period.target_id, period.target_id)
        label = f"Surveillance du parcours « {name} » à revoir (la page a changé)"
    return PeriodView(
        kind_label=label,
        started=paris_time_fr(period.start),
        ended=None if period.end is None else paris_time_fr(period.end),
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
        drift = tracker.drift_since(target.id)
        if drift is not None and state not in {"down", "recovering"}:
            state = "drift"  # the journey is stale: Vigie cannot see the site, nor blame it
        target_views.append(
            TargetView(
                id=target.id,
                name=target.display_name,
                state=state,
                state_label=_state_label(state, last),
                since=paris_time_fr(current.started_at) if current else None,
                last_checked=paris_time_fr(last.started_at) if last else None,
                detail=_detail(last)
                + (f" depuis le {paris_time_fr(drift)}" if drift and state == "drift" else ""),
                availability=availability,
                days=bar,
                maintenance_now=active_label(tracker.maintenance, now, target.id),
            )
        )
    horizon = now - dt.timedelta(days=days)
    shown = [r for r in reversed(records) if r.is_open or (r.end is not None and r.end >= horizon)]
    periods = [
        p
        for p in (*tracker.gaps(), *tracker.vantage_periods(), *tracker.drift_periods())
        if p.end is None or dt.datetime.fromisoformat(p.end) >= horizon
    ]
    periods.sort(key=lambda p: p.start, reverse=True)
    online = tracker.vantage_online if tracker.vantage_online is not None else vantage_online
    offline_since = None
    vantage_periods = tracker.vantage_periods()
    if online is False and vantage_periods and vantage_periods[-1].end is None:
        offline_since = paris_time_fr(vantage_periods[-1].start)
    rules = tracker.rules
    return StatusView(
        vantage=vantage,
        operator=operator,
        vantage_online=online,
        vantage_since=offline_since,
        generated_at=paris_time_fr(now),
        targets=tuple(target_views),
        outages=tuple(outage_view(r, names, now, base_url) for r in shown[:OUTAGE_ROWS]),
        outages_total=len(shown),
        periods=tuple(_period_view(p, now, names) for p in periods[:50]),
        maintenance=tuple(describe(w) + _scope(w.targets, names) for w in tracker.maintenance),
        days=days,
        rules=(
            "Une panne est confirmée après "
            f"{plural_fr(rules.confirm_after, 'vérification en échec', 'vérifications en échec')}"
            f"{' consécutives' if rules.confirm_after > 1 else ''} ; elle est close après "
            f"{plural_fr(rules.recover_after, 'vérification réussie')}"
            f"{' consécutives' if rules.recover_after > 1 else ''}. Après un échec, le service "
            f"est revérifié au bout de {format_duration_fr(rules.recheck)} au lieu d'attendre "
            "l'intervalle habituel. Le début d'une "
            "panne est l'heure de la première vérification en échec, sa fin celle de la "
            "première vérification réussie."
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


def cards_table(
    caption: str, headers: Sequence[str], rows: Iterable[Sequence[tuple[str, str]]]
) -> str:
    """A table that turns into one card per row on a narrow screen (see `.cards` in the style).

    Each row is a sequence of ``(cell HTML, class)``; its first cell is the row header. Every
    other cell carries its column name in `data-label`, which the narrow layout shows before it.
    """
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in headers)
    lines = []
    for row in rows:
        (first, first_css), *rest = row
        cells = [f'<th scope="row"{_class(first_css)}>{first}</th>']
        cells += [
            f'<td data-label="{escape(h)}"{_class(css)}>{html}</td>'
            for h, (html, css) in zip(headers[1:], rest, strict=True)
        ]
        lines.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<table class="cards">\n<caption>{escape(caption)}</caption>\n'
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(lines) + "\n</tbody></table>"
    )


def _class(css: str) -> str:
    return f' class="{css}"' if css else ""


def _state_html(target: TargetView) -> tuple[str, str]:
    css = _STATE_CSS.get(target.state, "na")
    mark = f'<span aria-hidden="true">{_STATE_MARK[css]}</span>'
    return f"{mark}&nbsp;{escape(target.state_label)}", css


def _current_table(view: StatusView) -> str:
    if not view.targets:
        return (
            "<p>Aucun service n'est surveillé : la configuration ne contient aucune cible "
            "(<code>targets</code> dans <code>vigie.yaml</code>).</p>"
        )
    rows = []
    for t in view.targets:
        maintenance = (
            f"<br><em>{escape(t.maintenance_now)} en cours</em>" if t.maintenance_now else ""
        )
        rows.append(
            (
                (escape(t.name), ""),
                _state_html(t),
                (escape(t.since or "—"), ""),
                (escape(t.last_checked or "pas encore"), ""),
                (escape(t.detail or "—") + maintenance, ""),
            )
        )
    return cards_table(
        "État de chaque service à la dernière vérification (heure de Paris)",
        ("Service", "État", "En panne depuis", "Dernière vérification", "Erreur constatée"),
        rows,
    )


def _legend() -> str:
    items = "".join(
        f'<li><span class="d-{level}" aria-hidden="true"></span>'
        f"<strong>{escape(label.capitalize())}</strong> : {escape(_LEVEL_MEANINGS[level])}</li>"
        for level, label in _LEVEL_LABELS.items()
    )
    return (
        "<p>Chaque barre représente une journée (heure de Paris), la plus récente à droite.</p>"
        f'<ul class="legend" aria-label="Légende des barres">{items}</ul>'
    )


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


def _evidence_links(o: OutageView) -> str:
    """The links of one outage: its page, its evidence bundle as the README promises, and its
    attestation."""
    about = f'<span class="sr"> de la panne {escape(o.target_name)} du {escape(o.started)}</span>'
    return (
        f'<a href="{escape(o.url)}">Voir la panne{about}</a><br>'
        f'<a href="{escape(o.url)}/evidence.zip">Télécharger le dossier de preuves{about}</a><br>'
        f'<a href="{escape(o.url)}/attestation.zip">Attestation pour cette panne'
        f'<span class="sr"> ({escape(o.target_name)}, {escape(o.started)})</span></a>'
    )


def _outages_table(view: StatusView) -> str:
    if not view.outages:
        return f"<p>Aucune panne ni lenteur confirmée sur les {view.days} derniers jours.</p>"
    rows = [
        (
            (escape(o.target_name), ""),
            (escape(o.kind_label), ""),
            (escape(o.started), ""),
            (escape(o.ended), "ko" if o.is_open else ""),
            (escape(o.duration), ""),
            (escape(o.causes or "—") + _review_note(o), ""),
            (escape(o.maintenance) if o.maintenance else "non", ""),
            (_evidence_links(o), ""),
        )
        for o in view.outages
    ]
    more = ""
    if view.outages_total > len(view.outages):
        more = (
            f"<p>Les {len(view.outages)} pannes les plus récentes sur {view.outages_total}. "
            "La liste complète : commande <code>vigie outages</code>.</p>"
        )
    return (
        cards_table(
            "Pannes et lenteurs confirmées, les plus récentes d'abord (heure de Paris)",
            (
                "Service",
                "Type",
                "Début",
                "Fin",
                "Durée",
                "Cause",
                "Maintenance annoncée",
                "Détail et preuves",
            ),
            rows,
        )
        + more
    )


def _review_note(outage: OutageView) -> str:
    if not outage.review:
        return ""
    return f"<br><em>Vérification : {escape(outage.review)}</em>"


def _periods_list(view: StatusView) -> str:
    if not view.periods:
        return "<p>Aucune interruption de la surveillance sur la période.</p>"
    items = "".join(
        f"<li>{escape(p.kind_label)} {escape(span_fr(p.started, p.ended))} "
        f"({'en cours, ' if p.ended is None else ''}{escape(p.duration)})</li>"
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
celle de la sonde : elle n'est pas imputée aux services surveillés. Quand un parcours ne
trouve plus son chemin sur une page qui s'affiche normalement mais dont la structure a changé
(nouvelle présentation du site), la surveillance de ce parcours est « à revoir » : ce temps n'est
compté ni comme disponible ni comme en panne, et aucune panne n'est ouverte.</p>
</main>"""
    return html_page("Vigie — état des services", body)


# kind -> (link text, singular, plural)
_ARTIFACT_LABELS = {
    "screenshot": ("Capture d'écran", "capture d'écran", "captures d'écran"),
    "html": ("Page HTML", "page HTML", "pages HTML"),
    "warc": ("Archive WARC", "archive WARC", "archives WARC"),
    "har": ("Journal réseau (HAR)", "journal réseau (HAR)", "journaux réseau (HAR)"),
    "text": ("Texte", "texte", "textes"),
    "json": ("Données JSON", "fichier JSON", "fichiers JSON"),
}


def causes_fr(causes: Mapping[str, int]) -> str:
    """Causes in words, most frequent first: ``erreur HTTP 503 (10 vérifications)``."""
    ordered = sorted(causes.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{cause_label_fr(k)} ({plural_fr(n, 'vérification')})" for k, n in ordered)


def _seq_list(seqs: Sequence[int]) -> str:
    return ", ".join(f"n° {s}" for s in seqs)


def _during(record: OutageRecord) -> str:
    return "la panne" if record.kind == DOWN else "la période de lenteur"


def _bounds_text(record: OutageRecord) -> str:
    if record.kind == DOWN:
        return (
            "Le début est l'heure de la première vérification en échec, la fin celle de la "
            "première vérification réussie."
        )
    return (
        "Le début est l'heure de la première vérification trop lente, la fin celle de la "
        "première vérification de nouveau rapide."
    )


def _ledger_text(record: OutageRecord) -> str:
    """Which ledger entries an outage rests on, told apart: confirmation and recovery."""
    parts = []
    if record.first_seq is not None:
        parts.append(
            f"Les observations de ce service pendant {_during(record)} figurent parmi les entrées "
            f"n° {record.first_seq} à n° {record.last_seq} du registre signé."
        )
    confirm = [s for s in record.seqs if s in set(record.confirm_seqs)]
    recovery = [s for s in record.seqs if s not in set(record.confirm_seqs)]
    if confirm:
        parts.append(f"Confirmée par les observations {_seq_list(confirm)}.")
    if recovery and not record.is_open:
        ended = "Rétablissement constaté" if record.kind == DOWN else "Fin constatée"
        parts.append(f"{ended} par les observations {_seq_list(recovery)}.")
    return " ".join(parts)


_CAPTURE_TIMES: dict[tuple[str, str, int, int], dict[str, dt.datetime]] = {}
_CAPTURE_TIMES_KEPT = 64  # outages whose capture times are kept in memory


def capture_times(settings: Settings, record: OutageRecord) -> dict[str, dt.datetime]:
    """When each listed capture of `record` was taken: the start of the check that recorded
    it, read from the ledger entries the outage names (`first_seq`..`last_seq`, read-only).

    {} when the record names no range or the ledger cannot be read (the page then says the
    time is unknown). Kept per outage and range: an open outage's range grows, a closed one's
    never changes, so its entries are read once.
    """
    if record.first_seq is None or record.last_seq is None or not record.artifacts:
        return {}
    key = (settings.ledger.url, record.id, record.first_seq, record.last_seq)
    known = _CAPTURE_TIMES.get(key)
    if known is not None:
        return known
    from evidence.ledger.entries import LedgerError
    from evidence.ledger.opening import open_evidence

    wanted = set(record.artifacts)
    marker = f'"target_id":"{record.target_id}"'.encode()
    times: dict[str, dt.datetime] = {}
    try:
        with open_evidence(settings).ledger as ledger:
            for row in ledger.iter_rows(record.first_seq, record.last_seq + 1):
                if row.type != "observation" or marker not in row.body:
                    continue
                body = json.loads(row.body)
                for sha in wanted.intersection(body.get("artifacts") or ()):
                    times.setdefault(sha, _parse_utc(str(body["started_at"])))
    except (LedgerError, OSError, KeyError, ValueError) as exc:
        log.warning("capture_times_unreadable", outage=record.id, error=str(exc))
        return {}
    while len(_CAPTURE_TIMES) >= _CAPTURE_TIMES_KEPT:
        _CAPTURE_TIMES.pop(next(iter(_CAPTURE_TIMES)))
    _CAPTURE_TIMES[key] = times
    return times


def _parse_utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def _artifacts_section(
    record: OutageRecord, url: str, taken: Mapping[str, dt.datetime] | None = None
) -> str:
    """The captures of the failed checks, in the order taken: links that open them, the time
    of the check that recorded each (Paris) and their SHA-256."""
    if not record.artifacts:
        return ""
    taken = taken or {}
    counts: dict[str, int] = {}
    rows = []
    never = dt.datetime.max.replace(tzinfo=dt.UTC)
    ordered = sorted(record.artifacts.items(), key=lambda item: taken.get(item[0], never))
    for sha, kind in ordered:
        counts[kind] = counts.get(kind, 0) + 1
        label = _ARTIFACT_LABELS.get(kind, (kind, kind, kind))[0]
        link = f'<a href="{escape(url)}/captures/{escape(sha)}">{escape(label)} {counts[kind]}</a>'
        at = taken.get(sha)
        when = escape(paris_time_fr(at)) if at is not None else "heure inconnue"
        rows.append(((link, ""), (when, ""), (f"<code>{escape(sha)}</code>", "")))
    listed = ", ".join(
        plural_fr(n, *_ARTIFACT_LABELS.get(kind, (kind, kind, kind))[1:])
        for kind, n in counts.items()
    )
    total = plural_fr(record.artifacts_total, "fichier enregistré", "fichiers enregistrés")
    shown = len(record.artifacts)
    first = f" ; les {shown} premiers sont listés ici" if record.artifacts_total > shown else ""
    return (
        f"<h2>Captures des vérifications en échec</h2><p>{total} pendant {_during(record)}"
        f"{first} : "
        f"{escape(listed)}. Chaque lien ouvre le fichier tel qu'il a été enregistré. "
        "L'empreinte SHA-256 identifie ce fichier : le dossier de preuves le contient sous "
        "<code>artifacts/</code>, et son vérificateur contrôle chaque empreinte."
        + (
            " Une archive WARC (format d'archivage du web, norme ISO 28500) garde la page et "
            "les échanges avec le serveur ; elle s'ouvre avec un lecteur WARC comme "
            "ReplayWeb.page."
            if "warc" in counts
            else ""
        )
        + "</p>"
        + cards_table(
            "Fichiers enregistrés, dans l'ordre où ils ont été pris (heure de Paris)",
            ("Fichier", "Vérification du", "Empreinte SHA-256"),
            rows,
        )
    )


def render_outage_page(
    record: OutageRecord,
    *,
    target_name: str,
    now: dt.datetime | None = None,
    review_online: bool = True,
    captured: Mapping[str, dt.datetime] | None = None,
) -> str:
    """The page of one outage (`/outages/<id>`), with its captures and evidence bundle.

    `review_online`: the review form is offered (it needs `evidence_auth`); otherwise the page
    gives the command instead of a link that could only answer 403. `captured`: sha256 -> time
    of the check that took each capture (`capture_times`).
    """
    now = now or dt.datetime.now(dt.UTC)
    view = outage_view(record, {record.target_id: target_name}, now)
    checks = "Vérifications en échec" if record.kind == DOWN else "Vérifications lentes"
    facts: list[tuple[str, str]] = [
        ("Service", view.target_name),
        ("Type", view.kind_label),
        ("Début", f"{view.started} (heure de Paris)"),
        ("Fin", view.ended if record.is_open else f"{view.ended} (heure de Paris)"),
        ("Durée", view.duration),
        (checks, str(record.failed_checks)),
        ("Causes", causes_fr(record.causes) or "—"),
        ("Maintenance annoncée", record.maintenance or "non"),
        ("Vérification", view.review or "pas encore vérifiée par une personne"),
    ]
    if record.confirmed_at:
        facts.append(("Confirmée le", f"{paris_time_fr(record.confirmed_at)} (heure de Paris)"))
    facts.append(("Identifiant", record.id))
    dl = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts)
    ledger = _ledger_text(record)
    ledger_html = f"<h2>Registre de preuves</h2><p>{escape(ledger)}</p>" if ledger else ""
    title = f"{view.kind_label} — {view.target_name} — {view.started}"
    body = f"""<header><h1>{escape(title)}</h1>
<p><a href="/">Retour à l'état des services</a></p></header>
<main>
<h2>Résumé</h2>
<dl class="facts">{dl}</dl>
<p>{_bounds_text(record)}</p>
{ledger_html}
{_artifacts_section(record, view.url, captured)}
<h2>Dossier de preuves</h2>
<p><a href="{escape(view.url)}/evidence.zip">Télécharger le dossier de preuves</a> (fichier zip) :
rapport PDF en français, observations, captures, preuves d'inclusion dans le registre signé, et
un vérificateur autonome.</p>
<p><a href="{escape(view.url)}/attestation.zip">Attestation pour cette panne</a> (PDF d'une ou
deux pages, avec son archive de preuves) ; pour une autre plage horaire :
<a href="/attestation">attestation d'observation</a>.</p>
<h2>Vérification par une personne</h2>
<p>{escape(view.review or "Pas encore vérifiée.")} {_review_how(record.id, view.url, review_online)}
</p>
</main>"""
    return html_page(f"Vigie — {title}", body)


def _review_how(outage_id: str, url: str, online: bool) -> str:
    if online:
        return (
            f'<a href="{escape(url)}/review">Vérifier cette panne</a> (accès protégé par le mot '
            "de passe des preuves ; la vérification est signée et ajoutée au registre, rien "
            "n'est modifié)."
        )
    return (
        "Pour la vérifier, sur le serveur de Vigie : <code>vigie review "
        f"{escape(outage_id)} --verdict confirmed --by NOM --reason MOTIF</code> (ou "
        "<code>--verdict dismissed</code>). La vérification est signée et ajoutée au registre, "
        "rien n'est modifié. La vérification depuis cette page demande le réglage "
        "<code>evidence_auth</code>."
    )


def render_not_found(outage_id: str) -> str:
    """The page of an outage id that names no outage (a mistyped or truncated link)."""
    body = f"""<header><h1>Panne introuvable</h1></header>
<main>
<p>Aucune panne ne porte l'identifiant <code>{escape(outage_id)}</code> sur ce point
d'observation. Le lien a peut-être été coupé ou recopié avec une erreur.</p>
<p><a href="/">Voir l'état des services et la liste des pannes</a></p>
</main>"""
    return html_page("Vigie — panne introuvable", body)


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

    page = render_status_view(view).replace("<footer>", cosigned_note(service) + "<footer>", 1)
    return page.replace("</footer>", key_note(settings.signing.key) + "</footer>", 1)


def key_note(key_path: Path) -> str:
    """The footer's paragraph with the vantage key's fingerprint ("" when there is no key)."""
    try:
        stat = key_path.stat()
    except OSError:
        return ""
    fingerprint = _fingerprint(str(key_path), stat.st_mtime_ns, stat.st_size)
    if fingerprint is None:
        return ""
    return (
        "<p>Empreinte de la clé qui signe le registre de ce point d'observation (SHA-256) : "
        f'<code class="fingerprint">{escape(fingerprint)}</code>. Un rapport ou une archive de '
        "preuves n'émane de ce point d'observation que s'il indique cette même empreinte : "
        "comparez-les, car une archive fabriquée par quelqu'un d'autre peut se vérifier avec "
        "sa propre clé.</p>"
    )


@functools.lru_cache(maxsize=4)
def _fingerprint(path: str, _mtime_ns: int, _size: int) -> str | None:
    """The fingerprint of the key at `path` (read again only when the file changes)."""
    from evidence.ledger.signing import (
        SigningKeyError,
        key_fingerprint,
        load_public_key,
        raw_public_key,
    )

    try:
        return key_fingerprint(raw_public_key(load_public_key(Path(path))))
    except SigningKeyError as exc:
        log.warning("status_page_key_unreadable", path=path, error=str(exc))
        return None


def service_tracker(service: Service) -> OutageTracker | None:
    """The tracker of a running service: `service.tracker`, or `service.outages.tracker`."""
    tracker = getattr(service, "tracker", None)
    if tracker is None:
        tracker = getattr(getattr(service, "outages", None), "tracker", None)
    return tracker if isinstance(tracker, OutageTracker) else None


def render_outage_by_id(
    service: Service,
    outage_id: str,
    *,
    now: dt.datetime | None = None,
    captured: Mapping[str, dt.datetime] | None = None,
) -> str | None:
    """The page of outage `outage_id` of a running service, or None when there is none.

    `captured`: the capture times (`capture_times`), read here from the ledger when None."""
    tracker = service_tracker(service)
    record = tracker.record(outage_id) if tracker is not None else None
    if record is None:
        return None
    names = {t.id: t.display_name for t in service.settings.targets}
    return render_outage_page(
        record,
        target_name=names.get(record.target_id, record.target_id),
        now=now,
        review_online=service.settings.evidence_auth is not None,
        captured=capture_times(service.settings, record) if captured is None else captured,
    )
