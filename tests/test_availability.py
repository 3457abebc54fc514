"""Availability arithmetic: intervals, gaps and vantage-offline time excluded, calendar periods."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from config.french import percent_fr
from config.settings import MaintenanceWindow
from evidence.outages.availability import (
    AvailabilityIndex,
    IntervalList,
    measure,
    period_bounds,
    subtract,
    union,
)

PARIS = ZoneInfo("Europe/Paris")
DAY0 = dt.datetime(2026, 11, 23, tzinfo=PARIS)  # a Monday, Paris midnight
H = 3600.0


def at(hours: float) -> dt.datetime:
    return DAY0 + dt.timedelta(hours=hours)


def ts(hours: float) -> float:
    return at(hours).timestamp()


def index_with(
    *,
    down: list[tuple[float, float | None]] = (),
    first_seen: float = 0.0,  # type: ignore[assignment]
) -> AvailabilityIndex:
    index = AvailabilityIndex()
    index.seen("t", ts(first_seen))
    for start, end in down:
        index.timeline("t").down.add(ts(start), None if end is None else ts(end))
    return index


class TestIntervalList:
    def test_add_merges_touching_and_overlapping(self) -> None:
        """Overlapping or touching intervals merge; separate ones stay apart, sorted."""
        spans = IntervalList([(10, 20), (30, 40), (19, 31), (50, 60), (5, 6)])
        assert list(spans) == [(5, 6), (10, 40), (50, 60)]

    def test_open_interval_and_close(self) -> None:
        """An open interval runs until `now` when clipped, and ends where it is closed."""
        spans = IntervalList()
        spans.add(100)
        assert spans.is_open
        assert spans.clip(0, 1000, now=250) == [(100, 250)]
        spans.close(300)
        assert not spans.is_open
        assert spans.clip(0, 1000, now=250) == [(100, 300)]

    def test_clip_to_window(self) -> None:
        """Clipping keeps only the parts inside the window."""
        spans = IntervalList([(0, 10), (20, 30), (40, 50)])
        assert spans.clip(5, 45, now=100) == [(5, 10), (20, 30), (40, 45)]
        assert spans.clip(10, 20, now=100) == []

    def test_refuses_backwards_interval(self) -> None:
        """An interval ending before it starts is a bug, not data."""
        with pytest.raises(ValueError, match="before it starts"):
            IntervalList([(10, 5)])

    def test_set_operations(self) -> None:
        """Union merges, subtract removes holes, measure sums."""
        assert union([(0, 5), (10, 15)], [(4, 11)]) == [(0, 15)]
        assert subtract([(0, 10), (20, 30)], [(2, 3), (8, 22), (29, 40)]) == [
            (0, 2),
            (3, 8),
            (22, 29),
        ]
        assert measure([(0, 2), (3, 8)]) == 7


class TestAvailability:
    def test_plain_day(self) -> None:
        """One hour down in a fully monitored day: 23/24 available."""
        index = index_with(down=[(10, 11)])
        a = index.availability("t", at(0), at(24), now=at(30))
        assert (a.monitored_s, a.down_s, a.unmonitored_s) == (24 * H, H, 0)
        assert a.ratio == pytest.approx(23 / 24)

    def test_gap_is_neither_up_nor_down(self) -> None:
        """Two hours when Vigie did not run are excluded from the denominator."""
        index = index_with(down=[(10, 11)])
        index.gaps.add(ts(2), ts(4))
        a = index.availability("t", at(0), at(24), now=at(30))
        assert a.monitored_s == 22 * H
        assert a.unmonitored_s == 2 * H
        assert a.ratio == pytest.approx(21 / 22)

    def test_gap_inside_an_outage_is_not_downtime(self) -> None:
        """Time of an outage during which Vigie was not running does not count as down."""
        index = index_with(down=[(10, 14)])
        index.gaps.add(ts(11), ts(13))
        a = index.availability("t", at(0), at(24), now=at(30))
        assert a.down_s == 2 * H
        assert a.monitored_s == 22 * H
        assert a.ratio == pytest.approx(20 / 22)

    def test_vantage_offline_excluded(self) -> None:
        """Global and per-target vantage-offline time, even overlapping, is excluded once."""
        index = index_with()
        index.vantage_offline.add(ts(1), ts(3))
        index.timeline("t").offline.add(ts(2), ts(4))
        a = index.availability("t", at(0), at(24), now=at(30))
        assert a.unmonitored_s == 3 * H
        assert a.ratio == 1.0

    def test_before_first_check_is_unmonitored(self) -> None:
        """Time before the target's first check is unmonitored, not up."""
        index = index_with(first_seen=12)
        a = index.availability("t", at(0), at(24), now=at(30))
        assert a.monitored_s == 12 * H
        assert a.unmonitored_s == 12 * H

    def test_open_outage_runs_until_now(self) -> None:
        """An open outage counts as down up to `now`; the future is not counted at all."""
        index = index_with(down=[(20, None)])
        a = index.availability("t", at(0), at(24), now=at(22))
        assert a.down_s == 2 * H
        assert a.monitored_s == 22 * H
        assert a.ratio == pytest.approx(20 / 22)

    def test_nothing_monitored(self) -> None:
        """A target never checked, or a future period, has no ratio."""
        index = AvailabilityIndex()
        assert index.availability("nobody", at(0), at(24), now=at(30)).ratio is None
        future = index_with().availability("t", at(48), at(72), now=at(30))
        assert future.ratio is None
        assert future.monitored_s == 0

    def test_degraded_time_does_not_lower_availability(self) -> None:
        """Degraded time is reported on its own and not counted as down."""
        index = index_with()
        index.timeline("t").degraded.add(ts(1), ts(2))
        a = index.availability("t", at(0), at(24), now=at(30))
        assert a.degraded_s == H
        assert a.ratio == 1.0

    def test_downtime_inside_maintenance(self) -> None:
        """Downtime inside an announced window is counted as down and reported as such."""
        nightly = MaintenanceWindow.model_validate({"every": "day", "from": "22:00", "to": "06:00"})
        index = AvailabilityIndex([nightly])
        index.seen("t", ts(0))
        index.timeline("t").down.add(ts(5), ts(7))  # 05:00-07:00 Paris
        a = index.availability("t", at(0), at(24), now=at(30))
        assert a.down_s == 2 * H
        assert a.maintenance_down_s == H
        assert a.to_dict()["maintenance_down_s"] == H


class TestPeriods:
    def test_daily_over_daylight_saving_change(self) -> None:
        """Paris days are 24 h, except the day clocks go back (25 h)."""
        bounds = period_bounds(
            dt.datetime(2026, 10, 24, tzinfo=PARIS), dt.datetime(2026, 10, 27, tzinfo=PARIS), "day"
        )
        assert [(b.timestamp() - a.timestamp()) / H for a, b in bounds] == [24, 25, 24]

    def test_weeks_and_months(self) -> None:
        """Weeks start on Monday and months on the 1st, clipped to the period asked."""
        start = dt.datetime(2026, 11, 25, 12, tzinfo=PARIS)  # a Wednesday
        end = dt.datetime(2026, 12, 10, tzinfo=PARIS)
        weeks = period_bounds(start, end, "week")
        assert weeks[0][0] == start
        assert weeks[1][0] == dt.datetime(2026, 11, 30, tzinfo=PARIS)  # Monday
        assert weeks[-1][1] == end
        months = period_bounds(start, dt.datetime(2027, 2, 1, tzinfo=PARIS), "month")
        assert [m[0].month for m in months] == [11, 12, 1]
        assert months[1][0] == dt.datetime(2026, 12, 1, tzinfo=PARIS)

    def test_daily_bars_sum_to_the_period(self) -> None:
        """Per-day downtime adds up to the downtime of the whole period."""
        index = index_with(down=[(20, 30), (50, 51)])
        now = at(60)
        days = index.daily("t", 3, now)
        assert len(days) == 3
        assert days[-1].start == at(48)
        assert [d.down_s / H for d in days] == [4, 6, 1]
        whole = index.availability("t", at(0), now, now)
        assert sum(d.down_s for d in days) == whole.down_s
        monthly = index.periods("t", at(0), now, now, unit="month")
        assert len(monthly) == 1
        assert monthly[0].down_s == whole.down_s


class TestPercent:
    def test_french_percentages_never_round_up_to_100(self) -> None:
        """Percentages use a decimal comma and round down, so any downtime shows below 100."""
        assert percent_fr(1.0) == "100,00\u202f%"
        assert percent_fr(0.99999) == "99,99\u202f%"
        assert percent_fr(0.5) == "50,00\u202f%"
        assert percent_fr(None) == "—"
