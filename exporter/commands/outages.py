"""`vigie outages`: the outage history from the ledger, as a table, CSV or JSON.

It only reads: the ledger is opened read-only and nothing is ever appended or changed.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from config.vocabulary import EXIT_FAILED, EXIT_OK, PARIS
from evidence.ledger.entries import LedgerError
from evidence.ledger.reviews import review_required, review_state
from evidence.outages.history import LedgerSource, load_outages
from evidence.outages.tracker import (
    OutageRecord,
    format_duration,
)
from exporter.plumbing import LoadSettings, add_command, command_settings, paris_moment

if TYPE_CHECKING:
    from config.settings import Settings
    from evidence.outages.history import EntrySource

__all__ = [
    "add_commands",
    "parse_moment",
    "render",
    "run_outages",
]


CSV_FIELDS = (
    "id",
    "target_id",
    "kind",
    "started_at",
    "ended_at",
    "started_paris",
    "ended_paris",
    "duration_s",
    "failed_checks",
    "causes",
    "maintenance",
    "maintenance_s",
    "artifacts_total",
    "first_seq",
    "last_seq",
    "review",  # French review state: "constatée et vérifiée par …", "écartée : …", or empty
)


def parse_moment(text: str, *, end: bool = False) -> dt.datetime:
    """A --from/--to value: a date (Paris day; `end` means the end of it) or a date-time.

    Date-times without an offset are Paris time. Raises ValueError with a usable message.
    """
    try:
        return paris_moment(text.strip(), end=end)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date or date-time (e.g. 2026-11-23 or 2026-11-23T14:30)"
        ) from None


def select(
    records: Iterable[OutageRecord],
    *,
    targets: Sequence[str] = (),
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> list[OutageRecord]:
    """Records of `targets` (all when empty) overlapping ``[start, end)``."""
    out = []
    for record in records:
        if targets and record.target_id not in targets:
            continue
        if end is not None and record.start >= end:
            continue
        record_end = record.end
        if start is not None and record_end is not None and record_end <= start:
            continue
        out.append(record)
    return out


def _paris(value: str | None) -> str:
    if value is None:
        return ""
    return dt.datetime.fromisoformat(value).astimezone(PARIS).isoformat(timespec="seconds")


def _row(record: OutageRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "target_id": record.target_id,
        "kind": record.kind,
        "started_at": record.started_at,
        "ended_at": record.ended_at or "",
        "started_paris": _paris(record.started_at),
        "ended_paris": _paris(record.ended_at),
        "duration_s": "" if record.duration_s is None else f"{record.duration_s:.3f}",
        "failed_checks": record.failed_checks,
        "causes": record.causes_text,
        "maintenance": record.maintenance or "",
        "maintenance_s": f"{record.maintenance_s:.3f}",
        "artifacts_total": record.artifacts_total,
        "first_seq": "" if record.first_seq is None else record.first_seq,
        "last_seq": "" if record.last_seq is None else record.last_seq,
        "review": "" if record.review is None else record.review.text_fr,
    }


def _json_record(record: OutageRecord, settings: Settings | None) -> dict[str, Any]:
    data = record.to_dict()
    required = settings is not None and review_required(settings, record.target_id)
    data["review"] = review_state(record.reviews, required=required)
    return data


def render(
    records: Sequence[OutageRecord], fmt: str, now: dt.datetime, settings: Settings | None = None
) -> str:
    """The records as ``table``, ``csv`` or ``json`` text (JSON: with their review state)."""
    if fmt == "json":
        data = [_json_record(r, settings) for r in records]
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        for record in records:
            writer.writerow(_row(record))
        return buffer.getvalue()
    if not records:
        return "No outage recorded for this selection.\n"
    header = ("ID", "TARGET", "KIND", "START (PARIS)", "END (PARIS)", "DURATION", "CHECKS")
    rows = [header]
    details = []
    for record in records:
        duration = format_duration(record.duration(now))
        rows.append(
            (
                record.id,
                record.target_id,
                record.kind,
                _paris(record.started_at),
                _paris(record.ended_at) or "ongoing",
                duration + (" so far" if record.is_open else ""),
                str(record.failed_checks),
            )
        )
        extra = record.causes_text
        if record.maintenance:
            extra += f"; maintenance: {record.maintenance}"
        if record.review is not None:
            extra += f"; review: {record.review.verdict} by {record.review.by}"
        details.append(extra)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for index, row in enumerate(rows):
        cause = "CAUSES" if index == 0 else details[index - 1]
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) + "  " + cause)
    return "\n".join(line.rstrip() for line in lines) + "\n"


def run_outages(
    args: argparse.Namespace,
    source_factory: Callable[[Settings], EntrySource] | None = None,
) -> int:
    """`vigie outages [--target ID] [--from DATE] [--to DATE] [--format table|csv|json]`."""
    from config.settings import ConfigError

    settings = command_settings(args)
    try:
        start = parse_moment(args.from_) if args.from_ else None
        end = parse_moment(args.to, end=True) if args.to else None
    except ValueError as exc:
        raise ConfigError([f"--from/--to: {exc}"]) from None
    if start is not None and end is not None and end <= start:
        raise ConfigError(["--to: must be after --from"])
    factory = source_factory or getattr(args, "source_factory", None) or LedgerSource.open
    if factory == LedgerSource.open:
        from evidence.ledger.entries import sqlite_path

        missing = sqlite_path(settings.ledger.url)
        if missing is not None and not missing.is_file():  # a wrong ledger.url: bad input
            raise ConfigError([f"ledger.url: no ledger at {missing}"])
    try:
        source = factory(settings)
        try:
            records = load_outages(source, settings)
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()
    except (LedgerError, OSError) as exc:
        print(f"vigie outages: cannot read the ledger: {exc}", file=sys.stderr)
        return EXIT_FAILED
    wanted = tuple(args.target or ())
    known = {t.id for t in settings.targets} | {r.target_id for r in records}
    unknown = [t for t in wanted if t not in known]
    if unknown:
        raise ConfigError(
            [f"--target: no target with id {unknown[0]!r} (known: {', '.join(sorted(known))})"]
        )
    chosen = select(records, targets=wanted, start=start, end=end)
    sys.stdout.write(render(chosen, args.format, dt.datetime.now(dt.UTC), settings))
    return EXIT_OK


def add_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    load_settings: LoadSettings,
    *,
    source_factory: Callable[[Settings], EntrySource] | None = None,
) -> None:
    """Add `vigie outages` to the `vigie` parser (handler in ``args.handler``)."""
    parser = add_command(
        subparsers,
        "outages",
        load_settings,
        help="list confirmed outages from the ledger (table, CSV or JSON)",
        description="List the confirmed outages (down) and slow periods (degraded) recorded "
        "in the ledger, oldest first. Times are stored in UTC; the table shows them in "
        "Europe/Paris time with their offset. DATE is a Paris day (2026-11-23) or a date-time "
        "(2026-11-23T14:30, Paris time unless it carries an offset); --to DATE includes that "
        "day. An outage is listed when it overlaps the period.",
    )
    parser.add_argument(
        "--target", action="append", metavar="ID", help="only this target (repeatable)"
    )
    parser.add_argument("--from", dest="from_", metavar="DATE", help="from this day or time")
    parser.add_argument("--to", metavar="DATE", help="up to this day (included) or time")
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
    parser.set_defaults(handler=run_outages, source_factory=source_factory)
