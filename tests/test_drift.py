"""Page drift: a redesigned page that serves normally is `journey_drift`; a real fault is not.

Real Chromium against the in-process simulator, switched between its portal versions at run time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config.settings import load_settings
from config.vocabulary import Outcome
from evidence.ledger.artifacts import FileArtifactStore
from probes.base import ProbeContext, ProbeSettings
from probes.browser import LOAD_STEP, BrowserProbe
from probes.drift import FINGERPRINT_KIND, FingerprintBook, JourneyBaseline, structure_changes
from probes.observation import Observation
from simulator.pages import LOGIN_SCRIPT_PATH
from tests.test_browser_probe import REPO, LoopThread, needs_chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow, needs_chromium]

LOGIN = "/auth/realms/anef-usagers/protocol/openid-connect/auth"


class Journeys:
    """The shipped account-creation journey against an in-process simulator, with a baseline."""

    def __init__(self, loop: LoopThread, sim: Any, store: FileArtifactStore) -> None:
        self.loop = loop
        self.sim = sim
        self.store = store
        self.book = FingerprintBook(load=store.get)
        self.seq = 0
        settings = ProbeSettings(
            vantage="test",
            user_agent="Vigie-test/1.0 (+tests; lecture seule)",
            environment={"vantage": "test"},
            artifacts=store,
        )
        self.probe = BrowserProbe(settings, health_timeout=2.0, close_timeout=3.0)
        shipped = {t.id: t for t in load_settings(REPO / "vigie.yaml").targets}
        self.target = shipped["anef-creation-compte"].model_copy(update={"url": sim.login_url})

    def check(self, timeout: float = 10.0, *, baseline: bool = True) -> Observation:
        ctx = ProbeContext(
            target=self.target,
            timeout=timeout,
            baseline=self.book.baseline(self.target.id) if baseline else None,
        )
        obs = self.loop.run(self.probe.check(ctx), timeout=timeout + 30)
        self.seq += 1
        obs = obs.with_seq(self.seq)
        self.book.note(obs)  # as the service does once the observation is recorded
        return obs


@pytest.fixture(scope="module")
def journeys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Journeys]:
    from simulator.server import Simulator

    loop = LoopThread()
    sim = Simulator(host="127.0.0.1")
    loop.run(sim.start())
    env = Journeys(loop, sim, FileArtifactStore(tmp_path_factory.mktemp("artifacts")))
    try:
        yield env
    finally:
        loop.run(env.probe.aclose())
        loop.run(sim.stop())
        loop.close()


@pytest.fixture
def fresh(journeys: Journeys) -> Iterator[Journeys]:
    """Version 1, no fault, and a baseline from a successful run."""
    journeys.sim.clear_faults()
    journeys.sim.set_portal_version(1)
    ok = journeys.check()
    assert ok.outcome is Outcome.OK, ok.error
    try:
        yield journeys
    finally:
        journeys.sim.clear_faults()
        journeys.sim.set_portal_version(1)


class TestBaseline:
    def test_success_keeps_a_fingerprint_per_step(self, fresh: Journeys) -> None:
        """A success records, per step, the digest of a stored fingerprint of its page."""
        obs = fresh.check()
        fingerprints = obs.drift["fingerprints"]
        assert set(fingerprints) == {"page-de-connexion", "lien-creation", "formulaire"}
        login = json.loads(fresh.store.get(fingerprints["lien-creation"]))
        assert "Première visite ? Créer votre compte" in login["links"]
        assert "input[type=password][name=password]" in login["inputs"]
        assert login["errors"] == {}
        # The same page twice gives the same fingerprint: one file, not one per check.
        assert fresh.check().drift["fingerprints"] == fingerprints
        assert json.loads(obs.to_json())["drift"] == {"fingerprints": fingerprints}


class TestDrift:
    def test_redesign_is_journey_drift(self, fresh: Journeys) -> None:
        """Version 2 (renamed link, moved form, new layout) gives journey_drift with evidence."""
        fresh.sim.set_portal_version(2)
        obs = fresh.check(timeout=3.0)
        assert obs.outcome is Outcome.JOURNEY_DRIFT, obs.error
        assert not obs.success
        assert obs.error is not None
        assert obs.error.startswith("journey drift (the page changed)")
        assert "'lien-creation'" in obs.error
        assessment = obs.drift["assessment"]
        assert assessment["verdict"] == "journey_drift"
        assert assessment["step"] == "lien-creation"
        assert assessment["reasons"] == []
        assert assessment["http_status"] == 200
        assert assessment["baseline"]["observation"] == fresh.seq - 1
        links = assessment["changes"]["links"]
        assert "Première visite ? Créer votre compte" in links["removed"]
        assert "Ouvrir mon espace ANEF" in links["added"]
        assert "aside" in assessment["changes"]["landmarks"]["added"]
        # Captures as usual, plus both fingerprints (so a bundle carries the comparison).
        kinds = sorted(obs.artifacts.values())
        assert kinds.count("screenshot") == 1
        assert "html" in kinds
        assert kinds.count(FINGERPRINT_KIND) == 2
        assert assessment["fingerprint"] in obs.artifacts
        # Every step before the failing one passed: the site itself works.
        assert [s.ok for s in obs.steps] == [True, True, False, False][: len(obs.steps)]
        assert obs.steps[0].name == LOAD_STEP
        # The baseline is carried in the failure, so a restart finds it in the ledger.
        assert obs.drift["baseline"]["lien-creation"]["observation"] == fresh.seq - 1
        assert b'"seq":' not in json.dumps(obs.drift).replace(" ", "").encode()
        assert fresh.sim.counts.writes == 0

    def test_without_a_baseline_it_stays_step_failed(self, fresh: Journeys) -> None:
        """With no successful run to compare with, nothing proves drift: step_failed."""
        fresh.sim.set_portal_version(2)
        obs = fresh.check(timeout=3.0, baseline=False)
        assert obs.outcome is Outcome.STEP_FAILED
        reasons = obs.drift["assessment"]["reasons"]
        assert any("no fingerprint" in r for r in reasons)


# A real fault on the same page, on top of the redesign: never drift.
REAL_FAULTS = [
    ("http_500", LOGIN, Outcome.HTTP_STATUS, None),
    ("maintenance", LOGIN, Outcome.STEP_FAILED, "error text"),
    ("endless_spinner", LOGIN, Outcome.STEP_FAILED, "much smaller"),
    ("js_error", LOGIN, Outcome.STEP_FAILED, None),
    ("hang", LOGIN_SCRIPT_PATH, Outcome.TIMEOUT, None),
]


class TestRealFaults:
    @pytest.mark.parametrize(
        ("fault", "path", "outcome", "reason"), REAL_FAULTS, ids=[f[0] for f in REAL_FAULTS]
    )
    def test_real_fault_with_redesign_is_not_drift(
        self, fresh: Journeys, fault: str, path: str, outcome: Outcome, reason: str | None
    ) -> None:
        """On the redesign, 500, maintenance text, blank page, script error, hung script fail."""
        fresh.sim.set_portal_version(2)
        fresh.sim.set_fault(path, fault, host="login")
        obs = fresh.check(timeout=3.0)
        assert obs.outcome is outcome, obs.error
        assert "screenshot" in obs.artifacts.values()
        if reason is not None:
            reasons = " ".join(obs.drift["assessment"]["reasons"])
            assert reason in reasons

    def test_missing_form_field_is_not_drift(self, fresh: Journeys) -> None:
        """A form that lost its e-mail field, nothing new in its place: broken, not redesigned."""
        fresh.sim.set_fault(
            "/auth/realms/anef-usagers/login-actions/registration", "form_missing", host="login"
        )
        obs = fresh.check(timeout=3.0)
        assert obs.outcome is Outcome.STEP_FAILED
        assessment = obs.drift["assessment"]
        assert assessment["changes"]["inputs"]["removed"] == ["input[type=email][name=email]"]
        assert "only lost elements" in " ".join(assessment["reasons"])

    def test_blank_page_of_the_same_version_is_not_drift(self, fresh: Journeys) -> None:
        """A page that never renders (spinner) is a failure even with a baseline to compare."""
        fresh.sim.set_fault(LOGIN, "endless_spinner", host="login")
        obs = fresh.check(timeout=3.0)
        assert obs.outcome is Outcome.STEP_FAILED
        assert obs.drift["assessment"]["verdict"] == "failure"


class TestStructure:
    def test_changes_list_removed_and_added(self) -> None:
        """Changes name what left and what came, per category; equal shapes give none."""
        old = {"links": ["A", "B"], "forms": ["form#x /p"], "inputs": [], "landmarks": ["main"]}
        new = {"links": ["A", "C"], "forms": ["form#x /p"], "inputs": [], "landmarks": ["main"]}
        assert structure_changes(old, new) == {"links": {"removed": ["B"], "added": ["C"]}}
        assert structure_changes(old, old) == {}

    def test_error_text_counts_against_the_baseline(self) -> None:
        """A footer's "maintenance" on every page is not new; a second mention, or a new one, is."""
        from probes.drift import _new_error_texts

        assert _new_error_texts({"maintenance": 1}, {"maintenance": 1}) == []
        assert _new_error_texts({"maintenance": 2, "indisponible": 1}, {"maintenance": 1}) == [
            "indisponible",
            "maintenance",
        ]
        assert _new_error_texts({"erreur 503": 1}, None) == ["erreur 503"]

    def test_unreadable_baseline_is_no_baseline(self, tmp_path: Path) -> None:
        """A baseline whose fingerprint file is gone cannot prove drift (None, no error)."""
        store = FileArtifactStore(tmp_path)
        book = FingerprintBook(load=store.get)
        book.note(
            {
                "target_id": "t",
                "seq": 4,
                "success": True,
                "drift": {"fingerprints": {"s": "ab" * 32}},
            }
        )
        baseline = book.baseline("t")
        assert isinstance(baseline, JourneyBaseline)
        assert baseline.fingerprint("s") is None
