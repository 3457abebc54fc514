"""Static checks of the docker-compose stack: compose, Prometheus, Alertmanager, Dockerfile.

Docker images cannot be pulled here, so the stack is checked with the tools that validate each
file (docker-compose config, promtool, amtool) and by reading what the files promise.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
PROMETHEUS_CONFIG = ROOT / "deploy/prometheus/prometheus.yml"
ALERTMANAGER_CONFIG = ROOT / "alerts/alertmanager.yml"
PASSWORD = "mot-de-passe-de-test"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (Debian package: see `make deps-test`)")
    return path


def _compose(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run docker-compose on the repository's file with exactly `env` as its .env file."""
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in (env or {}).items()), "utf-8")
    clean = {k: v for k, v in os.environ.items() if not re.match(r"(VIGIE|GRAFANA|POSTGRES)", k)}
    return subprocess.run(
        [_tool("docker-compose"), "--env-file", str(env_file), "-f", str(COMPOSE), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=clean,
        check=False,
        timeout=60,
    )


_RESOLVED: dict[tuple[str, ...], dict[str, Any]] = {}


def _resolved(tmp_path: Path, *profiles: str) -> dict[str, Any]:
    """`docker-compose config` output (cached: docker-compose takes seconds to start)."""
    if profiles not in _RESOLVED:
        flags = [arg for profile in profiles for arg in ("--profile", profile)]
        done = _compose(tmp_path, *flags, "config", env={"GRAFANA_ADMIN_PASSWORD": PASSWORD})
        assert done.returncode == 0, done.stderr
        _RESOLVED[profiles] = dict(yaml.safe_load(done.stdout))
    return _RESOLVED[profiles]


def _mounts(service: dict[str, Any]) -> set[tuple[str, str]]:
    """(source, target) of each volume, from compose v1 strings or compose v2 mappings."""
    mounts = set()
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume["source"], volume["target"]
        mounts.add((source, target))
    return mounts


def _host_ips(service: dict[str, Any]) -> list[str]:
    return [
        port.split(":")[0] if isinstance(port, str) else port.get("host_ip", "")
        for port in service.get("ports", [])
    ]


def _env_example_keys() -> dict[str, str]:
    keys = {}
    for line in ENV_EXAMPLE.read_text("utf-8").splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            keys[match.group(1)] = match.group(2)
    return keys


class TestComposeFile:
    def test_config_is_valid(self, tmp_path: Path) -> None:
        """`docker-compose config -q` accepts the file, with and without the postgres profile."""
        env = {"GRAFANA_ADMIN_PASSWORD": PASSWORD}
        for args in (["config", "-q"], ["--profile", "postgres", "config", "-q"]):
            done = _compose(tmp_path, *args, env=env)
            assert done.returncode == 0, done.stderr

    def test_env_example_is_a_working_env_file(self, tmp_path: Path) -> None:
        """.env.example with a Grafana password filled in is a valid .env as it stands."""
        env = _env_example_keys() | {"GRAFANA_ADMIN_PASSWORD": PASSWORD}
        done = _compose(tmp_path, "config", "-q", env=env)
        assert done.returncode == 0, done.stderr

    def test_grafana_password_is_required(self, tmp_path: Path) -> None:
        """Without GRAFANA_ADMIN_PASSWORD, compose stops and names the variable to set."""
        done = _compose(tmp_path, "config", "-q", env={})
        assert done.returncode != 0
        assert "GRAFANA_ADMIN_PASSWORD" in done.stderr

    def test_env_example_documents_every_variable(self) -> None:
        """Every ${VARIABLE} that docker-compose.yml reads is documented in .env.example."""
        text = COMPOSE.read_text("utf-8").replace("$$", "")
        used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
        documented = set(_env_example_keys())
        assert used - documented == set()
        assert documented - used == set(), "documented but unused"
        example = ENV_EXAMPLE.read_text("utf-8")
        for key in documented:  # each variable has a comment just above it or its group
            assert re.search(rf"#[^\n]*\n(?:[A-Z_]+=.*\n)*{key}=", example), key

    def test_postgres_is_an_optional_profile(self, tmp_path: Path) -> None:
        """PostgreSQL runs only with --profile postgres; the four others always run."""
        compose = yaml.safe_load(COMPOSE.read_text("utf-8"))
        profiles = {name: s.get("profiles") for name, s in compose["services"].items()}
        assert profiles == {
            "vigie": None,
            "prometheus": None,
            "alertmanager": None,
            "grafana": None,
            "postgres": ["postgres"],
        }
        services = _resolved(tmp_path, "postgres")["services"]
        assert ("postgres-data", "/var/lib/postgresql/data") in _mounts(services["postgres"])

    def test_restart_and_healthcheck_everywhere(self, tmp_path: Path) -> None:
        """Every service restarts on failure and has a health check."""
        for name, service in _resolved(tmp_path, "postgres")["services"].items():
            assert service.get("restart") == "unless-stopped", name
            assert service["healthcheck"]["test"], name

    def test_state_lives_in_named_volumes(self, tmp_path: Path) -> None:
        """The ledger, Prometheus, Alertmanager and Grafana data survive a container rebuild."""
        services = _resolved(tmp_path)["services"]
        expected = {
            "vigie": ("vigie-data", "/var/lib/vigie"),
            "prometheus": ("prometheus-data", "/prometheus"),
            "alertmanager": ("alertmanager-data", "/alertmanager"),
            "grafana": ("grafana-data", "/var/lib/grafana"),
        }
        for name, (volume, target) in expected.items():
            assert (volume, target) in _mounts(services[name]), name

    def test_ports_bound_to_loopback_by_default(self, tmp_path: Path) -> None:
        """Nothing is published beyond this machine unless .env says so."""
        for name, service in _resolved(tmp_path)["services"].items():
            for ip in _host_ips(service):
                assert ip == "127.0.0.1", name

    def test_images_are_pinned(self) -> None:
        """Third-party images carry an explicit version tag (no implicit :latest)."""
        compose = yaml.safe_load(COMPOSE.read_text("utf-8"))
        for name, service in compose["services"].items():
            image = re.sub(r"\$\{[A-Z_]+:-([^}]+)\}", r"\1", service["image"])
            assert re.search(r":[\w.-]+$", image), name
            assert not image.endswith(":latest"), name

    def test_grafana_is_provisioned_with_optional_anonymous_viewers(self, tmp_path: Path) -> None:
        """Grafana gets the datasource and dashboards provisioned; anonymous users only view."""
        grafana = _resolved(tmp_path)["services"]["grafana"]
        env = grafana["environment"]
        assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
        assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
        assert env["GF_SECURITY_ADMIN_PASSWORD"] == PASSWORD
        targets = {target for _, target in _mounts(grafana)}
        assert {
            "/etc/grafana/provisioning/datasources",
            "/etc/grafana/provisioning/dashboards",
        } <= targets

    def test_vigie_uses_the_vantage_of_env(self, tmp_path: Path) -> None:
        """The vantage name of .env reaches both Vigie and the Prometheus label."""
        done = _compose(
            tmp_path, "config", env={"GRAFANA_ADMIN_PASSWORD": PASSWORD, "VIGIE_VANTAGE": "lyon-2"}
        )
        services = yaml.safe_load(done.stdout)["services"]
        assert services["vigie"]["environment"]["VIGIE_VANTAGE__NAME"] == "lyon-2"
        assert services["prometheus"]["environment"]["VIGIE_VANTAGE"] == "lyon-2"


@pytest.mark.prometheus
class TestPrometheusConfig:
    def _render(self, tmp_path: Path, tmp_env: Path, vantage: str) -> Path:
        """Run the sed step of the compose command as the container would, on local paths."""
        services = _resolved(tmp_env)["services"]
        command = " ".join(services["prometheus"]["command"])
        sed = command.split("&&")[0].replace("$$", "$")
        out = tmp_path / "prometheus.rendered.yml"
        sed = sed.replace("/etc/prometheus/prometheus.yml", str(PROMETHEUS_CONFIG))
        sed = sed.replace("/prometheus/prometheus.rendered.yml", str(out))
        subprocess.run(
            ["sh", "-c", sed], env={"VIGIE_VANTAGE": vantage, "PATH": os.defpath}, check=True
        )
        return out

    def test_rendered_config_is_valid(self, tmp_path: Path) -> None:
        """The rendered config passes `promtool check config`, rules of alerts/ included."""
        rendered = self._render(tmp_path, tmp_path, "paris-1")
        text = rendered.read_text("utf-8").replace("/etc/prometheus/alerts/", f"{ROOT}/alerts/")
        rendered.write_text(text, "utf-8")
        done = subprocess.run(
            [_tool("promtool"), "check", "config", str(rendered)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        rule_files = sorted((ROOT / "alerts").glob("*.rules.yml"))
        assert rule_files
        for path in rule_files:
            assert str(path) in done.stdout + done.stderr

    def test_vantage_label_is_substituted(self, tmp_path: Path) -> None:
        """The `vigie` job carries the vantage label from .env (what the alerts group on)."""
        config = yaml.safe_load(self._render(tmp_path, tmp_path, "paris-1").read_text("utf-8"))
        (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "vigie"]
        assert job["static_configs"][0]["labels"] == {"vantage": "paris-1"}
        assert job["static_configs"][0]["targets"] == ["vigie:9188"]

    def test_rules_path_matches_the_mount(self) -> None:
        """The rule files glob points where compose mounts alerts/."""
        config = yaml.safe_load(PROMETHEUS_CONFIG.read_text("utf-8"))
        compose = yaml.safe_load(COMPOSE.read_text("utf-8"))
        assert "./alerts:/etc/prometheus/alerts:ro" in compose["services"]["prometheus"]["volumes"]
        assert config["rule_files"] == ["/etc/prometheus/alerts/*.rules.yml"]

    def test_grafana_interval_matches_the_scrape_interval(self) -> None:
        """Grafana's timeInterval equals Prometheus' scrape interval ($__rate_interval uses it)."""
        config = yaml.safe_load(PROMETHEUS_CONFIG.read_text("utf-8"))
        datasource = yaml.safe_load(
            (ROOT / "dashboards/provisioning/datasources/vigie.yml").read_text("utf-8")
        )["datasources"][0]
        assert datasource["jsonData"]["timeInterval"] == config["global"]["scrape_interval"]


class TestAlertmanagerConfig:
    def test_config_is_valid(self) -> None:
        """`amtool check-config` accepts the Alertmanager config of alerts/."""
        done = subprocess.run(
            [_tool("amtool"), "check-config", str(ALERTMANAGER_CONFIG)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr

    def test_compose_runs_it_from_the_mounted_folder(self) -> None:
        """Compose mounts alerts/ where --config.file and the entrypoint script are read."""
        service = yaml.safe_load(COMPOSE.read_text("utf-8"))["services"]["alertmanager"]
        assert "./alerts:/etc/alertmanager/vigie:ro" in service["volumes"]
        assert "--config.file=/etc/alertmanager/vigie/alertmanager.yml" in service["command"]
        script = service["entrypoint"][-1].replace("/etc/alertmanager/vigie/", "")
        assert (ROOT / "alerts" / script).is_file(), f"alerts/{script} is missing"

    def test_secret_files_live_in_the_tmpfs(self) -> None:
        """Password files the config reads are under the compose tmpfs (never on disk)."""
        service = yaml.safe_load(COMPOSE.read_text("utf-8"))["services"]["alertmanager"]
        tmpfs = [t.split(":")[0] for t in service["tmpfs"]]
        text = ALERTMANAGER_CONFIG.read_text("utf-8")
        files = re.findall(r"_file:\s*'?([^'\s]+)", text)
        assert files
        for path in files:
            assert any(path.startswith(f"{mount}/") for mount in tmpfs), path


class TestDockerfile:
    @pytest.fixture
    def dockerfile(self) -> str:
        return (ROOT / "Dockerfile").read_text("utf-8")

    def test_slim_python_with_debian_chromium(self, dockerfile: str) -> None:
        """The image is slim Python 3.11 with Chromium from Debian, used by the probes."""
        assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.MULTILINE)
        assert re.search(r"apt-get install[^\n]*\\\n\s+chromium-headless-shell ", dockerfile)
        assert "VIGIE_BROWSER__EXECUTABLE=/usr/bin/chromium-headless-shell\n" in dockerfile

    def test_runs_unprivileged_with_healthcheck(self, dockerfile: str) -> None:
        """The service runs as a non-root user and has a health check on /healthz."""
        users = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
        assert users
        assert users[-1] not in {"root", "0"}
        assert "HEALTHCHECK" in dockerfile
        assert "/healthz" in dockerfile

    def test_copies_every_package(self, dockerfile: str) -> None:
        """Every package pyproject.toml installs is copied into the image."""
        pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
        patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
        for pattern in patterns:
            name = pattern.rstrip("*")
            assert re.search(rf"^COPY {name} \./{name}$", dockerfile, re.MULTILINE), name

    def test_build_context_excludes_secrets_and_state(self) -> None:
        """.env, the virtualenv and local ledgers never enter the build context."""
        ignored = (ROOT / ".dockerignore").read_text("utf-8").split()
        assert {".env", ".venv", "var", ".git"} <= set(ignored)
