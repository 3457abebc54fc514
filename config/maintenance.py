"""Announced maintenance windows: when they are active and how much of an outage they cover.

Labels only: a window never hides, shortens or excuses an outage; it only names the announcement.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from config.settings import MaintenanceWindow

__all__ = [
    "WEEKDAYS",
    "MaintenanceError",
    "active_label",
    "applies_to",
    "check_windows",
    "describe",
    "is_active",
    "occurrences",
    "overlap_label",
    "overlap_seconds",
]

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAYS_FR = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_DAY = dt.timedelta(days=1)


class MaintenanceError(ValueError):
    """A maintenance window cannot be understood; the message says which key to fix."""


def _zone(window: MaintenanceWindow) -> ZoneInfo:
    try:
        return ZoneInfo(window.tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise MaintenanceError(
            f"unknown time zone {window.tz!r} (use an IANA name such as Europe/Paris)"
        ) from None


def _clock(text: str) -> tuple[int, int]:
    hours, minutes = text.split(":")
    return int(hours), int(minutes)


def _moment(text: str, zone: ZoneInfo, *, end: bool) -> dt.datetime:
    """A dated bound: ``2026-12-24`` (whole day), ``2026-12-24T22:00`` (local) or with offset."""
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            moment = dt.datetime.combine(day + _DAY if end else day, dt.time(), zone)
        else:
            moment = dt.datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zone)
    except ValueError:
        key = "end" if end else "start"
        raise MaintenanceError(
            f"{key} {text!r} is not a date or date-time such as 2026-12-24 or 2026-12-24T22:00"
        ) from None
    return moment.astimezone(dt.UTC)


def check_windows(windows: Sequence[MaintenanceWindow]) -> list[str]:
    """Problems of each window, one line each as ``maintenance[i]: ...`` (empty when all fine)."""
    problems: list[str] = []
    for index, window in enumerate(windows):
        where = f"maintenance[{index}]"
        try:
            _validate(window)
        except MaintenanceError as exc:
            problems.append(f"{where}: {exc}")
    return problems


def _validate(window: MaintenanceWindow) -> None:
    zone = _zone(window)
    recurring = window.every is not None
    dated = window.start is not None or window.end is not None
    if recurring and dated:
        raise MaintenanceError(
            "use either every/from/to (recurring) or start/end (dated), not both"
        )
    if recurring:
        if window.from_ is None or window.to is None:
            raise MaintenanceError("a recurring window needs both 'from' and 'to' (HH:MM)")
        if window.from_ == window.to:
            raise MaintenanceError("'from' and 'to' are equal; use 00:00 to 24:00 for a whole day")
        if window.to.startswith("24:") and window.to != "24:00":
            raise MaintenanceError(f"'to' {window.to!r} is past midnight; use 24:00 or 00:MM")
        return
    if window.start is None or window.end is None:
        raise MaintenanceError("give 'every' with 'from'/'to', or a dated 'start' and 'end'")
    if window.from_ is not None or window.to is not None:
        raise MaintenanceError("'from'/'to' are for recurring windows; a dated one uses start/end")
    if _moment(window.end, zone, end=True) <= _moment(window.start, zone, end=False):
        raise MaintenanceError("'end' must be after 'start'")


def applies_to(window: MaintenanceWindow, target_id: str | None) -> bool:
    """Whether `window` concerns `target_id` (a window without `targets` concerns all)."""
    return not window.targets or target_id is None or target_id in window.targets


def occurrences(
    window: MaintenanceWindow, start: dt.datetime, end: dt.datetime
) -> list[tuple[dt.datetime, dt.datetime]]:
    """The concrete periods (UTC) of `window` that overlap ``[start, end)``, in time order."""
    _validate(window)
    zone = _zone(window)
    if window.every is None:
        assert window.start is not None
        assert window.end is not None
        begin = _moment(window.start, zone, end=False)
        finish = _moment(window.end, zone, end=True)
        return [(begin, finish)] if begin < end and finish > start else []
    assert window.from_ is not None
    assert window.to is not None
    from_h, from_m = _clock(window.from_)
    to_h, to_m = _clock(window.to)
    crosses = (to_h, to_m) <= (from_h, from_m)
    weekday = None if window.every == "day" else WEEKDAYS.index(window.every)
    found = []
    day = start.astimezone(zone).date() - _DAY  # a window that began yesterday may still run
    last = end.astimezone(zone).date()
    while day <= last:
        if weekday is None or day.weekday() == weekday:
            begin = dt.datetime.combine(day, dt.time(from_h, from_m), zone)
            end_day = day + _DAY if crosses or to_h == 24 else day
            finish = dt.datetime.combine(end_day, dt.time(to_h % 24, to_m), zone)
            begin_utc, finish_utc = begin.astimezone(dt.UTC), finish.astimezone(dt.UTC)
            if begin_utc < end and finish_utc > start:
                found.append((begin_utc, finish_utc))
        day += _DAY
    return found


def is_active(window: MaintenanceWindow, now: dt.datetime, target: str | None = None) -> bool:
    """Whether `window` is in progress at `now` for `target` (None: for any target)."""
    if not applies_to(window, target):
        return False
    return bool(occurrences(window, now, now + dt.timedelta(microseconds=1)))


def active_label(
    windows: Iterable[MaintenanceWindow], now: dt.datetime, target: str | None = None
) -> str | None:
    """The label of the first window active at `now` for `target`, or None."""
    for window in windows:
        if is_active(window, now, target):
            return window.label
    return None


def overlap_seconds(
    windows: Iterable[MaintenanceWindow], start: dt.datetime, end: dt.datetime, target: str | None
) -> float:
    """Seconds of ``[start, end)`` inside at least one window concerning `target`."""
    spans = sorted(
        span
        for window in windows
        if applies_to(window, target)
        for span in occurrences(window, start, end)
    )
    total = 0.0
    cursor = start
    for span_start, span_end in spans:
        begin = max(span_start, cursor)
        finish = min(span_end, end)
        if finish > begin:
            total += (finish - begin).total_seconds()
            cursor = finish
    return total


def overlap_label(
    windows: Iterable[MaintenanceWindow], start: dt.datetime, end: dt.datetime, target: str | None
) -> str | None:
    """The label of the first window concerning `target` that overlaps ``[start, end]``."""
    stop = end if end > start else start + dt.timedelta(microseconds=1)
    for window in windows:
        if applies_to(window, target) and occurrences(window, start, stop):
            return window.label
    return None


def describe(window: MaintenanceWindow) -> str:
    """The window in French for the status page, e.g. ``tous les jours de 22:00 à 06:00``."""
    if window.every is None:
        return f"du {window.start} au {window.end} ({window.tz})".replace("T", " ")
    when = (
        "tous les jours"
        if window.every == "day"
        else f"chaque {_WEEKDAYS_FR[WEEKDAYS.index(window.every)]}"
    )
    return f"{when} de {window.from_} à {window.to} ({window.tz})"
