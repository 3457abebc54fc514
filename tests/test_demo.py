"""`vigie demo`: the simulator and the service start together and show live metrics."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.service_fixture import free_port, http_get


@pytest.mark.slow
class TestDemo:
    def test_demo_shows_live_metrics_and_stops(self) -> None:
        """The demo prints its URLs, serves metrics from the simulator, and stops cleanly."""
        port = free_port()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "exporter.cli",
                "demo",
                "--listen",
                f"127.0.0.1:{port}",
                "--duration",
                "12",
                "--fault-every",
                "4",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        seen = ""
        try:
            deadline = time.monotonic() + 30
            while (
                time.monotonic() < deadline and 'probe_success{target="demo-api"} 1.0' not in seen
            ):
                with contextlib.suppress(OSError):
                    seen = http_get(f"http://127.0.0.1:{port}/metrics", timeout=2)[1].decode()
                time.sleep(0.3)
            _, stderr = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert 'probe_success{target="demo-api"} 1.0' in seen
        assert 'vigie_target_info{core="false",kind="http"' in seen
        assert process.returncode == 0, stderr[-3000:]
        assert "Vigie demo is running." in stderr
        assert f"http://127.0.0.1:{port}/metrics" in stderr
        assert '"event": "demo_fault"' in stderr


class TestDemoConfig:
    def test_config_file_settings_kept_simulator_targets_used(self, tmp_path: Path) -> None:
        """`vigie demo --config FILE`: FILE's vantage and rules, the simulator's targets."""
        from config.settings import load_settings
        from exporter.demo import demo_config, merged_config

        base = tmp_path / "asso.yaml"
        base.write_text(
            "vantage: {name: lyon-asso, operator: Asso Lyon}\n"
            "targets:\n  - {id: x, kind: http, url: 'https://example.org/'}\n"
            "outages: {confirm_after: 2, recover_after: 1, recheck: 3s}\n"
            "listen: 127.0.0.1:9999\n",
            encoding="utf-8",
        )
        urls = {
            "site_url": "http://127.0.0.1:1/",
            "login_url": "http://127.0.0.1:1/login",
            "api_url": "http://127.0.0.1:1/api",
            "admin_url": "http://127.0.0.1:2/",
        }
        merged = merged_config(demo_config(urls, tmp_path, "127.0.0.1:19999"), base)
        (tmp_path / "merged.yaml").write_text(yaml.safe_dump(merged), encoding="utf-8")
        settings = load_settings(tmp_path / "merged.yaml")
        assert settings.vantage.name == "lyon-asso"
        assert settings.outages.confirm_after == 2
        assert settings.listen == "127.0.0.1:19999"
        assert {t.id for t in settings.targets} >= {"demo-accueil", "demo-api"}
        assert "x" not in {t.id for t in settings.targets}
        assert str(settings.ledger.url).endswith(f"{tmp_path / 'ledger.db'}")
