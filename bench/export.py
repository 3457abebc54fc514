"""Benchmark of `vigie export` / `vigie verify FILE.zip` on a synthetic year of observations.

Builds a SQLite ledger (10 targets, one check a minute, ~1 KB bodies, a checkpoint every hour)
through the ledger API, exports the whole period in a subprocess and verifies the bundle in
another. Targets: export ≤ 60 s, verify ≤ 60 s, peak memory ≤ 500 MB. Memory: peak anonymous
RSS (the process's own memory, sampled every 50 ms) and VmHWM (which also counts the pages of
the SQLite file the ledger maps with mmap: page cache, not memory the export holds; a parent's
RSS is not inherited as with getrusage). Reference: one plain pass over the ledger rows,
measured in the same run.

    .venv/bin/python bench/export.py --scale 0.01     # ~53,000 observations
    .venv/bin/python bench/export.py --scale 0.2 --dir /tmp/b --workers 0   # ledger kept
    .venv/bin/python bench/export.py --scale 0.03 --dir /tmp/b --repeat 3 --without isal

`--without TRICK` turns one of the export's speed tricks off (in the exporting process; the
CSV worker process keeps them: use `--workers 0` with `msgspec`), to measure what it pays:
the figures are written next to each trick in evidence/bundle/.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from config.vocabulary import CHECKPOINT, OBSERVATION
from evidence.ledger.backends import open_ledger
from evidence.ledger.checkpoint import Checkpoint, checkpoint_text
from evidence.ledger.signing import NoteSigner
from probes.observation import format_time

TARGETS = [f"cible-{i:02d}" for i in range(10)]
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
PAD = "x" * 560


def _body(target: str, when: dt.datetime, ok: bool) -> dict[str, object]:
    return {
        "target_id": target,
        "kind": "http",
        "vantage": "paris-1",
        "started_at": format_time(when),
        "duration_s": 0.231,
        "success": ok,
        "outcome": "ok" if ok else "http_status",
        "http_status": 200 if ok else 503,
        "phases": {
            "resolve": 0.001,
            "connect": 0.01,
            "tls": 0.05,
            "processing": 0.1,
            "transfer": 0.07,
        },
        "final_url": f"https://example.invalid/{target}",
        "remote_ip": "192.0.2.10",
        "body_sha256": "0" * 64,
        "body_bytes": 51234,
        "artifacts": {},
        "environment": {"vantage": "paris-1", "os": "Linux 6.1", "python": "3.11.7", "pad": PAD},
    }


def build(path: Path, minutes: int, key: Path) -> int:
    private = Ed25519PrivateKey.generate()
    key.write_bytes(private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    key.chmod(0o600)
    signer = NoteSigner("paris-1", private)
    ledger = open_ledger(path, vantage="paris-1")
    began = time.monotonic()
    batch: list[tuple[str, object]] = []
    for minute in range(minutes):
        when = START + dt.timedelta(minutes=minute)
        down = minute % 50_000 < 30 and minute > 0  # a few 30-minute outages of cible-00
        batch.extend(
            (OBSERVATION, _body(target, when, not (down and target == "cible-00")))
            for target in TARGETS
        )
        if minute % 60 == 59:

            def cp(head, when=when):  # type: ignore[no-untyped-def]
                note = signer.sign(checkpoint_text("paris-1", head.size, head.root))
                c = Checkpoint.from_note(note, seq=head.size, time=format_time(when))
                return dataclasses.replace(c, key=signer.verifier.vkey()).body()

            batch.append((CHECKPOINT, cp))
        if len(batch) >= 20_000:
            ledger.append(batch)  # type: ignore[arg-type]
            batch = []
            print(
                f"\r  built {minute + 1}/{minutes} minutes ({time.monotonic() - began:.0f} s)",
                end="",
                file=sys.stderr,
            )
    ledger.append(batch)  # type: ignore[arg-type]
    size = ledger.size()
    ledger.close()
    print(file=sys.stderr)
    return size


def _deflate_backend() -> str:
    """What deflates the large members: ISA-L (the `isal` wheel) or zlib, the fallback."""
    try:
        import isal  # noqa: F401
    except ImportError:
        return "zlib"
    return "isal"


# Code run in the exporting process before the export, to turn a speed trick off.
TRICKS_OFF = {
    # zlib's deflate and CRC-32 instead of ISA-L's
    "isal": "import zlib, evidence.bundle.zipwriter as z; z._ISAL_COMPRESSOBJ = None; "
    "z.crc32 = zlib.crc32",
    # deflating, hashing and piping to the CSV worker in the caller's thread
    "thread": """
import queue, evidence.bundle.zipwriter as z, evidence.bundle.table as t
class Inline:
    def __init__(self, write, depth=3): self.write, self.queue = write, queue.Queue()
    def __enter__(self): return self
    def __exit__(self, *exc): pass
z.Background = Inline; t.Background = Inline""",
    # every write deflated as it comes, not gathered to 256 KiB first
    "gather": "import evidence.bundle.zipwriter as z; z._DEFLATE_MIN = 0",
    # observations parsed whole (orjson) instead of msgspec's typed decoding of a few fields
    "msgspec": """
import evidence.bundle.table as t
class Whole:
    def decode(self, body): return t._observation_of(body)
    def decode_lines(self, block): return [t._observation_of(b) for b in block.split(b"\\n") if b]
t._OBSERVATION_DECODER = Whole(); t._decode_observation = t._observation_of""",
    # ledger rows read 512 at a time instead of 8192
    "chunk": "import evidence.bundle.export as e; e._CHUNK = 512",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of a year (default 1)")
    parser.add_argument("--dir", type=Path, default=None, help="work directory (kept)")
    parser.add_argument(
        "--workers", type=int, default=None, help="CSV worker processes (default: automatic)"
    )
    parser.add_argument("--without", choices=sorted(TRICKS_OFF), action="append", default=[])
    parser.add_argument("--repeat", type=int, default=1, help="exports (the fastest is kept)")
    parser.add_argument("--no-verify", action="store_true", help="export only (verify_s: 0)")
    args = parser.parse_args()
    minutes = max(120, int(365 * 24 * 60 * args.scale))
    work = args.dir or Path(tempfile.mkdtemp(prefix="vigie-bench-export-"))
    work.mkdir(parents=True, exist_ok=True)
    db, key, out = work / "ledger.db", work / "vantage.key", work / "bundle.zip"
    if not db.exists():
        began = time.monotonic()
        size = build(db, minutes, key)
        print(f"built {size} entries in {time.monotonic() - began:.1f} s")
    root = str(Path(__file__).resolve().parents[1])
    ref_began = time.monotonic()
    ledger = open_ledger(db, readonly=True)
    total = sum(len(r[2]) for rows in ledger.row_chunks(0, ledger.size(), 8192) for r in rows)
    entries = ledger.size()
    ledger.close()
    reference = time.monotonic() - ref_began
    memory = """
import threading
PEAK = [0]
def _anon():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    return 0
def _sample():
    while True:
        PEAK[0] = max(PEAK[0], _anon())
        time.sleep(0.05)
threading.Thread(target=_sample, daemon=True).start()
def _hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0
"""
    patches = "\n".join(TRICKS_OFF[name] for name in args.without)
    child = f"""
import sys, time, datetime as dt, logging
{memory}
sys.path.insert(0, {root!r})
from pathlib import Path
from evidence.bundle.export import export_bundle
from evidence.bundle.model import ExportRequest
from evidence.ledger.backends import open_ledger
from evidence.ledger.signing import NoteSigner, load_private_key
import structlog
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
{patches}
ledger = open_ledger({str(db)!r}, readonly=True)
began = time.monotonic()
period = ExportRequest(
    dt.datetime(2025, 1, 1, tzinfo=dt.UTC), dt.datetime(2028, 1, 1, tzinfo=dt.UTC)
)
export_bundle(ledger, Path({str(out)!r}), period,
    signer=NoteSigner("paris-1", load_private_key(Path({str(key)!r}))), progress=False,
    workers={args.workers!r})
print(time.monotonic() - began, max(PEAK[0], _anon()), _hwm())
"""
    runs = []
    for _ in range(max(1, args.repeat)):
        done = subprocess.run(
            [sys.executable, "-c", child], capture_output=True, text=True, check=True
        )
        runs.append(tuple(float(x) for x in done.stdout.split()))
    export_s, anon_kb, hwm_kb = min(runs)
    verify_child = f"""
import sys, time
{memory}
sys.path.insert(0, {root!r})
from pathlib import Path
from evidence.bundle.verify import verify_bundle
began = time.monotonic()
report = verify_bundle(Path({str(out)!r}))
assert report.ok, report.summary()
print(time.monotonic() - began, max(PEAK[0], _anon()), _hwm())
"""
    verify_s = verify_anon_kb = verify_hwm_kb = 0.0
    if not args.no_verify:
        done = subprocess.run(
            [sys.executable, "-c", verify_child], capture_output=True, text=True, check=True
        )
        verify_s, verify_anon_kb, verify_hwm_kb = (float(x) for x in done.stdout.split())
    scale_to_year = (365 * 24 * 60 * 11) / entries
    print(
        json.dumps(
            {
                "entries": entries,
                "ledger_bytes": total,
                "bundle_bytes": out.stat().st_size,
                "reference_scan_s": round(reference, 2),
                "export_s": round(export_s, 2),
                "export_vs_scan": round(export_s / reference, 1),
                "export_peak_anon_mb": round(anon_kb / 1024, 1),
                "export_peak_rss_incl_mapped_ledger_mb": round(hwm_kb / 1024, 1),
                "verify_s": round(verify_s, 2),
                "verify_peak_anon_mb": round(verify_anon_kb / 1024, 1),
                "verify_peak_rss_mb": round(verify_hwm_kb / 1024, 1),
                "verify_vs_scan": round(verify_s / reference, 1),
                "extrapolated_year_export_s": round(export_s * scale_to_year, 1),
                "extrapolated_year_verify_s": round(verify_s * scale_to_year, 1),
                "targets": {"export_s": 60, "verify_s": 60, "peak_mb": 500},
                "deflate": _deflate_backend(),
                "without": args.without,
                "export_runs_s": [round(run[0], 2) for run in runs],
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
