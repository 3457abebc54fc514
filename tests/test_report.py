"""Tests of the French evidence report: data built from ledger entries, PDF read back by pdftotext.

The PDF is rendered for real (reportlab, embedded DejaVu fonts) and its text extracted with
poppler's `pdftotext`, as a reader would see it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage

from evidence.artifacts import FileArtifactStore
from evidence.ledger import encode_entry
from evidence.outages import OutageRecord, OutageTracker
from evidence.report import format_datetime_fr, render_report
from evidence.report_build import build_report_data
from evidence.report_data import Corroboration, ReportData
from exporter.config import Settings, load_settings

UTC = dt.UTC
START = dt.datetime(2026, 11, 22, 23, 0, tzinfo=UTC)  # 23 Nov 2026 00:00 in Paris
END = START + dt.timedelta(days=2)
OUTAGE_AT = dt.datetime(2026, 11, 23, 13, 27, tzinfo=UTC)  # 14 h 27 in Paris
OUTAGE_END = dt.datetime(2026, 11, 23, 14, 12, tzinfo=UTC)  # 15 h 12 in Paris
CONFIG = """
vantage: {name: paris-1, operator: "Association Défense des Étrangers"}
user_agent: "Vigie/1.0 (+https://example.org/vigie; contact@example.org)"
targets:
  - id: anef-accueil
    name: "ANEF — page d'accueil"
    kind: http
    url: https://administration-etrangers-en-france.interieur.gouv.fr/
    expect: {status: [200], contains: "étrangers"}
  - id: anef-creation-compte
    name: "ANEF — création de compte"
    kind: browser
    url: https://administration-etrangers-en-france.interieur.gouv.fr/particuliers/#/
    steps:
      - click: "text=Se connecter"
controls: [https://www.service-public.fr/]
outages: {confirm_after: 3, recover_after: 2, recheck: 10s}
maintenance:
  - {every: day, from: "02:00", to: "03:00", tz: Europe/Paris}
ledger: {url: "sqlite:///tmp/never-opened.db"}
"""


def settings(tmp_path: Path) -> Settings:
    """The test configuration (two targets, one maintenance window)."""
    path = tmp_path / "vigie.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return load_settings(path)


def png(color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A small real PNG, standing in for a failure screenshot."""
    out = io.BytesIO()
    PILImage.new("RGB", (800, 600), color).save(out, "PNG")
    return out.getvalue()


def observation(target: str, kind: str, at: dt.datetime, **fields: Any) -> dict[str, Any]:
    """A ledger observation body."""
    body: dict[str, Any] = {
        "target_id": target,
        "kind": kind,
        "vantage": "paris-1",
        "started_at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "duration_s": 0.25,
        "success": True,
        "outcome": "ok",
        "http_status": 200,
        "remote_ip": "203.0.113.5",
        "artifacts": {},
        "error": None,
        "environment": {
            "hostname": "vigie-paris",
            "local_ips": ["192.0.2.10"],
            "resolvers": ["192.0.2.53"],
            "proxy": None,
            "os": "Linux-6.1.0-amd64-x86_64-with-glibc2.36",
            "python": "3.11.2",
            "vigie": "1.0.0",
            "user_agent": "Vigie/1.0",
            "clock": {"source": "ntp", "synchronized": True},
            **(
                {"browser": "chromium 131.0.6778.85", "fresh_profile": True}
                if kind == "browser"
                else {}
            ),
        },
    }
    body.update(fields)
    return body


def scenario(tmp_path: Path) -> tuple[list[tuple[int, bytes]], list[OutageRecord], Settings, str]:
    """Two days, a check every 5 minutes per target, one outage of anef-accueil at 14 h 27.

    Returns the ledger entries, the outage records, the settings and the screenshot digest.
    """
    config = settings(tmp_path)
    tracker = OutageTracker(config.outages, config.maintenance, config.targets)
    store = FileArtifactStore(tmp_path / "artifacts")
    shot = store.put(png(), "screenshot")
    entries: list[tuple[int, bytes]] = []

    def append(kind: str, body: dict[str, Any]) -> int:
        seq = len(entries)
        entries.append((seq, encode_entry(kind, seq, body)))
        return seq

    moment = START
    while moment < END:
        down = OUTAGE_AT <= moment < OUTAGE_END
        failing = observation(
            "anef-accueil",
            "http",
            moment,
            success=False,
            outcome="http_status",
            http_status=503,
            duration_s=1.5,
            artifacts={"a" * 64: "warc"},
        )
        body = failing if down else observation("anef-accueil", "http", moment)
        seq = append("observation", body)
        for event in tracker.observe({**body, "seq": seq}):
            append("outage", event)
        browser = observation(
            "anef-creation-compte",
            "browser",
            moment,
            duration_s=2.0 + (moment.hour % 3),
            **(
                {"success": False, "outcome": "step_failed", "artifacts": {shot: "screenshot"}}
                if down
                else {}
            ),
        )
        seq = append("observation", browser)
        for event in tracker.observe({**browser, "seq": seq}):
            append("outage", event)
        if moment.minute == 0 and moment.hour % 6 == 0:
            append(
                "checkpoint",
                {"tree_size": len(entries), "root_hash": "cm9vdA==", "time": moment.isoformat()},
            )
        moment += dt.timedelta(minutes=5)
    return entries, tracker.records(), config, shot


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    """The text of a PDF as `pdftotext` extracts it (reading order)."""
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, check=True, timeout=60
    ).stdout.decode("utf-8")


def pages(pdf: bytes, tmp_path: Path) -> int:
    """Page count, from poppler's `pdfinfo`."""
    path = tmp_path / "count.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(
        ["pdfinfo", str(path)], capture_output=True, check=True, text=True, timeout=60
    ).stdout
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


@pytest.fixture
def built(tmp_path: Path) -> tuple[ReportData, str]:
    """Report data of the two-day scenario, and the screenshot digest."""
    entries, outages, config, shot = scenario(tmp_path)
    data = build_report_data(
        iter(entries),
        outages,
        config,
        (START, END),
        config.targets,
        FileArtifactStore(tmp_path / "artifacts"),
        generated_at=dt.datetime(2026, 11, 25, 9, 5, tzinfo=UTC),
        bundle_name="preuves-anef.zip",
        public_key="paris-1+0a1b2c3d+AQIDBA==",
    )
    return data, shot


class TestBuildReportData:
    """build_report_data aggregates a ledger range in one pass."""

    def test_availability_and_outage(self, built: tuple[ReportData, str]) -> None:
        """The outage lowers availability by its duration and is listed with its cause."""
        data, _ = built
        accueil = data.targets[0]
        assert accueil.id == "anef-accueil"
        assert accueil.checks == 2 * 24 * 12
        assert accueil.failures == 9  # 14:27 .. 15:12, one check every 5 minutes
        down = [o for o in data.outages if o.kind == "down" and o.target_id == "anef-accueil"]
        assert len(down) == 1
        assert down[0].started_at == dt.datetime(2026, 11, 23, 13, 30, tzinfo=UTC)
        assert down[0].ended_at == dt.datetime(2026, 11, 23, 14, 15, tzinfo=UTC)
        assert "503" in down[0].cause
        assert accueil.down_s == pytest.approx(45 * 60)
        assert accueil.availability is not None
        assert accueil.availability == pytest.approx(1 - 45 * 60 / accueil.monitored_s)

    def test_daily_points_and_percentiles(self, built: tuple[ReportData, str]) -> None:
        """Each Paris day has its availability and the median/95th percentile of durations."""
        data, _ = built
        accueil, browser = data.targets
        assert [p.day for p in accueil.days] == [dt.date(2026, 11, 23), dt.date(2026, 11, 24)]
        assert accueil.days[1].availability == 1.0
        first = accueil.days[0].availability
        assert first is not None
        assert first < 1.0
        assert accueil.days[1].p50_s == pytest.approx(0.25)
        assert accueil.days[0].failures == 9
        assert accueil.days[0].p95_s == pytest.approx(0.25)  # 9 slow checks of 288: under 5 %
        assert browser.days[1].p50_s == pytest.approx(3.0)
        assert browser.p95_s == pytest.approx(4.0, rel=0.02)  # log buckets: within ~1 %

    def test_environment_custody_screenshot(self, built: tuple[ReportData, str]) -> None:
        """Environment facts, custody counts and the failure screenshot are gathered."""
        data, shot = built
        assert data.environment.local_ips == ("192.0.2.10",)
        assert data.environment.proxies == ()
        assert data.environment.browsers == ("chromium 131.0.6778.85",)
        assert data.environment.clock == ("ntp, synchronisée",)
        assert data.custody.first_seq == 0
        assert data.custody.checkpoints == 8
        assert data.custody.last_checkpoint is not None
        assert data.custody.warcs == 9
        assert [s.sha256 for s in data.screenshots] == [shot]
        assert data.screenshots[0].width <= 480
        assert data.methodology.maintenance == ("tous les jours de 02:00 à 03:00 (Europe/Paris)",)


class TestRenderReport:
    """render_report draws a readable French PDF."""

    def test_text_has_targets_times_and_verification(
        self, built: tuple[ReportData, str], tmp_path: Path
    ) -> None:
        """Targets, the outage times in Paris time, the verification steps and accents read back."""
        data, _ = built
        pdf = render_report(data)
        assert pdf.startswith(b"%PDF-")
        text = pdf_text(pdf, tmp_path)
        flat = " ".join(text.split())
        assert "ANEF — page d'accueil" in flat
        assert "anef-creation-compte" in flat
        assert "23/11/2026 14:30:00" in flat  # first failed check, Paris time (13:30 UTC)
        assert "23/11/2026 15:15:00" in flat  # first successful one after it
        assert "Comment vérifier cette archive" in flat
        assert "python3 verify.py" in flat
        assert "Chaîne de conservation" in flat
        assert "NF Z67-147" in flat
        assert "Association Défense des Étrangers" in flat
        assert "du 23 novembre 2026 à 0 h 00 au 25 novembre 2026 à 0 h 00 (heure de Paris)" in flat
        assert "Page 1 sur" in flat
        assert "\ufffd" not in text
        assert 6 <= pages(pdf, tmp_path) <= 12

    def test_fonts_are_embedded(self, built: tuple[ReportData, str], tmp_path: Path) -> None:
        """The DejaVu fonts are embedded, so accents print the same everywhere."""
        path = tmp_path / "fonts.pdf"
        path.write_bytes(render_report(built[0]))
        fonts = subprocess.run(
            ["pdffonts", str(path)], capture_output=True, text=True, check=True, timeout=60
        ).stdout
        assert "DejaVuSans" in fonts
        rows = [line for line in fonts.splitlines()[2:] if line.strip()]
        # reportlab always declares Helvetica as its resource F1; the text uses DejaVu only.
        others = [line for line in rows if not line.startswith("Helvetica ")]
        assert len(others) >= 4
        assert all("DejaVu" in line and " yes yes yes " in line for line in others), fonts

    def test_no_outage(self, built: tuple[ReportData, str], tmp_path: Path) -> None:
        """A period without outage says so and still renders every section."""
        data = dataclasses.replace(built[0], outages=(), screenshots=())
        text = " ".join(pdf_text(render_report(data), tmp_path).split())
        assert "Aucune interruption ni lenteur confirmée" in text
        assert "Comment vérifier" in text

    def test_two_hundred_outages(self, built: tuple[ReportData, str], tmp_path: Path) -> None:
        """A table of 200 outages spans pages with its header repeated, and all rows show."""
        data, _ = built
        row = data.outages[0]
        many = tuple(
            dataclasses.replace(
                row,
                id=f"o-{i}",
                started_at=row.started_at + dt.timedelta(hours=i),
                ended_at=row.started_at + dt.timedelta(hours=i, minutes=10),
            )
            for i in range(200)
        )
        pdf = render_report(dataclasses.replace(data, outages=many))
        text = " ".join(pdf_text(pdf, tmp_path).split())
        assert text.count("Début (Paris)") >= 3
        last = format_datetime_fr(many[-1].started_at)
        assert last.endswith("(heure de Paris)")
        paris = dt.timezone(dt.timedelta(hours=1))  # November and December: UTC+1
        assert many[-1].started_at.astimezone(paris).strftime("%d/%m/%Y %H:%M:%S") in text
        assert 9 <= pages(pdf, tmp_path) <= 20

    def test_corroboration(self, built: tuple[ReportData, str], tmp_path: Path) -> None:
        """A corroborated report says from how many vantages the outages were confirmed."""
        data, _ = built
        rows = tuple(dataclasses.replace(o, vantages=("paris-1", "lyon-1")) for o in data.outages)
        corroborated = dataclasses.replace(
            data, outages=rows, corroboration=Corroboration(("paris-1", "lyon-1", "lille-1"), 2)
        )
        text = " ".join(pdf_text(render_report(corroborated), tmp_path).split())
        assert "confirmé depuis 3 points d'observation" in text


class TestFrenchDates:
    """Dates read the French way, in Paris time."""

    def test_format(self) -> None:
        """14:27 UTC+1 in November reads '23 novembre 2026 à 14 h 27 (heure de Paris)'."""
        moment = dt.datetime(2026, 11, 23, 13, 27, tzinfo=UTC)
        assert format_datetime_fr(moment) == "23 novembre 2026 à 14 h 27 (heure de Paris)"
        summer = dt.datetime(2026, 7, 1, 6, 5, tzinfo=UTC)
        assert format_datetime_fr(summer, zone=False) == "1er juillet 2026 à 8 h 05"
