"""How late this process's own event loop runs: the probe's own load, measured around each check.

A starved loop (a browser journey rendering, a slow disk, CPU stolen by the host or another
process) inflates every timing it takes, so a healthy site looks slow or times out. A timer
fires every `period`; how late it fires is the loop's lag. A check's lag is the worst lateness
seen while it ran (including a tick overdue right now).

Cost: one timer callback every 50 ms (about 20 µs of CPU per second).
"""

from __future__ import annotations

import asyncio
import collections

__all__ = ["LoopLag"]


class LoopLag:
    """Samples the running loop's lateness; `worst_since(t)` is the largest since loop time t."""

    def __init__(self, period: float = 0.05, keep: float = 600.0) -> None:
        self.period = period
        self._samples: collections.deque[tuple[float, float]] = collections.deque(
            maxlen=max(16, int(keep / period))
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._expected = 0.0
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Start sampling on the running loop (idempotent)."""
        if self._handle is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._expected = self._loop.time() + self.period
        self._handle = self._loop.call_at(self._expected, self._tick)

    def stop(self) -> None:
        """Stop sampling."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        loop = self._loop
        assert loop is not None
        now = loop.time()
        self._samples.append((now, max(0.0, now - self._expected)))
        self._expected = now + self.period
        self._handle = loop.call_at(self._expected, self._tick)

    def now(self) -> float:
        """The loop's clock (the time base of `worst_since`)."""
        return (self._loop or asyncio.get_running_loop()).time()

    def worst_since(self, since: float) -> float:
        """The largest lateness (seconds) of the ticks that fired at or after `since`, or of
        the tick due now if it is already late."""
        if self._handle is None:
            return 0.0
        worst = max(0.0, self.now() - self._expected)
        for at, lag in reversed(self._samples):
            if at < since:
                break
            worst = max(worst, lag)
        return worst
