"""Outage history: a per-target state machine turning recorded observations into outage events.

It never opens or closes an outage on a `vantage_offline` observation, never forgets an outage
open before a restart, and never drops an event: what it decides is appended to the ledger.

Why it is long: the state machine, the outage records and their replay from the ledger share the
per-target machines' private state; the history reader (history.py) and availability
(availability.py) are apart.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from config.french import format_duration_fr, split_duration
from config.maintenance import MaintenanceError, check_windows, overlap_label, overlap_seconds
from config.vocabulary import GAP, OBSERVATION, OUTAGE, REVIEW, VANTAGE, Outcome
from evidence.ledger.reviews import Review, review_state
from evidence.outages.availability import PARIS, AvailabilityIndex, IntervalList

if TYPE_CHECKING:
    from config.settings import MaintenanceWindow, OutageRules
    from config.targets import Target
    from probes.observation import Observation

__all__ = [
    "DEGRADED",
    "DOWN",
    "JOURNEY_DRIFT",
    "KINDS",
    "REPLAY_DAYS",
    "STATES",
    "CheckSummary",
    "DayCounts",
    "LedgerRows",
    "OutageRecord",
    "OutageTracker",
    "Period",
    "cause_key",
    "cause_label_fr",
    "causes_text",
    "causes_text_fr",
    "decode_entries",
    "entry_time",
    "format_duration",
    "format_duration_fr",
    "gap_since_last",
    "outages_from_entries",
    "periods_from_entries",
    "rebuild_from_ledger",
    "seq_at",
]

DOWN = "down"
DEGRADED = "degraded"
KINDS = (DOWN, DEGRADED)
STATES = ("up", "failing", "down", "recovering", "degraded", "unknown")

# The journey needs updating: a monitoring gap, never an outage.
JOURNEY_DRIFT = Outcome.JOURNEY_DRIFT.value
REPLAY_DAYS = 92.0  # observations replayed at start-up: the status page's 90 days and a margin
MAX_ARTIFACTS = 100  # artifacts listed in an outage event; all stay in their observations
_WANTED = (OBSERVATION, OUTAGE, GAP, VANTAGE, REVIEW)
_MARKERS = tuple(f'"type":"{t}"'.encode() for t in _WANTED)


# --- time helpers -----------------------------------------------------------------------------


def _parse(value: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _compact(value: str) -> str:
    return _parse(value).astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def format_duration(seconds: float) -> str:
    """A duration for the command line, e.g. ``2h 05m 03s`` or ``45s``."""
    days, hours, minutes, secs = split_duration(seconds)
    if days:
        return f"{days}d {hours:02d}h {minutes:02d}m"
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


# --- causes -----------------------------------------------------------------------------------

_TIMES = "\N{MULTIPLICATION SIGN}"
_CAUSES_FR = {
    "timeout": "délai dépassé",
    "connect_error": "connexion impossible",
    "dns_error": "nom de domaine introuvable",
    "tls_error": "certificat de sécurité invalide",
    "http_status": "erreur HTTP",
    "content_mismatch": "page incorrecte",
    "browser_error": "erreur du navigateur",
    "step_failed": "parcours interrompu",
    "too_large": "réponse trop volumineuse",
    "protocol_error": "réponse invalide",
    "redirect_loop": "boucle de redirections",
    "blocked": "requête bloquée",
    "journey_drift": "parcours à revoir : la page a changé",
    "slow": "lenteur",
}


def cause_key(outcome: str, http_status: int | None) -> str:
    """The key a failure is counted under: ``http_503`` for HTTP statuses, else the outcome."""
    if outcome == "http_status" and http_status:
        return f"http_{http_status}"
    return outcome


def _cause_label(key: str, *, french: bool) -> str:
    if key.startswith("http_") and key[5:].isdigit():
        return f"erreur HTTP {key[5:]}" if french else f"HTTP {key[5:]}"
    if french:
        return _CAUSES_FR.get(key, key.replace("_", " "))
    return key.replace("_", " ")


def cause_label_fr(key: str) -> str:
    """One cause key in French: ``erreur HTTP 503``, ``délai dépassé``."""
    return _cause_label(key, french=True)


def _ordered(causes: Mapping[str, int]) -> list[tuple[str, int]]:
    return sorted(causes.items(), key=lambda kv: (-kv[1], kv[0]))


def causes_text(causes: Mapping[str, int]) -> str:
    """Breakdown of causes, most frequent first, e.g. HTTP 503 (times 12), timeout (times 3)."""
    return ", ".join(f"{_cause_label(k, french=False)} {_TIMES}{n}" for k, n in _ordered(causes))


def causes_text_fr(causes: Mapping[str, int]) -> str:
    """The same in French: erreur HTTP 503, délai dépassé (with counts)."""
    return ", ".join(f"{_cause_label(k, french=True)} {_TIMES}{n}" for k, n in _ordered(causes))


# --- records ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class OutageRecord:
    """One confirmed outage (`down`) or slow period (`degraded`), open or closed."""

    id: str
    target_id: str
    kind: str
    started_at: str  # RFC 3339 UTC: time of the first failed (or slow) observation
    ended_at: str | None  # time of the first successful (or fast) one; None while open
    failed_checks: int  # failed (down) or slow (degraded) observations during it
    causes: Mapping[str, int]
    artifacts: Mapping[str, str]  # sha256 -> kind, at most MAX_ARTIFACTS listed
    maintenance: str | None  # label of the announced window it overlaps, if any
    seqs: tuple[int, ...]  # observations named by its events (confirmation and recovery)
    confirmed_at: str | None = None  # time of the observation that confirmed it
    first_seq: int | None = None  # the target's observations during it lie in this range
    last_seq: int | None = None
    artifacts_total: int = 0
    maintenance_s: float = 0.0  # seconds of it inside announced windows
    close_reason: str | None = None  # recovered | superseded (degraded ended by a down outage)
    opened_entry: int | None = None  # ledger seq of its `opened` event
    closed_entry: int | None = None  # ledger seq of its `closed` event
    confirm_seqs: tuple[int, ...] = ()  # the observations of `seqs` that confirmed it
    reviews: tuple[Review, ...] = ()  # people's reviews (signed `review` entries), oldest first

    @property
    def review(self) -> Review | None:
        """The latest review, which decides its review state (None: not reviewed)."""
        return self.reviews[-1] if self.reviews else None

    @property
    def dismissed(self) -> bool:
        """Whether a person dismissed it (it stays in the history, marked dismissed)."""
        review = self.review
        return review is not None and review.verdict == "dismissed"

    @property
    def is_open(self) -> bool:
        """Whether the outage is still going on."""
        return self.ended_at is None

    @property
    def start(self) -> dt.datetime:
        """`started_at` as an aware datetime."""
        return _parse(self.started_at)

    @property
    def end(self) -> dt.datetime | None:
        """`ended_at` as an aware datetime (None while open)."""
        return None if self.ended_at is None else _parse(self.ended_at)

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end (None while open; see `duration`)."""
        end = self.end
        return None if end is None else (end - self.start).total_seconds()

    def duration(self, now: dt.datetime) -> float:
        """Seconds from start to end, or to `now` while open."""
        end = self.end or now
        return max(0.0, (end - self.start).total_seconds())

    @property
    def causes_text(self) -> str:
        """Breakdown of causes in English (see `causes_text`)."""
        return causes_text(self.causes)

    @property
    def causes_text_fr(self) -> str:
        """Breakdown of causes in French (see `causes_text_fr`)."""
        return causes_text_fr(self.causes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; `ended_at` and `duration_s` are null while open."""
        return {
            "id": self.id,
            "target_id": self.target_id,
            "kind": self.kind,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_s": None if self.duration_s is None else round(self.duration_s, 6),
            "confirmed_at": self.confirmed_at,
            "failed_checks": self.failed_checks,
            "causes": dict(_ordered(self.causes)),
            "causes_text": self.causes_text,
            "artifacts": dict(self.artifacts),
            "artifacts_total": self.artifacts_total,
            "maintenance": self.maintenance,
            "maintenance_s": round(self.maintenance_s, 3),
            "close_reason": self.close_reason,
            "seqs": list(self.seqs),
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "opened_entry": self.opened_entry,
            "closed_entry": self.closed_entry,
            "review": review_state(self.reviews),
        }

    @classmethod
    def from_events(
        cls,
        opened: Mapping[str, Any] | None,
        closed: Mapping[str, Any] | None = None,
        *,
        opened_entry: int | None = None,
        closed_entry: int | None = None,
    ) -> OutageRecord:
        """The record told by its `opened` and (when over) `closed` ledger events."""
        last = closed if closed is not None else opened
        if last is None:
            raise ValueError("an outage record needs at least one event")
        seqs = sorted({*(opened or {}).get("seqs", ()), *(closed or {}).get("seqs", ())})
        first = opened if opened is not None else closed
        assert first is not None
        return cls(
            id=str(last["outage_id"]),
            target_id=str(last["target_id"]),
            kind=str(last["kind"]),
            started_at=str(last["started_at"]),
            ended_at=None if closed is None else str(closed["ended_at"]),
            failed_checks=int(last.get("failed_checks", 0)),
            causes=dict(last.get("causes", {})),
            artifacts=dict(last.get("artifacts", {})),
            maintenance=last.get("maintenance"),
            seqs=tuple(int(s) for s in seqs),
            confirmed_at=first.get("at"),
            first_seq=first.get("first_seq"),
            last_seq=last.get("last_seq"),
            artifacts_total=int(last.get("artifacts_total", 0)),
            maintenance_s=float(last.get("maintenance_s", 0.0)),
            close_reason=None if closed is None else closed.get("reason"),
            opened_entry=opened_entry,
            closed_entry=closed_entry,
            confirm_seqs=tuple(int(s) for s in (opened or {}).get("seqs", ())),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Period:
    """A span of time Vigie could not see: not running (`gap`) or vantage offline."""

    kind: str  # "unmonitored" | "vantage_offline" | "journey_drift"
    start: str
    end: str | None  # None while it lasts
    target_id: str | None = None  # journey_drift: the journey to update

    def duration(self, now: dt.datetime) -> float:
        """Seconds from start to end, or to `now` while it lasts."""
        end = _parse(self.end) if self.end else now
        return max(0.0, (end - _parse(self.start)).total_seconds())


@dataclasses.dataclass(frozen=True, slots=True)
class CheckSummary:
    """What the state machine keeps of one observation."""

    seq: int | None
    target_id: str
    started_at: str
    ts: float  # started_at as unix seconds
    success: bool
    outcome: str
    http_status: int | None
    duration_s: float
    artifacts: Mapping[str, str]
    error: str | None

    @classmethod
    def of(cls, obs: Observation | Mapping[str, Any]) -> CheckSummary:
        """Summarise an `Observation` or a decoded observation entry."""
        if isinstance(obs, dict | Mapping):
            started_at = str(obs["started_at"])
            return cls(
                seq=obs.get("seq"),
                target_id=str(obs["target_id"]),
                started_at=started_at,
                ts=_parse(started_at).timestamp(),
                success=bool(obs["success"]),
                outcome=str(obs["outcome"]),
                http_status=obs.get("http_status"),
                duration_s=float(obs.get("duration_s") or 0.0),
                artifacts=dict(obs.get("artifacts") or {}),
                error=obs.get("error"),
            )
        return cls(
            seq=obs.seq,
            target_id=obs.target_id,
            started_at=obs.started_at,
            ts=_parse(obs.started_at).timestamp(),
            success=obs.success,
            outcome=str(obs.outcome),
            http_status=obs.http_status,
            duration_s=obs.duration_s,
            artifacts=dict(obs.artifacts),
            error=obs.error,
        )

    @property
    def cause(self) -> str:
        """The key this check counts under in a breakdown of causes."""
        return cause_key(self.outcome, self.http_status)


@dataclasses.dataclass(slots=True)
class DayCounts:
    """Checks of one target on one Paris calendar day."""

    checks: int = 0
    failures: int = 0
    slow: int = 0
    vantage_offline: int = 0
    journey_drift: int = 0  # checks that could not see the site: its journey needs updating


# --- the state machine ------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class _Builder:
    """An open outage being accumulated."""

    id: str
    target_id: str
    kind: str
    started_at: str
    confirmed_at: str
    failed_checks: int = 0
    causes: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    artifacts: dict[str, str] = dataclasses.field(default_factory=dict)
    artifacts_total: int = 0
    open_seqs: tuple[int, ...] = ()
    first_seq: int | None = None
    last_seq: int | None = None
    maintenance: str | None = None

    def add(self, check: CheckSummary, cause: str) -> None:
        self.failed_checks += 1
        self.causes[cause] += 1
        for sha, kind in check.artifacts.items():
            self.artifacts_total += 1
            if len(self.artifacts) < MAX_ARTIFACTS:
                self.artifacts.setdefault(sha, kind)
        if check.seq is not None:
            if self.first_seq is None:
                self.first_seq = check.seq
            self.last_seq = check.seq

    @classmethod
    def from_event(cls, body: Mapping[str, Any]) -> _Builder:
        return cls(
            id=str(body["outage_id"]),
            target_id=str(body["target_id"]),
            kind=str(body["kind"]),
            started_at=str(body["started_at"]),
            confirmed_at=str(body.get("at") or body["started_at"]),
            failed_checks=int(body.get("failed_checks", 0)),
            causes=collections.Counter(dict(body.get("causes", {}))),
            artifacts=dict(body.get("artifacts", {})),
            artifacts_total=int(body.get("artifacts_total", 0)),
            open_seqs=tuple(int(s) for s in body.get("seqs", ())),
            first_seq=body.get("first_seq"),
            last_seq=body.get("last_seq"),
            maintenance=body.get("maintenance"),
        )

    def record(self) -> OutageRecord:
        return OutageRecord(
            id=self.id,
            target_id=self.target_id,
            kind=self.kind,
            started_at=self.started_at,
            ended_at=None,
            failed_checks=self.failed_checks,
            causes=dict(self.causes),
            artifacts=dict(self.artifacts),
            maintenance=self.maintenance,
            seqs=self.open_seqs,
            confirmed_at=self.confirmed_at,
            first_seq=self.first_seq,
            last_seq=self.last_seq,
            artifacts_total=self.artifacts_total,
            confirm_seqs=self.open_seqs,
        )


@dataclasses.dataclass(slots=True)
class _Track:
    """One kind (down or degraded) of one target."""

    run: list[CheckSummary] = dataclasses.field(default_factory=list)  # unconfirmed
    open: _Builder | None = None
    recover: list[CheckSummary] = dataclasses.field(default_factory=list)

    def reset(self) -> None:
        self.run.clear()
        self.open = None
        self.recover.clear()


@dataclasses.dataclass(slots=True)
class _Machine:
    """State of one target."""

    target_id: str
    slow_after: float | None
    down: _Track = dataclasses.field(default_factory=_Track)
    degraded: _Track = dataclasses.field(default_factory=_Track)
    seen: bool = False  # a check that says something about the target was made
    offline_since: float | None = None  # start of the current vantage-offline span
    drift_since: str | None = None  # start of the current journey-drift span
    last: CheckSummary | None = None

    def track(self, kind: str) -> _Track:
        return self.down if kind == DOWN else self.degraded

    @property
    def state(self) -> str:
        if self.down.open is not None:
            return "recovering" if self.down.recover else "down"
        if self.down.run:
            return "failing"
        if self.degraded.open is not None:
            return "degraded"
        return "up" if self.seen else "unknown"


class OutageTracker:
    """Per-target outage state machine, outage records and availability, fed in ledger order.

    `observe` takes a committed observation (carrying its ledger `seq`) and returns the bodies
    of the `outage` entries the caller must append. `rebuild` replays a ledger at start-up.
    """

    def __init__(
        self,
        rules: OutageRules,
        maintenance: Sequence[MaintenanceWindow] = (),
        targets: Sequence[Target] = (),
    ) -> None:
        problems = check_windows(maintenance)
        if problems:
            raise MaintenanceError("; ".join(problems))
        self.rules = rules
        self.maintenance = tuple(maintenance)
        self.targets = {t.id: t for t in targets}
        self.index = AvailabilityIndex(self.maintenance)
        self._machines = {t.id: _Machine(t.id, t.slow_after) for t in targets}
        self._opened: dict[str, tuple[Mapping[str, Any], int | None]] = {}
        self._closed: dict[str, OutageRecord] = {}
        self._ids: set[str] = set()
        self._days: dict[tuple[str, dt.date], DayCounts] = {}
        self._gaps: list[Period] = []
        self._vantage_periods: list[Period] = []
        self._drift_periods: list[Period] = []
        self._reviews: dict[str, list[Review]] = {}
        self._drift_out: list[dict[str, Any]] = []  # drift entries decided live, to append
        self._vantage_online: bool | None = None
        self._unconfirmed: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._pending: list[dict[str, Any]] = []
        self._last_ts = -math.inf
        self._day_span: tuple[float, float, dt.date] = (0.0, 0.0, dt.date.min)
        self.entries_seen = 0

    # --- feeding -------------------------------------------------------------------------

    def observe(self, obs: Observation | Mapping[str, Any]) -> list[dict[str, Any]]:
        """Account one committed observation; return the `outage` entry bodies to append."""
        check = CheckSummary.of(obs)
        self._note_time(check.ts + check.duration_s)
        events = self._step(check)
        for body in events:
            self._commit(body, None)
        return events

    def drift_events(self) -> list[dict[str, Any]]:
        """`drift` entry bodies decided by the last `observe` (start or end of a drift)."""
        out, self._drift_out = self._drift_out, []
        return out

    def observe_vantage(
        self, online: bool, at: dt.datetime | str, seqs: Sequence[int] = ()
    ) -> list[dict[str, Any]]:
        """Account a control check of this vantage; return a `vantage` entry body on change."""
        if online == self._vantage_online or (self._vantage_online is None and online):
            self._vantage_online = online
            return []
        when = at if isinstance(at, str) else _iso(at)
        body = {"event": "online" if online else "offline", "at": when, "seqs": list(seqs)}
        self._apply_vantage(body)
        return [body]

    def apply_entry(self, entry: Mapping[str, Any]) -> None:
        """Account one decoded ledger entry (``{"type", "seq", ...body}``) during a replay."""
        kind = entry.get("type")
        self.entries_seen += 1
        if kind == OBSERVATION:
            check = CheckSummary.of(entry)
            self._note_time(check.ts + check.duration_s)
            for body in self._step(check):
                key = (body["target_id"], body["kind"])
                self._unconfirmed.setdefault(key, []).append(body)
            self._drift_out.clear()  # replayed: recorded (or derived) already
            return
        moment = entry_time(entry)
        if moment is not None:
            self._note_time(moment.timestamp())
        if kind == OUTAGE:
            self._apply_recorded(entry, entry.get("seq"))
        elif kind == GAP:
            self.add_gap(entry)
        elif kind == VANTAGE:
            self._apply_vantage(entry)
        elif kind == REVIEW:
            self.add_review(entry)

    def add_review(self, entry: Mapping[str, Any]) -> Review:
        """Account a `review` entry (recorded, or just appended by this process)."""
        review = Review.of(entry)
        known = self._reviews.setdefault(review.outage_id, [])
        if review.seq is None or all(r.seq != review.seq for r in known):
            known.append(review)  # the same entry seen twice (own append, then followed): once
        self._refresh_dismissed(review.target_id)
        return review

    def _refresh_dismissed(self, target_id: str) -> None:
        """The target's dismissed outages, as unmonitored time (reviews are rare: rebuilt)."""
        spans = [
            (r.start.timestamp(), None if r.end is None else r.end.timestamp())
            for r in self.records()
            if r.target_id == target_id and r.dismissed
        ]
        self.index.timeline(target_id).dismissed = IntervalList(spans)

    @classmethod
    def rebuild(
        cls,
        entries: Iterable[Mapping[str, Any]],
        rules: OutageRules,
        maintenance: Sequence[MaintenanceWindow] = (),
        targets: Sequence[Target] = (),
    ) -> OutageTracker:
        """A tracker in the state the ledger `entries` (decoded, in seq order) leave it in.

        Recorded outage events are authoritative (an outage open before a crash stays open).
        Events the replay decides after the last recorded one of a target (a crash between an
        observation and its event) are returned by `pending_events` for the caller to append.
        """
        tracker = cls(rules, maintenance, targets)
        for entry in entries:
            tracker.apply_entry(entry)
        late = sorted(
            (body for bodies in tracker._unconfirmed.values() for body in bodies),
            key=lambda b: max(b.get("seqs") or [-1]),
        )
        tracker._unconfirmed.clear()
        for body in late:
            tracker._commit(body, None)
            tracker._pending.append(body)
        return tracker

    def pending_events(self) -> list[dict[str, Any]]:
        """Outage events found missing from the ledger by `rebuild` (append them, in order)."""
        pending, self._pending = self._pending, []
        return pending

    def add_gap(self, body: Mapping[str, Any]) -> None:
        """Account a `gap` entry body: Vigie was not running between `from` and `to`."""
        start, end = str(body["from"]), str(body["to"])
        self._gaps.append(Period("unmonitored", start, end))
        self.index.gaps.add(_parse(start).timestamp(), _parse(end).timestamp())

    def gap_entry(self, now: dt.datetime, expected_interval: float) -> dict[str, Any] | None:
        """The `gap` entry body for the time since the last recorded entry, accounted here.

        None when the ledger is empty or the silence is not longer than `expected_interval`.
        """
        body = _gap_body(self.last_entry_time, now, expected_interval)
        if body is not None:
            self.add_gap(body)
        return body

    # --- queries -------------------------------------------------------------------------

    def state(self, target_id: str) -> str:
        """``up``, ``failing``, ``down``, ``recovering``, ``degraded`` or ``unknown``."""
        machine = self._machines.get(target_id)
        return "unknown" if machine is None else machine.state

    def recheck_delay(self, target_id: str) -> float | None:
        """A shorter delay before the next check while the state is unsettled, else None.

        Unsettled: after a failure (failing, down: the end is timed to one re-check), while
        recovering, and while a slow period is being confirmed or ending.
        """
        machine = self._machines.get(target_id)
        if machine is None:
            return None
        if machine.state in ("failing", "down", "recovering"):
            return float(self.rules.recheck)
        degraded = machine.degraded
        if degraded.run or (degraded.open is not None and degraded.recover):
            return float(self.rules.recheck)
        return None

    def last_check(self, target_id: str) -> CheckSummary | None:
        """The latest observation of `target_id` (including `vantage_offline` ones)."""
        machine = self._machines.get(target_id)
        return None if machine is None else machine.last

    def open_for(self, target_id: str) -> dict[str, OutageRecord]:
        """The outages of `target_id` going on now, by kind (cheap: no history scan)."""
        machine = self._machines.get(target_id)
        if machine is None:
            return {}
        return {
            kind: self._with_reviews(track.open.record())
            for kind, track in ((DOWN, machine.down), (DEGRADED, machine.degraded))
            if track.open is not None
        }

    def _with_reviews(self, record: OutageRecord) -> OutageRecord:
        reviews = self._reviews.get(record.id)
        return dataclasses.replace(record, reviews=tuple(reviews)) if reviews else record

    def open_outages(self) -> list[OutageRecord]:
        """Outages going on now, oldest first."""
        return [r for r in self.records() if r.is_open]

    def records(self) -> list[OutageRecord]:
        """Every outage known (recorded or decided now), oldest first."""
        builders = {
            track.open.id: track.open
            for machine in self._machines.values()
            for track in (machine.down, machine.degraded)
            if track.open is not None
        }
        out = list(self._closed.values())
        for outage_id, (body, entry) in self._opened.items():
            if outage_id in self._closed:
                continue
            builder = builders.get(outage_id)
            record = builder.record() if builder else OutageRecord.from_events(body)
            out.append(dataclasses.replace(record, opened_entry=entry))
        if self._reviews:
            out = [self._with_reviews(r) for r in out]
        return sorted(out, key=lambda r: (r.started_at, r.id))

    def record(self, outage_id: str) -> OutageRecord | None:
        """The outage with this id, or None."""
        for record in self.records():
            if record.id == outage_id:
                return record
        return None

    def gaps(self) -> list[Period]:
        """Periods when Vigie was not running, oldest first."""
        return list(self._gaps)

    def vantage_periods(self) -> list[Period]:
        """Periods when every control failed (our own network was down), oldest first."""
        return list(self._vantage_periods)

    def drift_periods(self) -> list[Period]:
        """Periods when a journey needed updating (journey_drift), oldest first."""
        return list(self._drift_periods)

    def drift_since(self, target_id: str) -> str | None:
        """Start of the journey drift going on for `target_id` (None: its journey works)."""
        machine = self._machines.get(target_id)
        return None if machine is None else machine.drift_since

    @property
    def vantage_online(self) -> bool | None:
        """Whether the controls answered last time (None: not checked yet)."""
        return self._vantage_online

    def day_counts(self, target_id: str, day: dt.date) -> DayCounts:
        """Checks of `target_id` on the Paris calendar `day`."""
        return self._days.get((target_id, day)) or DayCounts()

    # --- internals -----------------------------------------------------------------------

    def _note_time(self, ts: float) -> None:
        self._last_ts = max(self._last_ts, ts)

    @property
    def last_entry_time(self) -> dt.datetime | None:
        """When the latest entry accounted was made (None: none yet)."""
        if self._last_ts == -math.inf:
            return None
        return dt.datetime.fromtimestamp(self._last_ts, dt.UTC)

    def _count_day(self, check: CheckSummary, slow: bool) -> None:
        lo, hi, day = self._day_span
        if not lo <= check.ts < hi:
            local = dt.datetime.fromtimestamp(check.ts, PARIS)
            day = local.date()
            start = dt.datetime.combine(day, dt.time(), PARIS)
            end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), PARIS)
            self._day_span = (start.timestamp(), end.timestamp(), day)
        counts = self._days.get((check.target_id, day))
        if counts is None:
            counts = self._days[(check.target_id, day)] = DayCounts()
        counts.checks += 1
        if check.outcome == Outcome.VANTAGE_OFFLINE:
            counts.vantage_offline += 1
        elif check.outcome == JOURNEY_DRIFT:
            counts.journey_drift += 1
        elif not check.success:
            counts.failures += 1
        elif slow:
            counts.slow += 1

    def _step(self, check: CheckSummary) -> list[dict[str, Any]]:
        """Advance the target's machine by one observation; return the events it decides."""
        machine = self._machines.get(check.target_id)
        if machine is None:
            return []  # a control or a target no longer configured
        machine.last = check
        slow = (
            check.success
            and machine.slow_after is not None
            and check.duration_s > machine.slow_after
        )
        self._count_day(check, slow)
        if check.outcome == Outcome.VANTAGE_OFFLINE:
            if machine.offline_since is None:
                machine.offline_since = check.ts
                self.index.timeline(check.target_id).offline.add(check.ts)
            return []  # neither opens, closes, nor counts toward confirmation
        if machine.offline_since is not None:
            self.index.timeline(check.target_id).offline.close(check.ts)
            machine.offline_since = None
        if check.outcome == JOURNEY_DRIFT:
            if machine.drift_since is None:
                machine.drift_since = check.started_at
                self.index.timeline(check.target_id).drift.add(check.ts)
                self._drift_periods.append(
                    Period(JOURNEY_DRIFT, check.started_at, None, check.target_id)
                )
                self._drift_out.append(_drift_body("started", check))
            return []  # a monitoring gap: neither opens, closes, nor counts toward confirmation
        if machine.drift_since is not None:
            self._end_drift(machine, check)
        if not machine.seen:
            machine.seen = True
            self.index.seen(check.target_id, check.ts)
        events: list[dict[str, Any]] = []
        rules = self.rules
        down = machine.down
        if not check.success:
            if down.open is not None:
                down.open.add(check, check.cause)
                down.recover.clear()
                return events
            down.run.append(check)
            if len(down.run) >= rules.confirm_after:
                degraded = machine.degraded
                if degraded.open is not None:
                    events.append(
                        self._close(
                            degraded.open, down.run[0], down.run[-1], down.run, "superseded"
                        )
                    )
                degraded.reset()
                events.append(self._open(machine, DOWN, down.run))
                down.run.clear()
            return events
        if down.open is not None:
            down.recover.append(check)
            if len(down.recover) >= rules.recover_after:
                events.append(
                    self._close(down.open, down.recover[0], check, down.recover, "recovered")
                )
                down.reset()
            return events
        down.run.clear()  # failures shorter than the confirmation: flapping, no outage
        degraded = machine.degraded
        if degraded.open is not None:
            if slow:
                degraded.open.add(check, "slow")
                degraded.recover.clear()
            else:
                degraded.recover.append(check)
                if len(degraded.recover) >= rules.recover_after:
                    events.append(
                        self._close(
                            degraded.open, degraded.recover[0], check, degraded.recover, "recovered"
                        )
                    )
                    degraded.reset()
        elif slow:
            degraded.run.append(check)
            if len(degraded.run) >= rules.confirm_after:
                events.append(self._open(machine, DEGRADED, degraded.run))
                degraded.run.clear()
        else:
            degraded.run.clear()
        return events

    def _new_id(self, target_id: str, started_at: str) -> str:
        base = f"{target_id}-{_compact(started_at)}"
        outage_id, n = base, 1
        while outage_id in self._ids:
            n += 1
            outage_id = f"{base}-{n}"
        self._ids.add(outage_id)
        return outage_id

    def _rules_body(self, machine: _Machine, kind: str) -> dict[str, Any]:
        rules: dict[str, Any] = {
            "confirm_after": self.rules.confirm_after,
            "recover_after": self.rules.recover_after,
            "recheck_s": float(self.rules.recheck),
        }
        if kind == DEGRADED:
            rules["slow_after_s"] = machine.slow_after
        return rules

    def _open(self, machine: _Machine, kind: str, run: Sequence[CheckSummary]) -> dict[str, Any]:
        first, last = run[0], run[-1]
        builder = _Builder(
            id=self._new_id(machine.target_id, first.started_at),
            target_id=machine.target_id,
            kind=kind,
            started_at=first.started_at,
            confirmed_at=last.started_at,
            open_seqs=tuple(c.seq for c in run if c.seq is not None),
        )
        for check in run:
            builder.add(check, check.cause if kind == DOWN else "slow")
        builder.maintenance = overlap_label(
            self.maintenance, _parse(first.started_at), _parse(last.started_at), machine.target_id
        )
        machine.track(kind).open = builder
        return {
            "event": "opened",
            "outage_id": builder.id,
            "target_id": builder.target_id,
            "kind": kind,
            "started_at": builder.started_at,
            "ended_at": None,
            "at": last.started_at,
            "failed_checks": builder.failed_checks,
            "causes": dict(_ordered(builder.causes)),
            "artifacts": dict(builder.artifacts),
            "artifacts_total": builder.artifacts_total,
            "maintenance": builder.maintenance,
            "seqs": list(builder.open_seqs),
            "first_seq": builder.first_seq,
            "last_seq": builder.last_seq,
            "rules": self._rules_body(machine, kind),
        }

    def _close(
        self,
        builder: _Builder,
        end: CheckSummary,
        trigger: CheckSummary,
        run: Sequence[CheckSummary],
        reason: str,
    ) -> dict[str, Any]:
        start, stop = _parse(builder.started_at), _parse(end.started_at)
        target = builder.target_id
        label = overlap_label(self.maintenance, start, stop, target) or builder.maintenance
        machine = self._machines[target]
        return {
            "event": "closed",
            "outage_id": builder.id,
            "target_id": target,
            "kind": builder.kind,
            "started_at": builder.started_at,
            "ended_at": end.started_at,
            "at": trigger.started_at,
            "duration_s": round((stop - start).total_seconds(), 6),
            "failed_checks": builder.failed_checks,
            "causes": dict(_ordered(builder.causes)),
            "artifacts": dict(builder.artifacts),
            "artifacts_total": builder.artifacts_total,
            "maintenance": label,
            "maintenance_s": round(overlap_seconds(self.maintenance, start, stop, target), 3),
            "reason": reason,
            "seqs": [c.seq for c in run if c.seq is not None],
            "first_seq": builder.first_seq,
            "last_seq": max(
                (s for s in (builder.last_seq, trigger.seq) if s is not None), default=None
            ),
            "rules": self._rules_body(machine, builder.kind),
        }

    def _commit(self, body: Mapping[str, Any], entry: int | None) -> None:
        """Account an event as part of the history (decided live, recorded or pending)."""
        outage_id = str(body["outage_id"])
        self._ids.add(outage_id)
        timeline = self.index.timeline(str(body["target_id"]))
        intervals = timeline.down if body["kind"] == DOWN else timeline.degraded
        start = _parse(str(body["started_at"])).timestamp()
        if body["event"] == "opened":
            self._opened[outage_id] = (body, entry)
            if outage_id not in self._closed:
                intervals.add(start)
            return
        end = _parse(str(body["ended_at"])).timestamp()
        opened, opened_entry = self._opened.get(outage_id, (None, None))
        self._closed[outage_id] = OutageRecord.from_events(
            opened, body, opened_entry=opened_entry, closed_entry=entry
        )
        if outage_id in self._reviews:
            self._refresh_dismissed(str(body["target_id"]))
        if intervals.is_open:
            intervals.close(end)
        else:
            intervals.add(start, end)

    def _apply_recorded(self, body: Mapping[str, Any], entry: int | None) -> None:
        """A recorded outage event: authoritative over what the replay decided."""
        target, kind = str(body["target_id"]), str(body["kind"])
        decided = self._unconfirmed.pop((target, kind), [])
        matched = any(
            d["outage_id"] == body["outage_id"] and d["event"] == body["event"] for d in decided
        )
        machine = self._machines.get(target)
        if machine is not None and not matched:
            track = machine.track(kind)
            if body["event"] == "opened":
                track.reset()
                track.open = _Builder.from_event(body)
            elif track.open is not None:
                track.reset()
        self._commit(body, entry)

    def _end_drift(self, machine: _Machine, check: CheckSummary) -> None:
        self._drift_out.append(_drift_body("ended", check))
        self.index.timeline(check.target_id).drift.close(check.ts)
        machine.drift_since = None
        for i in range(len(self._drift_periods) - 1, -1, -1):
            period = self._drift_periods[i]
            if period.target_id == check.target_id and period.end is None:
                self._drift_periods[i] = dataclasses.replace(period, end=check.started_at)
                break

    def _apply_vantage(self, body: Mapping[str, Any]) -> None:
        at = str(body["at"])
        ts = _parse(at).timestamp()
        if body["event"] == "offline":
            self._vantage_online = False
            if not self.index.vantage_offline.is_open:
                self.index.vantage_offline.add(ts)
                self._vantage_periods.append(Period(Outcome.VANTAGE_OFFLINE, at, None))
        else:
            self._vantage_online = True
            self.index.vantage_offline.close(ts)
            if self._vantage_periods and self._vantage_periods[-1].end is None:
                last = self._vantage_periods[-1]
                self._vantage_periods[-1] = dataclasses.replace(last, end=at)


def _drift_body(event: str, check: CheckSummary) -> dict[str, Any]:
    return {
        "event": event,
        "target_id": check.target_id,
        "at": check.started_at,
        "observation": check.seq,  # the observation that started or ended it
    }


# --- reading a ledger -------------------------------------------------------------------------


def decode_entries(
    raw: Iterable[tuple[int, bytes]], types: Sequence[str] = _WANTED
) -> Iterator[dict[str, Any]]:
    """Decode ``(seq, canonical JSON)`` ledger entries of the given types (others skipped)."""
    markers = tuple(f'"type":"{t}"'.encode() for t in types)
    for seq, data in raw:
        if not any(m in data for m in markers):
            continue
        entry = json.loads(data)
        if entry.get("type") in types:
            entry.setdefault("seq", seq)
            yield entry


class LedgerRows(Protocol):
    """What replaying a ledger needs of it (the evidence ledger's public API)."""

    def size(self) -> int:
        """Number of entries."""
        ...

    def get(self, seq: int) -> bytes:
        """The stored bytes of entry `seq`."""
        ...

    def iter_rows(self, start: int = 0, stop: int | None = None) -> Iterator[Any]:
        """Stored rows with `seq`, `type` and `body` (canonical JSON bytes)."""
        ...


def seq_at(ledger: LedgerRows, moment: dt.datetime) -> int:
    """The first seq whose entry was made at or after `moment` (entries are in time order)."""
    lo, hi = 0, ledger.size()
    while lo < hi:
        mid = (lo + hi) // 2
        made = entry_time(json.loads(ledger.get(mid)))
        if made is not None and made >= moment:
            hi = mid
        else:
            lo = mid + 1
    return lo


def rebuild_from_ledger(
    ledger: LedgerRows,
    rules: OutageRules,
    maintenance: Sequence[MaintenanceWindow] = (),
    targets: Sequence[Target] = (),
    *,
    now: dt.datetime,
    days: float = REPLAY_DAYS,
) -> OutageTracker:
    """`OutageTracker.rebuild` over a ledger, decoding observations of the last `days` only.

    Every outage, gap and vantage entry is replayed (the whole history), observations only
    from `days` ago, or from the start of an outage still open if that is earlier: start-up
    cost stays bounded however old the ledger. Availability before that is not known to the
    tracker (it shows `days` of history); evidence exports read the ledger themselves.
    """
    start = seq_at(ledger, now - dt.timedelta(days=days))
    still_open: dict[str, int] = {}
    for row in ledger.iter_rows(0, start):
        if row.type == OUTAGE:
            event = json.loads(row.body)
            if event.get("event") == "opened":
                still_open[str(event["outage_id"])] = int(event.get("first_seq") or row.seq)
            else:
                still_open.pop(str(event["outage_id"]), None)
    if still_open:
        start = min(start, *still_open.values())

    # Observations of controls and of targets no longer configured are not decoded at all.
    markers = tuple(f'"target_id":"{t.id}"'.encode() for t in targets)

    def entries() -> Iterator[dict[str, Any]]:
        for row in ledger.iter_rows():
            if row.type == OBSERVATION:
                if row.seq < start or not any(m in row.body for m in markers):
                    continue
            elif row.type not in _WANTED:
                continue
            entry: dict[str, Any] = json.loads(row.body)
            entry.setdefault("seq", row.seq)
            yield entry

    return OutageTracker.rebuild(entries(), rules, maintenance, targets)


def entry_time(entry: Mapping[str, Any]) -> dt.datetime | None:
    """When an entry was made: the end of an observation, an event's `at`, a gap's `to`."""
    kind = entry.get("type")
    try:
        if kind == OBSERVATION:
            start = _parse(str(entry["started_at"]))
            return start + dt.timedelta(seconds=float(entry.get("duration_s") or 0.0))
        if kind == GAP:
            return _parse(str(entry["to"]))
        for key in ("at", "time"):
            value = entry.get(key)
            if isinstance(value, str):
                return _parse(value)
            if isinstance(value, int | float) and not isinstance(value, bool):
                return dt.datetime.fromtimestamp(value, dt.UTC)
    except (KeyError, ValueError, TypeError, OverflowError):
        return None
    return None


def _gap_body(
    last: dt.datetime | None, now: dt.datetime, expected_interval: float
) -> dict[str, Any] | None:
    if last is None:
        return None
    silence = (now - last).total_seconds()
    if silence <= expected_interval:
        return None
    return {
        "from": _iso(last),
        "to": _iso(now),
        "duration_s": round(silence, 6),
        "reason": "not_running",
    }


def gap_since_last(
    entries: Iterable[Mapping[str, Any]], now: dt.datetime, expected_interval: float
) -> dict[str, Any] | None:
    """The `gap` entry body to append at start-up, or None.

    The gap runs from the time of the latest entry to `now`; none is due when the ledger is
    empty or the silence is not longer than `expected_interval` (no check was missed).
    """
    last: dt.datetime | None = None
    for entry in entries:
        moment = entry_time(entry)
        if moment is not None and (last is None or moment > last):
            last = moment
    return _gap_body(last, now, expected_interval)


def outages_from_entries(entries: Iterable[Mapping[str, Any]]) -> list[OutageRecord]:
    """Outage records told by the `outage` entries among `entries`, oldest first."""
    opened: dict[str, tuple[Mapping[str, Any], int | None]] = {}
    closed: dict[str, tuple[Mapping[str, Any], int | None]] = {}
    reviews: dict[str, list[Review]] = {}
    for entry in entries:
        if entry.get("type") == REVIEW:
            reviews.setdefault(str(entry["outage_id"]), []).append(Review.of(entry))
        if entry.get("type") != OUTAGE:
            continue
        target = opened if entry.get("event") == "opened" else closed
        target[str(entry["outage_id"])] = (entry, entry.get("seq"))
    records = []
    for outage_id in {*opened, *closed}:
        o_body, o_seq = opened.get(outage_id, (None, None))
        c_body, c_seq = closed.get(outage_id, (None, None))
        record = OutageRecord.from_events(o_body, c_body, opened_entry=o_seq, closed_entry=c_seq)
        records.append(dataclasses.replace(record, reviews=tuple(reviews.get(outage_id, ()))))
    return sorted(records, key=lambda r: (r.started_at, r.id))


def periods_from_entries(entries: Iterable[Mapping[str, Any]]) -> list[Period]:
    """Unmonitored gaps and vantage-offline periods told by `entries`, oldest first."""
    periods: list[Period] = []
    offline_from: str | None = None
    for entry in entries:
        kind = entry.get("type")
        if kind == GAP:
            periods.append(Period("unmonitored", str(entry["from"]), str(entry["to"])))
        elif kind == VANTAGE:
            if entry.get("event") == "offline" and offline_from is None:
                offline_from = str(entry["at"])
            elif entry.get("event") == "online" and offline_from is not None:
                periods.append(Period(Outcome.VANTAGE_OFFLINE, offline_from, str(entry["at"])))
                offline_from = None
    if offline_from is not None:
        periods.append(Period(Outcome.VANTAGE_OFFLINE, offline_from, None))
    return sorted(periods, key=lambda p: p.start)
