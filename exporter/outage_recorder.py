"""Glue between the service and the outage tracker: append its events, publish its metrics.

It appends only what the tracker decided, after the observation behind it is committed; it
never edits the ledger, and a lost event is found again by the next start-up's rebuild.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import structlog

from config.maintenance import check_windows, is_active
from config.vocabulary import DRIFT, GAP, OUTAGE, REVIEW, VANTAGE
from evidence.outages.tracker import KINDS, LedgerRows, OutageTracker, rebuild_from_ledger

if TYPE_CHECKING:
    from config.settings import Settings
    from exporter.metrics import Metrics
    from exporter.service import EvidenceSink
    from probes.observation import Observation

__all__ = ["OutageRecorder", "expected_silence"]

log = structlog.get_logger("vigie.outages")
_LOG_EVENTS = {"opened": "outage_opened", "closed": "outage_closed"}


def expected_silence(settings: Settings) -> float:
    """Longest silence of a healthy ledger: the most frequent target's interval plus a timeout.

    A restart after a longer silence records an `unmonitored` gap.
    """
    if not settings.targets:
        return settings.defaults.interval + settings.defaults.timeout
    return min(settings.interval_of(t) + settings.timeout_of(t) for t in settings.targets)


class OutageRecorder:
    """Feeds committed observations to the tracker, appends its entries, updates metrics."""

    def __init__(self, tracker: OutageTracker, sink: EvidenceSink, metrics: Metrics) -> None:
        self.tracker = tracker
        self.sink = sink
        self.metrics = metrics

    @classmethod
    async def start(
        cls,
        settings: Settings,
        sink: EvidenceSink,
        metrics: Metrics,
        ledger: LedgerRows | None = None,
        *,
        entries: Iterable[Mapping[str, Any]] = (),
        now: dt.datetime | None = None,
    ) -> OutageRecorder:
        """Rebuild from `ledger` (or decoded `entries`), then append what start-up owes it.

        Appends, in order: outage events a crash kept from being written, and the `gap` since
        the last entry when Vigie was silent longer than `expected_silence`. The replay of a
        ledger runs in a worker thread and decodes only recent observations.
        """
        now = now or dt.datetime.now(dt.UTC)
        rules, windows, targets = settings.outages, settings.maintenance, settings.targets
        problems = check_windows(windows)
        if problems:
            from config.settings import ConfigError

            raise ConfigError(problems)
        if ledger is not None:
            tracker = await asyncio.to_thread(
                rebuild_from_ledger, ledger, rules, windows, targets, now=now
            )
        else:
            tracker = OutageTracker.rebuild(entries, rules, windows, targets)
        recorder = cls(tracker, sink, metrics)
        for body in tracker.pending_events():
            log.warning(
                "outage_event_recovered",
                outage_id=body["outage_id"],
                outage_event=body["event"],
                message="an outage event missing from the ledger (crash) is appended now",
            )
            await recorder._append(OUTAGE, body)
        gap = tracker.gap_entry(now, expected_silence(settings))
        if gap is not None:
            log.warning(
                "unmonitored_gap", start=gap["from"], end=gap["to"], seconds=gap["duration_s"]
            )
            await recorder._append(GAP, gap)
        recorder.publish(now=now)
        log.info(
            "outages_rebuilt",
            entries=tracker.entries_seen,
            open=[r.id for r in tracker.open_outages()],
        )
        return recorder

    async def observed(self, obs: Observation) -> float | None:
        """Account `obs` (committed, carrying its `seq`); return a fast re-check delay or None."""
        events = self.tracker.observe(obs)
        for body in events:
            log.warning(
                _LOG_EVENTS.get(str(body["event"]), "outage_event"),
                outage_id=body["outage_id"],
                target=body["target_id"],
                kind=body["kind"],
                started_at=body["started_at"],
                ended_at=body.get("ended_at"),
                causes=body.get("causes"),
            )
            await self._append(OUTAGE, body)
            self._count(body)
        for body in self.tracker.drift_events():
            log.warning(
                "journey_drift",
                drift=body["event"],
                target=body["target_id"],
                at=body["at"],
                message="the journey no longer finds its way on a page that serves normally: "
                "update it (vigie check --journeys); no outage is opened meanwhile"
                if body["event"] == "started"
                else "the journey works again (or the page now fails for real)",
            )
            await self._append(DRIFT, body)
        self._publish_target(obs.target_id, dt.datetime.now(dt.UTC))
        return self.tracker.recheck_delay(obs.target_id)

    async def vantage_checked(
        self, online: bool, at: dt.datetime | str, seqs: Sequence[int] = ()
    ) -> None:
        """Account a check of the controls; appends a `vantage` entry when the state changes."""
        for body in self.tracker.observe_vantage(online, at, seqs):
            await self._append(VANTAGE, body)

    async def run(self, stopping: asyncio.Event, every: float = 30.0) -> None:
        """Refresh the state series every `every` seconds until `stopping` is set.

        Maintenance windows start and end between checks: this keeps `vigie_maintenance`
        right for targets checked rarely.
        """
        while not stopping.is_set():
            self.publish()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=every)

    async def follow_reviews(
        self, ledger: LedgerRows, stopping: asyncio.Event, every: float = 5.0
    ) -> None:
        """Account `review` entries other processes (`vigie review`) append, until `stopping`.

        Reviews recorded before the start were replayed by the rebuild; this reads only the
        entries appended since, every `every` seconds.
        """
        position = await asyncio.to_thread(ledger.size)

        def scan(start: int) -> tuple[int, list[dict[str, Any]]]:
            found, last = [], start
            for row in ledger.iter_rows(start):
                last = row.seq + 1
                if row.type == REVIEW:
                    found.append(json.loads(row.body))
            return last, found

        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=every)
            try:
                position, reviews = await asyncio.to_thread(scan, position)
            except Exception as exc:  # noqa: BLE001 - a read failure is retried next time
                log.warning("review_follow_failed", error=f"{type(exc).__name__}: {exc}")
                continue
            for entry in reviews:
                review = self.tracker.add_review(entry)
                log.info("outage_reviewed", outage_id=review.outage_id, verdict=review.verdict)

    def publish(self, now: dt.datetime | None = None) -> None:
        """Set every target's state, open-outage and maintenance series."""
        moment = now or dt.datetime.now(dt.UTC)
        for target_id in self.tracker.targets:
            self._publish_target(target_id, moment)

    async def _append(self, entry_type: str, body: Mapping[str, Any]) -> None:
        try:
            await self.sink.append(entry_type, body)
        except Exception as exc:  # noqa: BLE001 - any write failure: the next rebuild re-appends
            self.metrics.ledger_write_errors.inc()
            log.error(  # noqa: TRY400 - the cause is in the event
                "ledger_write_failed", entry_type=entry_type, error=f"{type(exc).__name__}: {exc}"
            )
            return

    def _count(self, body: Mapping[str, Any]) -> None:
        labels = {"target": str(body["target_id"]), "kind": str(body["kind"])}
        if body["event"] == "opened":
            self.metrics.outages.labels(**labels).inc()
        elif body.get("duration_s") is not None:
            self.metrics.outage_seconds.labels(**labels).inc(max(0.0, float(body["duration_s"])))

    def _publish_target(self, target_id: str, now: dt.datetime) -> None:
        metrics = self.metrics
        metrics.set_state(target_id, self.tracker.state(target_id))
        open_by_kind = self.tracker.open_for(target_id)
        for kind in KINDS:
            record = open_by_kind.get(kind)
            metrics.set_open_outage(target_id, kind, record.id if record else None)
            review = record.review if record else None
            metrics.set_outage_review(
                target_id,
                kind,
                None
                if review is None or record is None
                else (record.id, review.verdict, review.text_fr),
            )
            metrics.outage_open.labels(target=target_id, kind=kind).set(1 if record else 0)
            metrics.outage_started.labels(target=target_id, kind=kind).set(
                record.start.timestamp() if record else 0
            )
        active = any(is_active(w, now, target_id) for w in self.tracker.maintenance)
        metrics.maintenance.labels(target=target_id).set(1 if active else 0)
