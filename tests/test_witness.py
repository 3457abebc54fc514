"""Witnessing (evidence/witness.py): C2SP tlog-cosignature and tlog-witness add-checkpoint.

Vectors are taken from the C2SP texts themselves (tlog-witness's example request,
tlog-cosignature's example cosignature and signed message); the behaviour is driven with real
checkpoints of a real ledger, signed by the log's key.
"""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from config.vocabulary import CHECKPOINT
from evidence.ledger.checkpoint import Checkpoint, checkpoint_text
from evidence.ledger.signing import NoteSigner, raw_public_key
from evidence.ledger.witness import (
    CosignatureError,
    Cosigner,
    Refusal,
    Witness,
    WitnessState,
    cosignature_key_id,
    cosigned_message,
    parse_add_checkpoint,
    verify_cosignature,
)
from tests.bundle_fixture import build_ledger

# tlog-witness, "Example request body" (the log's signature lines as the spec gives them)
SPEC_REQUEST = (
    "old 20852014\n"
    "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n"
    "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n"
    "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n"
    "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n"
    "\n"
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    "\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5"
    "/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)
SPEC_BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
# tlog-cosignature, the example's witness line
SPEC_COSIGNATURE = (
    "jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBk"
    "BIfZ+qnA=="
)


class TestSpecificationVectors:
    def test_add_checkpoint_request_of_the_spec_parses(self) -> None:
        old, proof, note = parse_add_checkpoint(SPEC_REQUEST.encode())
        assert old == 20852014
        assert base64.b64encode(proof[0]).decode() == "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw="
        assert len(proof) == 4
        assert note.startswith(SPEC_BODY + "\n\u2014 example.com/behind-the-sofa ")

    @pytest.mark.parametrize(
        "body",
        ["old 01\n\nx\n1\nAA==\n", "old 1\nnot-base64\n\nx\n", "new 1\n\nx\n", "old 1\n"],
    )
    def test_malformed_requests_are_refused(self, body: str) -> None:
        with pytest.raises(ValueError):
            parse_add_checkpoint(body.encode())

    def test_signed_message_of_the_spec(self) -> None:
        """tlog-cosignature's example signed message, byte for byte."""
        assert cosigned_message(SPEC_BODY, 1679315147) == (
            b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
            b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        )

    def test_cosignature_layout_of_the_spec(self) -> None:
        """The spec's cosignature: 4-byte key id, 8-byte big-endian time, 64-byte Ed25519."""
        blob = base64.b64decode(SPEC_COSIGNATURE)
        assert len(blob) == 76
        assert struct.unpack(">Q", blob[4:12]) == (1679315147,)

    def test_our_cosignature_verifies_with_independent_code(self) -> None:
        key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
        cosigner = Cosigner("witness.example.org/w1", key)
        line = cosigner.cosign(SPEC_BODY, 1679315147)
        assert line.startswith("\u2014 witness.example.org/w1 ")
        assert line.endswith("\n")
        blob = base64.b64decode(line.split(" ")[-1])
        public = raw_public_key(key.public_key())
        expected_id = hashlib.sha256(b"witness.example.org/w1\n\x04" + public).digest()[:4]
        assert blob[:4] == expected_id == cosignature_key_id("witness.example.org/w1", public)
        assert blob[4:12] == (1679315147).to_bytes(8, "big")
        message = f"cosignature/v1\ntime 1679315147\n{SPEC_BODY}".encode()
        key.public_key().verify(blob[12:], message)  # raises if not
        assert verify_cosignature(line, SPEC_BODY, cosigner.vkey()) == 1679315147
        with pytest.raises(CosignatureError):
            verify_cosignature(line, SPEC_BODY.replace("20852163", "20852164"), cosigner.vkey())


def _notes(tmp_path: Path) -> tuple[NoteSigner, dict[int, str], object]:
    built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path, minutes=60)
    ledger = built.open()
    notes = {}
    for rows in ledger.row_chunks(0, ledger.size()):
        for seq, kind, body, _leaf in rows:
            if kind == CHECKPOINT:
                notes[seq] = Checkpoint.from_entry(seq, body).note
    return built.signer, notes, ledger


def _request(old: int, proof: list[bytes], note: str) -> bytes:
    lines = [f"old {old}", *(base64.b64encode(p).decode() for p in proof)]
    return ("\n".join(lines) + "\n\n" + note).encode()


class TestWitness:
    def test_cosigns_consistent_checkpoints_and_refuses_the_rest(self, tmp_path: Path) -> None:
        signer, notes, ledger = _notes(tmp_path)
        first, second = sorted(notes)
        refusals: list[Refusal] = []
        cosigner = Cosigner("temoin.example.org/w1", Ed25519PrivateKey.generate())
        state = WitnessState(tmp_path / "witness.json")
        witness = Witness(
            cosigner, {"paris-1": signer.verifier.vkey()}, state, on_refusal=refusals.append
        )
        reply = witness.add_checkpoint(_request(0, [], notes[first]))
        assert reply.status == 200, reply.body
        body = notes[first][: notes[first].rfind("\n\n") + 1]
        verify_cosignature(reply.body.decode(), body, cosigner.vkey())
        proof = ledger.consistency_proof(first, second)
        # a stale old size: 409 with the cosigned size, not evidence
        stale = witness.add_checkpoint(_request(0, [], notes[second]))
        assert (stale.status, stale.content_type, stale.body) == (
            409,
            "text/x.tlog.size",
            f"{first}\n".encode(),
        )
        assert witness.add_checkpoint(_request(second + 1, [], notes[second])).status == 400
        bad = [bytes(32), *proof[1:]]
        assert witness.add_checkpoint(_request(first, bad, notes[second])).status == 422
        assert witness.add_checkpoint(_request(first, proof, notes[second])).status == 200
        # the log forks: same size, another root, signed with the log's key
        forged_root = hashlib.sha256(b"another history").digest()
        fork = signer.sign(checkpoint_text("paris-1", second, forged_root))
        assert witness.add_checkpoint(_request(second, [], fork)).status == 409
        # a smaller tree than the one cosigned (signed by the log: a rewind)
        assert witness.add_checkpoint(_request(0, [], notes[first])).status == 409
        assert [r.status for r in refusals] == [422, 409, 409]
        assert "fork" in refusals[1].reason
        assert refusals[1].checkpoint == fork
        assert "smaller" in refusals[2].reason
        # unknown log, key not trusted
        other = NoteSigner("lyon-2", Ed25519PrivateKey.generate())
        foreign = other.sign(checkpoint_text("lyon-2", second, forged_root))
        assert witness.add_checkpoint(_request(0, [], foreign)).status == 404
        impostor = NoteSigner("paris-1", Ed25519PrivateKey.generate())
        assert witness.add_checkpoint(_request(0, [], impostor.sign(body))).status == 403
        # the state is durable: a new witness on the same file starts where this one stopped
        assert WitnessState(tmp_path / "witness.json").get("paris-1")[0] == second
        ledger.close()  # type: ignore[attr-defined]


_CHILD = textwrap.dedent(
    """
    import base64, sys
    from pathlib import Path
    from evidence.ledger.witness import WitnessState
    state = WitnessState(Path(sys.argv[1]))
    size = state.get("log")[0]
    while True:
        size += 1
        state.put("log", size, size.to_bytes(32, "big"), "note %d" % size)
        print(size, flush=True)
    """
)


@pytest.mark.slow
def test_the_witness_state_survives_kill_9(tmp_path: Path) -> None:
    """Killed (SIGKILL) while it writes, the witness keeps at least every size it had
    answered for, in a file that still reads."""
    path = tmp_path / "witness.json"
    root = Path(__file__).parents[1]
    for _round in range(3):
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(path)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
        )
        assert child.stdout is not None
        answered = 0
        deadline = time.monotonic() + 60
        while answered < 20 and time.monotonic() < deadline:
            answered = int(child.stdout.readline())
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
        size, root_hash = WitnessState(path).get("log")
        assert size >= answered
        assert root_hash == size.to_bytes(32, "big")


def test_a_real_ledger_is_what_the_witness_follows(tmp_path: Path) -> None:
    """The ledger's own checkpoints (with the heads line) pass through the witness as they are."""
    signer, notes, ledger = _notes(tmp_path)
    assert all("vigie-heads/1" in note for note in notes.values())
    witness = Witness(
        Cosigner("temoin.example.org/w1", Ed25519PrivateKey.generate()),
        {"paris-1": signer.verifier.vkey()},
        WitnessState(tmp_path / "w.json"),
    )
    previous = 0
    for size in sorted(notes):
        proof = ledger.consistency_proof(previous, size) if previous else []  # type: ignore[attr-defined]
        assert witness.add_checkpoint(_request(previous, proof, notes[size])).status == 200
        previous = size
    ledger.close()  # type: ignore[attr-defined]


def test_a_bad_witness_key_in_the_configuration_is_one_clear_line(tmp_path: Path) -> None:
    from config.settings import ConfigError, load_settings

    signer = NoteSigner("paris-1", Ed25519PrivateKey.generate())
    path = tmp_path / "vigie.yaml"
    path.write_text(
        "witnessing:\n  ask:\n    - name: temoin.example.org\n"
        f"      key: {signer.verifier.vkey()}\n      url: http://127.0.0.1:9\n"
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    (line,) = info.value.lines
    assert line.startswith(f"{path}: witnessing.ask[0].key: ")
    assert "not a witness key" in line
