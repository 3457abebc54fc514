"""Scheduler: spread start times, one check per target at a time, a global limit, clean stop."""

from __future__ import annotations

import asyncio
import collections
import itertools

from config.targets import Target
from exporter.scheduler import CheckFn, Scheduler, spread_offset


def _targets(n: int) -> list[Target]:
    return [Target(id=f"t{i}", kind="http", url=f"http://127.0.0.1/{i}") for i in range(n)]


class TestSpread:
    def test_offsets_in_interval_and_distinct(self) -> None:
        """Start offsets lie inside the interval and differ between targets (no herd)."""
        offsets = [spread_offset(f"target-{i}", 60.0) for i in range(200)]
        assert all(0 <= o < 60.0 for o in offsets)
        assert len({round(o, 3) for o in offsets}) > 190
        # Spread over the whole interval, not bunched at its start.
        assert min(offsets) < 6.0
        assert max(offsets) > 54.0

    def test_offset_is_stable(self) -> None:
        """The offset of a target is the same across restarts (derived from its id)."""
        assert spread_offset("anef-accueil", 60.0) == spread_offset("anef-accueil", 60.0)


def _run(
    targets: int,
    check: CheckFn,
    *,
    interval: float,
    max_concurrency: int,
    seconds: float,
    stop_grace: float = 3.0,
) -> None:
    """Run a scheduler over `targets` targets for `seconds`, then stop it and wait."""

    async def scenario() -> None:
        sched = Scheduler(
            _targets(targets),
            check,
            interval_of=lambda _: interval,
            max_concurrency=max_concurrency,
            min_interval=0.01,
            stop_grace=stop_grace,
        )
        task = asyncio.create_task(sched.run())
        await asyncio.sleep(seconds)
        sched.stop()
        await asyncio.wait_for(task, timeout=10)

    asyncio.run(scenario())


def _recheck_calls(recheck: float, *, interval: float) -> list[float]:
    """Loop times of a target's first checks when each asks for a re-check after `recheck`."""
    calls: list[float] = []

    async def check(_target: Target) -> float | None:
        calls.append(asyncio.get_running_loop().time())
        return recheck

    async def scenario() -> None:
        sched = Scheduler(
            _targets(1), check, interval_of=lambda _: interval, max_concurrency=1, min_interval=0.01
        )
        task = asyncio.create_task(sched.run())
        # Wait for the first (spread) start plus a few re-checks, bounded.
        for _ in range(2000):
            if len(calls) >= 4:
                break
            await asyncio.sleep(0.01)
        sched.stop()
        await task

    asyncio.run(scenario())
    return calls


class TestScheduling:
    def test_no_overlap_for_one_target(self) -> None:
        """A check slower than the interval never overlaps the next check of the same target."""
        running: collections.Counter[str] = collections.Counter()
        overlap: list[str] = []
        calls: collections.Counter[str] = collections.Counter()

        async def check(target: Target) -> float | None:
            running[target.id] += 1
            if running[target.id] > 1:
                overlap.append(target.id)
            calls[target.id] += 1
            await asyncio.sleep(0.08)  # longer than the 0.03 s interval
            running[target.id] -= 1
            return None

        _run(3, check, interval=0.03, max_concurrency=10, seconds=0.5)
        assert not overlap
        assert all(calls[f"t{i}"] >= 3 for i in range(3))

    def test_global_concurrency_limit(self) -> None:
        """No more checks run at once than the global limit."""
        state = {"now": 0, "peak": 0, "total": 0}

        async def check(target: Target) -> float | None:
            state["now"] += 1
            state["total"] += 1
            state["peak"] = max(state["peak"], state["now"])
            await asyncio.sleep(0.02)
            state["now"] -= 1
            return None

        _run(20, check, interval=0.05, max_concurrency=3, seconds=0.4)
        assert state["peak"] == 3
        assert state["total"] >= 20

    def test_fast_recheck(self) -> None:
        """A check asking for a sooner re-check runs again after that delay, not the interval."""
        calls = _recheck_calls(0.02, interval=10.0)
        assert len(calls) >= 4
        gaps = [b - a for a, b in itertools.pairwise(calls)]
        assert max(gaps) < 1.0  # re-checks after 0.02 s, well below the 2 s interval

    def test_stop_cancels_stuck_check(self) -> None:
        """A check stuck beyond the grace period is cancelled at stop; run() returns."""
        seen: list[str] = []

        async def check(target: Target) -> float | None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise
            return None

        _run(1, check, interval=0.01, max_concurrency=1, seconds=0.1, stop_grace=0.2)
        assert seen == ["cancelled"]

    def test_crashing_check_keeps_schedule(self) -> None:
        """An exception in one check is logged and the target keeps being checked."""
        calls = collections.Counter[str]()

        async def check(target: Target) -> float | None:
            calls[target.id] += 1
            raise RuntimeError("boom")

        async def scenario() -> None:
            sched = Scheduler(
                _targets(1), check, interval_of=lambda _: 0.02, max_concurrency=1, min_interval=0.01
            )
            task = asyncio.create_task(sched.run())
            # bounded wait: the first logged traceback can be slow to render (rich, under load)
            for _ in range(1000):
                if calls["t0"] >= 3:
                    break
                await asyncio.sleep(0.01)
            sched.stop()
            await task

        asyncio.run(scenario())
        assert calls["t0"] >= 3

    def test_recheck_never_slower_than_the_interval(self) -> None:
        """`recheck: 10s` with a 0.05 s interval: re-checks come at the interval's pace."""
        calls = _recheck_calls(10.0, interval=0.05)
        assert len(calls) >= 4  # with a 10 s re-check there would be one or two calls in 20 s
        assert max(b - a for a, b in itertools.pairwise(calls)) < 5.0
