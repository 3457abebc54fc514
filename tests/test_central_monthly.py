"""`vigie central` /availability-monthly.csv: watched time per vantage and merged across vantages.

Two vantages' ledgers (real SQLite ledgers written through the ledger API) see the same outage
five minutes apart; one of them was stopped ten minutes (a `gap` entry). Central's rows for
each vantage must equal what that vantage's own service counts; the merged row counts as down
only the time both vantages saw the outage at once. Validated with `frictionless`. Loopback.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest

from config.settings import OutageRules
from config.targets import Target
from config.vocabulary import GAP, OBSERVATION
from evidence.ledger.backends import open_ledger
from evidence.outages.availability import at_least
from evidence.outages.tracker import entry_time, rebuild_from_ledger
from exporter.central import Central, CentralConfig, build_app
from exporter.opendata import monthly_rows
from tests.bundle_fixture import BUILD_START, _observation, build_ledger
from tests.test_opendata import check_frictionless

TARGETS = ("anef-accueil", "anef-connexion")
NAMES = {"anef-accueil": "ANEF — page d'accueil", "anef-connexion": "ANEF — connexion"}


def _minute(n: float) -> dt.datetime:
    return BUILD_START + dt.timedelta(minutes=n)


def _until(url: str, vantage: str) -> dt.datetime:
    """The newest entry time of a ledger, read independently of central."""
    with open_ledger(url, vantage=vantage, readonly=True) as ledger:
        times = [
            entry_time(json.loads(row.body) | {"type": row.type}) for row in ledger.iter_rows()
        ]
    return max(t for t in times if t is not None)


def _service_rows(url: str, vantage: str) -> list[dict[str, Any]]:
    """The monthly rows the vantage's own service counts (its tracker replaying the ledger)."""
    now = _until(url, vantage)
    targets = [Target(id=t, name=NAMES[t], kind="http", url="http://127.0.0.1/") for t in TARGETS]
    with open_ledger(url, vantage=vantage, readonly=True) as ledger:
        tracker = rebuild_from_ledger(ledger, OutageRules(), (), targets, now=now, days=3650)
    return [
        {
            "month": row.month,
            "target_id": row.target_id,
            "monitored_s": round(row.monitored_s, 3),
            "down_s": round(row.down_s, 3),
            "unmonitored_s": round(row.unmonitored_s, 3),
        }
        for row in monthly_rows(tracker.index, NAMES, now)
    ]


@pytest.fixture
def ledgers(tmp_path: Path) -> dict[str, str]:
    urls = {}
    for vantage, shift in (("paris-1", 0), ("lyon-1", 5)):
        url = f"sqlite:///{tmp_path / vantage}.db"
        build_ledger(url, tmp_path / vantage, vantage=vantage, outage_shift=shift)
        urls[vantage] = url
    # lyon-1 was stopped from minute 120 to 130 (as `vigie run` records it at restart).
    with open_ledger(urls["lyon-1"], vantage="lyon-1") as ledger:
        gap = {"from": _minute(120).isoformat(), "to": _minute(130).isoformat()}
        ledger.append([(GAP, gap | {"duration_s": 600.0, "reason": "not_running"})])
        _checks(ledger, range(130, 140))
    return urls


def _checks(ledger: Any, minutes: range) -> None:
    for minute in minutes:
        ledger.append(
            [
                (OBSERVATION, _observation(t, _minute(minute), ok=True, artifacts={}))
                for t in TARGETS
            ]
        )


def _central(ledgers: dict[str, str]) -> Central:
    return Central(
        CentralConfig.model_validate(
            {
                "vantages": [{"name": v, "ledger": url} for v, url in ledgers.items()],
                "targets": NAMES,
                "refresh_seconds": 0,
            }
        )
    )


async def _get(central: Central, paths: list[str], headers: dict[str, str] | None = None) -> Any:
    from aiohttp.test_utils import TestClient, TestServer

    async with TestClient(TestServer(build_app(central))) as client:
        answers = []
        for path in paths:
            response = await client.get(path, headers=headers or {})
            answers.append((response.status, response.headers, await response.read()))
        return answers


def _rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode())))


class TestAtLeast:
    def test_overlaps_counted(self) -> None:
        """Spans covered by at least k groups; touching spans of one group never count twice."""
        a = [(0.0, 10.0), (20.0, 30.0)]
        b = [(5.0, 25.0)]
        c = [(10.0, 12.0)]
        assert at_least(1, [a, b, c]) == [(0.0, 30.0)]
        assert at_least(2, [a, b, c]) == [(5.0, 12.0), (20.0, 25.0)]
        assert at_least(3, [a, b, c]) == []
        assert at_least(2, [[(0.0, 10.0)], [(10.0, 20.0)]]) == []  # touching is not overlapping


class TestCentralMonthly:
    def test_per_vantage_and_merged(self, ledgers: dict[str, str], tmp_path: Path) -> None:
        """Per vantage, the service's own figures; merged, only corroborated downtime is down."""
        central = _central(ledgers)
        try:
            (monthly, package, outages) = asyncio.run(
                _get(central, ["/availability-monthly.csv", "/datapackage.json", "/outages.csv"])
            )
        finally:
            central.close()
        assert monthly[0] == 200, monthly[2]
        check_frictionless(
            tmp_path / "package",
            {
                "availability-monthly.csv": monthly[2],
                "datapackage.json": package[2],
                "outages.csv": outages[2],
            },
        )
        rows = _rows(monthly[2])
        (resource,) = [
            r for r in json.loads(package[2])["resources"] if r["name"] == "availability-monthly"
        ]
        assert "au moins 2 points d'observation" in resource["description"]
        assert resource["schema"]["primaryKey"] == ["month", "target_id", "vantage"]
        for vantage, url in ledgers.items():
            mine = [
                {k: r[k] for k in ("month", "target_id")}
                | {k: float(r[k]) for k in ("monitored_s", "down_s", "unmonitored_s")}
                for r in rows
                if r["vantage"] == vantage
            ]
            assert mine == _service_rows(url, vantage), vantage
        merged = {r["target_id"]: r for r in rows if r["vantage"] == "*"}
        assert set(merged) == set(TARGETS)
        accueil = merged["anef-accueil"]
        assert accueil["month"] == "2026-11"
        # paris-1 down 40-50, lyon-1 down 45-55: both at once 45-50 only.
        assert float(accueil["down_s"]) == 300.0
        assert float(accueil["uncorroborated_down_s"]) == 600.0
        # watched by someone: from minute 0 to the end of the longest ledger, less lyon-1's gap
        # where paris-1 had stopped too; corroborable: while both watched.
        paris_end = (_until(ledgers["paris-1"], "paris-1") - BUILD_START).total_seconds()
        lyon_end = (_until(ledgers["lyon-1"], "lyon-1") - BUILD_START).total_seconds()
        assert paris_end < 120 * 60 < 130 * 60 < lyon_end
        monitored = 120 * 60 + (lyon_end - 130 * 60)
        assert float(accueil["monitored_s"]) == pytest.approx(monitored, abs=1e-3)
        assert float(accueil["corroborable_s"]) == pytest.approx(paris_end, abs=1e-3)
        assert float(accueil["availability"]) == pytest.approx(1 - 300 / monitored, abs=1e-6)
        assert float(accueil["availability_low"]) == pytest.approx(1 - 900 / monitored, abs=1e-6)
        assert float(merged["anef-connexion"]["down_s"]) == 0.0
        assert merged["anef-connexion"]["availability"] == "1.0"

    def test_cached_until_a_ledger_grows(self, ledgers: dict[str, str]) -> None:
        """304 while the ledgers do not change; a vantage's new checks change the table."""
        central = _central(ledgers)
        try:
            ((status, headers, body),) = asyncio.run(_get(central, ["/availability-monthly.csv"]))
            assert status == 200
            assert headers["Last-Modified"]
            ((again, _, _),) = asyncio.run(
                _get(central, ["/availability-monthly.csv"], {"If-None-Match": headers["ETag"]})
            )
            assert again == 304
            with open_ledger(ledgers["paris-1"], vantage="paris-1") as ledger:
                _checks(ledger, range(120, 125))
            ((status, newer, changed),) = asyncio.run(
                _get(central, ["/availability-monthly.csv"], {"If-None-Match": headers["ETag"]})
            )
        finally:
            central.close()
        assert status == 200
        assert newer["ETag"] != headers["ETag"]
        before = {(r["vantage"], r["target_id"]): r for r in _rows(body)}
        after = {(r["vantage"], r["target_id"]): r for r in _rows(changed)}
        key = ("paris-1", "anef-accueil")
        assert float(after[key]["monitored_s"]) > float(before[key]["monitored_s"])
