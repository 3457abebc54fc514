"""The French report of an evidence bundle, built from the figures gathered while it streamed.

It maps a `BundleSummary` to `ReportData` and renders it: it never reads the ledger again
(a year of entries is streamed once, by the bundle), and never invents a figure it lacks.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import structlog

from config.targets import CONTROL_PREFIX
from config.vocabulary import Outcome
from evidence.bundle.model import DURATION_BOUNDS, BundleSummary, TargetStats
from evidence.ledger.reviews import review_required
from evidence.outages.availability import PARIS, AvailabilityIndex, union
from evidence.report.build import (
    MAX_SCREENSHOTS,
    configured_methodology,
    expectation_fr,
    ledger_kind,
    outage_row,
    steps_fr,
    thumbnail,
)
from evidence.report.data import (
    CheckpointFacts,
    ClockJumpFact,
    Corroboration,
    Custody,
    DayPoint,
    EnvironmentFacts,
    Methodology,
    OutageRow,
    ReportData,
    Screenshot,
    TargetReport,
)
from evidence.report.facts import ReportFacts, parse_time, sample_environment
from evidence.report.render import render_report

if TYPE_CHECKING:
    from config.settings import Settings
    from config.targets import Target
    from evidence.bundle.corroborate import Corroboration as CorroborationResult
    from evidence.ledger.checkpoint import Checkpoint

__all__ = [
    "BUNDLE_FILES",
    "BUNDLE_NAME",
    "bundle_report_data",
    "corroborated_report",
    "duration_quantile",
    "render_bundle_report",
]

log = structlog.get_logger("vigie.report")

_DAY_FIGURES = 3  # TargetStats.daily: checks, successes, summed durations, then buckets
_VANTAGE_OFFLINE = Outcome.VANTAGE_OFFLINE.value
# The name the report gives a bundle exported without one (the export gives the real one).
BUNDLE_NAME = "archive.zip"
_RENDER_LOCK = threading.Lock()  # rl_config is global: one invariant render at a time
_NO_CONFIG = "non renseigné (configuration absente lors de l'export)"

BUNDLE_FILES: tuple[tuple[str, str], ...] = (
    ("manifest.json", "liste de tous les fichiers avec leur empreinte SHA-256 et leur taille"),
    ("manifest.sig", "signature du manifeste par la clé du point d'observation"),
    ("manifest.tsr", "horodatage RFC 3161 du manifeste (si une autorité est configurée)"),
    ("observations.jsonl", "les entrées du registre, octet pour octet"),
    ("observations.csv", "les mêmes observations, lisibles dans un tableur"),
    ("outages.csv", "les interruptions et lenteurs constatées"),
    ("artifacts/", "captures des échecs (WARC, captures d'écran, HTML)"),
    ("proofs/", "points de contrôle signés, preuves de cohérence, horodatages, clé publique"),
    ("report.pdf", "ce rapport"),
    ("verify.py", "vérificateur autonome (Python et la bibliothèque cryptography)"),
    ("LISEZMOI.txt", "explication de chaque fichier et de la vérification"),
)


def render_bundle_report(
    summary: BundleSummary,
    artifact: Callable[[str], bytes | None],
    *,
    corroboration: CorroborationResult | None = None,
) -> bytes:
    """``report.pdf`` of a bundle: `bundle_report_data` drawn by `report.render_report`.

    The PDF is reproducible (reportlab's invariant mode: no random document id, a fixed
    creation date in the metadata; the report shows when it was generated), so the same
    export gives the same bytes. `corroboration`: the result of `vigie corroborate`, so that
    the report names the vantages that saw each outage.
    """
    from reportlab import rl_config

    data = bundle_report_data(summary, artifact, corroboration=corroboration)
    with _RENDER_LOCK:
        saved = rl_config.invariant
        rl_config.invariant = 1
        try:
            return render_report(data)
        finally:
            rl_config.invariant = saved


def corroborated_report(
    corroboration: CorroborationResult,
) -> Callable[[BundleSummary, Callable[[str], bytes | None]], bytes]:
    """A report hook for `export_bundle(report=...)` that names the corroborating vantages.

    `corroboration`: `vigie corroborate` output (``Corroboration.from_dict`` of its JSON).
    """

    def render(summary: BundleSummary, artifact: Callable[[str], bytes | None]) -> bytes:
        return render_bundle_report(summary, artifact, corroboration=corroboration)

    return render


def duration_quantile(counts: Sequence[float], q: float) -> float | None:
    """The `q` quantile of durations counted per `DURATION_BOUNDS` bucket (None: no count).

    The value is the geometric middle of the bucket holding the rank (within ~5 %).
    """
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * (total - 1)
    seen = 0.0
    for index, count in enumerate(counts):
        seen += count
        if seen > rank:
            if index == 0:
                return DURATION_BOUNDS[0]
            if index >= len(DURATION_BOUNDS):
                return DURATION_BOUNDS[-1]
            return math.sqrt(DURATION_BOUNDS[index - 1] * DURATION_BOUNDS[index])
    return None  # pragma: no cover - rank < total


def _index(summary: BundleSummary, maintenance: Sequence[Any]) -> AvailabilityIndex:
    """Monitored, down and degraded time of every target, from the summary alone."""
    index = AvailabilityIndex(maintenance)
    for target_id, stats in summary.targets.items():
        first = parse_time(stats.first_at)
        if first is not None:
            index.seen(target_id, first.timestamp())
    for start_text, end_text in summary.gaps:
        gap_start, gap_end = parse_time(start_text), parse_time(end_text)
        if gap_start is not None and gap_end is not None and gap_end >= gap_start:
            index.gaps.add(gap_start.timestamp(), gap_end.timestamp())
    offline_open = False
    for at_text, event in sorted(summary.vantage_events):
        at = parse_time(at_text)
        if at is None:
            continue
        if event == "offline" and not offline_open:
            index.vantage_offline.add(at.timestamp())
            offline_open = True
        elif event == "online" and offline_open:
            index.vantage_offline.close(at.timestamp())
            offline_open = False
    for at_text, event, target_id in sorted(summary.drift_events):  # journey to update
        at = parse_time(at_text)
        if at is None:
            continue
        drift = index.timeline(target_id).drift
        if event == "started" and not drift.is_open:
            drift.add(at.timestamp())
        elif event == "ended":
            drift.close(at.timestamp())
    for record in summary.outages:
        timeline = index.timeline(record.target_id)
        intervals = timeline.down if record.kind == "down" else timeline.degraded
        if record.dismissed:  # a person said it was no outage of the site: unmonitored
            intervals = timeline.dismissed
        end = record.end
        intervals.add(record.start.timestamp(), None if end is None else end.timestamp())
    return index


_WHY_BEFORE = "avant la première vérification de ce service"
_WHY_GAP = "Vigie arrêté (entrée « gap » du registre)"
_WHY_OFFLINE = "connexion du point d'observation coupée (tous les sites témoins en échec)"


def unmonitored_spans(
    index: AvailabilityIndex, target_id: str, start: dt.datetime, end: dt.datetime, now: dt.datetime
) -> tuple[tuple[dt.datetime, dt.datetime, str], ...]:
    """The dated spans of [start, end) not monitored for `target_id`, each with its reason:
    what `AvailabilityIndex.availability` counts as « non surveillé », listed."""
    a, b = start.timestamp(), min(end.timestamp(), now.timestamp())
    timeline = index.timelines.get(target_id)
    first = timeline.first_seen if timeline is not None else None
    spans: list[tuple[float, float, str]] = []
    if first is None or first >= b:
        spans.append((a, b, _WHY_BEFORE))
    else:
        if first > a:
            spans.append((a, first, _WHY_BEFORE))
        lo, n = max(a, first), now.timestamp()
        spans += [(x, y, _WHY_GAP) for x, y in index.gaps.clip(lo, b, n)]
        offline = index.vantage_offline.clip(lo, b, n)
        if timeline is not None:
            offline = union(offline, timeline.offline.clip(lo, b, n))
        spans += [(x, y, _WHY_OFFLINE) for x, y in offline]
    return tuple(
        (dt.datetime.fromtimestamp(x, dt.UTC), dt.datetime.fromtimestamp(y, dt.UTC), why)
        for x, y, why in sorted(spans)
        if y - x >= 1.0  # below a second: the time between two clock readings
    )


def _buckets(figures: Iterable[Sequence[float]]) -> list[float]:
    total = [0.0] * (len(DURATION_BOUNDS) + 1)
    for day in figures:
        for i, count in enumerate(day[_DAY_FIGURES:]):
            total[i] += count
    return total


def _interval_estimate(stats: TargetStats) -> float:
    """Seconds between checks as observed (only used when the export had no configuration)."""
    first, last = parse_time(stats.first_at), parse_time(stats.last_at)
    if first is None or last is None or stats.checks < 2:
        return 0.0
    return round((last - first).total_seconds() / (stats.checks - 1))


def _target_report(
    stats: TargetStats,
    *,
    config: Target | None,
    settings: Settings | None,
    summary: BundleSummary,
    index: AvailabilityIndex,
    now: dt.datetime,
) -> TargetReport:
    start, end = summary.period_start, summary.period_end
    whole = index.availability(stats.target_id, start, end, now)
    points = []
    for availability in index.periods(stats.target_id, start, end, now, unit="day"):
        day = availability.start.astimezone(PARIS).date()
        figures = stats.daily.get(day.isoformat())
        points.append(
            DayPoint(
                day=day,
                availability=availability.ratio,
                checks=int(figures[0]) if figures else 0,
                failures=int(figures[0] - figures[1]) if figures else 0,
                p50_s=duration_quantile(figures[_DAY_FIGURES:], 0.5) if figures else None,
                p95_s=duration_quantile(figures[_DAY_FIGURES:], 0.95) if figures else None,
            )
        )
    period_buckets = _buckets(stats.daily.values())
    if config is not None and settings is not None:
        interval, timeout = settings.interval_of(config), settings.timeout_of(config)
        expectation, steps = expectation_fr(config), steps_fr(config)
        slow_after = config.slow_after
    else:
        interval, timeout = _interval_estimate(stats), 0.0
        expectation, steps, slow_after = _NO_CONFIG, (), None
    name = (config.display_name if config is not None else "") or stats.name or stats.target_id
    return TargetReport(
        id=stats.target_id,
        name=name,
        kind=stats.kind or (config.kind if config is not None else "http"),
        url=stats.url or (config.url if config is not None else ""),
        interval_s=interval,
        timeout_s=timeout,
        expectation=expectation,
        availability=whole.ratio,
        monitored_s=whole.monitored_s,
        down_s=whole.down_s,
        degraded_s=whole.degraded_s,
        unmonitored_s=whole.unmonitored_s,
        maintenance_down_s=whole.maintenance_down_s,
        checks=stats.checks,
        failures=stats.checks - stats.successes - stats.outcomes.get(_VANTAGE_OFFLINE, 0),
        outages=sum(
            1 for o in summary.outages if o.target_id == stats.target_id and o.kind == "down"
        ),
        p50_s=duration_quantile(period_buckets, 0.5),
        p95_s=duration_quantile(period_buckets, 0.95),
        slow_after_s=slow_after,
        days=tuple(points),
        steps=steps,
        unmonitored=unmonitored_spans(index, stats.target_id, start, end, now),
    )


def _outage_rows(
    summary: BundleSummary, now: dt.datetime, names: Mapping[str, tuple[str, ...]] | None
) -> tuple[OutageRow, ...]:
    """The outages; with corroboration, who saw each (by name when `names` is given)."""
    return tuple(
        outage_row(
            record,
            now,
            vantages=names.get(record.id, ()) if names is not None else (),
            vantage_count=0 if names is not None else summary.corroboration.get(record.id, 0),
            review_required=review_required(summary.settings, record.target_id),
        )
        for record in sorted(summary.outages, key=lambda r: (r.started_at, r.id))
    )


_NOT_FAILURES = frozenset({"ok", _VANTAGE_OFFLINE})


def _screenshots(
    summary: BundleSummary, artifact: Callable[[str], bytes | None]
) -> tuple[tuple[Screenshot, ...], int]:
    """Thumbnails of the bundle's failure screenshots (one per outage first, then others),
    each with the time of its check; and how many captures were left out because their
    check was made while the vantage's own connection was down (not a failure of the site).

    A capture of a successful check, or one whose check the bundle does not carry, is never
    shown as a failure.
    """
    in_bundle = summary.artifact_files
    info = summary.capture_info
    target_of = dict(summary.screenshots)
    offline = sum(
        1 for sha, (_, outcome) in info.items() if outcome == _VANTAGE_OFFLINE and sha in in_bundle
    )

    def failure(sha: str) -> bool:
        return sha in in_bundle and sha in info and info[sha][1] not in _NOT_FAILURES

    chosen: dict[str, tuple[str, str | None]] = {}  # sha -> (target, outage id)
    for record in summary.outages:
        for sha, kind in record.artifacts.items():
            if kind == "screenshot" and failure(sha):
                chosen.setdefault(sha, (record.target_id, record.id))
                break
    for sha, target in summary.screenshots:
        if failure(sha):
            chosen.setdefault(sha, (target, None))
    shots = []
    for sha, (target, outage_id) in list(chosen.items())[:MAX_SCREENSHOTS]:
        try:
            data = artifact(sha)
        except Exception as exc:  # noqa: BLE001 - a missing capture is reported, not fatal
            log.warning("report_screenshot_unavailable", sha256=sha, error=str(exc))
            continue
        thumb = None if data is None else thumbnail(data)
        if thumb is None:
            continue
        png, width, height = thumb
        shots.append(
            Screenshot(
                sha256=sha,
                target_id=target_of.get(sha, target),
                taken_at=parse_time(info[sha][0]),
                thumbnail_png=png,
                outage_id=outage_id,
                width=width,
                height=height,
            )
        )
    return tuple(shots), offline


def _facts(summary: BundleSummary) -> ReportFacts | None:
    """The tallies the export gathered while streaming (None: this export did not)."""
    facts = getattr(summary, "report_facts", None)
    return facts if isinstance(facts, ReportFacts) else None


def _environment(summary: BundleSummary, settings: Settings | None) -> EnvironmentFacts:
    """Every distinct fact of the bundle's observations when the export tallied them; else
    the facts of its first observation, marked as such (`complete=False`)."""
    user_agent = settings.user_agent if settings is not None else None
    facts = _facts(summary)
    if facts is not None:
        return facts.environment_facts(summary.vantage, summary.operator, user_agent)
    return sample_environment(
        summary.environment,
        summary.vantage,
        summary.operator,
        user_agent=user_agent,
        kinds=frozenset(stats.kind for stats in summary.targets.values()),
    )


def _clock_jumps(summary: BundleSummary) -> tuple[tuple[ClockJumpFact, ...], int | None, bool]:
    """(jumps listed, total when more were recorded, whether the export looked for them)."""
    facts = _facts(summary)
    if facts is None:
        return (), None, False
    jumps = facts.clock_jumps()
    return jumps, (facts.jumps_total if facts.jumps_total != len(jumps) else None), True


def _checkpoint_facts(checkpoint: Checkpoint) -> CheckpointFacts:
    import base64

    return CheckpointFacts(
        tree_size=checkpoint.tree_size,
        root_hash=base64.b64encode(checkpoint.root_hash).decode("ascii"),
        time=parse_time(checkpoint.time),
        seq=checkpoint.seq,
    )


def _custody(summary: BundleSummary, settings: Settings | None) -> Custody:
    firsts = [t for s in summary.targets.values() if (t := parse_time(s.first_at)) is not None]
    lasts = [t for s in summary.targets.values() if (t := parse_time(s.last_at)) is not None]
    stamps = [t for text in summary.timestamps.values() if (t := parse_time(text)) is not None]
    checkpoints = summary.checkpoints
    tsa = summary.tsa_name or (settings.signing.tsa_url if settings is not None else None)
    return Custody(
        ledger=(
            ledger_kind(str(settings.ledger.url))
            if settings is not None
            else "registre Vigie (journal en ajout seul)"
        ),
        first_seq=summary.range_start if summary.range_stop > summary.range_start else None,
        last_seq=summary.range_stop - 1 if summary.range_stop > summary.range_start else None,
        entries=summary.entries,
        observations=sum(s.checks for s in summary.targets.values()),
        outage_events=sum(2 if r.ended_at else 1 for r in summary.outages),
        first_time=min(firsts, default=None),
        last_time=max(lasts, default=None),
        checkpoints=len(checkpoints),
        first_checkpoint=_checkpoint_facts(checkpoints[0]) if checkpoints else None,
        last_checkpoint=_checkpoint_facts(checkpoints[-1]) if checkpoints else None,
        timestamps=len(summary.timestamps),
        tsa=tsa,
        last_timestamp=max(stamps, default=None),
        public_key=summary.public_key or None,
        warcs=sum(1 for path in summary.artifact_files.values() if ".warc" in path),
        screenshots=len(summary.screenshots),
    )


def _methodology(settings: Settings | None) -> Methodology:
    if settings is None:
        from config.settings import DEFAULT_USER_AGENT, OutageRules

        rules = OutageRules()
        return Methodology(
            user_agent=DEFAULT_USER_AGENT,
            confirm_after=rules.confirm_after,
            recover_after=rules.recover_after,
            recheck_s=rules.recheck,
        )
    return configured_methodology(settings)


def bundle_report_data(
    summary: BundleSummary,
    artifact: Callable[[str], bytes | None],
    *,
    corroboration: CorroborationResult | None = None,
) -> ReportData:
    """What the report of the bundle shows, from `summary` only (no pass over the ledger).

    Availability is time-based: monitored time from each target's first
    check, minus the gaps and vantage-offline spans recorded in the range, less the confirmed
    outages. Durations are percentiles of fixed buckets (within ~5 %). `settings` (when the
    CLI exported) gives the targets' configuration; without it, what the summary lacks is
    said to be missing, and the interval is the observed one. `corroboration` (the result
    of `vigie corroborate`) names the vantages; without it, `summary.corroboration` gives
    only how many saw each outage, and the report says the names were not given.
    """
    settings = summary.settings
    configured: dict[str, Target] = (
        {t.id: t for t in settings.targets} if settings is not None else {}
    )
    now = min(summary.created_at, summary.period_end)
    index = _index(summary, settings.maintenance if settings is not None else ())
    wanted = set(summary.target_filter)
    targets = tuple(
        _target_report(
            stats,
            config=configured.get(target_id),
            settings=settings,
            summary=summary,
            index=index,
            now=now,
        )
        for target_id, stats in summary.targets.items()
        if (not wanted or target_id in wanted) and not target_id.startswith(CONTROL_PREFIX)
    )
    seen: Corroboration | None = None
    names: dict[str, tuple[str, ...]] | None = None
    if corroboration is not None:
        names = corroboration.names_by_outage(summary.vantage)
        seen = Corroboration(
            vantages=corroboration.vantages, min_vantages=corroboration.min_vantages
        )
    elif summary.corroboration:
        seen = Corroboration(vantages=(), count=max(summary.corroboration.values()))
    jumps, jumps_total, jumps_known = _clock_jumps(summary)
    shots, offline_captures = _screenshots(summary, artifact)
    return ReportData(
        period_start=summary.period_start,
        period_end=summary.period_end,
        generated_at=summary.created_at,
        vantage=summary.vantage,
        operator=summary.operator,
        targets=targets,
        outages=_outage_rows(summary, now, names),
        methodology=_methodology(settings),
        environment=_environment(summary, settings),
        custody=_custody(summary, settings),
        screenshots=shots,
        offline_captures=offline_captures,
        corroboration=seen,
        bundle_name=summary.bundle_name or BUNDLE_NAME,
        files=_files(summary),
        clock_jumps=jumps,
        clock_jumps_total=jumps_total,
        clock_jumps_known=jumps_known,
        requested=_requested(summary),
        single_outage=summary.mode == "outage",
    )


def _files(summary: BundleSummary) -> tuple[tuple[str, str], ...]:
    """The members of `BUNDLE_FILES` this bundle has (no manifest.tsr without a TSA, no
    artifacts/ without captures)."""
    absent = set()
    if summary.tsa_name is None:
        absent.add("manifest.tsr")
    if not summary.artifact_files:
        absent.add("artifacts/")
    return tuple((name, what) for name, what in BUNDLE_FILES if name not in absent)


def _requested(summary: BundleSummary) -> tuple[dt.datetime, dt.datetime] | None:
    """The period asked for, when the data of the bundle cover visibly less of it."""
    start, end = summary.requested_start, summary.requested_end
    if start is None or end is None:
        return None
    slack = dt.timedelta(minutes=1)
    if summary.period_start - start < slack and end - summary.period_end < slack:
        return None
    return start, end
