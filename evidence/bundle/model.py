"""What an export is asked and what it gathers: the request, the per-target figures, the summary
the report is built from, the result, and the bundle errors. Plain data; it writes nothing.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from config.settings import Settings
from evidence.ledger.checkpoint import Checkpoint
from evidence.outages.tracker import OutageRecord
from evidence.report.facts import ReportFacts

__all__ = [
    "DURATION_BOUNDS",
    "BundleError",
    "BundleRequestError",
    "BundleSummary",
    "ExportRequest",
    "ExportResult",
    "NotCoveredYetError",
    "ReportHook",
    "TargetStats",
]

# Upper bounds (s) of the check-duration buckets counted per target and Paris day: 8 per
# doubling from ~1 ms to 128 s (percentiles within ~5 %), one more bucket above.
DURATION_BOUNDS = tuple(2 ** (k / 8) for k in range(-80, 57))


class BundleError(Exception):
    """The bundle cannot be built as asked (the message says what to change)."""


class NotCoveredYetError(BundleError):
    """The entries asked for are not yet covered by a signed checkpoint (retry after one)."""


class BundleRequestError(BundleError):
    """The request itself is wrong: reversed or empty period, unknown outage (bad input)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ExportRequest:
    """What to export: a period [start, end) and optionally some targets, or one outage."""

    start: dt.datetime
    end: dt.datetime
    targets: tuple[str, ...] = ()
    outage_id: str | None = None


@dataclasses.dataclass(slots=True)
class TargetStats:
    """Per-target figures gathered while streaming (for the report): bounded by days."""

    target_id: str
    name: str = ""
    kind: str = ""
    url: str = ""
    checks: int = 0
    successes: int = 0
    duration_sum_s: float = 0.0
    first_at: str | None = None
    last_at: str | None = None
    # Paris day (ISO date) -> [checks, successes, sum of durations of successful checks,
    # then the count of checks (vantage-offline ones excluded) per DURATION_BOUNDS bucket]
    daily: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    outcomes: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)

    @property
    def availability(self) -> float | None:
        """Successful checks / checks (None without checks)."""
        return None if not self.checks else self.successes / self.checks


@dataclasses.dataclass(slots=True)
class BundleSummary:
    """Everything the report needs, filled while the bundle is streamed.

    `corroboration` maps an outage id to the number of vantages that saw it (set by
    `vigie corroborate` data when given); the report says "confirmé depuis N points
    d'observation".
    """

    vantage: str
    operator: str
    period_start: dt.datetime
    period_end: dt.datetime
    created_at: dt.datetime
    targets: dict[str, TargetStats]
    outages: list[OutageRecord]
    range_start: int
    range_stop: int
    entries: int = 0
    disclosed: int = 0
    hidden: int = 0
    checkpoints: list[Checkpoint] = dataclasses.field(default_factory=list)
    timestamps: dict[int, str] = dataclasses.field(default_factory=dict)  # cp seq -> gen_time
    public_key: str = ""
    tsa_name: str | None = None
    environment: dict[str, Any] = dataclasses.field(default_factory=dict)
    screenshots: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (sha, target)
    # screenshot sha -> (started_at, outcome) of the first observation that names it: the
    # report shows captures of failures only, each with its time
    capture_info: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    artifact_files: dict[str, str] = dataclasses.field(default_factory=dict)  # sha -> zip path
    corroboration: dict[str, int] = dataclasses.field(default_factory=dict)
    mode: str = "range"
    outage_id: str | None = None
    target_filter: tuple[str, ...] = ()
    warnings: list[str] = dataclasses.field(default_factory=list)
    settings: Settings | None = None  # when exported by a command or the service
    gaps: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # Vigie not running
    vantage_events: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (at, event)
    bundle_name: str = ""  # the zip's file name, as the report and LISEZMOI.txt name it
    # the period asked for, when the data cover only part of it (`period_*` are the data's)
    requested_start: dt.datetime | None = None
    requested_end: dt.datetime | None = None
    # (at, event, target): journey drift started/ended (unmonitored time of that journey)
    drift_events: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    # every distinct environment fact, each target's addresses, the clock jumps (report)
    report_facts: ReportFacts = dataclasses.field(default_factory=ReportFacts)


ReportHook = Callable[[BundleSummary, Callable[[str], bytes | None]], bytes]


@dataclasses.dataclass(slots=True)
class ExportResult:
    """What `export_bundle` wrote."""

    path: Path
    summary: BundleSummary
    files: dict[str, tuple[str, int]]  # zip path -> (sha256 hex, size)
    elapsed_s: float
