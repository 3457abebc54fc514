"""Graceful stop of the real service: SIGTERM lets in-flight checks finish (bounded), writes a
final checkpoint covering everything, and exits 0 within 10 s.

The targets are raw-socket loopback servers: one answers after 2 s, one never answers.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hostile import Client, HostileServer, respond
from tests.reliability.harness import Service, ledger_bodies

STOP_LIMIT = 10.0


def _slow_ok(client: Client) -> None:
    client.read_request()
    if client.sleep(2.0):
        client.send(respond(body=b"<html>Bienvenue</html>"))


def _never(client: Client) -> None:
    client.read_request()
    client.sleep(3600)


@pytest.fixture
def slow() -> Iterator[HostileServer]:
    """A server that answers each request after 2 s."""
    with HostileServer(_slow_ok) as server:
        yield server


def _config(
    tmp_path: Path, target_id: str, url: str, interval: str, timeout: str
) -> dict[str, Any]:
    """One HTTP target; no periodic checkpoint, so the last one is the final one."""
    return {
        "targets": [
            {"id": target_id, "kind": "http", "url": url, "interval": interval, "timeout": timeout}
        ],
        "ledger": {
            "url": f"sqlite:///{tmp_path / 'ledger.db'}",
            "artifacts": str(tmp_path / "artifacts"),
            "checkpoint_interval": "1h",
        },
    }


def _stop_timed(service: Service) -> tuple[int, float]:
    assert service.process is not None
    began = time.monotonic()
    service.process.send_signal(signal.SIGTERM)
    code = service.process.wait(STOP_LIMIT + 20)
    return code, time.monotonic() - began


@pytest.mark.slow
class TestGracefulStop:
    """SIGTERM while checks are running."""

    def test_in_flight_check_finishes_and_final_checkpoint(
        self, tmp_path: Path, slow: HostileServer
    ) -> None:
        """The check running at SIGTERM is completed and recorded, a final checkpoint covers
        every entry, the exit code is 0 within 10 s, and `vigie verify` passes."""
        service = Service(_config(tmp_path, "lent", slow.url("/"), "1s", "5s"), tmp_path)
        service.start()
        deadline = time.monotonic() + 20
        while len(slow.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # the second request is in flight: the first was answered
        assert len(slow.requests) >= 2
        requested = len(slow.requests)
        time.sleep(0.3)
        code, elapsed = _stop_timed(service)
        assert code == 0, service.log()[-2000:]
        assert elapsed < STOP_LIMIT, elapsed
        entries = ledger_bodies(service.ledger_url)
        observations = [e for e in entries if e["type"] == "observation"]
        assert len(observations) == requested, "an in-flight check was dropped"
        assert all(o["success"] for o in observations), [o["error"] for o in observations]
        last = entries[-1]
        assert last["type"] == "checkpoint"
        assert last["tree_size"] == last["seq"], "the final checkpoint must cover every entry"
        assert service.verify().returncode == 0
        print(f"stopped in {elapsed:.2f} s with {requested} checks, the last one in flight")

    def test_hung_check_is_bounded(self, tmp_path: Path) -> None:
        """A check that would hang for 30 s does not hold the stop: exit 0 within 10 s, with a
        final checkpoint."""
        with HostileServer(_never) as server:
            service = Service(_config(tmp_path, "muet", server.url("/"), "2s", "30s"), tmp_path)
            service.start()
            deadline = time.monotonic() + 70
            while not server.requests and time.monotonic() < deadline:
                time.sleep(0.05)
            assert server.requests
            code, elapsed = _stop_timed(service)
        assert code == 0, service.log()[-2000:]
        assert elapsed < STOP_LIMIT, elapsed
        entries = ledger_bodies(service.ledger_url)
        assert entries[-1]["type"] == "checkpoint"
        assert service.verify().returncode == 0
