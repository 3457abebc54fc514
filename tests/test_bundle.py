"""`vigie export`: bundles built from real ledgers (SQLite and PostgreSQL) and verified back."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import itertools
import json
import random
import sqlite3
import zipfile
from pathlib import Path
from typing import Any

import pytest

from evidence.bundle.export import aligned_ranges
from evidence.bundle.model import BundleError, ExportRequest
from evidence.bundle.table import CSV_OBSERVATION_COLUMNS
from evidence.bundle.verify import verify_bundle
from exporter.commands import export as export_cmd
from probes.observation import canonical_json
from tests.bundle_fixture import BUILD_START, BuiltLedger, build_ledger

PERIOD = ExportRequest(
    BUILD_START + dt.timedelta(minutes=20), BUILD_START + dt.timedelta(minutes=70)
)


def _export(built: BuiltLedger, out: Path, request: ExportRequest = PERIOD) -> Path:
    built.export(out, request)
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
        # 10 failed checks, the first success (up to the closing event: every entry of the
        # target up to there, so the history is complete) and the two events
        assert len(proofs) == len(entries) == 13
        assert all(b"anef-connexion" not in e for e in entries)
        report = verify_bundle(bundle, public_key=built.signer.verifier)
        assert report.ok, report.summary()

    def test_period_is_the_outage_not_1970(self, tmp_path: Path) -> None:
        """Asked from 1 January 1970 (as `vigie export --outage` and the status page ask), the
        bundle is dated from its own entries: the outage's first failed check to its last
        entry (issue 17: "Période observée : du 1er janvier 1970", "Non surveillé 20794 j")."""
        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
        epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        request = ExportRequest(epoch, dt.datetime.now(dt.UTC), outage_id=built.outage_ids[0])
        result = built.export(tmp_path / "o.zip", request)
        record = result.summary.outages[0]
        assert result.summary.period_start == record.start
        assert record.end is not None
        assert record.end <= result.summary.period_end < record.end + dt.timedelta(minutes=5)
        with zipfile.ZipFile(result.path) as zf:
            period = json.loads(zf.read("manifest.json"))["period"]
        assert period["from"] == record.start.isoformat()

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
        from evidence.ledger.timestamp import HttpTimestamper

        url = local_tsa.url  # type: ignore[attr-defined]
        root = local_tsa.ca_pem  # type: ignore[attr-defined]
        stamper = HttpTimestamper(url, ca_pem=root)
        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path, stamper=stamper)
        built.export(tmp_path / "b.zip", PERIOD, timestamper=stamper, tsa_certificates=[root])
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

        from config.settings import Settings
        from exporter.commands import evidence as commands

        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
        key = built.save_key(tmp_path / "vantage.key")
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
        from evidence.bundle.table import ObservationTable, decode_bodies

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
        entries = decode_bodies([canonical_json(entry), canonical_json(later)])
        text = ObservationTable().lines(entries)
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


def _export_files(
    built: BuiltLedger, out: Path, request: ExportRequest = PERIOD, *, workers: int = 0
) -> dict[str, tuple[str, int]]:
    """Export with a fixed creation time and file name; the (SHA-256, size) of every member."""
    return built.export(
        out, request, now=BUILD_START, workers=workers, bundle_name="preuves.zip"
    ).files


def _rewrite_body(built: BuiltLedger, seq: int, body: bytes) -> None:
    """Change one stored entry (as an attacker would: the append-only triggers dropped)."""
    with sqlite3.connect(built.url.removeprefix("sqlite:///")) as db:
        triggers = db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'ledger_entries'"
        ).fetchall()
        for (name,) in triggers:
            db.execute(f'DROP TRIGGER "{name}"')
        db.execute("UPDATE ledger_entries SET body = ? WHERE seq = ?", (body, seq))
    db.close()


class TestWorkerProcess:
    def test_worker_gives_the_same_bundle(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With a CSV worker process (large exports), the files are identical to a lone process."""
        from evidence.bundle import export as bundle

        monkeypatch.setattr(bundle, "_CHUNK", 16)  # many chunks through the pipe
        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
        alone = _export_files(built, tmp_path / "b0.zip", workers=0)
        assert _export_files(built, tmp_path / "b1.zip", workers=1) == alone
        assert verify_bundle(tmp_path / "b1.zip", public_key=built.signer.verifier).ok

    def test_entry_with_a_line_break_goes_whole_to_the_worker(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An entry that is not canonical JSON (a line break inside) gives the same CSV line
        through the worker (which cannot split that chunk by lines) as in one process."""
        from evidence.bundle import export as bundle

        monkeypatch.setattr(bundle, "_CHUNK", 16)
        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
        ledger = built.open()
        try:
            seq = next(
                s for s in range(60, 90) if json.loads(ledger.get(s)).get("type") == "observation"
            )
            body = ledger.get(seq)
        finally:
            ledger.close()
        _rewrite_body(built, seq, body.replace(b'{"', b'{\n"', 1))
        alone = _export_files(built, tmp_path / "b0.zip", workers=0)
        assert _export_files(built, tmp_path / "b1.zip", workers=1) == alone
        with zipfile.ZipFile(tmp_path / "b1.zip") as zf:
            rows = zf.read("observations.csv").decode("utf-8-sig").splitlines()
            assert zf.testzip() is None
        assert sum(row.startswith(f"{seq};") for row in rows) == 1

    def test_chunks_built_by_both_processes_give_the_same_bundle(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Chunks built by this process while the worker is busy (every other one here) are
        merged in order: the same files as one process."""
        from evidence.bundle import export as bundle

        monkeypatch.setattr(bundle, "_CHUNK", 16)
        turns = itertools.count()
        monkeypatch.setattr(bundle.CsvPipeline, "_build_here", lambda _self: next(turns) % 2 == 1)
        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
        alone = _export_files(built, tmp_path / "b0.zip", workers=0)
        assert _export_files(built, tmp_path / "b1.zip", workers=1) == alone
        assert next(turns) >= 5  # chunks built here and in the worker

    def test_part_tables_merge_to_the_figures_of_one_table(self) -> None:
        """Tables of consecutive parts, merged in order, hold exactly the figures of one table
        fed every entry: float sums added in the same order, the first environment of an
        entry opening a day, artifacts and screenshots first seen first."""
        from evidence.bundle.table import ObservationTable, decode_bodies

        chance = random.Random(3)
        bodies = []
        for seq in range(400):
            entry: dict[str, Any] = {
                "seq": seq,
                "target_id": f"t{seq % 3}",
                "kind": "http",
                "started_at": f"2026-03-{28 + seq // 150:02d}T{seq % 24:02d}:00:00.000000Z",
                "success": chance.random() < 0.8,
                "outcome": chance.choice(["ok", "timeout", "vantage_offline"]),
                "duration_s": chance.choice([0.1, 0.2, 0.3, 1e-3, 7.0, 2, None]),
            }
            if seq >= 120:  # not in the entries opening the days of the first part
                entry["environment"] = {"seq": seq}
            if seq % 11 == 0:
                sha = f"{seq % 4:064x}"
                entry["artifacts"] = {sha: chance.choice(["screenshot", "warc"])}
            bodies.append(canonical_json(entry))
        entries = decode_bodies(bodies)
        whole = ObservationTable()
        text = whole.lines(entries)
        assert whole.environment is not None
        for cuts in ([0, 400], [0, 130, 131, 200, 400], [0, 1, 57, 121, 150, 151, 399, 400]):
            merged = ObservationTable()
            pieces = [merged.lines(entries[: cuts[1]])]
            for low, high in itertools.pairwise(cuts[1:]):
                part = ObservationTable(part=True)
                pieces.append(part.lines(entries[low:high]))
                merged.merge(part)
            assert "".join(pieces) == text
            for name in ("days", "outcomes", "first", "last", "kinds", "artifacts"):
                assert getattr(merged, name) == getattr(whole, name), name
                assert list(getattr(merged, name)) == list(getattr(whole, name)), name
            assert merged.screenshots == whole.screenshots
            assert merged.environment == whole.environment


class TestZipMembers:
    def test_members_deflated_here_read_back_in_any_zip_reader(self, tmp_path: Path) -> None:
        """The entries and the CSV, deflated by this module and spliced into the zip, have the
        CRC and sizes a zip reader checks, and are smaller than the data."""
        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
        files = _export_files(built, tmp_path / "b.zip", workers=1)
        with zipfile.ZipFile(tmp_path / "b.zip") as zf:
            assert zf.testzip() is None
            for name in ("observations.jsonl", "observations.csv"):
                info = zf.getinfo(name)
                assert info.compress_type == zipfile.ZIP_DEFLATED
                assert info.compress_size < info.file_size / 3
                data = zf.read(name)
                assert (hashlib.sha256(data).hexdigest(), len(data)) == files[name]


class TestObservationDecoding:
    def test_fields_as_the_parsed_entry_gives_them(self) -> None:
        """The decoded fields are those of the whole parsed entry (absent: None), whatever
        their JSON type, the environment as JSON text; unused fields are skipped. A block of
        lines decodes to the same, a line msgspec refuses included."""
        from evidence.bundle.table import (
            _block_observations,
            _decode_observation,
            _observation_of,
            decode_bodies,
        )

        bodies = [
            canonical_json({"seq": 3, "target_id": "t", "success": True, "duration_s": 0.5}),
            canonical_json(
                {
                    "seq": 4,
                    "target_id": "t",
                    "success": 1,
                    "duration_s": None,
                    "error": 'é\u00e9\n;"',
                    "artifacts": {"ab": "warc"},
                    "http_status": "503",
                    "environment": {"nested": [1, {"deep": [2.5]}]},
                    "final_url": ["not", "a", "string"],
                }
            ),
            b'{"seq":5,"kind":"http","remote_ip":"192.0.2.1","outcome":"ok","duration_s":2}',
            b'{"environment":null,"seq":18446744073709551616}',
        ]
        for body in bodies:
            entry = json.loads(body)
            for decoded in (_decode_observation(body), _observation_of(body)):
                for name in decoded.__struct_fields__:
                    value = getattr(decoded, name)
                    if name == "environment":
                        value = json.loads(bytes(value)) if value else None
                    assert value == entry.get(name), name  # orjson: 2**64 as a float, equal
        refused = b'{"seq":6,"duration_s":1e999}'  # msgspec refuses it, orjson too
        block = b"\n".join([*bodies, b'{"type":"checkpoint"}']) + b"\n"
        assert _block_observations(block, len(bodies) + 1, [len(bodies)]) == decode_bodies(bodies)
        with pytest.raises(ValueError, match=r"(?i)number|infinity|range"):
            _block_observations(refused + b"\n", 1, [])

    def test_a_body_msgspec_refuses_fails_as_before(self) -> None:
        """A body that is not JSON raises the JSON parser's error (as before), not another."""
        from evidence.bundle.table import decode_bodies

        with pytest.raises(ValueError, match=r"(?i)json|unexpected|expected"):
            decode_bodies([b'{"seq":1,"target_id":'])


class TestTimestampLookup:
    def test_same_entries_as_reading_every_window(self, tmp_path: Path) -> None:
        """Timestamp entries of the windows after checkpoints: those inside the exported range
        come from its list of seqs, the others are read; the result is what reading every
        window of the ledger gives, in seq order, each entry once."""
        from config.vocabulary import OBSERVATION, TIMESTAMP
        from evidence.bundle.export import _Scanned, _timestamp_bodies
        from evidence.ledger.backends import open_ledger

        url = f"sqlite:///{tmp_path / 'l.db'}"
        ledger = open_ledger(url, vantage="paris-1")
        batch: list[tuple[str, Any]] = []
        for seq in range(300):
            if seq % 7 == 3:
                stamp = {"checkpoint_seq": seq - 1, "token": "", "gen_time": str(seq)}
                batch.append((TIMESTAMP, stamp))
            else:
                batch.append((OBSERVATION, {"target_id": "t", "seq": None}))
        ledger.append(batch)
        try:
            kinds = [row.type for row in ledger.iter_rows(0, 300)]
            bodies = [ledger.get(seq) for seq in range(300)]
            chance = random.Random(7)
            for _ in range(200):
                windows = [
                    (low, min(300, low + chance.randint(0, 40)))
                    for low in sorted(chance.sample(range(300), chance.randint(0, 6)))
                ]
                start = chance.randint(0, 300)
                stop = chance.randint(start, 300)
                stamps = [s for s in range(start, stop) if kinds[s] == TIMESTAMP]
                expected: list[bytes] = []
                for low, high in windows:
                    for seq in range(low, high):
                        if kinds[seq] == TIMESTAMP and bodies[seq] not in expected:
                            expected.append(bodies[seq])
                scanned = _Scanned(start, stop, stamps)
                assert list(_timestamp_bodies(ledger, windows, scanned)) == expected
                assert list(_timestamp_bodies(ledger, windows, None)) == expected
        finally:
            ledger.close()
