"""The monitoring service: probe, record durably, then publish. One instance per vantage.

Order is the contract: an observation is committed to the evidence ledger before it is counted
in metrics or outages; a failed write means the observation was not made.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import socket
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import structlog

from config.settings import Settings
from config.targets import CONTROL_PREFIX, Expectation, Target
from config.vocabulary import Outcome
from exporter.looplag import LoopLag
from exporter.metrics import Metrics
from exporter.outage_recorder import OutageRecorder
from probes.base import ProbeContext, ProbeRegistry
from probes.drift import FingerprintBook
from probes.environment import resolvers, vigie_version
from probes.observation import Observation, utc_now

if TYPE_CHECKING:
    from evidence.ledger.checkpoint import Checkpointer

__all__ = [
    "EvidenceSink",
    "ObservationNotRecordedError",
    "Service",
    "check_once",
    "control_targets",
]

log = structlog.get_logger("vigie.service")


class ObservationNotRecordedError(Exception):
    """An observation could not be made durable in the ledger (the ledger's own error, whatever
    the sink, is its cause; not to be confused with `evidence.ledger.entries.LedgerWriteError`)."""


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


_CHROMIUM_DNS_ERRORS = ("ERR_NAME_NOT_RESOLVED", "ERR_NAME_RESOLUTION_FAILED")


def _clip(text: str) -> str:
    return text if len(text) <= 300 else text[:297] + "..."


def _dns_facts(obs: Observation) -> Mapping[str, Any] | None:
    """What the check recorded of a failed lookup (`environment.dns`); for a browser's
    `dns_error` (Chromium records none), the host, Chromium's error and the resolvers."""
    dns = obs.environment.get("dns")
    if isinstance(dns, dict):
        return dns
    if obs.outcome is not Outcome.DNS_ERROR:
        return None
    error = obs.error or ""
    code = next((c for c in _CHROMIUM_DNS_ERRORS if c in error), "dns_error")
    return {
        "host": urlsplit(obs.final_url or "").hostname or "",
        "error": code,
        "resolvers": resolvers(),
    }


def _with_dns(obs: Observation, dns: Mapping[str, Any], verdict: str) -> Observation:
    """`obs` whose `environment.dns` says whose failure the lookup was."""
    return dataclasses.replace(
        obs, environment={**obs.environment, "dns": {**dns, "verdict": verdict}}
    )


def _offline(obs: Observation, why: str) -> Observation:
    """`obs` recorded as a failure of this vantage, not of the target, saying why."""
    return dataclasses.replace(
        obs,
        success=False,
        outcome=Outcome.VANTAGE_OFFLINE,
        error=_clip(f"{why}; target check said {obs.outcome}: {obs.error or ''}"),
    )


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
        self.checkpointer: Checkpointer | None = None  # signs a checkpoint for a download
        self.status: dict[str, _TargetStatus] = {t.id: _TargetStatus(t) for t in settings.targets}
        self.controls = control_targets(settings.controls, min(settings.defaults.timeout, 15.0))
        self._controls_check: asyncio.Task[bool] | None = None
        self._controls_checked_at = -1e9
        self._controls_ok = True
        self._names_checked: tuple[float, bool] = (-1e9, True)
        self.lag = LoopLag()
        # A control check is reused for half the effective re-check (never slower than the
        # most frequent target's interval), so the first failures of a cut are not the target's.
        effective = min(
            [settings.outages.recheck] + [settings.interval_of(t) for t in settings.targets]
        )
        self._reuse_for = effective / 2
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

    async def classify(self, obs: Observation) -> Observation:
        """Whose fault a failed check is: a failure of this vantage's own resolver or network
        becomes `vantage_offline` (it neither opens nor closes an outage); a failure the
        controls do not share stays the target's.

        A failed lookup is first compared with the control sites' names through the same
        resolver (none resolves: the resolver's failure); then, as for any failure, the
        control sites themselves are asked (a caching resolver can answer while the network
        is down)."""
        if obs.success:
            return obs
        dns = _dns_facts(obs)
        if dns is not None and self.control_names:
            if not await self.controls_resolve():
                return _offline(
                    _with_dns(obs, dns, "resolver"),
                    f"this vantage's DNS resolver failed ({dns.get('error')}): the control "
                    f"sites' names do not resolve either (resolvers: "
                    f"{', '.join(dns.get('resolvers') or ()) or 'unknown'})",
                )
            if self.controls and not await self.vantage_online():
                return _offline(_with_dns(obs, dns, "network"), "all controls failed")
            return dataclasses.replace(
                _with_dns(obs, dns, "target"),
                error=_clip(
                    f"{obs.error or ''} (the control sites' names resolve through the same "
                    "resolver: the failure is the target's)"
                ),
            )
        if self.controls and not await self.vantage_online():
            return _offline(obs, "all controls failed")
        return obs

    @property
    def control_names(self) -> tuple[str, ...]:
        """The control sites' host names (IP literals left out): resolver health checks."""
        names: list[str] = []
        for control in self.controls:
            host = urlsplit(control.url).hostname or ""
            try:
                ipaddress.ip_address(host)
            except ValueError:
                if host and host not in names:
                    names.append(host)
        return tuple(names)

    async def controls_resolve(self) -> bool:
        """Whether at least one control site's name resolves now (the system resolver, as the
        probes use it); shared for half a re-check period."""
        loop = asyncio.get_running_loop()
        checked_at, answer = self._names_checked
        if loop.time() - checked_at < self._reuse_for:
            return answer
        timeout = min(self.settings.defaults.timeout, 10.0)

        async def resolves(name: str) -> bool:
            try:
                async with asyncio.timeout(timeout):
                    return bool(await loop.getaddrinfo(name, 443, type=socket.SOCK_STREAM))
            except (OSError, TimeoutError, UnicodeError):
                return False

        answer = any(await asyncio.gather(*(resolves(n) for n in self.control_names)))
        self._names_checked = (loop.time(), answer)
        return answer

    async def check_target(self, target: Target) -> float | None:
        """One scheduled check: probe, classify our own load and network, record, publish.

        A check during which this process's own event loop ran late beyond
        `outages.max_loop_lag` is never a verdict against the target when it failed or was
        slow: it is recorded as this vantage's problem (`vantage_offline`, saying so) and the
        target is re-checked soon.
        """
        obs, overloaded = await self.judged(target)
        delay = await self.publish(target, obs)
        if overloaded:
            recheck = self.settings.outages.recheck
            return recheck if delay is None else min(delay, recheck)
        return delay

    async def judged(self, target: Target) -> tuple[Observation, bool]:
        """Probe `target` measuring this process's loop lag, then say whose fault a failure
        is; the observation and whether it was taken while the probe itself was overloaded."""
        self.lag.start()
        since = self.lag.now()
        obs = await self.probe(target)
        lag = self.lag.worst_since(since)
        obs = dataclasses.replace(obs, environment={**obs.environment, "loop_lag_s": round(lag, 6)})
        limit = self.settings.outages.max_loop_lag
        slow = target.slow_after is not None and obs.duration_s > target.slow_after
        if lag > limit and (not obs.success or slow):
            log.warning("probe_overloaded", target=target.id, loop_lag_s=round(lag, 3))
            return _offline(
                obs,
                f"this vantage was overloaded: its event loop ran {lag:.3f} s late during the "
                f"check (limit {limit:g} s); not held against the target, re-checked",
            ), True
        return await self.classify(obs), False

    async def publish(self, target: Target, obs: Observation) -> float | None:
        """Record `obs`, then update status, metrics and outages; the fast re-check delay."""
        try:
            seq = await self.record(obs)
        except ObservationNotRecordedError:
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
        """Commit `obs` to the ledger; raise `ObservationNotRecordedError` (logged, counted)
        on failure."""
        body = obs.to_dict()
        body.pop("seq", None)
        try:
            seq = await self.sink.append("observation", body)
        except Exception as exc:
            self.metrics.ledger_write_errors.inc()
            log.error(  # noqa: TRY400 - the cause is in the event; no traceback for disk-full
                "ledger_write_failed", target=obs.target_id, error=f"{type(exc).__name__}: {exc}"
            )
            raise ObservationNotRecordedError(str(exc)) from exc
        return seq

    @property
    def vantage_is_online(self) -> bool:
        """The last known state of this vantage's own network."""
        return self._controls_ok

    async def vantage_online(self) -> bool:
        """Whether at least one control answers now; concurrent callers share one check."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._controls_checked_at < self._reuse_for:
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
            except ObservationNotRecordedError:
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


class _NoSink:
    """`vigie check` records nothing: entries are numbered and dropped."""

    def __init__(self) -> None:
        self.count = 0

    async def append(self, entry_type: str, body: Mapping[str, Any]) -> int:  # noqa: ARG002
        self.count += 1
        return self.count


async def check_once(
    settings: Settings, registry: ProbeRegistry, targets: Sequence[Target]
) -> tuple[list[Observation], bool]:
    """Probe `targets` once, classified as `vigie run` does (controls, resolver), recording
    nothing: the observations and whether this vantage's own network answered."""
    metrics = Metrics(vantage=settings.vantage.name, version=vigie_version())
    service = Service(settings, registry, metrics, _NoSink())
    limit = asyncio.Semaphore(settings.max_concurrency)

    async def one(target: Target) -> Observation:
        async with limit:
            obs, _overloaded = await service.judged(target)
            return obs

    try:
        observations = list(await asyncio.gather(*(one(t) for t in targets)))
    finally:
        service.lag.stop()
    return observations, service.vantage_is_online
