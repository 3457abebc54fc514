"""Availability arithmetic: time monitored, down, degraded and unmonitored over any period.

Pure interval arithmetic on recorded facts: time Vigie did not see (not running, vantage offline,
before the first check) is never counted as up nor as down.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

from config.french import percent_fr
from config.maintenance import applies_to, occurrences
from config.vocabulary import PARIS

if TYPE_CHECKING:
    from config.settings import MaintenanceWindow

__all__ = [
    "PARIS",
    "Availability",
    "AvailabilityIndex",
    "IntervalList",
    "Span",
    "TargetTimeline",
    "at_least",
    "measure",
    "percent_fr",
    "period_bounds",
    "subtract",
    "union",
]


Span = tuple[float, float]  # [start, end) in unix seconds
Unit = Literal["day", "week", "month"]


class IntervalList:
    """Sorted, non-overlapping ``[start, end)`` intervals in unix seconds; some may be open."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, spans: Iterable[tuple[float, float | None]] = ()) -> None:
        self._starts: list[float] = []
        self._ends: list[float] = []  # math.inf while open
        for start, end in spans:
            self.add(start, end)

    def __len__(self) -> int:
        return len(self._starts)

    def __iter__(self) -> Iterator[tuple[float, float | None]]:
        for start, end in zip(self._starts, self._ends, strict=True):
            yield start, (None if end == math.inf else end)

    @property
    def is_open(self) -> bool:
        """Whether the latest interval has no end yet."""
        return bool(self._ends) and self._ends[-1] == math.inf

    def add(self, start: float, end: float | None = None) -> None:
        """Add ``[start, end)`` (open when `end` is None), merging with what it touches."""
        stop = math.inf if end is None else end
        if stop < start:
            raise ValueError(f"interval ends ({end}) before it starts ({start})")
        i = bisect.bisect_right(self._starts, start)
        if i > 0 and self._ends[i - 1] >= start:
            i -= 1
            start = self._starts[i]
            stop = max(stop, self._ends[i])
            del self._starts[i], self._ends[i]
        while i < len(self._starts) and self._starts[i] <= stop:
            stop = max(stop, self._ends[i])
            del self._starts[i], self._ends[i]
        self._starts.insert(i, start)
        self._ends.insert(i, stop)

    def close(self, end: float) -> None:
        """End the open interval at `end` (no-op when none is open)."""
        if self.is_open:
            self._ends[-1] = max(end, self._starts[-1])

    def clip(self, start: float, end: float, now: float) -> list[Span]:
        """The parts inside ``[start, end)``, open intervals running until `now`."""
        out: list[Span] = []
        i = bisect.bisect_right(self._ends, start)
        while i < len(self._starts) and self._starts[i] < end:
            lo = max(self._starts[i], start)
            hi = min(self._ends[i] if self._ends[i] != math.inf else now, end)
            if hi > lo:
                out.append((lo, hi))
            i += 1
        return out


def union(*groups: Sequence[Span]) -> list[Span]:
    """Merge spans from several groups into sorted, non-overlapping spans."""
    spans = sorted(s for group in groups for s in group)
    out: list[Span] = []
    for lo, hi in spans:
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def subtract(spans: Sequence[Span], holes: Sequence[Span]) -> list[Span]:
    """`spans` minus `holes` (both sorted and non-overlapping)."""
    out: list[Span] = []
    j = 0
    for lo, hi in spans:
        cursor = lo
        while j < len(holes) and holes[j][1] <= cursor:
            j += 1
        k = j
        while k < len(holes) and holes[k][0] < hi:
            if holes[k][0] > cursor:
                out.append((cursor, holes[k][0]))
            cursor = max(cursor, holes[k][1])
            k += 1
        if cursor < hi:
            out.append((cursor, hi))
    return out


def at_least(count: int, groups: Sequence[Sequence[Span]]) -> list[Span]:
    """Where at least `count` of `groups` (each sorted and non-overlapping) cover at once."""
    events = sorted(
        [(lo, 1) for group in groups for lo, _ in group]
        + [(hi, -1) for group in groups for _, hi in group]
    )  # at the same instant an end (-1) comes before a start: spans are [start, end)
    out: list[Span] = []
    depth, opened = 0, 0.0
    for at, step in events:
        before, depth = depth, depth + step
        if before < count <= depth:
            opened = at
        elif depth < count <= before and at > opened:
            if out and out[-1][1] >= opened:
                out[-1] = (out[-1][0], at)
            else:
                out.append((opened, at))
    return out


def measure(spans: Iterable[Span]) -> float:
    """Total seconds covered by non-overlapping spans."""
    return sum(hi - lo for lo, hi in spans)


@dataclasses.dataclass(frozen=True, slots=True)
class Availability:
    """What Vigie saw of one target over one period (seconds)."""

    start: dt.datetime
    end: dt.datetime
    monitored_s: float  # seen: running, vantage online, after the first check
    down_s: float  # inside confirmed `down` outages (monitored part only)
    degraded_s: float  # inside confirmed `degraded` periods (monitored part only)
    unmonitored_s: float  # not seen: counted neither up nor down
    maintenance_down_s: float = 0.0  # part of `down_s` inside announced maintenance

    @property
    def ratio(self) -> float | None:
        """Share of monitored time the target was not down (None when nothing was monitored)."""
        if self.monitored_s <= 0:
            return None
        return max(0.0, min(1.0, (self.monitored_s - self.down_s) / self.monitored_s))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (times in RFC 3339 UTC)."""
        return {
            "start": self.start.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
            "end": self.end.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
            "monitored_s": round(self.monitored_s, 3),
            "down_s": round(self.down_s, 3),
            "degraded_s": round(self.degraded_s, 3),
            "unmonitored_s": round(self.unmonitored_s, 3),
            "maintenance_down_s": round(self.maintenance_down_s, 3),
            "availability": self.ratio,
        }


@dataclasses.dataclass(slots=True)
class TargetTimeline:
    """What is known of one target's time: first check, outages, its own offline spans."""

    first_seen: float | None = None
    down: IntervalList = dataclasses.field(default_factory=IntervalList)
    degraded: IntervalList = dataclasses.field(default_factory=IntervalList)
    offline: IntervalList = dataclasses.field(default_factory=IntervalList)
    # Its journey needed updating (journey_drift): the site was not seen, nor counted down.
    drift: IntervalList = dataclasses.field(default_factory=IntervalList)
    # Outages a person dismissed (not an outage of the site): unmonitored, not down.
    dismissed: IntervalList = dataclasses.field(default_factory=IntervalList)


class AvailabilityIndex:
    """Intervals per target plus global unmonitored time; answers any period in O(log n + k)."""

    def __init__(self, maintenance: Sequence[MaintenanceWindow] = ()) -> None:
        self.maintenance = tuple(maintenance)
        self.gaps = IntervalList()  # Vigie was not running
        self.vantage_offline = IntervalList()  # every control failed
        self.timelines: dict[str, TargetTimeline] = {}

    def timeline(self, target_id: str) -> TargetTimeline:
        """The timeline of `target_id`, created empty on first use."""
        found = self.timelines.get(target_id)
        if found is None:
            found = self.timelines[target_id] = TargetTimeline()
        return found

    def seen(self, target_id: str, at: float) -> None:
        """Note a check of `target_id` at `at` (sets the start of monitoring)."""
        timeline = self.timeline(target_id)
        if timeline.first_seen is None or at < timeline.first_seen:
            timeline.first_seen = at

    def spans(
        self, target_id: str, start: dt.datetime, end: dt.datetime, now: dt.datetime
    ) -> tuple[list[Span], list[Span], list[Span]]:
        """Monitored, down and degraded spans of `target_id` in ``[start, min(end, now))``.

        Down and degraded spans lie inside the monitored ones (unmonitored time is neither).
        """
        a, b, n = start.timestamp(), min(end.timestamp(), now.timestamp()), now.timestamp()
        timeline = self.timelines.get(target_id)
        if timeline is None or timeline.first_seen is None or b <= max(a, timeline.first_seen):
            return [], [], []
        lo = max(a, timeline.first_seen)
        excluded = union(
            self.gaps.clip(lo, b, n),
            self.vantage_offline.clip(lo, b, n),
            timeline.offline.clip(lo, b, n),
            timeline.drift.clip(lo, b, n),
            timeline.dismissed.clip(lo, b, n),
        )
        return (
            subtract([(lo, b)], excluded),
            subtract(timeline.down.clip(lo, b, n), excluded),
            subtract(timeline.degraded.clip(lo, b, n), excluded),
        )

    def availability(
        self, target_id: str, start: dt.datetime, end: dt.datetime, now: dt.datetime
    ) -> Availability:
        """Availability of `target_id` over ``[start, end)`` as known at `now`."""
        span_s = max(0.0, min(end.timestamp(), now.timestamp()) - start.timestamp())
        monitored, down, degraded = self.spans(target_id, start, end, now)
        maintenance_down = 0.0
        if down and self.maintenance:
            announced = self._maintenance_spans(target_id, down[0][0], down[-1][1])
            maintenance_down = measure(down) - measure(subtract(down, announced))
        return Availability(
            start,
            end,
            monitored_s=measure(monitored),
            down_s=measure(down),
            degraded_s=measure(degraded),
            unmonitored_s=span_s - measure(monitored),
            maintenance_down_s=maintenance_down,
        )

    def _maintenance_spans(self, target_id: str, lo: float, hi: float) -> list[Span]:
        start = dt.datetime.fromtimestamp(lo, dt.UTC)
        end = dt.datetime.fromtimestamp(hi, dt.UTC)
        return union(
            *(
                [(s.timestamp(), e.timestamp()) for s, e in occurrences(window, start, end)]
                for window in self.maintenance
                if applies_to(window, target_id)
            )
        )

    def periods(
        self,
        target_id: str,
        start: dt.datetime,
        end: dt.datetime,
        now: dt.datetime,
        *,
        unit: Unit = "day",
        tz: dt.tzinfo = PARIS,
    ) -> list[Availability]:
        """Availability per calendar day, ISO week or month (in `tz`) between `start` and `end`."""
        return [
            self.availability(target_id, lo, hi, now)
            for lo, hi in period_bounds(start, end, unit, tz)
        ]

    def daily(
        self, target_id: str, days: int, now: dt.datetime, tz: dt.tzinfo = PARIS
    ) -> list[Availability]:
        """The last `days` calendar days in `tz`, oldest first, the last one being today."""
        today = now.astimezone(tz).date()
        first = dt.datetime.combine(today - dt.timedelta(days=days - 1), dt.time(), tz)
        tomorrow = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), tz)
        return self.periods(target_id, first, tomorrow, now, unit="day", tz=tz)


def period_bounds(
    start: dt.datetime, end: dt.datetime, unit: Unit, tz: dt.tzinfo = PARIS
) -> list[tuple[dt.datetime, dt.datetime]]:
    """Calendar periods of `unit` in `tz` covering ``[start, end)``, clipped to it."""
    local = start.astimezone(tz)
    day = local.date()
    if unit == "week":
        day -= dt.timedelta(days=day.weekday())
    elif unit == "month":
        day = day.replace(day=1)
    bounds = []
    cursor = dt.datetime.combine(day, dt.time(), tz)
    while cursor < end:
        if unit == "day":
            nxt_day = cursor.date() + dt.timedelta(days=1)
        elif unit == "week":
            nxt_day = cursor.date() + dt.timedelta(days=7)
        else:
            d = cursor.date()
            nxt_day = dt.date(d.year + d.month // 12, d.month % 12 + 1, 1)
        nxt = dt.datetime.combine(nxt_day, dt.time(), tz)
        bounds.append((max(cursor, start), min(nxt, end)))
        cursor = nxt
    return bounds
