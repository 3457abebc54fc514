"""Two real `vigie run` processes witness each other on loopback (issue 18).

Each vantage is a witness for the other's log and asks the other to cosign its checkpoints.
A witness killed with SIGKILL keeps its state and, restarted, cosigns again; a fork signed
with the vantage's own key is refused by the witness, which records the refusal in its ledger.
"""

from __future__ import annotations

import base64
import hashlib
import json
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from evidence.ledger.backends import open_ledger
from evidence.ledger.checkpoint import checkpoint_text
from evidence.ledger.signing import NoteSigner, keygen
from evidence.ledger.witness import Cosigner, WitnessState, verify_cosignature
from tests.service_fixture import ServiceProcess, free_port, http_get

pytestmark = pytest.mark.slow


def _entries(state: Path, kind: str) -> list[dict[str, Any]]:
    path = state / "ledger.db"
    if not path.exists():
        return []
    ledger = open_ledger(f"sqlite:///{path}", readonly=True)
    try:
        return [
            json.loads(body)
            for rows in ledger.row_chunks(0, ledger.size())
            for _seq, entry_type, body, _leaf in rows
            if entry_type == kind
        ]
    finally:
        ledger.close()


def _wait(what: str, predicate: Any, *services: ServiceProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    logs = "\n".join(s.log()[-3000:] for s in services)
    raise AssertionError(f"timed out waiting for {what}\n{logs}")


class _Ring:
    """Vantages that each witness all the others and ask all the others to cosign."""

    def __init__(self, root: Path, names: tuple[str, ...]) -> None:
        self.names = names
        self.states = {n: root / n for n in names}
        self.signers: dict[str, NoteSigner] = {}
        self.cosigners: dict[str, Cosigner] = {}
        self.ports: dict[str, int] = {}
        self.witness_ports: dict[str, int] = {}
        for name in names:
            state = self.states[name]
            state.mkdir()
            self.signers[name] = NoteSigner(name, keygen(state / "vantage.key"))
            self.cosigners[name] = Cosigner(f"{name}.example.org/temoin", keygen(state / "w.key"))
            self.ports[name], self.witness_ports[name] = free_port(), free_port()

    def config(self, me: str) -> dict[str, Any]:
        """`me` probes the next vantage's /healthz, follows and asks every other vantage."""
        others = [n for n in self.names if n != me]
        state = self.states[me]
        return {
            "vantage": {"name": me, "operator": "Association test"},
            "listen": f"127.0.0.1:{self.ports[me]}",
            "targets": [
                {
                    "id": "voisine",
                    "kind": "http",
                    "interval": "1s",
                    "url": f"http://127.0.0.1:{self.ports[others[0]]}/healthz",
                }
            ],
            "controls": [],
            "ledger": {
                "url": f"sqlite:///{state / 'ledger.db'}",
                "artifacts": str(state / "artifacts"),
                "checkpoint_interval": "1s",
            },
            "signing": {"key": str(state / "vantage.key")},
            "witnessing": {
                "listen": f"127.0.0.1:{self.witness_ports[me]}",
                "key": str(state / "w.key"),
                "name": self.cosigners[me].name,
                "state": str(state / "witness.json"),
                "follow": [{"origin": o, "key": self.signers[o].verifier.vkey()} for o in others],
                "ask": [
                    {
                        "name": self.cosigners[o].name,
                        "key": self.cosigners[o].vkey(),
                        "url": f"http://127.0.0.1:{self.witness_ports[o]}",
                    }
                    for o in others
                ],
            },
        }


def test_two_vantages_witness_each_other(tmp_path: Path) -> None:
    ring = _Ring(tmp_path, ("vantage-a", "vantage-b"))
    states, signers, cosigners = ring.states, ring.signers, ring.cosigners
    witness_ports = ring.witness_ports
    a = ServiceProcess(ring.config("vantage-a"), states["vantage-a"])
    b = ServiceProcess(ring.config("vantage-b"), states["vantage-b"])
    a.start()
    b.start()
    try:

        def cosigned_by_b() -> list[dict[str, Any]]:
            return _entries(states["vantage-a"], "cosignature")

        _wait(
            "a cosignature of each",
            lambda: cosigned_by_b() and _entries(states["vantage-b"], "cosignature"),
            a,
            b,
        )
        # the status page says it (and /metrics)
        _wait(
            "the status page's witness line",
            lambda: "cosigné par 1 témoin (sur 1)" in http_get(a.url + "/")[1].decode(),
            a,
        )
        assert a.sample("vigie_ledger_last_checkpoint_cosignatures") == 1
        first = cosigned_by_b()[0]
        assert first["witness"] == cosigners["vantage-b"].name
        # the cosignature verifies over A's checkpoint, with B's witness key
        ledger = open_ledger(f"sqlite:///{states['vantage-a'] / 'ledger.db'}", readonly=True)
        note = json.loads(ledger.get(first["checkpoint_seq"]))["note"]
        ledger.close()
        verify_cosignature(
            first["cosignature"], note[: note.rfind("\n\n") + 1], cosigners["vantage-b"].vkey()
        )

        # B killed with SIGKILL: its state survives; restarted, it cosigns A's log again
        b.stop(signal.SIGKILL)
        seen, _root = WitnessState(states["vantage-b"] / "witness.json").get("vantage-a")
        assert seen > 0
        before = len(cosigned_by_b())
        time.sleep(2.5)  # A makes checkpoints while B is down: nothing waits for B
        assert len(cosigned_by_b()) == before
        b.start()
        _wait("B cosigning again", lambda: len(cosigned_by_b()) > before, a, b)
        latest = max(e["tree_size"] for e in cosigned_by_b())
        assert latest > seen
        assert WitnessState(states["vantage-b"] / "witness.json").get("vantage-a")[0] >= latest

        # a fork of A's log, signed with A's own key, at the size B last cosigned
        size, _root = WitnessState(states["vantage-b"] / "witness.json").get("vantage-a")
        forged = signers["vantage-a"].sign(
            checkpoint_text("vantage-a", size, hashlib.sha256(b"other history").digest())
        )
        request = urllib.request.Request(
            f"http://127.0.0.1:{witness_ports['vantage-b']}/add-checkpoint",
            data=f"old {size}\n\n{forged}".encode(),
            method="POST",
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with pytest.raises(urllib.error.HTTPError) as refused:
            opener.open(request, timeout=10)
        assert refused.value.code == 409
        refused.value.close()
        _wait(
            "the refusal recorded in B's ledger",
            lambda: _entries(states["vantage-b"], "witness_refusal"),
            b,
        )
        refusal = _entries(states["vantage-b"], "witness_refusal")[0]
        assert refusal["checkpoint"] == forged
        assert "fork" in refusal["reason"]
        assert base64.b64decode(refusal["known_root"])  # what B had cosigned
    finally:
        for service in (a, b):
            if service.process is not None and service.process.poll() is None:
                service.stop()


def test_three_vantages_witness_one_another(tmp_path: Path) -> None:
    """Three `vigie run`: each asks the two others and witnesses them; every vantage's
    checkpoints get cosigned by both others, and the status page says so."""
    names = ("vantage-a", "vantage-b", "vantage-c")
    ring = _Ring(tmp_path, names)
    states, cosigners = ring.states, ring.cosigners
    services = [ServiceProcess(ring.config(me), states[me]) for me in names]
    try:
        for service in services:
            service.start()

        def witnessed_by_both(name: str) -> bool:
            seen = {e["witness"] for e in _entries(states[name], "cosignature")}
            return seen == {cosigners[o].name for o in names if o != name}

        for name in names:
            _wait(f"{name} cosigned by both others", lambda n=name: witnessed_by_both(n), *services)
        _wait(
            "the status page's line",
            lambda: "cosigné par 2 témoins (sur 2)" in http_get(services[0].url + "/")[1].decode(),
            *services,
        )
    finally:
        for service in services:
            if service.process is not None and service.process.poll() is None:
                service.stop()
