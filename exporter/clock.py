"""Clock watch: detects wall-clock jumps against the monotonic clock and reports sync state.

It never changes the system clock and never alters an observation: a jump becomes its own
`clock_jump` ledger entry, so a reader of the evidence knows which timestamps to doubt.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import structlog

from probes.environment import clock_sync_state, kernel_clock_state
from probes.observation import format_time as _format_datetime

__all__ = [
    "CLOCK_JUMP",
    "DEFAULT_CHECK_INTERVAL",
    "DEFAULT_THRESHOLD",
    "ClockJump",
    "ClockWatch",
    "JumpCounter",
    "clock_sync_state",
    "kernel_clock_state",
]

log = structlog.get_logger("vigie.clock")

CLOCK_JUMP = "clock_jump"  # the ledger entry type (evidence.ledger.CLOCK_JUMP)
DEFAULT_THRESHOLD = 2.0  # seconds of disagreement between the two clocks that count as a jump
DEFAULT_CHECK_INTERVAL = 5.0

Append = Callable[[str, Mapping[str, Any]], Awaitable[int]]


class JumpCounter(Protocol):
    """What counts jumps (a prometheus_client Counter fits)."""

    def inc(self, amount: float = 1) -> None:
        """Add `amount`."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class ClockJump:
    """One detected jump: the wall clock moved `jump_s` more (or less) than monotonic time."""

    wall_before: float  # Unix time at the previous reading
    wall_after: float  # Unix time now
    mono_elapsed_s: float  # monotonic seconds between the two readings
    threshold_s: float

    @property
    def jump_s(self) -> float:
        """Wall-clock movement minus real elapsed time (positive: the clock jumped forward)."""
        return (self.wall_after - self.wall_before) - self.mono_elapsed_s

    def body(self, sync: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The `clock_jump` ledger entry body (plain JSON)."""
        expected = self.wall_before + self.mono_elapsed_s
        return {
            "direction": "forward" if self.jump_s > 0 else "backward",
            "jump_s": round(self.jump_s, 6),
            "threshold_s": self.threshold_s,
            "wall_before": format_time(self.wall_before),
            "wall_after": format_time(self.wall_after),
            "wall_expected": format_time(expected),
            "monotonic_elapsed_s": round(self.mono_elapsed_s, 6),
            "clock": dict(sync) if sync is not None else None,
            "note": "observation timestamps between wall_before and wall_after were taken on "
            "a clock that jumped; durations are monotonic and unaffected",
        }


class ClockWatch:
    """Compares wall-clock and monotonic deltas between readings; injectable clocks for tests."""

    def __init__(
        self,
        *,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
        threshold: float = DEFAULT_THRESHOLD,
        sync_state: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        if threshold <= 0:
            raise ValueError(f"clock jump threshold must be positive (got {threshold})")
        self._wall = wall
        self._mono = mono
        self.threshold = threshold
        self._sync_state = sync_state if sync_state is not None else clock_sync_state
        self._last = (wall(), mono())
        self.jumps = 0

    def check(self) -> ClockJump | None:
        """Read both clocks; the jump since the previous reading, if beyond the threshold."""
        wall, mono = self._wall(), self._mono()
        wall_before, mono_before = self._last
        self._last = (wall, mono)
        jump = ClockJump(wall_before, wall, mono - mono_before, self.threshold)
        if abs(jump.jump_s) < self.threshold:
            return None
        self.jumps += 1
        return jump

    async def record(self, jump: ClockJump, append: Append, counter: JumpCounter | None) -> int:
        """Append the jump to the ledger (then count it); its sequence number."""
        sync = await asyncio.to_thread(self._sync_state)
        body = jump.body(sync)
        seq = await append(CLOCK_JUMP, body)
        if counter is not None:
            counter.inc()
        log.warning(
            "clock_jump",
            seq=seq,
            jump_s=body["jump_s"],
            wall_before=body["wall_before"],
            wall_after=body["wall_after"],
        )
        return seq

    async def poll(self, append: Append, counter: JumpCounter | None = None) -> int | None:
        """One check; records a jump when there is one and returns its sequence number."""
        jump = self.check()
        if jump is None:
            return None
        return await self.record(jump, append, counter)

    async def run(
        self,
        append: Append,
        counter: JumpCounter | None,
        stopping: asyncio.Event,
        *,
        interval: float = DEFAULT_CHECK_INTERVAL,
    ) -> None:
        """Check every `interval` seconds until `stopping` is set; a failed write is logged."""
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=interval)
            try:
                await self.poll(append, counter)
            except Exception as exc:  # noqa: BLE001 - a full disk must not stop the watch
                log.error("clock_jump_not_recorded", error=f"{type(exc).__name__}: {exc}")  # noqa: TRY400


def format_time(unix: float) -> str:
    """RFC 3339 UTC with microseconds, as observations write their times."""
    return _format_datetime(dt.datetime.fromtimestamp(unix, dt.UTC))
