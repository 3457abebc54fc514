"""`verify_ledger` and `vigie verify`: every kind of tampering is detected and named.

Each scenario builds a real ledger (writer, checkpointer, artifact store), changes it the way
someone with direct database or disk access could, and checks the first bad entry reported.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest
import structlog.testing
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from config.settings import Settings
from config.vocabulary import CHECKPOINT, OBSERVATION, Outcome
from evidence.ledger import merkle, verify
from evidence.ledger.artifacts import FileArtifactStore
from evidence.ledger.backends import open_ledger
from evidence.ledger.checkpoint import Checkpoint, CheckpointCopy, Checkpointer, checkpoint_text
from evidence.ledger.core import STORED_LEVEL_STRIDE, LedgerWriter, encode_entry
from evidence.ledger.entries import TreeHead
from evidence.ledger.signing import NoteSigner, keygen, load_private_key
from evidence.ledger.verify import verify_ledger
from exporter.commands.evidence import add_commands
from probes.observation import Observation
from tests.postgres_fixture import bypass_sql, rebuild_stored_tree, shift_seqs

pytest_plugins = ["tests.postgres_fixture"]

OBSERVATIONS_PER_CHECKPOINT = 40


@dataclasses.dataclass
class Built:
    """A ledger built for a scenario."""

    url: str
    signer: NoteSigner
    artifacts: FileArtifactStore
    copy: Path
    artifact_seqs: dict[int, str]  # seq -> sha256 of the screenshot it names
    checkpoint_seqs: list[int]
    size: int

    def verify(self, **kwargs: Any) -> verify.VerifyReport:
        options: dict[str, Any] = {
            "public_key": self.signer.verifier,
            "artifacts_dir": self.artifacts.root,
            "checkpoint_copy": self.copy,
        }
        options.update(kwargs)
        return verify_ledger(self.url, **options)


def _observation(n: int, artifacts: dict[str, str]) -> dict[str, Any]:
    obs = Observation(
        target_id="anef-accueil",
        kind="http",
        vantage="paris-1",
        started_at=f"2026-11-23T10:{n // 60 % 60:02d}:{n % 60:02d}.000000Z",
        duration_s=0.1 + n / 10000,
        success=not artifacts,
        outcome=Outcome.HTTP_STATUS if artifacts else Outcome.OK,
        http_status=503 if artifacts else 200,
        artifacts=artifacts,
        environment={"vantage": "paris-1", "os": "Linux"},
    )
    return obs.to_dict()


def _build(url: str, tmp_path: Path, *, tail: int = 5) -> Built:
    signer = NoteSigner("paris-1", Ed25519PrivateKey.generate())
    store = FileArtifactStore(tmp_path / "artifacts")
    copy = tmp_path / "ledger.checkpoints"
    artifact_seqs: dict[int, str] = {}
    checkpoint_seqs: list[int] = []
    ledger = open_ledger(url, vantage="paris-1")

    async def scenario() -> None:
        writer = LedgerWriter(ledger)
        checkpointer = Checkpointer(writer, signer, copy=CheckpointCopy(copy))
        try:
            n = 0
            for round_ in range(4):
                count = OBSERVATIONS_PER_CHECKPOINT if round_ < 3 else tail
                batch: list[tuple[str, Any]] = []
                names: list[str | None] = []
                for _ in range(count):
                    artifacts: dict[str, str] = {}
                    if n % 10 == 3:  # artifacts are stored (fsync) before the entry naming them
                        sha = store.put(b"\x89PNG screenshot %d" % n, "screenshot")
                        artifacts = {sha: "screenshot"}
                    batch.append((OBSERVATION, _observation(n, artifacts)))
                    names.append(next(iter(artifacts), None))
                    n += 1
                seqs = await writer.append_many(batch)  # one transaction: fast set-up
                pairs = zip(seqs, names, strict=True)
                artifact_seqs.update({seq: sha for seq, sha in pairs if sha})
                if round_ < 3:
                    checkpoint = await checkpointer.checkpoint()
                    assert checkpoint is not None
                    assert checkpoint.seq is not None
                    checkpoint_seqs.append(checkpoint.seq)
        finally:
            await writer.aclose()

    try:
        asyncio.run(scenario())
        size = ledger.size()
    finally:
        ledger.close()
    return Built(url, signer, store, copy, artifact_seqs, checkpoint_seqs, size)


@pytest.fixture
def built(ledger_url: str, tmp_path: Path) -> Built:
    return _build(ledger_url, tmp_path)


def _entry(built: Built, seq: int) -> bytes:
    ledger = open_ledger(built.url, readonly=True)
    try:
        return ledger.get(seq)
    finally:
        ledger.close()


class TestIntact:
    """An untouched ledger verifies completely."""

    def test_everything_is_counted(self, built: Built) -> None:
        """Every entry, checkpoint, artifact and copied checkpoint is verified."""
        report = built.verify()
        assert report.ok, report.problem
        assert report.entries == built.size == 3 * 41 + 5
        assert report.checkpoints == 3
        assert report.artifacts == len(built.artifact_seqs) == 13
        assert report.copied_checkpoints == 3
        assert report.key_trusted
        assert report.last_checkpoint_seq == built.checkpoint_seqs[-1] == 122
        assert report.unsigned_tail == 5
        ledger = open_ledger(built.url, readonly=True)
        try:
            assert report.root == ledger.root().hex()
        finally:
            ledger.close()
        assert report.summary().startswith("OK: 128 entries, 3 checkpoints")

    def test_without_the_public_key_the_recorded_key_is_used_and_said(self, built: Built) -> None:
        """Without a trusted key the checkpoints still verify, with a warning saying so."""
        report = built.verify(public_key=None)
        assert report.ok
        assert not report.key_trusted
        assert any("recorded in the ledger" in w for w in report.warnings)


class TestTampering:
    """Each way of altering the ledger is detected, at the right entry, with the right words."""

    def test_changed_byte_in_an_observation(self, built: Built) -> None:
        """One changed character in entry 50 is reported at entry 50."""
        body = _entry(built, 50).replace(b'"http_status":200', b'"http_status":500')
        bypass_sql(built.url, [("UPDATE ledger_entries SET body = ? WHERE seq = 50", [body])])
        report = built.verify()
        assert not report.ok
        assert report.first_bad_seq == 50
        assert "changed after it was written" in (report.problem or "")
        assert report.summary().startswith("FAILED at entry 50")

    def test_changed_byte_in_a_checkpoint_entry(self, built: Built) -> None:
        """Editing a checkpoint entry's time is caught at that entry."""
        seq = built.checkpoint_seqs[1]
        body = _entry(built, seq).replace(b'"time":"2', b'"time":"1')
        bypass_sql(built.url, [("UPDATE ledger_entries SET body = ? WHERE seq = ?", [body, seq])])
        report = built.verify()
        assert report.first_bad_seq == seq

    def test_changed_entry_with_its_leaf_hash_rewritten(self, built: Built) -> None:
        """Rewriting the stored leaf hash too is caught by the stored tree, near the entry."""
        body = _entry(built, 50).replace(b'"http_status":200', b'"http_status":500')
        bypass_sql(
            built.url,
            [
                (
                    "UPDATE ledger_entries SET body = ?, leaf_hash = ? WHERE seq = 50",
                    [body, merkle.leaf_hash(body)],
                )
            ],
        )
        report = built.verify()
        assert report.first_bad_seq == 48
        assert "entries 48 to 63" in (report.problem or "")

    def test_changed_entry_with_the_whole_stored_tree_rewritten(self, built: Built) -> None:
        """A forger who rewrites every stored hash still fails the next signed checkpoint."""
        body = _entry(built, 50).replace(b'"http_status":200', b'"http_status":500')
        bypass_sql(
            built.url,
            [
                (
                    "UPDATE ledger_entries SET body = ?, leaf_hash = ? WHERE seq = 50",
                    [body, merkle.leaf_hash(body)],
                )
            ],
        )
        rebuild_stored_tree(built.url)
        report = built.verify()
        previous, checkpoint = built.checkpoint_seqs[0], built.checkpoint_seqs[1]
        assert report.first_bad_seq == checkpoint
        assert f"does not match entries {previous} to {checkpoint - 1}" in (report.problem or "")

    def test_removed_entry(self, built: Built) -> None:
        """A deleted entry is named as missing."""
        bypass_sql(built.url, [("DELETE FROM ledger_entries WHERE seq = 60", [])])
        report = built.verify()
        assert report.first_bad_seq == 60
        assert "entry 60 is missing" in (report.problem or "")

    def test_removed_entry_with_renumbering(self, built: Built) -> None:
        """Deleting entry 60 and renumbering the rest is caught at entry 60."""
        bypass_sql(
            built.url,
            [("DELETE FROM ledger_entries WHERE seq = 60", []), *shift_seqs(61, -1)],
        )
        report = built.verify()
        assert report.first_bad_seq == 60
        assert "says it is entry 61" in (report.problem or "")
        assert "removed, inserted or reordered" in (report.problem or "")

    def test_inserted_entry(self, built: Built) -> None:
        """A crafted entry slipped in at 60 shows where the log diverges (entry 61)."""
        forged = encode_entry(OBSERVATION, 60, _observation(999, {}))
        bypass_sql(
            built.url,
            [
                *shift_seqs(60, 1),
                (
                    "INSERT INTO ledger_entries (seq, type, body, leaf_hash) VALUES (?, ?, ?, ?)",
                    [60, OBSERVATION, forged, merkle.leaf_hash(forged)],
                ),
            ],
        )
        report = built.verify()
        assert report.first_bad_seq == 61
        assert "says it is entry 60" in (report.problem or "")

    def test_reordered_entries(self, built: Built) -> None:
        """Swapping entries 50 and 51 is caught at entry 50."""
        bypass_sql(
            built.url,
            [
                ("UPDATE ledger_entries SET seq = 1000050 WHERE seq = 50", []),
                ("UPDATE ledger_entries SET seq = 50 WHERE seq = 51", []),
                ("UPDATE ledger_entries SET seq = 51 WHERE seq = 1000050", []),
            ],
        )
        report = built.verify()
        assert report.first_bad_seq == 50
        assert "says it is entry 51" in (report.problem or "")

    def test_reordered_in_the_unsigned_tail(self, built: Built) -> None:
        """Entries after the last checkpoint are parsed: a swap there is caught too."""
        bypass_sql(
            built.url,
            [
                ("UPDATE ledger_entries SET seq = 1000125 WHERE seq = 125", []),
                ("UPDATE ledger_entries SET seq = 125 WHERE seq = 126", []),
                ("UPDATE ledger_entries SET seq = 126 WHERE seq = 1000125", []),
            ],
        )
        report = built.verify()
        assert report.first_bad_seq == 125

    def test_tail_cut_after_a_checkpoint(self, built: Built) -> None:
        """Cutting the end of the ledger, checkpoints included, shows in the outside copy."""
        bypass_sql(built.url, [("DELETE FROM ledger_entries WHERE seq >= 100", [])])
        report = built.verify()
        assert report.first_bad_seq == 100
        assert "cut off" in (report.problem or "")
        assert "122" in (report.problem or "")

    def test_checkpoint_signed_by_another_key(self, built: Built) -> None:
        """A checkpoint appended with a forger's key is reported as forged."""
        forger = NoteSigner("paris-1", Ed25519PrivateKey.generate())
        ledger = open_ledger(built.url, vantage="paris-1")
        try:
            asyncio.run(_one_checkpoint(ledger, forger))
        finally:
            ledger.close()
        report = built.verify()
        assert report.first_bad_seq == built.size
        assert "forged checkpoint" in (report.problem or "")
        untrusted = built.verify(public_key=None)
        assert untrusted.first_bad_seq == built.size
        assert "another key" in (untrusted.problem or "")

    def test_checkpoint_with_a_wrong_root(self, built: Built) -> None:
        """A correctly signed checkpoint over a root the entries do not have is caught."""
        signer = built.signer

        def wrong(head: TreeHead) -> dict[str, Any]:
            root = merkle.leaf_hash(b"not the tree")
            note = signer.sign(checkpoint_text("paris-1", head.size, root))
            return Checkpoint(head.size, "paris-1", head.size, root, note, "t", None).body()

        ledger = open_ledger(built.url, vantage="paris-1")
        try:
            ledger.append([(CHECKPOINT, wrong)])
        finally:
            ledger.close()
        report = built.verify()
        assert report.first_bad_seq == built.size
        assert "root does not match" in (report.problem or "")

    def test_checkpoint_hidden_by_its_type_column(self, built: Built) -> None:
        """A checkpoint whose type column says 'observation' is still found and named (its
        body ends like a checkpoint's): hiding it would leave its entries unprotected."""
        seq = built.checkpoint_seqs[1]
        bypass_sql(
            built.url, [("UPDATE ledger_entries SET type = 'observation' WHERE seq = ?", [seq])]
        )
        report = built.verify()
        assert report.first_bad_seq == seq
        assert "the database lists it as 'observation'" in (report.problem or "")

    def test_last_checkpoint_hidden_and_rewritten(self, built: Built) -> None:
        """The last checkpoint, relisted as an observation and re-encoded (keys reordered, its
        leaf hash and the stored tree rewritten to match), is caught by the outside copy."""
        seq = built.checkpoint_seqs[-1]
        data = json.loads(_entry(built, seq))
        body = json.dumps({"type": data.pop("type"), **data}, separators=(",", ":")).encode()
        bypass_sql(
            built.url,
            [
                (
                    (
                        "UPDATE ledger_entries SET type = 'observation', body = ?, leaf_hash = ? "
                        "WHERE seq = ?"
                    ),
                    [body, merkle.leaf_hash(body), seq],
                )
            ],
        )
        rebuild_stored_tree(built.url)
        report = built.verify()
        assert report.first_bad_seq == seq
        assert "hidden checkpoint" in (report.problem or "")

    def test_observation_listed_as_a_checkpoint(self, built: Built) -> None:
        """An observation whose type column says 'checkpoint' is named."""
        bypass_sql(
            built.url, [("UPDATE ledger_entries SET type = 'checkpoint' WHERE seq = 30", [])]
        )
        report = built.verify()
        assert report.first_bad_seq == 30
        assert "type is 'observation' but the database lists it as 'checkpoint'" in (
            report.problem or ""
        )

    def test_missing_artifact(self, built: Built) -> None:
        """A deleted screenshot is named, at the observation that references it."""
        seq, sha = sorted(built.artifact_seqs.items())[4]
        built.artifacts.path(sha).unlink()
        report = built.verify()
        assert report.first_bad_seq == seq
        assert f"screenshot artifact {sha} is missing" in (report.problem or "")

    def test_altered_artifact(self, built: Built) -> None:
        """A modified screenshot is named as altered."""
        seq, sha = sorted(built.artifact_seqs.items())[2]
        built.artifacts.path(sha).write_bytes(b"another image")
        report = built.verify()
        assert report.first_bad_seq == seq
        assert "altered" in (report.problem or "")

    def test_artifacts_not_checked_without_a_directory(self, built: Built) -> None:
        """Without the artifact store, artifacts are skipped and the report says so."""
        report = built.verify(artifacts_dir=None)
        assert report.ok
        assert report.artifacts == 0
        assert any("artifacts were not checked" in w for w in report.warnings)


async def _one_checkpoint(ledger: Any, signer: NoteSigner) -> None:
    writer = LedgerWriter(ledger)
    try:
        await Checkpointer(writer, signer).checkpoint(force=True)
    finally:
        await writer.aclose()


@dataclasses.dataclass
class ParallelLedger:
    """A ledger cut into many small segments, for the multi-process verifier."""

    url: str
    signer: NoteSigner


@pytest.fixture
def parallel_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ParallelLedger:
    """~1,800 entries in segments of 256 (so that 2 processes share 8 of them)."""
    monkeypatch.setattr(verify, "SEGMENT_LEVEL", 2 * STORED_LEVEL_STRIDE)  # 256 entries
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    signer = NoteSigner("paris-1", Ed25519PrivateKey.generate())
    ledger = open_ledger(url, vantage="paris-1")

    async def scenario() -> None:
        writer = LedgerWriter(ledger)
        checkpointer = Checkpointer(writer, signer)
        try:
            for block in range(6):
                await writer.append_many([("gap", {"n": n}) for n in range(300 + block)])
                await checkpointer.checkpoint()
        finally:
            await writer.aclose()

    asyncio.run(scenario())
    ledger.close()
    return ParallelLedger(url, signer)


class TestParallel:
    """Large ledgers are verified by several processes, with the same results."""

    @pytest.mark.parametrize("method", ["fork", "spawn"])
    def test_parallel_and_in_process_agree(
        self, parallel_ledger: ParallelLedger, monkeypatch: pytest.MonkeyPatch, method: str
    ) -> None:
        """With small segments, 2 processes give the root and first bad entry of 1 process,
        whether the worker is forked or spawned."""
        url, signer = parallel_ledger.url, parallel_ledger.signer
        monkeypatch.setattr(verify, "_start_method", lambda ledger: method)
        single = verify_ledger(url, public_key=signer.verifier, workers=1)
        with structlog.testing.capture_logs() as logs:
            multi = verify_ledger(url, public_key=signer.verifier, workers=2)
        events = {entry["event"]: entry for entry in logs}
        assert events["verify_parallel"]["start_method"] == method
        assert "verify_workers_failed" not in events
        assert single.ok, single.problem
        assert multi.ok, multi.problem
        assert (multi.entries, multi.checkpoints, multi.root) == (
            single.entries,
            single.checkpoints,
            single.root,
        )
        bypass_sql(url, [("UPDATE ledger_entries SET body = x'00' WHERE seq = 1000", [])])
        assert verify_ledger(url, workers=2).first_bad_seq == 1000

    def test_a_failing_worker_never_fails_verification(
        self, parallel_ledger: ParallelLedger, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A worker whose scans raise hands its segments back; one that dies is replaced by
        this process: the result is that of one process either way."""
        url, signer = parallel_ledger.url, parallel_ledger.signer
        single = verify_ledger(url, public_key=signer.verifier, workers=1)
        parent = os.getpid()
        scan = verify._scan

        def raising(ledger: Any, job: Any) -> Any:
            if os.getpid() != parent:
                raise RuntimeError("worker trouble")
            return scan(ledger, job)

        def dying(ledger: Any, job: Any) -> Any:
            if os.getpid() != parent:
                os._exit(3)
            return scan(ledger, job)

        monkeypatch.setattr(verify, "_start_method", lambda ledger: "fork")
        for broken, event in ((raising, None), (dying, "verify_workers_failed")):
            monkeypatch.setattr(verify, "_scan", broken)
            with structlog.testing.capture_logs() as logs:
                multi = verify_ledger(url, public_key=signer.verifier, workers=2)
            assert multi.ok, multi.problem
            assert (multi.entries, multi.checkpoints, multi.root) == (
                single.entries,
                single.checkpoints,
                single.root,
            )
            events = [entry["event"] for entry in logs]
            assert "verify_parallel" in events
            assert (event in events) if event else ("verify_workers_failed" not in events)

    def test_segments_shrink_to_keep_every_process_busy(self) -> None:
        """Segments are 65,536 entries, smaller (not below 4,096) when too few to share."""
        assert verify._segment_level(10_000_000, 2) == 16
        assert verify._segment_level(300_000, 1) == 16
        assert verify._segment_level(300_000, 2) == 14  # 18 segments for 2 processes
        assert verify._segment_level(20_000, 8) == 12


class TestVerifyCommand:
    """`vigie verify` through argparse."""

    def _run(self, argv: list[str], settings: Settings) -> int:
        parser = argparse.ArgumentParser(prog="vigie")
        sub = parser.add_subparsers(dest="command", required=True)
        add_commands(sub, lambda path: settings)
        args = parser.parse_args(argv)
        return int(args.handler(args))

    def _settings(self, tmp_path: Path) -> Settings:
        return Settings(
            vantage={"name": "paris-1"},
            ledger={"url": f"sqlite:///{tmp_path / 'ledger.db'}", "artifacts": tmp_path / "a"},
            signing={"key": tmp_path / "vantage.key"},
        )

    def _ledger(self, tmp_path: Path) -> None:
        keygen(tmp_path / "vantage.key")
        signer = NoteSigner("paris-1", load_private_key(tmp_path / "vantage.key"))
        ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}", vantage="paris-1")
        try:

            async def scenario() -> None:
                writer = LedgerWriter(ledger)
                try:
                    for n in range(30):
                        await writer.append(OBSERVATION, _observation(n, {}))
                    await Checkpointer(writer, signer).checkpoint()
                finally:
                    await writer.aclose()

            asyncio.run(scenario())
        finally:
            ledger.close()

    def test_success_prints_counts(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The configured ledger verifies with the configured key: exit 0 and the counts."""
        self._ledger(tmp_path)
        assert self._run(["verify"], self._settings(tmp_path)) == 0
        out = capsys.readouterr().out
        assert "OK: 31 entries, 1 checkpoints verified" in out
        assert "given key" in out

    def test_failure_names_the_entry_and_exits_1(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A changed entry makes verify exit 1 and name the entry on stderr."""
        self._ledger(tmp_path)
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
        bypass_sql(url, [("UPDATE ledger_entries SET body = x'7b7d' WHERE seq = 7", [])])
        assert self._run(["verify", str(tmp_path / "ledger.db")], self._settings(tmp_path)) == 1
        err = capsys.readouterr().err
        assert "FAILED at entry 7" in err

    def test_json_output(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """--json prints the whole report."""
        self._ledger(tmp_path)
        assert self._run(["verify", "--json"], self._settings(tmp_path)) == 0
        out = capsys.readouterr().out
        report = json.loads(out[out.index("\n{") + 1 :] if not out.startswith("{") else out)
        assert report["ok"] is True
        assert report["entries"] == 31

    def test_missing_ledger_and_bundles(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A missing file and (not yet supported) bundles exit 2 with a message."""
        settings = self._settings(tmp_path)
        assert self._run(["verify", str(tmp_path / "nothing.db")], settings) == 2
        assert "no ledger at" in capsys.readouterr().err
        assert self._run(["verify", str(tmp_path / "bundle.zip")], settings) == 2
        assert "bundle" in capsys.readouterr().err


class TestOddValues:
    """Values of the wrong type written straight into the database do not crash verify."""

    def test_text_in_the_body_column(self, tmp_path: Path) -> None:
        """SQLite accepts text in a BLOB column; verify names the entry instead of crashing."""
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
        ledger = open_ledger(url, vantage="paris-1")
        ledger.append([("gap", {"n": n}) for n in range(10)])
        ledger.close()
        bypass_sql(url, [("UPDATE ledger_entries SET body = ? WHERE seq = 4", ['{"n":4}'])])
        report = verify_ledger(url)
        assert report.first_bad_seq == 4
        assert "not stored as bytes" in (report.problem or "")
