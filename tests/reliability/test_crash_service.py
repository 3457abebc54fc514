"""Crash safety of the real service: `kill -9` of `vigie run` at random moments, then
`vigie verify` (the real CLI) is clean, nothing acknowledged is lost, and state is rebuilt.

Targets fail on purpose every second so WARC artifacts are written all the time, and
checkpoints are taken every 300 ms, so kills land in artifact writes and checkpoints too.
10 cycles in the normal suite, 100 under VIGIE_SOAK=1 (`make soak`).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hostile import Client, HostileServer, respond
from tests.reliability.harness import Service, ledger_bodies, soak_scale

CYCLES = soak_scale(10, 100)
_HTML = (("Content-Type", "text/html; charset=utf-8"),)


def _ok(client: Client) -> None:
    client.read_request()
    client.send(respond(body=b"<html>Bienvenue</html>", headers=_HTML))


def _unavailable(client: Client) -> None:
    client.read_request()
    body = b"<html>Service indisponible " + b"." * 20_000 + b"</html>"
    client.send(respond("503 Service Unavailable", body=body, headers=_HTML))


@pytest.fixture
def servers() -> Iterator[tuple[HostileServer, HostileServer]]:
    """A healthy page and a failing one (whose checks store WARC captures)."""
    with HostileServer(_ok) as good, HostileServer(_unavailable) as bad:
        yield good, bad


def _config(state: Path, good: HostileServer, bad: HostileServer) -> dict[str, Any]:
    targets = [
        {"id": "sain", "kind": "http", "url": good.url("/"), "interval": "1s", "timeout": "2s"}
    ]
    targets += [
        {"id": f"panne-{n}", "kind": "http", "url": bad.url(f"/{n}"), "interval": "1s"}
        for n in range(4)
    ]
    return {
        "targets": targets,
        "min_interval": "1s",
        "ledger": {
            "url": f"sqlite:///{state / 'ledger.db'}",
            "artifacts": str(state / "artifacts"),
            "checkpoint_interval": "300ms",
        },
    }


def _recorded(url: str) -> Counter[tuple[str, str]]:
    return Counter(
        (e["target_id"], e["outcome"]) for e in ledger_bodies(url) if e["type"] == "observation"
    )


@pytest.mark.slow
class TestServiceKillNine:
    """SIGKILL of `vigie run` at random moments, many cycles on the same ledger."""

    def test_verify_clean_nothing_acknowledged_lost(
        self, tmp_path: Path, servers: tuple[HostileServer, HostileServer]
    ) -> None:
        """After every kill: `vigie verify` exits 0, every check counted in /metrics before the
        kill is in the ledger, and the restarted service rebuilds its counters from the ledger."""
        seed = random.randrange(1 << 30)
        rng = random.Random(seed)
        service = Service(_config(tmp_path, *servers), tmp_path)
        url = service.ledger_url
        acknowledged_total = 0
        size_before = 0
        for cycle in range(CYCLES):
            before = _recorded(url) if cycle else Counter()
            service.start()
            if cycle:
                rebuilt = service.sample("vigie_ledger_entries_total") or 0
                assert rebuilt >= size_before, f"seed {seed} cycle {cycle}: state not rebuilt"
                last = service.sample("vigie_ledger_last_checkpoint_timestamp_seconds")
                assert last is not None
                assert last > 0, f"seed {seed} cycle {cycle}: last checkpoint forgotten"
            time.sleep(rng.uniform(0.8, 3.0))
            counted = service.counted()
            time.sleep(rng.uniform(0.0, 0.3))  # the kill lands anywhere after the count
            service.kill()
            verified = service.verify()
            assert verified.returncode == 0, (
                f"seed {seed} cycle {cycle}: {verified.stdout}{verified.stderr}"
            )
            assert "Traceback" not in service.log()
            after = _recorded(url)
            for key, count in counted.items():
                assert after[key] - before[key] >= count, (
                    f"seed {seed} cycle {cycle}: {key} counted {count}, "
                    f"recorded {after[key] - before[key]}"
                )
            acknowledged_total += int(sum(counted.values()))
            size_before = len(ledger_bodies(url))
        entries = ledger_bodies(url)
        checkpoints = sum(e["type"] == "checkpoint" for e in entries)
        artifacts = sum(bool(e.get("artifacts")) for e in entries if e["type"] == "observation")
        print(
            f"{CYCLES} kill -9 cycles (seed {seed}): {len(entries)} entries, "
            f"{acknowledged_total} acknowledged checks, {checkpoints} checkpoints, "
            f"{artifacts} observations with artifacts"
        )
        assert acknowledged_total >= CYCLES
        assert artifacts >= CYCLES
        assert checkpoints >= CYCLES
