"""The monitoring service: probe, record durably, then publish. One instance per vantage.

Order is the contract: an observation is committed to the evidence ledger before it is counted
in metrics or outages; a failed write means the observation was not made.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import structlog

from exporter.config import Settings
from exporter.metrics import Metrics
from exporter.outage_recorder import OutageRecorder
from probes.base import ProbeContext, ProbeRegistry
from probes.drift import FingerprintBook
from probes.observation import Observation, Outcome, utc_now
from probes.targets import CONTROL_PREFIX, Expectation, Target

__all__ = ["EvidenceSink", "LedgerWriteError", "Service", "control_targets"]

log = structlog.get_logger("vigie.service")


class LedgerWriteError(Exception):
    """The evidence ledger could not durably record an entry."""


class EvidenceSink(Protocol):
    """Where entries are made durable: `append` returns the entry's sequence number."""

    async def append(self, entry_type: str, body: Mapping[str, Any]) -> int:
        """Commit one entry durably and return its sequence number."""
        ...


def control_targets(urls: Sequence[str], timeout: float) -> list[Target]:
    """Control sites as HTTP targets: any answer below 500 proves our network works."""
    return [
        Target(
            id=f"{CONTROL_PREFIX}{index}",
            name=f"Contrôle {url}",
            kind="http",
            url=url,
            timeout=timeout,
            expect=Expectation(status=tuple(range(200, 500))),
        )
        for index, url in enumerate(urls, start=1)
    ]


@dataclasses.dataclass
class _TargetStatus:
    """What the service knows of a target right now (for the status page)."""

    target: Target
    last: Observation | None = None


class Service:
    """Probes targets, records observations, publishes metrics."""

    def __init__(
        self,
        settings: Settings,
        registry: ProbeRegistry,
        metrics: Metrics,
        sink: EvidenceSink,
        outages: OutageRecorder | None = None,
        *,
        fingerprints: FingerprintBook | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.metrics = metrics
        self.sink = sink
        self.outages = outages  # the status page reads `self.outages.tracker`
        self.status: dict[str, _TargetStatus] = {t.id: _TargetStatus(t) for t in settings.targets}
        self.controls = control_targets(settings.controls, min(settings.defaults.timeout, 15.0))
        self._controls_check: asyncio.Task[bool] | None = None
        self._controls_checked_at = -1e9
        self._controls_ok = True
        self.started = time.time()
        self._captured_at: dict[str, float] = {}
        # Last successful fingerprints of each journey: page drift is told from failure by them.
        self.fingerprints = fingerprints or FingerprintBook()
        metrics.declare_targets(settings.targets)

    async def probe(self, target: Target) -> Observation:
        """Run one check of `target` (not recorded).

        A browser check keeps a screenshot of a success at most once per `screenshot_every`.
        """
        now = time.monotonic()
        last = self._captured_at.get(target.id)
        capture = target.kind == "browser" and (
            last is None or now - last >= target.screenshot_every
        )
        ctx = ProbeContext(
            target=target,
            timeout=self.settings.timeout_of(target),
            capture=capture,
            baseline=self.fingerprints.baseline(target.id) if target.kind == "browser" else None,
        )
        obs = await self.registry.check(ctx)
        if capture and obs.success and obs.artifacts:
            self._captured_at[target.id] = now
        return obs

    async def check_target(self, target: Target) -> float | None:
        """One scheduled check: probe, classify our own network, record, publish."""
        obs = await self.probe(target)
        if not obs.success and self.controls and not await self.vantage_online():
            obs = dataclasses.replace(
                obs,
                success=False,
                outcome=Outcome.VANTAGE_OFFLINE,
                error=f"all controls failed; target check said {obs.outcome}: {obs.error or ''}"[
                    :300
                ],
            )
        try:
            seq = await self.record(obs)
        except LedgerWriteError:
            return None
        obs = obs.with_seq(seq)
        self.fingerprints.note(obs)
        self.status[target.id].last = obs
        self.metrics.observe(obs)
        if not obs.success:
            log.info("check_failed", target=target.id, outcome=str(obs.outcome), error=obs.error)
        if self.outages is None:
            self.metrics.set_state(target.id, "up" if obs.success else "failing")
            return None
        return await self.outages.observed(obs)  # appends outage events; fast re-check delay

    async def watch_controls(self, stopping: asyncio.Event) -> None:
        """Probe the controls on the default interval until `stopping` is set."""
        if not self.controls:
            return
        interval = self.settings.defaults.interval
        while not stopping.is_set():
            await self.vantage_online()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=interval)

    async def record(self, obs: Observation) -> int:
        """Commit `obs` to the ledger; raise `LedgerWriteError` (logged, counted) on failure."""
        body = obs.to_dict()
        body.pop("seq", None)
        try:
            seq = await self.sink.append("observation", body)
        except Exception as exc:
            self.metrics.ledger_write_errors.inc()
            log.error(  # noqa: TRY400 - the cause is in the event; no traceback for disk-full
                "ledger_write_failed", target=obs.target_id, error=f"{type(exc).__name__}: {exc}"
            )
            raise LedgerWriteError(str(exc)) from exc
        return seq

    @property
    def vantage_is_online(self) -> bool:
        """The last known state of this vantage's own network."""
        return self._controls_ok

    async def vantage_online(self) -> bool:
        """Whether at least one control answers now; concurrent callers share one check."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._controls_checked_at < self.settings.outages.recheck / 2:
            return self._controls_ok
        if self._controls_check is None or self._controls_check.done():
            self._controls_check = asyncio.create_task(self._check_controls())
        return await asyncio.shield(self._controls_check)

    async def _check_controls(self) -> bool:
        results = await asyncio.gather(*(self.probe(c) for c in self.controls))
        online = any(r.success for r in results)
        seqs = []
        for obs in results:
            try:
                seqs.append(await self.record(obs))
            except LedgerWriteError:
                break
        if self.outages is not None:
            await self.outages.vantage_checked(online, utc_now(), seqs)
        self._controls_checked_at = asyncio.get_running_loop().time()
        if online != self._controls_ok:
            controls = [f"{r.target_id} {r.final_url or ''}: {r.outcome}" for r in results]
            if online:
                log.warning(
                    "vantage_online", message="a control site answers again", controls=controls
                )
            else:
                log.warning(
                    "vantage_offline",
                    message="every control site failed: this vantage's own network seems down; "
                    "failed checks are recorded as vantage_offline, not as outages of the targets",
                    controls=controls,
                )
        self._controls_ok = online
        self.metrics.set_vantage_online(online)
        return online
