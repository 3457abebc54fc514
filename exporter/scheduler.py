"""The scheduler: runs each target on its own interval, spread in time, one check at a time.

It never runs two checks of one target at once, never exceeds the global concurrency limit,
and stops cleanly: in-flight checks get a bounded grace period, then are cancelled.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog

from config.targets import Target

__all__ = ["CheckFn", "Scheduler", "spread_offset"]

log = structlog.get_logger("vigie.scheduler")

# A check returns None to keep the regular interval, or a shorter delay (fast re-check).
CheckFn = Callable[[Target], Awaitable[float | None]]


def spread_offset(target_id: str, interval: float) -> float:
    """A stable start offset in [0, interval) derived from the target id (no thundering herd)."""
    return (zlib.crc32(target_id.encode("utf-8")) / 2**32) * interval


class Scheduler:
    """Drives `check` for every target; `run()` returns after `stop()`."""

    def __init__(
        self,
        targets: Sequence[Target],
        check: CheckFn,
        *,
        interval_of: Callable[[Target], float],
        max_concurrency: int,
        min_interval: float = 1.0,
        clock: Callable[[], float] | None = None,
        stop_grace: float = 3.0,
    ) -> None:
        self._targets = list(targets)
        self._check = check
        self._interval_of = interval_of
        self._limit = asyncio.Semaphore(max_concurrency)
        self._min_interval = min_interval
        self._stopping = asyncio.Event()
        self._clock = clock or asyncio.get_running_loop().time
        self._tasks: list[asyncio.Task[None]] = []
        self._busy: set[asyncio.Task[Any]] = set()
        self._in_flight = 0
        self._stop_grace = stop_grace

    @property
    def in_flight(self) -> int:
        """Checks running right now."""
        return self._in_flight

    async def run(self) -> None:
        """Run every target's loop until `stop()`."""
        self._tasks = [
            asyncio.create_task(self._loop(t), name=f"target:{t.id}") for t in self._targets
        ]
        try:
            await self._stopping.wait()
        finally:
            await self._drain()

    def stop(self) -> None:
        """Ask every loop to finish its current check and stop; idle loops stop at once."""
        self._stopping.set()
        for task in self._tasks:
            if task not in self._busy:
                task.cancel()

    async def _drain(self) -> None:
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=self._stop_grace)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("checks_cancelled_at_stop", count=len(pending))
            await asyncio.wait(pending)
        for task in self._tasks:  # retrieve cancellations so none is reported as unhandled
            if not task.cancelled() and task.exception() is not None:
                log.error("target_loop_failed", task=task.get_name(), error=str(task.exception()))

    async def _loop(self, target: Target) -> None:
        # A plain sleep per tick (no extra task): `stop()` cancels loops that are not checking.
        interval = self._interval_of(target)
        due = self._clock() + spread_offset(target.id, interval)
        me = asyncio.current_task()
        assert me is not None
        while not self._stopping.is_set():
            await asyncio.sleep(max(due - self._clock(), 0.0))
            async with self._limit:
                if self._stopping.is_set():
                    return
                self._busy.add(me)
                self._in_flight += 1
                try:
                    sooner = await self._check(target)
                except Exception:  # a bug in a check must not stop this target's schedule
                    log.exception("check_crashed", target=target.id)
                    sooner = None
                finally:
                    self._in_flight -= 1
                    self._busy.discard(me)
            now = self._clock()
            if sooner is not None:
                # a re-check is never slower than the regular schedule
                due = now + max(min(sooner, interval), self._min_interval)
                continue
            # Fixed rate: keep the grid; after an overrun, skip to the next future slot.
            due += interval
            if due <= now:
                due += interval * ((now - due) // interval + 1)
