"""Durability: `kill -9` at any moment corrupts nothing and loses no acknowledged entry.

A child Python process appends observations (some with artifacts) through the real
LedgerWriter while the real Checkpointer checkpoints every 20 ms, and prints each sequence
number once `append` has returned. The test kills it with SIGKILL at a random moment, then
verifies the whole ledger and looks up every acknowledged entry; the next cycle reopens the
same ledger, so recovery after a crash is exercised too.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from evidence.ledger.backends import open_ledger
from evidence.ledger.signing import NoteSigner, keygen, load_private_key
from evidence.ledger.verify import verify_ledger

pytest_plugins = ["tests.postgres_fixture"]

CYCLES = 5
REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import asyncio, logging, os, sys
from pathlib import Path

import structlog

structlog.configure(
    wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    logger_factory=structlog.PrintLoggerFactory(sys.stderr),
)

from evidence.ledger.artifacts import FileArtifactStore
from evidence.ledger.backends import open_ledger
from evidence.ledger.checkpoint import CheckpointCopy, Checkpointer
from evidence.ledger.core import LedgerWriter
from evidence.ledger.signing import NoteSigner, load_private_key

url, key, artifacts, copy, cycle = sys.argv[1:]


async def main() -> None:
    ledger = open_ledger(url, vantage="paris-1")
    writer = LedgerWriter(ledger)
    signer = NoteSigner("paris-1", load_private_key(Path(key)))
    checkpointer = Checkpointer(writer, signer, copy=CheckpointCopy(Path(copy)))
    store = FileArtifactStore(Path(artifacts))
    ticker = asyncio.create_task(checkpointer.run(0.02))

    async def producer(p: int) -> None:
        n = 0
        while True:
            names = {}
            if n % 5 == 0:
                data = os.urandom(3000)
                names = {await asyncio.to_thread(store.put, data, "screenshot"): "screenshot"}
            ident = f"{cycle}-{p}-{n}"
            body = {"id": ident, "artifacts": names, "success": True, "pad": "x" * 800}
            seq = await writer.append("observation", body)
            sys.stdout.write(f"ack {seq} {ident}\n")
            sys.stdout.flush()
            n += 1

    print("ready", flush=True)
    await asyncio.gather(ticker, *(producer(p) for p in range(8)))


asyncio.run(main())
"""


def _run_and_kill(
    args: list[str], rng: random.Random, cwd: Path
) -> tuple[list[tuple[int, str]], str]:
    """Start the child, wait until it writes, SIGKILL it; the acknowledged (seq, id) pairs."""
    lines: list[bytes] = []
    ready = threading.Event()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
    ) as process:
        stdout, stderr = process.stdout, process.stderr
        assert stdout is not None
        assert stderr is not None

        def read() -> None:
            for line in stdout:
                lines.append(line)
                if line == b"ready\n":
                    ready.set()
            ready.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            assert ready.wait(60), "the child did not start"
            time.sleep(rng.uniform(0.05, 0.6))
        finally:
            process.kill()  # SIGKILL: no cleanup, no flush, no atexit
            process.wait(30)
        reader.join(30)
        errors = stderr.read().decode(errors="replace")
    acked = []
    for line in lines:
        parts = line.decode().split()
        if line.endswith(b"\n") and len(parts) == 3 and parts[0] == "ack":
            acked.append((int(parts[1]), parts[2]))
    return acked, errors


@pytest.mark.slow
class TestKillNine:
    """SIGKILL at random moments, several cycles, on both backends."""

    def test_every_acknowledged_entry_survives(self, ledger_url: str, tmp_path: Path) -> None:
        """After each kill the ledger verifies and holds every acknowledged entry."""
        key = tmp_path / "vantage.key"
        keygen(key)
        signer = NoteSigner("paris-1", load_private_key(key))
        artifacts = tmp_path / "artifacts"
        copy = tmp_path / "ledger.checkpoints"
        seed = random.randrange(1 << 30)
        rng = random.Random(seed)
        all_acked: dict[int, str] = {}
        for cycle in range(CYCLES):
            acked, errors = _run_and_kill(
                [ledger_url, str(key), str(artifacts), str(copy), str(cycle)], rng, tmp_path
            )
            assert "Traceback" not in errors, f"seed {seed}, cycle {cycle}:\n{errors}"
            for seq, ident in acked:
                assert seq not in all_acked, f"seed {seed}: seq {seq} acknowledged twice"
                all_acked[seq] = ident
            report = verify_ledger(
                ledger_url,
                public_key=signer.verifier,
                artifacts_dir=artifacts,
                checkpoint_copy=copy,
            )
            assert report.ok, f"seed {seed}, cycle {cycle}: {report.summary()}"
            ledger = open_ledger(ledger_url, readonly=True)
            try:
                size = ledger.size()
                missing = [seq for seq in all_acked if seq >= size]
                assert not missing, f"seed {seed}: acknowledged {missing[:5]} lost"
                for seq, ident in all_acked.items():
                    assert json.loads(ledger.get(seq))["id"] == ident, f"seed {seed}: {seq}"
            finally:
                ledger.close()
        assert len(all_acked) > CYCLES, f"seed {seed}: the children wrote almost nothing"
        assert report.checkpoints >= 1
