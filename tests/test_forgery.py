"""Issue 18: a forger who holds the vantage key and re-signs bundles, against both verifiers.

Each attack is built the way a key holder would build it (edit the zip, re-sign the manifest
with the real vantage key) and must fail in `vigie verify` (exit 1) and in the bundle's own
`verify.py` run by a Python holding only `cryptography`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from evidence.bundle.export import BUNDLE_FORMAT
from evidence.bundle.model import ExportRequest
from evidence.bundle.verify import verify_bundle
from evidence.ledger import merkle
from evidence.ledger.signing import NoteSigner
from tests.bundle_fixture import BUILD_START, BuiltLedger, build_ledger, cryptography_only_python

PERIOD = ExportRequest(
    BUILD_START + dt.timedelta(minutes=20), BUILD_START + dt.timedelta(minutes=70)
)
STANDALONE = Path(__file__).parents[1] / "evidence/standalone/verify.py"


@pytest.fixture(scope="module")
def bare_python() -> Path:
    return cryptography_only_python()


def forge(
    source: Path,
    target: Path,
    signer: NoteSigner,
    *,
    drop: tuple[str, ...] = (),
    edit: Callable[[str, bytes], bytes] | None = None,
) -> Path:
    """Copy `source` to `target` without the members `drop`, members changed by `edit`, and
    the manifest re-signed with the vantage key (what the key holder can always do)."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        manifest = src.read("manifest.json")
        for item in src.infolist():
            name = item.filename
            if name in drop or name in ("manifest.json", "manifest.sig"):
                continue
            data = src.read(item)
            dst.writestr(item, edit(name, data) if edit is not None else data)
        if edit is not None:
            manifest = edit("manifest.json", manifest)
        dst.writestr("manifest.json", manifest)
        digest = hashlib.sha256(manifest).hexdigest()
        dst.writestr("manifest.sig", signer.sign(f"{BUNDLE_FORMAT}\n{digest}\n"))
    return target


def standalone(
    python: Path, bundle: BuiltLedger, path: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [str(python), str(STANDALONE), str(path), "--cle", bundle.signer.verifier.vkey(), *extra],
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
        env=env,
        timeout=120,
        check=False,
    )


class _BrokenTsa:
    def stamp(self, data: bytes) -> bytes:
        raise OSError("connexion refusée par tsa.example")


@pytest.mark.slow
class TestManifestTimestamp:
    def test_removing_the_declared_token_fails_in_both_verifiers(
        self, local_tsa: object, bare_python: Path, tmp_path: Path
    ) -> None:
        """The manifest of a TSA-configured vantage declares its token: removing it (and
        re-signing the manifest) is a failure, not a warning."""
        from evidence.ledger.timestamp import HttpTimestamper

        root = local_tsa.ca_pem  # type: ignore[attr-defined]
        stamper = HttpTimestamper(local_tsa.url, ca_pem=root)  # type: ignore[attr-defined]
        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
        good = tmp_path / "b.zip"
        built.export(good, PERIOD, timestamper=stamper, tsa_name="local", tsa_certificates=[root])
        assert '"token": "manifest.tsr"' in zipfile.ZipFile(good).read("manifest.json").decode()
        assert verify_bundle(good, tsa_certificates=[root]).ok
        assert standalone(bare_python, built, good).returncode == 0

        forged = forge(good, tmp_path / "f.zip", built.signer, drop=("manifest.tsr",))
        report = verify_bundle(forged, tsa_certificates=[root])
        assert not report.ok
        assert "manifest.tsr" in report.summary()
        result = standalone(bare_python, built, forged)
        assert result.returncode == 1, result.stdout
        assert "manifest.tsr" in result.stdout + result.stderr

    def test_a_tsa_down_at_export_is_declared_and_only_warned(
        self, bare_python: Path, tmp_path: Path
    ) -> None:
        """When the TSA fails at export, the signed manifest says so: a warning, exit 0."""
        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
        out = tmp_path / "b.zip"
        built.export(out, PERIOD, timestamper=_BrokenTsa(), tsa_name="https://tsa.example/")
        assert "manifest.tsr" not in zipfile.ZipFile(out).namelist()
        report = verify_bundle(out)
        assert report.ok, report.summary()
        assert any("connexion refusée" in w for w in report.warnings)
        result = standalone(bare_python, built, out)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "connexion refusée" in result.stdout


def rewrite(source: Path, target: Path, signer: NoteSigner, members: dict[str, bytes]) -> Path:
    """The bundle with `members` replaced, the manifest's hashes and sizes updated to match
    and signed again with the vantage key: the key holder's forgery."""

    def edit(name: str, data: bytes) -> bytes:
        if name != "manifest.json":
            return members.get(name, data)
        manifest = json.loads(data)
        for member, content in members.items():
            manifest["files"][member] = {
                "sha256": hashlib.sha256(content).hexdigest(),
                "size": len(content),
            }
        return (json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()

    return forge(source, target, signer, edit=edit)


def _seq(line: bytes) -> int:
    return int(json.loads(line)["seq"])


def hide_as_other_target(source: Path, target: Path, signer: NoteSigner, seq: int) -> Path:
    """Move entry `seq` out of a filtered bundle's observations.jsonl and its leaf hash into
    proofs/hidden-leaves.bin, where other targets' entries are (so the range still proves)."""
    with zipfile.ZipFile(source) as zf:
        lines = zf.read("observations.jsonl").splitlines()
        hidden = zf.read("proofs/hidden-leaves.bin")
        proof = json.loads(zf.read("proofs/range.json"))
    shown = {_seq(line): line for line in lines}
    hidden_seqs = sorted(set(range(proof["start"], proof["stop"])) - set(shown))
    moved = shown.pop(seq)
    position = sum(1 for s in hidden_seqs if s < seq)
    leaves = hidden[: 32 * position] + merkle.leaf_hash(moved) + hidden[32 * position :]
    proof["hidden"] += 1
    return rewrite(
        source,
        target,
        signer,
        {
            "observations.jsonl": b"".join(line + b"\n" for line in shown.values()),
            "proofs/hidden-leaves.bin": leaves,
            "proofs/range.json": (json.dumps(proof, indent=1, sort_keys=True) + "\n").encode(),
        },
    )


def drop_from_outage(source: Path, target: Path, signer: NoteSigner, seq: int) -> Path:
    """Remove entry `seq` and its inclusion proof from an outage bundle."""
    with zipfile.ZipFile(source) as zf:
        lines = zf.read("observations.jsonl").splitlines()
        proofs = zf.read("proofs/inclusion.jsonl").splitlines()
    kept = [(line, p) for line, p in zip(lines, proofs, strict=True) if _seq(line) != seq]
    assert len(kept) == len(lines) - 1
    return rewrite(
        source,
        target,
        signer,
        {
            "observations.jsonl": b"".join(line + b"\n" for line, _ in kept),
            "proofs/inclusion.jsonl": b"".join(p + b"\n" for _, p in kept),
        },
    )


def _target_seqs(bundle: Path, target: str, kind: str = "observation") -> list[tuple[int, bool]]:
    """(seq, success) of the target's entries of `kind` the bundle shows."""
    found = []
    with zipfile.ZipFile(bundle) as zf:
        for line in zf.read("observations.jsonl").splitlines():
            entry = json.loads(line)
            if entry.get("target_id") == target and entry.get("type") == kind:
                found.append((int(entry["seq"]), bool(entry.get("success"))))
    return found


def one_target_requests(built: BuiltLedger) -> tuple[ExportRequest, ExportRequest]:
    """The two bundles for one target: the period filtered to it, and its outage."""
    return (
        ExportRequest(PERIOD.start, PERIOD.end, ("anef-accueil",)),
        ExportRequest(PERIOD.start, PERIOD.end, outage_id=built.outage_ids[0]),
    )


def assert_refused(python: Path, built: BuiltLedger, path: Path, seq: int) -> None:
    """Both verifiers fail (exit 1) and name the entry."""
    report = verify_bundle(path, public_key=built.signer.verifier)
    assert not report.ok, "vigie verify accepted the forgery"
    assert report.entry == seq, report.summary()
    result = standalone(python, built, path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"entrée {seq}" in result.stdout + result.stderr, result.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuiltLedger:
    directory = tmp_path_factory.mktemp("ledger")
    return build_ledger(f"sqlite:///{directory / 'l.db'}", directory)


@pytest.mark.slow
class TestCompleteHistories:
    def test_intact_target_and_outage_bundles_prove_their_histories_complete(
        self, built: BuiltLedger, bare_python: Path, tmp_path: Path
    ) -> None:
        for request in one_target_requests(built):
            out = tmp_path / "b.zip"
            built.export(out, request)
            report = verify_bundle(out, public_key=built.signer.verifier)
            assert report.ok, report.summary()
            assert report.complete == ["anef-accueil"], report.warnings
            result = standalone(bare_python, built, out)
            assert result.returncode == 0, result.stdout + result.stderr
            assert "historique complet" in result.stdout

    @pytest.mark.parametrize("which", ["middle", "last"])
    def test_entry_passed_off_as_another_targets_is_caught(
        self, built: BuiltLedger, bare_python: Path, tmp_path: Path, which: str
    ) -> None:
        request = ExportRequest(PERIOD.start, PERIOD.end, ("anef-accueil",))
        good = tmp_path / "b.zip"
        built.export(good, request)
        seqs = _target_seqs(good, "anef-accueil")
        seq = seqs[len(seqs) // 2][0] if which == "middle" else seqs[-1][0]
        forged = hide_as_other_target(good, tmp_path / "f.zip", built.signer, seq)
        assert_refused(bare_python, built, forged, seq)

    @pytest.mark.parametrize("which", ["failure", "success", "last"])
    def test_observation_dropped_from_an_outage_bundle_is_caught(
        self, built: BuiltLedger, bare_python: Path, tmp_path: Path, which: str
    ) -> None:
        request = ExportRequest(PERIOD.start, PERIOD.end, outage_id=built.outage_ids[0])
        good = tmp_path / "o.zip"
        built.export(good, request)
        seqs = _target_seqs(good, "anef-accueil")
        failures = [s for s, ok in seqs if not ok]
        successes = [s for s, ok in seqs if ok]
        seq = {"failure": failures[1], "success": successes[0], "last": seqs[-1][0]}[which]
        forged = drop_from_outage(good, tmp_path / "f.zip", built.signer, seq)
        assert_refused(bare_python, built, forged, seq)


@pytest.mark.slow
def test_a_ledger_written_before_the_chain_still_verifies(
    monkeypatch: pytest.MonkeyPatch, bare_python: Path, tmp_path: Path
) -> None:
    """Entries without `target_prev` and checkpoints without heads (ledgers written before
    issue 18) verify as before; both verifiers say the completeness is not proved."""
    import evidence.ledger.chain
    import tests.bundle_fixture
    from evidence.ledger.checkpoint import checkpoint_text

    monkeypatch.setattr(evidence.ledger.chain, "link", lambda body, _seq, _heads: body)
    monkeypatch.setattr(
        tests.bundle_fixture,
        "head_text",
        lambda origin, head: checkpoint_text(origin, head.size, head.root),
    )
    old = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
    assert b"target_prev" not in old.open().get(3)
    for request in one_target_requests(old):
        out = tmp_path / "b.zip"
        old.export(out, request)
        report = verify_bundle(out, public_key=old.signer.verifier)
        assert report.ok, report.summary()
        assert not report.complete
        assert any("cannot be proved" in w for w in report.warnings), report.warnings
        result = standalone(bare_python, old, out)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "n'est pas prouvé" in result.stdout
