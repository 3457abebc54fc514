"""Open data: /outages.csv, .json, .atom, /datapackage.json, the monthly table and badges.

A real `vigie run` sees a real outage of the simulator; the feed is read back with feedparser
and checked against RFC 4287's rules, the CSV against its data package with `frictionless`.
`vigie central` serves the same, merged across vantages (bundles of synthetic ledgers).
Loopback only.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import feedparser
import pytest
from frictionless import validate

from exporter.central import Central, CentralConfig, build_app
from tests.bundle_fixture import BUILD_START
from tests.service_fixture import LedgerFollower, run_service
from tests.test_export_e2e import _config as export_config
from tests.test_vantages_central_page import _bundle

ATOM = "{http://www.w3.org/2005/Atom}"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url: str, headers: Mapping[str, str] | None = None, method: str = "GET") -> Any:
    """(status, headers, body) of a local request; HTTP errors returned, not raised."""
    request = urllib.request.Request(url, headers=dict(headers or {}), method=method)
    try:
        with _OPENER.open(request, timeout=15) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def check_rfc4287(xml: bytes) -> ET.Element:
    """The rules of RFC 4287 §4.1 a feed reader relies on (feedparser is lenient about them)."""
    root = ET.fromstring(xml)
    assert root.tag == f"{ATOM}feed"

    def one(parent: ET.Element, name: str) -> ET.Element:
        found = parent.findall(f"{ATOM}{name}")
        assert len(found) == 1, f"{parent.tag} needs exactly one atom:{name}, has {len(found)}"
        return found[0]

    for name in ("id", "title", "updated"):
        one(root, name)
    dt.datetime.fromisoformat(one(root, "updated").text or "")
    assert root.findall(f"{ATOM}author"), "a feed whose entries have no author needs one"
    selfs = [link for link in root.findall(f"{ATOM}link") if link.get("rel") == "self"]
    assert len(selfs) == 1
    ids = []
    for entry in root.findall(f"{ATOM}entry"):
        for name in ("id", "title", "updated"):
            one(entry, name)
        ids.append(one(entry, "id").text)
        assert (one(entry, "id").text or "").startswith("urn:uuid:")
        dt.datetime.fromisoformat(one(entry, "updated").text or "")
        alternates = [
            link
            for link in entry.findall(f"{ATOM}link")
            if link.get("rel", "alternate") == "alternate"
        ]
        assert len(alternates) <= 1
        has_content = entry.find(f"{ATOM}content") is not None
        assert has_content or entry.find(f"{ATOM}summary") is not None
    assert len(ids) == len(set(ids)), "entry ids must be unique"
    return root


def check_frictionless(directory: Path, files: Mapping[str, bytes]) -> None:
    """Write the package and its tables side by side and validate them with frictionless."""
    directory.mkdir(exist_ok=True)
    for name, body in files.items():
        (directory / name).write_bytes(body)
    report = validate(str(directory / "datapackage.json"))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])


def _config(sim: Any, state: Path) -> dict[str, Any]:
    return {
        **export_config(sim, state),
        "vantage": {"name": "od-paris", "operator": "Association de test"},
        "open_data": {"licence_name": "ODbL-1.0", "licence_title": "ODbL"},
    }


def _wait_json(url: str, predicate: Any, what: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, _, body = fetch(url)
        if status == 200:
            document: dict[str, Any] = json.loads(body)
            if predicate(document):
                return document
        time.sleep(0.1)
    raise AssertionError(f"{url}: no {what} within 30 s")


@pytest.mark.slow
class TestServiceOpenData:
    def test_outage_published_open_then_closed(
        self, simulator_process: Any, tmp_path: Path
    ) -> None:
        """A real outage is published while open; its feed entry is updated when it ends."""
        state = tmp_path / "state"
        state.mkdir()
        follower = LedgerFollower(state / "ledger.db", types={"observation", "outage"})
        with run_service(_config(simulator_process, state), state) as service:
            follower.wait(lambda e: e.get("success") is True, "first good check")
            simulator_process.set_fault("/", "http_500", "site")
            try:
                opened = follower.wait(lambda e: e.get("event") == "opened", "outage opened")
                base = service.url
                _wait_json(
                    f"{base}/outages.json", lambda d: d["outages"], "outage in the open data"
                )
                status, _, xml = fetch(f"{base}/outages.atom")
                assert status == 200
                feed = feedparser.parse(xml)
                assert feed.bozo == 0, feed.get("bozo_exception")
                (entry,) = feed.entries
                assert "en cours" in entry.title
                assert entry.updated_parsed == entry.published_parsed
                first_id = entry.id
            finally:
                simulator_process.clear_faults()
            closed = follower.wait(lambda e: e.get("event") == "closed", "outage closed")
            document = _wait_json(
                f"{base}/outages.json", lambda d: d["outages"][0]["ended_at"], "the outage's end"
            )
            status, headers, xml = fetch(f"{base}/outages.atom")
            assert headers["Content-Type"].startswith("application/atom+xml")
            root = check_rfc4287(xml)
            feed = feedparser.parse(xml)
            assert feed.bozo == 0
            (entry,) = feed.entries
            assert entry.id == first_id  # the same entry, updated
            assert "terminée" in entry.title
            ended = dt.datetime.fromisoformat(closed["ended_at"])
            assert dt.datetime.fromisoformat(entry.updated) == ended.replace(microsecond=0) or (
                dt.datetime.fromisoformat(entry.updated) == ended
            )
            assert "od-paris" in entry.summary
            assert "1 point(s) d'observation" in entry.summary
            evidence = [link.href for link in entry.links if link.rel == "related"]
            assert evidence == [f"{base}/outages/{opened['outage_id']}/evidence.zip"]
            assert root.find(f"{ATOM}rights") is not None

            # The JSON and CSV rows are the ledger's events, exactly.
            (row,) = document["outages"]
            assert row["id"] == opened["outage_id"] == closed["outage_id"]
            assert dt.datetime.fromisoformat(row["started_at"]) == dt.datetime.fromisoformat(
                opened["started_at"]
            )
            assert dt.datetime.fromisoformat(row["ended_at"]) == ended
            assert row["failed_checks"] == closed["failed_checks"]
            assert row["vantages"] == "od-paris"
            assert document["licence"]["name"] == "ODbL-1.0"
            # The open data is a snapshot as of the whole second (`service_open_data`): an
            # outage of this test lasts about a second, so read once that second is past its end.
            while dt.datetime.now(dt.UTC).replace(microsecond=0) <= ended:
                time.sleep(0.05)
            files = {}
            for name in ("outages.csv", "availability-monthly.csv", "datapackage.json"):
                status, headers, files[name] = fetch(f"{base}/{name}")
                assert status == 200, name
            (csv_row,) = csv.DictReader(io.StringIO(files["outages.csv"].decode()))
            assert csv_row["id"] == row["id"]
            assert csv_row["ongoing"] == "false"
            package = json.loads(files["datapackage.json"])
            assert package["licenses"][0]["name"] == "ODbL-1.0"
            fields = [f["name"] for f in package["resources"][0]["schema"]["fields"]]
            assert fields == list(csv_row)
            months = list(csv.DictReader(io.StringIO(files["availability-monthly.csv"].decode())))
            assert [m["target_id"] for m in months][-1] == "accueil"
            assert float(months[-1]["down_s"]) > 0
            assert 0 < float(months[-1]["availability"]) < 1
            check_frictionless(tmp_path / "package", files)

            # Cacheable: 304 on a matching ETag or an unchanged Last-Modified.
            status, headers, _ = fetch(f"{base}/outages.csv")
            etag, modified = headers["ETag"], headers["Last-Modified"]
            assert fetch(f"{base}/outages.csv", {"If-None-Match": etag})[0] == 304
            assert fetch(f"{base}/outages.csv", {"If-Modified-Since": modified})[0] == 304
            assert fetch(f"{base}/outages.csv", {"If-None-Match": '"other"'})[0] == 200
            assert fetch(f"{base}/outages.csv", method="POST")[0] == 405

            status, headers, svg = fetch(f"{base}/badges/accueil.svg")
            assert status == 200
            assert headers["Content-Type"].startswith("image/svg+xml")
            ET.fromstring(svg)
            assert "Simulateur — accueil" in svg.decode()
            assert fetch(f"{base}/badges/nope.svg")[0] == 404
            # Feed readers find the feed from the status page itself (autodiscovery).
            page = fetch(f"{base}/")[2].decode()
            assert (
                '<link rel="alternate" type="application/atom+xml" title="Pannes confirmées" '
                'href="/outages.atom">' in page
            )
        follower.close()


class TestCentralOpenData:
    def test_merged_across_vantages(self, tmp_path: Path) -> None:
        """Central publishes one outage seen by two vantages, confirmed by both, valid package."""
        config = CentralConfig.model_validate(
            {
                "vantages": [
                    {
                        "bundle": str(_bundle(tmp_path / "a", "paris-1", 0)),
                        "public_url": "https://vigie-paris.example.org/",
                    },
                    {"bundle": str(_bundle(tmp_path / "b", "lyon-1", 5))},
                ],
                "targets": {"anef-accueil": "ANEF — page d'accueil"},
                "refresh_seconds": 0,
            }
        )
        central = Central(config)

        async def get_all() -> dict[str, tuple[int, Any, bytes]]:
            from aiohttp.test_utils import TestClient, TestServer

            async with TestClient(TestServer(build_app(central))) as client:
                answers = {}
                for path in ("outages.csv", "outages.atom", "datapackage.json", "outages.json"):
                    response = await client.get(f"/{path}")
                    answers[path] = (response.status, response.headers, await response.read())
                etag = answers["outages.csv"][1]["ETag"]
                again = await client.get("/outages.csv", headers={"If-None-Match": etag})
                answers["again"] = (again.status, again.headers, b"")
                missing = await client.get("/availability-monthly.csv")
                answers["monthly"] = (missing.status, missing.headers, b"")
                return answers

        answers = asyncio.run(get_all())
        central.close()
        assert answers["again"][0] == 304
        assert answers["monthly"][0] == 404  # bundles only: no ledger tells watched time up to now
        (row,) = csv.DictReader(io.StringIO(answers["outages.csv"][2].decode()))
        assert row["vantages"] == "lyon-1 paris-1"
        assert row["confirmed_by"] == "2"
        assert row["target_name"] == "ANEF — page d'accueil"
        assert row["evidence_url"] == (
            "https://vigie-paris.example.org/outages/anef-accueil-paris-1-40/evidence.zip"
        )
        start = BUILD_START + dt.timedelta(minutes=40)
        assert dt.datetime.fromisoformat(row["started_at"]) == start
        assert dt.datetime.fromisoformat(row["ended_at"]) == start + dt.timedelta(minutes=15)
        check_rfc4287(answers["outages.atom"][2])
        feed = feedparser.parse(answers["outages.atom"][2])
        assert feed.bozo == 0
        summary = feed.entries[0].summary
        assert "2 point(s) d'observation : lyon-1, paris-1" in summary
        assert "durée 15 min" in summary
        assert "lyon-1 : anef-accueil-lyon-1-45" in summary
        related = [link.href for link in feed.entries[0].links if link.rel == "related"]
        assert related == [row["evidence_url"]]  # lyon-1 has no public_url: no link guessed
        package = json.loads(answers["datapackage.json"][2])
        assert [r["name"] for r in package["resources"]] == ["outages"]
        assert package["licenses"][0]["name"] == "etalab-2.0"
        check_frictionless(
            tmp_path / "package",
            {
                "outages.csv": answers["outages.csv"][2],
                "datapackage.json": answers["datapackage.json"][2],
            },
        )
        # Central's own JSON (vantages and sources) is unchanged.
        assert "sources" in json.loads(answers["outages.json"][2])
