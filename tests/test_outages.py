"""Outage state machine: confirmation, recovery, vantage offline, degraded, restarts, records."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import dataclasses
import datetime as dt
import io
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.french import format_duration_fr
from config.settings import MaintenanceWindow, OutageRules
from config.targets import Target
from config.vocabulary import Outcome
from evidence.outages.tracker import (
    OutageRecord,
    OutageTracker,
    causes_text,
    causes_text_fr,
    decode_entries,
    entry_time,
    format_duration,
    gap_since_last,
    outages_from_entries,
    periods_from_entries,
)
from probes.observation import Observation, canonical_json, format_time
from tests.service_fixture import LedgerFollower

T0 = dt.datetime(2026, 11, 23, 12, 0, 0, tzinfo=dt.UTC)
RULES = OutageRules(confirm_after=3, recover_after=2, recheck=10.0)
TARGET = Target(id="site", name="Site", kind="http", url="http://127.0.0.1/", slow_after=5.0)
OTHER = Target(id="other", kind="http", url="http://127.0.0.1/other")


def make_obs(
    at: float,
    outcome: Outcome = Outcome.OK,
    *,
    target: str = "site",
    status: int | None = None,
    duration: float = 0.2,
    artifacts: dict[str, str] | None = None,
) -> Observation:
    """An observation `at` seconds after T0."""
    success = outcome is Outcome.OK
    return Observation(
        target_id=target,
        kind="http",
        vantage="test",
        started_at=format_time(T0 + dt.timedelta(seconds=at)),
        duration_s=duration,
        success=success,
        outcome=outcome,
        http_status=status if status is not None else (200 if success else None),
        artifacts=artifacts or {},
    )


OK = Outcome.OK


def plain(text: str) -> str:
    """Cause texts use the multiplication sign; compare them with a plain x."""
    return text.replace("\N{MULTIPLICATION SIGN}", "x")


FAIL = Outcome.HTTP_STATUS
OFF = Outcome.VANTAGE_OFFLINE


class Ledger:
    """The service's order of work: append the observation, observe it, append its events."""

    def __init__(self, tracker: OutageTracker) -> None:
        self.tracker = tracker
        self.entries: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []

    def append(self, entry_type: str, body: dict[str, Any]) -> int:
        seq = len(self.entries)
        # Round-trip through canonical JSON, as the ledger stores it.
        entry = json.loads(canonical_json({"type": entry_type, "seq": seq, **body}))
        self.entries.append(entry)
        return seq

    def check(self, obs: Observation) -> list[dict[str, Any]]:
        body = obs.to_dict()
        body.pop("seq")
        seq = self.append("observation", body)
        events = self.tracker.observe(obs.with_seq(seq))
        for event in events:
            self.append("outage", event)
        self.events.extend(events)
        return events

    def run(self, timeline: Sequence[tuple[float, Outcome]], **kw: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for at, outcome in timeline:
            status = 503 if outcome is FAIL else None
            out += self.check(make_obs(at, outcome, status=status, **kw))
        return out


def tracker(
    rules: OutageRules = RULES, maintenance: Sequence[MaintenanceWindow] = ()
) -> OutageTracker:
    return OutageTracker(rules, maintenance, [TARGET, OTHER])


def every(
    step: float, outcomes: Sequence[Outcome], start: float = 0.0
) -> list[tuple[float, Outcome]]:
    return [(start + i * step, o) for i, o in enumerate(outcomes)]


class TestConfirmation:
    def test_outage_opens_after_confirm_after_failures(self) -> None:
        """Three consecutive failures open one outage starting at the first failure."""
        ledger = Ledger(tracker())
        events = ledger.run(every(10, [OK, FAIL, FAIL, FAIL]))
        assert [e["event"] for e in events] == ["opened"]
        opened = events[0]
        assert opened["kind"] == "down"
        assert opened["started_at"] == format_time(T0 + dt.timedelta(seconds=10))
        assert opened["at"] == format_time(T0 + dt.timedelta(seconds=30))
        assert opened["seqs"] == [1, 2, 3]  # the three failed observations
        assert opened["failed_checks"] == 3
        assert opened["causes"] == {"http_503": 3}
        assert opened["outage_id"] == "site-20261123T120010Z"
        assert ledger.tracker.state("site") == "down"

    def test_flapping_under_confirmation_never_opens(self) -> None:
        """Runs of failures shorter than confirm_after, broken by successes, open nothing."""
        ledger = Ledger(tracker())
        pattern = [OK, FAIL, FAIL, OK, FAIL, OK, FAIL, FAIL, OK] * 5
        assert ledger.run(every(10, pattern)) == []
        assert ledger.tracker.open_outages() == []
        assert ledger.tracker.records() == []

    def test_states_through_an_outage(self) -> None:
        """unknown → up → failing → down → recovering → up, with fast re-checks when unsettled."""
        t = tracker()
        ledger = Ledger(t)
        seen = [(t.state("site"), t.recheck_delay("site"))]
        for at, outcome in every(10, [OK, FAIL, FAIL, FAIL, OK, OK]):
            ledger.check(make_obs(at, outcome, status=503 if outcome is FAIL else None))
            seen.append((t.state("site"), t.recheck_delay("site")))
        assert seen == [
            ("unknown", None),
            ("up", None),
            ("failing", 10.0),
            ("failing", 10.0),
            ("down", 10.0),
            ("recovering", 10.0),
            ("up", None),
        ]

    def test_recovery_needs_recover_after_consecutive_successes(self) -> None:
        """A lone success does not end the outage; its end is the first success of the final run."""
        ledger = Ledger(tracker())
        events = ledger.run(every(10, [FAIL, FAIL, FAIL, OK, FAIL, FAIL, OK, OK, OK]))
        assert [e["event"] for e in events] == ["opened", "closed"]
        closed = events[1]
        assert closed["ended_at"] == format_time(T0 + dt.timedelta(seconds=60))
        assert closed["at"] == format_time(T0 + dt.timedelta(seconds=70))
        assert closed["failed_checks"] == 5
        assert closed["duration_s"] == 60.0
        assert closed["seqs"] == [7, 8]  # the recovering observations (seq 3 is the event)
        assert closed["reason"] == "recovered"

    def test_confirm_after_one_and_recover_after_one(self) -> None:
        """With confirm_after=1 and recover_after=1, one failure opens and one success closes."""
        rules = OutageRules(confirm_after=1, recover_after=1, recheck=5.0)
        ledger = Ledger(tracker(rules))
        events = ledger.run(every(10, [OK, FAIL, OK]))
        assert [e["event"] for e in events] == ["opened", "closed"]
        assert events[1]["duration_s"] == 10.0

    def test_targets_are_independent(self) -> None:
        """Failures of one target never count toward another's confirmation."""
        ledger = Ledger(tracker())
        events = []
        for i in range(3):
            events += ledger.check(make_obs(i * 10, FAIL, status=503))
            events += ledger.check(make_obs(i * 10 + 1, OK, target="other"))
        assert [(e["target_id"], e["event"]) for e in events] == [("site", "opened")]
        assert ledger.tracker.state("other") == "up"

    def test_unknown_targets_and_controls_are_ignored(self) -> None:
        """Observations of controls (not configured targets) produce no event and no state."""
        ledger = Ledger(tracker())
        assert ledger.run(every(10, [FAIL] * 5), target="control-1") == []
        assert ledger.tracker.state("control-1") == "unknown"

    def test_causes_breakdown_and_artifacts(self) -> None:
        """The close event counts causes by kind and lists the failures' artifacts."""
        ledger = Ledger(tracker())
        ledger.check(make_obs(0, FAIL, status=503, artifacts={"a" * 64: "screenshot"}))
        ledger.check(make_obs(10, Outcome.TIMEOUT))
        ledger.check(make_obs(20, FAIL, status=503, artifacts={"b" * 64: "html"}))
        ledger.check(make_obs(30, FAIL, status=502))
        events = ledger.run(every(10, [OK, OK], start=40))
        closed = events[-1]
        assert closed["causes"] == {"http_503": 2, "http_502": 1, "timeout": 1}
        assert closed["artifacts"] == {"a" * 64: "screenshot", "b" * 64: "html"}
        record = ledger.tracker.records()[0]
        assert plain(record.causes_text) == "HTTP 503 x2, HTTP 502 x1, timeout x1"
        assert plain(record.causes_text_fr) == (
            "erreur HTTP 503 x2, erreur HTTP 502 x1, délai dépassé x1"
        )


class TestVantageOffline:
    def test_vantage_offline_never_opens(self) -> None:
        """Any number of vantage_offline observations opens no outage."""
        ledger = Ledger(tracker())
        assert ledger.run(every(10, [OK] + [OFF] * 20)) == []
        assert ledger.tracker.state("site") == "up"
        assert ledger.tracker.recheck_delay("site") is None

    def test_vantage_offline_does_not_count_toward_confirmation(self) -> None:
        """Two failures around vantage_offline observations stay below confirm_after=3."""
        ledger = Ledger(tracker())
        assert ledger.run(every(10, [FAIL, OFF, OFF, FAIL, OFF, OK])) == []

    def test_vantage_offline_never_closes(self) -> None:
        """During an outage, vantage_offline observations neither close it nor count as failures."""
        ledger = Ledger(tracker())
        events = ledger.run(every(10, [FAIL, FAIL, FAIL, OFF, OFF, OFF, OK, OFF, OK]))
        assert [e["event"] for e in events] == ["opened", "closed"]
        closed = events[-1]
        assert closed["failed_checks"] == 3
        assert closed["ended_at"] == format_time(T0 + dt.timedelta(seconds=60))

    def test_vantage_offline_time_is_unmonitored(self) -> None:
        """Time between a vantage_offline observation and the next real one is not monitored."""
        t = tracker()
        Ledger(t).run(every(600, [OK, OFF, OFF, OK]))  # offline from 600 s to 1800 s
        avail = t.index.availability(
            "site", T0, T0 + dt.timedelta(seconds=2400), T0 + dt.timedelta(seconds=2400)
        )
        assert avail.monitored_s == 1200.0
        assert avail.unmonitored_s == 1200.0

    def test_vantage_events_on_change_only(self) -> None:
        """observe_vantage returns an entry body only when the vantage's state changes."""
        t = tracker()
        assert t.observe_vantage(True, T0) == []
        offline = t.observe_vantage(False, T0 + dt.timedelta(seconds=10), [7, 8])
        assert offline == [
            {"event": "offline", "at": format_time(T0 + dt.timedelta(seconds=10)), "seqs": [7, 8]}
        ]
        assert t.observe_vantage(False, T0 + dt.timedelta(seconds=20)) == []
        online = t.observe_vantage(True, T0 + dt.timedelta(seconds=70))
        assert [e["event"] for e in online] == ["online"]
        assert t.vantage_periods()[0].duration(T0) == 60.0


class TestDegraded:
    def test_slow_successes_open_and_close_a_degraded_period(self) -> None:
        """Three slow successes open `degraded`; two fast ones close it at the first fast one."""
        ledger = Ledger(tracker())
        for i, duration in enumerate([0.2, 6, 7, 8, 0.3, 9, 0.2, 0.2]):
            ledger.check(make_obs(i * 10, OK, duration=duration))
        kinds = [(e["kind"], e["event"]) for e in ledger.events]
        assert kinds == [("degraded", "opened"), ("degraded", "closed")]
        opened, closed = ledger.events
        assert opened["started_at"] == format_time(T0 + dt.timedelta(seconds=10))
        assert opened["causes"] == {"slow": 3}
        assert opened["rules"]["slow_after_s"] == 5.0
        assert closed["ended_at"] == format_time(T0 + dt.timedelta(seconds=60))
        assert closed["failed_checks"] == 4

    def test_degraded_state_and_recheck(self) -> None:
        """While degraded the state says so; re-checks are fast only while it is unsettled."""
        t = tracker()
        ledger = Ledger(t)
        ledger.check(make_obs(0, OK, duration=6))
        assert (t.state("site"), t.recheck_delay("site")) == ("up", 10.0)
        ledger.check(make_obs(10, OK, duration=6))
        ledger.check(make_obs(20, OK, duration=6))
        assert (t.state("site"), t.recheck_delay("site")) == ("degraded", None)
        ledger.check(make_obs(30, OK, duration=0.1))
        assert (t.state("site"), t.recheck_delay("site")) == ("degraded", 10.0)

    def test_isolated_slow_checks_do_not_open(self) -> None:
        """Slow checks separated by fast ones never open a degraded period."""
        ledger = Ledger(tracker())
        for i, duration in enumerate([6, 6, 0.1, 6, 6, 0.1, 6]):
            ledger.check(make_obs(i * 10, OK, duration=duration))
        assert ledger.events == []

    def test_without_slow_after_never_degraded(self) -> None:
        """A target without slow_after is never degraded, however slow."""
        ledger = Ledger(tracker())
        ledger.run(every(10, [OK] * 5), target="other", duration=100.0)
        assert ledger.events == []

    def test_down_outage_supersedes_degraded(self) -> None:
        """Confirming a down outage ends an open degraded period at the first failure."""
        ledger = Ledger(tracker())
        for i in range(3):
            ledger.check(make_obs(i * 10, OK, duration=6))
        events = ledger.run(every(10, [FAIL, FAIL, FAIL], start=30))
        assert [(e["kind"], e["event"]) for e in events] == [
            ("degraded", "closed"),
            ("down", "opened"),
        ]
        assert events[0]["reason"] == "superseded"
        assert events[0]["ended_at"] == events[1]["started_at"]
        assert ledger.tracker.state("site") == "down"


class TestRebuild:
    def test_outage_open_before_a_restart_stays_open(self) -> None:
        """After a restart mid-outage the outage is still open and closes with its original id."""
        first = Ledger(tracker())
        first.run(every(10, [OK, FAIL, FAIL, FAIL, FAIL]))
        opened_id = first.events[0]["outage_id"]
        rebuilt = OutageTracker.rebuild(first.entries, RULES, (), [TARGET, OTHER])
        assert rebuilt.pending_events() == []
        assert rebuilt.state("site") == "down"
        assert [r.id for r in rebuilt.open_outages()] == [opened_id]
        assert rebuilt.open_outages()[0].failed_checks == 4
        second = Ledger(rebuilt)
        second.entries = list(first.entries)
        events = second.run(every(10, [OK, OK], start=300))
        assert [(e["outage_id"], e["event"]) for e in events] == [(opened_id, "closed")]
        assert events[0]["failed_checks"] == 4
        assert events[0]["started_at"] == format_time(T0 + dt.timedelta(seconds=10))

    def test_failing_run_survives_a_restart(self) -> None:
        """Two failures before a restart and one after confirm the outage (confirm_after=3)."""
        first = Ledger(tracker())
        first.run(every(10, [OK, FAIL, FAIL]))
        rebuilt = OutageTracker.rebuild(first.entries, RULES, (), [TARGET])
        assert rebuilt.state("site") == "failing"
        events = Ledger(rebuilt).run([(40, FAIL)])
        assert [e["event"] for e in events] == ["opened"]
        assert events[0]["started_at"] == format_time(T0 + dt.timedelta(seconds=10))

    def test_missing_event_after_a_crash_is_pending(self) -> None:
        """An observation recorded without its outage event (crash) yields the event at rebuild."""
        first = Ledger(tracker())
        first.run(every(10, [OK, FAIL, FAIL, FAIL]))
        assert first.entries[-1]["type"] == "outage"
        truncated = first.entries[:-1]  # crashed before appending the event
        rebuilt = OutageTracker.rebuild(truncated, RULES, (), [TARGET])
        pending = rebuilt.pending_events()
        assert [p["event"] for p in pending] == ["opened"]
        assert pending[0] == first.events[0]
        assert rebuilt.pending_events() == []  # handed over once
        assert rebuilt.state("site") == "down"

    def test_rebuild_reproduces_history(self) -> None:
        """Records after a rebuild equal the records told by the ledger's outage entries."""
        first = Ledger(tracker())
        first.run(every(10, [OK, FAIL, FAIL, FAIL, OK, OK, FAIL, FAIL, FAIL, FAIL, OK, OK]))
        for i, duration in enumerate([6, 6, 6, 0.1, 0.1]):
            first.check(make_obs(200 + i * 10, OK, duration=duration))
        rebuilt = OutageTracker.rebuild(first.entries, RULES, (), [TARGET])
        assert rebuilt.pending_events() == []
        told = outages_from_entries(first.entries)
        assert [r.to_dict() for r in rebuilt.records()] == [r.to_dict() for r in told]
        assert [(r.kind, r.is_open) for r in told] == [
            ("down", False),
            ("down", False),
            ("degraded", False),
        ]

    def test_recorded_events_are_authoritative(self) -> None:
        """An outage the ledger opened under other rules stays open after a rebuild."""
        strict = OutageRules(confirm_after=5, recover_after=2, recheck=10.0)
        first = Ledger(tracker(OutageRules(confirm_after=2, recover_after=2, recheck=10.0)))
        first.run(every(10, [FAIL, FAIL]))
        rebuilt = OutageTracker.rebuild(first.entries, strict, (), [TARGET])
        assert rebuilt.pending_events() == []
        assert rebuilt.state("site") == "down"
        assert len(rebuilt.open_outages()) == 1

    def test_ids_stay_unique_across_restarts(self) -> None:
        """Two outages starting in the same second get distinct ids, also after a rebuild."""
        rules = OutageRules(confirm_after=1, recover_after=1, recheck=1.0)
        first = Ledger(tracker(rules))
        first.run(every(0.1, [FAIL, OK, FAIL, OK]))
        rebuilt = OutageTracker.rebuild(first.entries, rules, (), [TARGET])
        second = Ledger(rebuilt)
        second.run(every(0.1, [FAIL], start=0.5))
        ids = [e["outage_id"] for e in [*first.events, *second.events] if e["event"] == "opened"]
        assert ids == [
            "site-20261123T120000Z",
            "site-20261123T120000Z-2",
            "site-20261123T120000Z-3",
        ]


class TestGaps:
    def test_gap_from_last_entry_to_now(self) -> None:
        """A restart long after the last entry yields a gap from that entry's end to now."""
        ledger = Ledger(tracker())
        ledger.run([(0, OK), (60, OK)])
        now = T0 + dt.timedelta(hours=2)
        gap = gap_since_last(ledger.entries, now, expected_interval=60)
        assert gap is not None
        assert gap["from"] == format_time(T0 + dt.timedelta(seconds=60.2))
        assert gap["to"] == format_time(now)
        assert gap["duration_s"] == pytest.approx(7200 - 60.2)

    def test_no_gap_for_a_quick_restart_or_an_empty_ledger(self) -> None:
        """No gap when nothing was missed, nor when nothing was ever recorded."""
        ledger = Ledger(tracker())
        ledger.run([(0, OK)])
        assert gap_since_last(ledger.entries, T0 + dt.timedelta(seconds=30), 60) is None
        assert gap_since_last([], T0, 60) is None

    def test_tracker_gap_entry_is_counted_neither_up_nor_down(self) -> None:
        """A gap during an outage is excluded from both monitored and down time."""
        first = Ledger(tracker())
        first.run(every(60, [OK, FAIL, FAIL, FAIL]))  # down from 60 s, last entry ends 180.2 s
        rebuilt = OutageTracker.rebuild(first.entries, RULES, (), [TARGET])
        restart = T0 + dt.timedelta(seconds=3780.2)  # one hour later
        gap = rebuilt.gap_entry(restart, expected_interval=60)
        assert gap is not None
        assert gap["duration_s"] == pytest.approx(3600)
        second = Ledger(rebuilt)
        second.run(every(60, [OK, OK], start=3840.2))
        end = T0 + dt.timedelta(seconds=3840.2)
        avail = rebuilt.index.availability("site", T0, end, end)
        assert avail.unmonitored_s == pytest.approx(3600)
        assert avail.down_s == pytest.approx(3840.2 - 60 - 3600)
        assert avail.monitored_s == pytest.approx(240.2)

    def test_gap_entries_are_replayed(self) -> None:
        """A recorded gap is known again after a rebuild, and listed as a period."""
        entries = [
            {
                "type": "gap",
                "seq": 0,
                "from": format_time(T0),
                "to": format_time(T0 + dt.timedelta(hours=1)),
                "duration_s": 3600.0,
                "reason": "not_running",
            }
        ]
        rebuilt = OutageTracker.rebuild(entries, RULES, (), [TARGET])
        assert [p.kind for p in rebuilt.gaps()] == ["unmonitored"]
        assert [p.kind for p in periods_from_entries(entries)] == ["unmonitored"]
        assert rebuilt.last_entry_time == T0 + dt.timedelta(hours=1)


class TestMaintenanceLabels:
    NIGHTLY = MaintenanceWindow.model_validate(
        {
            "every": "day",
            "from": "22:00",
            "to": "06:00",
            "tz": "Europe/Paris",
            "label": "Maintenance nocturne",
        }
    )

    def test_outage_inside_a_window_is_labelled_not_hidden(self) -> None:
        """An outage during an announced window is recorded, labelled with the window's label."""
        ledger = Ledger(tracker(maintenance=[self.NIGHTLY]))
        # 12:00 UTC + 11 h = 23:00 UTC = 00:00 Paris (winter): inside 22:00-06:00 Paris.
        start = 11 * 3600
        ledger.run(every(10, [FAIL, FAIL, FAIL, OK, OK], start=start))
        assert [e["maintenance"] for e in ledger.events] == ["Maintenance nocturne"] * 2
        assert ledger.events[-1]["maintenance_s"] == 30.0
        record = ledger.tracker.records()[0]
        assert record.maintenance == "Maintenance nocturne"

    def test_outage_outside_windows_is_not_labelled(self) -> None:
        """An outage in the afternoon (Paris) carries no maintenance label."""
        ledger = Ledger(tracker(maintenance=[self.NIGHTLY]))
        ledger.run(every(10, [FAIL, FAIL, FAIL, OK, OK]))  # 13:00 Paris
        assert [e["maintenance"] for e in ledger.events] == [None, None]

    def test_window_for_another_target_does_not_label(self) -> None:
        """A window restricted to other targets does not label this target's outage."""
        window = self.NIGHTLY.model_copy(update={"targets": ("other",)})
        ledger = Ledger(tracker(maintenance=[window]))
        ledger.run(every(10, [FAIL, FAIL, FAIL], start=11 * 3600))
        assert ledger.events[0]["maintenance"] is None

    def test_bad_window_is_refused(self) -> None:
        """A window without its times is refused when the tracker is built."""
        bad = MaintenanceWindow.model_validate({"every": "day", "from": "22:00"})
        with pytest.raises(ValueError, match="needs both 'from' and 'to'"):
            tracker(maintenance=[bad])


class TestRecords:
    def test_open_record_has_null_end_and_duration(self) -> None:
        """While open, ended_at and duration_s are null in the JSON form."""
        ledger = Ledger(tracker())
        ledger.run(every(10, [FAIL, FAIL, FAIL]))
        (record,) = outages_from_entries(ledger.entries)
        data = record.to_dict()
        assert data["ended_at"] is None
        assert data["duration_s"] is None
        assert data["target_id"] == "site"
        assert record.duration(T0 + dt.timedelta(seconds=100)) == 100.0
        assert record.opened_entry == 3

    def test_closed_record_from_events(self) -> None:
        """A closed record joins both events: seqs of confirmation and recovery, entry seqs."""
        ledger = Ledger(tracker())
        ledger.run(every(10, [FAIL, FAIL, FAIL, OK, OK]))
        (record,) = outages_from_entries(ledger.entries)
        assert record.seqs == (0, 1, 2, 4, 5)
        assert (record.opened_entry, record.closed_entry) == (3, 6)
        assert (record.first_seq, record.last_seq) == (0, 5)
        assert record.duration_s == 30.0
        assert record.close_reason == "recovered"

    def test_from_events_needs_an_event(self) -> None:
        """A record cannot be made out of nothing."""
        with pytest.raises(ValueError, match="at least one event"):
            OutageRecord.from_events(None, None)

    def test_cause_texts(self) -> None:
        """Causes read most frequent first, in English and in French."""
        causes = {"timeout": 3, "http_503": 12, "connect_error": 3}
        assert plain(causes_text(causes)) == "HTTP 503 x12, connect error x3, timeout x3"
        assert plain(causes_text_fr(causes)) == (
            "erreur HTTP 503 x12, connexion impossible x3, délai dépassé x3"
        )

    def test_durations(self) -> None:
        """Durations read naturally in both languages."""
        assert format_duration(45) == "45s"
        assert format_duration(3723) == "1h 02m 03s"
        assert format_duration(90061) == "1d 01h 01m"
        assert format_duration_fr(45) == "45 s"
        assert format_duration_fr(120) == "2 min"
        assert format_duration_fr(7500) == "2 h 05 min"
        assert format_duration_fr(3 * 86400 + 4 * 3600) == "3 j 4 h"


class TestEntries:
    def test_decode_entries_skips_other_types(self) -> None:
        """Raw (seq, bytes) entries decode to dicts carrying their seq; checkpoints are skipped."""
        raw = [
            (0, canonical_json({"type": "checkpoint", "seq": 0, "tree_size": 1})),
            (
                1,
                canonical_json(
                    {"type": "gap", "from": "2026-01-01T00:00:00Z", "to": "2026-01-01T01:00:00Z"}
                ),
            ),
        ]
        decoded = list(decode_entries(raw))
        assert [(e["type"], e["seq"]) for e in decoded] == [("gap", 1)]

    def test_entry_time(self) -> None:
        """An observation's time is its end; events use `at`; unknown entries have none."""
        obs = dict(make_obs(10, duration=2.5).to_dict(), type="observation")
        assert entry_time(obs) == T0 + dt.timedelta(seconds=12.5)
        assert entry_time({"type": "outage", "at": format_time(T0)}) == T0
        assert entry_time({"type": "checkpoint", "time": T0.timestamp()}) == T0
        assert entry_time({"type": "weird"}) is None


def test_observation_objects_and_dicts_agree() -> None:
    """Feeding Observation objects or their decoded dicts gives the same events."""
    a, b = tracker(), tracker()
    for i, outcome in enumerate([FAIL, FAIL, FAIL, OK, OK]):
        obs = dataclasses.replace(
            make_obs(i * 10, outcome, status=503 if outcome is FAIL else None), seq=i
        )
        assert a.observe(obs) == b.observe(obs.to_dict())


class TestOutagesCommand:
    """`vigie outages` over a real SQLite ledger written as the service writes it."""

    def _setup(self, tmp_path: Path) -> tuple[Path, Ledger]:
        from evidence.ledger.backends import open_ledger

        history = Ledger(tracker())
        history.run(every(10, [OK, FAIL, FAIL, FAIL, OK, OK]))  # closed: 12:00:10-12:00:40
        history.run(every(10, [FAIL, FAIL, FAIL, FAIL], start=86400))  # open, next day
        ledger = open_ledger(tmp_path / "ledger.db", vantage="test")
        try:
            for entry in history.entries:
                body = {k: v for k, v in entry.items() if k not in ("type", "seq")}
                assert ledger.append([(entry["type"], body)]) == [entry["seq"]]
        finally:
            ledger.close()
        config = tmp_path / "vigie.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "vantage": {"name": "test"},
                    "targets": [{"id": "site", "kind": "http", "url": "http://127.0.0.1/"}],
                    "ledger": {"url": f"sqlite:///{tmp_path / 'ledger.db'}"},
                }
            )
        )
        return config, history

    def _run(self, *argv: str) -> tuple[int, str, str]:
        from config.settings import ConfigError, load_settings
        from exporter.commands.outages import add_commands
        from exporter.logs import configure_logging

        configure_logging()  # as `vigie` does: logs to stderr, stdout stays parseable

        parser = argparse.ArgumentParser(prog="vigie")
        add_commands(parser.add_subparsers(dest="command", required=True), load_settings)
        args = parser.parse_args(argv)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = int(args.handler(args))
            except ConfigError as exc:
                print("\n".join(exc.lines), file=sys.stderr)
                code = 2
        return code, out.getvalue(), err.getvalue()

    def test_json_lists_records_with_null_end_while_open(self, tmp_path: Path) -> None:
        """JSON is an array of records; the open one has ended_at null and current counts."""
        config, _ = self._setup(tmp_path)
        code, out, _ = self._run("outages", "--config", str(config), "--format", "json")
        assert code == 0
        data = json.loads(out)
        assert [(d["target_id"], d["started_at"], d["ended_at"]) for d in data] == [
            ("site", "2026-11-23T12:00:10.000000Z", "2026-11-23T12:00:40.000000Z"),
            ("site", "2026-11-24T12:00:00.000000Z", None),
        ]
        assert data[1]["failed_checks"] == 4  # brought up to date past the opened event
        assert data[0]["duration_s"] == 30.0

    def test_table_shows_paris_times_with_offset(self, tmp_path: Path) -> None:
        """The table shows Paris times with their offset and marks the open outage ongoing."""
        config, _ = self._setup(tmp_path)
        code, out, _ = self._run("outages", "--config", str(config))
        assert code == 0
        lines = out.splitlines()
        assert lines[0].split()[:3] == ["ID", "TARGET", "KIND"]
        assert "2026-11-23T13:00:10+01:00" in lines[1]
        assert "2026-11-23T13:00:40+01:00" in lines[1]
        assert "ongoing" in lines[2]
        assert "HTTP 503" in lines[1]

    def test_csv(self, tmp_path: Path) -> None:
        """CSV has a header and one row per outage, the open one with an empty end."""
        config, _ = self._setup(tmp_path)
        code, out, _ = self._run("outages", "--config", str(config), "--format", "csv")
        assert code == 0
        rows = list(csv.DictReader(io.StringIO(out)))
        assert [r["ended_at"] for r in rows] == ["2026-11-23T12:00:40.000000Z", ""]
        assert rows[0]["started_paris"] == "2026-11-23T13:00:10+01:00"
        assert plain(rows[0]["causes"]) == "HTTP 503 x3"

    def test_period_selection(self, tmp_path: Path) -> None:
        """--from/--to select outages overlapping the Paris days given (--to day included)."""
        config, _ = self._setup(tmp_path)
        args = ("outages", "--config", str(config), "--format", "json")
        _, first_day, _ = self._run(*args, "--to", "2026-11-23")
        assert [d["ended_at"] is None for d in json.loads(first_day)] == [False]
        _, second_day, _ = self._run(*args, "--from", "2026-11-24")
        assert [d["ended_at"] is None for d in json.loads(second_day)] == [True]
        _, later, _ = self._run(*args, "--from", "2026-12-01T00:00")
        assert [d["ended_at"] is None for d in json.loads(later)] == [True]  # still open

    def test_target_filter_and_unknown_target(self, tmp_path: Path) -> None:
        """--target filters; an unknown id is a usage error naming the known ids."""
        config, _ = self._setup(tmp_path)
        code, out, _ = self._run("outages", "--config", str(config), "--target", "site")
        assert code == 0
        assert out.count("site-2026") == 2
        code, _, err = self._run("outages", "--config", str(config), "--target", "nope")
        assert code == 2
        assert "no target with id 'nope' (known: site)" in err

    def test_bad_dates_and_missing_ledger(self, tmp_path: Path) -> None:
        """A bad date is a usage error; so is a ledger.url naming no ledger (as for verify)."""
        config, _ = self._setup(tmp_path)
        code, _, err = self._run("outages", "--config", str(config), "--from", "yesterday")
        assert code == 2
        assert "'yesterday' is not a date" in err
        (tmp_path / "ledger.db").rename(tmp_path / "moved.db")
        code, _, err = self._run("outages", "--config", str(config))
        assert code == 2
        assert "ledger.url: no ledger at" in err

    def test_injected_source(self, tmp_path: Path) -> None:
        """The command reads any entry source, e.g. entries already in memory."""
        from config.settings import Settings
        from evidence.outages.history import ListSource, load_outages

        history = Ledger(tracker())
        history.run(every(10, [FAIL, FAIL, FAIL]))
        records = load_outages(ListSource(history.entries), Settings(targets=(TARGET,)))
        assert [r.is_open for r in records] == [True]


class TestRecorder:
    """The service-side glue: events appended after their observations, metrics published."""

    class Sink:
        def __init__(self, entries: list[dict[str, Any]] | None = None) -> None:
            self.entries = entries if entries is not None else []

        async def append(self, entry_type: str, body: Any) -> int:
            seq = len(self.entries)
            self.entries.append(
                json.loads(canonical_json({"type": entry_type, "seq": seq, **body}))
            )
            return seq

    def _settings(self, **kw: Any) -> Any:
        from config.settings import Settings

        return Settings(targets=(TARGET,), outages=RULES, **kw)

    def _metric(self, metrics: Any, name: str, **labels: str) -> float | None:
        value = metrics.registry.get_sample_value(name, labels)
        return None if value is None else float(value)

    def test_outage_events_and_metrics(self) -> None:
        """Three failures append an `outage` entry and set open/started/total/state series."""
        from exporter.metrics import Metrics
        from exporter.outage_recorder import OutageRecorder

        metrics = Metrics(vantage="test", version="0")
        sink = self.Sink()

        async def scenario() -> list[float | None]:
            recorder = await OutageRecorder.start(self._settings(), sink, metrics, now=T0)
            delays = []
            for i, outcome in enumerate([OK, FAIL, FAIL, FAIL]):
                obs = make_obs(i * 10, outcome, status=503 if outcome is FAIL else None)
                body = obs.to_dict()
                body.pop("seq")
                seq = await sink.append("observation", body)
                delays.append(await recorder.observed(obs.with_seq(seq)))
            return delays

        delays = asyncio.run(scenario())
        assert delays == [None, 10.0, 10.0, 10.0]
        assert [e["type"] for e in sink.entries] == ["observation"] * 4 + ["outage"]
        site = {"target": "site", "kind": "down"}
        assert self._metric(metrics, "vigie_outages_total", **site) == 1
        assert self._metric(metrics, "vigie_outage_open", **site) == 1
        started = (T0 + dt.timedelta(seconds=10)).timestamp()
        assert self._metric(metrics, "vigie_outage_started_timestamp_seconds", **site) == started
        assert self._metric(metrics, "vigie_target_state", target="site", state="down") == 1
        assert self._metric(metrics, "vigie_target_state", target="site", state="up") == 0

    def test_restart_appends_pending_event_and_gap(self) -> None:
        """Start-up appends the event a crash lost and the gap; the outage then closes normally."""
        from exporter.metrics import Metrics
        from exporter.outage_recorder import OutageRecorder

        first = Ledger(tracker())
        first.run(every(10, [FAIL, FAIL, FAIL]))
        entries = first.entries[:-1]  # crashed before the `opened` event was written
        sink = self.Sink(list(entries))
        metrics = Metrics(vantage="test", version="0")
        restart = T0 + dt.timedelta(hours=1)

        async def scenario() -> None:
            recorder = await OutageRecorder.start(
                self._settings(), sink, metrics, entries=list(entries), now=restart
            )
            for at in (3600.0, 3610.0):
                obs = make_obs(at)
                body = obs.to_dict()
                body.pop("seq")
                await recorder.observed(obs.with_seq(await sink.append("observation", body)))

        asyncio.run(scenario())
        added = [(e["type"], e.get("event")) for e in sink.entries[len(entries) :]]
        assert added == [
            ("outage", "opened"),
            ("gap", None),
            ("observation", None),
            ("observation", None),
            ("outage", "closed"),
        ]
        gap = sink.entries[len(entries) + 1]
        assert gap["from"] == format_time(T0 + dt.timedelta(seconds=20.2))
        assert gap["to"] == format_time(restart)
        site = {"target": "site", "kind": "down"}
        assert self._metric(metrics, "vigie_outage_seconds_total", **site) == 3600.0
        assert self._metric(metrics, "vigie_outage_open", **site) == 0
        records = outages_from_entries(sink.entries)
        assert [(r.started_at, r.ended_at) for r in records] == [
            (format_time(T0), format_time(T0 + dt.timedelta(hours=1)))
        ]

    def test_maintenance_gauge_and_vantage_entries(self) -> None:
        """The maintenance gauge follows the windows; vantage changes become entries."""
        from exporter.metrics import Metrics
        from exporter.outage_recorder import OutageRecorder

        window = MaintenanceWindow.model_validate({"every": "day", "from": "12:00", "to": "14:00"})
        metrics = Metrics(vantage="test", version="0")
        sink = self.Sink()

        async def scenario() -> None:
            settings = self._settings(maintenance=(window,))
            recorder = await OutageRecorder.start(settings, sink, metrics, now=T0)
            assert self._metric(metrics, "vigie_maintenance", target="site") == 1  # 13:00 Paris
            recorder.publish(now=T0 + dt.timedelta(hours=3))
            assert self._metric(metrics, "vigie_maintenance", target="site") == 0
            await recorder.vantage_checked(True, T0)
            await recorder.vantage_checked(False, T0 + dt.timedelta(seconds=5), [1, 2])
            await recorder.vantage_checked(False, T0 + dt.timedelta(seconds=9))
            await recorder.vantage_checked(True, T0 + dt.timedelta(seconds=60))

        asyncio.run(scenario())
        assert [(e["type"], e["event"]) for e in sink.entries] == [
            ("vantage", "offline"),
            ("vantage", "online"),
        ]
        assert [p.kind for p in periods_from_entries(sink.entries)] == ["vantage_offline"]


# --- the real service -------------------------------------------------------------------------


def _is(kind: str, **fields: Any) -> Any:
    return lambda e: e["type"] == kind and all(e.get(k) == v for k, v in fields.items())


def _service_config(sim: Any, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "vantage": {"name": "test-outages"},
        "user_agent": "Vigie-test/0.1 (+http://localhost; tests)",
        "defaults": {"interval": "1s", "timeout": "2s"},
        "min_interval": "0.2s",
        "targets": [
            {
                "id": "accueil",
                "kind": "http",
                "url": sim.urls["site_url"],
                "expect": {"contains": "trangers"},
            }
        ],
        "controls": [sim.urls["login_url"]],  # another host of the simulator
        "outages": {"confirm_after": 3, "recover_after": 2, "recheck": "1s"},
    }
    config.update(extra)
    return config


def _at(value: str) -> float:
    return dt.datetime.fromisoformat(value).timestamp()


def _service_wires_outages() -> bool:
    """Whether `vigie run` feeds the outage tracker (the lead wires OutageRecorder in)."""
    import inspect

    import exporter.cli
    import exporter.service

    source = inspect.getsource(exporter.cli) + inspect.getsource(exporter.service)
    return "OutageRecorder" in source or "OutageTracker" in source


@pytest.mark.slow
@pytest.mark.skipif(
    not _service_wires_outages(),
    reason="`vigie run` does not feed OutageRecorder yet (wiring pending in exporter/service.py)",
)
class TestServiceTimelines:
    """`vigie run` against the simulator with injected faults, read back from its ledger."""

    RECHECK = 1.0
    SLACK = 1.0  # probe latency and scheduling on a loaded, shared machine

    def test_outage_start_and_end_match_the_injected_fault(
        self, simulator_process: Any, tmp_path: Path
    ) -> None:
        """One outage is recorded, starting and ending within one re-check of the fault."""
        from tests.service_fixture import run_service

        reader = LedgerFollower(tmp_path / "ledger.db", "accueil")
        try:
            with run_service(_service_config(simulator_process), tmp_path):
                reader.wait(_is("observation", success=True), "first good check")
                injected = time.time()
                simulator_process.set_fault("/", "http_503_maintenance", "site")
                opened = reader.wait(_is("outage", event="opened"), "outage opened")
                simulator_process.clear_faults()
                cleared = time.time()
                closed = reader.wait(_is("outage", event="closed"), "outage closed")
                reader.wait(_is("observation", success=True), "a check after recovery")
            assert opened["outage_id"] == closed["outage_id"]
            checks = reader.of("observation")
            failed = [o for o in checks if not o["success"]]
            first_ok_after = next(
                o for o in checks if o["success"] and o["seq"] > failed[-1]["seq"]
            )
            # Start and end are exactly the first failed and the first good check...
            assert opened["started_at"] == failed[0]["started_at"]
            assert closed["ended_at"] == first_ok_after["started_at"]
            assert opened["seqs"] == [o["seq"] for o in failed[:3]]  # named by seq
            # ...and those are within one re-check of the injected times.
            start_error = _at(opened["started_at"]) - injected
            end_error = _at(closed["ended_at"]) - cleared
            assert -self.SLACK <= start_error <= self.RECHECK + self.SLACK, start_error
            assert -self.SLACK <= end_error <= self.RECHECK + self.SLACK, end_error
            assert closed["failed_checks"] == len(failed)
            assert closed["causes"] == {"http_503": len(failed)}
            assert len(reader.of("outage")) == 2
        finally:
            reader.close()

    def test_flapping_shorter_than_confirmation_never_opens(
        self, simulator_process: Any, tmp_path: Path
    ) -> None:
        """Faults cleared after one failed check, three times over, leave no outage."""
        from tests.service_fixture import run_service

        reader = LedgerFollower(tmp_path / "ledger.db", "accueil")
        try:
            with run_service(_service_config(simulator_process), tmp_path):
                reader.wait(_is("observation", success=True), "first good check")
                for _ in range(3):
                    simulator_process.set_fault("/", "http_500", "site")
                    reader.wait(_is("observation", success=False), "a failed check")
                    simulator_process.clear_faults()
                    reader.wait(_is("observation", success=True), "a good check")
                    reader.wait(_is("observation", success=True), "another good check")
            failures = [o for o in reader.of("observation") if not o["success"]]
            assert len(failures) >= 3
            assert reader.of("outage") == []
        finally:
            reader.close()

    def test_controls_failing_with_the_target_is_no_outage(
        self, simulator_process: Any, tmp_path: Path
    ) -> None:
        """When every control fails with the target, checks are vantage_offline: no outage."""
        from tests.service_fixture import run_service

        reader = LedgerFollower(tmp_path / "ledger.db", "accueil")
        try:
            with run_service(_service_config(simulator_process), tmp_path):
                reader.wait(_is("observation", success=True), "first good check")
                simulator_process.set_fault("/", "down", "site")
                simulator_process.set_fault("/", "down", "login")
                for _ in range(5):
                    reader.wait(_is("observation", outcome="vantage_offline"), "vantage_offline")
                simulator_process.clear_faults()
                # The controls' loop and the target's check race: either may be appended first.
                reader.wait(_is("vantage", event="online"), "vantage back online", timeout=20)
                reader.wait(_is("observation", success=True), "a good check")
            assert reader.of("outage") == []
            vantage = [e["event"] for e in reader.of("vantage")]
            assert "offline" in vantage
            assert vantage[-1] == "online"
        finally:
            reader.close()

    def test_restart_during_an_outage(self, simulator_process: Any, tmp_path: Path) -> None:
        """An outage open when Vigie stops stays open across the restart; the gap is recorded."""
        from config.settings import Settings
        from tests.service_fixture import run_service

        config = _service_config(simulator_process)
        reader = LedgerFollower(tmp_path / "ledger.db", "accueil")
        try:
            with run_service(config, tmp_path):
                reader.wait(_is("observation", success=True), "first good check")
                simulator_process.set_fault("/", "http_500", "site")
                opened = reader.wait(_is("outage", event="opened"), "outage opened")
            time.sleep(4.0)  # silent longer than interval + timeout (3 s): a gap
            with run_service(config, tmp_path) as svc:
                gap = reader.wait(_is("gap"), "gap entry", timeout=20)
                svc.wait_for(
                    lambda: svc.sample("vigie_outage_open", target="accueil", kind="down") == 1,
                    what="outage still open after the restart",
                )
                simulator_process.clear_faults()
                closed = reader.wait(_is("outage", event="closed"), "outage closed")
                reader.wait(_is("observation", success=True), "a check after recovery")
            assert closed["outage_id"] == opened["outage_id"]
            assert closed["started_at"] == opened["started_at"]
            assert [e["event"] for e in reader.of("outage")] == ["opened", "closed"]
            assert gap["duration_s"] >= 4.0
            settings = Settings.model_validate(config)
            tracker = OutageTracker.rebuild(
                reader.entries, settings.outages, settings.maintenance, settings.targets
            )
            end = dt.datetime.fromisoformat(closed["ended_at"])
            start = dt.datetime.fromisoformat(reader.entries[0]["started_at"])
            availability = tracker.index.availability("accueil", start, end, end)
            outage_s = _at(closed["ended_at"]) - _at(closed["started_at"])
            assert availability.unmonitored_s == pytest.approx(gap["duration_s"], abs=0.01)
            assert availability.down_s == pytest.approx(outage_s - gap["duration_s"], abs=0.01)
        finally:
            reader.close()


class TestRecorderRefresh:
    def test_run_refreshes_until_stopped(self) -> None:
        """The refresh loop publishes at once and returns when asked to stop."""
        from exporter.metrics import Metrics
        from exporter.outage_recorder import OutageRecorder

        window = MaintenanceWindow.model_validate({"every": "day", "from": "00:00", "to": "24:00"})
        metrics = Metrics(vantage="test", version="0")

        async def scenario() -> None:
            recorder = OutageRecorder(
                OutageTracker(RULES, (window,), [TARGET]), TestRecorder.Sink(), metrics
            )
            stopping = asyncio.Event()
            task = asyncio.create_task(recorder.run(stopping, every=0.01))
            await asyncio.sleep(0.05)
            stopping.set()
            await asyncio.wait_for(task, timeout=5)

        asyncio.run(scenario())
        assert metrics.registry.get_sample_value("vigie_maintenance", {"target": "site"}) == 1
        value = metrics.registry.get_sample_value(
            "vigie_target_state", {"target": "site", "state": "unknown"}
        )
        assert value == 1


class TestRebuildFromLedger:
    """Start-up replay over a real SQLite ledger, decoding only recent observations."""

    def _ledger(self, tmp_path: Path, history: Ledger) -> Any:
        from evidence.ledger.backends import open_ledger

        ledger = open_ledger(tmp_path / "ledger.db", vantage="test")
        for entry in history.entries:
            body = {k: v for k, v in entry.items() if k not in ("type", "seq")}
            ledger.append([(entry["type"], body)])
        return ledger

    def test_window_and_open_outage(self, tmp_path: Path) -> None:
        """Old closed outages come from events; an outage still open is replayed from its start."""
        from evidence.outages.tracker import rebuild_from_ledger, seq_at

        day = 86400.0
        history = Ledger(tracker())
        history.run(every(6 * 3600, [OK, FAIL, FAIL, FAIL, OK, OK]))  # closed outage, day 0-1
        history.run(every(day, [OK] * 50, start=2 * day))  # quiet days 2-51
        history.run(every(day, [FAIL] * 100, start=100 * day))  # open since day 100
        now = T0 + dt.timedelta(days=200)
        ledger = self._ledger(tmp_path, history)
        try:
            assert seq_at(ledger, T0 + dt.timedelta(days=100)) == 58  # 8 + 50 entries before
            rebuilt = rebuild_from_ledger(ledger, RULES, (), [TARGET], now=now, days=30)
        finally:
            ledger.close()
        assert rebuilt.entries_seen < len(history.entries) - 50  # quiet days never decoded
        assert rebuilt.pending_events() == []
        closed, still_open = rebuilt.records()
        assert closed.to_dict() == outages_from_entries(history.entries)[0].to_dict()
        assert still_open.is_open
        assert still_open.failed_checks == 100  # every failure since it opened
        assert rebuilt.state("site") == "down"
        assert rebuilt.last_entry_time == T0 + dt.timedelta(days=199, seconds=0.2)

    def test_recorder_starts_from_the_ledger(self, tmp_path: Path) -> None:
        """OutageRecorder.start replays a ledger in a worker thread and appends the gap."""
        from config.settings import Settings
        from exporter.metrics import Metrics
        from exporter.outage_recorder import OutageRecorder

        history = Ledger(tracker())
        history.run(every(10, [FAIL, FAIL, FAIL]))
        ledger = self._ledger(tmp_path, history)
        sink = TestRecorder.Sink()
        metrics = Metrics(vantage="test", version="0")
        settings = Settings(targets=(TARGET,), outages=RULES)
        try:
            recorder = asyncio.run(
                OutageRecorder.start(
                    settings, sink, metrics, ledger, now=T0 + dt.timedelta(hours=1)
                )
            )
        finally:
            ledger.close()
        assert [e["type"] for e in sink.entries] == ["gap"]
        assert recorder.tracker.state("site") == "down"
        value = metrics.registry.get_sample_value(
            "vigie_outage_open", {"target": "site", "kind": "down"}
        )
        assert value == 1


def test_recorder_refuses_bad_maintenance_windows() -> None:
    """A malformed maintenance window stops start-up with a configuration error naming it."""
    from config.settings import ConfigError, Settings
    from exporter.metrics import Metrics
    from exporter.outage_recorder import OutageRecorder

    bad = MaintenanceWindow.model_validate({"every": "day", "from": "22:00"})
    settings = Settings(targets=(TARGET,), outages=RULES, maintenance=(bad,))
    metrics = Metrics(vantage="test", version="0")
    with pytest.raises(ConfigError) as caught:
        asyncio.run(OutageRecorder.start(settings, TestRecorder.Sink(), metrics, now=T0))
    assert caught.value.lines == (
        "maintenance[0]: a recurring window needs both 'from' and 'to' (HH:MM)",
    )
