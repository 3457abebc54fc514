"""French text for people: dates and times in Paris, durations, percentages, decimals, plurals.

Every page, report, CSV and message written for association staff, lawyers and judges formats
its figures here, so they read the same everywhere. Pure functions; nothing here reads a clock.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from config.vocabulary import PARIS

__all__ = [
    "decimal_fr",
    "format_date_fr",
    "format_datetime_fr",
    "format_duration_fr",
    "paris_time_fr",
    "percent_fr",
    "plural_fr",
    "span_fr",
    "split_duration",
    "to_paris",
]

_MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
_NNBSP = "\u202f"  # narrow no-break space: before % and inside numbers, as French typography asks


def to_paris(moment: dt.datetime) -> dt.datetime:
    """`moment` in Paris time (a naive moment is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(PARIS)


def paris_time_fr(moment: dt.datetime | str) -> str:
    """A moment shown as users read it: ``23/11/2026 14:27:18`` in Paris time."""
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    return moment.astimezone(PARIS).strftime("%d/%m/%Y %H:%M:%S")


def format_date_fr(day: dt.date) -> str:
    """``1er novembre 2026``, ``23 novembre 2026``."""
    first = "1er" if day.day == 1 else str(day.day)
    return f"{first} {_MONTHS[day.month - 1]} {day.year}"


def format_datetime_fr(moment: dt.datetime, *, seconds: bool = False, zone: bool = True) -> str:
    """``23 novembre 2026 à 14 h 27 (heure de Paris)``."""
    local = to_paris(moment)
    text = f"{format_date_fr(local.date())} à {local.hour} h {local.minute:02d}"
    if seconds:
        text += f" min {local.second:02d} s"
    return text + (" (heure de Paris)" if zone else "")


def split_duration(seconds: float) -> tuple[int, int, int, int]:
    """Whole days, hours, minutes and seconds of `seconds` (rounded, negative counts as 0)."""
    total = round(max(seconds, 0.0))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return days, hours, minutes, secs


def format_duration_fr(seconds: float, *, day_minutes: bool = False) -> str:
    """A duration in French, e.g. ``2 h 05 min``, ``3 j 4 h``, ``45 s``.

    `day_minutes`: keep the minutes of a duration over a day (``3 j 4 h 05 min``, as the
    evidence report writes it) instead of dropping them (``3 j 4 h``).
    """
    days, hours, minutes, secs = split_duration(seconds)
    if days:
        if day_minutes:
            return f"{days} j {hours} h {minutes:02d} min" if hours or minutes else f"{days} j"
        return f"{days} j {hours} h" if hours else f"{days} j"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s" if secs else f"{minutes} min"
    return f"{secs} s"


def percent_fr(ratio: float | None, digits: int = 2) -> str:
    """A ratio as French text, rounded down so downtime never shows as 100 % (``99,95 %``)."""
    if ratio is None:
        return "—"
    scale = 10**digits
    value = math.floor(ratio * 100 * scale + 1e-9) / scale
    return f"{value:.{digits}f}".replace(".", ",") + f"{_NNBSP}%"


def decimal_fr(value: Any) -> str:
    """A number with a decimal comma and no trailing zeros (``0,25``); None is empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".").replace(".", ",")
    return str(value)


def plural_fr(count: int, singular: str, plural: str | None = None) -> str:
    """``1 vérification``, ``3 vérifications``: French agreement, never ``(s)``.

    `singular` and `plural` may hold several words (``vérification réussie``); the plural
    defaults to each word followed by ``s``. French counts 0 and 1 as singular.
    """
    if abs(count) < 2:
        return f"{count} {singular}"
    return f"{count} {plural or ' '.join(w + 's' for w in singular.split())}"


def span_fr(start: str, end: str | None) -> str:
    """A period in words: ``du 07/12/2026 18:33:45 au 07/12/2026 19:02:10``, or ``depuis le …``

    `start` and `end` are already shown as Paris time (see `paris_time_fr`); `end` None is a
    period still going on.
    """
    if end is None:
        return f"depuis le {start}"
    return f"du {start} au {end}"
