"""Benchmark: evidence ledger throughput (durable appends, verification, inclusion proofs).

Local only: a SQLite file in a temporary directory and a throwaway PostgreSQL server on
127.0.0.1 with fsync on. Not a test: it prints figures and their ratio to issue 5's goals
(≥ 5,000 observations/s on SQLite, ≥ 2,000 on PostgreSQL, verification ≥ 500,000 entries/s),
next to this machine's raw SHA-256 speed on the same entries, measured in the same run.

Issue 18 adds: checkpoint-to-cosigned latency with 3 witnesses on loopback (goal ≤ 1 s), a
witness's CPU per checkpoint, and the size and verify time a bundle filtered to one target
gains from the complete-history data (goal ≤ 10 % on both; same ledger written without it as
the reference, in the same run).

    .venv/bin/python bench/ledger.py [--appends 20000] [--verify-entries 300000] [--no-postgres]
    .venv/bin/python bench/ledger.py --only-history [--history-minutes 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import hashlib
import logging
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from config.vocabulary import CHECKPOINT, OBSERVATION, Outcome
from evidence.ledger import merkle
from evidence.ledger.backends import open_ledger
from evidence.ledger.checkpoint import Checkpoint, checkpoint_text
from evidence.ledger.core import LedgerWriter, encode_entry
from evidence.ledger.entries import TreeHead
from evidence.ledger.signing import NoteSigner
from evidence.ledger.verify import verify_ledger
from probes.observation import Observation, format_time

GOAL_SQLITE = 5_000.0
GOAL_POSTGRES = 2_000.0
GOAL_VERIFY = 500_000.0
_YEAR_START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def observation(n: int) -> dict[str, Any]:
    """A realistic HTTP observation (~1.5 KB of canonical JSON)."""
    obs = Observation(
        target_id=f"anef-{['accueil', 'connexion', 'api'][n % 3]}",
        kind="http",
        vantage="paris-1",
        started_at=f"2026-11-23T13:{n // 60 % 60:02d}:{n % 60:02d}.{n % 1000000:06d}Z",
        duration_s=0.2 + (n % 997) / 1000,
        success=True,
        outcome=Outcome.OK,
        http_status=200,
        phases={
            "resolve": 0.012,
            "connect": 0.031,
            "tls": 0.054,
            "processing": 0.2,
            "transfer": 0.01,
        },
        final_url="https://administration-etrangers-en-france.interieur.gouv.fr/",
        remote_ip="2a01:e0a:1ee:4a10::12",
        body_sha256=hashlib.sha256(b"%d" % n).hexdigest(),
        body_bytes=48213 + n % 100,
        environment={
            "vantage": "paris-1",
            "operator": "Association X",
            "local_addresses": ["192.0.2.10", "2001:db8::10"],
            "resolver": ["192.0.2.53"],
            "resolved": ["2a01:e0a:1ee:4a10::12", "203.0.113.7"],
            "proxy": None,
            "os": "Linux 6.1.0-18-amd64 (Debian GNU/Linux 12)",
            "python": "3.11.7",
            "vigie": "0.1.0",
            "browser": None,
            "user_agent": "Vigie/0.1 (+https://github.com/vigie-observatoire/vigie; sonde)",
            "fresh_profile": True,
            "clock": {"source": "chrony", "offset_s": 0.00012, "synchronised": True},
            "tls_library": "OpenSSL 3.0.11 19 Sep 2023",
            "notes": "observation faite depuis un accès fixe, sans proxy ni cache" * 4,
        },
        timings={"scheduled_delay_s": 0.0021},
    )
    return obs.to_dict()


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (a load-independent measure: the
    wall time of a shared machine says more about the neighbours than about the code)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _ratio(value: float, goal: float) -> str:
    return f"{value:,.0f}/s (goal {goal:,.0f}/s: x{value / goal:.2f})"


async def _append_run(url: str, total: int, concurrency: int) -> float:
    ledger = open_ledger(url, vantage="paris-1")
    writer = LedgerWriter(ledger)
    bodies = [observation(n) for n in range(total)]
    per = total // concurrency

    async def producer(p: int) -> None:
        for body in bodies[p * per : (p + 1) * per]:
            await writer.append(OBSERVATION, body)

    began = time.perf_counter()
    await asyncio.gather(*(producer(p) for p in range(concurrency)))
    elapsed = time.perf_counter() - began
    await writer.aclose()
    ledger.close()
    return (per * concurrency) / elapsed


def bench_appends(url: str, label: str, total: int, goal: float) -> None:
    for concurrency in (64, 512):
        rate = asyncio.run(_append_run(url, total, concurrency))
        print(
            f"  {label} durable appends, {concurrency:>3} concurrent writers: {_ratio(rate, goal)}"
        )


def build_ledger(url: str, total: int, signer: NoteSigner) -> None:
    """Fill a ledger quickly (large transactions), one signed checkpoint per 5,000 entries."""
    ledger = open_ledger(url, vantage="paris-1")
    batch = 5_000
    template = [observation(n) for n in range(batch)]

    def checkpoint(head: TreeHead) -> dict[str, Any]:
        note = signer.sign(checkpoint_text("paris-1", head.size, head.root))
        key = signer.verifier.vkey()
        return Checkpoint(head.size, "paris-1", head.size, head.root, note, None, key).body()

    while ledger.size() < total:
        count = min(batch - 1, total - ledger.size() - 1)
        entries: list[tuple[str, Any]] = [(OBSERVATION, template[i]) for i in range(count)]
        ledger.append([*entries, (CHECKPOINT, checkpoint)])
    ledger.close()


def bench_verify(url: str, total: int) -> None:
    signer = NoteSigner("paris-1", Ed25519PrivateKey.generate())
    build_ledger(url, total, signer)
    ledger = open_ledger(url, readonly=True)
    sample = [body for _, body in ledger.iter_entries(0, min(total, 200_000))]
    size = ledger.size()
    print(f"  entry size: {sum(map(len, sample)) / len(sample):,.0f} bytes on average")
    began, cpu = time.perf_counter(), _cpu_seconds()
    hashes = merkle.leaf_hashes(sample)
    tree = merkle.CompactTree()
    tree.extend(hashes)
    raw = len(sample) / (time.perf_counter() - began)
    cpu = _cpu_seconds() - cpu
    print(
        f"  reference: SHA-256 leaves + tree in memory, one core: {raw:,.0f} entries/s "
        f"(CPU {cpu / len(sample) * 1e6:.2f} us/entry)"
    )
    for workers in (1, os.cpu_count() or 1):
        cpu = _cpu_seconds()
        report = verify_ledger(url, workers=workers, public_key=signer.verifier)
        cpu = _cpu_seconds() - cpu
        assert report.ok, report.summary()
        rate = report.entries / report.elapsed_s
        print(
            f"  verify {report.entries:,} entries ({report.checkpoints} checkpoints), "
            f"{workers} process(es): {report.elapsed_s:.2f} s, {_ratio(rate, GOAL_VERIFY)}; "
            f"10 M entries in ~{10_000_000 / rate:.0f} s; "
            f"CPU {cpu / report.entries * 1e6:.2f} us/entry (all processes)"
        )
    rng = random.Random(5)
    seqs = [rng.randrange(size) for _ in range(2000)]
    root = ledger.root()
    began = time.perf_counter()
    proofs = [ledger.inclusion_proof(seq) for seq in seqs]
    elapsed = time.perf_counter() - began
    for seq, proof in zip(seqs[:50], proofs[:50], strict=True):
        merkle.verify_inclusion(merkle.leaf_hash(ledger.get(seq)), seq, size, proof, root)
    print(
        f"  inclusion proof in a tree of {size:,}: {elapsed / len(seqs) * 1000:.2f} ms each "
        f"({len(proofs[0])} hashes)"
    )
    began = time.perf_counter()
    for old in range(1, size, max(size // 200, 1)):
        ledger.consistency_proof(old)
    print(f"  consistency proof: {(time.perf_counter() - began) / 200 * 1000:.2f} ms each")
    ledger.close()


def _year_like(url: str, minutes: int, signer: NoteSigner, *, chained: bool) -> None:
    """10 targets checked every minute, a checkpoint every 5 minutes; `chained`: with the
    complete-history chain (evidence/ledger/chain.py), else as a ledger written before it."""
    import evidence.ledger.chain
    from evidence.ledger.checkpoint import head_text

    link = evidence.ledger.chain.link
    if not chained:
        evidence.ledger.chain.link = lambda body, _seq, _heads: body  # type: ignore[assignment]
    try:
        ledger = open_ledger(url, vantage="paris-1")
        targets = [f"cible-{i:02d}" for i in range(10)]
        batch: list[tuple[str, Any]] = []
        for minute in range(minutes):
            for n, target in enumerate(targets):
                when = format_time(_YEAR_START + dt.timedelta(minutes=minute))
                body = {**observation(minute * 10 + n), "target_id": target, "started_at": when}
                batch.append((OBSERVATION, body))
            if minute % 5 == 4:

                def checkpoint(head: TreeHead) -> dict[str, Any]:
                    text = (
                        head_text("paris-1", head)
                        if chained
                        else checkpoint_text("paris-1", head.size, head.root)
                    )
                    note = signer.sign(text)
                    key = signer.verifier.vkey()
                    return Checkpoint(
                        head.size, "paris-1", head.size, head.root, note, None, key
                    ).body()

                batch.append((CHECKPOINT, checkpoint))
            if len(batch) >= 5_000:
                ledger.append(batch)
                batch = []
        ledger.append(batch)
        ledger.close()
    finally:
        evidence.ledger.chain.link = link


def bench_completeness(directory: Path, minutes: int) -> None:
    """Size and verify time a bundle filtered to one target gains from the complete-history
    data (goal: ≤ 10 % on both), against the same ledger written without it."""
    from evidence.bundle.export import export_bundle
    from evidence.bundle.model import ExportRequest
    from evidence.bundle.verify import verify_bundle

    signer = NoteSigner("paris-1", Ed25519PrivateKey.generate())
    figures = {}
    for chained in (False, True):
        url = f"sqlite:///{directory / f'year-{chained}.db'}"
        _year_like(url, minutes, signer, chained=chained)
        ledger = open_ledger(url, readonly=True)
        out = directory / f"year-{chained}.zip"
        end = _YEAR_START + dt.timedelta(minutes=minutes - 7)  # a checkpoint follows
        request = ExportRequest(_YEAR_START, end, ("cible-03",))
        export_bundle(
            ledger,
            out,
            request,
            signer=signer,
            report=lambda _s, _a: b"%PDF-1.4\n",
            progress=False,
        )
        ledger.close()
        times = []
        for _ in range(3):
            began = time.perf_counter()
            report = verify_bundle(out, public_key=signer.verifier)
            times.append(time.perf_counter() - began)
            assert report.ok, report.summary()
        assert bool(report.complete) == chained, (report.complete, report.warnings)
        figures[chained] = (out.stat().st_size, min(times))
    if os.environ.get("BENCH_KEEP"):
        import shutil

        for chained in (False, True):
            shutil.copy(directory / f"year-{chained}.zip", os.environ["BENCH_KEEP"])
    (size0, time0), (size1, time1) = figures[False], figures[True]
    print(
        f"  bundle of one target over {minutes:,} minutes (10 targets): "
        f"{size0:,} -> {size1:,} bytes (+{(size1 / size0 - 1) * 100:.1f} %, goal <= 10 %); "
        f"verify {time0:.2f} -> {time1:.2f} s (+{(time1 / time0 - 1) * 100:.1f} %, goal <= 10 %)"
    )


def bench_witnesses(directory: Path, checkpoints: int) -> None:
    """Checkpoint-to-cosigned latency with 3 witnesses on loopback (goal ≤ 1 s) and a
    witness's CPU per checkpoint (evidence/ledger/witness_http.py, evidence/ledger/witness.py)."""
    from aiohttp import web

    from evidence.ledger.witness import Cosigner, Witness, WitnessState
    from evidence.ledger.witness_http import Cosigning, WitnessEndpoint, witness_app

    signer = NoteSigner("paris-1", Ed25519PrivateKey.generate())
    ledger = open_ledger(directory / "witnessed.db", vantage="paris-1")
    from evidence.ledger.checkpoint import head_text

    def checkpoint(head: TreeHead) -> dict[str, Any]:
        note = signer.sign(head_text("paris-1", head))
        return Checkpoint(head.size, "paris-1", head.size, head.root, note, None, None).body()

    cosigners = [Cosigner(f"temoin{i}.example.org", Ed25519PrivateKey.generate()) for i in range(3)]
    witnesses = [
        Witness(c, {"paris-1": signer.verifier.vkey()}, WitnessState(directory / f"w{i}.json"))
        for i, c in enumerate(cosigners)
    ]

    async def append(entry_type: str, body: dict[str, Any]) -> None:
        await asyncio.to_thread(ledger.append, [(entry_type, body)])

    async def run() -> tuple[list[float], float]:
        runners, endpoints = [], []
        for cosigner, witness in zip(cosigners, witnesses, strict=True):
            runner = web.AppRunner(witness_app(witness))
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            runners.append(runner)
            endpoints.append(
                WitnessEndpoint(cosigner.name, cosigner.vkey(), f"http://127.0.0.1:{port}")
            )
        cosigning = Cosigning(endpoints, ledger.consistency_proof, append)
        latencies = []
        cpu = 0.0
        for n in range(checkpoints):
            entries: list[tuple[str, Any]] = [
                (OBSERVATION, observation(n * 60 + i)) for i in range(60)
            ]
            ledger.append([*entries, (CHECKPOINT, checkpoint)])
            last = ledger.latest_checkpoint()
            assert last is not None
            began = time.perf_counter()
            cpu_before = _cpu_seconds()
            assert await cosigning.cosign(last) == 3
            latencies.append(time.perf_counter() - began)
            cpu += _cpu_seconds() - cpu_before
        await cosigning.aclose()
        for runner in runners:
            await runner.cleanup()
        return latencies, cpu

    latencies, cpu = asyncio.run(run())
    latencies.sort()
    median, worst = latencies[len(latencies) // 2], latencies[-1]
    # one witness alone: its add-checkpoint handling (parse, note signature, consistency
    # proof, durable state write, cosignature), without HTTP
    solo = Witness(
        cosigners[0], {"paris-1": signer.verifier.vkey()}, WitnessState(directory / "solo.json")
    )
    notes = [body for _, kind, body, _leaf in ledger.iter_rows() if kind == CHECKPOINT]
    old = 0
    began = _cpu_seconds()
    for body in notes:
        cp = Checkpoint.from_entry(0, body)
        proof = ledger.consistency_proof(old, cp.tree_size) if old else []
        lines = [f"old {old}", *(base64.b64encode(p).decode() for p in proof)]
        assert solo.add_checkpoint(("\n".join(lines) + "\n\n" + cp.note).encode()).status == 200
        old = cp.tree_size
    solo_cpu = (_cpu_seconds() - began) / len(notes)
    ledger.close()
    print(
        f"  {checkpoints} checkpoints, 3 witnesses on loopback: checkpoint to 3 cosignatures "
        f"stored, median {median * 1000:.1f} ms, worst {worst * 1000:.1f} ms "
        f"(goal <= 1 s: worst / goal = {worst:.3f}); "
        f"CPU of the whole process (log + 3 witnesses) {cpu / checkpoints * 1000:.1f} ms "
        f"per checkpoint; one witness alone: {solo_cpu * 1000:.2f} ms CPU per checkpoint"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=20_000, metavar="N")
    parser.add_argument("--verify-entries", type=int, default=300_000, metavar="N")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument(
        "--history-minutes",
        type=int,
        default=20_000,
        metavar="N",
        help="minutes of 10 targets for the complete-history overhead (a year: 525600)",
    )
    parser.add_argument("--only-history", action="store_true", help="only issue 18's figures")
    parser.add_argument("--witness-checkpoints", type=int, default=50, metavar="N")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    size = len(encode_entry(OBSERVATION, 123456, observation(123456)))
    print(f"Vigie ledger benchmark ({os.cpu_count()} CPUs); observation entry: {size} bytes")
    with tempfile.TemporaryDirectory(
        prefix="vigie-bench-", dir=os.environ.get("BENCH_DIR")
    ) as scratch:
        directory = Path(scratch)
        print("Witnesses (C2SP tlog-witness on loopback):")
        bench_witnesses(directory, args.witness_checkpoints)
        print("Complete histories (evidence/ledger/chain.py), bundle filtered to one target:")
        bench_completeness(directory, args.history_minutes)
        if args.only_history:
            return 0
        print("SQLite (WAL, synchronous=FULL):")
        bench_appends(f"sqlite:///{directory / 'appends.db'}", "SQLite", args.appends, GOAL_SQLITE)
        print("Verification (SQLite):")
        bench_verify(f"sqlite:///{directory / 'verify.db'}", args.verify_entries)
        if not args.no_postgres:
            from tests.postgres_fixture import PostgresServer, find_pg_bin

            if find_pg_bin() is None:
                print("PostgreSQL: skipped (initdb not found)")
                return 0
            server = PostgresServer.start(durable=True)
            try:
                print("PostgreSQL (fsync on, synchronous_commit on):")
                bench_appends(server.create_schema(), "PostgreSQL", args.appends, GOAL_POSTGRES)
                print("Verification (PostgreSQL):")
                bench_verify(server.create_schema(), min(args.verify_entries, 100_000))
            finally:
                server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
