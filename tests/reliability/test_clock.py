"""Clock: a wall-clock jump, detected against the monotonic clock, becomes a `clock_jump`
ledger entry and a counted metric; the synchronisation state is part of the environment facts.

The clocks are injected (nothing changes the system clock); the ledger is a real SQLite one.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter

from config.vocabulary import CLOCK_JUMP
from evidence.ledger.backends import open_ledger
from evidence.ledger.core import LedgerWriter
from evidence.ledger.verify import verify_ledger
from exporter.clock import ClockWatch, clock_sync_state, kernel_clock_state


class FakeClocks:
    """A wall clock and a monotonic clock a test can move independently."""

    def __init__(self) -> None:
        self.wall_now = 1_790_000_000.0
        self.mono_now = 1000.0

    def wall(self) -> float:
        return self.wall_now

    def mono(self) -> float:
        return self.mono_now

    def tick(self, seconds: float) -> None:
        """Real time passes: both clocks move together."""
        self.wall_now += seconds
        self.mono_now += seconds


SYNC = {"source": "ntp", "synchronized": True, "reported_by": "test"}


def _watch(clocks: FakeClocks, threshold: float = 2.0) -> ClockWatch:
    return ClockWatch(
        wall=clocks.wall, mono=clocks.mono, threshold=threshold, sync_state=lambda: SYNC
    )


class TestJumpDetection:
    """`ClockWatch.check` compares the two clocks' deltas."""

    def test_no_jump_when_clocks_agree(self) -> None:
        """Clocks moving together (with sub-threshold drift) report nothing."""
        clocks = FakeClocks()
        watch = _watch(clocks)
        for _ in range(10):
            clocks.tick(5.0)
            clocks.wall_now += 0.5  # slewing by NTP: below the threshold
            assert watch.check() is None
        assert watch.jumps == 0

    @pytest.mark.parametrize("jump", [3600.0, -3600.0, 2.5, -86400.0 * 365])
    def test_jump_detected_both_ways(self, jump: float) -> None:
        """A step of the wall clock forward or backward is measured to the second."""
        clocks = FakeClocks()
        watch = _watch(clocks)
        clocks.tick(5.0)
        clocks.wall_now += jump
        found = watch.check()
        assert found is not None
        assert found.jump_s == pytest.approx(jump)
        body = found.body(SYNC)
        assert body["direction"] == ("forward" if jump > 0 else "backward")
        assert body["monotonic_elapsed_s"] == pytest.approx(5.0)
        assert body["clock"] == SYNC
        assert watch.check() is None  # one jump, reported once

    def test_threshold_must_be_positive(self) -> None:
        """A zero threshold is refused with a message."""
        with pytest.raises(ValueError, match="positive"):
            ClockWatch(threshold=0)


class TestJumpRecorded:
    """A detected jump is appended to the real ledger and counted."""

    def test_ledger_entry_and_metric(self, tmp_path: Path) -> None:
        """The jump is a `clock_jump` entry with both times, the counter goes up by one, and
        the ledger still verifies."""
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
        ledger = open_ledger(url, vantage="paris-1")
        registry = CollectorRegistry()
        counter = Counter("vigie_clock_jumps", "jumps", registry=registry)
        clocks = FakeClocks()
        watch = _watch(clocks)

        async def scenario() -> list[int | None]:
            writer = LedgerWriter(ledger)
            try:
                seqs = []
                clocks.tick(5.0)
                seqs.append(await watch.poll(writer.append, counter))
                clocks.tick(5.0)
                clocks.wall_now -= 7200.0  # someone set the clock back two hours
                seqs.append(await watch.poll(writer.append, counter))
                return seqs
            finally:
                await writer.aclose()

        try:
            seqs = asyncio.run(scenario())
            entries = [json.loads(body) for _, body in ledger.iter_entries()]
        finally:
            ledger.close()
        assert seqs[0] is None
        assert seqs[1] == 0
        (entry,) = entries
        assert entry["type"] == CLOCK_JUMP == "clock_jump"
        assert entry["jump_s"] == pytest.approx(-7200.0)
        assert entry["direction"] == "backward"
        assert entry["wall_before"].endswith("Z")
        assert entry["wall_after"] < entry["wall_before"]
        assert registry.get_sample_value("vigie_clock_jumps_total") == 1.0
        assert verify_ledger(url, workers=1).ok

    def test_run_loop_survives_a_failing_ledger(self) -> None:
        """A ledger write error is logged, not raised: the watch keeps running."""
        clocks = FakeClocks()
        watch = _watch(clocks, threshold=1.0)
        calls: list[str] = []

        async def failing(entry_type: str, body: object) -> int:
            calls.append(entry_type)
            raise OSError(28, "No space left on device")

        async def scenario() -> None:
            stopping = asyncio.Event()
            task = asyncio.create_task(watch.run(failing, None, stopping, interval=0.01))
            for _ in range(3):
                await asyncio.sleep(0.03)
                clocks.wall_now += 100.0
            await asyncio.sleep(0.03)
            stopping.set()
            await task

        asyncio.run(scenario())
        assert calls
        assert set(calls) == {"clock_jump"}


class TestSyncState:
    """The clock synchronisation state recorded in the environment facts."""

    def test_timedatectl_preferred(self) -> None:
        """When systemd answers, its NTP state is used."""
        state = clock_sync_state(
            run=lambda _cmd: "NTP=yes\nNTPSynchronized=yes\n", kernel=lambda: None
        )
        assert state == {"source": "ntp", "synchronized": True, "reported_by": "timedatectl"}

    def test_kernel_fallback(self) -> None:
        """Without systemd (containers), the kernel's adjtimex state is used."""
        kernel = {
            "source": "kernel",
            "synchronized": False,
            "max_error_s": 16.0,
            "est_error_s": 16.0,
        }
        state = clock_sync_state(run=lambda _cmd: None, kernel=lambda: kernel)
        assert state["reported_by"] == "adjtimex"
        assert state["synchronized"] is False

    def test_unknown_when_nothing_answers(self) -> None:
        """With neither source, the state says unknown rather than guessing."""
        state = clock_sync_state(run=lambda _cmd: None, kernel=lambda: None)
        assert state["synchronized"] is None

    def test_kernel_state_on_this_machine(self) -> None:
        """adjtimex (read-only) answers on Linux with a boolean and error bounds."""
        state = kernel_clock_state()
        assert state is not None
        assert isinstance(state["synchronized"], bool)
        assert state["max_error_s"] >= 0
