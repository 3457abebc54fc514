"""Builds `ReportData` from a range of ledger entries in one streaming pass.

It keeps aggregates only (per-day counts, one day of durations per target, log-bucket
histograms, bounded sets of environment values): never every observation of the period.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import io
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from config.maintenance import describe
from config.vocabulary import Outcome
from evidence.outages.availability import PARIS, AvailabilityIndex
from evidence.outages.tracker import OutageRecord, causes_text_fr
from evidence.report.data import (
    CheckpointFacts,
    Corroboration,
    Custody,
    DayPoint,
    Methodology,
    OutageRow,
    ReportData,
    Screenshot,
    TargetReport,
)
from evidence.report.facts import CLOCK_JUMP, MAX_VALUES, ReportFacts, clock_text

if TYPE_CHECKING:
    from config.settings import Settings
    from config.targets import Target

__all__ = [
    "MAX_SCREENSHOTS",
    "MAX_VALUES",
    "ArtifactReader",
    "build_report_data",
    "clock_text",
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
_BUCKETS_PER_DOUBLING = 70  # ~1 % relative resolution of the period percentiles
_MIN_DURATION = 1e-4
_VANTAGE_OFFLINE = Outcome.VANTAGE_OFFLINE.value
_JOURNEY_DRIFT = Outcome.JOURNEY_DRIFT.value  # the journey needed updating: unmonitored


class ArtifactReader(Protocol):
    """What the builder needs of the artifact store: the bytes of one artifact."""

    def get(self, sha256: str) -> bytes:
        """The artifact's bytes (raises when missing or altered)."""
        ...


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


def _parse(value: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


class _LogHistogram:
    """Durations in logarithmic buckets: percentiles within ~1 % in O(buckets) memory."""

    __slots__ = ("count", "counts")

    def __init__(self) -> None:
        self.counts: collections.Counter[int] = collections.Counter()
        self.count = 0

    def add(self, value: float) -> None:
        bucket = math.floor(math.log2(max(value, _MIN_DURATION)) * _BUCKETS_PER_DOUBLING)
        self.counts[bucket] += 1
        self.count += 1

    def quantile(self, q: float) -> float | None:
        if not self.count:
            return None
        rank = q * (self.count - 1)
        seen = 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen > rank:
                return float(2 ** ((bucket + 0.5) / _BUCKETS_PER_DOUBLING))
        return None  # pragma: no cover - rank < count


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values.sort()
    position = q * (len(values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


@dataclasses.dataclass(slots=True)
class _Day:
    checks: int = 0
    failures: int = 0
    durations: list[float] = dataclasses.field(default_factory=list)
    p50: float | None = None
    p95: float | None = None
    closed: bool = False

    def close(self) -> None:
        if not self.closed:
            self.p50 = _quantile(self.durations, 0.5)
            self.p95 = _quantile(self.durations, 0.95)
            self.durations = []
            self.closed = True


@dataclasses.dataclass(slots=True)
class _TargetStats:
    days: dict[dt.date, _Day] = dataclasses.field(default_factory=dict)
    histogram: _LogHistogram = dataclasses.field(default_factory=_LogHistogram)
    checks: int = 0
    failures: int = 0
    latest_day: dt.date | None = None

    def add(self, day: dt.date, duration: float, *, failed: bool, offline: bool) -> None:
        record = self.days.get(day)
        if record is None:
            record = self.days[day] = _Day()
        self.checks += 1
        record.checks += 1
        if offline:
            return
        if failed:
            self.failures += 1
            record.failures += 1
        self.histogram.add(duration)
        if not record.closed:
            record.durations.append(duration)
        if self.latest_day is None or day > self.latest_day:
            # Entries come in time order: days two behind the newest are complete.
            for old_day, old in self.days.items():
                if (day - old_day).days >= 2:
                    old.close()
            self.latest_day = day


@dataclasses.dataclass(slots=True)
class _Custody:
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
    timestamps: int = 0
    tsa: str | None = None
    last_timestamp: dt.datetime | None = None
    public_key: str | None = None
    warcs: int = 0
    screenshots: int = 0

    def note_time(self, moment: dt.datetime | None) -> None:
        if moment is None:
            return
        if self.first_time is None or moment < self.first_time:
            self.first_time = moment
        if self.last_time is None or moment > self.last_time:
            self.last_time = moment


def _decode(item: tuple[int, bytes] | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(item, Mapping):
        return dict(item)
    seq, data = item
    entry: dict[str, Any] = json.loads(data)
    entry.setdefault("seq", seq)
    return entry


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


def build_report_data(  # noqa: PLR0917 - the brief's signature
    entries: Iterable[tuple[int, bytes] | Mapping[str, Any]],
    outages: Sequence[OutageRecord],
    settings: Settings,
    period: tuple[dt.datetime, dt.datetime],
    targets: Sequence[Target],
    artifacts: ArtifactReader | Callable[[str], bytes | None] | None,
    corroboration: Corroboration | None = None,
    *,
    outage_vantages: Mapping[str, Sequence[str]] | None = None,
    generated_at: dt.datetime | None = None,
    bundle_name: str = "preuves.zip",
    files: Sequence[tuple[str, str]] = (),
    public_key: str | None = None,
    now: dt.datetime | None = None,
) -> ReportData:
    """Everything the report shows, from the ledger entries of `period` in one pass.

    `entries`: the ledger range as ``(seq, canonical JSON bytes)`` (``Ledger.iter_entries``)
    or decoded entries, in seq order. `outages`: the outage records overlapping the period.
    `outage_vantages`: with corroboration, outage id -> vantages that saw it. Availability
    counts only monitored time (gaps and vantage-offline periods are excluded).
    """
    start, end = period
    generated = generated_at or dt.datetime.now(dt.UTC)
    clock_now = min(now or generated, end)
    wanted = {t.id for t in targets}
    index = AvailabilityIndex(settings.maintenance)
    stats = {t.id: _TargetStats() for t in targets}
    custody = _Custody(public_key=public_key)
    tally = ReportFacts()
    wanted_shots: dict[str, str | None] = {}  # sha256 -> outage id
    for record in outages:
        if record.target_id not in wanted:
            continue
        for sha, art_kind in record.artifacts.items():
            if art_kind == "screenshot" and len(wanted_shots) < MAX_SCREENSHOTS:
                wanted_shots.setdefault(sha, record.id)
                break  # one per outage first
    extra_shots: dict[str, None] = {}
    shot_facts: dict[str, tuple[str, dt.datetime]] = {}
    lo, hi = start.timestamp(), end.timestamp()
    offline_open = False
    day, day_lo, day_hi = dt.date.min, 0.0, 0.0  # the Paris day of the last observation

    for item in entries:
        entry = _decode(item)
        kind = entry.get("type")
        seq = entry.get("seq")
        custody.entries += 1
        if isinstance(seq, int):
            if custody.first_seq is None:
                custody.first_seq = seq
            custody.last_seq = seq
        if kind == "observation":
            custody.observations += 1
            started = _parse(str(entry["started_at"]))
            duration = float(entry.get("duration_s") or 0.0)
            custody.note_time(started + dt.timedelta(seconds=duration))
            target_id = str(entry.get("target_id"))
            if target_id not in wanted:
                continue
            ts = started.timestamp()
            success = bool(entry.get("success"))
            outcome = entry.get("outcome")
            offline = outcome in {_VANTAGE_OFFLINE, _JOURNEY_DRIFT}
            artifacts_of = entry.get("artifacts") or {}
            for sha, art_kind in artifacts_of.items():
                if art_kind == "warc":
                    custody.warcs += 1
                elif art_kind == "screenshot" and not success and not offline:
                    custody.screenshots += 1
                    if sha in wanted_shots:
                        shot_facts[sha] = (target_id, started)
                    elif len(extra_shots) < MAX_SCREENSHOTS:
                        extra_shots[sha] = None
                        shot_facts[sha] = (target_id, started)
            if not lo <= ts < hi:
                continue
            index.seen(target_id, ts)
            drift = index.timeline(target_id).drift
            if outcome == _JOURNEY_DRIFT and not drift.is_open:
                drift.add(ts)
            elif not offline:
                drift.close(ts)
            if not day_lo <= ts < day_hi:
                day, day_lo, day_hi = _paris_day(started)
            stats[target_id].add(day, duration, failed=not success, offline=offline)
            tally.observation(
                target_id,
                str(entry["started_at"]),
                entry.get("remote_ip"),
                entry.get("environment"),
            )
        elif kind == "outage":
            custody.outage_events += 1
            custody.note_time(_maybe_time(entry.get("at")))
        elif kind == "gap":
            index.gaps.add(
                _parse(str(entry["from"])).timestamp(), _parse(str(entry["to"])).timestamp()
            )
            custody.note_time(_maybe_time(entry.get("to")))
        elif kind == "vantage":
            at = _parse(str(entry["at"])).timestamp()
            custody.note_time(_maybe_time(entry.get("at")))
            if entry.get("event") == "offline" and not offline_open:
                index.vantage_offline.add(at)
                offline_open = True
            elif entry.get("event") == "online" and offline_open:
                index.vantage_offline.close(at)
                offline_open = False
        elif kind == CLOCK_JUMP:  # in the range: listed whatever the (doubtful) time it bears
            custody.note_time(_maybe_time(entry.get("wall_after")))
            tally.clock_jump(seq if isinstance(seq, int) else None, entry)
        elif kind == "checkpoint":
            custody.checkpoints += 1
            facts = CheckpointFacts(
                tree_size=int(entry.get("tree_size", seq or 0)),
                root_hash=str(entry.get("root_hash", "")),
                time=_maybe_time(entry.get("time")),
                seq=seq if isinstance(seq, int) else None,
            )
            if custody.first_checkpoint is None:
                custody.first_checkpoint = facts
            custody.last_checkpoint = facts
            custody.note_time(facts.time)
        elif kind == "timestamp":
            custody.timestamps += 1
            custody.tsa = str(entry.get("tsa") or custody.tsa or "") or None
            stamped = _maybe_time(entry.get("gen_time"))
            if stamped is not None:
                custody.last_timestamp = stamped
        else:
            custody.note_time(_maybe_time(entry.get("at") or entry.get("time")))

    for record in outages:
        if record.target_id not in wanted:
            continue
        timeline = index.timeline(record.target_id)
        intervals = timeline.down if record.kind == "down" else timeline.degraded
        if record.dismissed:  # a person said it was no outage of the site: unmonitored
            intervals = timeline.dismissed
        end_ts = record.end.timestamp() if record.end is not None else None
        intervals.add(record.start.timestamp(), end_ts)

    target_reports = []
    for target in targets:
        target_stats = stats[target.id]
        whole = index.availability(target.id, start, end, clock_now)
        daily = index.periods(target.id, start, end, clock_now, unit="day")
        points = []
        for availability in daily:
            day = availability.start.astimezone(PARIS).date()
            counts = target_stats.days.get(day)
            if counts is not None:
                counts.close()
            points.append(
                DayPoint(
                    day=day,
                    availability=availability.ratio,
                    checks=counts.checks if counts else 0,
                    failures=counts.failures if counts else 0,
                    p50_s=counts.p50 if counts else None,
                    p95_s=counts.p95 if counts else None,
                )
            )
        target_reports.append(
            TargetReport(
                id=target.id,
                name=target.display_name if hasattr(target, "display_name") else target.id,
                kind=target.kind,
                url=target.url,
                interval_s=settings.interval_of(target),
                timeout_s=settings.timeout_of(target),
                expectation=expectation_fr(target),
                availability=whole.ratio,
                monitored_s=whole.monitored_s,
                down_s=whole.down_s,
                degraded_s=whole.degraded_s,
                unmonitored_s=whole.unmonitored_s,
                maintenance_down_s=whole.maintenance_down_s,
                checks=target_stats.checks,
                failures=target_stats.failures,
                outages=sum(1 for o in outages if o.target_id == target.id and o.kind == "down"),
                p50_s=target_stats.histogram.quantile(0.5),
                p95_s=target_stats.histogram.quantile(0.95),
                slow_after_s=target.slow_after,
                days=tuple(points),
                steps=steps_fr(target),
            )
        )

    rows = []
    vantages_of = outage_vantages or {}
    for record in sorted(outages, key=lambda r: (r.started_at, r.id)):
        if record.target_id not in wanted:
            continue
        rows.append(outage_row(record, clock_now, vantages=tuple(vantages_of.get(record.id, ()))))

    screenshots = []
    if artifacts is not None:
        for sha in [*wanted_shots, *extra_shots][:MAX_SCREENSHOTS]:
            facts_of = shot_facts.get(sha)
            try:
                data = artifacts(sha) if callable(artifacts) else artifacts.get(sha)
            except Exception as exc:  # noqa: BLE001 - a missing capture is reported, not fatal
                log.warning("report_screenshot_unavailable", sha256=sha, error=str(exc))
                continue
            if data is None:
                continue
            thumb = thumbnail(data)
            if thumb is None:
                continue
            png, width, height = thumb
            screenshots.append(
                Screenshot(
                    sha256=sha,
                    target_id=facts_of[0] if facts_of else "",
                    taken_at=facts_of[1] if facts_of else None,
                    thumbnail_png=png,
                    outage_id=wanted_shots.get(sha),
                    width=width,
                    height=height,
                )
            )

    vantage = settings.vantage
    environment = tally.environment_facts(vantage.name, vantage.operator, settings.user_agent)
    jumps = tally.clock_jumps()
    custody_facts = Custody(
        ledger=ledger_kind(settings.ledger.url),
        first_seq=custody.first_seq,
        last_seq=custody.last_seq,
        entries=custody.entries,
        observations=custody.observations,
        outage_events=custody.outage_events,
        first_time=custody.first_time,
        last_time=custody.last_time,
        checkpoints=custody.checkpoints,
        first_checkpoint=custody.first_checkpoint,
        last_checkpoint=custody.last_checkpoint,
        timestamps=custody.timestamps,
        tsa=custody.tsa or settings.signing.tsa_url,
        last_timestamp=custody.last_timestamp,
        public_key=custody.public_key,
        warcs=custody.warcs,
        screenshots=custody.screenshots,
    )
    return ReportData(
        period_start=start,
        period_end=end,
        generated_at=generated,
        vantage=vantage.name,
        operator=vantage.operator,
        targets=tuple(target_reports),
        outages=tuple(rows),
        methodology=configured_methodology(settings),
        environment=environment,
        custody=custody_facts,
        screenshots=tuple(screenshots),
        corroboration=corroboration,
        bundle_name=bundle_name,
        files=tuple(files),
        clock_jumps=jumps,
        clock_jumps_total=tally.jumps_total if tally.jumps_total != len(jumps) else None,
    )


def _paris_day(moment: dt.datetime) -> tuple[dt.date, float, float]:
    """The Paris calendar day of `moment` and its bounds as unix seconds."""
    day = moment.astimezone(PARIS).date()
    lo = dt.datetime.combine(day, dt.time(), PARIS).timestamp()
    hi = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), PARIS).timestamp()
    return day, lo, hi


def _maybe_time(value: Any) -> dt.datetime | None:
    if isinstance(value, str):
        try:
            return _parse(value)
        except ValueError:
            return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    return None
