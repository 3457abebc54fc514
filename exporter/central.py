"""`vigie central`: the French status page of several vantages, with how many confirm each outage.

It reads each vantage's outages from its ledger (opened read-only, ideally as the read-only
role of evidence/shared_pg.py) or from its verified evidence bundle; it never writes to a
ledger, never probes anything, and shows a bundle only once it verifies.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import threading
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Annotated, Any

import structlog
import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from config.french import format_duration_fr, paris_time_fr, plural_fr
from config.settings import ConfigError, OpenDataSettings
from config.vocabulary import EXIT_OK, GAP, OBSERVATION, OUTAGE, REVIEW, VANTAGE
from evidence.ledger.reviews import review_state
from evidence.outages.tracker import OutageRecord, outages_from_entries
from evidence.outages.watched import LedgerWatch
from exporter.hostcheck import HostAllowList, host_middleware
from exporter.plumbing import run_handler
from exporter.statuspage import _STYLE, cards_table, html_page

__all__ = [
    "CentralConfig",
    "CentralView",
    "ConfirmedOutage",
    "Sighting",
    "SourceState",
    "VantageSource",
    "add_commands",
    "build_app",
    "group_sightings",
    "load_central_config",
    "main",
    "render_central_page",
]

log = structlog.get_logger("vigie.central")

OUTAGE_ROWS = 300
_WATCHED = frozenset({OBSERVATION, GAP, VANTAGE})

# --- configuration ----------------------------------------------------------------------------


class VantageSource(BaseModel):
    """One vantage: a ledger URL (read-only role) or an evidence bundle, not both."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")] | None = None
    ledger: str | None = None
    password: SecretStr | None = None
    password_env: str | None = None  # name of an environment variable holding the password
    bundle: Path | None = None
    public_url: str | None = None  # its status page, for links to its evidence (open data)

    @model_validator(mode="after")
    def _one_source(self) -> VantageSource:
        if (self.ledger is None) == (self.bundle is None):
            raise ValueError("give either `ledger` (postgresql://... or sqlite:///...) or `bundle`")
        if self.ledger is not None and not self.ledger.startswith(
            ("postgresql://", "postgres://", "sqlite:///")
        ):
            raise ValueError("ledger URL must start with postgresql:// or sqlite:///")
        if self.public_url is not None and not self.public_url.startswith(("http://", "https://")):
            raise ValueError("public_url must start with http:// or https://")
        return self

    def secret(self) -> str | None:
        """The ledger password (`password`, else the variable `password_env`), if any."""
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_env:
            return os.environ.get(self.password_env)
        return None

    @property
    def label(self) -> str:
        """How the source is named in logs and on the page before it was read."""
        if self.name:
            return self.name
        if self.bundle is not None:
            return self.bundle.name
        from evidence.ledger.entries import redact_url

        return redact_url(self.ledger or "")


class CentralConfig(BaseModel):
    """`central.yaml`: the vantages to read, the corroboration threshold, where to listen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vantages: Annotated[tuple[VantageSource, ...], Field(min_length=1)]
    min_vantages: Annotated[int, Field(ge=1, le=100)] = 2
    listen: str = "127.0.0.1:9190"
    title: str = "Vigie — vue d'ensemble des points d'observation"
    targets: dict[str, str] = Field(default_factory=dict)  # target id -> name shown
    refresh_seconds: Annotated[float, Field(ge=0, le=3600)] = 30.0
    # host names the page answers to besides `listen`'s (DNS-rebinding defence; "*": any)
    allowed_hosts: tuple[str, ...] = ()
    open_data: OpenDataSettings = OpenDataSettings()  # licence of /outages.csv, .atom, ...

    @property
    def host_port(self) -> tuple[str, int]:
        """`listen` split into host and port."""
        host, _, port = self.listen.rpartition(":")
        number = int(port)
        if not 1 <= number <= 65535:
            raise ValueError(port)
        return host.strip("[]") or "127.0.0.1", number


def load_central_config(path: Path) -> CentralConfig:
    """Read and validate `path` (ConfigError with one line per problem)."""
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except OSError as exc:
        raise ConfigError([f"{path}: cannot be read ({exc.strerror or exc})"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not valid UTF-8 (byte {exc.start})"]) from None
    except yaml.YAMLError as exc:  # one line: where, and what the parser expected
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"{path}: {where}invalid YAML: {problem}"]) from None
    try:
        config = CentralConfig.model_validate(data or {})
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "(top level)"
            lines.append(f"{path}: {where}: {error['msg']}")
        raise ConfigError(lines) from None
    try:
        config.host_port  # noqa: B018 - validates `listen`
    except ValueError:
        raise ConfigError([f"{path}: listen: expected HOST:PORT, got {config.listen!r}"]) from None
    return config


# --- reading the vantages ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Sighting:
    """One vantage's record of an outage."""

    vantage: str
    record: OutageRecord


@dataclasses.dataclass(slots=True)
class SourceState:
    """What was last read from one source, or why it could not be."""

    label: str
    kind: str  # "registre" | "archive de preuves"
    vantage: str | None = None
    outages: list[OutageRecord] = dataclasses.field(default_factory=list)
    entries: int = 0
    error: str | None = None
    read_at: dt.datetime | None = None


class _LedgerReader:
    """Incremental reader of one ledger's outage entries (read-only connection)."""

    def __init__(self, source: VantageSource) -> None:
        self.source = source
        self.state = SourceState(source.label, "registre")
        self._events: list[dict[str, Any]] = []
        self._ledger: Any = None
        self.watch = LedgerWatch()  # watched time, for the monthly availability table

    def refresh(self) -> SourceState:
        from evidence.ledger.backends import open_ledger
        from evidence.ledger.entries import LedgerError

        try:
            if self._ledger is None:
                self._ledger = open_ledger(
                    self.source.ledger or "", readonly=True, password=self.source.secret()
                )
            ledger = self._ledger
            size = ledger.refresh()  # re-read: the vantage keeps appending
            # New entries only: the ledger is append-only, earlier events never change.
            for row in ledger.iter_rows(self.state.entries, size):
                if row.type in {OUTAGE, REVIEW}:  # events, and people's reviews
                    event = json.loads(row.body)
                    event.setdefault("seq", row.seq)
                    self._events.append(event)
                elif row.type in _WATCHED:  # checks, Vigie stopped, its network down
                    entry = json.loads(row.body)
                    entry.setdefault("type", row.type)
                    self.watch.add(entry)
            self.state.entries = size
            self.state.vantage = ledger.vantage
            self.state.outages = outages_from_entries(self._events)
            self.state.error = None
            self.state.read_at = dt.datetime.now(dt.UTC)
        except (LedgerError, OSError, IndexError) as exc:
            self._close()
            self.state.error = str(exc)
            log.warning("central_source_failed", source=self.state.label, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - a dropped connection: the driver's own error
            self._close()
            self.state.error = f"{type(exc).__name__}: {exc}"
            log.warning("central_source_failed", source=self.state.label, error=str(exc))
        if self.source.name and self.state.vantage and self.source.name != self.state.vantage:
            self.state.error = (
                f"ce registre appartient à « {self.state.vantage} », pas à « {self.source.name} »"
            )
        return self.state

    def _close(self) -> None:
        if self._ledger is not None:
            ledger, self._ledger = self._ledger, None
            try:
                ledger.close()
            except Exception as exc:  # noqa: BLE001 - closing a broken connection
                log.debug("central_close_failed", error=str(exc))

    def close(self) -> None:
        self._close()


class _BundleReader:
    """An evidence bundle, verified once (it never changes); refused if it does not verify."""

    def __init__(self, source: VantageSource) -> None:
        self.source = source
        self.state = SourceState(source.label, "archive de preuves")
        self._done = False

    def refresh(self) -> SourceState:
        if self._done:
            return self.state
        from evidence.bundle.verify import verify_bundle

        path = self.source.bundle
        assert path is not None
        try:
            report = verify_bundle(path)
            if not report.ok:
                self.state.error = f"l'archive ne se vérifie pas : {report.summary()}"
                return self.state
            with zipfile.ZipFile(path) as zf:
                manifest = json.loads(zf.read("manifest.json"))
                with zf.open("observations.jsonl") as lines:
                    events = [
                        json.loads(line)
                        for line in lines
                        if b'"type":"outage"' in line or b'"type":"review"' in line
                    ]
            self.state.vantage = str(manifest["vantage"])
            self.state.outages = outages_from_entries(events)
            self.state.entries = len(events)
            self.state.read_at = dt.datetime.now(dt.UTC)
            self.state.error = None
            self._done = True
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            self.state.error = f"archive illisible : {exc}"
        return self.state

    def close(self) -> None:
        return


# --- grouping ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class ConfirmedOutage:
    """Overlapping `down` outages of one target, with the vantages that saw them."""

    target_id: str
    start: dt.datetime  # earliest start among the sightings
    end: dt.datetime | None  # latest end; None while open in any vantage
    vantages: tuple[str, ...]
    sightings: tuple[Sighting, ...]

    @property
    def is_open(self) -> bool:
        """Still going on in at least one vantage."""
        return self.end is None


_FAR = dt.datetime.max.replace(tzinfo=dt.UTC)


def group_sightings(sightings: Iterable[Sighting]) -> list[ConfirmedOutage]:
    """Group `down` outages of the same target whose periods overlap (transitively).

    Every outage is in exactly one group; a group counts each vantage once. Newest first.
    """
    by_target: dict[str, list[Sighting]] = {}
    for one in sightings:
        if one.record.kind == "down":
            by_target.setdefault(one.record.target_id, []).append(one)
    groups: list[ConfirmedOutage] = []
    for target, items in by_target.items():
        items.sort(key=lambda s: s.record.start)
        cluster: list[Sighting] = []
        cluster_end = _FAR
        for one in items:
            if cluster and one.record.start < cluster_end:
                cluster.append(one)
                cluster_end = max(cluster_end, one.record.end or _FAR)
                continue
            if cluster:
                groups.append(_group(target, cluster))
            cluster, cluster_end = [one], one.record.end or _FAR
        if cluster:
            groups.append(_group(target, cluster))
    groups.sort(key=lambda g: (g.start, g.target_id), reverse=True)
    return groups


def _group(target: str, cluster: list[Sighting]) -> ConfirmedOutage:
    ends = [s.record.end for s in cluster]
    end = None if any(e is None for e in ends) else max(e for e in ends if e is not None)
    return ConfirmedOutage(
        target_id=target,
        start=min(s.record.start for s in cluster),
        end=end,
        vantages=tuple(sorted({s.vantage for s in cluster})),
        sightings=tuple(cluster),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class CentralView:
    """Everything the central page shows."""

    title: str
    min_vantages: int
    generated_at: dt.datetime
    sources: tuple[SourceState, ...]
    outages: tuple[ConfirmedOutage, ...]
    names: Mapping[str, str]

    @property
    def vantages(self) -> tuple[str, ...]:
        """The vantages read successfully."""
        return tuple(sorted({s.vantage for s in self.sources if s.vantage and not s.error}))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (`/outages.json`)."""
        return {
            "generated_at": self.generated_at.isoformat(),
            "min_vantages": self.min_vantages,
            "vantages": list(self.vantages),
            "sources": [
                {
                    "source": s.label,
                    "vantage": s.vantage,
                    "error": s.error,
                    "outages": len(s.outages),
                }
                for s in self.sources
            ],
            "outages": [
                {
                    "target_id": o.target_id,
                    "start": o.start.isoformat(),
                    "end": None if o.end is None else o.end.isoformat(),
                    "vantages": list(o.vantages),
                    "confirmed_by": len(o.vantages),
                    "corroborated": len(o.vantages) >= self.min_vantages,
                    "outage_ids": {s.vantage: s.record.id for s in o.sightings},
                    "reviews": {s.vantage: review_state(s.record.reviews) for s in o.sightings},
                }
                for o in self.outages
            ],
        }


class Central:
    """The sources of a central view, refreshed at most every `refresh_seconds`."""

    def __init__(self, config: CentralConfig) -> None:
        self.config = config
        self._readers: list[_LedgerReader | _BundleReader] = [
            _LedgerReader(s) if s.ledger else _BundleReader(s) for s in config.vantages
        ]
        self._lock = threading.Lock()
        self._view: CentralView | None = None
        self._monthly: tuple[tuple[tuple[str | None, int], ...], list[Any]] | None = None

    def view(self, *, now: dt.datetime | None = None) -> CentralView:
        """The current view (re-reading the sources when the last read is old enough)."""
        with self._lock:
            moment = now or dt.datetime.now(dt.UTC)
            cached = self._view
            if cached is not None:
                age = (moment - cached.generated_at).total_seconds()
                if 0 <= age < self.config.refresh_seconds:
                    return cached
            states = [reader.refresh() for reader in self._readers]
            sightings = [
                Sighting(state.vantage, record)
                for state in states
                if state.vantage and not state.error
                for record in state.outages
            ]
            self._view = CentralView(
                title=self.config.title,
                min_vantages=self.config.min_vantages,
                generated_at=moment,
                sources=tuple(dataclasses.replace(s, outages=list(s.outages)) for s in states),
                outages=tuple(group_sightings(sightings)),
                names=dict(self.config.targets),
            )
            return self._view

    def monthly(self, view: CentralView) -> list[Any] | None:
        """The monthly availability rows (`central_monthly_rows`) of the ledgers read for
        `view`, computed again only when a ledger grew (cached by the ledgers' sizes).

        None when no source is a ledger: a bundle's checks stop at its end, and counting the
        time after it as watched or not would be a guess."""
        from exporter.opendata_central import central_monthly_rows

        if not any(isinstance(r, _LedgerReader) for r in self._readers):
            return None
        with self._lock:
            readers = [
                r
                for r in self._readers
                if isinstance(r, _LedgerReader)
                and r.state.vantage
                and not r.state.error
                and r.watch.until is not None
            ]
            key = tuple((r.state.vantage, r.state.entries) for r in readers)
            if self._monthly is not None and self._monthly[0] == key:
                return self._monthly[1]
            indexes = {
                r.state.vantage or "": (r.watch.index(r.state.outages), r.watch.until)
                for r in readers
                if r.watch.until is not None
            }
            names = dict(view.names)
            for index, _ in indexes.values():
                for target_id in index.timelines:
                    names.setdefault(target_id, target_id)
            rows = central_monthly_rows(indexes, names, self.config.min_vantages)
            self._monthly = (key, rows)
            return rows

    def public_urls(self) -> dict[str, str]:
        """Vantage name -> the public address its source configures (read ones only)."""
        return {
            reader.state.vantage: reader.source.public_url
            for reader in self._readers
            if reader.state.vantage and reader.source.public_url
        }

    def close(self) -> None:
        """Close the ledger connections."""
        with self._lock:
            for reader in self._readers:
                reader.close()


# --- HTML -------------------------------------------------------------------------------------

_CENTRAL_STYLE = _STYLE + ".confirm{font-weight:bold}\n"
_CENTRAL_FOOTER = """\
Vigie observe en lecture seule, depuis plusieurs réseaux indépendants. Cette page lit
les registres signés de chaque point d'observation sans jamais les modifier ; chaque registre
se vérifie avec <code>vigie verify</code>, chaque archive de preuves aussi. Heures affichées :
heure de Paris. Données ouvertes : <a href="/outages.json">JSON</a>,
<a href="/outages.csv">CSV</a>, <a href="/outages.atom">flux des pannes (Atom)</a>,
<a href="/availability-monthly.csv">disponibilité mensuelle (CSV)</a>."""


def _confirm_cell(outage: ConfirmedOutage, view: CentralView) -> tuple[str, str]:
    n, total = len(outage.vantages), len(view.vantages)
    css = "ko" if n >= view.min_vantages else "warn"
    label = "corroborée" if n >= view.min_vantages else "vue d'un seul réseau"
    if n > 1 and n < view.min_vantages:
        label = "non corroborée"
    names = ", ".join(f"« {v} »" for v in outage.vantages)
    return (
        f'<span class="confirm">{n} sur {total}</span> point{"s" if total > 1 else ""} '
        f"d'observation ({escape(label)})<br>{escape(names)}"
    ), css


def _outages_table(view: CentralView) -> str:
    if not view.outages:
        return "<p>Aucune panne confirmée par un point d'observation.</p>"
    rows = []
    for o in view.outages[:OUTAGE_ROWS]:
        name = view.names.get(o.target_id, o.target_id)
        end = "en cours" if o.end is None else paris_time_fr(o.end)
        duration = format_duration_fr(((o.end or view.generated_at) - o.start).total_seconds())
        ids = "<br>".join(
            f"{escape(s.vantage)} : <code>{escape(s.record.id)}</code>"
            + (f"<br><em>{escape(s.record.review.text_fr)}</em>" if s.record.review else "")
            for s in o.sightings
        )
        rows.append(
            (
                (escape(name), ""),
                (escape(paris_time_fr(o.start)), ""),
                (escape(end), "ko" if o.is_open else ""),
                (escape(duration) + (" (en cours)" if o.is_open else ""), ""),
                _confirm_cell(o, view),
                (ids, ""),
            )
        )
    more = ""
    if len(view.outages) > OUTAGE_ROWS:
        more = f"<p>Les {OUTAGE_ROWS} pannes les plus récentes sur {len(view.outages)}.</p>"
    caption = (
        "Pannes confirmées, les plus récentes d'abord (heure de Paris). Des pannes du même "
        "service qui se chevauchent dans le temps sont regroupées."
    )
    headers = ("Service", "Début", "Fin", "Durée", "Confirmée par", "Références")
    return cards_table(caption, headers, rows) + more


def _sources_table(view: CentralView) -> str:
    if not view.sources:
        return "<p>Aucune source n'est configurée (<code>vantages</code>).</p>"
    rows = []
    for s in view.sources:
        if s.error:
            state = (f"Illisible : {escape(s.error)}", "ko")
        else:
            read = paris_time_fr(s.read_at) if s.read_at else "—"
            state = (f"Lu le {escape(read)}", "ok")
        rows.append(
            (
                (escape(s.vantage or "—"), ""),
                (f"{escape(s.kind)} <code>{escape(s.label)}</code>", ""),
                state,
                (str(len(s.outages)), ""),
            )
        )
    headers = ("Point d'observation", "Source", "État", "Pannes enregistrées")
    return cards_table("Sources lues par cette page", headers, rows)


def _vantages_read(view: CentralView) -> str:
    names = ", ".join(f"« {v} »" for v in view.vantages)
    if not names:
        return "Aucun point d'observation n'a pu être lu."
    count = plural_fr(len(view.vantages), "point d'observation lu", "points d'observation lus")
    return escape(f"{count} : {names}.")


def render_central_page(view: CentralView) -> str:
    """The central status page as an HTML document."""
    k = view.min_vantages
    open_now = [o for o in view.outages if o.is_open and len(o.vantages) >= k]
    if open_now:
        names = ", ".join(view.names.get(o.target_id, o.target_id) for o in open_now)
        now = f'<p class="ko">Panne corroborée en cours : {escape(names)}.</p>'
    else:
        now = '<p class="ok">Aucune panne corroborée en cours.</p>'
    at_least = plural_fr(k, "point d'observation", "points d'observation")
    body = f"""<header><h1>{escape(view.title)}</h1>
<p>{_vantages_read(view)}
Page générée le {escape(paris_time_fr(view.generated_at))}.</p></header>
<main>
<h2>En ce moment</h2>
{now}
<h2>Pannes et points d'observation qui les confirment</h2>
<p>Une panne est <strong>corroborée</strong> quand au moins {at_least}, chacun sur
son propre réseau, l'ont confirmée pendant la même période : elle ne peut alors pas être
attribuée à la connexion d'un seul observateur. Une panne vue d'un seul réseau reste un
soupçon local.</p>
{_outages_table(view)}
<h2>Points d'observation</h2>
{_sources_table(view)}
<h2>Méthode</h2>
<p>Chaque point d'observation confirme lui-même ses pannes (plusieurs vérifications
consécutives en échec) et n'en impute aucune au service quand sa propre connexion est coupée.
Cette page rapproche les pannes d'un même service dont les périodes se chevauchent, et compte
les points d'observation distincts qui les ont vues.</p>
</main>"""
    return html_page(view.title, body, style=_CENTRAL_STYLE, footer=_CENTRAL_FOOTER)


# --- HTTP -------------------------------------------------------------------------------------


def build_app(central: Central) -> Any:
    """The aiohttp application: `/` (page), `/outages.json`, `/healthz`; GET/HEAD only."""
    from aiohttp import web

    @web.middleware
    async def read_only(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "HEAD"])
        response: web.StreamResponse = await handler(request)
        return response

    async def page(_request: web.Request) -> web.Response:
        view = await asyncio.to_thread(central.view)
        return web.Response(text=render_central_page(view), content_type="text/html")

    async def data(_request: web.Request) -> web.Response:
        view = await asyncio.to_thread(central.view)
        return web.json_response(view.to_dict(), dumps=lambda o: json.dumps(o, ensure_ascii=False))

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    allow = HostAllowList(central.config.host_port[0], None, central.config.allowed_hosts)
    app = web.Application(middlewares=[host_middleware(allow), read_only])
    app.router.add_get("/", page)
    app.router.add_get("/outages.json", data)
    app.router.add_get("/healthz", healthz)

    async def open_data(request: web.Request) -> Any:
        from exporter.opendata_central import central_open_data

        view = await asyncio.to_thread(central.view)
        monthly = await asyncio.to_thread(central.monthly, view)
        return central_open_data(
            view, request, central.config.open_data, central.public_urls(), monthly
        )

    from exporter.opendata import add_open_data_routes

    add_open_data_routes(app, open_data, skip=("/outages.json",))  # its own JSON, above
    return app


async def _serve(config: CentralConfig, central: Central) -> None:
    from aiohttp import web

    runner = web.AppRunner(build_app(central))
    await runner.setup()
    host, port = config.host_port
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("central_listening", listen=config.listen, vantages=len(config.vantages))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        central.close()
        log.info("central_stopped")


def run_central(args: argparse.Namespace) -> int:
    """`vigie central --config central.yaml [--listen HOST:PORT]`."""
    config = load_central_config(args.config)
    if args.listen:
        config = config.model_copy(update={"listen": args.listen})
        try:
            config.host_port  # noqa: B018 - validates `--listen`
        except ValueError:
            raise ConfigError(
                [f"--listen: expected HOST:PORT with a port from 1 to 65535, got {args.listen!r}"]
            ) from None
    central = Central(config)
    asyncio.run(_serve(config, central))
    return EXIT_OK


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=Path("central.yaml"),
        metavar="FILE",
        help="central configuration (default: ./central.yaml; see docs/vantages.md)",
    )
    parser.add_argument("--listen", metavar="HOST:PORT", help="override `listen`")
    parser.set_defaults(handler=run_central)


def add_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    load_settings: Callable[[Path | None], Any],
) -> None:
    """Add `vigie central` to the `vigie` parser (handler in ``args.handler``).

    `load_settings` is unused: the central view has its own configuration file.
    """
    del load_settings
    parser = subparsers.add_parser(
        "central",
        help="status page of several vantages: outages and how many vantages confirm them",
        description="Serve a French status page that reads several vantages' ledgers "
        "(read-only) or evidence bundles and shows each outage with the number of vantages "
        "that confirm it.",
    )
    _add_arguments(parser)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m exporter.central --config central.yaml`` (same as `vigie central`)."""
    from exporter.logs import configure_logging

    parser = argparse.ArgumentParser(prog="vigie central")
    _add_arguments(parser)
    args = parser.parse_args(argv)
    configure_logging()
    return run_handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
