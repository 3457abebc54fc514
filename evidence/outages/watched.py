"""Watched time of one vantage read back from its ledger, and availability merged across vantages.

`LedgerWatch` is fed a ledger's entries in seq order, incrementally (the ledger is append-only,
so what it has read never changes); it accounts watched time exactly as the service's outage
tracker does (first check, the vantage's own network down, Vigie stopped, journey to update,
outages a person dismissed). `merged_period` answers, for one target and period, what several
vantages saw together. Nothing here writes anything.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from config.targets import CONTROL_PREFIX
from config.vocabulary import GAP, OBSERVATION, VANTAGE, Outcome
from evidence.outages.availability import (
    AvailabilityIndex,
    IntervalList,
    TargetTimeline,
    at_least,
    measure,
    subtract,
)
from evidence.outages.tracker import OutageRecord, entry_time

__all__ = ["LedgerWatch", "MergedPeriod", "merged_period"]

_OFFLINE = Outcome.VANTAGE_OFFLINE.value
_DRIFT = Outcome.JOURNEY_DRIFT.value


@dataclasses.dataclass(slots=True)
class LedgerWatch:
    """What one ledger says of watched time: fed entry by entry, in seq order."""

    gaps: IntervalList = dataclasses.field(default_factory=IntervalList)
    vantage_offline: IntervalList = dataclasses.field(default_factory=IntervalList)
    first_seen: dict[str, float] = dataclasses.field(default_factory=dict)
    offline: dict[str, IntervalList] = dataclasses.field(default_factory=dict)
    drift: dict[str, IntervalList] = dataclasses.field(default_factory=dict)
    last_time: float | None = None  # the newest entry read: watched time ends there

    def add(self, entry: Mapping[str, Any]) -> None:
        """Account one decoded entry (``{"type", ...body}``); outage events are not needed."""
        moment = entry_time(entry)
        if moment is not None:
            self.last_time = max(self.last_time or moment.timestamp(), moment.timestamp())
        kind = entry.get("type")
        if kind == OBSERVATION:
            if str(entry.get("target_id")).startswith(CONTROL_PREFIX):
                return  # a control site: the vantage's network, not a watched service
            self._check(str(entry.get("target_id")), str(entry["started_at"]), entry.get("outcome"))
        elif kind == GAP:
            self.gaps.add(_ts(entry["from"]), _ts(entry["to"]))
        elif kind == VANTAGE:
            at = _ts(entry["at"])
            if entry.get("event") == "offline" and not self.vantage_offline.is_open:
                self.vantage_offline.add(at)
            elif entry.get("event") == "online":
                self.vantage_offline.close(at)

    def _check(self, target_id: str, started_at: str, outcome: Any) -> None:
        """As `OutageTracker._step`: a check of the vantage's own network down starts an
        offline span, a journey to update a drift span; any other check ends both."""
        ts = _ts(started_at)
        offline = self.offline.setdefault(target_id, IntervalList())
        if outcome == _OFFLINE:
            if not offline.is_open:
                offline.add(ts)
            return
        offline.close(ts)
        drift = self.drift.setdefault(target_id, IntervalList())
        if outcome == _DRIFT:
            if not drift.is_open:
                drift.add(ts)
            return
        drift.close(ts)
        self.first_seen.setdefault(target_id, ts)

    def index(self, records: Sequence[OutageRecord]) -> AvailabilityIndex:
        """An availability index of this ledger with the outage `records` told by it."""
        index = AvailabilityIndex()
        index.gaps, index.vantage_offline = self.gaps, self.vantage_offline
        for target_id in self.first_seen.keys() | self.offline.keys():
            index.timelines[target_id] = TargetTimeline(
                first_seen=self.first_seen.get(target_id),
                offline=self.offline.get(target_id, IntervalList()),
                drift=self.drift.get(target_id, IntervalList()),
            )
        for record in records:
            timeline = index.timeline(record.target_id)
            intervals = timeline.down if record.kind == "down" else timeline.degraded
            if record.dismissed:  # a person said it was no outage of the site: unmonitored
                intervals = timeline.dismissed
            end = None if record.end is None else record.end.timestamp()
            intervals.add(record.start.timestamp(), end)
        return index

    @property
    def until(self) -> dt.datetime | None:
        """The time of the newest entry read (None before any)."""
        return None if self.last_time is None else dt.datetime.fromtimestamp(self.last_time, dt.UTC)


def _ts(value: Any) -> float:
    return dt.datetime.fromisoformat(str(value)).timestamp()


@dataclasses.dataclass(frozen=True, slots=True)
class MergedPeriod:
    """What several vantages saw together of one target over one period (seconds)."""

    monitored_s: float  # at least one vantage watched
    corroborable_s: float  # at least `min_vantages` vantages watched at once
    down_s: float  # at least `min_vantages` vantages were each inside a confirmed outage
    uncorroborated_down_s: float  # some vantage saw an outage, fewer than `min_vantages` did
    degraded_s: float  # at least `min_vantages` vantages each saw a confirmed slowness
    unmonitored_s: float  # no vantage watched

    @property
    def ratio(self) -> float | None:
        """Share of watched time without a corroborated outage (an upper bound)."""
        if self.monitored_s <= 0:
            return None
        return max(0.0, min(1.0, (self.monitored_s - self.down_s) / self.monitored_s))

    @property
    def ratio_low(self) -> float | None:
        """Share of watched time without any vantage's outage (a lower bound)."""
        if self.monitored_s <= 0:
            return None
        down = self.down_s + self.uncorroborated_down_s
        return max(0.0, min(1.0, (self.monitored_s - down) / self.monitored_s))


def merged_period(
    indexes: Mapping[str, tuple[AvailabilityIndex, dt.datetime]],
    target_id: str,
    start: dt.datetime,
    end: dt.datetime,
    min_vantages: int,
) -> MergedPeriod:
    """`target_id` over ``[start, end)`` as seen by the vantages of `indexes` (vantage ->
    its index and the time up to which it is known), each counted only where it watched."""
    seen = [index.spans(target_id, start, end, until) for index, until in indexes.values()]
    monitored = at_least(1, [s[0] for s in seen])
    down = at_least(min_vantages, [s[1] for s in seen])
    latest = max((until for _, until in indexes.values()), default=start)
    span_s = max(0.0, min(end, latest).timestamp() - start.timestamp())
    return MergedPeriod(
        monitored_s=measure(monitored),
        corroborable_s=measure(at_least(min_vantages, [s[0] for s in seen])),
        down_s=measure(down),
        uncorroborated_down_s=measure(subtract(at_least(1, [s[1] for s in seen]), down)),
        degraded_s=measure(at_least(min_vantages, [s[2] for s in seen])),
        unmonitored_s=span_s - measure(monitored),
    )
