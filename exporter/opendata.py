"""Open data: the outage history as CSV, JSON, an Atom feed, a Frictionless data package, a
monthly availability table and an SVG badge per target, for the service and `vigie central`.

Everything here is read-only and built from facts already recorded (outage records, the
availability index); nothing is written, and nothing is shown that the status page hides.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import io
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

from config.french import percent_fr
from evidence.outages.availability import PARIS

if TYPE_CHECKING:
    from aiohttp import web

    from config.settings import OpenDataSettings
    from evidence.outages.availability import AvailabilityIndex
    from evidence.outages.tracker import OutageRecord
    from exporter.service import Service

__all__ = [
    "MONTHLY_FIELDS",
    "OUTAGE_FIELDS",
    "MonthRow",
    "OpenData",
    "OpenOutage",
    "add_open_data_routes",
    "badge_svg",
    "base_url",
    "cached_response",
    "datapackage",
    "monthly_csv",
    "monthly_rows",
    "outages_atom",
    "outages_csv",
    "outages_json",
    "record_outage",
    "service_open_data",
]

CACHE_SECONDS = 60
BADGE_DAYS = 30

# (name, Frictionless type, French description); the CSV columns, in order.
OUTAGE_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("id", "string", "Identifiant de la panne (stable ; celui du registre de preuves)"),
    ("target_id", "string", "Identifiant du service observé"),
    ("target_name", "string", "Nom du service observé"),
    ("kind", "string", "down : panne confirmée ; degraded : lenteur confirmée"),
    ("started_at", "datetime", "Début (UTC, RFC 3339) : première vérification en échec"),
    ("ended_at", "datetime", "Fin (UTC) : première vérification réussie ; vide si en cours"),
    ("duration_s", "number", "Durée en secondes ; vide si en cours"),
    ("ongoing", "boolean", "true si la panne est en cours"),
    ("failed_checks", "integer", "Vérifications en échec pendant la panne"),
    ("causes", "string", "Causes observées, en français, avec leur nombre"),
    ("maintenance", "string", "Fenêtre de maintenance annoncée chevauchée, s'il y en a une"),
    ("vantages", "string", "Points d'observation qui l'ont confirmée (séparés par des espaces)"),
    ("confirmed_by", "integer", "Nombre de points d'observation qui l'ont confirmée"),
    ("evidence_url", "string", "Adresse de l'archive de preuves (vide si non publiée)"),
    ("review", "string", "Vérification par une personne (constatée / écartée), vide si aucune"),
)
MONTHLY_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("month", "yearmonth", "Mois civil (heure de Paris)"),
    ("target_id", "string", "Identifiant du service observé"),
    ("target_name", "string", "Nom du service observé"),
    ("monitored_s", "number", "Secondes observées (Vigie en marche et son réseau en ligne)"),
    ("down_s", "number", "Secondes de panne confirmée, dans le temps observé"),
    ("degraded_s", "number", "Secondes de lenteur confirmée, dans le temps observé"),
    ("unmonitored_s", "number", "Secondes non observées : comptées ni en marche ni en panne"),
    ("availability", "number", "Part du temps observé sans panne (0 à 1) ; vide sans mesure"),
)


@dataclasses.dataclass(frozen=True, slots=True)
class OpenOutage:
    """One outage as published: what any reader may count and compare."""

    id: str
    target_id: str
    target_name: str
    kind: str
    start: dt.datetime
    end: dt.datetime | None
    failed_checks: int
    causes: str
    maintenance: str
    vantages: tuple[str, ...]
    evidence_path: str  # relative to the base URL ("" when there is none)
    page_path: str  # the outage's own page (or the status page)
    references: tuple[str, ...] = ()  # central: "vantage : outage id" of each sighting
    evidence_urls: tuple[str, ...] = ()  # central: absolute, on each vantage's own service
    review: str = ""  # a person's review, in French ("" when none); central: per vantage

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end (None while open)."""
        return None if self.end is None else (self.end - self.start).total_seconds()

    @property
    def updated(self) -> dt.datetime:
        """When this record last changed: its end, else its start."""
        return self.end or self.start


@dataclasses.dataclass(frozen=True, slots=True)
class MonthRow:
    """Availability of one target over one calendar month (Paris time)."""

    month: str  # YYYY-MM
    target_id: str
    target_name: str
    monitored_s: float
    down_s: float
    degraded_s: float
    unmonitored_s: float
    availability: float | None
    # `vigie central` only: "" on the service; "*" for the row merged across vantages
    vantage: str = ""
    corroborable_s: float | None = None
    uncorroborated_down_s: float | None = None
    availability_low: float | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class OpenData:
    """Everything the open-data endpoints publish, built once per request."""

    title: str
    publisher: str  # the operator (service) or the central title
    source: str  # vantage name, or "central"
    base_url: str  # without a trailing slash
    generated_at: dt.datetime
    licence: OpenDataSettings
    outages: tuple[OpenOutage, ...]  # oldest first
    targets: Mapping[str, str]  # id -> name
    monthly: tuple[MonthRow, ...] | None = None  # None: not published
    availability: Mapping[str, float | None] = dataclasses.field(default_factory=dict)
    monthly_fields: tuple[tuple[str, str, str], ...] = MONTHLY_FIELDS  # its columns
    monthly_description: str = "Le temps non observé n'est compté ni disponible ni en panne."

    @property
    def updated(self) -> dt.datetime:
        """The newest fact published (the feed's `updated`, the Last-Modified of outages)."""
        moments = [o.updated for o in self.outages]
        return max(moments) if moments else dt.datetime(2000, 1, 1, tzinfo=dt.UTC)

    def url(self, path: str) -> str:
        """An absolute URL for `path` ("" stays "")."""
        return f"{self.base_url}{path}" if path else ""

    def evidence(self, outage: OpenOutage) -> list[str]:
        """Absolute URLs of the outage's evidence bundles (one per vantage on central)."""
        own = [self.url(outage.evidence_path)] if outage.evidence_path else []
        return own + list(outage.evidence_urls)


def _utc(moment: dt.datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def record_outage(
    record: OutageRecord, target_name: str, vantages: Sequence[str], *, evidence: bool = True
) -> OpenOutage:
    """An outage record of one vantage as published by its service."""
    from urllib.parse import quote

    page = f"/outages/{quote(record.id, safe='')}"
    return OpenOutage(
        id=record.id,
        target_id=record.target_id,
        target_name=target_name,
        kind=record.kind,
        start=record.start,
        end=record.end,
        failed_checks=record.failed_checks,
        causes=record.causes_text_fr,
        maintenance=record.maintenance or "",
        vantages=tuple(vantages),
        evidence_path=f"{page}/evidence.zip" if evidence else "",
        page_path=page,
        review="" if record.review is None else record.review.text_fr,
    )


# --- tables -----------------------------------------------------------------------------------


def _outage_row(data: OpenData, outage: OpenOutage) -> dict[str, Any]:
    duration = outage.duration_s
    return {
        "id": outage.id,
        "target_id": outage.target_id,
        "target_name": outage.target_name,
        "kind": outage.kind,
        "started_at": _utc(outage.start),
        "ended_at": _utc(outage.end) or None,
        "duration_s": None if duration is None else round(duration, 3),
        "ongoing": outage.end is None,
        "failed_checks": outage.failed_checks,
        "causes": outage.causes,
        "maintenance": outage.maintenance or None,
        "vantages": " ".join(outage.vantages),
        "confirmed_by": len(outage.vantages),
        "evidence_url": " ".join(data.evidence(outage)) or None,
        "review": outage.review or None,
    }


def _csv(header: Iterable[str], rows: Iterable[Mapping[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(header), lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        cells = {}
        for key, value in row.items():
            if value is None:
                cells[key] = ""
            elif isinstance(value, bool):
                cells[key] = "true" if value else "false"
            else:
                cells[key] = value
        writer.writerow(cells)
    return buffer.getvalue().encode("utf-8")


def outages_csv(data: OpenData) -> bytes:
    """`/outages.csv`: one row per outage, oldest first (RFC 4180, UTF-8, CRLF)."""
    return _csv((f[0] for f in OUTAGE_FIELDS), (_outage_row(data, o) for o in data.outages))


def outages_json(data: OpenData) -> bytes:
    """`/outages.json`: the same rows with their types, and where they come from."""
    document = {
        "title": data.title,
        "source": data.source,
        "updated_at": _utc(
            data.updated
        ),  # not the request time: the ETag stays while nothing changes
        "licence": {"name": data.licence.licence_name, "path": data.licence.licence_url},
        "outages": [_outage_row(data, o) for o in data.outages],
    }
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def monthly_csv(data: OpenData) -> bytes:
    """`/availability-monthly.csv`: availability per target and calendar month."""
    names = [f[0] for f in data.monthly_fields]
    rows = (
        {
            name: value
            for name, value in {
                "month": row.month,
                "target_id": row.target_id,
                "target_name": row.target_name,
                "vantage": row.vantage,
                "monitored_s": round(row.monitored_s, 3),
                "corroborable_s": _round(row.corroborable_s, 3),
                "down_s": round(row.down_s, 3),
                "uncorroborated_down_s": _round(row.uncorroborated_down_s, 3),
                "degraded_s": round(row.degraded_s, 3),
                "unmonitored_s": round(row.unmonitored_s, 3),
                "availability": _round(row.availability, 6),
                "availability_low": _round(row.availability_low, 6),
            }.items()
            if name in names
        }
        for row in data.monthly or ()
    )
    return _csv(names, rows)


def monthly_rows(
    index: AvailabilityIndex, targets: Mapping[str, str], now: dt.datetime
) -> list[MonthRow]:
    """Every calendar month (Paris) from each target's first check up to the current one."""
    rows: list[MonthRow] = []
    for target_id, name in targets.items():
        timeline = index.timelines.get(target_id)
        if timeline is None or timeline.first_seen is None:
            continue
        first = dt.datetime.fromtimestamp(timeline.first_seen, dt.UTC).astimezone(PARIS)
        start = first.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        rows.extend(
            MonthRow(
                month=period.start.astimezone(PARIS).strftime("%Y-%m"),
                target_id=target_id,
                target_name=name,
                monitored_s=period.monitored_s,
                down_s=period.down_s,
                degraded_s=period.degraded_s,
                unmonitored_s=period.unmonitored_s,
                availability=period.ratio,
            )
            for period in index.periods(target_id, start, now, now, unit="month")
        )
    rows.sort(key=lambda r: (r.month, r.target_id))
    return rows


def _schema(fields: Sequence[tuple[str, str, str]], key: str | None) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "fields": [{"name": n, "type": t, "description": d} for n, t, d in fields],
        "missingValues": [""],
    }
    for field in schema["fields"]:
        if field["name"] in {"id", "target_id", "kind", "month", "started_at"}:
            field["constraints"] = {"required": True}
    if key is not None:
        schema["primaryKey"] = [key] if key == "id" else ["month", "target_id"]
        if any(n == "vantage" for n, _, _ in fields):
            schema["primaryKey"].append("vantage")
            schema["fields"][3]["constraints"] = {"required": True}
    return schema


def datapackage(data: OpenData) -> bytes:
    """`/datapackage.json`: a Frictionless data package describing every published table."""
    licence = data.licence
    resources = [
        {
            "name": "outages",
            "path": "outages.csv",
            "title": "Pannes et lenteurs confirmées",
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8",
            "schema": _schema(OUTAGE_FIELDS, "id"),
        }
    ]
    if data.monthly is not None:
        resources.append(
            {
                "name": "availability-monthly",
                "path": "availability-monthly.csv",
                "title": "Disponibilité mensuelle par service (heure de Paris)",
                "description": data.monthly_description,
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "schema": _schema(data.monthly_fields, "month"),
            }
        )
    package = {
        "name": f"vigie-{data.source}".lower().replace("_", "-").replace(".", "-"),
        "title": data.title,
        "description": "Historique des pannes observées par Vigie, en lecture seule, depuis "
        f"« {data.source} ». Chaque panne renvoie à son archive de preuves signée.",
        "homepage": data.url("/"),
        "created": _utc(data.updated),
        "licenses": [
            {
                "name": licence.licence_name,
                "path": licence.licence_url,
                "title": licence.licence_title,
            }
        ],
        "contributors": [{"title": data.publisher or data.source, "role": "publisher"}],
        "resources": resources,
    }
    return json.dumps(package, ensure_ascii=False, indent=1).encode("utf-8")


# --- Atom -------------------------------------------------------------------------------------


def _entry_id(data: OpenData, outage: OpenOutage) -> str:
    """A stable IRI for the entry, independent of the host name the feed is read through."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"vigie:{data.source}:{outage.id}").urn


def outages_atom(data: OpenData) -> bytes:
    """`/outages.atom`: one entry per confirmed outage (`down`), updated when it ends (RFC 4287)."""
    from feedgen.feed import FeedGenerator  # type: ignore[import-untyped]

    from config.french import format_duration_fr

    feed = FeedGenerator()
    feed.id(uuid.uuid5(uuid.NAMESPACE_URL, f"vigie:{data.source}:outages").urn)
    feed.title(f"{data.title} — pannes confirmées")
    feed.author({"name": data.publisher or data.source})
    feed.link(href=data.url("/outages.atom"), rel="self", type="application/atom+xml")
    feed.link(href=data.url("/"), rel="alternate", type="text/html")
    feed.language("fr")
    feed.rights(f"{data.licence.licence_title} ({data.licence.licence_url})")
    feed.generator("Vigie")
    feed.updated(data.updated)
    links: list[list[dict[str, str]]] = []
    for outage in data.outages:
        if outage.kind != "down":
            continue
        entry = feed.add_entry(order="append")
        entry.id(_entry_id(data, outage))
        state = "en cours" if outage.end is None else "terminée"
        entry.title(f"Panne {state} : {outage.target_name}")
        entry.published(outage.start)
        entry.updated(outage.updated)
        entry_links = [
            {"href": data.url(outage.page_path), "rel": "alternate", "type": "text/html"}
        ]
        entry_links.extend(
            {
                "href": href,
                "rel": "related",
                "type": "application/zip",
                "title": "Archive de preuves",
            }
            for href in data.evidence(outage)
        )
        for link in entry_links:
            entry.link(**link)
        links.append(entry_links)
        start = outage.start.astimezone(PARIS).strftime("%d/%m/%Y %H:%M:%S")
        if outage.end is None:
            when = f"depuis le {start} (heure de Paris), toujours en cours"
        else:
            end = outage.end.astimezone(PARIS).strftime("%d/%m/%Y %H:%M:%S")
            duration = format_duration_fr(outage.duration_s or 0.0)
            when = f"du {start} au {end} (heure de Paris), durée {duration}"
        vantages = ", ".join(outage.vantages)
        lines = [
            f"{outage.target_name} : panne {when}.",
            f"Confirmée par {len(outage.vantages)} point(s) d'observation : {vantages}.",
            f"Vérifications en échec : {outage.failed_checks} ({outage.causes}).",
        ]
        if outage.maintenance:
            lines.append(f"Pendant une maintenance annoncée : {outage.maintenance}.")
        if data.evidence(outage):
            lines.append(f"Archive de preuves : {' '.join(data.evidence(outage))}")
        if outage.references:
            lines.append(
                "Références dans les registres (archive de preuves auprès de chaque point "
                f"d'observation) : {', '.join(outage.references)}."
            )
        entry.summary(" ".join(lines))
        entry.category(term=outage.target_id, label=outage.target_name)
    return _entry_link_attributes(feed.atom_str(pretty=True), links)


def _entry_link_attributes(xml: bytes, links: Sequence[Sequence[Mapping[str, str]]]) -> bytes:
    """Put back the rel/type/title of entry links that feedgen 1.0.0 drops.

    feedgen 1.0.0 writes an entry's links with their href only (a shadowed variable in
    FeedEntry.atom_entry), so an entry with two links has two `alternate` links of the same
    type, which RFC 4287 §4.1.1 forbids. `links`: the attributes given, entry by entry.
    """
    from lxml import etree  # type: ignore[import-untyped]

    root = etree.fromstring(xml)  # our own output, just written by feedgen
    entries = root.findall("{http://www.w3.org/2005/Atom}entry")
    for entry, wanted in zip(entries, links, strict=True):
        written = entry.findall("{http://www.w3.org/2005/Atom}link")
        for element, attributes in zip(written, wanted, strict=True):
            for key, value in attributes.items():
                element.set(key, value)
    body: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return body


# --- badge ------------------------------------------------------------------------------------


def _text_width(text: str) -> int:
    """Approximate width in pixels of `text` at 11 px (Verdana-like metrics)."""
    return 10 + sum(4 if c in " il.,:'|" else 9 if c.isupper() or c in "mwMW%" else 7 for c in text)


def badge_svg(label: str, value: str, colour: str) -> bytes:
    """A flat two-part badge (label | value), accessible (role img, title)."""
    left, right = _text_width(label), _text_width(value)
    total = left + right
    title = escape(f"{label} : {value}")
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" '
        f'aria-label="{title}"><title>{title}</title>'
        f'<rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        '<g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{left / 2:.1f}" y="14" text-anchor="middle">{escape(label)}</text>'
        f'<text x="{left + right / 2:.1f}" y="14" text-anchor="middle">{escape(value)}</text>'
        "</g></svg>"
    )
    return svg.encode("utf-8")


def _badge(data: OpenData, target_id: str) -> bytes | None:
    name = data.targets.get(target_id)
    if name is None:
        return None
    if any(o.target_id == target_id and o.kind == "down" and o.end is None for o in data.outages):
        return badge_svg(name, "en panne", "#b00020")
    ratio = data.availability.get(target_id)
    if ratio is None:
        return badge_svg(name, "pas de mesure", "#555")
    colour = "#1e7b34" if ratio >= 0.99 else "#8a4b00" if ratio >= 0.95 else "#b00020"
    return badge_svg(name, f"{percent_fr(ratio, 1)} sur {BADGE_DAYS} j", colour)


# --- HTTP -------------------------------------------------------------------------------------


def _http_date(moment: dt.datetime) -> str:
    """RFC 9110 date (``Mon, 07 Dec 2026 18:40:00 GMT``), whatever the locale."""
    from email.utils import format_datetime

    return format_datetime(moment.astimezone(dt.UTC).replace(microsecond=0), usegmt=True)


def cached_response(
    request: web.Request, body: bytes, content_type: str, last_modified: dt.datetime
) -> web.Response:
    """`body` with a strong ETag and Last-Modified; 304 when the client already has it."""
    from aiohttp import web

    etag = hashlib.sha256(body).hexdigest()[:32]
    headers = {
        "Cache-Control": f"public, max-age={CACHE_SECONDS}",
        "ETag": f'"{etag}"',
        "Last-Modified": _http_date(last_modified),
        "Access-Control-Allow-Origin": "*",
    }
    wanted = request.headers.get("If-None-Match")
    if wanted is not None:
        tags = {t.strip().removeprefix("W/") for t in wanted.split(",")}
        if f'"{etag}"' in tags or "*" in tags:
            return web.Response(status=304, headers=headers)
    else:
        since = request.if_modified_since
        if since is not None and last_modified.replace(microsecond=0) <= since:
            return web.Response(status=304, headers=headers)
    headers["Content-Type"] = content_type
    return web.Response(body=body, headers=headers)


_ROUTES: dict[str, tuple[Callable[[OpenData], bytes], str]] = {
    "/outages.csv": (outages_csv, "text/csv; charset=utf-8; header=present"),
    "/outages.json": (outages_json, "application/json; charset=utf-8"),
    "/outages.atom": (outages_atom, "application/atom+xml; charset=utf-8"),
    "/datapackage.json": (datapackage, "application/json; charset=utf-8"),
    "/availability-monthly.csv": (monthly_csv, "text/csv; charset=utf-8; header=present"),
}


def add_open_data_routes(
    app: web.Application,
    snapshot: Callable[[web.Request], Awaitable[OpenData]],
    *,
    skip: Iterable[str] = (),
) -> None:
    """Serve the open data of `snapshot` on `app` (GET/HEAD), except the paths in `skip`."""
    from aiohttp import web

    skipped = set(skip)

    def handler(render: Callable[[OpenData], bytes], content_type: str) -> Any:
        async def serve(request: web.Request) -> web.Response:
            data = await snapshot(request)
            if render is monthly_csv and data.monthly is None:
                raise web.HTTPNotFound(text="Pas de disponibilité mensuelle ici.")
            moment = data.generated_at if render is monthly_csv else data.updated
            return cached_response(request, render(data), content_type, moment)

        return serve

    async def badge(request: web.Request) -> web.Response:
        data = await snapshot(request)
        body = _badge(data, request.match_info["target_id"])
        if body is None:
            raise web.HTTPNotFound(text="Aucun service ne porte cet identifiant.")
        return cached_response(request, body, "image/svg+xml; charset=utf-8", data.generated_at)

    for path, (render, content_type) in _ROUTES.items():
        if path not in skipped:
            app.router.add_get(path, handler(render, content_type))
    if "/badges" not in skipped:
        app.router.add_get("/badges/{target_id}.svg", badge)


def base_url(request: web.Request, configured: str | None = None) -> str:
    """The public base URL: the configured one, else the origin the request came to."""
    if configured:
        return configured.rstrip("/")
    return str(request.url.origin()).rstrip("/")


def service_open_data(
    service: Service, request: web.Request, now: dt.datetime | None = None
) -> OpenData:
    """The open data of a running service, from its tracker's memory (no ledger read)."""
    from exporter.statuspage import service_tracker

    settings = service.settings
    moment = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    names = {t.id: t.name or t.id for t in settings.targets}
    tracker = service_tracker(service)
    records = tracker.records() if tracker is not None else []
    vantage = settings.vantage.name
    outages = tuple(
        record_outage(r, names.get(r.target_id, r.target_id), (vantage,)) for r in records
    )
    monthly: tuple[MonthRow, ...] = ()
    availability: dict[str, float | None] = {}
    if tracker is not None:
        monthly = tuple(monthly_rows(tracker.index, names, moment))
        since = moment - dt.timedelta(days=BADGE_DAYS)
        availability = {
            t: tracker.index.availability(t, since, moment, moment).ratio for t in names
        }
    return OpenData(
        title=f"Vigie — {vantage}",
        publisher=settings.vantage.operator or vantage,
        source=vantage,
        base_url=base_url(request, settings.public_url),
        generated_at=moment,
        licence=settings.open_data,
        outages=outages,
        targets=names,
        monthly=monthly,
        availability=availability,
    )
