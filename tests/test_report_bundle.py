"""The report of an evidence bundle: built from the export's summary, read back by pdftotext."""

from __future__ import annotations

import datetime as dt
import subprocess
import zipfile
from pathlib import Path

import pytest

from evidence.bundle import DURATION_BOUNDS, ExportRequest, export_bundle
from evidence.bundle_verify import verify_bundle
from evidence.report_bundle import duration_quantile
from exporter.config import Settings
from tests.bundle_fixture import BUILD_START, build_ledger

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
