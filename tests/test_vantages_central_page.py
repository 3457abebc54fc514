"""`vigie central`: the status page of several vantages, read from their ledgers and bundles.

Ledgers live on the throwaway PostgreSQL server, provisioned per vantage (evidence/shared_pg)
and read with the read-only role; bundles are exported from synthetic SQLite ledgers. Loopback.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.settings import ConfigError
from evidence.bundle.export import export_bundle
from evidence.bundle.model import ExportRequest
from evidence.ledger.backends import open_ledger
from evidence.outages.tracker import OutageRecord
from evidence.shared_pg import database_url, provision_reader, provision_vantage, vantage_names
from exporter.central import (
    Central,
    CentralConfig,
    Sighting,
    group_sightings,
    load_central_config,
    render_central_page,
)
from tests.bundle_fixture import BUILD_START, build_ledger
from tests.postgres_fixture import PostgresServer
from tests.service_fixture import free_port, http_get

ROOT = Path(__file__).resolve().parents[1]
T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


def _record(target: str, start: int, end: int | None, kind: str = "down") -> OutageRecord:
    def iso(minute: int) -> str:
        return (T0 + dt.timedelta(minutes=minute)).isoformat()

    return OutageRecord(
        id=f"{target}-{start}-{secrets.token_hex(2)}",
        target_id=target,
        kind=kind,
        started_at=iso(start),
        ended_at=None if end is None else iso(end),
        failed_checks=3,
        causes={},
        artifacts={},
        maintenance=None,
        seqs=(),
    )


class TestGrouping:
    """Outages of one target that overlap in time are one outage seen from several vantages."""

    def test_overlap_counts_distinct_vantages(self) -> None:
        """Two vantages overlapping: one group of 2; the same vantage twice still counts once."""
        groups = group_sightings(
            [
                Sighting("paris-1", _record("accueil", 0, 10)),
                Sighting("lyon-1", _record("accueil", 5, 20)),
                Sighting("paris-1", _record("accueil", 12, 15)),
            ]
        )
        assert len(groups) == 1
        assert groups[0].vantages == ("lyon-1", "paris-1")
        assert len(groups[0].sightings) == 3
        assert groups[0].end == T0 + dt.timedelta(minutes=20)

    def test_no_overlap_separate(self) -> None:
        """Outages that do not overlap, or concern another target, are separate groups."""
        groups = group_sightings(
            [
                Sighting("paris-1", _record("accueil", 0, 10)),
                Sighting("lyon-1", _record("accueil", 10, 20)),  # starts when the other ends
                Sighting("lyon-1", _record("api", 0, 10)),
            ]
        )
        assert sorted((g.target_id, g.vantages) for g in groups) == [
            ("accueil", ("lyon-1",)),
            ("accueil", ("paris-1",)),
            ("api", ("lyon-1",)),
        ]

    def test_open_outage_overlaps_everything_after(self) -> None:
        """An outage still open overlaps every later one of the target; the group is open."""
        groups = group_sightings(
            [
                Sighting("paris-1", _record("accueil", 0, None)),
                Sighting("lyon-1", _record("accueil", 30, 40)),
            ]
        )
        assert len(groups) == 1
        assert groups[0].is_open
        assert groups[0].vantages == ("lyon-1", "paris-1")

    def test_degraded_not_counted(self) -> None:
        """Slow periods are not outages: they are not grouped or shown."""
        assert group_sightings([Sighting("paris-1", _record("accueil", 0, 5, "degraded"))]) == []


class TestConfig:
    """central.yaml is validated with one line per problem."""

    def test_source_needs_exactly_one_of_ledger_or_bundle(self, tmp_path: Path) -> None:
        """A vantage with both a ledger and a bundle, or neither, is refused."""
        path = tmp_path / "central.yaml"
        path.write_text(
            yaml.safe_dump(
                {"vantages": [{"ledger": "postgresql://x@h/db", "bundle": "b.zip"}, {"name": "x"}]}
            )
        )
        with pytest.raises(ConfigError) as caught:
            load_central_config(path)
        wrong = [line for line in caught.value.lines if "give either `ledger`" in line]
        assert [line.split(": ")[1] for line in wrong] == ["vantages.0", "vantages.1"]

    def test_unknown_key_and_bad_listen(self, tmp_path: Path) -> None:
        """Unknown keys are errors; `listen` must be HOST:PORT."""
        path = tmp_path / "central.yaml"
        path.write_text(yaml.safe_dump({"vantages": [{"bundle": "b.zip"}], "colour": "red"}))
        with pytest.raises(ConfigError, match="colour"):
            load_central_config(path)
        path.write_text(yaml.safe_dump({"vantages": [{"bundle": "b.zip"}], "listen": "nowhere"}))
        with pytest.raises(ConfigError, match="HOST:PORT"):
            load_central_config(path)


@dataclasses.dataclass(frozen=True)
class Sources:
    """Two vantages' PostgreSQL ledgers (reader URLs), a bundle of a third, writer URLs."""

    a: str
    b: str
    reader_urls: dict[str, str]
    writer_urls: dict[str, str]
    bundle: Path


def _bundle(directory: Path, vantage: str, shift: int) -> Path:
    directory.mkdir()
    built = build_ledger(
        f"sqlite:///{directory / 'l.db'}", directory, vantage=vantage, outage_shift=shift
    )
    with built.open() as ledger:
        export_bundle(
            ledger,
            directory / "b.zip",
            ExportRequest(BUILD_START, BUILD_START + dt.timedelta(hours=3)),
            signer=built.signer,
            artifacts_dir=built.artifacts.root,
            progress=False,
        )
    return directory / "b.zip"


@pytest.fixture(scope="module")
def sources(postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Sources:
    """A (outage 40-50) and B (45-55) on PostgreSQL, C (70-80) as a bundle: A+B overlap."""
    token = secrets.token_hex(3)
    a, b, reader = f"ca-{token}", f"cb-{token}", f"vigie_central_p{token}"
    admin = postgres_server.url()
    writer_urls, reader_urls = {}, {}
    for vantage, shift in ((a, 0), (b, 5)):
        names = vantage_names(vantage)
        password = secrets.token_hex(8)
        provision_vantage(admin, vantage, password=password)
        writer_urls[vantage] = database_url(
            admin, names.database, user=names.role, password=password
        )
        directory = tmp_path_factory.mktemp(vantage)
        build_ledger(writer_urls[vantage], directory, vantage=vantage, outage_shift=shift)
    reader_password = secrets.token_hex(8)
    provision_reader(admin, [a, b], password=reader_password, reader=reader)
    for vantage in (a, b):
        reader_urls[vantage] = database_url(
            admin, vantage_names(vantage).database, user=reader, password=reader_password
        )
    bundle = _bundle(tmp_path_factory.mktemp("bundles") / "c", "lille-1", 30)
    return Sources(a, b, reader_urls, writer_urls, bundle)


def _config(sources: Sources, **extra: Any) -> CentralConfig:
    return CentralConfig.model_validate(
        {
            "vantages": [
                {"name": sources.a, "ledger": sources.reader_urls[sources.a]},
                {"ledger": sources.reader_urls[sources.b]},
                {"bundle": str(sources.bundle)},
            ],
            "targets": {"anef-accueil": "ANEF — page d'accueil"},
            "refresh_seconds": 0,
            **extra,
        }
    )


@pytest.mark.postgres
@pytest.mark.slow
class TestCentralPage:
    """The page groups what each vantage recorded and says how many vantages confirm it."""

    def test_view_counts_confirming_vantages(self, sources: Sources) -> None:
        """A and B overlap (2 vantages); C's later outage stands alone (1 vantage)."""
        central = Central(_config(sources))
        try:
            view = central.view()
        finally:
            central.close()
        assert [s.error for s in view.sources] == [None, None, None]
        assert view.vantages == tuple(sorted((sources.a, sources.b, "lille-1")))
        confirmed = [(g.target_id, g.vantages) for g in view.outages]
        assert confirmed == [
            ("anef-accueil", ("lille-1",)),
            ("anef-accueil", tuple(sorted((sources.a, sources.b)))),
        ]
        html = render_central_page(view)
        assert "2 sur 3</span> points d'observation (corroborée)" in html
        assert "1 sur 3</span> points d'observation (vue d&#x27;un seul réseau)" in html
        assert "ANEF — page d&#x27;accueil" in html
        assert "Aucune panne corroborée en cours." in html
        data = view.to_dict()
        assert [o["corroborated"] for o in data["outages"]] == [False, True]

    def test_follows_new_entries_read_only(self, sources: Sources) -> None:
        """An outage a vantage appends later appears on the next read, through the reader."""
        central = Central(_config(sources))
        try:
            before = len(central.view().outages)
            when = (BUILD_START + dt.timedelta(hours=5)).isoformat()
            event = {
                "event": "opened",
                "outage_id": f"late-{secrets.token_hex(2)}",
                "target_id": "anef-connexion",
                "kind": "down",
                "started_at": when,
                "at": when,
            }
            with open_ledger(sources.writer_urls[sources.b], vantage=sources.b) as ledger:
                ledger.append([("outage", event)])
            view = central.view()
        finally:
            central.close()
        assert len(view.outages) == before + 1
        newest = view.outages[0]
        assert (newest.target_id, newest.vantages, newest.is_open) == (
            "anef-connexion",
            (sources.b,),
            True,
        )

    def test_name_mismatch_and_unreachable_source_shown(self, sources: Sources) -> None:
        """A ledger of another vantage than named, or a dead server, is shown as unreadable."""
        config = CentralConfig.model_validate(
            {
                "vantages": [
                    {"name": "someone-else", "ledger": sources.reader_urls[sources.a]},
                    {"ledger": f"postgresql://nobody:x@127.0.0.1:{free_port()}/nothing"},
                    {"bundle": str(sources.bundle)},
                ],
                "refresh_seconds": 0,
            }
        )
        central = Central(config)
        try:
            view = central.view()
        finally:
            central.close()
        errors = [s.error for s in view.sources]
        assert errors[0] is not None
        assert "appartient à" in errors[0]
        assert errors[1] is not None
        assert errors[2] is None
        assert view.vantages == ("lille-1",)
        assert "Illisible" in render_central_page(view)

    def test_command_serves_page(self, sources: Sources, tmp_path: Path) -> None:
        """`vigie central` serves the page, the JSON and /healthz, and refuses writes."""
        port = free_port()
        config = _config(sources).model_dump(mode="json")
        config["listen"] = f"127.0.0.1:{port}"
        path = tmp_path / "central.yaml"
        path.write_text(yaml.safe_dump(config, allow_unicode=True))
        log = (tmp_path / "central.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "exporter.central", "--config", str(path)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if http_get(f"http://127.0.0.1:{port}/healthz", timeout=1)[0] == 200:
                        break
                except OSError:
                    time.sleep(0.1)
            status, body = http_get(f"http://127.0.0.1:{port}/")
            assert status == 200
            assert "corroborée" in body.decode()
            status, body = http_get(f"http://127.0.0.1:{port}/outages.json")
            assert status == 200
            counts = sorted(o["confirmed_by"] for o in json.loads(body)["outages"])
            assert counts[-1] == 2
            assert http_get(f"http://127.0.0.1:{port}/", method="POST")[0] == 405
        finally:
            process.terminate()
            assert process.wait(timeout=15) == 0
            log.close()
