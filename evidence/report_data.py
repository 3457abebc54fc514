"""What the French evidence report shows, as plain values (no ledger, no I/O, no rendering).

`report_build.build_report_data` fills it from a ledger range; `report.render_report` draws it.
It must never hold raw observations: only aggregates, bounded lists and small thumbnails.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping

__all__ = [
    "CheckpointFacts",
    "Corroboration",
    "Custody",
    "DayPoint",
    "EnvironmentFacts",
    "Methodology",
    "OutageRow",
    "ReportData",
    "Screenshot",
    "TargetReport",
]


@dataclasses.dataclass(frozen=True, slots=True)
class DayPoint:
    """One Paris calendar day of one target: availability and response times."""

    day: dt.date
    availability: float | None  # 0..1 of monitored time not down; None: not monitored
    checks: int = 0
    failures: int = 0  # failed checks (vantage-offline ones excluded)
    p50_s: float | None = None  # median check duration of the day
    p95_s: float | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class TargetReport:
    """One monitored target over the period."""

    id: str
    name: str
    kind: str  # http | browser
    url: str
    interval_s: float
    timeout_s: float
    expectation: str  # what counts as success, in French ("code HTTP 200 ; contient « … »")
    availability: float | None  # over the period's monitored time
    monitored_s: float = 0.0
    down_s: float = 0.0
    degraded_s: float = 0.0
    unmonitored_s: float = 0.0
    maintenance_down_s: float = 0.0
    checks: int = 0
    failures: int = 0
    outages: int = 0  # confirmed `down` outages overlapping the period
    p50_s: float | None = None  # over the period (approximate: 1 % log buckets)
    p95_s: float | None = None
    slow_after_s: float | None = None
    days: tuple[DayPoint, ...] = ()
    steps: tuple[str, ...] = ()  # browser journey, described


@dataclasses.dataclass(frozen=True, slots=True)
class OutageRow:
    """One outage (or slow period) as listed in the report's table."""

    id: str
    target_id: str
    kind: str  # down | degraded
    started_at: dt.datetime  # aware
    ended_at: dt.datetime | None  # None: still going on at the end of the period
    duration_s: float  # to `ended_at`, or to the end of the period while open
    cause: str  # French, e.g. "erreur HTTP 503 (12 fois)"
    maintenance: str | None = None  # label of the announced window it overlaps
    failed_checks: int = 0
    vantages: tuple[str, ...] = ()  # with corroboration: the vantages that saw it


@dataclasses.dataclass(frozen=True, slots=True)
class Screenshot:
    """A capture of a failing page: a small PNG thumbnail and where the full one is."""

    sha256: str  # of the full screenshot, as named in the observation (artifacts/<sha256>)
    target_id: str
    taken_at: dt.datetime | None
    thumbnail_png: bytes
    outage_id: str | None = None
    width: int = 0  # of the thumbnail, pixels
    height: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class Methodology:
    """How the observations were made (the report's methodology section)."""

    user_agent: str
    confirm_after: int
    recover_after: int
    recheck_s: float
    controls: tuple[str, ...] = ()
    maintenance: tuple[str, ...] = ()  # announced windows, described in French


@dataclasses.dataclass(frozen=True, slots=True)
class EnvironmentFacts:
    """The observation environment in the terms of NF Z67-147 (distinct values seen)."""

    vantage: str
    operator: str
    hostnames: tuple[str, ...] = ()
    local_ips: tuple[str, ...] = ()
    resolvers: tuple[str, ...] = ()
    proxies: tuple[str, ...] = ()  # empty: no proxy in use
    os: tuple[str, ...] = ()
    python: tuple[str, ...] = ()
    vigie: tuple[str, ...] = ()
    browsers: tuple[str, ...] = ()
    user_agents: tuple[str, ...] = ()
    clock: tuple[str, ...] = ()  # e.g. "ntp, synchronisée"
    fresh_profile: bool = True  # a new browser context per check (cache and cookies empty)
    fresh_connection: bool = True  # HTTP: a new connection per check, no cookies, no cache
    remote_ips: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class CheckpointFacts:
    """One signed checkpoint (tree head)."""

    tree_size: int
    root_hash: str  # base64, as in the checkpoint note
    time: dt.datetime | None
    seq: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Custody:
    """Chain of custody: the ledger range, its checkpoints and timestamps."""

    ledger: str  # backend description, e.g. "SQLite" (never a password)
    first_seq: int | None = None
    last_seq: int | None = None
    entries: int = 0
    observations: int = 0
    outage_events: int = 0
    first_time: dt.datetime | None = None
    last_time: dt.datetime | None = None
    checkpoints: int = 0
    first_checkpoint: CheckpointFacts | None = None
    last_checkpoint: CheckpointFacts | None = None
    timestamps: int = 0  # RFC 3161 tokens over checkpoints
    tsa: str | None = None
    last_timestamp: dt.datetime | None = None
    public_key: str | None = None  # verifier key string (name+id+base64 key)
    warcs: int = 0  # WARC captures of failing HTTP checks
    screenshots: int = 0  # screenshots of failing browser checks


@dataclasses.dataclass(frozen=True, slots=True)
class Corroboration:
    """Outages seen from several vantages (`vigie corroborate`)."""

    vantages: tuple[str, ...]  # every vantage whose bundle was compared
    min_vantages: int = 2  # an outage counts as corroborated when seen by at least this many


@dataclasses.dataclass(frozen=True, slots=True)
class ReportData:
    """Everything `render_report` draws; all times are aware datetimes (shown in Paris time)."""

    period_start: dt.datetime
    period_end: dt.datetime
    generated_at: dt.datetime
    vantage: str
    operator: str
    targets: tuple[TargetReport, ...]
    outages: tuple[OutageRow, ...]
    methodology: Methodology
    environment: EnvironmentFacts
    custody: Custody
    screenshots: tuple[Screenshot, ...] = ()
    corroboration: Corroboration | None = None
    bundle_name: str = "preuves.zip"
    outages_total: int | None = None  # when the table lists fewer than exist (None: all)
    title: str = "Constat de disponibilité d'un service en ligne"
    files: tuple[tuple[str, str], ...] = ()  # (file in the bundle, what it holds, in French)
