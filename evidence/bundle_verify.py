"""Verification of an evidence bundle (`vigie verify FILE.zip`): every file, entry and proof.

It only reads the zip, streaming its members (memory stays bounded for a year of data), and
names the first failing file and entry; it never repairs or rewrites anything.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import queue
import threading
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from hashlib import sha256 as _sha256
from pathlib import Path
from typing import IO, Any

from evidence import merkle
from evidence.bundle import BUNDLE_FORMAT, aligned_ranges
from evidence.checkpoint import Checkpoint, CheckpointError
from evidence.signing import NoteError, NoteVerifier, open_note

__all__ = ["BundleReport", "print_bundle_report", "verify_bundle", "verify_bundle_cli"]

_SIGNATURE_FILES = ("manifest.json", "manifest.sig", "manifest.tsr")
_STREAMED = ("observations.jsonl", "proofs/hidden-leaves.bin")


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
    def __init__(self, file: str | None, message: str, entry: int | None = None) -> None:
        super().__init__(message)
        self.file = file
        self.entry = entry


def verify_bundle(
    path: Path,
    *,
    public_key: NoteVerifier | None = None,
    tsa_certificates: Sequence[bytes] = (),
) -> BundleReport:
    """Verify the bundle at `path`; the report names the first failing file and entry.

    `public_key`: the vantage's key from an independent source (without it the key in the
    manifest is used and a warning says so). `tsa_certificates`: trusted TSA roots (default:
    the bundle's own ``proofs/tsa-ca.pem``, with a warning).
    """
    report = BundleReport(source=str(path))
    try:
        with zipfile.ZipFile(path) as zf:
            _Verifier(zf, report, public_key, tsa_certificates).run()
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
        manifest, verifier = self.check_manifest()
        self.check_files(manifest)
        self.check_checkpoints(verifier)
        if manifest.get("mode") == "outage":
            self.check_inclusions()
        else:
            self.check_range(manifest["files"])
        self.check_timestamps()
        self.check_artifacts(manifest)

    def check_manifest(self) -> tuple[dict[str, Any], NoteVerifier]:
        raw = self.read("manifest.json")
        try:
            manifest = json.loads(raw)
            recorded = NoteVerifier.parse(manifest["public_key"])
        except (ValueError, KeyError, NoteError) as exc:
            raise _FailureError("manifest.json", f"unreadable: {exc}") from None
        if manifest.get("format") != BUNDLE_FORMAT:
            raise _FailureError("manifest.json", f"unknown format {manifest.get('format')!r}")
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
            raise _FailureError("manifest.json", "names another key than the one given")
        try:
            text = open_note(self.read("manifest.sig").decode("utf-8"), verifier)
        except (NoteError, UnicodeDecodeError) as exc:
            raise _FailureError("manifest.sig", f"bad signature: {exc}") from None
        if text != f"{BUNDLE_FORMAT}\n{hashlib.sha256(raw).hexdigest()}\n":
            raise _FailureError("manifest.json", "changed after it was signed (hash mismatch)")
        return manifest, verifier

    def check_files(self, manifest: dict[str, Any]) -> None:
        files: dict[str, dict[str, Any]] = manifest["files"]
        streamed = _STREAMED if manifest.get("mode") != "outage" else ()
        for name in sorted(files):
            if name in streamed:  # hashed by check_range, in the same pass as the tree
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
        for line in self.read(name).splitlines():
            try:
                data = json.loads(line)
                checkpoint = Checkpoint.from_body(int(data["seq"]), data)
                checkpoint.verify(verifier)
            except (ValueError, KeyError, CheckpointError) as exc:
                raise _FailureError(name, f"checkpoint not valid: {exc}", _seq(line)) from None
            if checkpoint.tree_size != checkpoint.seq:
                raise _FailureError(
                    name, "checkpoint tree size differs from its position", _seq(line)
                )
            note_file = f"proofs/checkpoints/{checkpoint.seq}.note"
            if note_file in self.names and self.read(note_file).decode() != checkpoint.note:
                raise _FailureError(note_file, "differs from the signed checkpoint")
            self.roots[checkpoint.tree_size] = checkpoint.root_hash
        self.report.checkpoints = len(self.roots)

    def check_range(self, files: dict[str, dict[str, Any]]) -> None:
        """Rebuild the tree over the range from the entries; each covering root must match.

        observations.jsonl and proofs/hidden-leaves.bin are hashed in the same single pass
        (their manifest hashes are compared here, not in `check_files`); when the tree does not
        match, a file whose hash differs is named first.
        """
        streams: dict[str, _HashedStream] = {}
        try:
            try:
                self._check_range(streams)
            except _FailureError as failure:
                self._check_streams(streams, files, failure.entry)
                raise
            self._check_streams(streams, files, None)
        finally:
            for stream in streams.values():
                stream.close()

    def _check_streams(
        self, streams: dict[str, _HashedStream], files: dict[str, dict[str, Any]], entry: int | None
    ) -> None:
        for name, stream in streams.items():
            digest, size = stream.finish()
            if digest != files[name]["sha256"] or size != files[name]["size"]:
                raise _FailureError(name, "changed: its SHA-256 differs from the manifest's", entry)

    def _hashed(self, streams: dict[str, _HashedStream], name: str) -> _HashedStream:
        stream = streams[name] = _HashedStream(name, self.open(name))
        return stream

    def _check_range(self, streams: dict[str, _HashedStream]) -> None:
        proof = json.loads(self.read("proofs/range.json"))
        start, stop = int(proof["start"]), int(proof["stop"])
        left = [(n["level"], n["index"]) for n in proof["left"]]
        if left != aligned_ranges(0, start):
            raise _FailureError(
                "proofs/range.json", "the left subtrees do not decompose the prefix"
            )
        tree = _RangeTree(self.roots, start, stop)
        for node in proof["left"]:
            tree.tree.push(node["level"], base64.b64decode(node["hash"]))
        if "proofs/hidden-leaves.bin" in self.names or proof["hidden"]:
            tree.hidden = self._hashed(streams, "proofs/hidden-leaves.bin")
        entries = self._hashed(streams, "observations.jsonl")
        rest = b""
        for block in entries.blocks(1 << 22):
            lines = (rest + block).split(b"\n")
            rest = lines.pop()
            tree.lines(lines)
        if rest:
            tree.lines([rest])
        tree.gap(stop)
        if tree.hidden is not None and tree.hidden.read(1):
            raise _FailureError("proofs/hidden-leaves.bin", "more leaf hashes than hidden entries")
        tree.check_boundary()
        self.report.entries = tree.disclosed
        self.report.hidden = int(proof["hidden"])
        closing = proof.get("closing")
        if closing is not None:
            end = int(closing["seq"])
            right = [(n["level"], n["index"]) for n in closing["right"]]
            if right != aligned_ranges(stop, end):
                raise _FailureError(
                    "proofs/range.json", "the right subtrees do not decompose the rest"
                )
            for node in closing["right"]:
                tree.tree.push(node["level"], base64.b64decode(node["hash"]))
            if end not in self.roots or tree.tree.root() != self.roots[end]:
                raise _FailureError(
                    "observations.jsonl",
                    f"entries {start} to {stop - 1} do not lead to the root of checkpoint {end}",
                    start,
                )
            tree.covered.append(end)
        else:
            self.report.warnings.append(
                "no checkpoint after the last entry: the tail is covered by the checkpoints "
                "inside the period only"
            )
        if not tree.covered:
            raise _FailureError("proofs/checkpoints.jsonl", "no checkpoint covers the entries")
        for item in proof["consistency"]:
            old, new = int(item["old"]), int(item["new"])
            try:
                merkle.verify_consistency(
                    old,
                    new,
                    self.roots[old],
                    self.roots[new],
                    [base64.b64decode(h) for h in item["proof"]],
                )
            except (merkle.ProofError, KeyError) as exc:
                raise _FailureError(
                    "proofs/range.json", f"checkpoints {old} and {new} inconsistent: {exc}"
                ) from None

    def check_inclusions(self) -> None:
        proofs = self.read("proofs/inclusion.jsonl").splitlines()
        with self.open("observations.jsonl") as lines:
            count = 0
            for line, proof_line in zip(lines, proofs, strict=False):
                body = line[:-1] if line.endswith(b"\n") else line
                proof = json.loads(proof_line)
                seq, size = int(proof["seq"]), int(proof["tree_size"])
                if _seq(body) != seq or size not in self.roots:
                    raise _FailureError("observations.jsonl", "entry without a valid proof", seq)
                try:
                    merkle.verify_inclusion(
                        merkle.leaf_hash(body),
                        seq,
                        size,
                        [base64.b64decode(h) for h in proof["path"]],
                        self.roots[size],
                    )
                except merkle.ProofError as exc:
                    raise _FailureError("observations.jsonl", f"changed: {exc}", seq) from None
                count += 1
        if count != len(proofs):
            raise _FailureError("proofs/inclusion.jsonl", "one proof per entry expected")
        self.report.entries = count

    def check_timestamps(self) -> None:
        from evidence.timestamp import TimestampError, verify_token, verify_token_signature

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
            try:
                if trusted:
                    verify_token(self.read(name), data, certificates=[*trusted, *extra])
                else:
                    verify_token_signature(self.read(name), data, certificates=extra)
            except TimestampError as exc:
                raise _FailureError(
                    name, f"timestamp token not valid for {data_name}: {exc}"
                ) from None
            self.report.timestamps += 1

    def check_artifacts(self, manifest: dict[str, Any]) -> None:
        names = sorted(n for n in manifest["files"] if n.startswith("artifacts/"))
        for name in names:
            data = self.read(name)
            if hashlib.sha256(data).hexdigest() != Path(name).name.split(".", 1)[0]:
                raise _FailureError(name, "its content does not hash to its name")
            if ".warc" in name:
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

        thread = threading.Thread(target=run, name="bundle-reader", daemon=True)
        thread.start()
        try:
            while (item := ahead.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while thread.is_alive():
                with contextlib.suppress(queue.Empty):
                    ahead.get(timeout=0.05)
            thread.join()

    def finish(self) -> tuple[str, int]:
        """Read what is left; (SHA-256 hex, size) of the whole member. Closes the member."""
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
        self.seq = start
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
        if count and _seq(lines[0]) == first and _seq(lines[-1]) == first + count - 1:
            self._extend([_sha256(b"\x00" + line).digest() for line in lines], first)
            self.disclosed += count
            return
        for line in lines:
            claimed = _seq(line)
            if claimed is None:
                raise _FailureError(
                    "observations.jsonl", f"line {self.disclosed + 1} is not an entry"
                )
            self.gap(claimed)
            if claimed != self.seq:
                raise _FailureError(
                    "observations.jsonl", f"entry out of place (expected {self.seq})", claimed
                )
            self._extend([merkle.leaf_hash(line)], claimed)
            self.disclosed += 1

    def gap(self, claimed: int) -> None:
        """Entries [seq, claimed) are hidden: take their leaf hashes from the hidden stream."""
        count = claimed - self.seq
        if count <= 0:
            return
        data = self.hidden.read(32 * count) if self.hidden is not None else b""
        if len(data) != 32 * count:
            raise _FailureError(
                "proofs/hidden-leaves.bin",
                "a hidden entry's hash is missing",
                self.seq + len(data) // 32,
            )
        self._extend([data[i : i + 32] for i in range(0, len(data), 32)], self.seq)

    def _extend(self, leaves: list[bytes], first: int) -> None:
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
                raise _FailureError(
                    "observations.jsonl",
                    f"the entries before checkpoint {mark} do not match its root",
                    mark,
                )
            self.covered.append(mark)


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


def verify_bundle_cli(args: Any, path: Path) -> BundleReport | None:
    """`vigie verify FILE.zip` options (``--public-key``, ``--tsa-cert``) → the report.

    None (after a message on stderr) when the options cannot be used.
    """
    import sys

    from evidence.signing import SigningKeyError, load_public_key

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
                verifier = NoteVerifier(str(manifest["vantage"]), load_public_key(key_path))
        except (OSError, ValueError, KeyError, NoteError, SigningKeyError) as exc:
            print(f"vigie verify: cannot use the public key {key_path}: {exc}", file=sys.stderr)
            return None
    try:
        certificates = [cert.read_bytes() for cert in getattr(args, "tsa_cert", [])]
    except OSError as exc:
        print(f"vigie verify: cannot read a TSA certificate: {exc}", file=sys.stderr)
        return None
    return verify_bundle(path, public_key=verifier, tsa_certificates=certificates)


def print_bundle_report(report: BundleReport, *, as_json: bool = False) -> None:
    """Print a bundle report for people (or as JSON)."""
    import sys

    if as_json:
        print(json.dumps(report.to_dict(), indent=2, sort_keys=True))
        return
    stream = sys.stdout if report.ok else sys.stderr
    print(f"{report.source}: {report.summary()}", file=stream)
    if report.ok and report.key:
        trust = "given key" if report.key_trusted else "key carried by the bundle"
        print(f"  signatures checked with the {trust}: {report.key}")
    for warning in report.warnings:
        print(f"  warning: {warning}", file=stream)
