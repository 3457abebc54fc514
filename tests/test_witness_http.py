"""Witnesses over HTTP on loopback (evidence/witness_http.py): three witnesses cosign a real
ledger's checkpoints; one stopped and restarted catches up with one consistency proof."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from config.vocabulary import CHECKPOINT, COSIGNATURE
from evidence.ledger.backends import open_ledger
from evidence.ledger.checkpoint import Checkpoint
from evidence.ledger.verify import verify_ledger
from evidence.ledger.witness import Cosigner, Witness, WitnessState, verify_cosignature
from evidence.ledger.witness_http import Cosigning, WitnessEndpoint, witness_app
from tests.bundle_fixture import build_ledger


async def _serve(witness: Witness, port: int = 0) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(witness_app(witness))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    server = site._server  # the port the OS chose
    assert server is not None
    return runner, server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]


def test_three_witnesses_and_one_that_restarts(tmp_path: Path) -> None:
    built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path, minutes=120)
    ledger = open_ledger(built.url, vantage="paris-1")
    checkpoints = [
        Checkpoint.from_entry(seq, body)
        for rows in ledger.row_chunks(0, ledger.size())
        for seq, kind, body, _leaf in rows
        if kind == CHECKPOINT
    ]
    assert len(checkpoints) == 4
    log_key = built.signer.verifier.vkey()
    cosigners = [
        Cosigner(f"temoin{i}.example.org/w", Ed25519PrivateKey.generate()) for i in range(3)
    ]

    def witness(i: int) -> Witness:  # a fresh process would read the same state file
        return Witness(cosigners[i], {"paris-1": log_key}, WitnessState(tmp_path / f"w{i}.json"))

    async def append(entry_type: str, body: dict[str, Any]) -> None:
        await asyncio.to_thread(ledger.append, [(entry_type, body)])

    async def scenario() -> list[int]:
        served = [await _serve(witness(i)) for i in range(3)]
        endpoints = [
            WitnessEndpoint(c.name, c.vkey(), f"http://127.0.0.1:{port}")
            for c, (_runner, port) in zip(cosigners, served, strict=True)
        ]
        cosigning = Cosigning(endpoints, ledger.consistency_proof, append, timeout=10)
        counts = [await cosigning.cosign(checkpoints[0])]
        runner, port = served[2]
        await runner.cleanup()  # witness 3 goes down
        counts.append(await cosigning.cosign(checkpoints[1]))
        counts.append(await cosigning.cosign(checkpoints[2]))
        before = cosigning.requests[cosigners[2].name]
        served[2] = await _serve(witness(2), port)  # back, with its state from disk
        counts.append(await cosigning.cosign(checkpoints[3]))
        assert cosigning.requests[cosigners[2].name] == before + 1  # one request caught up
        await cosigning.aclose()
        for runner, _port in served:
            await runner.cleanup()
        return counts

    assert asyncio.run(scenario()) == [3, 2, 2, 3]
    state = WitnessState(tmp_path / "w2.json").get("paris-1")
    assert state == (checkpoints[3].tree_size, checkpoints[3].root_hash)
    stored = [
        json.loads(body)
        for rows in ledger.row_chunks(0, ledger.size())
        for _seq, kind, body, _leaf in rows
        if kind == COSIGNATURE
    ]
    assert len(stored) == 10
    by_size = {c.tree_size: c for c in checkpoints}
    for entry in stored:
        checkpoint = by_size[entry["tree_size"]]
        body = checkpoint.note[: checkpoint.note.rfind("\n\n") + 1]
        cosigner = next(c for c in cosigners if c.name == entry["witness"])
        verify_cosignature(entry["cosignature"], body, cosigner.vkey())
    ledger.close()
    # the cosignature entries are ordinary ledger entries: the ledger still verifies
    report = verify_ledger(built.url, public_key=built.signer.verifier)
    assert report.ok, report.summary()
