"""The `vantages` compose profile: two vantages, a central Prometheus, one Grafana (static checks).

Images cannot be pulled here: the files are checked with docker-compose and promtool.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
OVERRIDE = ROOT / "deploy/central/docker-compose.vantages.yml"


def _config(tmp_path: Path) -> dict[str, Any]:
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose is not installed")
    env_file = tmp_path / "compose.env"
    env_file.write_text("GRAFANA_ADMIN_PASSWORD=mot-de-passe\nVIGIE_VANTAGE=paris-1\n")
    clean = {k: v for k, v in os.environ.items() if not re.match(r"(VIGIE|GRAFANA|POSTGRES)", k)}
    done = subprocess.run(
        [
            tool,
            "--env-file",
            str(env_file),
            "-f",
            "docker-compose.yml",
            "-f",
            str(OVERRIDE),
            "--profile",
            "vantages",
            "config",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=clean,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    resolved: dict[str, Any] = yaml.safe_load(done.stdout)
    return resolved


class TestVantagesProfile:
    """The override file adds the second vantage and the centre, and repoints Grafana."""

    def test_services_and_one_grafana(self, tmp_path: Path) -> None:
        """Two Vigie, three Prometheus, one Grafana whose datasources come from deploy/central."""
        services = _config(tmp_path)["services"]
        assert {"vigie", "vigie-2", "prometheus", "prometheus-2", "prometheus-central"} <= set(
            services
        )
        assert [name for name in services if "grafana" in name] == ["grafana"]
        mounts = [
            str(v) if isinstance(v, str) else f"{v['source']}:{v['target']}"
            for v in services["grafana"]["volumes"]
        ]
        datasources = [m for m in mounts if "/etc/grafana/provisioning/datasources" in m]
        assert len(datasources) == 1
        assert "deploy/central/grafana" in datasources[0]
        assert services["vigie-2"]["environment"]["VIGIE_VANTAGE__NAME"] == "second"
        central_env = services["prometheus-central"]["environment"]
        assert (central_env["VIGIE_VANTAGE"], central_env["VIGIE_VANTAGE_2"]) == (
            "paris-1",
            "second",
        )

    def test_base_stack_unchanged_without_the_override(self) -> None:
        """docker-compose.yml itself gains no service: the profile lives in the override."""
        base = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))
        assert "prometheus-central" not in base["services"]

    def test_grafana_datasource_points_at_the_centre(self) -> None:
        """The provisioned datasource keeps the dashboards' uid and reads the centre."""
        (source,) = yaml.safe_load(
            (ROOT / "deploy/central/grafana/vigie-central.yml").read_text("utf-8")
        )["datasources"]
        assert source["uid"] == "vigie-prometheus"
        assert source["url"] == "http://prometheus-central:9090"

    def test_central_rules_mounted_where_the_config_reads_them(self) -> None:
        """The central config's rule_files glob matches the alerts/ mount of the override."""
        config = yaml.safe_load((ROOT / "deploy/central/prometheus.yml").read_text("utf-8"))
        assert config["rule_files"] == ["/etc/prometheus/alerts/central/*.rules.yml"]
        override = OVERRIDE.read_text("utf-8")
        assert "./alerts:/etc/prometheus/alerts:ro" in override
        assert list((ROOT / "alerts/central").glob("*.rules.yml"))
