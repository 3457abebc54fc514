"""Verification of an evidence bundle (`vigie verify FILE.zip`): a thin adapter over the one
bundle verifier engine, the stand-alone ``evidence/standalone/verify.py`` shipped in every
bundle (standard library and `cryptography` only, French text).

The engine runs every check (members, signed manifest, files, checkpoints, the entries against
the signed Merkle roots, completeness, tlog-proofs, cosignatures, timestamps under the bundle's
own TSA root, artifacts, reviews) and names the first failure with a stable code. This module
turns its result into the English `BundleReport` (`_FAILURES` and `_WARNINGS` map each code to
English; tests/test_bundle_verify.py checks that every code has one) and adds only what the
engine cannot do with the standard library: RFC 3161 tokens verified against TSA roots given
independently (``--tsa-cert``) or, without any root, for content and signature only
(evidence/ledger/timestamp.py), the WARC captures' record digests (warcio), and the key fields.
It only reads the zip, and never repairs or rewrites anything.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, cast

from evidence.ledger.signing import NoteError, NoteVerifier

__all__ = ["BundleReport", "print_bundle_report", "verify_bundle", "verify_bundle_cli"]

ENGINE = Path(__file__).parents[1] / "standalone" / "verify.py"

# The engine's failure codes (`Echec(..., code=...)`) in English; `{name}` is the failure's
# value of that name (a value that is itself a failure is its English message).
_FAILURES = {
    # the zip and its members
    "zip_damaged": "the zip is damaged: {detail}",
    "unexpected_error": "{type}: {detail}",
    "zip_damaged_member": "damaged in the zip: {detail}",
    "missing_file": "missing from the bundle",
    "file_unreadable": "unreadable: {detail}",
    "member_twice": "appears twice in the zip (a second copy is not what was verified)",
    "folder_with_data": "a folder entry holding data",
    # keys and signed notes
    "key_malformed": "the public key is malformed (expected name+id+base64)",
    "key_bad_base64": "the public key is not valid base64",
    "key_not_ed25519": "the public key is not an Ed25519 key",
    "key_id_mismatch": "the key id does not match the key",
    "note_malformed": "malformed signed note",
    "note_signature_line_malformed": "malformed signature line",
    "note_signature_bad_base64": "a signature is not valid base64",
    "note_signature_not_canonical": "a signature is not in canonical base64 (it was altered)",
    "note_signature_invalid": "signature not valid: the note was changed or forged",
    "note_unsigned_by_key": "the note carries no signature of the key {cle}",
    # the signed manifest and the files it lists
    "manifest_unreadable": "unreadable: {detail}",
    "given_key_invalid": "the key given: {cause}",
    "manifest_other_key": "names another key ({inscrite}) than the vantage key given ({donnee})",
    "manifest_key_unreadable": "its public key is unreadable: {cause}",
    "manifest_unknown_format": "unknown format {format}",
    "manifest_sig_not_utf8": "not UTF-8 text (changed)",
    "manifest_not_signed": "not signed by the vantage key {cle} ({id}): {cause}",
    "manifest_hash_mismatch": "changed after it was signed (hash mismatch)",
    "manifest_files_malformed": "its file list is malformed",
    "manifest_unknown_mode": "unknown mode {mode}",
    "not_in_manifest": "not listed in the signed manifest",
    "manifest_token_missing": (
        "missing: the signed manifest declares that the bundle carries this token"
    ),
    "file_damaged": "changed (damaged in the zip)",
    "file_hash_mismatch": "changed: its SHA-256 differs from the manifest's",
    "file_hash_mismatch_first_sign": (
        "changed: its SHA-256 differs from the manifest's (first sign: {cause})"
    ),
    "file_added": "not listed in the signed manifest (a file was added)",
    # checkpoints
    "checkpoint_line_unreadable": "checkpoint not valid: line {ligne} unreadable: {detail}",
    "checkpoint_not_signed": "checkpoint not signed by the vantage key {cle}: {cause}",
    "checkpoint_size_mismatch": "checkpoint tree size or origin differs from its position",
    "checkpoint_root_mismatch": "checkpoint root differs from its signed note",
    "checkpoint_note_differs": "differs from the signed checkpoint",
    "checkpoint_root_unreadable": "checkpoint root unreadable: {detail}",
    "checkpoints_inconsistent": "checkpoints {ancien} and {nouveau} inconsistent",
    # the entries of a period against the checkpoints' roots
    "proof_subtree_misaligned": "malformed proof: a subtree is not aligned",
    "range_proof_malformed": "malformed: {type}: {detail}",
    "range_invalid": "bad range of entries",
    "range_left_malformed": "the left subtrees do not decompose the prefix",
    "range_right_malformed": "the right subtrees do not decompose the rest",
    "range_root_mismatch": "entries {debut} to {fin} do not match the root of checkpoint {point}",
    "range_closing_mismatch": (
        "entries {debut} to {fin} do not lead to the root of checkpoint {point}"
    ),
    "range_uncovered": "no checkpoint covers the entries {debut} to {fin}",
    "entry_differs_from_csv": (
        "entry {seq} changed: its '{colonne}' differs from observations.csv ({csv}); {cause}"
    ),
    "line_not_entry": "line {ligne} is not an entry",
    "entry_past_range": "line {ligne}: entry {seq} is past the end of the range ({fin})",
    "entry_out_of_place": "line {ligne}: entry {seq} out of place (entry {attendu} expected)",
    "entry_missing": "entry {seq} missing",
    "hidden_leaf_missing": "the hash of hidden entry {seq} is missing",
    "hidden_leaves_extra": "more leaf hashes than hidden entries",
    "hidden_count_mismatch": "{annoncees} hidden entries announced, {trouvees} in the range",
    # the entries of an outage: inclusion proofs, C2SP tlog-proofs
    "inclusion_index_outside": "inclusion proof: the index is outside the tree",
    "inclusion_proof_too_long": "inclusion proof too long",
    "inclusion_proof_too_short": "inclusion proof too short",
    "entry_without_proof": "line {ligne}: an entry without an inclusion proof",
    "inclusion_proof_unreadable": "line {ligne} is not an inclusion proof: {detail}",
    "inclusion_proofs_out_of_order": "line {ligne}: proofs out of order",
    "inclusion_tree_unsigned": (
        "entry {seq} proved in a tree of size {taille}, signed by no checkpoint"
    ),
    "inclusion_entry_missing": "entry {seq} missing (proved by line {ligne} of the proofs)",
    "inclusion_entry_mismatch": "line {ligne}: entry {lue} where entry {seq} was expected",
    "entry_changed": "entry {seq} changed: its inclusion proof does not hold",
    "tlog_proof_unreadable": "tlog-proof unreadable (not UTF-8)",
    "tlog_proof_not_tlog": "not a C2SP tlog-proof",
    "tlog_proof_index_mismatch": "its index is not entry {seq}",
    "tlog_proof_line_unreadable": "a line of the tlog-proof is unreadable",
    "tlog_proof_not_shown": "not the proof of an entry the bundle shows",
    "tlog_proof_other_log": "its checkpoint is another log's",
    "tlog_root_unreadable": "its checkpoint's root is unreadable",
    "tlog_proof_false": "the tlog-proof does not prove its entry",
    # completeness: the chain of each target's entries
    "chain_heads_malformed": "a checkpoint's chain-heads line is malformed",
    "chain_line_unreadable": "line {ligne} unreadable: {detail}",
    "chain_entry_outside": "entry {seq} outside the continuation of the range",
    "chain_entry_changed": "entry {seq} changed: its inclusion proof does not hold",
    "chain_entry_missing": (
        "entry {seq} of {cible} missing from the bundle (the chain of its entries, anchored "
        "in a signed checkpoint, leads to it)"
    ),
    "chain_previous_invalid": "entry {seq}: its previous entry in the chain is not valid",
    "chain_entry_not_in_chain": "entry {seq} shown as an entry of {cible} but not in its chain",
    # timestamps, artifacts, reviews, cosignatures
    "timestamp_token_altered": "timestamp token altered: {detail}",
    "timestamp_token_invalid": "timestamp token not valid for {donnees}: {detail}",
    "artifact_hash_mismatch": "its content does not hash to its name",
    "review_malformed": "malformed review of an outage",
    "review_other_key": "forged review of an outage: signed by another key than the vantage's",
    "review_signature": "forged review of an outage: {cause}",
    "review_changed": (
        "forged review of an outage: changed after it was signed (verdict, author or reason)"
    ),
    "witness_key_unreadable": "witness key unreadable: {temoin}",
    "witness_key_invalid": "witness key not valid (type 0x04 expected): {temoin}",
    "cosignature_line_unreadable": "cosignature line unreadable: {detail}",
    "cosignature_unknown_checkpoint": "cosignature of a checkpoint the bundle does not hold",
    "cosignature_invalid": "cosignature of {temoin} not valid",
    "quorum_not_met": (
        "cosigned by {vus} of the witnesses given, {quorum} required (witness policy): the "
        "checkpoint covering the entries was not seen by them"
    ),
}

# The engine's warnings (`info(..., code)`) in English.
_WARNINGS = {
    "key_from_manifest": (
        "signatures checked with the key the bundle carries: compare it with the vantage's "
        "published key ({cle}) or pass --public-key"
    ),
    "timestamp_failed_at_export": (
        "the manifest declares that the timestamp authority ({tsa}) failed at export: "
        "{erreur} (the checkpoints' own tokens are not affected)"
    ),
    "manifest_token_absent": (
        "the manifest names a timestamp authority ({tsa}) but the bundle holds no "
        "manifest.tsr: the manifest was not timestamped at export, or its token was removed "
        "(the checkpoints' own tokens are not affected)"
    ),
    "files_outside_bundle": "files outside the evidence bundle (not checked): {noms}",
    "no_closing_checkpoint": (
        "no checkpoint after the last entry: the tail is covered by the checkpoints inside "
        "the period only"
    ),
    "completeness_unproved": (
        "the completeness of the target's history cannot be proved yet: no checkpoint after "
        "the bundle's entries"
    ),
    "no_chain_heads": (
        "the completeness of the targets' histories cannot be proved: the checkpoint of tree "
        "size {point} names no heads (ledger written before format 1.1)"
    ),
    "witness_keys_from_bundle": (
        "witness keys taken from the bundle itself (proofs/witnesses.txt): give them from an "
        "independent source with --witness"
    ),
}


class _Failure(Protocol):
    """An engine failure (`Echec`): French message, file, entry, code and its values."""

    message: str
    fichier: str | None
    entree: int | None
    code: str
    valeurs: dict[str, Any]


class _Result(Protocol):
    """What `verifier_dossier` returns (`Resultat`)."""

    echec: _Failure | None
    comptes: dict[str, int]
    complets: list[str]
    temoins: list[str]
    avertissements: list[tuple[str, dict[str, Any]]]


class _Engine(Protocol):
    """The functions of evidence/standalone/verify.py the adapter calls."""

    Echec: type[Exception]

    def verifier_dossier(
        self, chemin: str, cle: str | None, temoins: Sequence[str], quorum: int
    ) -> _Result: ...

    def controler_enveloppe(self, jeton: bytes) -> None: ...

    def donnees_du_jeton(self, nom: str) -> str: ...


@functools.cache
def engine() -> _Engine:
    """The stand-alone verifier, loaded once from its file: it is not a package module (it
    ships alone in every bundle and imports nothing of Vigie)."""
    spec = importlib.util.spec_from_file_location("vigie_standalone_verify", ENGINE)
    if spec is None or spec.loader is None:  # pragma: no cover - the file ships with Vigie
        raise ImportError(f"cannot load the bundle verifier {ENGINE}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return cast("_Engine", module)


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
    def __init__(self, file: str, message: str) -> None:
        super().__init__(message)
        self.file = file


def english(failure: _Failure) -> str:
    """The engine's failure in English (its values cited; a cause in English too)."""
    values = {
        name: english(cast("_Failure", value)) if isinstance(value, engine().Echec) else value
        for name, value in failure.valeurs.items()
    }
    return _FAILURES[failure.code].format_map(values)


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
    covering the bundle (checked by the engine, `verifier_cosignatures`).
    """
    report = BundleReport(source=str(path))
    given = public_key.vkey() if public_key is not None else None
    result = engine().verifier_dossier(str(path), given, list(witnesses), quorum)
    counts = result.comptes
    report.files = counts.get("fichiers", 0)
    report.checkpoints = counts.get("points_de_controle", 0)
    report.entries = counts.get("entrees", 0)
    report.hidden = counts.get("masquees", 0)
    report.tlog_proofs = counts.get("preuves_tlog", 0)
    report.artifacts = counts.get("captures", 0)
    report.complete = list(result.complets)
    report.cosigned_by = list(result.temoins)
    for code, values in result.avertissements:
        report.warnings.append(_WARNINGS[code].format_map(values))
        if code == "key_from_manifest":
            _key_fields(report, values["cle"], trusted=False)
    if public_key is not None:
        _key_fields(report, public_key.vkey(), trusted=True)
    if result.echec is not None:
        report.fail(result.echec.fichier, english(result.echec), result.echec.entree)
        return report
    try:
        with zipfile.ZipFile(path) as zf:
            names = {n for n in zf.namelist() if not n.endswith("/")}
            _check_timestamps(zf, names, report, tsa_certificates, counts.get("horodatages", 0))
            for name in sorted(n for n in names if n.startswith("artifacts/")):
                if name.endswith((".warc", ".warc.gz")):
                    _check_warc(name, zf.read(name), report)
    except _FailureError as exc:
        report.fail(exc.file, str(exc))
    except (OSError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
        report.fail(None, f"the zip is damaged: {exc}")
    return report


def _key_fields(report: BundleReport, vkey: str, *, trusted: bool) -> None:
    try:
        verifier = NoteVerifier.parse(vkey)
    except NoteError:
        return  # the engine names what is wrong with it
    report.key, report.vantage, report.key_trusted = verifier.vkey(), verifier.name, trusted


def _check_timestamps(
    zf: zipfile.ZipFile,
    names: set[str],
    report: BundleReport,
    given: Sequence[bytes],
    engine_checked: int,
) -> None:
    """RFC 3161 tokens under the TSA roots given; without them, the engine checked them under
    the bundle's own root (a warning says so); without any root, content and signature only."""
    from evidence.ledger.timestamp import TimestampError, verify_token, verify_token_signature

    tokens = sorted(n for n in names if n.startswith("proofs/timestamps/") and n.endswith(".tsr"))
    if "manifest.tsr" in names:
        tokens.append("manifest.tsr")
    if not tokens:
        return
    trusted = list(given)
    if not trusted and "proofs/tsa-ca.pem" in names:
        report.warnings.append(
            "TSA tokens chained to the root carried by the bundle (proofs/tsa-ca.pem): "
            "compare it with the TSA's published root or pass --tsa-cert"
        )
        if engine_checked == len(tokens):
            report.timestamps = engine_checked
            return
        trusted = [zf.read("proofs/tsa-ca.pem")]
    extra = [zf.read(n) for n in ("proofs/tsa-certificates.pem",) if n in names]
    if not trusted:
        report.warnings.append(
            "no TSA root: timestamp tokens checked for content and signature only"
        )
    for name in tokens:
        data_name = engine().donnees_du_jeton(name)
        data, token = zf.read(data_name), zf.read(name)
        try:
            engine().controler_enveloppe(token)
        except Exception as exc:  # noqa: BLE001 - a damaged certificate can fail in any parser
            raise _FailureError(name, f"timestamp token altered: {exc}") from None
        try:
            if trusted:
                # Only the roots are trust anchors: proofs/tsa-certificates.pem is bundle
                # content (copies of the certificates the tokens embed), so trusting it
                # would let whoever signs the bundle bring their own TSA.
                verify_token(token, data, certificates=trusted)
            else:
                verify_token_signature(token, data, certificates=extra)
        except TimestampError as exc:
            raise _FailureError(name, f"timestamp token not valid for {data_name}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - a damaged token can fail in any parser
            raise _FailureError(
                name, f"timestamp token not readable: {type(exc).__name__}: {exc}"
            ) from None
        report.timestamps += 1


def _check_warc(name: str, data: bytes, report: BundleReport) -> None:
    """A WARC capture's record digests (the engine checks only that it hashes to its name)."""
    try:
        from warcio.archiveiterator import ArchiveIterator
    except ImportError:
        if not any("warcio" in w for w in report.warnings):
            report.warnings.append("warcio not installed: WARC digests not checked")
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
    report.warcs += 1


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
