"""Benchmark: time from an injected fault to the outage event in the ledger, over many faults.

Everything runs on loopback: the simulator (`python -m simulator`) as the target and, on its
separate login host, the control; `vigie run` probing them; this script reading the ledger
read-only. It never probes another machine. Not a test: it prints figures and ratios.

Usage: .venv/bin/python bench/detection.py [--faults 20] [--interval 3] [--recheck 1]
                                           [--confirm-after 3] [--recover-after 2]
                                           [--dual-stack-only] [--no-dual-stack]

For each fault (kinds cycled: http_500, http_503_maintenance, down, reset, wrong_content), at
a random phase of the check interval: switch the fault on at t0, poll the ledger every 20 ms
until an `outage` `opened` entry for the target appears (t1), switch it off at t2 and wait for
the `closed` entry. Reported: detection = t1 - t0 against the goal interval + (confirm_after -
1) x recheck + 1 s (exit 1 if any run misses it), and the recorded start and end against the
injected times (start error = started_at - t0, end error = ended_at - t2).

Dual-stack black hole (needs root: a network namespace and veth pair of its own, the same as
tests/test_netpath_netns.py, removed afterwards): a host name with an IPv6 and an IPv4 address,
the IPv6 one (tried first) silently dropping every packet. Reported: time to the correct `ok`
verdict with Happy Eyeballs against the healthy IPv4 address's own latency (goal: at most 0.5 s
more), and today's sequential connect (the reference, same run) which ends in `timeout`.
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
from tests.test_netpath_netns import NetUnavailableError, dual_stack, make_net  # noqa: E402

TARGET = "bench-site"
FAULTS = ("http_500", "http_503_maintenance", "down", "reset", "wrong_content")
POLL_S = 0.02
DUAL_STACK_RUNS = 7
DUAL_STACK_TIMEOUT = 5.0
DUAL_STACK_GOAL = 0.5  # s over the healthy address's own latency
# Runs inside the namespace: `runs` checks of argv[1], with or without Happy Eyeballs.
DUAL_STACK_PROBE = r"""
import asyncio, json, sys
import probes.httpclient as httpclient
from probes.base import ProbeContext, ProbeSettings
from probes.http import HttpProbe
from config.targets import Target

url, timeout, runs, sequential = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if sequential == "1":
    httpclient.CONNECT_ATTEMPT_DELAY = None  # one address after the other, as before

async def main():
    probe = HttpProbe(ProbeSettings(vantage="bench", user_agent="Vigie-bench/1.0", environment={}))
    target = Target(id="site", name="site", kind="http", url=url)
    for _ in range(runs):
        obs = await probe.check(ProbeContext(target=target, timeout=timeout))
        print(json.dumps({"outcome": obs.outcome.value, "duration_s": obs.duration_s,
                          "remote_ip": obs.remote_ip}), flush=True)

asyncio.run(main())
"""
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


def _probe_in(namespace: str, url: str, runs: int, *, sequential: bool) -> list[dict[str, Any]]:
    arguments = [url, str(DUAL_STACK_TIMEOUT), str(runs), "1" if sequential else "0"]
    done = subprocess.run(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", DUAL_STACK_PROBE, *arguments],
        capture_output=True,
        text=True,
        timeout=runs * (DUAL_STACK_TIMEOUT + 5) + 30,
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"dual-stack probe failed: {done.stderr[-2000:]}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def dual_stack_case() -> int:
    """The dual-stack black hole: Happy Eyeballs against the healthy address and today's."""
    try:
        with make_net() as net:
            url = dual_stack(net, first="ipv6")
            net.black_hole(net.host_ip6)
            healthy = _probe_in(
                net.namespace,
                f"http://{net.host_ip4}:{net.port}/site",
                DUAL_STACK_RUNS,
                sequential=False,
            )
            eyeballs = _probe_in(net.namespace, url, DUAL_STACK_RUNS, sequential=False)
            today = _probe_in(net.namespace, url, 1, sequential=True)
    except NetUnavailableError as exc:
        print(f"dual-stack black hole: skipped ({exc})")
        return 0
    base = statistics.median(r["duration_s"] for r in healthy)
    took = statistics.median(r["duration_s"] for r in eyeballs)
    worst = max(r["duration_s"] for r in eyeballs)
    correct = all(r["outcome"] == "ok" and r["remote_ip"] == net.host_ip4 for r in eyeballs)
    (old,) = today
    print(
        f"dual-stack black hole (IPv6 first, dropped): ok over IPv4 in median {took:.3f} s, "
        f"max {worst:.3f} s ({DUAL_STACK_RUNS} runs, all ok over IPv4: {correct}); healthy "
        f"IPv4 alone: median {base:.3f} s; overhead {took - base:.3f} s (goal <= "
        f"{DUAL_STACK_GOAL:g} s)"
    )
    print(
        f"  reference, sequential connect (before Happy Eyeballs): {old['outcome']} after "
        f"{old['duration_s']:.3f} s (the whole {DUAL_STACK_TIMEOUT:g} s deadline); Happy "
        f"Eyeballs reaches the right verdict in {took / old['duration_s']:.1%} of that time"
    )
    return 0 if correct and worst - base <= DUAL_STACK_GOAL else 1


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 1 if a detection missed its goal."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", type=int, default=20)
    parser.add_argument("--interval", type=float, default=3.0, help="check interval (s)")
    parser.add_argument("--recheck", type=float, default=1.0, help="fast re-check delay (s)")
    parser.add_argument("--confirm-after", type=int, default=3)
    parser.add_argument("--recover-after", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dual-stack-only", action="store_true", help="only the black hole")
    parser.add_argument("--no-dual-stack", action="store_true", help="skip the black hole")
    args = parser.parse_args(argv)
    configure_logging()  # library logs to stderr; stdout carries the figures
    dual = 0 if args.no_dual_stack else dual_stack_case()
    if args.dual_stack_only:
        return dual
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
    return 1 if missed or dual else 0


if __name__ == "__main__":
    sys.exit(main())
