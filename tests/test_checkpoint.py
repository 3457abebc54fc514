"""Signing keys, C2SP signed notes, checkpoints in the ledger, RFC 3161 timestamps of them."""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from config.settings import Settings
from config.vocabulary import CHECKPOINT, TIMESTAMP, TSA_FAILURE
from evidence.ledger import merkle
from evidence.ledger.backends import open_ledger
from evidence.ledger.checkpoint import (
    Checkpoint,
    CheckpointCopy,
    Checkpointer,
    CheckpointError,
    checkpoint_text,
    default_copy_path,
    parse_checkpoint_text,
)
from evidence.ledger.core import LedgerWriter, SqlLedger
from evidence.ledger.entries import LedgerCorruptedError
from evidence.ledger.signing import (
    KeyExistsError,
    KeyPermissionError,
    NoteError,
    NoteSigner,
    NoteVerifier,
    SigningKeyError,
    keygen,
    load_private_key,
    load_public_key,
    open_note,
    public_key_path,
)
from evidence.ledger.timestamp import HttpTimestamper
from evidence.ledger.verify import verify_ledger
from exporter.commands.evidence import add_commands
from exporter.metrics import Metrics
from exporter.wiring import open_service_evidence

if TYPE_CHECKING:
    from tests.tsa_fixture import LocalTsa

pytest_plugins = ["tests.postgres_fixture", "tests.tsa_fixture"]

C2SP_EXAMPLE = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)


@pytest.fixture
def signer() -> NoteSigner:
    return NoteSigner("paris-1", Ed25519PrivateKey.generate())


class TestKeygen:
    """`keygen` and loading keys."""

    def test_key_is_written_0600_with_public_key_beside(self, tmp_path: Path) -> None:
        """The private key is PEM with mode 0600 (any umask), the public key in <key>.pub."""
        path = tmp_path / "keys" / "vantage.key"
        key = keygen(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
        loaded = load_public_key(public_key_path(path))
        assert loaded.public_bytes_raw() == key.public_key().public_bytes_raw()
        assert not list(path.parent.glob("*.tmp"))

    def test_refuses_to_overwrite(self, tmp_path: Path) -> None:
        """A second keygen on the same path fails and leaves the first key untouched."""
        path = tmp_path / "vantage.key"
        keygen(path)
        before = path.read_bytes()
        with pytest.raises(KeyExistsError, match="refusing to overwrite"):
            keygen(path)
        assert path.read_bytes() == before

    @pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o660])
    def test_loading_a_key_others_can_access_is_refused(self, tmp_path: Path, mode: int) -> None:
        """A key file with any group/other permission bit is refused with the fix to apply."""
        path = tmp_path / "vantage.key"
        keygen(path)
        path.chmod(mode)
        with pytest.raises(KeyPermissionError, match="chmod 600"):
            load_private_key(path)

    def test_loading_a_0600_key(self, tmp_path: Path) -> None:
        """A 0600 (or 0400) key loads."""
        path = tmp_path / "vantage.key"
        key = keygen(path)
        path.chmod(0o400)
        assert load_private_key(path).public_key().public_bytes_raw() == (
            key.public_key().public_bytes_raw()
        )

    def test_missing_key_says_how_to_create_one(self, tmp_path: Path) -> None:
        """Loading a missing key explains `vigie keygen`."""
        with pytest.raises(SigningKeyError, match="vigie keygen"):
            load_private_key(tmp_path / "nothing.key")

    def test_other_key_types_are_refused(self, tmp_path: Path) -> None:
        """An EC key file is not accepted as the Ed25519 signing key."""
        path = tmp_path / "ec.key"
        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.write_bytes(pem)
        path.chmod(0o600)
        with pytest.raises(SigningKeyError, match="not an Ed25519 key"):
            load_private_key(path)


class TestSignedNotes:
    """C2SP signed-note signing and verification."""

    def test_signature_line_format(self, signer: NoteSigner) -> None:
        """The note is text, a blank line, and "— name base64(key id ‖ signature)"."""
        note = signer.sign("hello\n")
        text, line = note.split("\n\n")
        assert text == "hello"
        assert line.startswith("\u2014 paris-1 ")
        blob = base64.b64decode(line.split(" ")[2])
        raw = signer.verifier.raw
        expected_id = hashlib.sha256(b"paris-1\n\x01" + raw).digest()[:4]
        assert blob[:4] == expected_id
        assert len(blob) == 4 + 64
        assert open_note(note, signer.verifier) == "hello\n"

    def test_altered_note_is_refused(self, signer: NoteSigner) -> None:
        """Changing one character of the text breaks the signature."""
        note = signer.sign("size 10\n")
        with pytest.raises(NoteError, match="does not verify"):
            open_note(note.replace("10", "11"), signer.verifier)

    def test_signature_by_another_key_is_not_accepted(self, signer: NoteSigner) -> None:
        """A note signed by another key under the same name carries no signature we trust."""
        forger = NoteSigner("paris-1", Ed25519PrivateKey.generate())
        with pytest.raises(NoteError, match="no signature by paris-1"):
            open_note(forger.sign("x\n"), signer.verifier)

    def test_unknown_cosignatures_are_ignored(self, signer: NoteSigner) -> None:
        """An extra signature line from another key (a witness) does not stop verification."""
        witness = NoteSigner("witness.example", Ed25519PrivateKey.generate())
        note = signer.sign("x\n")
        cosigned = note + witness.sign("x\n").split("\n\n")[1]
        assert open_note(cosigned, signer.verifier) == "x\n"
        assert open_note(cosigned, witness.verifier) == "x\n"

    @pytest.mark.parametrize(
        "note",
        ["x\n", "x\n\n", "x\n\n-- paris-1 AAAA\n", "x\n\n\u2014 paris-1 !!!\n", "x\n\n\u2014 a b"],
    )
    def test_malformed_notes_are_refused(self, signer: NoteSigner, note: str) -> None:
        """Notes without a proper blank line and signature lines are refused."""
        with pytest.raises(NoteError):
            open_note(note, signer.verifier)

    def test_verifier_key_round_trip(self, signer: NoteSigner) -> None:
        """The vkey string parses back to the same key; a wrong key id is refused."""
        vkey = signer.verifier.vkey()
        name, key_id, _ = vkey.split("+", 2)
        assert name == "paris-1"
        assert key_id == signer.verifier.key_id.hex()
        assert NoteVerifier.parse(vkey).raw == signer.verifier.raw
        with pytest.raises(NoteError, match="id does not match"):
            NoteVerifier.parse(vkey.replace(key_id, "00000000"))


class TestCheckpointFormat:
    """The tlog-checkpoint note text."""

    def test_parses_the_c2sp_example(self) -> None:
        """The specification's example checkpoint parses to its origin, size and root."""
        origin, size, root = parse_checkpoint_text(C2SP_EXAMPLE)
        assert (origin, size) == ("example.com/behind-the-sofa", 20852163)
        assert checkpoint_text(origin, size, root) == C2SP_EXAMPLE

    @pytest.mark.parametrize(
        "text",
        [
            "origin\n10\n",
            "origin\n010\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
            "origin\n-1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
            "origin\n10\nnot base64\n",
            "origin\n10\nAAAA\n",
            "origin\n10\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=",
        ],
    )
    def test_malformed_checkpoints(self, text: str) -> None:
        """Missing lines, leading zeros, bad base64 or a short hash are refused."""
        with pytest.raises(CheckpointError):
            parse_checkpoint_text(text)


def _run(coro_fn: Any) -> Any:
    return asyncio.run(coro_fn())


class TestCheckpointer:
    """Checkpoints written through the writer, on both backends."""

    def test_checkpoint_signs_every_entry_before_it(
        self, ledger: SqlLedger, signer: NoteSigner, tmp_path: Path
    ) -> None:
        """A checkpoint at seq c signs the root of entries [0, c), and the note verifies."""
        copy = CheckpointCopy(tmp_path / "ledger.checkpoints")

        async def scenario() -> Checkpoint | None:
            writer = LedgerWriter(ledger)
            checkpointer = Checkpointer(writer, signer, copy=copy)
            try:
                for n in range(37):
                    await writer.append("gap", {"n": n})
                return await checkpointer.checkpoint()
            finally:
                await writer.aclose()

        checkpoint = _run(scenario)
        assert checkpoint is not None
        assert checkpoint.seq == checkpoint.tree_size == 37
        assert checkpoint.root_hash == ledger.root(37)
        checkpoint.verify(signer.verifier)
        stored = json.loads(ledger.get(37))
        assert stored["type"] == CHECKPOINT
        assert stored["note"] == checkpoint.note
        assert ledger.latest_checkpoint() == Checkpoint.from_entry(37, ledger.get(37))
        assert [c.note for c in copy.read()] == [checkpoint.note]

    def test_nothing_new_means_no_new_checkpoint(
        self, ledger: SqlLedger, signer: NoteSigner
    ) -> None:
        """A tick with no new entry writes nothing; final() after new entries writes one."""

        async def scenario() -> list[Checkpoint | None]:
            writer = LedgerWriter(ledger)
            checkpointer = Checkpointer(writer, signer)
            try:
                await writer.append("gap", {"n": 0})
                first = await checkpointer.checkpoint()
                second = await checkpointer.checkpoint()
                await writer.append("gap", {"n": 1})
                third = await checkpointer.final()
                return [first, second, third]
            finally:
                await writer.aclose()

        first, second, third = _run(scenario)
        assert first is not None
        assert second is None
        assert third is not None
        assert (first.seq, third.seq) == (1, 3)
        merkle.verify_consistency(
            first.tree_size,
            third.tree_size,
            first.root_hash,
            third.root_hash,
            ledger.consistency_proof(first.tree_size, third.tree_size),
        )

    def test_run_checkpoints_on_an_interval(self, ledger: SqlLedger, signer: NoteSigner) -> None:
        """run(interval) keeps writing checkpoints while entries arrive, until cancelled."""

        async def scenario() -> int:
            writer = LedgerWriter(ledger)
            written = asyncio.Event()
            seen: list[Checkpoint] = []

            def on_checkpoint(checkpoint: Checkpoint) -> None:
                seen.append(checkpoint)
                if len(seen) >= 3:
                    written.set()

            checkpointer = Checkpointer(writer, signer, on_checkpoint=on_checkpoint)
            task = asyncio.create_task(checkpointer.run(0.01))

            async def feed() -> None:
                n = 0
                while not written.is_set():
                    await writer.append("gap", {"n": n})
                    n += 1
                    await asyncio.sleep(0.002)

            await asyncio.wait_for(asyncio.gather(feed(), written.wait()), timeout=30)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await writer.aclose()
            return len(seen)

        assert _run(scenario) >= 3

    def test_refuses_to_sign_over_a_rewritten_history(
        self, ledger_url: str, signer: NoteSigner
    ) -> None:
        """If the stored tree no longer extends the last checkpoint, nothing more is signed."""
        from tests.postgres_fixture import bypass_sql

        ledger = open_ledger(ledger_url, vantage="paris-1")

        async def first() -> None:
            writer = LedgerWriter(ledger)
            try:
                for n in range(20):
                    await writer.append("gap", {"n": n})
                await Checkpointer(writer, signer).checkpoint()
                await writer.append("gap", {"n": 99})
            finally:
                await writer.aclose()

        _run(first)
        ledger.close()
        # Entry 17 is hashed from its stored leaf hash when the tree of 20 is rebuilt.
        forged = b'{"n":17,"seq":17,"type":"gap","x":1}'
        bypass_sql(
            ledger_url,
            [
                (
                    "UPDATE ledger_entries SET body = ?, leaf_hash = ? WHERE seq = 17",
                    [forged, merkle.leaf_hash(forged)],
                )
            ],
        )
        with pytest.raises(LedgerCorruptedError, match="Run `vigie verify`"):
            open_ledger(ledger_url, vantage="paris-1")
        reader = open_ledger(ledger_url, readonly=True)
        try:
            assert reader.size() == 22
        finally:
            reader.close()

    def test_default_copy_path(self, tmp_path: Path) -> None:
        """The copy sits beside a SQLite file, or beside the artifacts for PostgreSQL."""
        assert default_copy_path("sqlite:///var/ledger.db") == Path("var/ledger.db.checkpoints")
        assert default_copy_path("postgresql://h/db", tmp_path / "artifacts") == (
            tmp_path / "ledger.checkpoints"
        )
        assert default_copy_path("postgresql://h/db") is None

    def test_copy_ignores_a_torn_last_line(self, tmp_path: Path, signer: NoteSigner) -> None:
        """A crash mid-write leaves a partial line; reading skips it, appending closes it."""
        copy = CheckpointCopy(tmp_path / "c")
        note = signer.sign(checkpoint_text("paris-1", 1, merkle.leaf_hash(b"x")))
        checkpoint = Checkpoint.from_note(note, seq=1)
        copy.append(checkpoint)
        with copy.path.open("ab") as handle:
            handle.write(b'{"note": "paris-1\\n2')
        assert [c.seq for c in copy.read()] == [1]
        copy.append(checkpoint)
        assert [c.seq for c in copy.read()] == [1, 1]
        assert copy.skipped == [2]


class TestTimestamps:
    """RFC 3161 tokens over checkpoints, from the local test TSA."""

    def _scenario(
        self, ledger: SqlLedger, signer: NoteSigner, stamper: HttpTimestamper, steps: Any
    ) -> Any:
        async def scenario() -> Any:
            writer = LedgerWriter(ledger)
            checkpointer = Checkpointer(writer, signer, timestamper=stamper, tsa_name="local")
            try:
                return await steps(writer, checkpointer)
            finally:
                await writer.aclose()

        return asyncio.run(scenario())

    def test_checkpoint_is_timestamped_and_verified(
        self, ledger: SqlLedger, ledger_url: str, signer: NoteSigner, local_tsa: LocalTsa
    ) -> None:
        """A timestamp entry follows the checkpoint; verify checks the token with the TSA root."""
        stamper = HttpTimestamper(local_tsa.url, timeout=10, ca_pem=local_tsa.ca_pem)

        async def steps(writer: LedgerWriter, checkpointer: Checkpointer) -> None:
            await writer.append("gap", {"n": 1})
            await checkpointer.checkpoint()

        self._scenario(ledger, signer, stamper, steps)
        entry = json.loads(ledger.get(2))
        assert entry["type"] == TIMESTAMP
        assert entry["checkpoint_seq"] == 1
        assert entry["gen_time"].endswith("Z")
        report = verify_ledger(
            ledger_url, public_key=signer.verifier, tsa_certificates=[local_tsa.ca_pem]
        )
        assert report.ok, report.problem
        assert (report.checkpoints, report.timestamps) == (1, 1)

    @pytest.mark.parametrize("mode", ["http_500", "garbage", "reject"])
    def test_tsa_failure_is_recorded_then_retried(
        self,
        ledger: SqlLedger,
        ledger_url: str,
        signer: NoteSigner,
        local_tsa: LocalTsa,
        mode: Any,
    ) -> None:
        """A failing TSA leaves a tsa_failure entry; the next tick stamps the same checkpoint."""
        stamper = HttpTimestamper(local_tsa.url, timeout=10, ca_pem=local_tsa.ca_pem)

        async def steps(writer: LedgerWriter, checkpointer: Checkpointer) -> None:
            await writer.append("gap", {"n": 1})
            with local_tsa.failing(mode):
                await checkpointer.checkpoint()
            await checkpointer.checkpoint()  # nothing new: retries the stamp only

        self._scenario(ledger, signer, stamper, steps)
        types = [json.loads(body)["type"] for _, body in ledger.iter_entries()]
        assert types == ["gap", CHECKPOINT, TSA_FAILURE, TIMESTAMP]
        assert json.loads(ledger.get(3))["checkpoint_seq"] == 1
        report = verify_ledger(ledger_url, tsa_certificates=[local_tsa.ca_pem])
        assert report.ok, report.problem
        assert (report.timestamps, report.tsa_failures) == (1, 1)

    def test_a_hanging_tsa_never_blocks_appends(
        self, ledger: SqlLedger, signer: NoteSigner, local_tsa: LocalTsa
    ) -> None:
        """While the TSA hangs, observations keep being appended; the failure is then recorded."""
        stamper = HttpTimestamper(local_tsa.url, timeout=60, ca_pem=local_tsa.ca_pem)

        async def steps(writer: LedgerWriter, checkpointer: Checkpointer) -> int:
            await writer.append("gap", {"n": 0})
            with local_tsa.failing("hang"):  # the TSA holds the request until the block ends
                stamping = asyncio.create_task(checkpointer.checkpoint())
                while local_tsa.requests == before:
                    await asyncio.sleep(0.01)
                appended = [await writer.append("gap", {"n": n}) for n in range(1, 11)]
                assert not stamping.done()
            await stamping  # released: the connection closes, the failure is recorded
            return len(appended)

        before = local_tsa.requests
        assert self._scenario(ledger, signer, stamper, steps) == 10
        types = [json.loads(body)["type"] for _, body in ledger.iter_entries()]
        assert types.count("gap") == 11
        assert types[-1] == TSA_FAILURE


class TestServiceWiring:
    def test_service_with_a_tsa_stamps_its_checkpoints(
        self, tmp_path: Path, local_tsa: LocalTsa
    ) -> None:
        """`tsa_url` in vigie.yaml: the service's checkpoints get tokens and the metric moves."""
        ca = tmp_path / "tsa-ca.pem"
        ca.write_bytes(local_tsa.ca_pem)
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
        settings = Settings.model_validate(
            {
                "vantage": {"name": "paris-1"},
                "ledger": {"url": url, "artifacts": str(tmp_path / "artifacts")},
                "signing": {
                    "key": str(tmp_path / "vantage.key"),
                    "tsa_url": local_tsa.url,
                    "tsa_ca": str(ca),
                },
            }
        )
        metrics = Metrics(vantage="paris-1", version="test")

        async def scenario() -> None:
            evidence = await open_service_evidence(settings, metrics)
            await evidence.sink.append("gap", {"n": 1})
            await evidence.checkpointer.checkpoint()
            await evidence.aclose()

        asyncio.run(scenario())
        stamped = metrics.registry.get_sample_value("vigie_tsa_last_success_timestamp_seconds")
        assert stamped is not None
        assert stamped > 0
        report = verify_ledger(url, tsa_certificates=[local_tsa.ca_pem])
        assert report.ok, report.problem
        assert report.timestamps == 1


class TestKeygenCommand:
    """`vigie keygen` through argparse."""

    def _parse(self, argv: list[str], settings: Settings) -> argparse.Namespace:
        parser = argparse.ArgumentParser(prog="vigie")
        sub = parser.add_subparsers(dest="command", required=True)
        add_commands(sub, lambda path: settings)
        return parser.parse_args(argv)

    def test_keygen_writes_then_refuses(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """First run writes the key and prints the verifier key; the second exits 2."""
        settings = Settings(vantage={"name": "paris-1"}, signing={"key": tmp_path / "vantage.key"})
        args = self._parse(["keygen"], settings)
        assert args.handler(args) == 0
        out = capsys.readouterr().out
        assert "paris-1+" in out
        assert (tmp_path / "vantage.key").is_file()
        assert args.handler(args) == 2  # bad input: a key is there already
        assert "refusing to overwrite" in capsys.readouterr().err

    def test_keygen_prints_fingerprint_as_the_report(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """keygen prints the public key and the fingerprint the report prints; `--show` prints
        them again for the existing key; openssl recomputes the same from the .pub file."""
        import re
        import subprocess

        from evidence.report.render import _fingerprint

        key = tmp_path / "vantage.key"
        settings = Settings(vantage={"name": "paris-1"}, signing={"key": key})
        args = self._parse(["keygen"], settings)
        assert args.handler(args) == 0
        out = capsys.readouterr().out
        (printed,) = re.findall(r"key fingerprint \(SHA-256\): ([0-9A-F ]+)\n", out)
        (vkey,) = re.findall(r"verifier key .*: (\S+)\n", out)
        assert printed == _fingerprint(vkey)  # the report's own computation
        pem = out[out.index("-----BEGIN PUBLIC KEY-----") :]
        pem = pem[: pem.index("-----END PUBLIC KEY-----") + 24] + "\n"
        assert pem.encode() == (tmp_path / "vantage.key.pub").read_bytes()
        der = subprocess.run(
            [
                "openssl",
                "pkey",
                "-pubin",
                "-in",
                str(tmp_path / "vantage.key.pub"),
                "-outform",
                "DER",
            ],
            capture_output=True,
            check=True,
        ).stdout
        digest = hashlib.sha256(der[-32:]).hexdigest().upper()
        assert printed.replace(" ", "") == digest
        show = self._parse(["keygen", "--show"], settings)
        assert show.handler(show) == 0
        again = capsys.readouterr().out
        assert f"key fingerprint (SHA-256): {printed}\n" in again
        assert "written" not in again
        missing = self._parse(["keygen", "--show", "--out", str(tmp_path / "none")], settings)
        assert missing.handler(missing) == 2
        assert "no such key" in capsys.readouterr().err
        assert not (tmp_path / "none").exists()

    def test_keygen_out_and_config_option(self, tmp_path: Path) -> None:
        """--out overrides the configured path; --config is accepted after the command."""
        settings = Settings(signing={"key": tmp_path / "unused.key"})
        args = self._parse(
            ["keygen", "--config", str(tmp_path / "x.yaml"), "--out", str(tmp_path / "k")],
            settings,
        )
        assert args.config == tmp_path / "x.yaml"
        assert args.handler(args) == 0
        assert (tmp_path / "k").is_file()
        assert not (tmp_path / "unused.key").exists()
