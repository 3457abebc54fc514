"""The service end to end: `vigie run` probing the simulator, /metrics, /healthz, signals."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from evidence.ledger.backends import open_ledger
from simulator import SimulatorProcess
from tests.service_fixture import http_get, run_service


def _config(sim: SimulatorProcess, **extra: Any) -> dict[str, Any]:
    site = sim.urls["site_url"].rstrip("/")
    admin = sim.urls["admin_url"].rstrip("/")
    config: dict[str, Any] = {
        "vantage": {"name": "test-vantage", "operator": "Tests"},
        "user_agent": "Vigie-test/0.1 (+http://localhost; tests)",
        "defaults": {"interval": "1s", "timeout": "3s"},
        "min_interval": "0.2s",
        "targets": [
            {
                "id": "accueil",
                "kind": "http",
                "url": site + "/",
                "expect": {"contains": "trangers"},
            },
            {
                "id": "api",
                "kind": "http",
                "url": sim.urls["api_url"],
                "expect": {"status": [401, 403]},
            },
            {"id": "connexion", "kind": "http", "url": sim.urls["login_url"]},
        ],
        "controls": [admin + "/faults", admin + "/requests"],
        "outages": {"confirm_after": 2, "recover_after": 2, "recheck": "0.5s"},
    }
    config.update(extra)
    return config


@pytest.mark.slow
class TestService:
    def test_metrics_and_health(self, simulator_process: SimulatorProcess, tmp_path: Path) -> None:
        """The service probes its targets and publishes blackbox-style series and its own."""
        with run_service(_config(simulator_process), tmp_path) as svc:
            svc.wait_for(
                lambda: all(
                    svc.sample("probe_success", target=t) == 1.0
                    for t in ("accueil", "api", "connexion")
                ),
                what="all targets up",
            )
            text = svc.metrics()
            assert 'probe_http_status_code{target="api"} 401.0' in text
            assert 'probe_http_duration_seconds{phase="connect",target="accueil"}' in text
            assert 'vigie_build_info{public_url="",vantage="test-vantage"' in text
            assert svc.sample("vigie_vantage_online", vantage="test-vantage") == 1.0
            ok = svc.sample("vigie_probes_total", target="accueil", outcome="ok")
            assert ok is not None
            assert ok >= 1
            status, body = http_get(svc.url + "/healthz")
            assert status == 200
            assert b'"status": "ok"' in body or b'"status":"ok"' in body
        # Every request the probes sent was a GET or HEAD (the audit fixture checks writes).
        counts = simulator_process.counts()
        assert counts.total() > 0
        assert counts.writes == 0

    @pytest.mark.prometheus
    def test_promtool_check_metrics(
        self, simulator_process: SimulatorProcess, tmp_path: Path
    ) -> None:
        """The /metrics exposition is clean under `promtool check metrics`."""
        with run_service(_config(simulator_process), tmp_path) as svc:
            svc.wait_for(lambda: svc.sample("probe_success", target="api") is not None, what="data")
            exposition = svc.metrics()
        result = subprocess.run(
            ["promtool", "check", "metrics"],
            input=exposition,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout + result.stderr == ""

    def test_fault_seen_in_metrics(
        self, simulator_process: SimulatorProcess, tmp_path: Path
    ) -> None:
        """A fault on the simulated home page shows as a failed probe with its status code."""
        with run_service(_config(simulator_process), tmp_path) as svc:
            svc.wait_for(lambda: svc.sample("probe_success", target="accueil") == 1.0, what="up")
            simulator_process.set_fault("/", "http_500", "site")
            svc.wait_for(lambda: svc.sample("probe_success", target="accueil") == 0.0, what="down")
            assert svc.sample("probe_http_status_code", target="accueil") == 500.0
            failed = svc.sample("vigie_probes_total", target="accueil", outcome="http_status")
            assert failed is not None
            assert failed >= 1

    def test_vantage_offline(self, simulator_process: SimulatorProcess, tmp_path: Path) -> None:
        """When every control fails with the target, the check is `vantage_offline`."""
        site = simulator_process.urls["site_url"].rstrip("/")
        config = _config(
            simulator_process,
            controls=[site + "/controle-1", site + "/controle-2"],
        )
        simulator_process.set_fault("/controle-1", "down", "site")
        simulator_process.set_fault("/controle-2", "http_500", "site")
        simulator_process.set_fault("/", "http_500", "site")
        with run_service(config, tmp_path) as svc:
            svc.wait_for(
                lambda: (
                    (
                        svc.sample(
                            "vigie_probes_total", target="accueil", outcome="vantage_offline"
                        )
                        or 0
                    )
                    >= 1
                ),
                what="vantage_offline observation",
            )
            assert svc.sample("vigie_vantage_online", vantage="test-vantage") == 0.0
            assert (
                svc.sample("vigie_probes_total", target="accueil", outcome="http_status") or 0
            ) == 0

    def test_only_get_and_head(self, simulator_process: SimulatorProcess, tmp_path: Path) -> None:
        """The service's own endpoints answer GET and HEAD and refuse every other method."""
        with run_service(_config(simulator_process), tmp_path) as svc:
            assert http_get(svc.url + "/metrics", method="HEAD")[0] == 200
            for method in ("POST", "PUT", "DELETE", "PATCH"):
                assert http_get(svc.url + "/metrics", method=method)[0] == 405
            status, body = http_get(svc.url + "/")
            assert status == 200
            assert b'lang="fr"' in body

    def test_sigterm_stops_quickly(
        self, simulator_process: SimulatorProcess, tmp_path: Path
    ) -> None:
        """SIGTERM stops the service with exit code 0, even with a check hanging."""
        simulator_process.set_fault("/", "hang", "site")
        config = _config(simulator_process, defaults={"interval": "1s", "timeout": "30s"})
        with run_service(config, tmp_path) as svc:
            time.sleep(2.0)  # let a check start hanging
            started = time.monotonic()
            code = svc.stop(signal.SIGTERM)
            elapsed = time.monotonic() - started
        assert code == 0, svc.log()[-2000:]
        assert elapsed < 5.0, f"stopped in {elapsed:.1f} s"
        assert '"event": "stopped"' in svc.log()


@pytest.mark.slow
class TestEvidence:
    def test_observations_recorded_and_verified(
        self, simulator_process: SimulatorProcess, tmp_path: Path
    ) -> None:
        """Every counted check is in the ledger, and the ledger verifies after a clean stop."""
        with run_service(_config(simulator_process), tmp_path) as svc:
            svc.wait_for(
                lambda: (svc.sample("vigie_probes_total", target="api", outcome="ok") or 0) >= 3,
                what="three checks of the API",
            )
            counted = sum(
                float(line.rpartition(" ")[2])
                for line in svc.metrics().splitlines()
                if line.startswith("vigie_probes_total{")
            )
            assert svc.stop() == 0
        ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}", readonly=True)
        try:
            entries = [json.loads(body) for _seq, body in ledger.iter_entries()]
        finally:
            ledger.close()
        observations = [
            e
            for e in entries
            if e["type"] == "observation" and not e["target_id"].startswith("control-")
        ]
        # Recorded before counted: the ledger holds at least every check the metrics counted.
        assert len(observations) >= counted >= 3
        assert {e["type"] for e in entries} >= {"observation", "checkpoint"}
        assert all(e["vantage"] == "test-vantage" for e in observations)
        result = subprocess.run(
            [sys.executable, "-m", "exporter.cli", "verify", "--config", str(svc.config_path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "verified" in result.stdout.lower()


@pytest.mark.slow
class TestOutageEvidence:
    def test_outage_bundle_downloaded_and_verified(
        self, simulator_process: SimulatorProcess, tmp_path: Path
    ) -> None:
        """A confirmed outage is listed on the status page and its bundle downloads and verifies."""
        config = _config(simulator_process, defaults={"interval": "0.5s", "timeout": "2s"})
        config["ledger"] = {
            "url": f"sqlite:///{tmp_path / 'ledger.db'}",
            "artifacts": str(tmp_path / "artifacts"),
            "checkpoint_interval": "1s",
        }
        with run_service(config, tmp_path) as svc:
            svc.wait_for(lambda: svc.sample("probe_success", target="accueil") == 1.0, what="up")
            simulator_process.set_fault("/", "http_503_maintenance", "site")
            svc.wait_for(
                lambda: svc.sample("vigie_outage_open", target="accueil", kind="down") == 1.0,
                what="outage opened",
            )
            status, page = http_get(svc.url + "/")
            assert status == 200
            pages = re.findall(r'href="[^"]*(/outages/[A-Za-z0-9-]+)"', page.decode())
            assert pages, page.decode()[:2000]
            status, outage_page = http_get(svc.url + pages[0])
            assert status == 200
            assert f'href="{pages[0]}/evidence.zip"' in outage_page.decode()
            time.sleep(1.5)  # let a checkpoint cover the outage's entries
            status, body = http_get(svc.url + pages[0] + "/evidence.zip", timeout=60)
            assert status == 200, body[:500]
            assert body[:2] == b"PK"
        bundle = tmp_path / "outage.zip"
        bundle.write_bytes(body)
        result = subprocess.run(
            [sys.executable, "-m", "exporter.cli", "verify", str(bundle)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
