"""`verify_ledger`: prove a ledger unaltered, or name the first entry that is not.

It only reads (the database is opened read-only) and trusts nothing it has not recomputed:
every leaf, every tree root a checkpoint signs, every signature, timestamp and artifact.

How it is fast: the log is cut into aligned segments of 2^16 entries (smaller when there are
too few to share); each segment is read in small chunks (seq, body, leaf hash and, for the few
entries that are not observations, the type column), its leaves hashed in a tight loop from a
SHA-256 state already fed the 0x00 prefix, then its perfect subtrees level by level. Large
ledgers are shared by this process and `workers - 1` others (one per core by default), each
taking the next segment from a shared counter; segment roots are combined in order. Entries
are parsed as JSON only when needed: a checkpoint, timestamp or tsa_failure type column, a
body ending like a checkpoint or timestamp (canonical JSON puts "type" last in both, so one
hidden behind another type column is still found), a body naming artifacts (when they are
checked), and the unsigned tail after the last checkpoint: a checkpoint's root authenticates
every byte of the entries before it.

What it can and cannot detect is documented in evidence/README.md ("Limits").

Why it is long: `vigie verify` of a whole ledger runs in parallel segments and checks every
entry type (observations, checkpoints, timestamps, reviews, gaps) into one report.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import gc
import hashlib
import itertools
import json
import logging
import multiprocessing
import operator
import os
import queue
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from config.vocabulary import CHECKPOINT, OBSERVATION, REVIEW, TIMESTAMP, TSA_FAILURE
from evidence.ledger import merkle
from evidence.ledger.backends import open_ledger
from evidence.ledger.checkpoint import (
    Checkpoint,
    CheckpointCopy,
    CheckpointError,
    default_copy_path,
)
from evidence.ledger.core import STORED_LEVEL_STRIDE, SqlLedger
from evidence.ledger.entries import LedgerError
from evidence.ledger.reviews import ReviewError, check_review
from evidence.ledger.signing import NoteError, NoteVerifier, SigningKeyError, load_public_key
from evidence.ledger.sqlite import SqliteLedger

__all__ = ["SEGMENT_LEVEL", "VerifyError", "VerifyReport", "verify_ledger"]

log = structlog.get_logger("vigie.verify")

SEGMENT_LEVEL = 16  # segments of (at most) 65,536 entries
_MIN_SEGMENT_LEVEL = 12
_SEGMENTS_PER_PROCESS = 8  # below this many segments per process, segments are made smaller
_PARALLEL_MIN_SEGMENTS = 2  # full-size segments below which one process does it all
_SPECIAL = frozenset({CHECKPOINT, TIMESTAMP, TSA_FAILURE, REVIEW})
_sha256 = hashlib.sha256
_HEX = frozenset("0123456789abcdef")
_CHANGED = (
    "the entry was changed after it was written: its bytes no longer match the leaf hash "
    "stored with it"
)


class VerifyError(Exception):
    """Verification failed; `report` says where (first bad sequence number) and what."""

    def __init__(self, report: VerifyReport) -> None:
        super().__init__(report.summary())
        self.report = report


@dataclasses.dataclass
class VerifyReport:
    """What `verify_ledger` checked and the first problem it found (if any)."""

    source: str
    ok: bool = True
    entries: int = 0  # entries whose leaf hash was recomputed
    checkpoints: int = 0  # checkpoints whose root and signature verified
    timestamps: int = 0  # RFC 3161 tokens verified
    tsa_failures: int = 0  # recorded failures to get a timestamp
    reviews: int = 0  # signed outage reviews verified
    artifacts: int = 0  # artifact files whose SHA-256 was recomputed
    copied_checkpoints: int = 0  # checkpoints of the outside copy matched against the ledger
    first_bad_seq: int | None = None
    problem: str | None = None
    root: str | None = None  # hex MTH of every entry
    last_checkpoint_seq: int | None = None
    unsigned_tail: int = 0  # entries after the last checkpoint (protected by none yet)
    key: str | None = None  # verifier key the checkpoints were checked against
    key_trusted: bool = False  # False: the key recorded in the ledger itself was used
    warnings: list[str] = dataclasses.field(default_factory=list)
    elapsed_s: float = 0.0

    def fail(self, seq: int | None, problem: str) -> None:
        """Record the first problem (later ones are ignored)."""
        if self.ok:
            self.ok = False
            self.first_bad_seq = seq
            self.problem = problem

    def summary(self) -> str:
        """One line: what was verified, or the first bad entry and what is wrong with it."""
        if not self.ok:
            where = f"entry {self.first_bad_seq}" if self.first_bad_seq is not None else "ledger"
            return f"FAILED at {where}: {self.problem}"
        parts = [f"{self.entries} entries", f"{self.checkpoints} checkpoints"]
        if self.timestamps:
            parts.append(f"{self.timestamps} timestamps")
        if self.reviews:
            parts.append(f"{self.reviews} reviews")
        if self.artifacts:
            parts.append(f"{self.artifacts} artifacts")
        return "OK: " + ", ".join(parts) + " verified"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return dataclasses.asdict(self)

    def raise_for_problem(self) -> None:
        """Raise VerifyError unless the ledger verified."""
        if not self.ok:
            raise VerifyError(self)


# --------------------------------------------------------------------------------------------
# Segment scanning (in-process or in worker processes).


@dataclasses.dataclass(frozen=True, slots=True)
class _Job:
    url: str
    password: str | None
    start: int
    stop: int
    artifacts_dir: str | None


@dataclasses.dataclass(slots=True)
class _Special:
    seq: int
    type: str
    data: dict[str, Any]
    prefix: list[bytes]  # compact range of [segment start, seq)


@dataclasses.dataclass(slots=True)
class _SegmentResult:
    start: int
    stop: int  # one past the last entry hashed
    nodes: list[bytes]  # compact range of [start, stop)
    specials: list[_Special]
    problem: tuple[int, str] | None
    artifacts: int
    warnings: list[str]


def _claim(next_job: Any, total: int) -> int | None:
    """Take the next unscanned segment (shared by every process of a run), if any is left."""
    with next_job.get_lock():
        index = int(next_job.value)
        if index >= total:
            return None
        next_job.value = index + 1
        return index


def _worker(jobs: list[_Job], next_job: Any, results: Any) -> None:
    """A worker process: scan segments until none is left, sending (index, result) back.

    A segment it cannot scan is sent back as (index, None): the parent scans it itself.
    """
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    ledger: SqlLedger | None = None
    try:
        while (index := _claim(next_job, len(jobs))) is not None:
            try:
                if ledger is None:
                    job = jobs[index]
                    ledger = open_ledger(job.url, readonly=True, password=job.password, mmap=True)
                result = _scan(ledger, jobs[index])
            except Exception:  # noqa: BLE001 - the parent scans it and reports what fails
                results.put((index, None))
                return
            results.put((index, result))
    finally:
        if ledger is not None:
            ledger.close()


def _scan(ledger: SqlLedger, job: _Job) -> _SegmentResult:
    """Hash entries [start, stop), check their stored hashes, pick out what needs parsing.

    Works a chunk of rows at a time with C-level operations (a tight loop of hashlib calls
    for the hashes, one list comparison against the stored ones, `endswith` for the few
    entry kinds that must be parsed); per-row Python code runs only for rows needing it.
    The cyclic garbage collector is paused meanwhile: the rows are acyclic, and it would
    otherwise walk every live object again and again as they are allocated (~7%).
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        return _scan_segment(ledger, job)
    finally:
        if paused:
            gc.enable()


def _scan_segment(ledger: SqlLedger, job: _Job) -> _SegmentResult:
    start, expected = job.start, job.start
    leaves: list[bytes] = []
    parsed: list[tuple[int, str, dict[str, Any]]] = []
    problem: tuple[int, str] | None = None
    artifacts = 0
    artifacts_dir = Path(job.artifacts_dir) if job.artifacts_dir else None
    for seqs, rows in _scan_chunks(ledger, start, job.stop):
        count = len(rows)
        limit = count  # rows before the first problem of this chunk
        if seqs[0] != expected or seqs[-1] != expected + count - 1:
            index = next(i for i, seq in enumerate(seqs) if seq != expected + i)
            problem, limit = _seq_problem(expected + index, seqs[index]), index
        bodies = [row[0] for row in rows]
        try:
            hashes = merkle.leaf_hashes(bodies)
        except TypeError:  # a value of another type was written into the body column
            index = next(i for i, body in enumerate(bodies) if not isinstance(body, bytes))
            if index < limit:
                problem, limit = (seqs[index], "the entry is not stored as bytes"), index
            bodies = [body if isinstance(body, bytes) else b"" for body in bodies]
            hashes = merkle.leaf_hashes(bodies)
        stored = [row[1] for row in rows]
        if hashes != stored:
            index = next(i for i in range(count) if hashes[i] != stored[i])
            if index < limit:
                problem, limit = (seqs[index], _CHANGED), index
        for index in _flagged(rows, bodies, limit, artifacts=artifacts_dir is not None):
            seq, kind = seqs[index], rows[index][2]
            data, trouble = _parse_entry(seq, OBSERVATION if kind is None else kind, bodies[index])
            if data is not None and artifacts_dir is not None:
                names = data.get("artifacts")
                if isinstance(names, dict) and names:
                    checked, trouble = _check_artifacts(artifacts_dir, names)
                    artifacts += checked
            if trouble is not None:
                problem, limit = (seq, trouble), index
                break
            assert data is not None
            if data["type"] in _SPECIAL:
                parsed.append((seq, data["type"], data))
        if limit == count:
            leaves += hashes
        else:
            leaves += hashes[:limit]
        if problem is not None:
            break
        expected += count
    if problem is None and expected < job.stop:
        problem = (expected, f"entry {expected} is missing: the ledger ends at {expected - 1}")
    if problem is not None:
        # The entries just before, in a block no stored node covered yet, may be the first
        # bad ones (e.g. renumbered after a deletion): their content says so.
        low = max(start, problem[0] - problem[0] % (1 << STORED_LEVEL_STRIDE))
        if low < problem[0]:
            problem = _localise_range(ledger, (low, problem[0], problem[1]), default=problem)
    levels = merkle.perfect_levels(leaves) if leaves else [[]]
    node_problem = _check_stored_nodes(ledger, start, levels)
    if node_problem is not None and (problem is None or node_problem[0] <= problem[0]):
        problem = _localise_range(ledger, node_problem)
    specials = [
        _Special(seq, kind, data, merkle.prefix_nodes(levels, seq - start))
        for seq, kind, data in parsed
    ]
    return _SegmentResult(
        start=start,
        stop=start + len(leaves),
        nodes=merkle.prefix_nodes(levels, len(leaves)),
        specials=specials,
        problem=problem,
        artifacts=artifacts,
        warnings=[],
    )


# (body, leaf hash, type or None for an observation), values as stored.
_Row = tuple[bytes, bytes, object]


def _scan_chunks(
    ledger: SqlLedger, start: int, stop: int
) -> Iterator[tuple[Sequence[int], Sequence[_Row]]]:
    """(seqs, rows) of [start, stop) in chunks: the SQLite fast path, or any backend's rows."""
    if isinstance(ledger, SqliteLedger):
        yield from ledger.scan_chunks(start, stop)
        return
    for rows in ledger.row_chunks(start, stop):
        yield (
            [row[0] for row in rows],
            [(body, leaf, None if kind == OBSERVATION else kind) for _, kind, body, leaf in rows],
        )


# Canonical JSON sorts keys and "type" sorts after every other key of a checkpoint or a
# timestamp entry, so their bodies end like this: a body of either kind is parsed (and
# verified as such) even if its type column was changed to hide it.
_SPECIAL_ENDINGS = (
    b'"type":"checkpoint"}',
    b'"type":"timestamp"}',
    # A review's only key after "type" is "verdict": found even behind another type column.
    b'"type":"review","verdict":"confirmed"}',
    b'"type":"review","verdict":"dismissed"}',
)
_ARTIFACTS_MARKER = b'"artifacts":{"'  # an entry naming at least one artifact
_kind_of = operator.itemgetter(2)


def _flagged(
    rows: Sequence[_Row], bodies: Sequence[bytes], limit: int, *, artifacts: bool
) -> list[int]:
    """Indexes (below `limit`) of rows to parse: a special type column, a body ending like a
    checkpoint or timestamp, or (when artifacts are checked) a body naming artifacts."""
    if limit < len(rows):
        rows, bodies = rows[:limit], bodies[:limit]
    typed = itertools.compress(itertools.count(), map(_kind_of, rows))  # not observations
    flagged = [i for i in typed if rows[i][2] in _SPECIAL]
    ends = map(bytes.endswith, bodies, itertools.repeat(_SPECIAL_ENDINGS))
    flagged += itertools.compress(itertools.count(), ends)
    if artifacts:
        naming = map(operator.contains, bodies, itertools.repeat(_ARTIFACTS_MARKER))
        flagged += itertools.compress(itertools.count(), naming)
    return sorted(set(flagged))


def _localise_range(
    ledger: SqlLedger, problem: tuple[int, int, str], *, default: tuple[int, str] | None = None
) -> tuple[int, str]:
    """Blame the first entry of [low, high) whose own content betrays it, else the range."""
    low, high, text = problem
    for row in ledger.iter_rows(low, high):
        _, trouble = _parse_entry(row.seq, row.type, row.body)
        if trouble is not None:
            return (row.seq, trouble)
    return default if default is not None else (low, text)


def _seq_problem(expected: int, found: int) -> tuple[int, str]:
    if found > expected:
        missing = f"entries {expected} to {found - 1} are" if found - expected > 1 else "it is"
        return (expected, f"entry {expected} is missing ({missing} not in the ledger)")
    return (found, f"entry {found} appears again after entry {expected - 1}: out of order")


def _parse_entry(
    seq: int, column_type: object, body: bytes
) -> tuple[dict[str, Any] | None, str | None]:
    try:
        data = json.loads(body)
    except ValueError:
        return None, "the entry is not valid JSON"
    if not isinstance(data, dict):
        return None, "the entry is not a JSON object"
    if data.get("seq") != seq:
        return None, (
            f"the entry says it is entry {data.get('seq')!r}, but it sits at position {seq}: "
            "entries were removed, inserted or reordered"
        )
    if data.get("type") != column_type:
        return None, (
            f"the entry's type is {data.get('type')!r} but the database lists it as {column_type!r}"
        )
    return data, None


def _check_artifacts(directory: Path, artifacts: dict[str, Any]) -> tuple[int, str | None]:
    count = 0
    for sha, kind in sorted(artifacts.items()):
        if not isinstance(sha, str) or len(sha) != 64 or not _HEX.issuperset(sha):
            return count, f"names an artifact with a malformed digest {sha!r}"
        path = directory / sha[:2] / sha[2:4] / sha
        digest = _sha256()
        try:
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        except FileNotFoundError:
            return count, f"its {kind} artifact {sha} is missing from {directory}"
        except OSError as exc:
            return count, f"its {kind} artifact {sha} cannot be read: {exc}"
        if digest.hexdigest() != sha:
            return count, f"its {kind} artifact {sha} was altered (the file no longer hashes to it)"
        count += 1
    return count, None


def _check_stored_nodes(
    ledger: SqlLedger, start: int, levels: Sequence[Sequence[bytes]]
) -> tuple[int, int, str] | None:
    """Compare the stored interior nodes of a segment with the recomputed ones."""
    for level in range(STORED_LEVEL_STRIDE, len(levels), STORED_LEVEL_STRIDE):
        computed = levels[level]
        if not computed:
            continue
        first = start >> level
        stored = dict(ledger.stored_nodes(level, first, first + len(computed)))
        for offset, node in enumerate(computed):
            if stored.get(first + offset) != node:
                return _node_problem(level, first + offset, stored.get(first + offset))
    return None


def _node_problem(level: int, index: int, stored: bytes | None) -> tuple[int, int, str]:
    low = index << level
    high = low + (1 << level) - 1
    what = "is missing" if stored is None else "does not match them"
    text = (
        f"the tree node stored for entries {low} to {high} {what}: one of these entries was "
        "changed together with its stored leaf hash, or the stored tree was altered"
    )
    return (low, high + 1, text)


# --------------------------------------------------------------------------------------------
# The verifier.


class _Verifier:
    def __init__(
        self,
        ledger: SqlLedger,
        report: VerifyReport,
        *,
        trusted: Ed25519PublicKey | None,
        tsa_certificates: Sequence[bytes],
    ) -> None:
        self.ledger = ledger
        self.report = report
        self.trusted = trusted  # the vantage's public key, from outside the ledger
        self.origin: str | None = None  # the first checkpoint's origin: the log's name
        self.tsa_certificates = list(tsa_certificates)
        self.tree = merkle.CompactTree()
        self.recorded_key: str | None = None
        self.last_checkpoint: Checkpoint | None = None
        self.notes: dict[int, str] = {}
        self.verified: set[int] = set()  # seqs of the checkpoints verified
        self.warned_tsa_chain = False
        self.segment_level = SEGMENT_LEVEL  # nodes up to this level are checked by `_scan`

    def absorb(self, result: _SegmentResult) -> bool:
        """Process one segment in order; False once a problem is found."""
        report = self.report
        for special in result.specials:
            if result.problem is not None and special.seq > result.problem[0]:
                break
            if not self._special(special):
                return False
        if result.problem is not None:
            seq, text = result.problem
            report.entries = seq
            report.fail(seq, text)
            return False
        for node in result.nodes:  # the segment's compact range, highest level first
            level = (result.stop - self.tree.size).bit_length() - 1
            self.tree.push(level, node, self._parent_sink, STORED_LEVEL_STRIDE)
        report.entries = result.stop
        report.artifacts += result.artifacts
        report.warnings.extend(result.warnings)
        return report.ok

    def _parent_sink(self, level: int, index: int, node: bytes) -> None:
        if level <= self.segment_level or not self.report.ok:
            return
        stored = dict(self.ledger.stored_nodes(level, index, index + 1)).get(index)
        if stored != node:
            seq, text = _localise_range(self.ledger, _node_problem(level, index, stored))
            self.report.fail(seq, text)

    def _special(self, special: _Special) -> bool:
        if special.type == CHECKPOINT:
            return self._checkpoint(special)
        if special.type == TIMESTAMP:
            return self._timestamp(special)
        if special.type == TSA_FAILURE:
            self.report.tsa_failures += 1
        if special.type == REVIEW:
            return self._review(special)
        return True

    def _review(self, special: _Special) -> bool:
        """A review's signed note must match its fields and be signed by the vantage's key."""
        verifier = None
        try:
            if self.trusted is not None:
                declared = NoteVerifier.parse(str(special.data.get("key", "")))
                verifier = NoteVerifier(declared.name, self.trusted)
            elif self.recorded_key is not None:
                verifier = NoteVerifier.parse(self.recorded_key)
            check_review(special.data, verifier)
        except (ReviewError, NoteError) as exc:
            self.report.fail(special.seq, f"review of an outage: {exc}")
            return False
        self.report.reviews += 1
        return True

    def _checkpoint(self, special: _Special) -> bool:
        report = self.report
        seq = special.seq
        try:
            checkpoint = Checkpoint.from_body(seq, special.data)
        except CheckpointError as exc:
            report.fail(seq, f"malformed checkpoint: {exc}")
            return False
        if checkpoint.tree_size != seq:
            report.fail(
                seq,
                f"the checkpoint signs a tree of {checkpoint.tree_size} entries but sits at "
                f"position {seq} (it must cover exactly the entries before it)",
            )
            return False
        # A log keeps the origin of its first checkpoint for good (evidence/ledger/opening.py).
        if self.origin is None:
            self.origin = checkpoint.origin
        elif checkpoint.origin != self.origin:
            report.fail(seq, f"the checkpoint names log {checkpoint.origin!r}, not {self.origin!r}")
            return False
        root = merkle.fold_range([*self.tree.nodes, *special.prefix])
        if root != checkpoint.root_hash:
            self._localise(checkpoint)
            return False
        if not self._signature(checkpoint):
            return False
        report.checkpoints += 1
        report.last_checkpoint_seq = seq
        self.last_checkpoint = checkpoint
        self.notes[seq] = checkpoint.note
        self.verified.add(seq)
        if len(self.notes) > 4096:
            self.notes.pop(next(iter(self.notes)))
        return True

    def _signature(self, checkpoint: Checkpoint) -> bool:
        report = self.report
        seq = checkpoint.seq
        if self.trusted is not None:
            verifier = NoteVerifier(checkpoint.origin, self.trusted)
        else:
            try:
                verifier = checkpoint.recorded_verifier()
            except CheckpointError as exc:
                report.fail(seq, f"forged or malformed checkpoint: {exc}")
                return False
            if self.recorded_key is None:
                self.recorded_key = checkpoint.key
                report.key = checkpoint.key
            elif checkpoint.key != self.recorded_key:
                report.fail(
                    seq,
                    "the checkpoint is signed with another key than the earlier checkpoints "
                    f"({checkpoint.key} instead of {self.recorded_key}): forged checkpoint?",
                )
                return False
        try:
            checkpoint.verify(verifier)
        except CheckpointError as exc:
            report.fail(seq, f"forged checkpoint: {exc}")
            return False
        if checkpoint.key is not None and checkpoint.key != verifier.vkey():
            # The recorded key is not covered by the signature: it must name the signer.
            report.fail(
                seq,
                f"the checkpoint names the key {checkpoint.key} but is signed by "
                f"{verifier.vkey()}: altered entry",
            )
            return False
        return True

    def _localise(self, checkpoint: Checkpoint) -> None:
        """A checkpoint's root does not match: find the entry to blame if the bytes tell."""
        seq = checkpoint.seq
        assert seq is not None
        low = self.last_checkpoint.tree_size if self.last_checkpoint is not None else 0
        for row in self.ledger.iter_rows(low, seq):
            _, trouble = _parse_entry(row.seq, row.type, row.body)
            if trouble is not None:
                self.report.entries = row.seq
                self.report.fail(row.seq, trouble)
                return
        self.report.entries = seq
        self.report.fail(
            seq,
            f"the checkpoint's root does not match entries {low} to {seq - 1}: one of them was "
            "changed, removed, inserted or reordered (and the stored hashes were rewritten to "
            "hide it, so the exact entry cannot be named), or the checkpoint is forged",
        )

    def _timestamp(self, special: _Special) -> bool:
        report = self.report
        seq = special.seq
        target = special.data.get("checkpoint_seq")
        token_text = special.data.get("token")
        if not isinstance(target, int) or not isinstance(token_text, str) or target >= seq:
            report.fail(seq, "malformed timestamp entry (checkpoint_seq, token)")
            return False
        note = self.notes.get(target)
        if note is None:
            try:
                note = Checkpoint.from_entry(target, self.ledger.get(target)).note
            except (CheckpointError, IndexError):
                report.fail(seq, f"the timestamp refers to entry {target}, which is no checkpoint")
                return False
        try:
            token = base64.b64decode(token_text, validate=True)
        except binascii.Error:
            report.fail(seq, "the timestamp token is not base64")
            return False
        try:
            from evidence.ledger.timestamp import (
                TimestampError,
                verify_token,
                verify_token_signature,
            )
        except ImportError:  # pragma: no cover - ships with Vigie
            if not self.warned_tsa_chain:
                report.warnings.append("timestamp tokens present but cannot be checked here")
                self.warned_tsa_chain = True
            return True
        data = note.encode("utf-8")
        try:
            if self.tsa_certificates:
                verify_token(token, data, certificates=self.tsa_certificates)
            else:
                verify_token_signature(token, data)
                if not self.warned_tsa_chain:
                    report.warnings.append(
                        "timestamp tokens were checked (content and TSA signature) but not "
                        "chained to a trusted TSA root: pass the TSA's certificate to do so"
                    )
                    self.warned_tsa_chain = True
        except TimestampError as exc:
            report.fail(seq, f"the timestamp token of checkpoint {target} does not verify: {exc}")
            return False
        report.timestamps += 1
        return True

    def check_tail(self, size: int) -> None:
        """Check entries after the last checkpoint name their own position: no signature
        protects them yet, so a reordering there must show in their content."""
        start = self.last_checkpoint.tree_size + 1 if self.last_checkpoint is not None else 0
        self.report.unsigned_tail = max(size - start, 0)
        for rows in self.ledger.row_chunks(start, size):
            for seq, kind, body, _ in rows:
                marker = b'"seq":%d' % seq
                if marker + b"," in body or body.endswith(marker + b"}"):
                    continue
                _, trouble = _parse_entry(seq, kind, body)
                if trouble is not None:
                    self.report.fail(seq, trouble)
                    return

    def check_copy(self, copy: CheckpointCopy, size: int) -> None:
        """Match the outside copy of checkpoints against the ledger (catches a cut tail)."""
        report = self.report
        try:
            records = list(copy.read())
        except OSError as exc:
            report.warnings.append(f"the checkpoint copy {copy.path} is unreadable: {exc}")
            return
        if copy.skipped:
            report.warnings.append(
                f"{copy.path}: {len(copy.skipped)} line(s) are not checkpoint records (torn by "
                f"a crash?), e.g. line {copy.skipped[0]}"
            )
        recorded = NoteVerifier.parse(self.recorded_key) if self.recorded_key else None
        # The copy is written after each commit: re-read the size now, so a checkpoint the
        # service wrote while we were verifying is not mistaken for a cut-off tail.
        current = max(self.ledger.refresh(), size)
        for record in records:
            seq = record.seq
            assert seq is not None
            verifier = NoteVerifier(record.origin, self.trusted) if self.trusted else recorded
            if verifier is not None:
                try:
                    record.verify(verifier)
                except CheckpointError:
                    report.warnings.append(
                        f"{copy.path}: the copied checkpoint for entry {seq} is not signed by "
                        "the ledger's key; ignored"
                    )
                    continue
            if size <= seq < current:
                continue  # newer than what this run verified
            if seq >= size:
                report.fail(
                    size,
                    f"the ledger ends at entry {size - 1} but its checkpoint copy {copy.path} "
                    f"holds a checkpoint signed at entry {seq} (tree of {record.tree_size} "
                    "entries): the end of the ledger was cut off",
                )
                return
            try:
                stored = Checkpoint.from_entry(seq, self.ledger.get(seq))
            except (CheckpointError, IndexError):
                report.fail(seq, f"{copy.path} holds a checkpoint at entry {seq}; the ledger not")
                return
            if stored.note != record.note or stored.time != record.time:
                report.fail(seq, f"the checkpoint differs from its copy in {copy.path}")
                return
            if seq not in self.verified:
                report.fail(
                    seq,
                    f"{copy.path} holds a checkpoint at entry {seq} but the ledger does not list "
                    "that entry as one, so its root was never checked: hidden checkpoint?",
                )
                return
            report.copied_checkpoints += 1


def _trusted_key(
    public_key: Ed25519PublicKey | NoteVerifier | Path | bytes | None,
) -> Ed25519PublicKey | None:
    if public_key is None or isinstance(public_key, Ed25519PublicKey):
        return public_key
    if isinstance(public_key, NoteVerifier):
        return public_key.public_key
    if isinstance(public_key, Path):
        return load_public_key(public_key)
    try:
        return Ed25519PublicKey.from_public_bytes(public_key)
    except ValueError as exc:
        raise SigningKeyError("a raw Ed25519 public key is 32 bytes") from exc


def _origin_of(ledger: SqlLedger) -> str:
    """The name the vantage key signs as: the first checkpoint's origin (a broken one is found
    and named by the verification itself), else the vantage name."""
    try:
        origin = ledger.first_checkpoint_origin()
    except CheckpointError:
        origin = None
    return origin or ledger.vantage or "vantage"


def _segment_level(size: int, count: int) -> int:
    """Segments of 2^SEGMENT_LEVEL entries; smaller ones (down to 2^12) when there would be
    too few to keep `count` processes busy to the end."""
    level = SEGMENT_LEVEL
    while (
        count > 1 and level > _MIN_SEGMENT_LEVEL and size >> level < _SEGMENTS_PER_PROCESS * count
    ):
        level -= 1
    return level


def _segments(size: int, level: int) -> Iterator[tuple[int, int]]:
    width = 1 << level
    for start in range(0, size, width):
        yield start, min(start + width, size)


def verify_ledger(
    source: str | Path,
    *,
    public_key: Ed25519PublicKey | NoteVerifier | Path | bytes | None = None,
    artifacts_dir: Path | None = None,
    checkpoint_copy: Path | None = None,
    tsa_certificates: Sequence[bytes] = (),
    workers: int | None = None,
    password: str | None = None,
) -> VerifyReport:
    """Verify a ledger (URL or SQLite path) end to end; return what was checked and found.

    `public_key`: the vantage's key (a PEM/.pub file, a verifier key, raw bytes...); without
    it, checkpoints are checked against the key recorded in the ledger (a warning says so).
    `artifacts_dir`: check every artifact an entry names (skipped when None).
    `checkpoint_copy`: the outside copy of checkpoints (default: ``<db>.checkpoints`` for
    SQLite, when it exists). `tsa_certificates`: the TSA's root (PEM/DER) to chain tokens to.
    `workers`: processes for large ledgers (default: the CPU count; 1 = in-process).
    """
    began = time.monotonic()
    report = VerifyReport(source=str(source))
    try:
        ledger = open_ledger(source, readonly=True, password=password, mmap=True)
    except LedgerError as exc:
        report.fail(None, str(exc))
        return report
    verifier: _Verifier | None = None
    try:
        report.source = ledger.url
        size = ledger.size()
        trusted = _trusted_key(public_key)
        if trusted is not None:
            name = _origin_of(ledger)
            report.key = NoteVerifier(name, trusted).vkey()
            report.key_trusted = True
        verifier = _Verifier(ledger, report, trusted=trusted, tsa_certificates=tsa_certificates)
        url = str(source) if isinstance(source, Path) else source
        count = workers if workers is not None else (os.cpu_count() or 1)
        parallel = count > 1 and size >> SEGMENT_LEVEL >= _PARALLEL_MIN_SEGMENTS
        verifier.segment_level = _segment_level(size, count if parallel else 1)
        jobs = [
            _Job(url, password, start, stop, str(artifacts_dir) if artifacts_dir else None)
            for start, stop in _segments(size, verifier.segment_level)
        ]
        done = 0
        if parallel:
            done = _run_parallel(verifier, jobs, count)
        for job in jobs[done:]:
            if not verifier.absorb(_scan(verifier.ledger, job)):
                break
        if report.ok:
            report.root = verifier.tree.root().hex()
            verifier.check_tail(size)
        copy_path = checkpoint_copy or default_copy_path(url)
        if report.ok and copy_path is not None and copy_path.exists():
            verifier.check_copy(CheckpointCopy(copy_path), size)
        elif checkpoint_copy is not None and not checkpoint_copy.exists():
            report.warnings.append(f"no checkpoint copy at {checkpoint_copy}")
        if report.ok and size and not report.checkpoints:
            report.warnings.append("the ledger holds no checkpoint: nothing in it is signed")
        if report.ok and report.checkpoints and not report.key_trusted:
            report.warnings.append(
                "checkpoint signatures were checked against the key recorded in the ledger "
                "itself; pass the vantage's public key to rule out a ledger re-signed by "
                "someone else"
            )
        if report.ok and artifacts_dir is None:
            report.warnings.append("artifacts were not checked (no artifacts directory given)")
    except SigningKeyError as exc:
        report.fail(None, str(exc))
    finally:
        ledger.close()
        if verifier is not None and verifier.ledger is not ledger:
            verifier.ledger.close()  # reopened after forking the workers
    report.elapsed_s = round(time.monotonic() - began, 3)
    log.info(
        "ledger_verified",
        source=report.source,
        ok=report.ok,
        entries=report.entries,
        checkpoints=report.checkpoints,
        first_bad_seq=report.first_bad_seq,
        elapsed_s=report.elapsed_s,
    )
    return report


def _start_method(ledger: SqlLedger) -> str:
    """How to start workers: fork (instant) for SQLite in a single-threaded process on Linux;
    otherwise spawn (a fresh interpreter that re-imports the program: ~0.3-1 s per worker)."""
    if (
        sys.platform == "linux"
        and isinstance(ledger, SqliteLedger)
        and threading.active_count() == 1
        and "fork" in multiprocessing.get_all_start_methods()
    ):
        return "fork"
    return "spawn"


def _run_parallel(verifier: _Verifier, jobs: list[_Job], count: int) -> int:
    """Scan segments in this process and `count - 1` worker processes; absorb them in order.

    Every process takes the next unscanned segment from a shared counter, so the work stays
    balanced and this process scans from the first moment (spawning workers takes a fraction
    of a second). Results are small (a compact range and the parsed checkpoints), kept until
    their turn. Returns how many jobs were absorbed: all of them, fewer after a problem, or
    where the workers failed (the caller then goes on in-process: a broken worker never
    fails verification).
    """
    method = _start_method(verifier.ledger)
    context = (
        multiprocessing.get_context("fork")
        if method == "fork"
        else multiprocessing.get_context("spawn")
    )
    next_job = context.Value("q", 0)
    results = context.Queue()
    log.info("verify_parallel", workers=count, segments=len(jobs), start_method=method)
    processes = [
        context.Process(target=_worker, args=(jobs, next_job, results), daemon=True)
        for _ in range(count - 1)
    ]
    done: dict[int, _SegmentResult | None] = {}
    index = 0
    try:
        if method == "fork":
            # SQLite connections must not cross a fork() (its locks are per process): ours is
            # closed while the workers start, and the ledger reopened (it is only read).
            verifier.ledger.close()
            try:
                for process in processes:
                    process.start()
            finally:
                job = jobs[0]
                verifier.ledger = open_ledger(
                    job.url, readonly=True, password=job.password, mmap=True
                )
        else:
            for process in processes:
                process.start()
        while index < len(jobs):
            while True:  # collect what the workers have finished, without waiting
                try:
                    finished, result = results.get_nowait()
                except queue.Empty:
                    break
                done[finished] = result
            if index in done:
                result = done.pop(index)
                if result is None:  # the worker could not scan it
                    result = _scan(verifier.ledger, jobs[index])
                if not verifier.absorb(result):
                    return len(jobs)
                index += 1
                continue
            mine = _claim(next_job, len(jobs))
            if mine is not None:
                done[mine] = _scan(verifier.ledger, jobs[mine])
                continue
            try:  # every segment is taken: wait for the one to absorb next
                finished, result = results.get(timeout=0.5)
            except queue.Empty:
                if not any(process.is_alive() for process in processes):
                    raise OSError("a worker process ended without its result") from None
                continue
            done[finished] = result
    except OSError as exc:
        log.warning("verify_workers_failed", error=str(exc), continuing_at_job=index)
        return index
    finally:
        with next_job.get_lock():
            next_job.value = len(jobs)  # workers take nothing more
        # Every result needed is in (or no longer needed): a worker still starting up or
        # scanning past a problem is stopped rather than waited for (it only reads).
        for process in processes:
            if process.pid is not None:
                process.terminate()
                process.join()
        results.close()
    return len(jobs)
