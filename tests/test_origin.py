"""The log's origin (issue 18): new ledgers sign as a schema-less URL, a ledger that has begun
keeps its first origin for good, a configured origin that would rename it is refused, and
everything that names the origin (checkpoints, tlog-proofs, bundles, both verifiers, witnesses,
`vigie keygen`) follows it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from config.settings import Settings
from config.vocabulary import CHECKPOINT
from evidence.bundle.verify import verify_bundle
from evidence.ledger.backends import open_ledger
from evidence.ledger.checkpoint import Checkpoint, checkpoint_text
from evidence.ledger.opening import (
    OriginError,
    default_origin,
    ledger_origin,
    open_evidence,
    open_signing,
)
from evidence.ledger.signing import NoteSigner, public_key_path
from evidence.ledger.verify import verify_ledger
from evidence.ledger.witness import Cosigner, Witness, WitnessState, verify_cosignature
from exporter.commands.evidence import add_commands
from exporter.metrics import Metrics
from exporter.wiring import open_service_evidence
from tests.bundle_fixture import build_ledger, checkpoint_body, cryptography_only_python
from tests.test_forgery import one_target_requests, standalone
from tests.test_witness import _request

pytest_plugins = ["tests.postgres_fixture"]

URL_ORIGIN = "vigie.asso.example/etat/paris-1"
PUBLIC_URL = "https://vigie.asso.example/etat/"


def _settings(tmp_path: Path, **vantage: str | None) -> Settings:
    return Settings.model_validate(
        {
            "vantage": {"name": "paris-1", **vantage},
            "public_url": PUBLIC_URL,
            "ledger": {
                "url": f"sqlite:///{tmp_path / 'ledger.db'}",
                "artifacts": str(tmp_path / "artifacts"),
            },
            "signing": {"key": str(tmp_path / "vantage.key")},
        }
    )


def _service_checkpoint(settings: Settings) -> Checkpoint:
    """Start the service's evidence as `vigie run` does, write one checkpoint, stop."""

    async def scenario() -> Checkpoint:
        evidence = await open_service_evidence(settings, Metrics(vantage="paris-1", version="t"))
        try:
            await evidence.sink.append("gap", {"n": 1})
            await evidence.checkpointer.checkpoint()
            last = evidence.ledger.latest_checkpoint()
        finally:
            await evidence.aclose()
        assert last is not None
        return last

    return asyncio.run(scenario())


@pytest.mark.parametrize(
    ("public_url", "origin"),
    [
        (None, "paris-1"),
        ("https://vigie.asso.example", "vigie.asso.example/paris-1"),
        ("https://Vigie.Asso.example:443/etat/", "vigie.asso.example/etat/paris-1"),
        ("http://192.0.2.7:9188/", "192.0.2.7:9188/paris-1"),
        ("https://[2001:db8::1]:8443/v", "[2001:db8::1]:8443/v/paris-1"),
    ],
)
def test_the_default_origin_is_public_url_and_name_without_scheme(
    public_url: str | None, origin: str
) -> None:
    settings = Settings.model_validate({"vantage": {"name": "paris-1"}, "public_url": public_url})
    assert default_origin(settings) == origin


@pytest.mark.parametrize("bad", ["https://vigie.asso.example/p", "a b", "a+b", "", "/x"])
def test_a_malformed_origin_setting_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="origin"):
        Settings.model_validate({"vantage": {"name": "paris-1", "origin": bad}})


@pytest.mark.slow
def test_a_new_ledger_signs_as_the_url_and_its_bundles_verify(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert ledger_origin(settings) == URL_ORIGIN  # no ledger yet: the default for a new one
    first = _service_checkpoint(settings)  # creates the key and the ledger, as `vigie run`
    assert first.origin == URL_ORIGIN
    assert first.note.startswith(URL_ORIGIN + "\n")
    signer = open_signing(settings).signer
    assert signer.name == URL_ORIGIN
    assert first.recorded_verifier().vkey() == signer.verifier.vkey()
    # a further synthetic history with the same signer, for bundles with an outage
    built = build_ledger(f"sqlite:///{tmp_path / 'b.db'}", tmp_path, signer=signer)
    python = cryptography_only_python()
    for request in one_target_requests(built):
        out = tmp_path / "bundle.zip"
        built.export(out, request)
        report = verify_bundle(out, public_key=signer.verifier)
        assert report.ok, report.summary()
        result = standalone(python, built, out)
        assert result.returncode == 0, result.stdout + result.stderr
        with zipfile.ZipFile(out) as zf:
            manifest = json.loads(zf.read("manifest.json"))
            names = zf.namelist()
            notes = [zf.read(n).decode() for n in names if n.startswith("proofs/checkpoints/")]
            proofs = [zf.read(n).decode() for n in names if n.endswith(".tlog-proof")]
        assert manifest["vantage"] == "paris-1"  # the vantage keeps its short name
        assert manifest["public_key"].startswith(URL_ORIGIN + "+")
        assert notes
        assert all(note.startswith(URL_ORIGIN + "\n") for note in notes)
        if request.outage_id is not None:
            assert proofs
            assert all(f"\n\n{URL_ORIGIN}\n" in proof for proof in proofs)
    # `vigie verify` with the PEM public key: the key's name is taken from the bundle's vkey
    pub = public_key_path(settings.signing.key)
    checked = _vigie("verify", str(out), "--public-key", str(pub))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert verify_ledger(settings.ledger.url, public_key=signer.verifier.raw).ok


def test_an_existing_ledger_keeps_its_bare_name_after_public_url_is_set(tmp_path: Path) -> None:
    built = build_ledger(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path, minutes=40)
    built.save_key(tmp_path / "vantage.key")
    settings = _settings(tmp_path)  # the configuration gained public_url since
    assert default_origin(settings) == URL_ORIGIN
    assert ledger_origin(settings) == "paris-1"
    assert open_signing(settings).signer.name == "paris-1"
    last = _service_checkpoint(settings)  # the service restarted with the new configuration
    assert last.origin == "paris-1"
    assert last.recorded_verifier().vkey() == built.signer.verifier.vkey()
    report = verify_ledger(settings.ledger.url, public_key=built.signer.verifier.raw)
    assert report.ok, report.problem
    # `vigie keygen` names the key as the log's checkpoints do
    out = _keygen(settings, tmp_path / "other.key")
    assert "verifier key (give it to whoever checks this vantage's evidence): paris-1+" in out


def test_a_configured_origin_cannot_rename_a_begun_log(tmp_path: Path) -> None:
    build_ledger(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path, minutes=40).save_key(
        tmp_path / "vantage.key"
    )
    settings = _settings(tmp_path, origin=URL_ORIGIN)
    with pytest.raises(OriginError, match=r"'vigie\.asso\.example/etat/paris-1'.*'paris-1'"):
        open_signing(settings)
    with pytest.raises(OriginError):
        open_evidence(settings, signing=True)
    assert ledger_origin(_settings(tmp_path, origin="paris-1")) == "paris-1"  # same: accepted
    config = tmp_path / "vigie.yaml"
    config.write_text(
        f"vantage: {{name: paris-1, origin: '{URL_ORIGIN}'}}\n"
        f"public_url: '{PUBLIC_URL}'\n"
        "targets:\n  - {id: anef-accueil, kind: http, url: 'http://127.0.0.1:9/'}\n"
        f"ledger: {{url: 'sqlite:///{tmp_path / 'ledger.db'}', "
        f"artifacts: '{tmp_path / 'artifacts'}'}}\n"
        f"signing: {{key: '{tmp_path / 'vantage.key'}'}}\n",
        encoding="utf-8",
    )
    size = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}", readonly=True).size()
    day = ["--from", "2026-11-23", "--to", "2026-11-23"]
    for command in (["run"], ["export", *day, "--out", str(tmp_path / "x.zip")]):
        result = _vigie(*command, "--config", str(config))
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        # one line for people (`vigie run` also logs JSON lines on stderr)
        lines = [line for line in result.stderr.splitlines() if line.startswith("vigie")]
        assert len(lines) == 1, result.stderr
        assert f"'{URL_ORIGIN}'" in lines[0]
        assert "'paris-1'" in lines[0]
    # nothing was appended: the log was not forked under a new name
    assert open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}", readonly=True).size() == size


def test_the_origin_is_the_first_checkpoints_on_every_backend(ledger_url: str) -> None:
    key = Ed25519PrivateKey.generate()
    when = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
    ledger = open_ledger(ledger_url, vantage="paris-1")
    try:
        assert ledger.first_checkpoint_origin() is None
        for name in ("paris-1", URL_ORIGIN):  # the second is what verification refuses
            signer = NoteSigner(name, key)
            ledger.append([("gap", {"n": 1})])
            ledger.append([(CHECKPOINT, lambda head, s=signer: checkpoint_body(s, head, when))])
        assert ledger.first_checkpoint_origin() == "paris-1"
    finally:
        ledger.close()
    settings = Settings.model_validate(
        {"vantage": {"name": "paris-1"}, "public_url": PUBLIC_URL, "ledger": {"url": ledger_url}}
    )
    assert ledger_origin(settings) == "paris-1"


def test_a_second_origin_in_one_ledger_fails_verification(tmp_path: Path) -> None:
    """Attack: the key holder starts signing the same log under a new name (same key)."""
    built = build_ledger(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path, minutes=40)
    renamed = NoteSigner(URL_ORIGIN, built.signer._key)
    ledger = open_ledger(built.url)
    when = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
    [seq] = ledger.append([(CHECKPOINT, lambda head: checkpoint_body(renamed, head, when))])
    ledger.close()
    report = verify_ledger(built.url, public_key=built.signer.verifier.raw)
    assert not report.ok
    assert report.first_bad_seq == seq
    assert f"names log '{URL_ORIGIN}', not 'paris-1'" in (report.problem or "")


def test_witnesses_cosign_url_origin_checkpoints(tmp_path: Path) -> None:
    signer = NoteSigner(URL_ORIGIN, Ed25519PrivateKey.generate())
    built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path, minutes=60, signer=signer)
    ledger = built.open()
    notes = {}
    for rows in ledger.row_chunks(0, ledger.size()):
        for seq, kind, body, _leaf in rows:
            if kind == CHECKPOINT:
                notes[seq] = Checkpoint.from_entry(seq, body).note
    cosigner = Cosigner("temoin.example.org/w1", Ed25519PrivateKey.generate())
    witness = Witness(cosigner, {URL_ORIGIN: signer.verifier.vkey()}, WitnessState(tmp_path / "w"))
    previous = 0
    for size in sorted(notes):
        proof = ledger.consistency_proof(previous, size) if previous else []
        reply = witness.add_checkpoint(_request(previous, proof, notes[size]))
        assert reply.status == 200, reply.body
        body = notes[size][: notes[size].rfind("\n\n") + 1]
        verify_cosignature(reply.body.decode(), body, cosigner.vkey())
        previous = size
    # the same key under the bare name is another log, which this witness does not follow
    bare = NoteSigner("paris-1", signer._key)
    root = hashlib.sha256(b"x").digest()
    unknown = witness.add_checkpoint(
        _request(0, [], bare.sign(checkpoint_text("paris-1", previous + 1, root)))
    )
    assert unknown.status == 404
    # a fork of the URL-named log is refused
    fork = signer.sign(checkpoint_text(URL_ORIGIN, previous, root))
    assert witness.add_checkpoint(_request(previous, [], fork)).status == 409
    ledger.close()


def _keygen(settings: Settings, out: Path) -> str:
    """`vigie keygen --out OUT` with `settings`; its standard output."""
    parser = argparse.ArgumentParser(prog="vigie")
    sub = parser.add_subparsers(dest="command", required=True)
    add_commands(sub, lambda path: settings)
    args = parser.parse_args(["keygen", "--out", str(out)])
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert args.handler(args) == 0
    return buffer.getvalue()


def _vigie(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("vigie")
    env: dict[str, Any] = {k: v for k, v in os.environ.items() if not k.startswith("VIGIE_")}
    return subprocess.run(
        [str(script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**env, "PYTHONIOENCODING": "utf-8"},
    )
