"""The report of an evidence bundle: built from the export's summary, read back by pdftotext."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from config.vocabulary import CHECKPOINT, CLOCK_JUMP, OBSERVATION, Outcome
from evidence.bundle.corroborate import Corroboration, corroborate
from evidence.bundle.export import export_bundle
from evidence.bundle.model import DURATION_BOUNDS, ExportRequest
from evidence.bundle.report_inputs import corroborated_report, duration_quantile
from evidence.bundle.verify import verify_bundle
from evidence.ledger.backends import open_ledger
from probes.observation import Observation, format_time
from tests.bundle_fixture import BUILD_START, build_ledger, checkpoint_body

PERIOD = ExportRequest(BUILD_START, BUILD_START + dt.timedelta(hours=2))


def _settings(url: str, artifacts: Path) -> Settings:
    return Settings.model_validate(
        {
            "vantage": {"name": "paris-1", "operator": "Association X"},
            "ledger": {"url": url, "artifacts": str(artifacts)},
            "targets": [
                {
                    "id": "anef-accueil",
                    "name": "Accueil ANEF",
                    "kind": "http",
                    "url": "http://127.0.0.1/a",
                },
                {
                    "id": "anef-connexion",
                    "name": "Connexion ANEF",
                    "kind": "http",
                    "url": "http://127.0.0.1/c",
                },
            ],
        }
    )


def _pdf_text(path: Path) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, timeout=60
    ).stdout.decode("utf-8")


def _pages(path: Path) -> int:
    info = subprocess.run(
        ["pdfinfo", str(path)], capture_output=True, check=True, timeout=60
    ).stdout.decode("utf-8")
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A bundle of two hours of two targets, one outage (10:40-10:50 Paris), and its PDF."""
    tmp = tmp_path_factory.mktemp("report-bundle")
    built = build_ledger(f"sqlite:///{tmp / 'l.db'}", tmp)
    ledger = built.open()
    try:
        export_bundle(
            ledger,
            tmp / "b.zip",
            PERIOD,
            signer=built.signer,
            operator="Association X",
            artifacts_dir=built.artifacts.root,
            progress=False,
            settings=_settings(built.url, built.artifacts.root),
            now=BUILD_START + dt.timedelta(hours=4),
        )
    finally:
        ledger.close()
    pdf = tmp / "report.pdf"
    pdf.write_bytes(zipfile.ZipFile(tmp / "b.zip").read("report.pdf"))
    return tmp / "b.zip", pdf


class TestBundleReport:
    def test_report_names_targets_outage_and_verification(self, bundle: tuple[Path, Path]) -> None:
        """report.pdf is the full French report: targets, outage in Paris time, verification."""
        text = _pdf_text(bundle[1])
        assert "Accueil ANEF" in text
        assert "Connexion ANEF" in text
        assert "10:40:00" in text  # 09:40 UTC, the outage start, in Paris time
        assert "23/11/2026" in text
        assert "heure de Paris" in text
        assert "Comment vérifier cette archive" in text
        assert "Association X" in text
        assert "rapport détaillé n'est pas disponible" not in text
        assert _pages(bundle[1]) > 1

    def test_availability_comes_from_the_outage(self, bundle: tuple[Path, Path]) -> None:
        """The target down 10 of 120 minutes shows 91.666 %, the other one 100 %."""
        text = _pdf_text(bundle[1])
        assert "91,666" in text
        assert "100,000" in text

    def test_bundle_with_report_verifies(self, bundle: tuple[Path, Path]) -> None:
        """The manifest covers report.pdf and `verify_bundle` accepts the bundle."""
        manifest = zipfile.ZipFile(bundle[0]).read("manifest.json")
        assert b'"report.pdf"' in manifest
        assert verify_bundle(bundle[0]).ok

    def test_pdf_renders_to_images(self, bundle: tuple[Path, Path], tmp_path: Path) -> None:
        """poppler renders the first pages (what a reader's viewer would show)."""
        subprocess.run(
            ["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "3", str(bundle[1]), "page"],
            cwd=tmp_path,
            check=True,
            timeout=60,
        )
        assert len(list(tmp_path.glob("page-*.png"))) == 3


def _export(built: Any, out: Path, request: ExportRequest, **kwargs: Any) -> Path:
    ledger = built.open()
    try:
        export_bundle(
            ledger,
            out,
            request,
            signer=built.signer,
            operator="Association X",
            artifacts_dir=built.artifacts.root,
            progress=False,
            now=BUILD_START + dt.timedelta(hours=4),
            **kwargs,
        )
    finally:
        ledger.close()
    return out


def _report_text(bundle: Path) -> str:
    """The report's text in reading order (each table cell whole), spaces collapsed."""
    pdf = bundle.with_suffix(".pdf")
    pdf.write_bytes(zipfile.ZipFile(bundle).read("report.pdf"))
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], capture_output=True, check=True, timeout=60
    ).stdout.decode("utf-8")
    return " ".join(text.split())


@pytest.fixture(scope="module")
def jumped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An hour of two targets, then the clock jumps +2 min, Vigie is upgraded and the first
    target answers from a new address (one check), and a last checkpoint: the bundle."""
    tmp = tmp_path_factory.mktemp("report-jump")
    built = build_ledger(f"sqlite:///{tmp / 'l.db'}", tmp, minutes=60, outage_at=(20, 30))
    when = BUILD_START + dt.timedelta(minutes=60, seconds=30)
    jump = {
        "direction": "forward",
        "jump_s": 120.0,
        "threshold_s": 2.0,
        "wall_before": format_time(when - dt.timedelta(seconds=125)),
        "wall_after": format_time(when),
        "wall_expected": format_time(when - dt.timedelta(seconds=120)),
        "monotonic_elapsed_s": 5.0,
        "clock": {"source": "ntp", "synchronized": False},
        "note": "observation timestamps between wall_before and wall_after were taken on a "
        "clock that jumped; durations are monotonic and unaffected",
    }
    check = Observation(
        target_id="anef-accueil",
        kind="http",
        vantage="paris-1",
        started_at=format_time(when + dt.timedelta(seconds=30)),
        duration_s=0.25,
        success=True,
        outcome=Outcome.OK,
        http_status=200,
        remote_ip="127.0.0.2",
        environment={
            "os": "Linux",
            "resolver": "127.0.0.53",
            "vigie": "1.0.1",
            "resolved_ips": ["127.0.0.2"],
        },
    ).to_dict()
    ledger = open_ledger(built.url, vantage=built.signer.name)
    try:
        ledger.append([(CLOCK_JUMP, jump)])
        ledger.append([(OBSERVATION, check)])
        later = when + dt.timedelta(minutes=1)
        ledger.append([(CHECKPOINT, lambda head: checkpoint_body(built.signer, head, later))])
    finally:
        ledger.close()
    return _export(
        built,
        tmp / "jump.zip",
        PERIOD,
        settings=_settings(built.url, built.artifacts.root),
    )


class TestBundleReportFacts:
    """The bundle's report shows every environment value, the addresses and the clock jumps."""

    def test_bundle_verifies(self, jumped: Path) -> None:
        """The clock_jump entry is disclosed and the bundle verifies."""
        assert verify_bundle(jumped).ok
        assert b'"type":"clock_jump"' in zipfile.ZipFile(jumped).read("observations.jsonl")

    def test_every_environment_value(self, jumped: Path) -> None:
        """Both resolver spellings and both Vigie versions are listed with their counts."""
        text = _report_text(jumped)
        assert "toutes les valeurs distinctes relevées dans les 121 observations" in text
        assert "127.0.0.53 — 121 observations, du 23/11/2026 10:00:00 au 23/11/2026 11:01:00" in (
            text
        )
        assert (
            "Logiciel (version de Vigie) 1.0.1 — 1 observation, le 23/11/2026 11:01:00 "
            "non enregistré dans 120 observations"
        ) in text
        assert "Machine non enregistré Adresses IP de la machine non enregistré" in text
        assert "première observation" not in text

    def test_target_addresses(self, jumped: Path) -> None:
        """Each target's contacted addresses are listed, the new one with its single check."""
        text = _report_text(jumped)
        assert "anef-accueil : 127.0.0.1 — 60 observations" in text
        assert "127.0.0.2 — 1 observation, le 23/11/2026 11:01:00" in text
        assert "anef-connexion : 127.0.0.1 — 60 observations" in text
        assert "Adresses IP des services (réponses DNS) anef-accueil : 127.0.0.2" in text

    def test_clock_jump_listed(self, jumped: Path) -> None:
        """The jump is listed with its time, size and direction."""
        text = _report_text(jumped)
        assert "1 saut détecté pendant la période." in text
        assert (
            "23/11/2026 11:00:30 23/11/2026 10:58:30 +2 min (+120,000 s) en avant "
            "(l'horloge a avancé) ; horloge non synchronisée"
        ) in text

    def test_report_is_honest_about_what_it_shows(self, jumped: Path) -> None:
        """The environment section of an export lists every distinct value, as it says."""
        text = _report_text(jumped)
        assert "toutes les valeurs distinctes" in text
        assert "première observation" not in text


@pytest.fixture(scope="module")
def corroborated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Corroboration, Path]:
    """paris-1 and lyon-1 saw overlapping outages; paris-1's ledger, the result, a dir."""
    tmp = tmp_path_factory.mktemp("report-corroborated")
    bundles = []
    paris = None
    for vantage, shift in (("paris-1", 0), ("lyon-1", 5)):
        directory = tmp / vantage
        directory.mkdir()
        built = build_ledger(
            f"sqlite:///{directory / 'l.db'}",
            directory,
            minutes=90,
            vantage=vantage,
            outage_shift=shift,
        )
        bundles.append(_export(built, directory / "b.zip", PERIOD))
        paris = paris or built
    result = corroborate(bundles, min_vantages=2)
    return paris, Corroboration.from_dict(json.loads(json.dumps(result.to_dict()))), tmp


class TestCorroboratedReport:
    """With `vigie corroborate` output, the report names the vantages."""

    def test_names_from_the_corroboration_result(
        self, corroborated: tuple[Any, Corroboration, Path]
    ) -> None:
        """The report names the vantages compared and those that saw the outage."""
        paris, result, tmp = corroborated
        [group] = result.groups
        counts = {m.outage_id: len(group.vantages) for m in group.members}
        bundle = _export(
            paris,
            tmp / "named.zip",
            PERIOD,
            corroboration=counts,
            report=corroborated_report(result),
        )
        text = _report_text(bundle)
        assert (
            "interruptions confirmées depuis au moins 2 points d'observation : 1 sur 1 "
            "(points comparés : paris-1, lyon-1)"
        ) in text
        assert text.count("paris-1, lyon-1") == 3  # title page, outage row, section 8
        assert "(2 points)" in text  # the end of the row's cell, read after the others
        assert "noms non transmis" not in text
        assert verify_bundle(bundle).ok

    def test_counts_only_say_names_are_missing(
        self, corroborated: tuple[Any, Corroboration, Path]
    ) -> None:
        """The old call (counts only) no longer invents "autre point d'observation n° 2"."""
        paris, result, tmp = corroborated
        [group] = result.groups
        counts = {m.outage_id: len(group.vantages) for m in group.members}
        text = _report_text(_export(paris, tmp / "counted.zip", PERIOD, corroboration=counts))
        assert "noms non transmis" in text
        assert "autre point d'observation" not in text
        assert "lyon-1" not in text


class TestDurationQuantile:
    def test_quantiles_fall_in_the_right_bucket(self) -> None:
        """p50 and p95 of bucket counts land within ~5 % of the durations counted."""
        import bisect

        counts = [0.0] * (len(DURATION_BOUNDS) + 1)
        for value, times in ((0.25, 90), (1.5, 10)):
            counts[bisect.bisect_right(DURATION_BOUNDS, value)] += times
        p50 = duration_quantile(counts, 0.5)
        p95 = duration_quantile(counts, 0.95)
        assert p50 is not None
        assert abs(p50 - 0.25) / 0.25 < 0.05
        assert p95 is not None
        assert abs(p95 - 1.5) / 1.5 < 0.05

    def test_no_count_no_quantile(self) -> None:
        """Without any check the quantile is unknown, never zero."""
        assert duration_quantile([0.0] * 5, 0.5) is None
