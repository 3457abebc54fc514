"""Maintenance windows: recurring (crossing midnight, weekdays, DST) and dated, per target."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from config.maintenance import (
    MaintenanceError,
    active_label,
    check_windows,
    describe,
    is_active,
    occurrences,
    overlap_label,
    overlap_seconds,
)
from config.settings import MaintenanceWindow

PARIS = ZoneInfo("Europe/Paris")


def window(**kw: Any) -> MaintenanceWindow:
    return MaintenanceWindow.model_validate(kw)


def paris(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=PARIS)  # type: ignore[misc]


NIGHTLY = window(every="day", **{"from": "22:00"}, to="06:00", tz="Europe/Paris")


class TestRecurring:
    def test_daily_window_crossing_midnight(self) -> None:
        """22:00-06:00 is active late evening and early morning, start included, end excluded."""
        assert is_active(NIGHTLY, paris(2026, 11, 23, 22, 0))
        assert is_active(NIGHTLY, paris(2026, 11, 23, 23, 30))
        assert is_active(NIGHTLY, paris(2026, 11, 24, 5, 59, 59))
        assert not is_active(NIGHTLY, paris(2026, 11, 24, 6, 0))
        assert not is_active(NIGHTLY, paris(2026, 11, 24, 12, 0))
        assert not is_active(NIGHTLY, paris(2026, 11, 23, 21, 59, 59))

    def test_occurrences_in_utc(self) -> None:
        """The occurrences overlapping one UTC day are the previous and the same night, in UTC."""
        start = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
        found = occurrences(NIGHTLY, start, start + dt.timedelta(days=1))
        assert found == [
            (
                dt.datetime(2026, 11, 22, 21, tzinfo=dt.UTC),
                dt.datetime(2026, 11, 23, 5, tzinfo=dt.UTC),
            ),
            (
                dt.datetime(2026, 11, 23, 21, tzinfo=dt.UTC),
                dt.datetime(2026, 11, 24, 5, tzinfo=dt.UTC),
            ),
        ]

    def test_weekday_window(self) -> None:
        """A Sunday window is active on Sundays only."""
        sunday = window(every="sunday", **{"from": "02:00"}, to="04:00")
        assert is_active(sunday, paris(2026, 11, 29, 3, 0))  # a Sunday
        assert not is_active(sunday, paris(2026, 11, 30, 3, 0))  # Monday
        assert not is_active(sunday, paris(2026, 11, 28, 3, 0))  # Saturday

    def test_weekday_window_crossing_midnight(self) -> None:
        """Saturday 23:00-01:00 is still active early on Sunday, not early on Saturday."""
        saturday = window(every="saturday", **{"from": "23:00"}, to="01:00")
        assert is_active(saturday, paris(2026, 11, 29, 0, 30))
        assert not is_active(saturday, paris(2026, 11, 28, 0, 30))

    def test_until_midnight(self) -> None:
        """A window to 24:00 ends at midnight."""
        evening = window(every="day", **{"from": "20:00"}, to="24:00")
        assert is_active(evening, paris(2026, 11, 23, 23, 59))
        assert not is_active(evening, paris(2026, 11, 24, 0, 0))

    def test_daylight_saving_changes(self) -> None:
        """01:00-05:00 Paris lasts 3 h when clocks go forward and 5 h when they go back."""
        night = window(every="day", **{"from": "01:00"}, to="05:00")
        spring = paris(2026, 3, 29)
        autumn = paris(2026, 10, 25)
        day = dt.timedelta(days=1)
        assert overlap_seconds([night], spring, spring + day, None) == 3 * 3600
        assert overlap_seconds([night], autumn, autumn + day, None) == 5 * 3600

    def test_other_time_zone(self) -> None:
        """A window announced in another zone is placed in that zone."""
        ny = window(every="day", **{"from": "01:00"}, to="02:00", tz="America/New_York")
        assert is_active(ny, dt.datetime(2026, 11, 23, 6, 30, tzinfo=dt.UTC))  # 01:30 EST
        assert not is_active(ny, dt.datetime(2026, 11, 23, 1, 30, tzinfo=dt.UTC))


class TestDated:
    def test_dated_window_with_times(self) -> None:
        """A dated window is active between its start and end, local times in its zone."""
        xmas = window(start="2026-12-24T22:00", end="2026-12-25T02:00")
        assert is_active(xmas, dt.datetime(2026, 12, 24, 21, 30, tzinfo=dt.UTC))
        assert not is_active(xmas, dt.datetime(2026, 12, 25, 1, 0, tzinfo=dt.UTC))
        assert not is_active(xmas, dt.datetime(2026, 12, 24, 20, 59, tzinfo=dt.UTC))

    def test_dated_window_whole_days(self) -> None:
        """Date-only bounds cover whole days, the end day included."""
        days = window(start="2026-12-24", end="2026-12-25")
        assert is_active(days, paris(2026, 12, 24, 0, 0))
        assert is_active(days, paris(2026, 12, 25, 23, 59))
        assert not is_active(days, paris(2026, 12, 26, 0, 0))

    def test_dated_window_with_offset(self) -> None:
        """An explicit offset wins over the window's zone."""
        utc = window(start="2026-12-24T22:00+00:00", end="2026-12-24T23:00+00:00")
        assert is_active(utc, dt.datetime(2026, 12, 24, 22, 30, tzinfo=dt.UTC))


class TestTargetsAndLabels:
    def test_window_for_some_targets(self) -> None:
        """A window listing targets applies to them only; None asks about any target."""
        api = window(every="day", **{"from": "00:00"}, to="24:00", targets=["anef-api"])
        now = paris(2026, 11, 23, 12, 0)
        assert is_active(api, now, "anef-api")
        assert not is_active(api, now, "anef-accueil")
        assert is_active(api, now, None)

    def test_labels(self) -> None:
        """The label is the first window that is active, or that overlaps an interval."""
        custom = window(every="day", **{"from": "12:00"}, to="13:00", label="Mise à jour")
        windows = [NIGHTLY, custom]
        assert active_label(windows, paris(2026, 11, 23, 12, 30), "x") == "Mise à jour"
        assert active_label(windows, paris(2026, 11, 23, 23, 0), "x") == "Maintenance annoncée"
        assert active_label(windows, paris(2026, 11, 23, 15, 0), "x") is None
        start = paris(2026, 11, 23, 11, 0)
        assert overlap_label(windows, start, start + dt.timedelta(minutes=90), "x") == "Mise à jour"
        assert overlap_label(windows, start, start + dt.timedelta(minutes=30), "x") is None

    def test_overlap_seconds_counts_overlapping_windows_once(self) -> None:
        """Two overlapping windows count their common time once."""
        a = window(every="day", **{"from": "10:00"}, to="12:00")
        b = window(every="day", **{"from": "11:00"}, to="13:00")
        start = paris(2026, 11, 23, 9, 0)
        assert overlap_seconds([a, b], start, start + dt.timedelta(hours=5), "x") == 3 * 3600

    def test_describe_in_french(self) -> None:
        """Windows are described in French for the status page."""
        assert describe(NIGHTLY) == "tous les jours de 22:00 à 06:00 (Europe/Paris)"
        assert describe(window(every="sunday", **{"from": "02:00"}, to="04:00")).startswith(
            "chaque dimanche de 02:00"
        )
        assert describe(window(start="2026-12-24T22:00", end="2026-12-25T02:00")) == (
            "du 2026-12-24 22:00 au 2026-12-25 02:00 (Europe/Paris)"
        )


class TestValidation:
    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ({"every": "day", "from": "22:00"}, "needs both 'from' and 'to'"),
            ({"every": "day", "from": "22:00", "to": "22:00"}, "are equal"),
            ({"every": "day", "from": "22:00", "to": "24:30"}, "past midnight"),
            ({"every": "day", "from": "1:00", "to": "2:00", "start": "2026-01-01"}, None),
            (
                {"every": "day", "from": "22:00", "to": "06:00", "start": "2026-01-01"},
                "either every/from/to",
            ),
            ({"start": "2026-01-02", "end": "2026-01-01"}, "'end' must be after 'start'"),
            ({"start": "2026-01-01"}, "dated 'start' and 'end'"),
            ({"start": "soon", "end": "2026-01-01"}, "is not a date"),
            ({"every": "day", "from": "01:00", "to": "02:00", "tz": "Mars/Olympus"}, "time zone"),
        ],
    )
    def test_problems_are_reported(self, data: dict[str, Any], message: str | None) -> None:
        """Each malformed window yields one line naming it and what to fix."""
        if message is None:  # rejected earlier by the configuration schema
            with pytest.raises(ValueError, match="from"):
                window(**data)
            return
        problems = check_windows([NIGHTLY, window(**data)])
        assert len(problems) == 1
        assert problems[0].startswith("maintenance[1]: ")
        assert message in problems[0]

    def test_valid_windows_have_no_problems(self) -> None:
        """A recurring and a dated window both validate."""
        assert check_windows([NIGHTLY, window(start="2026-12-24", end="2026-12-26")]) == []

    def test_occurrences_refuse_a_bad_window(self) -> None:
        """Asking a malformed window for occurrences raises MaintenanceError."""
        with pytest.raises(MaintenanceError):
            occurrences(window(every="day"), paris(2026, 1, 1), paris(2026, 1, 2))
