"""Benchmark: what the monthly availability table costs `vigie central` on a large ledger.

Central now decodes every observation of each vantage's ledger (to know the watched time),
where it used to decode only outage events. This prints, on one synthetic SQLite ledger of
`--minutes` x 2 targets checked every minute (the real observation body of the tests):
the first full read with and without the observations (reference: the outage events only,
as before), a refresh after 10 new minutes (incremental: the ledger is append-only), and the
computation of the table (cached by ledger size, so done once per growth). Not a test.

    .venv/bin/python bench/central_monthly.py [--minutes 43200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import exporter.central as central_module
from config.vocabulary import OBSERVATION
from evidence.ledger.backends import open_ledger
from exporter.central import Central, CentralConfig, _LedgerReader
from tests.bundle_fixture import BUILD_START, _observation

TARGETS = ("anef-accueil", "anef-connexion")


def _fill(url: str, start: int, minutes: int) -> None:
    with open_ledger(url, vantage="paris-1") as ledger:
        batch = []
        for minute in range(start, start + minutes):
            when = BUILD_START + dt.timedelta(minutes=minute)
            batch.extend(
                (OBSERVATION, _observation(t, when, ok=True, artifacts={})) for t in TARGETS
            )
            if len(batch) >= 2000:
                ledger.append(batch)
                batch = []
        if batch:
            ledger.append(batch)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=int, default=43200, help="default: 30 days")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'paris-1.db'}"
        _fill(url, 0, args.minutes)
        config = CentralConfig.model_validate(
            {"vantages": [{"name": "paris-1", "ledger": url}], "refresh_seconds": 0}
        )
        # Reference: the same reader decoding the outage events only (as before).
        watched, central_module._WATCHED = central_module._WATCHED, frozenset()
        reference = _LedgerReader(config.vantages[0])
        began = time.perf_counter()
        reference.refresh()
        events_only = time.perf_counter() - began
        reference.close()
        central_module._WATCHED = watched

        central = Central(config)
        began = time.perf_counter()
        view = central.view()
        full = time.perf_counter() - began
        began = time.perf_counter()
        rows = central.monthly(view) or []
        table = time.perf_counter() - began
        began = time.perf_counter()
        central.monthly(view)
        cached = time.perf_counter() - began
        _fill(url, args.minutes, 10)
        began = time.perf_counter()
        view = central.view()
        central.monthly(view)
        refresh = time.perf_counter() - began
        central.close()
    entries = 2 * args.minutes
    print(f"ledger: {entries} observations ({args.minutes} minutes x {len(TARGETS)} targets)")
    print(f"first read, outage events only (reference): {events_only:.2f} s")
    print(f"first read, with observations: {full:.2f} s (x{full / events_only:.2f})")
    print(f"per observation: {full / entries * 1e6:.1f} us")
    print(f"monthly table ({len(rows)} rows): {table * 1000:.1f} ms; cached: {cached * 1e6:.0f} us")
    print(f"refresh after 10 new minutes, read + table: {refresh * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
