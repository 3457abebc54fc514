"""Prometheus metrics of a Vigie vantage, named as blackbox_exporter where the meaning is the same.

Metrics are updated only from observations already committed to the ledger; this module never
decides anything about outages, it only publishes what it is told.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from config.targets import Target
from config.vocabulary import Outcome
from probes.observation import Observation

__all__ = ["CONTENT_TYPE_LATEST", "PHASES", "STATES", "Metrics"]

PHASES = ("resolve", "connect", "tls", "processing", "transfer")
STATES = ("up", "failing", "down", "recovering", "degraded", "unknown")
OUTAGE_KINDS = ("down", "degraded")
_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0)


class Metrics:
    """Every series the service exposes, on its own registry (no process-wide globals)."""

    def __init__(self, *, vantage: str, version: str, public_url: str = "") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.probe_success = Gauge(
            "probe_success",
            "Whether the last check succeeded (1) or failed (0).",
            ["target"],
            registry=r,
        )
        self.probe_duration = Gauge(
            "probe_duration_seconds", "Duration of the last check.", ["target"], registry=r
        )
        self.http_status = Gauge(
            "probe_http_status_code",
            "HTTP status of the last check (0: none).",
            ["target"],
            registry=r,
        )
        self.http_phase = Gauge(
            "probe_http_duration_seconds",
            "Phases of the last HTTP check.",
            ["target", "phase"],
            registry=r,
        )
        self.ssl_expiry = Gauge(
            "probe_ssl_earliest_cert_expiry",
            "Unix time at which the target's TLS certificate expires.",
            ["target"],
            registry=r,
        )
        self.target_info = Gauge(
            "vigie_target_info",
            "Targets watched by this vantage (value is always 1); core: the journey that matters "
            "most to users (its outage has its own alert).",
            ["target", "name", "kind", "url", "core"],
            registry=r,
        )
        self.target_state = Gauge(
            "vigie_target_state",
            "State of each target (one-hot).",
            ["target", "state"],
            registry=r,
        )
        self.outage_open = Gauge(
            "vigie_outage_open",
            "1 while a confirmed outage is open.",
            ["target", "kind"],
            registry=r,
        )
        self.outage_info = Gauge(
            "vigie_outage_info",
            "The id of each open outage (value is always 1), to link alerts to its evidence.",
            ["target", "kind", "outage_id"],
            registry=r,
        )
        self._open_outage_ids: dict[tuple[str, str], str] = {}
        self.outage_review = Gauge(
            "vigie_outage_review_info",
            "A person's review of each open outage (value is always 1): state confirmed or "
            "dismissed, and its French text, for the alerts' follow-ups.",
            ["target", "kind", "outage_id", "state", "text"],
            registry=r,
        )
        self._reviews: dict[tuple[str, str], tuple[str, str, str]] = {}
        self.outage_started = Gauge(
            "vigie_outage_started_timestamp_seconds",
            "Unix time the open outage started (0: none open).",
            ["target", "kind"],
            registry=r,
        )
        self.outages = Counter(
            "vigie_outages", "Confirmed outages opened.", ["target", "kind"], registry=r
        )
        self.outage_seconds = Counter(
            "vigie_outage_seconds",
            "Seconds spent in closed outages.",
            ["target", "kind"],
            registry=r,
        )
        self.maintenance = Gauge(
            "vigie_maintenance",
            "1 while an announced maintenance window is active.",
            ["target"],
            registry=r,
        )
        self.duration_hist = Histogram(
            "vigie_probe_duration_seconds",
            "Check durations.",
            ["target"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.probes = Counter(
            "vigie_probes",
            "Checks made and recorded, by outcome.",
            ["target", "outcome"],
            registry=r,
        )
        self.journey_drift = Gauge(
            "vigie_journey_drift",
            "1 while a browser journey no longer finds its way on a page that serves normally "
            "(journey_drift): the journey needs updating; the site is not watched meanwhile.",
            ["target"],
            registry=r,
        )
        self.step_duration = Gauge(
            "vigie_browser_step_duration_seconds",
            "Duration of each step of the last browser check.",
            ["target", "step"],
            registry=r,
        )
        self.loop_lag = Gauge(
            "vigie_probe_loop_lag_seconds",
            "How late Vigie's own event loop ran during the target's last check (its own load).",
            ["target"],
            registry=r,
        )
        self.vantage_online = Gauge(
            "vigie_vantage_online",
            "1 when this vantage's own network works (controls answer), 0 when all fail.",
            ["vantage"],
            registry=r,
        )
        self.ledger_entries = Counter(
            "vigie_ledger_entries", "Entries appended to the evidence ledger.", registry=r
        )
        self.ledger_write_errors = Counter(
            "vigie_ledger_write_errors", "Failed writes to the evidence ledger.", registry=r
        )
        self.last_checkpoint = Gauge(
            "vigie_ledger_last_checkpoint_timestamp_seconds",
            "Unix time of the last signed checkpoint (0: none yet).",
            registry=r,
        )
        self.checkpoint_cosignatures = Gauge(
            "vigie_ledger_last_checkpoint_cosignatures",
            "Witnesses that cosigned the last checkpoint asked (docs/witnesses.md).",
            registry=r,
        )
        self.tsa_failures = Counter(
            "vigie_tsa_failures", "Failed RFC 3161 timestamp requests.", registry=r
        )
        self.tsa_last_success = Gauge(
            "vigie_tsa_last_success_timestamp_seconds",
            "Unix time of the last RFC 3161 timestamp token (0: none).",
            registry=r,
        )
        self.clock_jumps = Counter(
            "vigie_clock_jumps",
            "Wall-clock jumps detected against the monotonic clock.",
            registry=r,
        )
        self.build_info = Gauge(
            "vigie_build_info",
            "Vigie version, vantage and public URL of its status page (value is always 1).",
            ["version", "vantage", "public_url"],
            registry=r,
        )
        self._vantage = vantage
        self.build_info.labels(version=version, vantage=vantage, public_url=public_url).set(1)
        self.vantage_online.labels(vantage=vantage).set(1)
        self.last_checkpoint.set(0)
        self.tsa_last_success.set(0)

    def declare_targets(self, targets: Iterable[Target]) -> None:
        """Create every per-target series up front so dashboards and alerts see them at once."""
        for target in targets:
            self.target_info.labels(
                target=target.id,
                name=target.display_name,
                kind=target.kind,
                url=target.url,
                core="true" if target.core else "false",
            ).set(1)
            self.set_state(target.id, "unknown")
            self.maintenance.labels(target=target.id).set(0)
            for kind in OUTAGE_KINDS:
                self.outage_open.labels(target=target.id, kind=kind).set(0)
                self.outage_started.labels(target=target.id, kind=kind).set(0)
                self.outages.labels(target=target.id, kind=kind)
                self.outage_seconds.labels(target=target.id, kind=kind)
            for outcome in (Outcome.OK, Outcome.TIMEOUT, Outcome.VANTAGE_OFFLINE):
                self.probes.labels(target=target.id, outcome=str(outcome))
            if target.kind == "browser":
                self.journey_drift.labels(target=target.id).set(0)

    def observe(self, obs: Observation) -> None:
        """Publish one committed observation."""
        target = obs.target_id
        self.probes.labels(target=target, outcome=str(obs.outcome)).inc()
        lag = obs.environment.get("loop_lag_s")
        if isinstance(lag, int | float):
            self.loop_lag.labels(target=target).set(lag)
        if obs.outcome is Outcome.VANTAGE_OFFLINE:
            return  # says nothing about the target: keep its last known values
        if obs.kind == "browser":
            self.journey_drift.labels(target=target).set(
                1 if obs.outcome is Outcome.JOURNEY_DRIFT else 0
            )
        if obs.outcome is Outcome.JOURNEY_DRIFT:
            return  # the journey is stale: it says nothing about the site either
        self.probe_success.labels(target=target).set(1 if obs.success else 0)
        self.probe_duration.labels(target=target).set(obs.duration_s)
        self.duration_hist.labels(target=target).observe(obs.duration_s)
        self.http_status.labels(target=target).set(obs.http_status or 0)
        for phase in PHASES:
            if phase in obs.phases:
                self.http_phase.labels(target=target, phase=phase).set(obs.phases[phase])
        if obs.tls is not None:
            expiry = dt.datetime.fromisoformat(obs.tls.not_after)
            self.ssl_expiry.labels(target=target).set(expiry.timestamp())
        for step in obs.steps:
            self.step_duration.labels(target=target, step=step.name).set(step.duration_s)

    def set_open_outage(self, target: str, kind: str, outage_id: str | None) -> None:
        """Publish `vigie_outage_info` for the open outage of (target, kind), if any."""
        key = (target, kind)
        previous = self._open_outage_ids.get(key)
        if previous == outage_id:
            return
        if previous is not None:
            self.outage_info.remove(target, kind, previous)
        if outage_id is None:
            self._open_outage_ids.pop(key, None)
        else:
            self.outage_info.labels(target=target, kind=kind, outage_id=outage_id).set(1)
            self._open_outage_ids[key] = outage_id

    def set_outage_review(
        self, target: str, kind: str, review: tuple[str, str, str] | None
    ) -> None:
        """Publish the review (outage id, state, text) of the open outage of (target, kind)."""
        key = (target, kind)
        previous = self._reviews.get(key)
        if previous == review:
            return
        if previous is not None:
            self.outage_review.remove(target, kind, *previous)
            del self._reviews[key]
        if review is not None:
            self.outage_review.labels(target, kind, *review).set(1)
            self._reviews[key] = review

    def set_state(self, target: str, state: str) -> None:
        """Set the one-hot state of `target`."""
        for name in STATES:
            self.target_state.labels(target=target, state=name).set(1 if name == state else 0)

    def set_vantage_online(self, online: bool) -> None:
        """Record whether this vantage's own network works."""
        self.vantage_online.labels(vantage=self._vantage).set(1 if online else 0)

    def render(self) -> bytes:
        """The text exposition of every series."""
        return generate_latest(self.registry)
