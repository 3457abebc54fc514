"""`vigie run` against the simulator switched to its redesigned portal: drift, then a real fault.

The redesign gives journey_drift, no outage, the tech gauge and a monitoring gap on the status
page (also after a restart: the baseline is found in the ledger); a real fault on top of it still
opens a `down` outage, on the journey and on the HTTP check.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simulator import SimulatorProcess
from tests.service_fixture import LedgerFollower, ServiceProcess, http_get
from tests.test_browser_probe import REPO, needs_chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow, needs_chromium]

LOGIN = "/auth/realms/anef-usagers/protocol/openid-connect/auth"


def _config(sim: SimulatorProcess) -> dict[str, Any]:
    import yaml

    shipped = yaml.safe_load((REPO / "vigie.yaml").read_text("utf-8"))
    [journey] = [t for t in shipped["targets"] if t["id"] == "anef-creation-compte"]
    admin = sim.urls["admin_url"].rstrip("/")
    return {
        "vantage": {"name": "test-vantage", "operator": "Tests"},
        "user_agent": "Vigie-test/0.1 (+http://localhost; tests)",
        "defaults": {"interval": "1s", "timeout": "3s"},
        "min_interval": "0.2s",
        "targets": [
            {
                "id": "creation",
                "name": "Création de compte",
                "kind": "browser",
                "url": sim.urls["login_url"],
                "steps": journey["steps"],
            },
            {"id": "connexion", "kind": "http", "url": sim.urls["login_url"]},
        ],
        "controls": [admin + "/faults"],
        "outages": {"confirm_after": 2, "recover_after": 2, "recheck": "0.5s"},
    }


@pytest.fixture
def sim(simulator_audit: Path) -> Iterator[SimulatorProcess]:
    with SimulatorProcess(host="127.0.0.1") as process:
        yield process


def _observation(outcome: str) -> Any:
    def match(entry: dict[str, Any]) -> bool:
        return (
            entry["type"] == "observation"
            and entry["target_id"] == "creation"
            and entry["outcome"] == outcome
        )

    return match


def test_redesign_is_a_gap_and_a_real_fault_an_outage(
    sim: SimulatorProcess, tmp_path: Path
) -> None:
    """Redesign: drift, no outage, gauge, gap on the page (after a restart too); then 500: down."""
    follower = LedgerFollower(tmp_path / "ledger.db")
    service = ServiceProcess(_config(sim), tmp_path)
    service.start()
    try:
        ok = follower.wait(_observation("ok"), "a successful journey")
        assert set(ok["drift"]["fingerprints"]) == {
            "page-de-connexion",
            "lien-creation",
            "formulaire",
        }
        sim.set_portal_version(2)
        drift = follower.wait(_observation("journey_drift"), "a journey_drift observation")
        assert drift["drift"]["assessment"]["baseline"]["observation"] >= ok["seq"]
        for _ in range(3):  # more than confirm_after
            follower.wait(_observation("journey_drift"), "another journey_drift observation")
        service.wait_for(
            lambda: service.sample("vigie_journey_drift", target="creation") == 1.0,
            what="the drift gauge",
        )
        assert service.sample("vigie_outage_open", target="creation", kind="down") == 0.0
        _, page = http_get(service.url + "/")
        text = page.decode()
        assert "Surveillance du parcours à revoir" in text
        assert "Surveillance du parcours « Création de compte » à revoir" in text
        assert "Aucune panne ni lenteur confirmée" in text
    finally:
        service.stop()
    assert follower.of("outage") == []

    # The self-check says what to fix: drift, the step and selector, the screenshot.
    check = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter.cli",
            "check",
            "--journeys",
            "--config",
            str(service.config_path),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert check.returncode == 1, check.stdout + check.stderr
    out = check.stdout
    assert "références (dernière réussite au registre) : 1/1" in out
    assert "ÉCHEC  Création de compte (creation) : journey_drift" in out
    assert "ressemble à un changement de la page (parcours à revoir)" in out
    assert "étape à regarder : lien-creation — click : a:has-text('Créer votre compte')" in out
    assert "liens et boutons disparus : " in out
    assert "Première visite ? Créer votre compte" in out
    shot = out.split("capture d'écran : ", 1)[1].split()[0]
    assert Path(shot).read_bytes().startswith(b"\x89PNG")

    # After a restart, the baseline is found in the ledger: still drift, still no outage.
    service = ServiceProcess(_config(sim), tmp_path)
    service.start()
    try:
        follower.wait(_observation("journey_drift"), "journey_drift after a restart")
        assert follower.of("outage") == []
        # A real fault of the same page on top of the redesign: the outage stands on it.
        sim.set_fault(LOGIN, "http_500", host="login")
        opened = {
            follower.wait(
                lambda e: e["type"] == "outage" and e["event"] == "opened",
                "an outage opened",
            )["target_id"],
            follower.wait(
                lambda e: e["type"] == "outage" and e["event"] == "opened",
                "a second outage opened",
            )["target_id"],
        }
        assert opened == {"creation", "connexion"}
        [journey_outage] = [o for o in follower.of("outage") if o["target_id"] == "creation"]
        assert journey_outage["kind"] == "down"
        assert journey_outage["causes"] == {"http_500": 2}
        service.wait_for(
            lambda: service.sample("vigie_journey_drift", target="creation") == 0.0,
            what="the drift gauge back to 0",
        )
        service.wait_for(
            lambda: len(follower.of("drift")) == 2, what="the drift entries (started, ended)"
        )
        drift_entries = [(e["event"], e["target_id"]) for e in follower.of("drift")]
        assert drift_entries == [("started", "creation"), ("ended", "creation")]
    finally:
        service.stop()
        follower.close()
