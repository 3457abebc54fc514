"""Benchmark: status page render time and start-up rebuild throughput with a year of history.

In memory only (no network, no disk): a synthetic year of observations for 6 targets with
frequent outages and slow periods is replayed through `OutageTracker.rebuild` (as at start-up),
then the page is built and rendered. Times are CPU seconds of this process (the machine may be
shared). Not a test: it prints figures and ratios against a reference measured in the same run
(the same page with one day of history).

Usage: .venv/bin/python bench/statuspage.py [--days 365] [--every 600] [--outages-per-day 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config.settings import OutageRules  # noqa: E402
from config.targets import Target  # noqa: E402
from evidence.outages.tracker import REPLAY_DAYS, OutageTracker  # noqa: E402
from exporter.statuspage import build_status_view, render_status_view  # noqa: E402
from probes.environment import collect_environment  # noqa: E402
from probes.observation import canonical_json, format_time  # noqa: E402

TARGETS = [
    Target(
        id=f"cible-{i}", name=f"Service {i}", kind="http", url=f"http://127.0.0.1/{i}", slow_after=5
    )
    for i in range(6)
]
RULES = OutageRules(confirm_after=3, recover_after=2, recheck=10.0)


def synthetic_ledger(
    days: int, every: float, outages_per_day: float, end: dt.datetime, seed: int
) -> Iterator[dict[str, Any]]:
    """Decoded ledger entries: observations every `every` s, runs of failures and slowness."""
    rng = random.Random(seed)
    start = end - dt.timedelta(days=days)
    steps = int(days * 86400 / every)
    p_fault = outages_per_day * every / 86400
    seq = 0
    state = {t.id: 0 for t in TARGETS}  # remaining failing (>0) or slow (<0) checks
    for step in range(steps):
        moment = format_time(start + dt.timedelta(seconds=step * every))
        for target in TARGETS:
            left = state[target.id]
            if left == 0 and rng.random() < p_fault:
                left = rng.randint(3, 30) * (1 if rng.random() < 0.7 else -1)
            failing, slow = left > 0, left < 0
            state[target.id] = left - 1 if failing else (left + 1 if slow else 0)
            yield {
                "type": "observation",
                "seq": seq,
                "target_id": target.id,
                "kind": "http",
                "vantage": "bench",
                "started_at": moment,
                "duration_s": 7.0 if slow else 0.2,
                "success": not failing,
                "outcome": "http_status" if failing else "ok",
                "http_status": 503 if failing else 200,
                "artifacts": {},
            }
            seq += 1


def replay(entries: list[bytes]) -> tuple[OutageTracker, float]:
    """A tracker rebuilt from canonical JSON `entries` (decoded as at start-up), and seconds."""
    began = time.process_time()
    tracker = OutageTracker.rebuild((json.loads(e) for e in entries), RULES, (), TARGETS)
    return tracker, time.process_time() - began


def encoded(entries: Iterator[dict[str, Any]]) -> list[bytes]:
    """Entries as the ledger stores them, with a realistic `environment` in observations."""
    environment = collect_environment("bench", "Association X", "Vigie/bench")
    return [canonical_json({**e, "environment": environment}) for e in entries]


def render_seconds(tracker: OutageTracker, now: dt.datetime, runs: int) -> tuple[float, int]:
    """Median seconds to build and render the page, and its size in bytes."""
    times = []
    size = 0
    for _ in range(runs):
        began = time.process_time()
        view = build_status_view(tracker, TARGETS, vantage="bench", now=now)
        size = len(render_status_view(view).encode())
        times.append(time.process_time() - began)
    return statistics.median(times), size


def entries_bytes(entries: list[bytes]) -> int:
    """Total size of encoded entries."""
    return sum(len(e) for e in entries)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--every", type=float, default=600.0, help="seconds between checks")
    parser.add_argument("--outages-per-day", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    now = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)

    small = encoded(synthetic_ledger(1, args.every, args.outages_per_day, now, seed=1))
    reference, _ = replay(small)
    ref_s, ref_size = render_seconds(reference, now, args.runs)

    entries = encoded(synthetic_ledger(args.days, args.every, args.outages_per_day, now, seed=1))
    tracker, rebuild_s = replay(entries)
    year_s, year_size = render_seconds(tracker, now, args.runs)
    records = tracker.records()
    print(
        f"history: {args.days} days, {len(TARGETS)} targets, a check every {args.every:g} s: "
        f"{len(entries)} observations, {len(records)} outages/slow periods"
    )
    per_day = 3 * 1440 + 3 * 288 + 2 * 1440  # shipped config: 3 http, 3 browser, 2 controls
    window = per_day * REPLAY_DAYS
    rate = len(entries) / rebuild_s
    print(
        f"rebuild (JSON decode + replay): {rebuild_s:.2f} s CPU, {rate:,.0f} entries/s, "
        f"{entries_bytes(entries) / len(entries):.0f} bytes/entry; with the shipped config "
        f"({per_day} entries/day) start-up replays {REPLAY_DAYS:g} days = {window:,.0f} "
        f"observations: about {window / rate:.0f} s CPU, whatever the ledger's age"
    )
    print(
        f"page with one day of history: {ref_s * 1000:.1f} ms ({ref_size / 1024:.0f} KiB); "
        f"with {args.days} days: {year_s * 1000:.1f} ms ({year_size / 1024:.0f} KiB); "
        f"ratio {year_s / ref_s:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
