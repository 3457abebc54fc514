"""Secrets never leak: database passwords (in `ledger.url` and `ledger.password`), the Grafana
token and the SMTP password are set for real, and every byte the service and the commands
print (logs, errors, /metrics, status page, `vigie config check`, `verify`, `check`) is
searched for them. The signing key is created 0600 and a wider key is refused by `vigie run`.

PostgreSQL is a throwaway loopback server (tests/postgres_fixture.py).
"""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.hostile import Client, HostileServer, respond
from tests.postgres_fixture import PostgresServer
from tests.reliability.harness import REPO, Service, vigie
from tests.service_fixture import free_port, http_get

pytest_plugins = ["tests.postgres_fixture"]

GRAFANA_TOKEN = "glsa_" + secrets.token_hex(16)
SMTP_PASSWORD = "smtp-" + secrets.token_hex(12)
LEDGER_PASSWORD = "ledger-" + secrets.token_hex(12)


def _ok(client: Client) -> None:
    client.read_request()
    client.send(respond(body=b"<html>Bienvenue</html>"))


def _grafana_refuses(client: Client) -> None:
    client.read_request()
    client.send(respond("401 Unauthorized", body=b'{"message":"invalid API key"}'))


@pytest.fixture
def page() -> Iterator[HostileServer]:
    """A healthy local page to probe."""
    with HostileServer(_ok) as server:
        yield server


def _leaks(text: str, secrets_: list[str]) -> list[str]:
    return [s for s in secrets_ if s and s in text]


def _write(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.mark.slow
@pytest.mark.postgres
class TestSecretsNeverPrinted:
    """Every output of the service and the commands, searched for every secret."""

    def test_password_in_ledger_url(
        self, tmp_path: Path, postgres_server: PostgresServer, page: HostileServer
    ) -> None:
        """A password inside `ledger.url` appears in no log, error, endpoint or command output."""
        database = postgres_server.create_schema()
        password = postgres_server.password
        assert password in database
        config: dict[str, Any] = {
            "targets": [{"id": "accueil", "kind": "http", "url": page.url("/"), "interval": "1s"}],
            "ledger": {
                "url": database,
                "artifacts": str(tmp_path / "artifacts"),
                "checkpoint_interval": "1s",
            },
        }
        env = {"VIGIE_SMTP_PASSWORD": SMTP_PASSWORD, "VIGIE_GRAFANA_TOKEN": GRAFANA_TOKEN}
        outputs = self._everything(tmp_path, config, env)
        assert _leaks(outputs, [password, SMTP_PASSWORD, GRAFANA_TOKEN]) == []
        assert "***" in outputs  # the URL is shown, redacted

    def test_password_setting_and_env(
        self, tmp_path: Path, postgres_server: PostgresServer, page: HostileServer
    ) -> None:
        """`ledger.password` (SecretStr, from VIGIE_LEDGER__PASSWORD) is used and never shown."""
        role = "vigie_" + secrets.token_hex(4)
        postgres_server.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{LEDGER_PASSWORD}'")
        name = f"secrets_{secrets.token_hex(4)}"
        postgres_server.execute(f'CREATE DATABASE "{name}" OWNER {role}')
        url = f"postgresql://{role}@127.0.0.1:{postgres_server.port}/{name}"
        config: dict[str, Any] = {
            "targets": [{"id": "accueil", "kind": "http", "url": page.url("/"), "interval": "1s"}],
            "ledger": {"url": url, "artifacts": str(tmp_path / "artifacts")},
        }
        env = {
            "VIGIE_LEDGER__PASSWORD": LEDGER_PASSWORD,
            "VIGIE_SMTP_PASSWORD": SMTP_PASSWORD,
            "VIGIE_GRAFANA_TOKEN": GRAFANA_TOKEN,
        }
        outputs = self._everything(tmp_path, config, env)
        assert _leaks(outputs, [LEDGER_PASSWORD, SMTP_PASSWORD, GRAFANA_TOKEN]) == []

    def test_wrong_password_error_is_redacted(
        self, tmp_path: Path, postgres_server: PostgresServer
    ) -> None:
        """A refused connection is reported clearly (exit 1) without the password tried."""
        wrong = "wrong-" + secrets.token_hex(8)
        url = f"postgresql://vigie_admin:{wrong}@127.0.0.1:{postgres_server.port}/postgres"
        config = {
            "targets": [],
            "listen": f"127.0.0.1:{free_port()}",
            "ledger": {"url": url, "artifacts": str(tmp_path / "a")},
            "signing": {"key": str(tmp_path / "k")},
        }
        path = _write(tmp_path / "vigie.yaml", config)
        run = vigie("run", "--config", str(path), timeout=60)
        assert run.returncode == 1
        text = run.stdout + run.stderr
        assert "Traceback" not in text
        assert "ledger" in text
        assert _leaks(text, [wrong]) == []
        check = vigie("config", "check", str(path))
        assert check.returncode == 0
        assert _leaks(check.stdout + check.stderr, [wrong]) == []

    def _everything(self, tmp_path: Path, config: dict[str, Any], env: dict[str, str]) -> str:
        """Run the service and every command with `env` set; all they printed, concatenated."""
        out: list[str] = []
        service = Service(config, tmp_path, env)
        service.start()
        try:
            service.wait_for(
                lambda: (service.sample("vigie_ledger_entries_total") or 0) >= 3,
                what="three entries",
            )
            out += [
                http_get(service.url + path)[1].decode("utf-8", "replace")
                for path in ("/metrics", "/", "/healthz", "/nowhere")
            ]
        finally:
            assert service.stop() == 0
        out.append(service.log())
        config_path = str(service.config_path)
        for args in (
            ("config", "check", config_path),
            ("verify", "--config", config_path, "--workers", "1"),
            ("verify", "--config", config_path, "--json", "--workers", "1"),
            ("check", "--config", config_path, "--format", "json"),
            ("outages", "--config", config_path, "--format", "json"),
            (
                "dashboards",
                "push",
                "--config",
                config_path,
                "--grafana-url",
                f"http://127.0.0.1:{free_port()}",
                "--timeout",
                "2",
            ),
        ):
            done = vigie(*args, env=env, timeout=90)
            assert "Traceback" not in done.stderr, (args, done.stderr[-2000:])
            out += [done.stdout, done.stderr]
        with HostileServer(_grafana_refuses) as grafana:
            done = vigie(
                "dashboards",
                "push",
                "--config",
                config_path,
                "--grafana-url",
                grafana.url(""),
                env=env,
                timeout=60,
            )
        assert done.returncode != 0
        out += [done.stdout, done.stderr]
        verified = vigie("verify", "--config", config_path, "--workers", "1", env=env)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        return "\n".join(out)


class TestAlertmanagerSecrets:
    """The Alertmanager entrypoint moves the SMTP password into a 0600 file, never printing it."""

    def test_smtp_password_to_private_file(self, tmp_path: Path) -> None:
        """The password is written to a file only its owner can read, and absent from the
        environment and output of the process it starts."""
        script = REPO / "alerts" / "alertmanager-entrypoint.sh"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "VIGIE_SMTP_PASSWORD": SMTP_PASSWORD,
            "VIGIE_SECRETS_DIR": str(tmp_path / "secrets"),
            "ALERTMANAGER_BIN": "/usr/bin/env",
        }
        done = subprocess.run(
            ["sh", str(script)], capture_output=True, text=True, env=env, timeout=30, check=False
        )
        assert done.returncode == 0, done.stderr
        assert SMTP_PASSWORD not in done.stdout + done.stderr  # /usr/bin/env printed its env
        secret = tmp_path / "secrets" / "vigie_smtp_password"
        assert secret.read_text() == SMTP_PASSWORD
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600


@pytest.mark.slow
class TestSigningKeyThroughTheService:
    """`vigie run` creates its key 0600 and refuses a key others can read."""

    def test_created_0600_then_wider_refused(self, tmp_path: Path, page: HostileServer) -> None:
        """First start creates the key with mode 0600; after chmod 644 the service refuses to
        start with one clear line naming the file and the fix, exit 1, no traceback."""
        config = {"targets": [{"id": "accueil", "kind": "http", "url": page.url("/")}]}
        service = Service(config, tmp_path)
        service.start()
        assert service.stop() == 0
        key = tmp_path / "vantage.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        key.chmod(0o644)
        run = vigie("run", "--config", str(service.config_path), timeout=60)
        assert run.returncode == 1
        assert "Traceback" not in run.stderr + run.stdout
        errors = [ln for ln in run.stderr.splitlines() if ln.startswith("vigie: error:")]
        assert len(errors) == 1, run.stderr
        assert str(key) in errors[0]
        assert "0644" in errors[0]
        assert f"chmod 600 {key}" in errors[0]
        assert "BEGIN PRIVATE KEY" not in run.stdout + run.stderr
