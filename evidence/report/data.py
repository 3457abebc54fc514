"""What the French evidence report shows, as plain values (no ledger, no I/O, no rendering).

`evidence.bundle.report_inputs.bundle_report_data` fills it from a bundle's summary;
`evidence.report.render.render_report` draws it.
It must never hold raw observations: only aggregates, bounded lists and small thumbnails.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence

__all__ = [
    "CheckpointFacts",
    "ClockJumpFact",
    "Corroboration",
    "Custody",
    "DayPoint",
    "EnvironmentFacts",
    "Methodology",
    "OutageRow",
    "ReportData",
    "Screenshot",
    "SeenValue",
    "TargetReport",
    "jumps_during",
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
    # dated unmonitored spans of the period: (start, end, why, in French), in time order
    unmonitored: tuple[tuple[dt.datetime, dt.datetime, str], ...] = ()


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
    vantages: tuple[str, ...] = ()  # with corroboration: the vantages that saw it, by name
    vantage_count: int = 0  # with corroboration, when only their number is known
    review: str | None = None  # French review state ("constatée et vérifiée par ...")

    @property
    def seen_from(self) -> int:
        """How many vantages saw it (0: not corroborated, or unknown)."""
        return len(self.vantages) or self.vantage_count


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
class SeenValue:
    """One distinct value of an environment fact, and in which observations it was recorded."""

    value: str
    count: int = 0  # observations that recorded it (0: a sample, not counted)
    first: dt.datetime | None = None  # `started_at` of the first of them (ledger order)
    last: dt.datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class EnvironmentFacts:
    """The observation environment in the terms of NF Z67-147.

    With `complete`, each fact lists every distinct value recorded by the `observations` of
    the period (up to a bound: `omitted` counts the observations whose value is not listed).
    Without it, the values are those of one observation only, and the report says so.
    """

    vantage: str
    operator: str
    hostnames: tuple[SeenValue, ...] = ()
    local_ips: tuple[SeenValue, ...] = ()
    resolvers: tuple[SeenValue, ...] = ()
    proxies: tuple[SeenValue, ...] = ()  # empty: no proxy in use
    os: tuple[SeenValue, ...] = ()
    python: tuple[SeenValue, ...] = ()
    vigie: tuple[SeenValue, ...] = ()
    browsers: tuple[SeenValue, ...] = ()
    user_agents: tuple[SeenValue, ...] = ()
    clock: tuple[SeenValue, ...] = ()  # e.g. "ntp, synchronisée"
    fresh_profile: bool = True  # a new browser context per check (cache and cookies empty)
    fresh_connection: bool = True  # HTTP: a new connection per check, no cookies, no cache
    # target id -> the address each check connected to (`remote_ip`)
    remote_ips: Mapping[str, tuple[SeenValue, ...]] = dataclasses.field(default_factory=dict)
    # target id -> the addresses DNS gave for it (`environment.resolved_ips`)
    resolved_ips: Mapping[str, tuple[SeenValue, ...]] = dataclasses.field(default_factory=dict)
    complete: bool = True
    observations: int = 0  # observations tallied (with `complete`)
    # field name (or "remote_ips/<target>", "resolved_ips/<target>") -> observations whose
    # value is beyond the bound of distinct values listed
    omitted: Mapping[str, int] = dataclasses.field(default_factory=dict)
    # field name -> observations that recorded no value for it (browsers, proxies: not counted)
    missing: Mapping[str, int] = dataclasses.field(default_factory=dict)
    not_fresh_profile: int = 0  # browser checks recorded without a fresh profile
    not_fresh_connection: int = 0  # HTTP checks recorded without a fresh connection


@dataclasses.dataclass(frozen=True, slots=True)
class ClockJumpFact:
    """A wall-clock jump the service detected (a `clock_jump` ledger entry).

    The wall clock moved `jump_s` more than real (monotonic) time between two readings:
    positive, it jumped forward; negative, backward. Observation times taken around it are
    on a clock that jumped; check durations are monotonic and unaffected.
    """

    detected_at: dt.datetime  # the wall clock at the reading after the jump (`wall_after`)
    jump_s: float
    before: dt.datetime | None = None  # the wall clock at the reading before (`wall_before`)
    expected_at: dt.datetime | None = None  # what the clock should have read (`wall_expected`)
    seq: int | None = None
    synchronized: bool | None = None  # clock sync state recorded with the jump

    @property
    def forward(self) -> bool:
        """True when the clock jumped forward (timestamps after it read late)."""
        return self.jump_s > 0

    @property
    def span(self) -> tuple[dt.datetime, dt.datetime]:
        """The wall-clock times between the two readings (where timestamps are doubtful)."""
        ends = [t for t in (self.before, self.expected_at, self.detected_at) if t is not None]
        return min(ends), max(ends)


def jumps_during(
    start: dt.datetime,
    end: dt.datetime | None,
    jumps: Sequence[ClockJumpFact],
) -> tuple[int, ...]:
    """Indexes (in `jumps`) of the clock jumps whose span meets [start, end] (end None: open)."""
    found = []
    for index, jump in enumerate(jumps):
        low, high = jump.span
        if high >= start and (end is None or low <= end):
            found.append(index)
    return tuple(found)


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

    vantages: tuple[str, ...]  # every vantage whose bundle was compared, by name
    min_vantages: int = 2  # an outage counts as corroborated when seen by at least this many
    count: int = 0  # when the names were not given: how many vantages (at least)

    @property
    def size(self) -> int:
        """How many vantages were compared."""
        return len(self.vantages) or self.count


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
    offline_captures: int = 0  # captures of checks made while the vantage was offline (not shown)
    corroboration: Corroboration | None = None
    bundle_name: str = "preuves.zip"
    outages_total: int | None = None  # when the table lists fewer than exist (None: all)
    title: str = "Constat de disponibilité d'un service en ligne"
    files: tuple[tuple[str, str], ...] = ()  # (file in the bundle, what it holds, in French)
    clock_jumps: tuple[ClockJumpFact, ...] = ()  # in ledger order
    clock_jumps_total: int | None = None  # when fewer are listed than were recorded (None: all)
    clock_jumps_known: bool = True  # False: this data source did not look for clock jumps
    # the period asked for when the data cover less of it (`period_*` are then the data's)
    requested: tuple[dt.datetime, dt.datetime] | None = None
    single_outage: bool = False  # the bundle of one outage: its figures cover that outage only
