"""Outage history read back from a ledger: closed outages from their events, open ones brought
up to date by their checks. It only reads; nothing is ever appended or changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from config.vocabulary import GAP, OBSERVATION, OUTAGE, REVIEW, VANTAGE
from evidence.outages.tracker import OutageRecord, OutageTracker, outages_from_entries

if TYPE_CHECKING:
    from config.settings import Settings

__all__ = ["EntrySource", "LedgerSource", "ListSource", "ledger_outages", "load_outages"]

_EVENTS = (OUTAGE, GAP, VANTAGE, REVIEW)
_ALL = (OBSERVATION, *_EVENTS)


class EntrySource(Protocol):
    """Decoded ledger entries (``{"type", "seq", ...body}``) in seq order."""

    def entries(self, start: int = 0, *, observations: bool = True) -> Iterable[Mapping[str, Any]]:
        """Entries from seq `start`; observations skipped when `observations` is False."""
        ...


class ListSource:
    """Entries already in memory (tests, or a ledger read elsewhere)."""

    def __init__(self, entries: Sequence[Mapping[str, Any]]) -> None:
        self._entries = entries

    def entries(self, start: int = 0, *, observations: bool = True) -> Iterator[Mapping[str, Any]]:
        """Entries from seq `start`, optionally without observations."""
        for entry in self._entries:
            if int(entry.get("seq", 0)) < start:
                continue
            if entry.get("type") == "observation" and not observations:
                continue
            yield entry


class LedgerSource:
    """The configured ledger, opened read-only; entries not needed are never decoded."""

    def __init__(self, ledger: Any) -> None:
        self._ledger = ledger

    @classmethod
    def open(cls, settings: Settings) -> LedgerSource:
        """Open the ledger of `settings` read-only (raises the ledger's error when it cannot)."""
        from evidence.ledger.opening import open_evidence

        ledger = open_evidence(settings).ledger
        return cls(ledger)

    def entries(self, start: int = 0, *, observations: bool = True) -> Iterator[dict[str, Any]]:
        """Entries from seq `start` of the types outage history needs."""
        wanted = _ALL if observations else _EVENTS
        for row in self._ledger.iter_rows(start):
            if row.type in wanted:
                entry = json.loads(row.body)
                entry.setdefault("seq", row.seq)
                yield entry

    def close(self) -> None:
        """Close the ledger."""
        self._ledger.close()


def load_outages(source: EntrySource, settings: Settings) -> list[OutageRecord]:
    """Every outage the ledger tells, with open outages brought up to date by their checks.

    Closed outages come from their events alone; observations are read only from the start
    of the oldest open outage, so the cost does not grow with the age of the ledger.
    """
    records = outages_from_entries(source.entries(observations=False))
    still_open = [r for r in records if r.is_open]
    if not still_open:
        return records
    start = min(
        r.first_seq if r.first_seq is not None else (r.opened_entry or 0) for r in still_open
    )
    tracker = OutageTracker.rebuild(
        source.entries(start), settings.outages, settings.maintenance, settings.targets
    )
    current = {r.id: r for r in tracker.open_outages()}
    return [current.get(r.id, r) if r.is_open else r for r in records]


def ledger_outages(settings: Settings) -> list[OutageRecord] | None:
    """The outages of the configured ledger (read-only), or None when it does not exist yet.

    Raises the ledger's error (LedgerError, OSError) when it exists but cannot be read.
    """
    from evidence.ledger.entries import sqlite_path

    path = sqlite_path(settings.ledger.url)
    if path is not None and not path.is_file():
        return None
    source = LedgerSource.open(settings)
    try:
        return load_outages(source, settings)
    finally:
        source.close()
