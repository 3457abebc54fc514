"""A real network cut: the probe runs in a network namespace whose only link the test unplugs.

The service inside the namespace probes a target and a control that both live outside it (on
the host end of a veth pair). Unplugging the link makes every check fail at once: that must be
recorded as `vantage_offline`, never as an outage. Needs root and `ip netns`; skipped otherwise.
Only addresses inside the namespace and veth pair the test creates are used.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import os
import queue
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from config.settings import Settings
from evidence.outages.tracker import OutageTracker

pytestmark = [pytest.mark.netns, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]

# Runs inside the namespace: the real Service classifying with its controls, entries printed
# as JSON lines (the sink), one check of the target per "check" line read on stdin.
RUNNER = r"""
import asyncio, json, sys
from config.settings import Settings
from exporter.logs import configure_logging
from exporter.metrics import Metrics
from exporter.service import Service
from probes.base import ProbeRegistry, ProbeSettings
from probes.http import HttpProbe

settings = Settings.model_validate(json.loads(sys.argv[1]))
configure_logging(json=True)  # logs to stderr; stdout carries "@@" lines only

class Sink:
    def __init__(self):
        self.seq = 0
    async def append(self, entry_type, body):
        seq, self.seq = self.seq, self.seq + 1
        print("@@" + json.dumps({**body, "type": entry_type, "seq": seq}), flush=True)
        return seq

async def main():
    probe_settings = ProbeSettings(vantage="netns", user_agent=settings.user_agent, environment={})
    registry = ProbeRegistry(probe_settings, {"http": HttpProbe})
    service = Service(settings, registry, Metrics(vantage="netns", version="test"), Sink())
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    controls = asyncio.create_task(service.watch_controls(stopping))  # as `vigie run` does
    checks = 0
    while (line := await loop.run_in_executor(None, sys.stdin.readline)).strip() == "check":
        await service.check_target(settings.targets[0])
        checks += 1
        state = {"done": checks, "vantage_online": service.vantage_is_online}
        print("@@" + json.dumps(state), flush=True)
    stopping.set()
    await controls
    await registry.aclose()

asyncio.run(main())
"""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


@dataclasses.dataclass
class Cut:
    """A namespace with one veth link to the host, and servers on the host end."""

    namespace: str
    host_if: str
    host_ip: str
    status: dict[str, int]  # path -> HTTP status the host servers answer
    target_url: str = ""
    control_url: str = ""

    def link(self, up: bool) -> None:
        _ip("link", "set", self.host_if, "up" if up else "down")


class _Handler(http.server.BaseHTTPRequestHandler):
    status: ClassVar[dict[str, int]] = {}

    def do_GET(self) -> None:
        code = self.status.get(self.path, 200)
        body = b"ok" if code == 200 else b"unavailable"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return


def _free_subnet() -> int:
    used = _ip("-o", "addr").stdout
    for _ in range(50):
        octet = secrets.randbelow(250) + 2
        if f" 10.200.{octet}." not in used:
            return octet
    pytest.skip("no free 10.200.x.0/30 subnet for the test veth pair")


@pytest.fixture
def cut() -> Iterator[Cut]:
    """Create the namespace and veth pair (cleaned up whatever happens) and the servers."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create a network namespace (ip netns)")
    if shutil.which("ip") is None:
        pytest.skip("needs the `ip` command (iproute2)")
    token = secrets.token_hex(3)
    namespace, host_if, ns_if = f"vigie-test-{token}", f"vh{token}", f"vn{token}"
    created = _ip("netns", "add", namespace, check=False)
    if created.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {created.stderr.strip()}")
    servers: list[http.server.ThreadingHTTPServer] = []
    try:
        octet = _free_subnet()
        host_ip, ns_ip = f"10.200.{octet}.1", f"10.200.{octet}.2"
        _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _ip("link", "set", ns_if, "netns", namespace)
        _ip("addr", "add", f"{host_ip}/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("netns", "exec", namespace, "ip", "addr", "add", f"{ns_ip}/30", "dev", ns_if)
        _ip("netns", "exec", namespace, "ip", "link", "set", ns_if, "up")
        _ip("netns", "exec", namespace, "ip", "link", "set", "lo", "up")
        status: dict[str, int] = {}
        handler = type("Handler", (_Handler,), {"status": status})
        result = Cut(namespace, host_if, host_ip, status)
        urls = []
        for _ in range(2):  # target and control: two servers, both outside the namespace
            server = http.server.ThreadingHTTPServer((host_ip, 0), handler)
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            servers.append(server)
            urls.append(f"http://{host_ip}:{server.server_address[1]}/")
        result.target_url, result.control_url = urls[0] + "site", urls[1] + "control"
        yield result
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        _ip("link", "del", host_if, check=False)
        _ip("netns", "del", namespace, check=False)


class Runner:
    """The service running inside the namespace, driven one check at a time."""

    def __init__(self, cut: Cut, settings: dict[str, Any]) -> None:
        self.entries: list[dict[str, Any]] = []
        self.states: list[bool] = []
        self.stderr: str | None = None
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.process = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                cut.namespace,
                sys.executable,
                "-c",
                RUNNER,
                json.dumps(settings),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("@@"):
                self.lines.put(json.loads(line[2:]))
        self.lines.put(None)  # the runner exited

    def check(self, times: int = 1) -> None:
        """Run `times` checks of the target, collecting what the service records."""
        assert self.process.stdin is not None
        for _ in range(times):
            self.process.stdin.write("check\n")
            self.process.stdin.flush()
            while True:
                try:
                    data = self.lines.get(timeout=60)
                except queue.Empty:
                    raise AssertionError(f"runner silent: {self.stop()}") from None
                if data is None:
                    raise AssertionError(f"runner exited: {self.stop()}")
                if "done" in data:
                    self.states.append(bool(data["vantage_online"]))
                    break
                self.entries.append(data)

    def stop(self) -> str:
        """End the runner (once); its stderr."""
        if self.stderr is not None:
            return self.stderr
        try:
            _, err = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        self.stderr = err
        return err

    def observations(self, target: str) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["type"] == "observation" and e["target_id"] == target]


def _settings(cut: Cut) -> dict[str, Any]:
    return {
        "vantage": {"name": "netns"},
        "defaults": {"interval": "1s", "timeout": "1s"},
        "targets": [{"id": "site", "kind": "http", "url": cut.target_url, "timeout": "1s"}],
        "controls": [cut.control_url],
        "outages": {"confirm_after": 2, "recover_after": 1, "recheck": "10ms"},
    }


def _outages(settings: dict[str, Any], entries: list[dict[str, Any]]) -> OutageTracker:
    config = Settings.model_validate(settings)
    return OutageTracker.rebuild(entries, config.outages, config.maintenance, config.targets)


class TestNetworkCut:
    def test_unplugged_link_records_vantage_offline_not_an_outage(self, cut: Cut) -> None:
        """With the vantage's only link down, checks are vantage_offline and no outage opens."""
        settings = _settings(cut)
        runner = Runner(cut, settings)
        try:
            runner.check(2)
            cut.link(up=False)
            runner.check(4)
            cut.link(up=True)
            time.sleep(1.5)  # the controls, checked every second, see the link back
            runner.check(2)
        finally:
            err = runner.stop()
        outcomes = [o["outcome"] for o in runner.observations("site")]
        assert outcomes[:2] == ["ok", "ok"], err
        assert outcomes[-1] == "ok", err
        cut_outcomes = outcomes[2:6]
        # The first failure may still see the controls' last (good) answer; every later one
        # is classified with fresh control checks, which all fail: vantage_offline.
        assert cut_outcomes[1:] == ["vantage_offline"] * 3, outcomes
        assert runner.states[2:6].count(False) >= 3, runner.states
        assert runner.states[-1] is True
        controls = [o for o in runner.entries if o.get("target_id") == "control-1"]
        assert any(not c["success"] for c in controls), "the controls' failures are recorded"
        assert [e for e in runner.entries if e["type"] == "outage"] == []
        tracker = _outages(settings, runner.entries)
        assert tracker.records() == []
        assert tracker.pending_events() == []
        assert tracker.state("site") == "up"

    def test_target_failure_seen_from_the_namespace_is_an_outage(self, cut: Cut) -> None:
        """The same set-up does detect a real outage: the target fails while controls answer."""
        settings = _settings(cut)
        runner = Runner(cut, settings)
        try:
            runner.check(1)
            cut.status["/site"] = 503
            runner.check(3)
            cut.status["/site"] = 200
            runner.check(1)
        finally:
            err = runner.stop()
        outcomes = [o["outcome"] for o in runner.observations("site")]
        assert outcomes == ["ok", "http_status", "http_status", "http_status", "ok"], err
        tracker = _outages(settings, runner.entries)
        records = [r for r in tracker.records() if r.kind == "down"]
        assert len(records) == 1
        assert records[0].failed_checks == 3
        assert records[0].ended_at is not None
