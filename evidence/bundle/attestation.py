"""The figures of an attestation d'observation: what Vigie saw of some services during the
time windows a person gives (checks, vantages, failures in plain words, outages, captures).

It only reads the ledger (opened read-only by the caller). It never stores the reference of
the person's case, and it states only what was observed: a window without checks says so.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from config.vocabulary import GAP, OUTAGE, REVIEW, Outcome
from evidence.outages.availability import PARIS
from evidence.outages.tracker import OutageRecord, outages_from_entries

if TYPE_CHECKING:
    from evidence.ledger.core import Ledger

__all__ = [
    "CAPTURE_MARGIN",
    "Attestation",
    "Capture",
    "Failure",
    "Silence",
    "TargetInfo",
    "Window",
    "WindowError",
    "WindowFacts",
    "build_attestation",
    "describe_failure",
    "parse_window",
]

CAPTURE_MARGIN = dt.timedelta(hours=6)  # how far from a window a capture is looked for
SILENCE_FACTOR = 2  # no check started for this many (interval + timeout): not watched
_OBSERVATION = "observation"
_OFFLINE = Outcome.VANTAGE_OFFLINE.value
_WINDOW = re.compile(r"^\s*(?P<start>[0-9T:\-. ]+?)\s*/\s*(?P<end>[0-9T:\-. ]+?)\s*$")


class WindowError(ValueError):
    """A --window value that cannot be read; the message names it and says why."""


@dataclasses.dataclass(frozen=True, slots=True)
class Window:
    """A time window as the person gave it, in Paris time."""

    text: str
    start: dt.datetime  # aware, UTC (Python compares and subtracts two datetimes of the same
    end: dt.datetime  # zone by their wall clocks: Paris times would lose the clock change)
    ambiguous: tuple[str, ...] = ()  # local times that occur twice (autumn change)

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", self.start.astimezone(dt.UTC))
        object.__setattr__(self, "end", self.end.astimezone(dt.UTC))

    @property
    def local_start(self) -> dt.datetime:
        """The start in Paris time."""
        return self.start.astimezone(PARIS)

    @property
    def local_end(self) -> dt.datetime:
        """The end in Paris time."""
        return self.end.astimezone(PARIS)

    @property
    def real_seconds(self) -> float:
        """Elapsed seconds (a window across a clock change is one hour longer or shorter)."""
        return (self.end - self.start).total_seconds()

    @property
    def wall_seconds(self) -> float:
        """Seconds between the two clock readings, as the person reads them."""
        naive = self.local_end.replace(tzinfo=None) - self.local_start.replace(tzinfo=None)
        return naive.total_seconds()

    @property
    def clock_change(self) -> bool:
        """Whether the legal time changes inside the window."""
        return self.local_start.utcoffset() != self.local_end.utcoffset()


def _local(text: str, *, what: str, window: str) -> tuple[dt.datetime, bool]:
    """A Paris wall time; (moment, ambiguous). WindowError for a time that does not exist."""
    try:
        naive = dt.datetime.fromisoformat(text)
    except ValueError:
        raise WindowError(
            f"--window {window!r}: {what} {text!r} is not a date-time (e.g. 2026-11-03T09:00)"
        ) from None
    if naive.tzinfo is not None:
        raise WindowError(
            f"--window {window!r}: give Paris wall-clock times without an offset ({text!r})"
        )
    first = naive.replace(tzinfo=PARIS, fold=0)
    second = naive.replace(tzinfo=PARIS, fold=1)
    if first.astimezone(dt.UTC).astimezone(PARIS).replace(tzinfo=None) != naive:
        raise WindowError(
            f"--window {window!r}: {text} does not exist in Paris (the clocks jump forward "
            "that night); give a time before or after the jump"
        )
    return first, first.utcoffset() != second.utcoffset()


def parse_window(text: str) -> Window:
    """``2026-11-03T09:00/11:30``, ``2026-11-03T22:00/2026-11-04T01:00`` or
    ``2026-11-03/2026-11-04`` (whole Paris days, the end day included), in Paris time."""
    match = _WINDOW.match(text)
    if match is None:
        raise WindowError(
            f"--window {text!r}: expected START/END, e.g. 2026-11-03T09:00/11:30 (Paris time)"
        )
    start_text, end_text = match["start"], match["end"]
    ambiguous = []
    if len(start_text) == 10:
        start_text += "T00:00"
    start, doubtful = _local(start_text, what="start", window=text)
    if doubtful:
        ambiguous.append(start_text)
    if len(end_text) == 10:  # a day: up to the end of it
        try:
            day = dt.date.fromisoformat(end_text) + dt.timedelta(days=1)
        except ValueError:
            raise WindowError(f"--window {text!r}: end {end_text!r} is not a date") from None
        end_text = f"{day.isoformat()}T00:00"
    elif "T" not in end_text:  # a time of the start's day
        end_text = f"{start.date().isoformat()}T{end_text}"
    end, doubtful = _local(end_text, what="end", window=text)
    if doubtful:
        ambiguous.append(end_text)
    if end.astimezone(dt.UTC) <= start.astimezone(dt.UTC):
        raise WindowError(f"--window {text!r}: the end must come after the start")
    if end - start > dt.timedelta(days=31):
        raise WindowError(f"--window {text!r}: a window may last 31 days at most")
    return Window(text.strip(), start, end, tuple(ambiguous))


@dataclasses.dataclass(frozen=True, slots=True)
class TargetInfo:
    """What the attestation says of a watched service."""

    id: str
    name: str
    kind: str  # http | browser
    url: str
    interval_s: float
    timeout_s: float = 0.0  # a check may last this long before the next one starts

    @property
    def silence_s(self) -> float:
        """Longer than this without a check starting, the target was not watched."""
        return SILENCE_FACTOR * (self.interval_s + self.timeout_s)


_PLAIN = {
    "dns_error": "l'adresse du site ne menait nulle part (nom de domaine introuvable)",
    "connect_error": "le serveur du site refusait la connexion",
    "tls_error": "le site présentait un certificat de sécurité invalide",
    "timeout": "le site ne répondait pas dans le délai d'attente",
    "content_mismatch": "une page s'affichait, mais sans le contenu attendu",
    "browser_error": "la page ne pouvait pas être ouverte dans le navigateur",
    "too_large": "le site renvoyait une réponse anormalement volumineuse",
    "protocol_error": "le site renvoyait une réponse invalide",
    "redirect_loop": "le site renvoyait sans fin d'une adresse à une autre",
    "blocked": "la page tentait d'envoyer des données, ce que Vigie s'interdit",
}


def describe_failure(observation: Mapping[str, Any], target: TargetInfo | None) -> str:
    """A failed check in plain French: what a person would have seen, never an outcome code."""
    outcome = str(observation.get("outcome", ""))
    status = observation.get("http_status")
    page = f"la page « {target.name} »" if target is not None else "la page"
    if outcome == "http_status":
        if status in (502, 503, 504):
            return f"{page} ne s'affichait pas : le serveur répondait qu'il était indisponible"
        if isinstance(status, int) and status >= 500:
            return f"{page} ne s'affichait pas : le serveur répondait par une erreur interne"
        if status == 404:
            return f"{page} ne s'affichait pas : le serveur répondait « page introuvable »"
        return f"{page} ne s'affichait pas : le serveur répondait par une erreur"
    if outcome == "step_failed":
        steps = observation.get("steps") or []
        done = [s for s in steps if isinstance(s, Mapping)]
        failed = next((i for i, s in enumerate(done, 1) if not s.get("ok", True)), None)
        if failed == 1 or not done:
            return f"{page} ne s'affichait pas (le chargement n'aboutissait pas)"
        if failed is not None:
            return (
                f"{page} ne s'affichait pas en entier : le parcours s'arrêtait à l'étape "
                f"{failed} sur {len(done)}"
            )
        return f"{page} ne s'affichait pas en entier : le parcours ne pouvait pas être achevé"
    words = _PLAIN.get(outcome)
    if words is None:
        return f"{page} ne fonctionnait pas normalement"
    return f"{page} : {words}"


@dataclasses.dataclass(frozen=True, slots=True)
class Failure:
    """One failed check: its observation number, time, vantage and plain description."""

    seq: int
    at: dt.datetime
    vantage: str
    words: str
    artifacts: Mapping[str, str]  # sha256 -> kind


@dataclasses.dataclass(frozen=True, slots=True)
class Capture:
    """The record of the failure nearest to a window (a screenshot when there is one)."""

    failure: Failure
    sha256: str
    kind: str  # screenshot | html | warc
    offset_s: float  # 0 inside the window; < 0 before its start; > 0 after its end


@dataclasses.dataclass(frozen=True, slots=True)
class Silence:
    """A stretch of a window with no check of the target: Vigie knows nothing of it."""

    start: dt.datetime
    end: dt.datetime
    reason: str  # French: why, when known

    @property
    def seconds(self) -> float:
        """Its length."""
        return (self.end - self.start).total_seconds()


@dataclasses.dataclass(frozen=True, slots=True)
class WindowFacts:
    """What the ledger holds of one target during one window."""

    window: Window
    target: TargetInfo
    observed_end: dt.datetime  # the window's end, or the attestation's time when earlier
    checks: int
    successes: int
    offline: int  # checks made while this vantage's own network was down (not the service's)
    vantages: tuple[str, ...]
    seqs: tuple[int, ...]  # every observation of the target in the window
    failures: tuple[Failure, ...]
    silences: tuple[Silence, ...]
    outages: tuple[OutageRecord, ...]
    capture: Capture | None

    @property
    def failed(self) -> int:
        """Checks that failed because of the service (own-network failures excluded)."""
        return len(self.failures)

    @property
    def future_s(self) -> float:
        """Seconds of the window after the attestation's time."""
        return max(0.0, (self.window.end - self.observed_end).total_seconds())

    @property
    def unwatched_s(self) -> float:
        """Seconds of the past part of the window without checks."""
        return sum(s.seconds for s in self.silences)

    def failure_counts(self) -> list[tuple[str, int]]:
        """Plain descriptions with how many checks each, most frequent first."""
        counts = Counter(f.words for f in self.failures)
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (`vigie attestation --format json`)."""
        capture = None
        if self.capture is not None:
            capture = {
                "seq": self.capture.failure.seq,
                "at": _iso(self.capture.failure.at),
                "sha256": self.capture.sha256,
                "kind": self.capture.kind,
                "offset_s": round(self.capture.offset_s, 3),
            }
        return {
            "window": self.window.text,
            "start": self.window.local_start.isoformat(),
            "end": self.window.local_end.isoformat(),
            "clock_change": self.window.clock_change,
            "target_id": self.target.id,
            "target_name": self.target.name,
            "checks": self.checks,
            "successes": self.successes,
            "failures": self.failed,
            "vantage_offline_checks": self.offline,
            "vantages": list(self.vantages),
            "observation_seqs": list(self.seqs),
            "failure_seqs": [f.seq for f in self.failures],
            "failures_described": [{"text": t, "count": n} for t, n in self.failure_counts()],
            "unwatched_s": round(self.unwatched_s, 3),
            "unwatched": [
                {"start": _iso(s.start), "end": _iso(s.end), "reason": s.reason}
                for s in self.silences
            ],
            "future_s": round(self.future_s, 3),
            "outages": [
                {
                    "id": o.id,
                    "kind": o.kind,
                    "started_at": o.started_at,
                    "ended_at": o.ended_at,
                    "failed_checks": o.failed_checks,
                    "review": None if o.review is None else o.review.text_fr,
                }
                for o in self.outages
            ],
            "capture": capture,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class Attestation:
    """Every window for every target, as of `generated_at`."""

    vantage: str
    operator: str
    generated_at: dt.datetime
    windows: tuple[Window, ...]
    facts: tuple[WindowFacts, ...]  # window by window, target by target
    reference: str | None = None  # printed only; never stored
    bundle_name: str | None = None
    bundle_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return {
            "vantage": self.vantage,
            "operator": self.operator,
            "generated_at": _iso(self.generated_at),
            "reference": self.reference,
            "bundle": self.bundle_name,
            "bundle_sha256": self.bundle_sha256,
            "windows": [f.to_dict() for f in self.facts],
        }

    def to_json(self) -> str:
        """Indented JSON text."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n"


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _parse(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


# --- reading the ledger -----------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class _Check:
    seq: int
    at: dt.datetime
    body: dict[str, Any]


def _checks(
    ledger: Ledger, targets: set[str], start: dt.datetime, end: dt.datetime
) -> list[_Check]:
    """Observations of `targets` made in ``[start, end)`` (binary search, then a range scan)."""
    from evidence.bundle.export import _seq_at

    size = ledger.size()
    first, stop = _seq_at(ledger, size, start), _seq_at(ledger, size, end)
    found = []
    markers = tuple(f'"target_id":{json.dumps(t)}'.encode() for t in targets)
    for row in ledger.iter_rows(first, max(first, stop)):
        if row.type != _OBSERVATION or not any(m in row.body for m in markers):
            continue
        body = json.loads(row.body)
        if body.get("target_id") not in targets:
            continue
        at = _parse(str(body["started_at"]))
        if start <= at < end:
            found.append(_Check(row.seq, at, body))
    return found


def _history(
    ledger: Ledger, ids: set[str]
) -> tuple[list[OutageRecord], list[tuple[dt.datetime, dt.datetime]], dict[str, dt.datetime]]:
    """One pass over the ledger: every outage, every period Vigie was not running, and when
    each target was first checked (observations are decoded only until that is known)."""
    events: list[dict[str, Any]] = []
    gaps = []
    first: dict[str, dt.datetime] = {}
    for row in ledger.iter_rows(0):
        if row.type in {OUTAGE, REVIEW}:  # events, and people's reviews of them
            event = json.loads(row.body)
            event.setdefault("seq", row.seq)
            events.append(event)
        elif row.type == GAP:
            body = json.loads(row.body)
            gaps.append((_parse(body["from"]), _parse(body["to"])))
        elif row.type == _OBSERVATION and len(first) < len(ids):
            body = json.loads(row.body)
            target = body.get("target_id")
            if target in ids and target not in first:
                first[target] = _parse(str(body["started_at"]))
    return outages_from_entries(events), gaps, first


def _failure(check: _Check, target: TargetInfo) -> Failure:
    return Failure(
        seq=check.seq,
        at=check.at,
        vantage=str(check.body.get("vantage", "")),
        words=describe_failure(check.body, target),
        artifacts=dict(check.body.get("artifacts") or {}),
    )


def _silences(
    times: Sequence[dt.datetime],
    start: dt.datetime,
    end: dt.datetime,
    limit_s: float,
    *,
    gaps: Sequence[tuple[dt.datetime, dt.datetime]],
    first_ever: dt.datetime | None,
) -> list[Silence]:
    """Stretches of ``[start, end)`` longer than `limit_s` without a check starting."""
    if end <= start:
        return []
    limit = dt.timedelta(seconds=limit_s)
    points = [start, *times, end]
    out = []
    for lo, hi in itertools.pairwise(points):
        if hi - lo <= limit:
            continue
        reason = ""
        if any(g_lo < hi and g_hi > lo for g_lo, g_hi in gaps):
            reason = "Vigie était arrêté (interruption enregistrée dans le registre)"
        elif first_ever is None or hi <= first_ever:
            reason = "la surveillance de ce service n'avait pas encore commencé"
        out.append(Silence(lo, hi, reason))
    return out


def _capture(
    facts_failures: Sequence[Failure],
    nearby: Sequence[Failure],
    window: Window,
) -> Capture | None:
    """The failure record nearest the window: inside first, a screenshot before other kinds."""

    def distance(failure: Failure) -> float:
        if failure.at < window.start:
            return (failure.at - window.start).total_seconds()
        if failure.at >= window.end:
            return (failure.at - window.end).total_seconds()
        return 0.0

    best: tuple[tuple[float, int, float], Capture] | None = None
    for failure in (*facts_failures, *nearby):
        for sha, kind in sorted(failure.artifacts.items()):
            offset = distance(failure)
            rank = (abs(offset), 0 if kind == "screenshot" else 1, failure.at.timestamp())
            if best is None or rank < best[0]:
                best = (rank, Capture(failure, sha, kind, offset))
    return None if best is None else best[1]


def build_attestation(
    ledger: Ledger,
    targets: Sequence[TargetInfo],
    windows: Sequence[Window],
    *,
    vantage: str,
    operator: str = "",
    now: dt.datetime | None = None,
    reference: str | None = None,
) -> Attestation:
    """The figures for every window and target, as the ledger holds them at `now`."""
    moment = now or dt.datetime.now(dt.UTC)
    ids = {t.id for t in targets}
    outages, gaps, first_ever = _history(ledger, ids)
    facts = []
    for window in windows:
        observed_end = max(window.start, min(window.end, moment))
        checks = _checks(ledger, ids, window.start, observed_end)
        around = [
            c
            for c in _checks(
                ledger,
                ids,
                window.start - CAPTURE_MARGIN,
                min(moment, window.end + CAPTURE_MARGIN),
            )
            if not c.body.get("success") and c.body.get("artifacts")
        ]
        for target in targets:
            mine = [c for c in checks if c.body.get("target_id") == target.id]
            failures = [
                _failure(c, target)
                for c in mine
                if not c.body.get("success") and c.body.get("outcome") != _OFFLINE
            ]
            nearby = [
                _failure(c, target)
                for c in around
                if c.body.get("target_id") == target.id
                and c.body.get("outcome") != _OFFLINE
                and not window.start <= c.at < window.end
            ]
            overlapping = tuple(
                o
                for o in outages
                if o.target_id == target.id
                and o.start < observed_end
                and (o.end is None or o.end > window.start)
            )
            facts.append(
                WindowFacts(
                    window=window,
                    target=target,
                    observed_end=observed_end,
                    checks=len(mine),
                    successes=sum(1 for c in mine if c.body.get("success")),
                    offline=sum(1 for c in mine if c.body.get("outcome") == _OFFLINE),
                    vantages=tuple(sorted({str(c.body.get("vantage", "")) for c in mine})),
                    seqs=tuple(c.seq for c in mine),
                    failures=tuple(failures),
                    silences=tuple(
                        _silences(
                            [c.at for c in mine],
                            window.start,
                            observed_end,
                            target.silence_s,
                            gaps=gaps,
                            first_ever=first_ever.get(target.id),
                        )
                    ),
                    outages=overlapping,
                    capture=_capture(failures, nearby, window),
                )
            )
    return Attestation(
        vantage=vantage,
        operator=operator,
        generated_at=moment,
        windows=tuple(windows),
        facts=tuple(facts),
        reference=reference,
    )
