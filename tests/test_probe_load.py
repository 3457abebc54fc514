"""The probe's own load is not the site's: loop lag is measured around every check, and a check
made while Vigie's own event loop ran late is never a degraded or down verdict.

Also: a re-check is never slower than the target's own interval.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from config.targets import Target
from config.vocabulary import Outcome
from exporter.looplag import LoopLag
from exporter.metrics import Metrics
from exporter.service import Service
from probes.base import ProbeContext, ProbeRegistry, ProbeSettings
from probes.observation import Observation, format_time, utc_now
from tests.test_netns import RUNNER, _Handler, _outages

ROOT = Path(__file__).resolve().parents[1]


class _Sink:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    async def append(self, entry_type: str, body: Any) -> int:
        self.entries.append({**body, "type": entry_type})
        return len(self.entries) - 1


class _StarvingProbe:
    """Blocks the event loop for `block` seconds (a renderer, a slow disk...), then reports."""

    kind = "http"

    def __init__(self, block: float, outcome: Outcome, duration: float) -> None:
        self.block, self.outcome, self.duration = block, outcome, duration

    async def check(self, ctx: ProbeContext) -> Observation:
        await asyncio.sleep(0.06)  # let the lag timer run once before the stall
        time.sleep(self.block)  # the point: the loop is starved
        return Observation(
            target_id=ctx.target.id,
            kind="http",
            vantage="test",
            started_at=format_time(utc_now()),
            duration_s=self.duration,
            success=self.outcome is Outcome.OK,
            outcome=self.outcome,
            error=None if self.outcome is Outcome.OK else "no answer within 1 s",
        )

    async def aclose(self) -> None:
        return None


def _service(probe: _StarvingProbe, **outages: Any) -> tuple[Service, _Sink, Target]:
    settings = Settings.model_validate(
        {
            "targets": [
                {"id": "site", "name": "S", "kind": "http", "url": "http://127.0.0.1:9/"}
                | {"slow_after": "0.5s"}
            ],
            "outages": {"confirm_after": 1, "recover_after": 1, "max_loop_lag": "0.1s"} | outages,
        }
    )
    sink = _Sink()
    registry = ProbeRegistry(
        ProbeSettings(vantage="test", user_agent="Vigie-test/1.0", environment={}),
        {"http": lambda _settings: probe},
    )
    service = Service(settings, registry, Metrics(vantage="test", version="t"), sink)
    return service, sink, settings.targets[0]


class TestLoopLag:
    def test_a_blocked_loop_is_measured(self) -> None:
        async def scenario() -> tuple[float, float]:
            lag = LoopLag(period=0.02)
            lag.start()
            await asyncio.sleep(0.1)
            calm = lag.worst_since(lag.now() - 0.05)
            since = lag.now()
            time.sleep(0.3)  # a starved loop
            starved = lag.worst_since(since)
            lag.stop()
            return calm, starved

        calm, starved = asyncio.run(scenario())
        assert starved >= 0.25
        assert calm < starved

    @pytest.mark.parametrize(
        ("outcome", "duration"), [(Outcome.TIMEOUT, 1.0), (Outcome.OK, 0.9)], ids=["down", "slow"]
    )
    def test_late_check_is_not_held_against_the_target(
        self, outcome: Outcome, duration: float
    ) -> None:
        """A failed or slow check taken while the loop was starved: vantage's, re-checked."""
        service, sink, target = _service(_StarvingProbe(0.4, outcome, duration))
        delay = asyncio.run(service.check_target(target))
        (entry,) = sink.entries
        assert entry["outcome"] == "vantage_offline"
        assert entry["environment"]["loop_lag_s"] >= 0.3
        assert "overloaded" in entry["error"]
        assert f"target check said {outcome.value}" in entry["error"]
        assert delay == service.settings.outages.recheck  # re-checked soon
        lag = entry["environment"]["loop_lag_s"]
        assert f'vigie_probe_loop_lag_seconds{{target="site"}} {lag}' in (
            service.metrics.render().decode()
        )

    def test_calm_failure_stays_the_target_s(self) -> None:
        """Without lag, the same failure is the target's, and the lag is still recorded."""
        service, sink, target = _service(_StarvingProbe(0.0, Outcome.TIMEOUT, 1.0))
        asyncio.run(service.check_target(target))
        (entry,) = sink.entries
        assert entry["outcome"] == "timeout"
        assert 0.0 <= entry["environment"]["loop_lag_s"] < 0.1


# --- a real CPU hog beside the real service ----------------------------------------------------


class _SlowishHandler(_Handler):
    """A healthy page that takes 0.1 s to answer (well below `slow_after`)."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        time.sleep(0.1)
        super().do_GET()


def _hog(seconds: float) -> subprocess.Popen[bytes]:
    """A busy loop on CPU 0 at real-time priority: it takes the CPU from the service."""
    code = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass\n"
    return subprocess.Popen(["taskset", "-c", "0", "chrt", "-f", "1", sys.executable, "-c", code])


@pytest.mark.slow
def test_cpu_hog_beside_the_service_gives_no_verdict(tmp_path: Path) -> None:
    """The service (pinned to CPU 0) probes a healthy local target while a real-time hog
    pinned to the same CPU steals it: timings are inflated, yet no degraded or down outage
    comes of it, and every observation carries the loop lag it was measured under."""
    if os.geteuid() != 0 or not (shutil.which("taskset") and shutil.which("chrt")):
        pytest.skip("needs root, taskset and chrt for a real-time CPU hog")
    if subprocess.run(["chrt", "-f", "1", "true"], check=False).returncode != 0:
        pytest.skip("real-time scheduling is not allowed here")
    handler = type("Handler", (_SlowishHandler,), {"status": {}})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings: dict[str, Any] = {
        "vantage": {"name": "hog"},
        "targets": [
            {
                "id": "site",
                "name": "Site",
                "kind": "http",
                "url": f"http://127.0.0.1:{server.server_address[1]}/",
                "timeout": "5s",
                "slow_after": "0.3s",
            }
        ],
        "outages": {"confirm_after": 1, "recover_after": 1, "max_loop_lag": "0.1s"},
    }
    lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
    process = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, "-c", RUNNER, json.dumps(settings)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("@@"):
                lines.put(json.loads(line[2:]))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    entries: list[dict[str, Any]] = []
    hog: subprocess.Popen[bytes] | None = None
    try:
        assert process.stdin is not None
        for index in range(20):
            if index == 2:
                hog = _hog(2.5)
            process.stdin.write("check\n")
            process.stdin.flush()
            while True:
                data = lines.get(timeout=60)
                assert data is not None, process.stderr.read() if process.stderr else ""
                if "done" in data:
                    break
                entries.append(data)
            time.sleep(0.05)
        process.stdin.write("stop\n")
        process.stdin.flush()
    finally:
        if hog is not None:
            hog.wait(timeout=30)
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        server.shutdown()
        server.server_close()
    observations = [e for e in entries if e["type"] == "observation"]
    lags = [o["environment"]["loop_lag_s"] for o in observations]
    assert len(lags) == 20
    assert max(lags) > 0.1, "the hog never delayed the service: the test proved nothing"
    for obs in observations:
        slow = obs["duration_s"] > 0.3
        if obs["environment"]["loop_lag_s"] > 0.1 and (slow or not obs["success"]):
            assert obs["outcome"] == "vantage_offline", obs
            assert "overloaded" in obs["error"]
    tracker = _outages(settings, entries)
    assert [r.kind for r in tracker.records()] == []  # neither down nor degraded
