"""C2SP tlog-proof: the format (written by evidence/ledger/tlog_proof.py, read by the bundle
verifier engine evidence/standalone/verify.py), and the proofs of outage bundles."""

from __future__ import annotations

import base64
import datetime as dt
import json
import zipfile
from pathlib import Path

import pytest

from evidence.bundle.model import ExportRequest
from evidence.bundle.verify import engine, verify_bundle
from evidence.ledger.tlog_proof import format_tlog_proof
from tests.bundle_fixture import BUILD_START, build_ledger, cryptography_only_python
from tests.test_forgery import rewrite, standalone

# The example of the C2SP tlog-proof text (its elided signatures kept as they are written)
SPEC_PROOF = """c2sp.org/tlog-proof@v1
extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ
index 73894
gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=
B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=
EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=
RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=
AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=

example.com/fancylog
109482
sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=

\u2014 example.com/fancylog hI2DJw[...]1roloI=
\u2014 witness1.example mJirIklj[...]qY9v2B/5bg==
"""


def test_the_example_of_the_specification_parses_and_formats_back() -> None:
    """The engine reads the specification's example; the writer writes it back, byte for byte."""
    path, checkpoint = engine().lire_preuve_tlog(SPEC_PROOF, 73894, "spec.tlog-proof")
    assert len(path) == 5
    assert checkpoint.startswith("example.com/fancylog\n109482\n")
    extra = base64.b64decode("YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ")
    assert format_tlog_proof(73894, path, checkpoint, extra) == SPEC_PROOF


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (SPEC_PROOF.replace("tlog-proof@v1", "tlog-proof@v2"), "tlog_proof_not_tlog"),
        (SPEC_PROOF.replace("index 73894", "index 073894"), "tlog_proof_index_mismatch"),
        (SPEC_PROOF.replace("index 73894\n", ""), "tlog_proof_index_mismatch"),
        (
            SPEC_PROOF.replace("AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=", "AHCi"),
            "tlog_proof_line_unreadable",
        ),
    ],
)
def test_malformed_proofs_are_refused(text: str, code: str) -> None:
    failure = engine().Echec
    with pytest.raises(failure) as caught:
        engine().lire_preuve_tlog(text, 73894, "spec.tlog-proof")
    assert caught.value.code == code


@pytest.mark.slow
def test_each_observation_of_an_outage_bundle_has_a_standard_proof(tmp_path: Path) -> None:
    """proofs/tlog/<seq>.tlog-proof for every entry shown; each proves its line of
    observations.jsonl under the vantage's signed checkpoint; a changed proof fails both
    verifiers even when the key holder re-signs the manifest."""
    built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
    request = ExportRequest(
        BUILD_START,
        BUILD_START + dt.timedelta(minutes=90),
        outage_id=built.outage_ids[0],
    )
    out = tmp_path / "o.zip"
    built.export(out, request)
    with zipfile.ZipFile(out) as zf:
        lines = {
            json.loads(line)["seq"]: line
            for line in zf.read("observations.jsonl").split(b"\n")
            if line
        }
        proofs = {n: zf.read(n).decode() for n in zf.namelist() if n.startswith("proofs/tlog/")}
    assert sorted(int(n.split("/")[-1].split(".")[0]) for n in proofs) == sorted(lines)
    for name, text in proofs.items():  # each names its entry; verify_bundle checks each below
        seq = int(name.split("/")[-1].split(".")[0])
        path, checkpoint = engine().lire_preuve_tlog(text, seq, name)
        assert text == format_tlog_proof(seq, path, checkpoint)
    report = verify_bundle(out, public_key=built.signer.verifier)
    assert report.ok, report.summary()
    assert report.tlog_proofs == len(lines)
    python = cryptography_only_python()
    result = standalone(python, built, out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(lines)} preuves au format standard C2SP tlog-proof" in result.stdout

    name = sorted(proofs)[3]
    seq = int(name.split("/")[-1].split(".")[0])
    parts = proofs[name].split("\n")
    parts[3] = base64.b64encode(bytes(32)).decode()  # a hash of the path replaced
    forged = rewrite(out, tmp_path / "f.zip", built.signer, {name: "\n".join(parts).encode()})
    report = verify_bundle(forged, public_key=built.signer.verifier)
    assert not report.ok
    assert report.file == name
    assert report.entry == seq
    result = standalone(python, built, forged)
    assert result.returncode == 1, result.stdout
    assert name in result.stdout
