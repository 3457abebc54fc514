"""Verification of an evidence bundle (`vigie verify FILE.zip`): every file, entry and proof.

It only reads the zip, streaming its members (memory stays bounded for a year of data), and
names the first failing file and entry; it never repairs or rewrites anything.

Why it is long: it checks every file of a bundle (manifest, signatures, proofs, CSV against
JSONL, timestamps, reviews) in one pass that names the first failure, check for check with the
stand-alone verify.py.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import hashlib
import itertools
import json
import queue
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from hashlib import sha256 as _sha256
from pathlib import Path
from typing import IO, Any

from config.vocabulary import REVIEW
from evidence.bundle.export import BUNDLE_FORMAT, aligned_ranges
from evidence.ledger import chain, merkle
from evidence.ledger.checkpoint import Checkpoint, CheckpointError
from evidence.ledger.der import DerError, read_tlv
from evidence.ledger.reviews import ReviewError, check_review
from evidence.ledger.signing import NoteError, NoteVerifier, open_note

__all__ = ["BundleReport", "print_bundle_report", "verify_bundle", "verify_bundle_cli"]

_SIGNATURE_FILES = ("manifest.json", "manifest.sig", "manifest.tsr")
_STREAMED = {
    "range": ("observations.jsonl", "proofs/hidden-leaves.bin"),
    "outage": ("observations.jsonl",),
}
_MALFORMED = (ValueError, KeyError, TypeError, IndexError, AttributeError, binascii.Error)


@dataclasses.dataclass(slots=True)
class BundleReport:
    """What `verify_bundle` checked, or the first problem (file and entry) it found."""

    source: str
    ok: bool = True
    error: str | None = None
    file: str | None = None
    entry: int | None = None
    vantage: str | None = None
    key: str | None = None
    key_trusted: bool = False
    files: int = 0
    entries: int = 0
    hidden: int = 0
    checkpoints: int = 0
    timestamps: int = 0
    warcs: int = 0
    artifacts: int = 0
    warnings: list[str] = dataclasses.field(default_factory=list)
    complete: list[str] = dataclasses.field(default_factory=list)  # targets proved complete
    tlog_proofs: int = 0  # C2SP tlog-proofs checked (outage bundles)
    cosigned_by: list[str] = dataclasses.field(default_factory=list)  # witnesses (policy)

    def fail(self, file: str | None, message: str, entry: int | None = None) -> None:
        """Record the first failure (later ones are ignored)."""
        if self.ok:
            self.ok = False
            self.file = file
            self.entry = entry
            self.error = message

    def summary(self) -> str:
        """One line for people."""
        if not self.ok:
            where = f" [{self.file}" + (f", entry {self.entry}" if self.entry is not None else "")
            return f"FAILED{where}]" + f": {self.error}" if self.file else f"FAILED: {self.error}"
        return (
            f"OK: {self.files} files, {self.entries} entries ({self.hidden} as hashes only), "
            f"{self.checkpoints} checkpoints, {self.timestamps} timestamps, "
            f"{self.artifacts} artifacts verified"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return dataclasses.asdict(self)


class _FailureError(Exception):
    def __init__(
        self,
        file: str | None,
        message: str,
        entry: int | None = None,
        *,
        span: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(message)
        self.file = file
        self.entry = entry
        self.span = span  # [first, stop) of the entries a checkpoint root mismatch points at


def verify_bundle(
    path: Path,
    *,
    public_key: NoteVerifier | None = None,
    tsa_certificates: Sequence[bytes] = (),
    witnesses: Sequence[str] = (),
    quorum: int = 0,
) -> BundleReport:
    """Verify the bundle at `path`; the report names the first failing file and entry.

    `public_key`: the vantage's key from an independent source (without it the key in the
    manifest is used and a warning says so). `tsa_certificates`: trusted TSA roots (default:
    the bundle's own ``proofs/tsa-ca.pem``, with a warning). `witnesses` (vkeys) and
    `quorum`: the witness policy, how many of those keys must have cosigned the checkpoint
    covering the bundle (evidence/cosignatures.py).
    """
    report = BundleReport(source=str(path))
    try:
        with zipfile.ZipFile(path) as zf:
            verifier = _Verifier(zf, report, public_key, tsa_certificates)
            verifier.witnesses, verifier.quorum = list(witnesses), quorum
            verifier.run()
    except _FailureError as exc:
        report.fail(exc.file, str(exc), exc.entry)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        report.fail(_file_in(str(exc)), f"the zip is damaged: {exc}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        report.fail(None, f"{type(exc).__name__}: {exc}")
    return report


def _file_in(message: str) -> str | None:
    if "'" in message:
        parts = message.split("'")
        if len(parts) >= 3:
            return parts[1]
    return None


class _Verifier:
    def __init__(
        self,
        zf: zipfile.ZipFile,
        report: BundleReport,
        public_key: NoteVerifier | None,
        tsa_certificates: Sequence[bytes],
    ) -> None:
        self.zf = zf
        self.report = report
        self.given_key = public_key
        self.tsa_certificates = list(tsa_certificates)
        self.names = {n for n in zf.namelist() if not n.endswith("/")}
        self.roots: dict[int, bytes] = {}
        self.completeness: chain.Completeness | None = None
        self.anchor: int | None = None  # outage mode: the tree size of the inclusion proofs
        self.shown: dict[int, bytes] = {}  # outage mode: entry lines by seq (tlog-proofs)
        self.witnesses: list[str] = []  # the witness policy: keys, and how many must cosign
        self.quorum = 0

    def read(self, name: str) -> bytes:
        if name not in self.names:
            raise _FailureError(name, "missing from the bundle")
        try:
            return self.zf.read(name)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise _FailureError(name, f"damaged in the zip: {exc}") from None

    def open(self, name: str) -> IO[bytes]:
        if name not in self.names:
            raise _FailureError(name, "missing from the bundle")
        return self.zf.open(name)

    def run(self) -> None:
        self.check_members()
        manifest, verifier = self.check_manifest()
        self.check_files(manifest)
        self.check_checkpoints(verifier)
        self.check_streamed(manifest)
        self.check_completeness(manifest)
        self.check_tlog_proofs(verifier)
        self.check_cosignatures()
        self.check_timestamps()
        self.check_artifacts(manifest)
        self.check_reviews(verifier)

    def check_reviews(self, verifier: NoteVerifier) -> None:
        """People's reviews of outages: signed by the vantage key over exactly their fields."""
        with self.open("observations.jsonl") as lines:
            for line in lines:
                if b'"type":"review"' not in line:
                    continue
                entry = json.loads(line)
                if entry.get("type") != REVIEW:
                    continue
                try:
                    check_review(entry, verifier)
                except ReviewError as exc:
                    raise _FailureError(
                        "observations.jsonl", f"review of an outage: {exc}", entry.get("seq")
                    ) from None

    def check_members(self) -> None:
        """Each name once, no folder entry holding data: a second copy of a file could be
        what an unzip tool shows while the verifier checked the other one."""
        seen: set[str] = set()
        for info in self.zf.infolist():
            name = info.filename
            if name in seen:
                raise _FailureError(
                    name, "appears twice in the zip (a second copy is not what was verified)"
                )
            seen.add(name)
            if name.endswith("/") and info.file_size:
                raise _FailureError(name, "a folder entry holding data")

    def check_manifest(self) -> tuple[dict[str, Any], NoteVerifier]:
        raw = self.read("manifest.json")
        try:
            manifest = json.loads(raw)
            recorded = NoteVerifier.parse(manifest["public_key"])
        except (*_MALFORMED, NoteError) as exc:
            raise _FailureError("manifest.json", f"unreadable: {exc}") from None
        if manifest.get("format") != BUNDLE_FORMAT:
            raise _FailureError("manifest.json", f"unknown format {manifest.get('format')!r}")
        _check_manifest_fields(manifest)
        verifier = self.given_key or recorded
        self.report.key = verifier.vkey()
        self.report.vantage = verifier.name
        self.report.key_trusted = self.given_key is not None
        if self.given_key is None:
            self.report.warnings.append(
                "signatures checked with the key the bundle carries: compare it with the "
                f"vantage's published key ({recorded.vkey()}) or pass --public-key"
            )
        elif self.given_key.vkey() != recorded.vkey():
            raise _FailureError(
                "manifest.json",
                f"names another key ({recorded.vkey()}) than the vantage key given "
                f"({self.given_key.vkey()})",
            )
        try:
            note = self.read("manifest.sig").decode("utf-8")
            _check_canonical_signatures(note)
            text = open_note(note, verifier)
        except (NoteError, UnicodeDecodeError) as exc:
            whose = "the vantage key" if self.given_key is not None else "the key it carries"
            raise _FailureError(
                "manifest.sig", f"not signed by {whose} ({verifier.vkey()}): {exc}"
            ) from None
        if text != f"{BUNDLE_FORMAT}\n{hashlib.sha256(raw).hexdigest()}\n":
            raise _FailureError("manifest.json", "changed after it was signed (hash mismatch)")
        tsa = manifest.get("tsa")
        declared = manifest.get("timestamp")
        if isinstance(declared, dict) and declared.get("token") is not None:
            if "manifest.tsr" not in self.names:
                raise _FailureError(
                    "manifest.tsr",
                    "missing: the signed manifest declares that the bundle carries this token",
                )
        elif isinstance(declared, dict):
            self.report.warnings.append(
                f"the manifest declares that the timestamp authority ({tsa}) failed at export: "
                f"{declared.get('error')} (the checkpoints' own tokens are not affected)"
            )
        elif tsa and "manifest.tsr" not in self.names:
            # Not a failure: a TSA down at export leaves a valid bundle without the token, and
            # the signed manifest cannot say whether the token was obtained (it is made after).
            self.report.warnings.append(
                f"the manifest names a timestamp authority ({tsa}) but the bundle holds no "
                "manifest.tsr: the manifest was not timestamped at export, or its token was "
                "removed (the checkpoints' own tokens are not affected)"
            )
        return manifest, verifier

    def check_files(self, manifest: dict[str, Any]) -> None:
        files: dict[str, dict[str, Any]] = manifest["files"]
        streamed = _STREAMED[manifest["mode"]]
        for name in sorted(files):
            if name in streamed:  # hashed by check_streamed, in the same pass as the proofs
                if name not in self.names:
                    raise _FailureError(name, "missing from the bundle")
                continue
            digest = hashlib.sha256()
            size = 0
            with self.open(name) as stream:
                try:
                    while block := stream.read(1 << 20):
                        digest.update(block)
                        size += len(block)
                except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                    raise _FailureError(name, f"damaged in the zip: {exc}") from None
            if digest.hexdigest() != files[name]["sha256"] or size != files[name]["size"]:
                raise _FailureError(name, "changed: its SHA-256 differs from the manifest's")
        extra = sorted(self.names - set(files) - set(_SIGNATURE_FILES))
        if extra:
            raise _FailureError(extra[0], "not listed in the signed manifest")
        self.report.files = len(files)

    def check_checkpoints(self, verifier: NoteVerifier) -> None:
        name = "proofs/checkpoints.jsonl"
        whose = "the vantage key" if self.given_key is not None else "the key the bundle carries"
        for line in self.read(name).splitlines():
            try:
                data = json.loads(line)
                checkpoint = Checkpoint.from_body(int(data["seq"]), data)
            except (*_MALFORMED, CheckpointError) as exc:
                raise _FailureError(name, f"checkpoint not valid: {exc}", _seq(line)) from None
            try:
                checkpoint.verify(verifier)
            except CheckpointError as exc:
                raise _FailureError(
                    name,
                    f"checkpoint not signed by {whose} ({verifier.vkey()}): {exc}",
                    _seq(line),
                ) from None
            if checkpoint.tree_size != checkpoint.seq:
                raise _FailureError(
                    name, "checkpoint tree size differs from its position", _seq(line)
                )
            note_file = f"proofs/checkpoints/{checkpoint.seq}.note"
            if note_file in self.names and self.read(note_file) != checkpoint.note.encode():
                raise _FailureError(note_file, "differs from the signed checkpoint")
            self.roots[checkpoint.tree_size] = checkpoint.root_hash
        self.report.checkpoints = len(self.roots)

    def check_streamed(self, manifest: dict[str, Any]) -> None:
        """Check the entries against the checkpoints: the tree over the range rebuilt from the
        entries (range mode), or each entry's inclusion proof (outage mode).

        observations.jsonl (and proofs/hidden-leaves.bin) are hashed in the same single pass
        (their manifest hashes are compared here, not in `check_files`); when the proofs do not
        hold, a file whose hash differs is named first, with the entry the proofs point at.
        """
        streams: dict[str, _HashedStream] = {}
        check = self._check_inclusions if manifest["mode"] == "outage" else self._check_range
        targets = manifest.get("targets") or []
        if manifest["mode"] == "outage" or targets:
            bounds = manifest.get("range") or {}
            self.completeness = chain.Completeness(
                [str(t) for t in targets], int(bounds.get("start", 0)), int(bounds.get("stop", 0))
            )
        try:
            try:
                check(streams)
            except _FailureError as failure:
                found = self._pinpoint(failure)
                self._check_streams(streams, manifest["files"], found.entry, str(found))
                raise found from None
            self._check_streams(streams, manifest["files"], None, "")
        finally:
            for stream in streams.values():
                stream.close()

    def _check_streams(
        self,
        streams: dict[str, _HashedStream],
        files: dict[str, dict[str, Any]],
        entry: int | None,
        sign: str,
    ) -> None:
        """Compare the streamed members with the manifest; `entry` and `sign`: where and how the
        proofs failed, if they did (the first sign of the change)."""
        for name, stream in streams.items():
            digest, size = stream.finish()
            if digest != files[name]["sha256"] or size != files[name]["size"]:
                detail = f" (first sign: {sign})" if sign else ""
                raise _FailureError(
                    name, f"changed: its SHA-256 differs from the manifest's{detail}", entry
                )

    def _pinpoint(self, failure: _FailureError) -> _FailureError:
        """A root mismatch names a checkpoint, not the entry: find the changed entry.

        The signed manifest vouches for observations.csv; the first entry of the span whose
        line disagrees with its CSV row is the one changed. A change the CSV does not show
        (environment, an outage event, entries swapped) stays reported at the checkpoint.
        """
        if failure.span is None:
            return failure
        first, stop = failure.span
        with contextlib.suppress(_FailureError, OSError, ValueError, zipfile.BadZipFile):
            found = _changed_entry(
                self.read("observations.csv"), self.open("observations.jsonl"), first, stop
            )
            if found is not None:
                seq, column = found
                return _FailureError(
                    "observations.jsonl",
                    f"entry {seq} changed: its {column}; {failure}",
                    seq,
                )
        return failure  # a change the CSV does not show: the checkpoint that caught it

    def _hashed(self, streams: dict[str, _HashedStream], name: str) -> _HashedStream:
        stream = streams[name] = _HashedStream(name, self.open(name))
        return stream

    def _check_range(self, streams: dict[str, _HashedStream]) -> None:
        name = "proofs/range.json"
        try:
            proof = json.loads(self.read(name))
            start, stop, hidden = int(proof["start"]), int(proof["stop"]), int(proof["hidden"])
            left = [(int(n["level"]), int(n["index"]), _hash(n["hash"])) for n in proof["left"]]
            closing = proof["closing"]
            end, right = -1, []
            if closing is not None:
                end = int(closing["seq"])
                right = [
                    (int(n["level"]), int(n["index"]), _hash(n["hash"])) for n in closing["right"]
                ]
            consistency = [
                (int(c["old"]), int(c["new"]), [_hash(h) for h in c["proof"]])
                for c in proof["consistency"]
            ]
        except _MALFORMED as exc:
            raise _FailureError(name, f"malformed: {type(exc).__name__}: {exc}") from None
        if not 0 <= start <= stop or hidden < 0:
            raise _FailureError(name, f"bad range {start} to {stop}")
        if [(level, index) for level, index, _ in left] != aligned_ranges(0, start):
            raise _FailureError(name, "the left subtrees do not decompose the prefix")
        tree = _RangeTree(self.roots, start, stop)
        for level, _index, node in left:
            tree.tree.push(level, node)
        if "proofs/hidden-leaves.bin" in self.names or hidden:
            tree.hidden = self._hashed(streams, "proofs/hidden-leaves.bin")
        entries = self._hashed(streams, "observations.jsonl")
        rest = b""
        feed = self.completeness.line if self.completeness is not None else None
        if self.completeness is not None:
            self.completeness.start, self.completeness.stop = start, stop
        for block in entries.blocks(1 << 22):
            lines = (rest + block).split(b"\n")
            rest = lines.pop()
            tree.lines(lines)
            if feed is not None:
                for line in lines:
                    feed(line)
        if rest:
            tree.lines([rest])
            if feed is not None:
                feed(rest)
        tree.gap(stop)
        if tree.hidden is not None and tree.hidden.read(1):
            raise _FailureError(
                "proofs/hidden-leaves.bin", "more leaf hashes than hidden entries", stop
            )
        tree.check_boundary()
        if tree.hidden_count != hidden:
            raise _FailureError(
                name, f"{hidden} hidden entries announced, {tree.hidden_count} in the range"
            )
        self.report.entries = tree.disclosed
        self.report.hidden = hidden
        if closing is not None:
            if [(level, index) for level, index, _ in right] != aligned_ranges(stop, end):
                raise _FailureError(name, "the right subtrees do not decompose the rest")
            for level, _index, node in right:
                tree.tree.push(level, node)
            if end not in self.roots or tree.tree.root() != self.roots[end]:
                first = tree.covered[-1] if tree.covered else start
                raise _FailureError(
                    "observations.jsonl",
                    f"entries {first} to {stop - 1} do not lead to the root of checkpoint {end}",
                    end,
                    span=(first, stop),
                )
            tree.covered.append(end)
        else:
            self.report.warnings.append(
                "no checkpoint after the last entry: the tail is covered by the checkpoints "
                "inside the period only"
            )
        if not tree.covered:
            raise _FailureError("proofs/checkpoints.jsonl", "no checkpoint covers the entries")
        for old, new, path in consistency:
            try:
                merkle.verify_consistency(old, new, self.roots[old], self.roots[new], path)
            except (merkle.ProofError, KeyError) as exc:
                raise _FailureError(
                    name, f"checkpoints {old} and {new} inconsistent: {exc}"
                ) from None

    def _check_inclusions(self, streams: dict[str, _HashedStream]) -> None:
        """Outage mode: line n of observations.jsonl is the entry proved by line n of
        proofs/inclusion.jsonl, in increasing order, one proof per entry."""
        name = "proofs/inclusion.jsonl"
        proofs = self.read(name).splitlines()
        lines = _lines(self._hashed(streams, "observations.jsonl"))
        previous = -1
        number = 0
        for number, (line, proof_line) in enumerate(itertools.zip_longest(lines, proofs), start=1):
            if proof_line is None:
                raise _FailureError(
                    "observations.jsonl",
                    f"line {number}: an entry without an inclusion proof",
                    previous + 1,
                )
            try:
                proof = json.loads(proof_line)
                seq, size = int(proof["seq"]), int(proof["tree_size"])
                path = [_hash(h) for h in proof["path"]]
            except _MALFORMED as exc:
                raise _FailureError(
                    name, f"line {number} is not an inclusion proof: {exc}"
                ) from None
            if seq <= previous:
                raise _FailureError(name, f"line {number}: proofs out of order", seq)
            previous = seq
            if size not in self.roots:
                raise _FailureError(
                    name,
                    f"entry {seq} proved in a tree of size {size}, signed by no checkpoint",
                    seq,
                )
            if line is None:
                raise _FailureError(
                    "observations.jsonl",
                    f"entry {seq} missing (proved by line {number} of {name})",
                    seq,
                )
            claimed = _seq(line)
            if claimed != seq:
                raise _FailureError(
                    "observations.jsonl",
                    f"line {number}: entry {claimed} where entry {seq} was expected",
                    seq,
                )
            try:
                merkle.verify_inclusion(merkle.leaf_hash(line), seq, size, path, self.roots[size])
            except merkle.ProofError as exc:
                raise _FailureError(
                    "observations.jsonl", f"entry {seq} changed: {exc}", seq
                ) from None
            self.shown[seq] = line
            if self.completeness is not None:
                self.completeness.line(line)
                self.completeness.stop = max(self.completeness.stop, seq + 1)
                self.anchor = size
        self.report.entries = number

    def check_cosignatures(self) -> None:
        """The witnesses' cosignatures of the checkpoint covering the bundle, by the policy."""
        from evidence.ledger import cosignatures
        from evidence.ledger.witness import CosignatureError

        name = "proofs/cosignatures.jsonl"
        keys = self.witnesses
        if not keys and "proofs/witnesses.txt" in self.names:
            keys = self.read("proofs/witnesses.txt").decode("utf-8", "replace").split()
            self.report.warnings.append(
                "witness keys taken from the bundle itself (proofs/witnesses.txt): give them "
                "from an independent source with --witness"
            )
        data = self.read(name) if name in self.names else b""
        notes = {}
        for line in self.read("proofs/checkpoints.jsonl").splitlines():
            point = json.loads(line)
            notes[int(point["tree_size"])] = str(point["note"])
        try:
            size, count, names = cosignatures.check(data, notes, keys)
        except (CosignatureError, *_MALFORMED) as exc:
            raise _FailureError(name, f"cosignature not valid: {exc}") from None
        self.report.cosigned_by = names
        if count < self.quorum:
            raise _FailureError(
                name if data else "proofs/checkpoints.jsonl",
                f"cosigned by {count} of the witnesses given, {self.quorum} required "
                "(witness policy): the checkpoint covering the entries was not seen by them",
                size if size >= 0 else None,
            )

    def check_tlog_proofs(self, verifier: NoteVerifier) -> None:
        """Each ``proofs/tlog/<seq>.tlog-proof`` (C2SP tlog-proof) proves its entry."""
        from evidence.ledger.tlog_proof import TlogProofError, parse_tlog_proof

        for name in sorted(n for n in self.names if n.startswith("proofs/tlog/")):
            stem = name.rsplit("/", 1)[1].removesuffix(".tlog-proof")
            seq = int(stem) if stem.isdigit() else None
            try:
                proof = parse_tlog_proof(self.read(name).decode("utf-8"))
            except (TlogProofError, UnicodeDecodeError) as exc:
                raise _FailureError(name, str(exc), seq) from None
            if seq is None or proof.index != seq or seq not in self.shown:
                raise _FailureError(name, "not the proof of an entry the bundle shows", seq)
            try:
                proof.verify(self.shown[seq], verifier)
            except TlogProofError as exc:
                raise _FailureError(name, str(exc), seq) from None
            self.report.tlog_proofs += 1

    def check_completeness(self, manifest: dict[str, Any]) -> None:
        """Every entry of the bundle's target(s) in its range is shown (evidence/chain.py)."""
        found = self.completeness
        if found is None:
            return
        if manifest["mode"] == "outage":
            found.targets = [str(o["target_id"]) for o in manifest.get("outages") or []]
            size = self.anchor
        else:
            closing = json.loads(self.read("proofs/range.json")).get("closing")
            size = None if closing is None else int(closing["seq"])
        notes = {}
        for line in self.read("proofs/checkpoints.jsonl").splitlines():
            data = json.loads(line)
            notes[int(data["tree_size"])] = str(data["note"])
        if size is None or size not in notes:
            self.report.warnings.append(
                "the completeness of the target's history cannot be proved yet: no checkpoint "
                "after the bundle's entries"
            )
            return
        after = self.read("proofs/chain.jsonl") if "proofs/chain.jsonl" in self.names else b""
        try:
            why = found.check(notes[size], self.roots[size], size, after)
        except chain.ChainError as exc:
            name = "proofs/chain.jsonl" if str(exc).startswith("proofs/") else "observations.jsonl"
            raise _FailureError(name, str(exc), exc.entry) from None
        if why is not None:
            self.report.warnings.append(why)
        else:
            self.report.complete = list(found.targets)

    def check_timestamps(self) -> None:
        from evidence.ledger.timestamp import TimestampError, verify_token, verify_token_signature

        tokens = sorted(n for n in self.names if n.startswith("proofs/timestamps/"))
        if "manifest.tsr" in self.names:
            tokens.append("manifest.tsr")
        if not tokens:
            return
        trusted = list(self.tsa_certificates)
        if not trusted and "proofs/tsa-ca.pem" in self.names:
            trusted = [self.read("proofs/tsa-ca.pem")]
            self.report.warnings.append(
                "TSA tokens chained to the root carried by the bundle (proofs/tsa-ca.pem): "
                "compare it with the TSA's published root or pass --tsa-cert"
            )
        extra = [self.read(n) for n in ("proofs/tsa-certificates.pem",) if n in self.names]
        if not trusted:
            self.report.warnings.append(
                "no TSA root: timestamp tokens checked for content and signature only"
            )
        for name in tokens:
            if name == "manifest.tsr":
                data_name = "manifest.json"
            else:
                data_name = f"proofs/checkpoints/{Path(name).stem}.note"
            data = self.read(data_name)
            token = self.read(name)
            try:
                _check_token_framing(token)
                if trusted:
                    # Only the roots are trust anchors: proofs/tsa-certificates.pem is bundle
                    # content (copies of the certificates the tokens embed), so trusting it
                    # would let whoever signs the bundle bring their own TSA.
                    verify_token(token, data, certificates=trusted)
                else:
                    verify_token_signature(token, data, certificates=extra)
            except _TokenFramingError as exc:
                raise _FailureError(name, f"timestamp token altered: {exc}") from None
            except TimestampError as exc:
                raise _FailureError(
                    name, f"timestamp token not valid for {data_name}: {exc}"
                ) from None
            except Exception as exc:  # noqa: BLE001 - a damaged token can fail in any parser
                raise _FailureError(
                    name, f"timestamp token not readable: {type(exc).__name__}: {exc}"
                ) from None
            self.report.timestamps += 1

    def check_artifacts(self, manifest: dict[str, Any]) -> None:
        names = sorted(n for n in manifest["files"] if n.startswith("artifacts/"))
        for name in names:
            data = self.read(name)
            if hashlib.sha256(data).hexdigest() != Path(name).name.split(".", 1)[0]:
                raise _FailureError(name, "its content does not hash to its name")
            if name.endswith((".warc", ".warc.gz")):
                self._check_warc(name, data)
        self.report.artifacts = len(names)

    def _check_warc(self, name: str, data: bytes) -> None:
        try:
            from warcio.archiveiterator import ArchiveIterator
        except ImportError:
            if not any("warcio" in w for w in self.report.warnings):
                self.report.warnings.append("warcio not installed: WARC digests not checked")
            return
        import io

        bad_digest = False
        try:
            for record in ArchiveIterator(io.BytesIO(data), check_digests=True):
                record.content_stream().read()
                checker = getattr(record, "digest_checker", None)
                if checker is not None and checker.passed is False:
                    bad_digest = True
                    break
        except Exception as exc:  # noqa: BLE001 - any parse error is a bad capture
            raise _FailureError(name, f"not a valid WARC file: {exc}") from None
        if bad_digest:
            raise _FailureError(name, "a WARC record digest does not match its content")
        self.report.warcs += 1


class _HashedStream:
    """A zip member read once: SHA-256 and size of what was read, for the manifest check."""

    def __init__(self, name: str, stream: IO[bytes]) -> None:
        self.name = name
        self.stream = stream
        self.sha = hashlib.sha256()
        self.size = 0
        self._reader: Callable[[], None] | None = None  # stops the read-ahead thread, if any

    def read(self, size: int) -> bytes:
        try:
            data = self.stream.read(size)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise _FailureError(self.name, f"damaged in the zip: {exc}") from None
        self.sha.update(data)
        self.size += len(data)
        return data

    def blocks(self, size: int) -> Iterator[bytes]:
        """The member in blocks, read ahead by a thread (zlib and hashlib release the GIL, so
        inflating and hashing overlap the caller's work). Stopping early is safe: the thread
        ends and `finish` reads on from where it stopped."""
        ahead: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=2)
        stop = threading.Event()

        def run() -> None:
            try:
                while not stop.is_set() and (block := self.read(size)):
                    ahead.put(block)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                ahead.put(exc)
            ahead.put(None)

        def halt() -> None:
            stop.set()
            while thread.is_alive():
                with contextlib.suppress(queue.Empty):
                    ahead.get(timeout=0.05)
            thread.join()
            self._reader = None

        thread = threading.Thread(target=run, name="bundle-reader", daemon=True)
        thread.start()
        self._reader = halt
        try:
            while (item := ahead.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            halt()

    def finish(self) -> tuple[str, int]:
        """Read what is left; (SHA-256 hex, size) of the whole member. Closes the member.

        A read-ahead thread still running (its consumer failed and was not closed yet) is
        stopped first, so the member is never read by two threads at once."""
        if self._reader is not None:
            self._reader()
        try:
            while self.read(1 << 22):
                pass
        finally:
            self.stream.close()
        return self.sha.hexdigest(), self.size

    def close(self) -> None:
        """Close the member (idempotent)."""
        self.stream.close()


class _RangeTree:
    """The Merkle tree over a bundle's range, fed entry lines in blocks.

    Leaf hashes are computed and reduced in bulk (`CompactTree.extend`); the tree's root is
    compared with every checkpoint of the range as soon as the tree reaches its size. Entries
    of other targets (a target filter) come from the hidden-leaves stream.
    """

    def __init__(self, roots: dict[int, bytes], start: int, stop: int) -> None:
        self.tree = merkle.CompactTree()
        self.roots = roots
        self.start = start
        self.seq = start
        self.stop = stop
        self.hidden_count = 0
        self.marks = sorted(size for size in roots if start <= size <= stop)
        self.mark = 0
        self.covered: list[int] = []
        self.disclosed = 0
        self.hidden: _HashedStream | None = None

    def lines(self, lines: list[bytes]) -> None:
        """Append a block of entry lines (a fast path when their seqs follow each other)."""
        first, count = self.seq, len(lines)
        # Fast path: the block starts and ends where expected (no hidden entry in between).
        # An entry moved inside the block cannot pass: the root at the next checkpoint differs.
        if (
            count
            and first + count <= self.stop
            and _seq(lines[0]) == first
            and _seq(lines[-1]) == first + count - 1
        ):
            self._extend([_sha256(b"\x00" + line).digest() for line in lines], first)
            self.disclosed += count
            return
        for line in lines:
            claimed = _seq(line)
            number = self.disclosed + 1
            if claimed is None:
                raise _FailureError(
                    "observations.jsonl", f"line {number} is not an entry", self.seq
                )
            if claimed >= self.stop:
                raise _FailureError(
                    "observations.jsonl",
                    f"line {number}: entry {claimed} is past the end of the range ({self.stop})",
                    self.seq,
                )
            self.gap(claimed)
            if claimed != self.seq:
                raise _FailureError(
                    "observations.jsonl",
                    f"line {number}: entry {claimed} out of place (entry {self.seq} expected)",
                    self.seq,
                )
            self._extend([merkle.leaf_hash(line)], claimed)
            self.disclosed += 1

    def gap(self, claimed: int) -> None:
        """Entries [seq, claimed) are hidden: take their leaf hashes from the hidden stream."""
        count = claimed - self.seq
        if count <= 0:
            return
        data = self.hidden.read(32 * count) if self.hidden is not None else b""
        got = len(data) // 32
        # the leaves read are added first: a checkpoint they reach is checked before the
        # shortage is reported (the entry named is then the checkpoint's)
        self._extend([data[i : i + 32] for i in range(0, 32 * got, 32)], self.seq)
        self.hidden_count += got
        if got != count:
            if self.hidden is None:  # a bundle of every entry: a line is missing
                raise _FailureError("observations.jsonl", f"entry {self.seq} missing", self.seq)
            raise _FailureError(
                "proofs/hidden-leaves.bin", "a hidden entry's hash is missing", self.seq
            )

    def _extend(self, leaves: list[bytes], first: int) -> None:
        if not leaves:
            return
        done = 0
        while done < len(leaves):
            self.check_boundary()
            size = self.tree.size
            limit = self.marks[self.mark] if self.mark < len(self.marks) else size + len(leaves)
            take = min(len(leaves) - done, max(limit - size, 1))
            self.tree.extend(leaves[done : done + take])
            done += take
        self.seq = first + len(leaves)

    def check_boundary(self) -> None:
        """Compare the root with the checkpoint whose size the tree has reached, if any."""
        size = self.tree.size
        while self.mark < len(self.marks) and self.marks[self.mark] <= size:
            mark = self.marks[self.mark]
            self.mark += 1
            if mark != size:
                continue
            if self.tree.root() != self.roots[mark]:
                first = self.covered[-1] if self.covered else self.start
                raise _FailureError(
                    "observations.jsonl",
                    f"entries {first} to {mark - 1} do not match the root of checkpoint {mark}",
                    mark,
                    span=(first, mark),
                )
            self.covered.append(mark)


def _check_canonical_signatures(note: str) -> None:
    """Signature lines in canonical base64: the padding bits of the last character are not
    part of the signature, so without this check 3 other spellings of it would verify too."""
    for line in note[note.rfind("\n\n") + 2 :].splitlines():
        encoded = line.rpartition(" ")[2]
        try:
            blob = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            continue  # open_note says what is wrong with it
        if base64.b64encode(blob).decode("ascii") != encoded:
            raise NoteError("a signature is not in canonical base64 (it was altered)")


class _TokenFramingError(ValueError):
    pass


def _der(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, first content byte, end) of the DER element at `pos`."""
    try:
        item = read_tlv(buf, pos, end)
    except DerError as exc:
        raise _TokenFramingError(str(exc)) from None
    return item.tag, item.body, item.end


def _der_children(buf: bytes, item: tuple[int, int, int]) -> list[tuple[int, int, int]]:
    children = []
    pos = item[1]
    while pos < item[2]:
        children.append(_der(buf, pos, item[2]))
        pos = children[-1][2]
    return children


def _check_token_framing(token: bytes) -> None:
    """The parts of an RFC 3161 reply that no signature covers must hold their only valid
    values (RFC 3161 §2.4.2, RFC 5652 §5): a plain `granted` status, SignedData version 3, one
    SignerInfo whose version matches its signer identifier (1: issuer and serial, 3: key id).
    Verifiers ignore these bytes; checked here, a change to them is not silently accepted."""
    top = _der(token, 0, len(token))
    if top[0] != 0x30 or top[2] != len(token):
        raise _TokenFramingError("not one DER SEQUENCE")
    parts = _der_children(token, top)
    if parts and parts[0][0] == 0x30:  # a TimeStampResp: status, then the token
        status = [(t, token[b:e]) for t, b, e in _der_children(token, parts[0])]
        if len(parts) != 2 or status != [(0x02, b"\x00")]:
            raise _TokenFramingError("the reply's status is not a plain 'granted'")
        parts = _der_children(token, parts[1])
    if len(parts) != 2 or parts[1][0] != 0xA0:
        raise _TokenFramingError("not a CMS ContentInfo")
    inner = _der_children(token, parts[1])
    if len(inner) != 1 or inner[0][0] != 0x30:
        raise _TokenFramingError("no SignedData")
    fields = _der_children(token, inner[0])
    if len(fields) < 4 or (fields[0][0], token[fields[0][1] : fields[0][2]]) != (0x02, b"\x03"):
        raise _TokenFramingError("the SignedData version is not 3")
    signers = _der_children(token, fields[-1])
    if fields[-1][0] != 0x31 or len(signers) != 1:
        raise _TokenFramingError("not exactly one SignerInfo")
    info = _der_children(token, signers[0])
    if len(info) < 2 or info[0][0] != 0x02:
        raise _TokenFramingError("the SignerInfo has no version")
    version = token[info[0][1] : info[0][2]]
    if (version, info[1][0]) not in ((b"\x01", 0x30), (b"\x03", 0x80)):
        raise _TokenFramingError("the SignerInfo version does not match its signer identifier")


def _csv_cells(entry: dict[str, Any]) -> dict[str, str]:
    """What observations.csv shows of an observation entry, as the export writes it."""
    started = str(entry.get("started_at") or "")
    artifacts = entry.get("artifacts") or {}
    status = entry.get("http_status")
    error = str(entry.get("error") or "").replace("\r", " ").replace("\n", " ")[:300]
    cells = {
        "cible": str(entry.get("target_id") or ""),
        "type_sonde": str(entry.get("kind") or ""),
        "succes": "oui" if entry.get("success") is True else "non",
        "resultat": str(entry.get("outcome") or ""),
        "statut_http": "" if status is None else str(status),
        "ip_distante": str(entry.get("remote_ip") or ""),
        "url_finale": str(entry.get("final_url") or ""),
        "erreur": error,
        "artefacts": " ".join(f"{k}:{sha}" for sha, k in sorted(artifacts.items())),
    }
    if started.endswith("Z"):
        cells["date_utc"] = started[:10] + " " + started[11:19]
    return cells


def _changed_entry(
    csv_bytes: bytes, entries: IO[bytes], first: int, stop: int
) -> tuple[int, str] | None:
    """(seq, column) of the first observation in [first, stop) whose line disagrees with its
    row of observations.csv, or None."""
    import csv
    import io

    rows = {
        row["seq"]: row
        for row in csv.DictReader(io.StringIO(csv_bytes.decode("utf-8-sig")), delimiter=";")
    }
    for line in entries:
        seq = _seq(line)
        if seq is None or not first <= seq < stop:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            return seq, "JSON text no longer parses"
        if entry.get("type") != "observation" or str(seq) not in rows:
            continue
        row = rows[str(seq)]
        for column, value in _csv_cells(entry).items():
            if row.get(column) != value:
                return seq, f"{column!r} differs from observations.csv ({row.get(column)!r})"
        duration = entry.get("duration_s")
        with contextlib.suppress(TypeError, ValueError, AttributeError):
            if abs(float(row["duree_s"].replace(",", ".")) - float(duration)) > 1e-6:
                return seq, f"'duree_s' differs from observations.csv ({row['duree_s']!r})"
    return None


def _lines(stream: _HashedStream) -> Iterator[bytes]:
    """The lines of a member (without their newline), read in blocks."""
    rest = b""
    for block in stream.blocks(1 << 22):
        lines = (rest + block).split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest


def _hash(text: Any) -> bytes:
    """A base64 SHA-256 hash from a proof (ValueError unless it is one)."""
    if not isinstance(text, str):
        raise TypeError(f"a hash is base64 text, not {type(text).__name__}")
    value = base64.b64decode(text, validate=True)
    if len(value) != merkle.HASH_SIZE:
        raise ValueError(f"a hash is {merkle.HASH_SIZE} bytes, not {len(value)}")
    return value


def _check_manifest_fields(manifest: Any) -> None:
    """The fields the verification relies on, with their types."""
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(name, str)
        and isinstance(item, dict)
        and isinstance(item.get("sha256"), str)
        and type(item.get("size")) is int
        for name, item in files.items()
    ):
        raise _FailureError("manifest.json", "its file list is malformed")
    if manifest.get("mode") not in _STREAMED:
        raise _FailureError("manifest.json", f"unknown mode {manifest.get('mode')!r}")
    missing = sorted({*_STREAMED[manifest["mode"]][:1], "proofs/checkpoints.jsonl"} - set(files))
    if missing:
        raise _FailureError(missing[0], "not listed in the signed manifest")


def _seq(body: bytes) -> int | None:
    """The top-level ``seq`` of a canonical JSON entry, read without parsing the whole entry."""
    at = body.find(b'"seq":')
    if at < 0:
        return None
    at += 6
    end = at
    while end < len(body) and 48 <= body[end] <= 57:
        end += 1
    return int(body[at:end]) if end > at else None


def _key_name(manifest: dict[str, Any]) -> str:
    """The name a PEM public key signs as: the log's origin, named by the manifest's vkey."""
    vkey = manifest.get("public_key")
    if isinstance(vkey, str) and "+" in vkey:
        return NoteVerifier.parse(vkey).name
    return str(manifest["vantage"])  # bundles whose manifest has no vkey: origin = vantage


def verify_bundle_cli(args: Any, path: Path) -> BundleReport | None:
    """`vigie verify FILE.zip` options (``--public-key``, ``--tsa-cert``) → the report.

    None (after a message on stderr) when the options cannot be used.
    """
    import sys

    from evidence.ledger.signing import SigningKeyError, load_public_key

    if not path.is_file():
        print(f"vigie verify: no bundle at {path}", file=sys.stderr)
        return None
    verifier: NoteVerifier | None = None
    if getattr(args, "public_key", None) is not None:
        key_path: Path = args.public_key
        try:
            text = key_path.read_text(encoding="utf-8").strip()
            if "+" in text and "BEGIN" not in text:
                verifier = NoteVerifier.parse(text)
            else:
                manifest = json.loads(zipfile.ZipFile(path).read("manifest.json"))
                verifier = NoteVerifier(_key_name(manifest), load_public_key(key_path))
        except OSError as exc:
            print(f"vigie verify: --public-key {key_path}: {exc.strerror or exc}", file=sys.stderr)
            return None
        except (ValueError, KeyError, NoteError, SigningKeyError, zipfile.BadZipFile) as exc:
            print(f"vigie verify: cannot use the public key {key_path}: {exc}", file=sys.stderr)
            return None
    try:
        certificates = [cert.read_bytes() for cert in getattr(args, "tsa_cert", [])]
    except OSError as exc:
        print(f"vigie verify: cannot read a TSA certificate: {exc}", file=sys.stderr)
        return None
    return verify_bundle(
        path,
        public_key=verifier,
        tsa_certificates=certificates,
        witnesses=list(getattr(args, "witness", None) or []),
        quorum=int(getattr(args, "witnesses_required", 0) or 0),
    )


def print_bundle_report(report: BundleReport, *, as_json: bool = False) -> None:
    """Print a bundle report for people (or as JSON)."""
    import sys

    if as_json:
        print(json.dumps(report.to_dict(), indent=2, sort_keys=True))
        return
    # The verdict of a failed verification is the one line on stderr; the rest is the report.
    print(f"{report.source}: {report.summary()}", file=sys.stdout if report.ok else sys.stderr)
    if report.ok and report.key:
        trust = "given key" if report.key_trusted else "key carried by the bundle"
        print(f"  signatures checked with the {trust}: {report.key}")
    for warning in report.warnings:
        print(f"  warning: {warning}")
