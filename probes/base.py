"""The probe contract: one `Probe` protocol (target in, observation out) and a registry by kind.

Probes are peers: adding a kind means one module and one entry in `probes/kinds.py`. A probe
never raises for a target's failure; it returns an observation that says what failed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from config.targets import Target
from probes.drift import JourneyBaseline
from probes.guard import ReadOnlyGuard
from probes.observation import Observation

__all__ = [
    "ArtifactStore",
    "BrowserOptions",
    "Probe",
    "ProbeContext",
    "ProbeFactory",
    "ProbeRegistry",
    "ProbeSettings",
]


@runtime_checkable
class ArtifactStore(Protocol):
    """Content-addressed storage for captures (screenshots, HTML, WARC).

    `put` must make the bytes durable (fsync) before it returns their SHA-256 hex digest, so an
    observation never names an artifact that could be lost.
    """

    def put(self, data: bytes, kind: str) -> str:
        """Store `data` durably; return its SHA-256 hex digest."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class BrowserOptions:
    """What only the browser probe reads: its Chromium, how many journeys at once, when it
    stops while idle and when a fresh one replaces it."""

    executable: str | None = None  # None: Playwright's Chromium
    max_concurrency: int = 1
    # Seconds without any check after which the browser and its driver stop (None: never).
    idle_close: float | None = None
    # Journeys after which a fresh browser replaces the running one (None: never).
    restart_after: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ProbeSettings:
    """What every probe of a service shares: identity, politeness and captures."""

    vantage: str
    user_agent: str
    environment: Mapping[str, Any]
    artifacts: ArtifactStore | None = None
    browser: BrowserOptions = dataclasses.field(default_factory=BrowserOptions)


@dataclasses.dataclass(frozen=True, slots=True)
class ProbeContext:
    """One check of one target: its own guard, its own deadline."""

    target: Target
    timeout: float
    guard: ReadOnlyGuard = dataclasses.field(default_factory=ReadOnlyGuard)
    capture: bool = False  # keep captures of a success too (e.g. hourly screenshot)
    # Browser: fingerprints of the journey's last success, to tell page drift from failure.
    baseline: JourneyBaseline | None = None


class Probe(Protocol):
    """A prober of one kind. `check` never raises for a failure of the target."""

    kind: str

    async def check(self, ctx: ProbeContext) -> Observation:
        """Probe `ctx.target` once, within `ctx.timeout`, and describe what happened."""
        ...

    async def aclose(self) -> None:
        """Release what the probe holds (connections, browser)."""
        ...


ProbeFactory = Callable[[ProbeSettings], Probe]


class ProbeRegistry:
    """Probe factories by kind; builds each probe lazily, once, and closes them all."""

    def __init__(self, settings: ProbeSettings, factories: Mapping[str, ProbeFactory]) -> None:
        self._settings = settings
        self._factories = dict(factories)
        self._probes: dict[str, Probe] = {}

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds this registry can probe."""
        return tuple(self._factories)

    def get(self, kind: str) -> Probe:
        """The probe for `kind` (KeyError when no prober exists for it)."""
        probe = self._probes.get(kind)
        if probe is None:
            probe = self._factories[kind](self._settings)
            self._probes[kind] = probe
        return probe

    async def check(self, ctx: ProbeContext) -> Observation:
        """Probe one target with the prober of its kind."""
        return await self.get(ctx.target.kind).check(ctx)

    async def aclose(self) -> None:
        """Close every probe that was built."""
        probes, self._probes = list(self._probes.values()), {}
        for probe in probes:
            await probe.aclose()
