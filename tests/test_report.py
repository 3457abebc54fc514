"""Tests of the French evidence report: data built from ledger entries, PDF read back by pdftotext.

The PDF is rendered for real (reportlab, embedded DejaVu fonts) and its text extracted with
poppler's `pdftotext`, as a reader would see it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import pickle
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image as PILImage

from config.french import format_datetime_fr
from config.settings import Settings, load_settings
from evidence.bundle.export import export_bundle
from evidence.bundle.model import BundleSummary, ExportRequest
from evidence.bundle.report_inputs import bundle_report_data
from evidence.ledger.artifacts import FileArtifactStore
from evidence.ledger.backends import open_ledger
from evidence.ledger.checkpoint import Checkpoint, checkpoint_text
from evidence.ledger.entries import TreeHead
from evidence.ledger.signing import NoteSigner
from evidence.outages.tracker import OutageRecord, OutageTracker
from evidence.report.data import ClockJumpFact, Corroboration, ReportData, SeenValue, jumps_during
from evidence.report.facts import MAX_VALUES, ReportFacts, sample_environment
from evidence.report.render import render_report
from probes.observation import canonical_json, format_time

UTC = dt.UTC
START = dt.datetime(2026, 11, 22, 23, 0, tzinfo=UTC)  # 23 Nov 2026 00:00 in Paris
END = START + dt.timedelta(days=2)
OUTAGE_AT = dt.datetime(2026, 11, 23, 13, 27, tzinfo=UTC)  # 14 h 27 in Paris
OUTAGE_END = dt.datetime(2026, 11, 23, 14, 12, tzinfo=UTC)  # 15 h 12 in Paris
UPGRADE_AT = START + dt.timedelta(days=1)  # Vigie 1.0.0 -> 1.0.1, the target moves address
JUMP_AT = dt.datetime(2026, 11, 23, 13, 50, tzinfo=UTC)  # during the outage: +5 min
BACK_AT = dt.datetime(2026, 11, 24, 7, 0, tzinfo=UTC)  # 8 h 00 in Paris, day 2: -4.5 s
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
    """A ledger observation body (from UPGRADE_AT: Vigie 1.0.1 and a new target address)."""
    upgraded = at >= UPGRADE_AT
    address = "203.0.113.6" if upgraded else "203.0.113.5"
    body: dict[str, Any] = {
        "target_id": target,
        "kind": kind,
        "vantage": "paris-1",
        "started_at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "duration_s": 0.25,
        "success": True,
        "outcome": "ok",
        "http_status": 200,
        "remote_ip": address,
        "artifacts": {},
        "error": None,
        "environment": {
            "hostname": "vigie-paris",
            "local_ips": ["192.0.2.10"],
            "resolvers": ["192.0.2.53"],
            "proxy": None,
            "os": "Linux-6.1.0-amd64-x86_64-with-glibc2.36",
            "python": "3.11.2",
            "vigie": "1.0.1" if upgraded else "1.0.0",
            "user_agent": "Vigie/1.0",
            "clock": {"source": "ntp", "synchronized": True},
            **(
                {"browser": "chromium 131.0.6778.85", "fresh_profile": True}
                if kind == "browser"
                else {"resolved_ips": [address, "2001:db8::5"], "fresh_connection": True}
            ),
        },
    }
    body.update(fields)
    return body


def clock_jump(wall_after: dt.datetime, jump_s: float) -> dict[str, Any]:
    """A `clock_jump` entry body as `exporter.clock.ClockJump.body` writes it."""
    before = wall_after - dt.timedelta(seconds=5 + jump_s)
    return {
        "direction": "forward" if jump_s > 0 else "backward",
        "jump_s": jump_s,
        "threshold_s": 2.0,
        "wall_before": format_time(before),
        "wall_after": format_time(wall_after),
        "wall_expected": format_time(before + dt.timedelta(seconds=5)),
        "monotonic_elapsed_s": 5.0,
        "clock": {"source": "ntp", "synchronized": True},
        "note": "observation timestamps between wall_before and wall_after were taken on a "
        "clock that jumped; durations are monotonic and unaffected",
    }


def scenario(
    tmp_path: Path,
) -> tuple[list[tuple[str, dict[str, Any]]], list[OutageRecord], Settings, str]:
    """Two days, a check every 5 minutes per target, one outage of anef-accueil at 14 h 27.

    Vigie is upgraded and the target changes address at UPGRADE_AT; the wall clock jumps
    forward by 5 minutes during the outage (JUMP_AT) and back by 4.5 s on day 2 (BACK_AT).

    Returns the ledger entries, the outage records, the settings and the screenshot digest.
    """
    config = settings(tmp_path)
    tracker = OutageTracker(config.outages, config.maintenance, config.targets)
    store = FileArtifactStore(tmp_path / "artifacts")
    shot = store.put(png(), "screenshot")
    warc = store.put(b"WARC/1.0\r\nWARC-Type: response\r\n\r\n", "warc")
    entries: list[tuple[str, dict[str, Any]]] = []

    def append(kind: str, body: dict[str, Any]) -> int:
        entries.append((kind, body))
        return len(entries) - 1

    moment = START
    while moment < END:
        for when, jump in ((JUMP_AT, 300.0), (BACK_AT, -4.5)):
            if moment == when:
                append("clock_jump", clock_jump(when, jump))
        down = OUTAGE_AT <= moment < OUTAGE_END
        failing = observation(
            "anef-accueil",
            "http",
            moment,
            success=False,
            outcome="http_status",
            http_status=503,
            duration_s=1.5,
            artifacts={warc: "warc"},
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


def export_report_data(
    tmp_path: Path, entries: list[tuple[str, dict[str, Any]]], config: Settings, now: dt.datetime
) -> ReportData:
    """The report data of a bundle exported from a ledger holding `entries` (the production
    path: the bundle's summary, gathered while it streams, mapped by `bundle_report_data`).
    Checkpoint bodies are replaced by checkpoints the vantage really signs."""
    signer = NoteSigner("paris-1", Ed25519PrivateKey.generate())

    def signed(body: dict[str, Any]) -> Callable[[TreeHead], dict[str, Any]]:
        def checkpoint(head: TreeHead) -> dict[str, Any]:
            note = signer.sign(checkpoint_text("paris-1", head.size, head.root))
            return Checkpoint.from_note(note, seq=head.size, time=body["time"]).body()

        return checkpoint

    ledger = open_ledger(tmp_path / "ledger.db", vantage="paris-1")
    ledger.append([(k, signed(b) if k == "checkpoint" else b) for k, b in entries])
    captured: list[ReportData] = []

    def report(summary: BundleSummary, artifact: Callable[[str], bytes | None]) -> bytes:
        captured.append(bundle_report_data(summary, artifact))
        return b"%PDF-"

    try:
        export_bundle(
            ledger,
            tmp_path / "preuves-anef.zip",
            ExportRequest(START, END),
            signer=signer,
            artifacts_dir=tmp_path / "artifacts",
            progress=False,
            settings=config,
            operator=config.vantage.operator,
            now=now,
            report=report,
        )
    finally:
        ledger.close()
    return captured[0]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[ReportData, str]:
    """Report data of the two-day scenario, and the screenshot digest."""
    tmp_path = tmp_path_factory.mktemp("report")
    entries, _, config, shot = scenario(tmp_path)
    data = export_report_data(
        tmp_path, entries, config, dt.datetime(2026, 11, 25, 9, 5, tzinfo=UTC)
    )
    return data, shot


class TestBuildReportData:
    """The report data of a bundle: figures gathered while the export streamed the ledger."""

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
        # durations are counted in fixed buckets (DURATION_BOUNDS): percentiles within ~5 %
        assert accueil.days[1].p50_s == pytest.approx(0.25, rel=0.05)
        assert accueil.days[0].failures == 9
        assert accueil.days[0].p95_s == pytest.approx(0.25, rel=0.05)  # 9 slow of 288: < 5 %
        assert browser.days[1].p50_s == pytest.approx(3.0, rel=0.05)
        assert browser.p95_s == pytest.approx(4.0, rel=0.05)

    def test_environment_custody_screenshot(self, built: tuple[ReportData, str]) -> None:
        """Environment facts, custody counts and the failure screenshot are gathered."""
        data, shot = built
        env = data.environment
        first, last = START, END - dt.timedelta(minutes=5)
        assert env.complete
        assert env.observations == 2 * 2 * 288
        assert env.local_ips == (SeenValue("192.0.2.10", 1152, first, last),)
        assert env.proxies == ()
        assert env.browsers == (SeenValue("chromium 131.0.6778.85", 576, first, last),)
        assert env.clock == (SeenValue("NTP, synchronisée", 1152, first, last),)
        assert env.fresh_profile
        assert env.fresh_connection
        assert data.custody.first_seq == 0
        assert data.custody.checkpoints == 8
        assert data.custody.last_checkpoint is not None
        assert data.custody.warcs == 1  # one WARC file, recorded by the 9 failing checks
        assert [s.sha256 for s in data.screenshots] == [shot]
        assert data.screenshots[0].width <= 480
        assert data.methodology.maintenance == ("tous les jours de 02:00 à 03:00 (Europe/Paris)",)

    def test_every_distinct_environment_value(self, built: tuple[ReportData, str]) -> None:
        """A fact that changed lists each value with its count, first and last time."""
        env = built[0].environment
        before, after = UPGRADE_AT - dt.timedelta(minutes=5), UPGRADE_AT
        last = END - dt.timedelta(minutes=5)
        assert env.vigie == (
            SeenValue("1.0.0", 576, START, before),
            SeenValue("1.0.1", 576, after, last),
        )
        assert env.omitted == {}
        assert env.missing == {}  # every observation recorded every fact

    def test_target_addresses(self, built: tuple[ReportData, str]) -> None:
        """Each target's contacted and DNS-given addresses are listed with counts."""
        env = built[0].environment
        before, last = UPGRADE_AT - dt.timedelta(minutes=5), END - dt.timedelta(minutes=5)
        assert env.remote_ips["anef-accueil"] == (
            SeenValue("203.0.113.5", 288, START, before),
            SeenValue("203.0.113.6", 288, UPGRADE_AT, last),
        )
        assert set(env.remote_ips) == {"anef-accueil", "anef-creation-compte"}
        resolved = {v.value: v.count for v in env.resolved_ips["anef-accueil"]}
        assert resolved == {"203.0.113.5": 288, "203.0.113.6": 288, "2001:db8::5": 576}
        assert "anef-creation-compte" not in env.resolved_ips  # browser checks record none

    def test_clock_jumps(self, built: tuple[ReportData, str]) -> None:
        """Both clock_jump entries are read, in ledger order, with size and direction."""
        jumps = built[0].clock_jumps
        assert [(j.detected_at, j.jump_s, j.forward) for j in jumps] == [
            (JUMP_AT, 300.0, True),
            (BACK_AT, -4.5, False),
        ]
        assert all(j.seq is not None and j.synchronized is True for j in jumps)
        assert built[0].clock_jumps_total is None

    def test_more_values_than_listed_are_counted(self, tmp_path: Path) -> None:
        """Beyond MAX_VALUES distinct values, the observations of the others are counted."""
        config = settings(tmp_path)
        entries = [
            (
                "observation",
                observation(
                    "anef-accueil",
                    "http",
                    START + dt.timedelta(minutes=seq),
                    remote_ip=f"198.51.100.{seq}",
                ),
            )
            for seq in range(MAX_VALUES + 3)
        ]
        data = export_report_data(tmp_path, entries, config, END)
        assert len(data.environment.remote_ips["anef-accueil"]) == MAX_VALUES
        assert data.environment.omitted == {"remote_ips/anef-accueil": 3}


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

    def test_corroboration_names_the_vantages(
        self, built: tuple[ReportData, str], tmp_path: Path
    ) -> None:
        """A corroborated report names the vantages compared and those that saw each outage."""
        data, _ = built
        rows = tuple(
            dataclasses.replace(o, vantages=("paris-1", "lyon-1") if i == 0 else ("paris-1",))
            for i, o in enumerate(data.outages)
        )
        corroborated = dataclasses.replace(
            data, outages=rows, corroboration=Corroboration(("paris-1", "lyon-1", "lille-1"), 2)
        )
        text = " ".join(pdf_text(render_report(corroborated), tmp_path).split())
        assert (
            "interruptions confirmées depuis au moins 2 points d'observation : 1 sur 2 "
            "(points comparés : paris-1, lyon-1, lille-1)"
        ) in text
        assert "paris-1, lyon-1" in text  # the cells of a row are read in columns
        assert text.count("(2 points)") == 1
        assert text.count("(1 point)") == 1
        assert "Corroboration depuis plusieurs points d'observation" in text
        assert "autre point d'observation" not in text

    def test_corroboration_by_count_only(
        self, built: tuple[ReportData, str], tmp_path: Path
    ) -> None:
        """Given only how many vantages saw each outage, the report says the names are missing."""
        data, _ = built
        rows = tuple(dataclasses.replace(o, vantage_count=2) for o in data.outages)
        counted = dataclasses.replace(
            data, outages=rows, corroboration=Corroboration((), 2, count=2)
        )
        text = " ".join(pdf_text(render_report(counted), tmp_path).split())
        assert "2 points (noms non transmis à l'export)" in text
        assert "interruptions confirmées depuis plusieurs points d'observation (jusqu'à" in text
        assert ") : 2 sur 2 ; leurs noms" in text
        assert "autre point d'observation" not in text
        assert "paris-1, lyon-1" not in text

    def test_environment_lists_every_value(
        self, built: tuple[ReportData, str], tmp_path: Path
    ) -> None:
        """Each environment fact lists every distinct value with its count, first and last."""
        text = " ".join(pdf_text(render_report(built[0]), tmp_path).split())
        assert "toutes les valeurs distinctes relevées dans les" in text
        assert "1.0.0 — 576 observations, du 23/11/2026 00:00:00 au 23/11/2026 23:55:00" in text
        assert "1.0.1 — 576 observations, du 24/11/2026 00:00:00 au 24/11/2026 23:55:00" in text
        assert "chromium 131.0.6778.85 — 576 observations" in text
        assert "première observation" not in text

    def test_target_addresses(self, built: tuple[ReportData, str], tmp_path: Path) -> None:
        """Each target's addresses, contacted and from DNS, are listed (never "non enregistré")."""
        text = " ".join(pdf_text(render_report(built[0]), tmp_path).split())
        assert (
            "Adresses IP des services (contactées) anef-accueil : 203.0.113.5 — 288 "
            "observations, du 23/11/2026 00:00:00 au 23/11/2026 23:55:00 203.0.113.6 — 288 "
            "observations, du 24/11/2026 00:00:00 au 24/11/2026 23:55:00"
        ) in text
        assert "Adresses IP des services (réponses DNS) anef-accueil :" in text
        assert "2001:db8::5 — 576 observations" in text
        assert "non enregistré" not in text

    def test_one_sample_is_labelled(self, built: tuple[ReportData, str], tmp_path: Path) -> None:
        """Facts from one observation only are said to be that, not every distinct value."""
        data, _ = built
        sample = sample_environment(
            {"os": "Linux", "vigie": "1.0.0", "resolver": "127.0.0.53"}, "paris-1", "X"
        )
        text = pdf_text(render_report(dataclasses.replace(data, environment=sample)), tmp_path)
        flat = " ".join(text.split())
        assert "celles de la première observation de la période seulement" in flat
        assert "toutes les valeurs distinctes" not in flat
        assert "Résolveur DNS 127.0.0.53" in flat
        assert "colonne « ip_distante » de observations.csv" in flat

    def test_clock_jumps_listed_and_marked(
        self, built: tuple[ReportData, str], tmp_path: Path
    ) -> None:
        """Clock jumps are listed (time, size, direction) and mark the outages they meet."""
        text = " ".join(pdf_text(render_report(built[0]), tmp_path).split())
        assert "2 sauts détectés pendant la période." in text
        assert (
            "1 23/11/2026 14:50:00 23/11/2026 14:45:00 +5 min (+300,000 s) en avant "
            "(l'horloge a avancé) ; horloge synchronisée"
        ) in text
        minus = "\u2212"
        assert f"{minus}4,5 s ({minus}4,500 s) en arrière (l'horloge a reculé)" in text
        assert "24/11/2026 08:00:00" in text
        # both outages (14:30-15:15 Paris) span jump 1; jump 2 (day 2) meets none
        assert text.count("⚠ saut d'horloge n° 1 (+5 min)") == 2
        assert "saut d'horloge n° 2" not in text
        assert "2 lignes marquées « saut d'horloge »" in text
        assert "Sauts d'horloge 2 sauts de l'horloge du système détectés" in text
        assert "Les traits rouges en pointillé, numérotés, marquent les sauts" in text

    def test_no_clock_jump(self, built: tuple[ReportData, str], tmp_path: Path) -> None:
        """Without a jump the report says none was detected; unsearched, it says so too."""
        data, _ = built
        text = " ".join(
            pdf_text(render_report(dataclasses.replace(data, clock_jumps=())), tmp_path).split()
        )
        assert "aucun saut de l'horloge du système détecté pendant la période" in text
        assert "Aucun saut n'a été détecté pendant la période." in text
        assert "⚠" not in text
        unknown = dataclasses.replace(data, clock_jumps=(), clock_jumps_known=False)
        text = " ".join(pdf_text(render_report(unknown), tmp_path).split())
        assert "non recherchés lors de cet export" in text


class TestJumpsDuring:
    """Which outages a clock jump concerns."""

    def test_forward_backward_and_open(self) -> None:
        """A jump meets an outage when the wall-clock span of its readings overlaps it."""
        at = dt.datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
        forward = ClockJumpFact(at, 300.0, before=at - dt.timedelta(seconds=305))
        backward = ClockJumpFact(at, -60.0, before=at + dt.timedelta(seconds=55))
        jumps = (forward, backward)
        minute = dt.timedelta(minutes=1)
        assert jumps_during(at - 10 * minute, at - 6 * minute, jumps) == ()
        assert jumps_during(at - 5 * minute, at - 4 * minute, jumps) == (0,)  # in the leap
        assert jumps_during(at + 30 * dt.timedelta(seconds=1), at + minute, jumps) == (1,)
        assert jumps_during(at - minute, None, jumps) == (0, 1)
        assert jumps_during(at + 2 * minute, None, jumps) == ()


class TestReportFacts:
    """ReportFacts tallies in parts (pickled from worker processes) as in one pass."""

    def test_merged_parts_equal_one_pass(self, tmp_path: Path) -> None:
        """Two halves tallied apart, one pickled and back, merge into the whole's tallies."""
        entries, _, _, _ = scenario(tmp_path)
        decoded = [{**body, "type": kind, "seq": seq} for seq, (kind, body) in enumerate(entries)]
        whole, first, second = ReportFacts(), ReportFacts(), ReportFacts()
        half = len(decoded) // 2 + 7  # mid-run of both targets
        for index, entry in enumerate(decoded):
            part = first if index < half else second
            for tally in (whole, part):
                if entry["type"] == "observation":
                    tally.observation_entry(entry)
                elif entry["type"] == "clock_jump":
                    tally.clock_jump(entry["seq"], entry)
        first.merge(pickle.loads(pickle.dumps(second)))  # as from a worker process
        assert first.environment_facts("paris-1", "X") == whole.environment_facts("paris-1", "X")
        assert first.clock_jumps() == whole.clock_jumps()
        assert len(whole.clock_jumps()) == 2

    def test_addresses_changing_at_every_check(self) -> None:
        """Round-robin addresses are all counted; the other facts stay one value each."""
        tally, undecoded, loose = ReportFacts(), ReportFacts(), ReportFacts()
        environments = []
        for minute in range(10):
            at = format_time(START + dt.timedelta(minutes=minute))
            ips = ["192.0.2.1", "192.0.2.2"] if minute % 2 else ["192.0.2.2", "192.0.2.1"]
            environment: dict[str, Any] = {
                "os": "Linux",
                "vigie": "1.0.1" if minute >= 6 else "1.0.0",
                "resolved_ips": ips,
            }
            environments.append(environment)
            tally.observation("t", at, ips[0], environment)
            undecoded.observation("t", at, ips[0], canonical_json(environment))
            loose.observation("t", at, ips[0], json.dumps(environment).encode())
        assert environments[0]["resolved_ips"] == ["192.0.2.2", "192.0.2.1"]  # left untouched
        env = tally.environment_facts("v", "o")
        assert undecoded.environment_facts("v", "o") == env  # JSON text, decoded on change
        assert loose.environment_facts("v", "o") == env  # not canonical: decoded each time
        last = START + dt.timedelta(minutes=9)
        assert env.remote_ips["t"] == (
            SeenValue("192.0.2.2", 5, START, START + dt.timedelta(minutes=8)),
            SeenValue("192.0.2.1", 5, START + dt.timedelta(minutes=1), last),
        )
        assert {v.value: v.count for v in env.resolved_ips["t"]} == {
            "192.0.2.1": 10,
            "192.0.2.2": 10,
        }
        assert env.os == (SeenValue("Linux", 10, START, last),)
        assert [(v.value, v.count) for v in env.vigie] == [("1.0.0", 6), ("1.0.1", 4)]
        assert env.observations == 10


class TestFrenchDates:
    """Dates read the French way, in Paris time."""

    def test_format(self) -> None:
        """14:27 UTC+1 in November reads '23 novembre 2026 à 14 h 27 (heure de Paris)'."""
        moment = dt.datetime(2026, 11, 23, 13, 27, tzinfo=UTC)
        assert format_datetime_fr(moment) == "23 novembre 2026 à 14 h 27 (heure de Paris)"
        summer = dt.datetime(2026, 7, 1, 6, 5, tzinfo=UTC)
        assert format_datetime_fr(summer, zone=False) == "1er juillet 2026 à 8 h 05"
