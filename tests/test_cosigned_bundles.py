"""Witness cosignatures in bundles, checked by both verifiers against a witness policy; a
rewrite of the ledger before a cosigned checkpoint, re-signed with the vantage key, fails."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from config.vocabulary import CHECKPOINT, COSIGNATURE
from evidence.bundle.model import ExportRequest
from evidence.bundle.verify import verify_bundle
from evidence.ledger.backends import open_ledger
from evidence.ledger.checkpoint import Checkpoint
from evidence.ledger.witness import Cosigner
from tests.bundle_fixture import BUILD_START, BuiltLedger, build_ledger, cryptography_only_python
from tests.test_forgery import one_target_requests, standalone

pytestmark = pytest.mark.slow

PERIOD = ExportRequest(
    BUILD_START + dt.timedelta(minutes=20),
    BUILD_START + dt.timedelta(minutes=70),
    ("anef-accueil",),
)
WITNESS = Cosigner("temoin.example.org/w1", Ed25519PrivateKey.generate())
OTHER = Cosigner("temoin.example.net/w2", Ed25519PrivateKey.generate())


def _cosign(built: BuiltLedger, cosigner: Cosigner) -> list[tuple[str, dict[str, object]]]:
    """Cosign every checkpoint of the ledger (what Cosigning stores); the entries appended."""
    ledger = open_ledger(built.url, vantage="paris-1")
    entries: list[tuple[str, dict[str, object]]] = []
    for rows in ledger.row_chunks(0, ledger.size()):
        for seq, kind, body, _leaf in rows:
            if kind == CHECKPOINT:
                cp = Checkpoint.from_entry(seq, body)
                line = cosigner.cosign(cp.note[: cp.note.rfind("\n\n") + 1])
                entry = {
                    "checkpoint_seq": seq,
                    "tree_size": cp.tree_size,
                    "witness": cosigner.name,
                    "cosignature": line,
                    "time": 0,
                }
                entries.append((COSIGNATURE, entry))
    ledger.append(entries)
    ledger.close()
    return entries


def _both(built: BuiltLedger, path: Path, *, keys: list[str], quorum: int) -> tuple[bool, str]:
    report = verify_bundle(path, public_key=built.signer.verifier, witnesses=keys, quorum=quorum)
    args = [arg for key in keys for arg in ("--temoin", key)] + ["--quorum", str(quorum)]
    result = standalone(cryptography_only_python(), built, path, *args)
    assert report.ok == (result.returncode == 0), (report.summary(), result.stdout)
    return report.ok, report.summary() + "\n" + result.stdout


def test_cosigned_bundle_meets_the_policy(tmp_path: Path) -> None:
    built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
    _cosign(built, WITNESS)
    for request in one_target_requests(built):
        out = tmp_path / "b.zip"
        built.export(out, request)
        ok, text = _both(built, out, keys=[WITNESS.vkey()], quorum=1)
        assert ok, text
        assert "contresigné par 1 témoin(s) : temoin.example.org/w1" in text
        report = verify_bundle(out, public_key=built.signer.verifier, witnesses=[WITNESS.vkey()])
        assert report.cosigned_by == ["temoin.example.org/w1"]
        if request.outage_id is not None:  # each tlog-proof carries the cosignature too
            with zipfile.ZipFile(out) as zf:
                proofs = [zf.read(n).decode() for n in zf.namelist() if n.endswith(".tlog-proof")]
            assert proofs
            assert all("\u2014 temoin.example.org/w1 " in p for p in proofs)
            assert report.tlog_proofs == len(proofs)
        ok, text = _both(built, out, keys=[WITNESS.vkey(), OTHER.vkey()], quorum=2)
        assert not ok
        assert "2 required" in text


def test_a_rewrite_before_a_cosigned_checkpoint_fails(tmp_path: Path) -> None:
    """The key holder rebuilds the ledger with an entry changed (the outage moved), re-signs
    every checkpoint with the vantage key and keeps the witnesses' cosignatures: they do not
    verify over the new checkpoints; dropping them fails the policy."""
    original = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path / "a")
    cosigned = _cosign(original, WITNESS)
    forged = build_ledger(
        f"sqlite:///{tmp_path / 'f.db'}", tmp_path / "f", outage_shift=1, signer=original.signer
    )
    ledger = open_ledger(forged.url, vantage="paris-1")
    ledger.append(cosigned)  # the witnesses' lines, kept by the forger
    ledger.close()
    out = tmp_path / "f.zip"
    forged.export(out, PERIOD)
    ok, text = _both(forged, out, keys=[WITNESS.vkey()], quorum=1)
    assert not ok
    assert "proofs/cosignatures.jsonl" in text
    dropped = build_ledger(
        f"sqlite:///{tmp_path / 'd.db'}", tmp_path / "d", outage_shift=1, signer=original.signer
    )
    dropped.export(out, PERIOD)
    ok, text = _both(dropped, out, keys=[WITNESS.vkey()], quorum=1)
    assert not ok
    assert "1 required" in text or "1 exigés" in text


def test_vigie_verify_takes_the_witness_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`vigie verify FILE.zip --witness VKEY --witnesses-required N`: exit 0, then 1 for N=2."""
    import argparse

    from config.settings import Settings
    from exporter.commands import evidence as commands

    built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
    _cosign(built, WITNESS)
    out = tmp_path / "b.zip"
    built.export(out, PERIOD)
    settings = Settings.model_validate({"vantage": {"name": "paris-1"}})
    parser = argparse.ArgumentParser()
    commands.add_commands(parser.add_subparsers(), lambda _path: settings)
    key = tmp_path / "vantage.vkey"
    key.write_text(built.signer.verifier.vkey() + "\n")
    base = ["verify", str(out), "--public-key", str(key), "--witness", WITNESS.vkey()]
    args = parser.parse_args([*base, "--witnesses-required", "1"])
    assert args.handler(args) == 0, capsys.readouterr()
    args = parser.parse_args([*base, "--witness", OTHER.vkey(), "--witnesses-required", "2"])
    assert args.handler(args) == 1
    assert "2 required" in capsys.readouterr().err
