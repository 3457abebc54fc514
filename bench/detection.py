"""Benchmark: time from an injected fault to the outage event in the ledger, over many faults.

Everything runs on loopback: the simulator (`python -m simulator`) as the target and, on its
separate login host, the control; `vigie run` probing them; this script reading the ledger
read-only. It never probes another machine. Not a test: it prints figures and ratios.

Usage: .venv/bin/python bench/detection.py [--faults 20] [--interval 3] [--recheck 1]
                                           [--confirm-after 3] [--recover-after 2]

For each fault (kinds cycled: http_500, http_503_maintenance, down, reset, wrong_content), at
a random phase of the check interval: switch the fault on at t0, poll the ledger every 20 ms
until an `outage` `opened` entry for the target appears (t1), switch it off at t2 and wait for
the `closed` entry. Reported: detection = t1 - t0 against the goal interval + (confirm_after -
1) x recheck + 1 s (exit 1 if any run misses it), and the recorded start and end against the
injected times (start error = started_at - t0, end error = ended_at - t2).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exporter.logs import configure_logging  # noqa: E402
from simulator.process import SimulatorProcess  # noqa: E402
from tests import service_fixture  # noqa: E402

TARGET = "bench-site"
FAULTS = ("http_500", "http_503_maintenance", "down", "reset", "wrong_content")
POLL_S = 0.02
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parse_time(value: str) -> float:
    """Unix time of an RFC 3339 string."""
    return dt.datetime.fromisoformat(value).timestamp()


class LedgerFollower(service_fixture.LedgerFollower):
    """Reads new entries of the benchmark target in a ledger `vigie run` is writing."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, TARGET, types=("observation", "outage", "gap", "vantage"))

    def wait_for(self, predicate: Any, timeout: float, what: str) -> tuple[dict[str, Any], float]:
        """The first new entry matching `predicate` and the wall time it was seen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for entry in self.poll():
                if predicate(entry):
                    return entry, time.time()
            time.sleep(POLL_S)
        raise SystemExit(
            f"no {what} in the ledger after {timeout:.0f} s: is the outage tracker wired into "
            "`vigie run` (OutageRecorder) and the ledger opened by the service?"
        )


@contextlib.contextmanager
def vigie_run(config: dict[str, Any], state: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`vigie run` with `config`, stopped with SIGTERM at the end."""
    path = state / "vigie.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    log = (state / "service.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter.cli", "run", "--config", str(path)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        health = f"http://{config['listen']}/healthz"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"vigie run exited: {(state / 'service.log').read_text()[-3000:]}")
            with contextlib.suppress(OSError), _NO_PROXY.open(health, timeout=1) as answer:
                if answer.status == 200:
                    break
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 1 if a detection missed its goal."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", type=int, default=20)
    parser.add_argument("--interval", type=float, default=3.0, help="check interval (s)")
    parser.add_argument("--recheck", type=float, default=1.0, help="fast re-check delay (s)")
    parser.add_argument("--confirm-after", type=int, default=3)
    parser.add_argument("--recover-after", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    configure_logging()  # library logs to stderr; stdout carries the figures
    rng = random.Random(args.seed)
    goal = args.interval + (args.confirm_after - 1) * args.recheck + 1.0
    print(
        f"detection bench: {args.faults} faults, interval {args.interval:g} s, recheck "
        f"{args.recheck:g} s, confirm_after {args.confirm_after}, recover_after "
        f"{args.recover_after}; goal per fault: {goal:g} s"
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="vigie-bench-") as tmp, SimulatorProcess() as sim:
        state = Path(tmp)
        config = {
            "vantage": {"name": "bench"},
            "listen": f"127.0.0.1:{free_port()}",
            "defaults": {"interval": f"{args.interval}s", "timeout": "2s"},
            "min_interval": "0.2s",
            "targets": [
                {
                    "id": TARGET,
                    "name": "Simulateur",
                    "kind": "http",
                    "url": sim.site_url,
                    "expect": {"status": [200], "contains": "trangers"},
                }
            ],
            "controls": [sim.login_url],
            "outages": {
                "confirm_after": args.confirm_after,
                "recover_after": args.recover_after,
                "recheck": f"{args.recheck}s",
            },
            "ledger": {
                "url": f"sqlite:///{state / 'ledger.db'}",
                "artifacts": str(state / "artifacts"),
            },
            "signing": {"key": str(state / "vantage.key")},
        }
        follower = LedgerFollower(state / "ledger.db")
        with vigie_run(config, state):
            follower.wait_for(
                lambda e: e["type"] == "observation" and e["success"], 60, "first good check"
            )
            for index in range(args.faults):
                fault = FAULTS[index % len(FAULTS)]
                time.sleep(rng.uniform(0, args.interval))  # a random phase of the schedule
                t0 = time.time()
                sim.set_fault("/", fault, host="site")
                opened, t1 = follower.wait_for(
                    lambda e: e["type"] == "outage" and e["event"] == "opened",
                    goal * 4 + 30,
                    "outage opened",
                )
                sim.clear_faults()
                t2 = time.time()
                closed, _ = follower.wait_for(
                    lambda e: e["type"] == "outage" and e["event"] == "closed",
                    args.interval * 4 + args.recheck * args.recover_after + 30,
                    "outage closed",
                )
                row = {
                    "fault": fault,
                    "detection_s": t1 - t0,
                    "start_error_s": parse_time(opened["started_at"]) - t0,
                    "end_error_s": parse_time(closed["ended_at"]) - t2,
                    "causes": opened["causes"],
                }
                rows.append(row)
                print(
                    f"  {index + 1:2d} {fault:21s} detection {row['detection_s']:6.2f} s "
                    f"({row['detection_s'] / goal:4.0%} of goal)  start error "
                    f"{row['start_error_s']:+5.2f} s  end error {row['end_error_s']:+5.2f} s  "
                    f"{json.dumps(row['causes'])}"
                )
        follower.close()
    detections = [r["detection_s"] for r in rows]
    missed = [r for r in rows if r["detection_s"] > goal]
    no_recheck = args.interval * args.confirm_after
    print(
        f"detection: min {min(detections):.2f} s, median {statistics.median(detections):.2f} s, "
        f"max {max(detections):.2f} s; goal {goal:g} s: {len(rows) - len(missed)}/{len(rows)} "
        f"within (max = {max(detections) / goal:.0%} of goal)"
    )
    print(
        f"reference without fast re-check (confirm_after x interval = {no_recheck:g} s): "
        f"median detection is {statistics.median(detections) / no_recheck:.0%} of it"
    )
    starts = [abs(r["start_error_s"]) for r in rows]
    ends = [abs(r["end_error_s"]) for r in rows]
    print(
        f"recorded start vs injected: max |error| {max(starts):.2f} s "
        f"(bound: interval {args.interval:g} s); recorded end vs cleared: max |error| "
        f"{max(ends):.2f} s (bound: recheck {args.recheck:g} s)"
    )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
