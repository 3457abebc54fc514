"""Journey drift in the outage history: a monitoring gap, never an outage; real faults still are."""

from __future__ import annotations

import datetime as dt

from config.vocabulary import Outcome
from evidence.outages.tracker import JOURNEY_DRIFT, OutageTracker, causes_text_fr
from probes.observation import format_time
from tests.test_outages import FAIL, OK, RULES, T0, TARGET, Ledger, every, make_obs, tracker

DRIFT = Outcome.JOURNEY_DRIFT


class TestDriftOpensNoOutage:
    def test_drift_never_opens_an_outage(self) -> None:
        """Any number of journey_drift observations opens no outage and asks no fast re-check."""
        ledger = Ledger(tracker())
        assert ledger.run(every(60, [OK] + [DRIFT] * 30)) == []
        assert ledger.tracker.state("site") == "up"
        assert ledger.tracker.recheck_delay("site") is None
        assert ledger.tracker.drift_since("site") == format_time(T0 + dt.timedelta(seconds=60))

    def test_drift_does_not_count_toward_confirmation(self) -> None:
        """Two failures around drift observations stay below confirm_after=3."""
        ledger = Ledger(tracker())
        assert ledger.run(every(10, [FAIL, DRIFT, DRIFT, FAIL, DRIFT, OK])) == []

    def test_real_failures_during_drift_still_open_an_outage(self) -> None:
        """Drift, then three real failures (the page now fails for real): a down outage."""
        ledger = Ledger(tracker())
        events = ledger.run(every(10, [OK, DRIFT, DRIFT, FAIL, FAIL, FAIL]))
        assert [e["event"] for e in events] == ["opened"]
        assert events[0]["causes"] == {"http_503": 3}
        assert ledger.tracker.drift_since("site") is None

    def test_outage_of_another_target_stands(self) -> None:
        """A journey in drift while the HTTP check fails: the outage stands on the HTTP check."""
        ledger = Ledger(tracker())
        ledger.run(every(10, [DRIFT] * 4))
        events = ledger.run(every(10, [FAIL] * 3), target="other")
        assert [(e["event"], e["target_id"]) for e in events] == [("opened", "other")]
        assert [r.target_id for r in ledger.tracker.open_outages()] == ["other"]

    def test_drift_time_is_unmonitored_and_listed(self) -> None:
        """Drift time counts as neither up nor down, and is listed as a period of its own."""
        t = tracker()
        Ledger(t).run(every(600, [OK, DRIFT, DRIFT, OK]))  # drift from 600 s to 1800 s
        end = T0 + dt.timedelta(seconds=2400)
        avail = t.index.availability("site", T0, end, end)
        assert avail.monitored_s == 1200.0
        assert avail.unmonitored_s == 1200.0
        assert avail.down_s == 0.0
        [period] = t.drift_periods()
        assert (period.kind, period.target_id) == (JOURNEY_DRIFT, "site")
        assert period.start == format_time(T0 + dt.timedelta(seconds=600))
        assert period.end == format_time(T0 + dt.timedelta(seconds=1800))
        day = t.day_counts("site", T0.date())
        assert (day.journey_drift, day.failures) == (2, 0)

    def test_rebuild_gives_the_same_state(self) -> None:
        """Replaying the ledger after a restart finds the drift going on, and no outage."""
        ledger = Ledger(tracker())
        ledger.run(every(60, [OK, DRIFT, DRIFT, DRIFT]))
        rebuilt = OutageTracker.rebuild(ledger.entries, RULES, (), [TARGET])
        assert rebuilt.records() == []
        assert rebuilt.pending_events() == []
        assert rebuilt.drift_since("site") == ledger.tracker.drift_since("site")

    def test_cause_has_a_french_label(self) -> None:
        """The French label says what to do: the journey needs a look, the page changed."""
        assert causes_text_fr({"journey_drift": 2}) == (
            "parcours à revoir : la page a changé \N{MULTIPLICATION SIGN}2"
        )


class TestDriftInReports:
    def test_live_drift_gives_started_and_ended_entries(self) -> None:
        """The tracker hands the recorder a drift entry when drift starts and when it ends."""
        t = tracker()
        ledger = Ledger(t)
        bodies = []
        for at, outcome in every(60, [OK, DRIFT, DRIFT, OK]):
            ledger.check(make_obs(at, outcome))
            bodies += t.drift_events()
        assert [(b["event"], b["at"]) for b in bodies] == [
            ("started", format_time(T0 + dt.timedelta(seconds=60))),
            ("ended", format_time(T0 + dt.timedelta(seconds=180))),
        ]
        assert [b["observation"] for b in bodies] == [1, 3]

    def test_bundle_report_counts_drift_as_unmonitored(self) -> None:
        """The bundle report's availability leaves a journey's drift period out of it."""
        from evidence.bundle.model import BundleSummary, TargetStats
        from evidence.bundle.report_inputs import _index

        at = [format_time(T0 + dt.timedelta(seconds=s)) for s in (600, 1800)]
        summary = BundleSummary(
            vantage="v",
            operator="o",
            period_start=T0,
            period_end=T0 + dt.timedelta(hours=1),
            created_at=T0 + dt.timedelta(hours=1),
            targets={"site": TargetStats("site", first_at=format_time(T0))},
            outages=[],
            range_start=0,
            range_stop=10,
            drift_events=[(at[0], "started", "site"), (at[1], "ended", "site")],
        )
        end = T0 + dt.timedelta(seconds=2400)
        avail = _index(summary, ()).availability("site", T0, end, end)
        assert (avail.monitored_s, avail.unmonitored_s) == (1200.0, 1200.0)
