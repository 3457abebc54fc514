"""`vigie export`: bundles built from real ledgers (SQLite and PostgreSQL) and verified back."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from pathlib import Path

import pytest

from evidence import export_cmd
from evidence.bundle import (
    CSV_OBSERVATION_COLUMNS,
    BundleError,
    ExportRequest,
    aligned_ranges,
    export_bundle,
)
from evidence.bundle_verify import verify_bundle
from tests.bundle_fixture import BUILD_START, BuiltLedger, build_ledger

PERIOD = ExportRequest(
    BUILD_START + dt.timedelta(minutes=20), BUILD_START + dt.timedelta(minutes=70)
)


def _export(built: BuiltLedger, out: Path, request: ExportRequest = PERIOD) -> Path:
    ledger = built.open()
    try:
        export_bundle(
            ledger,
            out,
            request,
            signer=built.signer,
            artifacts_dir=built.artifacts.root,
            progress=False,
        )
    finally:
        ledger.close()
    return out


class TestExportRoundTrip:
    def test_round_trip_on_both_backends(self, ledger_url: str, tmp_path: Path) -> None:
        """A bundle of a period verifies, entry for entry, on SQLite and PostgreSQL ledgers."""
        built = build_ledger(ledger_url, tmp_path)
        bundle = _export(built, tmp_path / "b.zip")
        report = verify_bundle(bundle, public_key=built.signer.verifier)
        assert report.ok, report.summary()
        assert report.entries == 104
        assert report.hidden == 0
        assert report.checkpoints == 3
        assert report.artifacts == 10

    def test_entries_are_the_ledger_bytes(self, tmp_path: Path) -> None:
        """observations.jsonl holds the ledger entries of the period byte for byte."""
        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
        bundle = _export(built, tmp_path / "b.zip")
        with zipfile.ZipFile(bundle) as zf:
            lines = zf.read("observations.jsonl").splitlines()
            manifest = json.loads(zf.read("manifest.json"))
        ledger = built.open()
        try:
            start = manifest["range"]["start"]
            assert lines == [ledger.get(start + i) for i in range(len(lines))]
        finally:
            ledger.close()

    def test_csv_open_in_french_spreadsheets(self, tmp_path: Path) -> None:
        """The CSV tables are UTF-8 with BOM, `;`-separated, with Paris and UTC dates."""
        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
        bundle = _export(built, tmp_path / "b.zip")
        with zipfile.ZipFile(bundle) as zf:
            observations = zf.read("observations.csv")
            outages = zf.read("outages.csv")
        assert observations.startswith(b"\xef\xbb\xbf")
        assert outages.startswith(b"\xef\xbb\xbf")
        rows = list(csv.DictReader(io.StringIO(observations.decode("utf-8-sig")), delimiter=";"))
        first = rows[0]
        assert first["date_utc"] == "2026-11-23 09:20:00"
        assert first["date_paris"] == "2026-11-23 10:20:00"
        assert first["duree_s"] == "0,25"
        [outage] = list(csv.DictReader(io.StringIO(outages.decode("utf-8-sig")), delimiter=";"))
        assert outage["debut_paris"] == "2026-11-23 10:40:00"
        assert outage["fin_paris"] == "2026-11-23 10:50:00"
        assert outage["cible"] == "anef-accueil"

    def test_proofs_are_compact(self, tmp_path: Path) -> None:
        """The range proof carries O(log n) subtree hashes, not one proof per entry."""
        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
        bundle = _export(built, tmp_path / "b.zip")
        with zipfile.ZipFile(bundle) as zf:
            proof = json.loads(zf.read("proofs/range.json"))
        assert len(proof["left"]) <= proof["start"].bit_length()
        assert len(proof["closing"]["right"]) <= 2 * proof["closing"]["seq"].bit_length()

    def test_aligned_ranges_cover_exactly(self) -> None:
        """The subtree decomposition of [a, b) is contiguous, aligned and logarithmic."""
        for start, stop in [(0, 1), (0, 13), (5, 6), (3, 1000), (1024, 4097), (7, 7)]:
            position = start
            parts = aligned_ranges(start, stop)
            for level, index in parts:
                assert index << level == position
                position += 1 << level
            assert position == max(start, stop)
            assert len(parts) <= 2 * max(stop, 1).bit_length()


class TestTargetFilter:
    def test_other_targets_are_hashes_only(self, ledger_url: str, tmp_path: Path) -> None:
        """With --target, other targets' entries are carried as leaf hashes and still verify."""
        built = build_ledger(ledger_url, tmp_path)
        request = ExportRequest(PERIOD.start, PERIOD.end, ("anef-accueil",))
        bundle = _export(built, tmp_path / "b.zip", request)
        with zipfile.ZipFile(bundle) as zf:
            text = zf.read("observations.jsonl") + zf.read("observations.csv")
            hidden = zf.read("proofs/hidden-leaves.bin")
        assert b"anef-connexion" not in text
        assert len(hidden) == 50 * 32
        report = verify_bundle(bundle, public_key=built.signer.verifier)
        assert report.ok, report.summary()
        assert report.hidden == 50


class TestOutageExport:
    def test_one_outage_with_inclusion_proofs(self, tmp_path: Path) -> None:
        """--outage exports the outage's entries, each with its own inclusion proof."""
        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
        request = ExportRequest(PERIOD.start, PERIOD.end, outage_id=built.outage_ids[0])
        bundle = _export(built, tmp_path / "o.zip", request)
        with zipfile.ZipFile(bundle) as zf:
            proofs = zf.read("proofs/inclusion.jsonl").splitlines()
            entries = zf.read("observations.jsonl").splitlines()
        assert len(proofs) == len(entries) == 12
        assert all(b"anef-connexion" not in e for e in entries)
        report = verify_bundle(bundle, public_key=built.signer.verifier)
        assert report.ok, report.summary()

    def test_unknown_outage_is_refused(self, tmp_path: Path) -> None:
        """An outage id the ledger does not hold is an error naming it, and writes nothing."""
        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path, minutes=40)
        request = ExportRequest(PERIOD.start, PERIOD.end, outage_id="nope")
        with pytest.raises(BundleError, match="nope"):
            _export(built, tmp_path / "o.zip", request)
        assert not (tmp_path / "o.zip").exists()

    def test_empty_period_is_refused(self, tmp_path: Path) -> None:
        """A period with no entry is an error, not an empty bundle."""
        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path, minutes=40)
        later = BUILD_START + dt.timedelta(days=3)
        with pytest.raises(BundleError, match="no entry"):
            _export(built, tmp_path / "b.zip", ExportRequest(later, later + dt.timedelta(1)))


class TestTimestamps:
    def test_tokens_from_the_local_tsa_are_included_and_verified(
        self, local_tsa: object, tmp_path: Path
    ) -> None:
        """Checkpoint tokens of the local `openssl ts` authority go into proofs/ and verify."""
        from evidence.timestamp import HttpTimestamper

        url = local_tsa.url  # type: ignore[attr-defined]
        root = local_tsa.ca_pem  # type: ignore[attr-defined]
        stamper = HttpTimestamper(url, ca_pem=root)
        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path, stamper=stamper)
        ledger = built.open()
        try:
            export_bundle(
                ledger,
                tmp_path / "b.zip",
                PERIOD,
                signer=built.signer,
                artifacts_dir=built.artifacts.root,
                timestamper=stamper,
                tsa_certificates=[root],
                progress=False,
            )
        finally:
            ledger.close()
        with zipfile.ZipFile(tmp_path / "b.zip") as zf:
            names = zf.namelist()
        assert "manifest.tsr" in names
        assert "proofs/tsa-ca.pem" in names
        assert sum(n.startswith("proofs/timestamps/") for n in names) == 3
        report = verify_bundle(tmp_path / "b.zip", tsa_certificates=[root])
        assert report.ok, report.summary()
        assert report.timestamps == 4


class TestExportCommand:
    def test_cli_export_then_verify(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`vigie export` then `vigie verify FILE.zip` exit 0; a changed bundle exits 1."""
        import argparse

        from cryptography.hazmat.primitives import serialization

        from evidence import commands
        from exporter.config import Settings

        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
        key = tmp_path / "vantage.key"
        key.write_bytes(
            built.signer._key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key.chmod(0o600)
        settings = Settings.model_validate(
            {
                "vantage": {"name": "paris-1", "operator": "Association X"},
                "ledger": {"url": built.url, "artifacts": str(built.artifacts.root)},
                "signing": {"key": str(key)},
            }
        )
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        export_cmd.add_commands(sub, lambda _path: settings)
        commands.add_commands(sub, lambda _path: settings)
        out = tmp_path / "b.zip"
        args = parser.parse_args(
            ["export", "--from", "2026-11-23", "--to", "2026-11-23", "--out", str(out)]
        )
        assert args.handler(args) == 0
        args = parser.parse_args(["verify", str(out)])
        assert args.handler(args) == 0
        assert "OK:" in capsys.readouterr().out
        data = zipfile.ZipFile(out).read("outages.csv")
        tampered = tmp_path / "t.zip"
        with zipfile.ZipFile(out) as src, zipfile.ZipFile(tampered, "w") as dst:
            for item in src.infolist():
                content = src.read(item)
                dst.writestr(
                    item,
                    data.replace(b"10:40", b"10:45") if item.filename == "outages.csv" else content,
                )
        args = parser.parse_args(["verify", str(tampered)])
        assert args.handler(args) == 1
        assert "outages.csv" in capsys.readouterr().err

    def test_dates_are_paris_days(self) -> None:
        """--to DATE is inclusive: the period ends at the next Paris midnight."""
        start = export_cmd.parse_date("2026-11-23")
        end = export_cmd.parse_date("2026-11-23", end=True)
        assert start.astimezone(dt.UTC) == dt.datetime(2026, 11, 22, 23, 0, tzinfo=dt.UTC)
        assert end - start == dt.timedelta(days=1)


class TestCsvCells:
    def test_separators_and_quotes_survive_a_spreadsheet_reader(self) -> None:
        """Cells holding `;`, quotes or line breaks read back unchanged through `csv`."""
        from evidence.bundle import _ObservationTable

        entry = {
            "seq": 7,
            "target_id": "anef-accueil",
            "kind": "http",
            "started_at": "2026-03-29T00:59:59.000001Z",
            "success": False,
            "outcome": "http_status",
            "http_status": 500,
            "duration_s": 1.5,
            "final_url": 'https://example.invalid/a;b?q="x"',
            "error": 'erreur; "serveur"\r\nsuite',
            "artifacts": {"ab" * 32: "warc"},
        }
        later = {**entry, "seq": 8, "started_at": "2026-03-29T01:00:00.000000Z"}
        text = _ObservationTable().lines([entry, later])
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
        assert len(rows) == 2
        first = dict(zip(CSV_OBSERVATION_COLUMNS, rows[0], strict=True))
        assert first["url_finale"] == 'https://example.invalid/a;b?q="x"'
        assert first["erreur"] == 'erreur; "serveur"  suite'
        assert first["duree_s"] == "1,5"
        assert first["artefacts"] == f"warc:{'ab' * 32}"
        # Summer time starts at 01:00 UTC that day: the Paris clock jumps from 01:59 to 03:00.
        assert first["date_paris"] == "2026-03-29 01:59:59"
        assert rows[1][CSV_OBSERVATION_COLUMNS.index("date_paris")] == "2026-03-29 03:00:00"


class TestWorkerProcess:
    def test_worker_gives_the_same_bundle(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With a CSV worker process (large exports), the files are identical to a lone process."""
        from evidence import bundle

        monkeypatch.setattr(bundle, "_CHUNK", 16)  # many chunks, alternating with the worker
        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
        contents = []
        for workers in (0, 1):
            ledger = built.open()
            try:
                result = export_bundle(
                    ledger,
                    tmp_path / f"b{workers}.zip",
                    PERIOD,
                    signer=built.signer,
                    artifacts_dir=built.artifacts.root,
                    progress=False,
                    now=BUILD_START,
                    workers=workers,
                )
            finally:
                ledger.close()
            contents.append(result.files)
        assert contents[0] == contents[1]
        assert verify_bundle(tmp_path / "b1.zip", public_key=built.signer.verifier).ok
