"""The central view with real binaries: two `vigie run`, their Prometheus, a federating centre.

Two vantages probe the local simulator; each has its own Prometheus (scrape config adding the
`vantage` label); the central Prometheus federates both with deploy/central/prometheus.yml and
evaluates alerts/central/. A fault both vantages see fires the corroborated alert; a fault only
one sees fires the local suspicion only. Also the promtool unit tests and the Alertmanager
routing example. Loopback only.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulator import SimulatorProcess
from tests.alerting_stack import AMTOOL, PROMTOOL, Prometheus, missing_binaries
from tests.service_fixture import ServiceProcess

pytestmark = [pytest.mark.prometheus]

ROOT = Path(__file__).resolve().parents[1]
CENTRAL_RULES = ROOT / "alerts/central/vantages.rules.yml"
CENTRAL_TESTS = sorted((ROOT / "alerts/central/tests").glob("*.test.yml"))
CENTRAL_AM = ROOT / "alerts/central/alertmanager.yml"
CENTRAL_PROMETHEUS = ROOT / "deploy/central/prometheus.yml"


def _need(*names: str) -> None:
    missing = missing_binaries(*names)
    if missing:
        pytest.skip(f"missing binaries: {', '.join(missing)} (Debian: prometheus, promtool)")


class TestCentralRules:
    """The committed central rules and configs, checked by the Prometheus tools."""

    def test_promtool_unit_tests(self) -> None:
        """Every case of alerts/central/tests passes (fires and does not fire as written)."""
        _need("promtool")
        done = subprocess.run(
            [PROMTOOL, "test", "rules", *map(str, CENTRAL_TESTS)],
            capture_output=True,
            text=True,
            check=False,
            cwd=CENTRAL_TESTS[0].parent,
        )
        assert done.returncode == 0, done.stdout + done.stderr

    def test_central_config_valid(self) -> None:
        """deploy/central/prometheus.yml passes promtool and federates job=vigie with labels."""
        _need("promtool")
        done = subprocess.run(
            [PROMTOOL, "check", "config", "--syntax-only", str(CENTRAL_PROMETHEUS)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        config = yaml.safe_load(CENTRAL_PROMETHEUS.read_text("utf-8"))
        (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "vigie-federate"]
        assert job["honor_labels"] is True
        assert job["params"]["match[]"] == ['{job="vigie"}']
        assert all("vantage" in group["labels"] for group in job["static_configs"])

    @pytest.mark.parametrize(
        ("labels", "receivers"),
        [
            (["corroboration=corroborated", "team=legal+tech"], "juridique,tech"),
            (["corroboration=local", "team=tech"], "tech"),
            (["corroboration=local", "team=legal+tech"], "tech"),
            (["alertname=VigieVantageUnreachable", "team=tech"], "tech"),
        ],
    )
    def test_alertmanager_routes(self, labels: list[str], receivers: str) -> None:
        """Only corroborated outages reach the legal team; local suspicions go to tech only."""
        _need("amtool")
        done = subprocess.run(
            [AMTOOL, "config", "routes", "test", f"--config.file={CENTRAL_AM}", *labels],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.stdout.strip() == receivers, done.stdout + done.stderr


# --- end to end --------------------------------------------------------------------------------

INFO_A = "/informations/naturalisation"  # the path faulted in the local case (vantage A only)
INFO_B = "/informations/aide"  # vantage B's URL for the same target id: never faulted


def _vantage_config(sim: SimulatorProcess, vantage: str, info_path: str) -> dict[str, Any]:
    site = sim.urls["site_url"].rstrip("/")
    admin = sim.urls["admin_url"].rstrip("/")
    return {
        "vantage": {"name": vantage, "operator": "Tests"},
        "user_agent": "Vigie-test/0.1 (+http://localhost; tests)",
        "defaults": {"interval": "0.5s", "timeout": "3s"},
        "min_interval": "0.2s",
        "targets": [
            {"id": "accueil", "name": "Accueil", "kind": "http", "url": site + "/"},
            {"id": "informations", "name": "Informations", "kind": "http", "url": site + info_path},
        ],
        "controls": [admin + "/faults", admin + "/requests"],
        "outages": {"confirm_after": 2, "recover_after": 2, "recheck": "0.3s"},
    }


def _central_rules(directory: Path) -> Path:
    """The committed central rules with `for` shortened to 2 s (tests run in seconds)."""
    text = re.sub(r"(?m)^(\s+for:) \S+$", r"\1 2s", CENTRAL_RULES.read_text("utf-8"))
    path = directory / CENTRAL_RULES.name
    path.write_text(text, "utf-8")
    return path


def _central_config(rules: Path, vantages: dict[str, str]) -> dict[str, Any]:
    """deploy/central/prometheus.yml with these vantages' Prometheus, 1 s intervals, no AM."""
    config: dict[str, Any] = yaml.safe_load(CENTRAL_PROMETHEUS.read_text("utf-8"))
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str(rules)]
    config.pop("alerting")
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "vigie-federate"]
    job["static_configs"] = [
        {"targets": [address], "labels": {"vantage": vantage}}
        for vantage, address in vantages.items()
    ]
    return config


def _vantage_prometheus(address: str, vantage: str) -> dict[str, Any]:
    """A vantage's Prometheus as deploy/prometheus/prometheus.yml scrapes Vigie (job vigie)."""
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "vigie",
                "static_configs": [{"targets": [address], "labels": {"vantage": vantage}}],
            }
        ],
    }


def _alerts(prometheus: Prometheus) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{prometheus.url}/api/v1/alerts", timeout=5) as answer:
        alerts: list[dict[str, Any]] = json.loads(answer.read())["data"]["alerts"]
    return alerts


def _firing(prometheus: Prometheus, name: str) -> list[dict[str, str]]:
    return [
        a["labels"]
        for a in _alerts(prometheus)
        if a["labels"]["alertname"] == name and a["state"] == "firing"
    ]


class _Stack:
    def __init__(self, services: list[ServiceProcess], central: Prometheus) -> None:
        self.services = services
        self.central = central

    def wait(self, predicate: Any, what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.25)
        raise AssertionError(
            f"timed out waiting for {what}; alerts: {json.dumps(_alerts(self.central))}\n"
            + "\n".join(s.log()[-1500:] for s in self.services)
        )


@pytest.fixture
def stack(simulator_process: SimulatorProcess, tmp_path: Path) -> Iterator[_Stack]:
    """Simulator → two `vigie run` → their Prometheus → central Prometheus with the rules."""
    _need("prometheus", "promtool")
    with contextlib.ExitStack() as stack:
        services: list[ServiceProcess] = []
        addresses: dict[str, str] = {}
        for vantage, info in (("vantage-a", INFO_A), ("vantage-b", INFO_B)):
            state = tmp_path / vantage
            state.mkdir()
            service = ServiceProcess(_vantage_config(simulator_process, vantage, info), state)
            service.start()
            stack.callback(service.stop)
            services.append(service)
            workdir = tmp_path / f"prom-{vantage}"
            workdir.mkdir()
            local = Prometheus(workdir, _vantage_prometheus(f"127.0.0.1:{service.port}", vantage))
            stack.enter_context(local)
            addresses[vantage] = f"127.0.0.1:{local.port}"
        workdir = tmp_path / "prom-central"
        workdir.mkdir()
        central = Prometheus(workdir, _central_config(_central_rules(workdir), addresses))
        stack.enter_context(central)
        yield _Stack(services, central)


@pytest.mark.slow
class TestCentralEndToEnd:
    """Real services, real Prometheus federation, real rule evaluation."""

    def test_corroborated_versus_local(
        self, stack: _Stack, simulator_process: SimulatorProcess
    ) -> None:
        """A fault only A sees gives a local suspicion; one both see gives a corroborated alert."""
        central = stack.central
        stack.wait(
            lambda: len(central.query("vigie:vantage_online")) == 2, "both vantages federated"
        )
        assert _firing(central, "VigieTargetDownCorroborated") == []

        # Seen from A only: A's "informations" URL is faulted, B's is another page.
        simulator_process.set_fault(INFO_A, "http_500", "site")
        stack.wait(lambda: _firing(central, "VigieTargetDownLocal"), "the local suspicion")
        (local,) = _firing(central, "VigieTargetDownLocal")
        assert (local["vantage"], local["target"], local["team"]) == (
            "vantage-a",
            "informations",
            "tech",
        )
        assert _firing(central, "VigieTargetDownCorroborated") == []

        # Seen from both: the home page both vantages probe.
        simulator_process.set_fault("/", "http_500", "site")
        stack.wait(
            lambda: _firing(central, "VigieTargetDownCorroborated"), "the corroborated alert"
        )
        (corroborated,) = _firing(central, "VigieTargetDownCorroborated")
        assert corroborated["target"] == "accueil"
        assert corroborated["team"] == "legal+tech"
        assert corroborated["name"] == "Accueil"
        assert [a["target"] for a in _firing(central, "VigieTargetDownLocal")] == ["informations"]
        counts = {
            r["metric"]["target"]: r["value"][1]
            for r in central.query("vigie:target_down_vantages:count")
        }
        assert counts == {"accueil": "2", "informations": "1"}
