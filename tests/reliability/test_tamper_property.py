"""Tampering, property-based: hypothesis flips, deletes, inserts and reorders bytes and entries
of a real ledger the way an attacker with the SQLite file would (triggers dropped), and
`verify_ledger` must detect 100% of them and name the first bad entry.

Documented limit (evidence/README.md): entries after the last checkpoint are signed by nothing
yet, so a forger who also rewrites their leaf hashes there is out of reach; those examples
are drawn only where a checkpoint covers the entry.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.vocabulary import OBSERVATION
from evidence.ledger import merkle
from evidence.ledger.artifacts import FileArtifactStore
from evidence.ledger.backends import open_ledger
from evidence.ledger.checkpoint import CheckpointCopy, Checkpointer
from evidence.ledger.core import LedgerWriter, encode_entry
from evidence.ledger.signing import NoteSigner
from evidence.ledger.verify import verify_ledger
from tests.postgres_fixture import bypass_sql, rebuild_stored_tree, shift_seqs

ROUNDS = 3
PER_ROUND = 20
TAIL = 5
EXAMPLES = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=False,
)
STRIDE = 16  # entries under one stored tree node (STORED_LEVEL_STRIDE = 4 levels)


@dataclasses.dataclass(frozen=True)
class Pristine:
    """A clean ledger built once; each example tampers with a fresh copy of it."""

    directory: Path
    signer: NoteSigner
    size: int
    checkpoints: tuple[int, ...]
    bodies: tuple[bytes, ...]

    @property
    def covered(self) -> int:
        """Entries protected by a signed checkpoint (up to and including the last one)."""
        return self.checkpoints[-1] + 1

    def next_checkpoint(self, seq: int) -> int:
        """The first checkpoint at or after `seq`."""
        return next(c for c in self.checkpoints if c >= seq)

    @dataclasses.dataclass
    class Copy:
        url: str
        artifacts: Path
        copy: Path

    def copy(self, into: Path) -> Pristine.Copy:
        """A fresh copy of the ledger files in `into`."""
        shutil.copytree(self.directory, into, dirs_exist_ok=True)
        return Pristine.Copy(
            f"sqlite:///{into / 'ledger.db'}", into / "artifacts", into / "ledger.db.checkpoints"
        )

    def verify(self, copy: Pristine.Copy) -> Any:
        return verify_ledger(
            copy.url,
            public_key=self.signer.verifier,
            artifacts_dir=copy.artifacts,
            checkpoint_copy=copy.copy,
            workers=1,
        )


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    """Three checkpointed rounds of observations (some with artifacts) and an unsigned tail."""
    directory = tmp_path_factory.mktemp("pristine")
    signer = NoteSigner("paris-1", Ed25519PrivateKey.generate())
    store = FileArtifactStore(directory / "artifacts")
    ledger = open_ledger(f"sqlite:///{directory / 'ledger.db'}", vantage="paris-1")
    checkpoints: list[int] = []

    async def build() -> None:
        writer = LedgerWriter(ledger)
        checkpointer = Checkpointer(
            writer, signer, copy=CheckpointCopy(directory / "ledger.db.checkpoints")
        )
        n = 0
        for round_ in range(ROUNDS + 1):
            for _ in range(PER_ROUND if round_ < ROUNDS else TAIL):
                artifacts = {}
                if n % 7 == 3:
                    artifacts = {store.put(b"capture %d" % n, "screenshot"): "screenshot"}
                body = {
                    "target_id": "anef-accueil",
                    "outcome": "ok" if n % 5 else "timeout",
                    "success": bool(n % 5),
                    "started_at": f"2026-11-23T10:00:{n % 60:02d}.000000Z",
                    "artifacts": artifacts,
                    "n": n,
                }
                await writer.append(OBSERVATION, body)
                n += 1
            if round_ < ROUNDS:
                checkpoint = await checkpointer.checkpoint()
                assert checkpoint is not None
                assert checkpoint.seq is not None
                checkpoints.append(checkpoint.seq)
        await writer.aclose()

    try:
        asyncio.run(build())
        bodies = tuple(body for _, body in ledger.iter_entries())
    finally:
        ledger.close()
    return Pristine(directory, signer, len(bodies), tuple(checkpoints), bodies)


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A directory reused (emptied) by every example of one test."""
    with tempfile.TemporaryDirectory(prefix="vigie-tamper-") as name:
        yield Path(name)


def _fresh(pristine: Pristine, scratch: Path) -> Pristine.Copy:
    shutil.rmtree(scratch, ignore_errors=True)
    return pristine.copy(scratch)


DETECTED: dict[str, int] = {}


def _count(kind: str) -> None:
    DETECTED[kind] = DETECTED.get(kind, 0) + 1


@pytest.mark.slow
class TestTamperingIsAlwaysDetected:
    """Hypothesis draws the entry, the byte and the kind of change; verify must catch each."""

    @settings(EXAMPLES, max_examples=300)
    @given(data=st.data(), rehash=st.sampled_from(["none", "leaf", "tree"]))
    def test_flipped_byte(
        self, pristine: Pristine, scratch: Path, data: st.DataObject, rehash: str
    ) -> None:
        """A flipped byte in any entry is found: at the entry itself, at its 16-entry block when
        the forger rewrote its leaf hash, at the next checkpoint when the whole tree was rebuilt."""
        limit = pristine.size if rehash == "none" else pristine.covered
        seq = data.draw(st.integers(0, limit - 1), label="seq")
        body = bytearray(pristine.bodies[seq])
        pos = data.draw(st.integers(0, len(body) - 1), label="pos")
        body[pos] ^= data.draw(st.integers(1, 255), label="mask")
        forged = bytes(body)
        copy = _fresh(pristine, scratch)
        leaf = (
            merkle.leaf_hash(forged) if rehash != "none" else merkle.leaf_hash(pristine.bodies[seq])
        )
        bypass_sql(
            copy.url,
            [
                (
                    "UPDATE ledger_entries SET body = ?, leaf_hash = ? WHERE seq = ?",
                    [forged, leaf, seq],
                )
            ],
        )
        if rehash == "tree":
            rebuild_stored_tree(copy.url)
        report = pristine.verify(copy)
        assert not report.ok, (seq, pos, rehash)
        if rehash == "none":
            expected = seq
        elif rehash == "leaf":
            expected = seq - seq % STRIDE
        else:
            expected = pristine.next_checkpoint(seq)
        assert report.first_bad_seq is not None
        if rehash == "leaf":
            assert expected <= report.first_bad_seq <= seq, (seq, report.summary())
        elif rehash == "tree":
            # a changed checkpoint entry breaks its own signature or the next checkpoint's root
            # (a checkpoint entry's unsigned fields are covered by the following checkpoint)
            later = [c for c in pristine.checkpoints if c > seq]
            upper = later[0] if seq in pristine.checkpoints and later else expected
            assert seq <= report.first_bad_seq <= max(upper, seq), (seq, report.summary())
        else:
            assert report.first_bad_seq == expected, (seq, report.summary())
        _count(f"flip/{rehash}")

    @EXAMPLES
    @given(data=st.data(), renumber=st.booleans())
    def test_deleted_entry(
        self, pristine: Pristine, scratch: Path, data: st.DataObject, renumber: bool
    ) -> None:
        """A deleted entry (with or without renumbering the rest) is named."""
        seq = data.draw(st.integers(0, pristine.covered - 1), label="seq")
        copy = _fresh(pristine, scratch)
        statements: list[tuple[str, list[Any]]] = [
            ("DELETE FROM ledger_entries WHERE seq = ?", [seq])
        ]
        if renumber:
            statements += shift_seqs(seq + 1, -1)
        bypass_sql(copy.url, statements)
        report = pristine.verify(copy)
        assert not report.ok
        assert report.first_bad_seq == seq, (seq, renumber, report.summary())
        _count("delete")

    @EXAMPLES
    @given(data=st.data())
    def test_inserted_entry(self, pristine: Pristine, scratch: Path, data: st.DataObject) -> None:
        """A well-formed forged entry slipped in (the rest renumbered) shows where the log
        diverges: the entry after it."""
        seq = data.draw(st.integers(0, pristine.covered - 1), label="seq")
        forged = encode_entry(OBSERVATION, seq, {"target_id": "anef-accueil", "success": True})
        copy = _fresh(pristine, scratch)
        bypass_sql(
            copy.url,
            [
                *shift_seqs(seq, 1),
                (
                    "INSERT INTO ledger_entries (seq, type, body, leaf_hash) VALUES (?, ?, ?, ?)",
                    [seq, OBSERVATION, forged, merkle.leaf_hash(forged)],
                ),
            ],
        )
        report = pristine.verify(copy)
        assert not report.ok
        assert report.first_bad_seq is not None
        # the forged entry itself hashes right; the divergence is the next entry, or the
        # 16-entry block whose stored tree node no longer matches (named as "entries a to b")
        assert seq - seq % STRIDE <= report.first_bad_seq <= seq + 1, (seq, report.summary())
        _count("insert")

    @EXAMPLES
    @given(data=st.data())
    def test_reordered_entries(
        self, pristine: Pristine, scratch: Path, data: st.DataObject
    ) -> None:
        """Two entries swapped (anywhere, the unsigned tail included) are caught at the first."""
        first = data.draw(st.integers(0, pristine.size - 2), label="first")
        second = data.draw(st.integers(first + 1, pristine.size - 1), label="second")
        copy = _fresh(pristine, scratch)
        bypass_sql(
            copy.url,
            [
                ("UPDATE ledger_entries SET seq = 1000000 WHERE seq = ?", [first]),
                ("UPDATE ledger_entries SET seq = ? WHERE seq = ?", [first, second]),
                ("UPDATE ledger_entries SET seq = ? WHERE seq = 1000000", [second]),
            ],
        )
        report = pristine.verify(copy)
        assert not report.ok
        assert report.first_bad_seq == first, (first, second, report.summary())
        _count("reorder")

    @EXAMPLES
    @given(data=st.data())
    def test_truncated_bytes(self, pristine: Pristine, scratch: Path, data: st.DataObject) -> None:
        """An entry cut short or extended by a few bytes is named."""
        seq = data.draw(st.integers(0, pristine.size - 1), label="seq")
        body = pristine.bodies[seq]
        cut = data.draw(st.integers(0, len(body) - 1), label="cut")
        extra = data.draw(st.binary(min_size=0, max_size=8), label="extra")
        forged = body[:cut] + extra
        if forged == body:
            forged += b" "
        copy = _fresh(pristine, scratch)
        bypass_sql(copy.url, [("UPDATE ledger_entries SET body = ? WHERE seq = ?", [forged, seq])])
        report = pristine.verify(copy)
        assert not report.ok
        assert report.first_bad_seq == seq, (seq, report.summary())
        _count("resize")
