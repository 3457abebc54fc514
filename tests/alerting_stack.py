"""Runs the real Prometheus and Alertmanager binaries on loopback for alerting tests and benchmarks.

Configs are generated from the committed ones in alerts/ with test values (ports, sinks, short
intervals); nothing here ever listens beyond 127.0.0.1 or talks to anything but local sinks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from config.settings import Settings
from simulator import SimulatorProcess
from tests.service_fixture import ServiceProcess
from tests.smtp_sink import SmtpSink
from tests.webhook_sink import WebhookSink

__all__ = [
    "ALERTMANAGER",
    "ALERTS_DIR",
    "AMTOOL",
    "PROMETHEUS",
    "PROMTOOL",
    "RULE_FILES",
    "AlertingStack",
    "Alertmanager",
    "Prometheus",
    "Timings",
    "alert_payload",
    "alerting_stack",
    "free_port",
    "missing_binaries",
    "prometheus_config",
    "render_alertmanager_config",
    "running",
    "scaled_rule_files",
    "wait_http_ok",
]

ROOT = Path(__file__).resolve().parent.parent
ALERTS_DIR = ROOT / "alerts"
RULE_FILES = tuple(sorted(ALERTS_DIR.glob("*.rules.yml")))
PROMETHEUS = "/usr/bin/prometheus"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
PROMTOOL = "/usr/bin/promtool"
AMTOOL = "/usr/bin/amtool"


def missing_binaries(*names: str) -> list[str]:
    """Which of the given executables are not installed."""
    return [n for n in names if shutil.which(n) is None]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the binaries bind it themselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http_ok(url: str, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until GET `url` answers 200; fail early if `process` exits."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready within {timeout} s ({last})")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def render_alertmanager_config(
    *,
    smtp_port: int,
    webhook_url: str,
    password_file: Path,
    legal_to: str = "juristes@association.test",
    group_wait: str = "1s",
    group_interval: str = "1s",
    source: Path = ALERTS_DIR / "alertmanager.yml",
) -> dict[str, Any]:
    """The committed Alertmanager config with concrete test values (loopback sinks, short waits).

    Only deployment values change: routes, matchers, inhibitions and templates stay as committed.
    """
    config: dict[str, Any] = yaml.safe_load(source.read_text("utf-8"))
    glob = config["global"]
    glob["smtp_smarthost"] = f"127.0.0.1:{smtp_port}"
    glob["smtp_from"] = "Vigie <vigie@association.test>"
    glob["smtp_auth_username"] = "vigie-test"
    glob["smtp_auth_password_file"] = str(password_file)
    glob["smtp_require_tls"] = False  # the sink speaks plain SMTP on loopback
    config["templates"] = [str(source.parent / t) for t in config["templates"]]

    def retime(route: dict[str, Any]) -> None:
        for key, value in (("group_wait", group_wait), ("group_interval", group_interval)):
            if key in route:
                route[key] = value
        for child in route.get("routes", []):
            retime(child)

    retime(config["route"])
    for receiver in config["receivers"]:
        for email in receiver.get("email_configs", []):
            email["to"] = legal_to
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = webhook_url
    return config


_DURATION = re.compile(r"^(?P<indent>\s*)(?P<key>for|keep_firing_for): (?P<value>\S+)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(text: str) -> float:
    total = 0.0
    for number, unit in re.findall(r"(\d+)(ms|s|m|h|d)", text):
        total += int(number) * _UNITS[unit]
    return total


def scaled_rule_files(directory: Path, factor: float) -> list[Path]:
    """Copies of the committed rule files with every `for`/`keep_firing_for` scaled by `factor`.

    End-to-end tests run Vigie with second-long intervals; the confirmation delays of the tech
    alerts shrink in proportion so a test does not wait minutes. Expressions are unchanged.
    """
    paths = []
    for source in RULE_FILES:
        lines = []
        for line in source.read_text("utf-8").splitlines():
            match = _DURATION.match(line)
            if match:
                seconds = max(1, round(_seconds(match["value"]) * factor))
                lines.append(f"{match['indent']}{match['key']}: {seconds}s")
            else:
                lines.append(line)
        target = directory / source.name
        target.write_text("\n".join(lines) + "\n", "utf-8")
        paths.append(target)
    return paths


class Alertmanager:
    """A real Alertmanager on a free loopback port, clustering disabled.

    With `secrets`, it starts through alerts/alertmanager-entrypoint.sh, as docker compose does:
    the secrets are passed as environment variables and the script writes them to
    `secrets_dir` before exec-ing Alertmanager.
    """

    def __init__(
        self,
        workdir: Path,
        config: Mapping[str, Any],
        *,
        secrets: Mapping[str, str] | None = None,
        secrets_dir: Path | None = None,
    ) -> None:
        self.workdir = workdir
        self.secrets = dict(secrets or {})
        self.secrets_dir = secrets_dir
        self.config_path = workdir / "alertmanager.yml"
        self.config_path.write_text(yaml.safe_dump(dict(config), allow_unicode=True), "utf-8")
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "alertmanager.log"

    @property
    def url(self) -> str:
        """Base URL of the API and UI."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Alertmanager:
        """Start the process and wait until it is ready (retries if the port was taken)."""
        for _attempt in range(3):
            self.port = free_port()
            storage = self.workdir / f"am-data-{self.port}"
            storage.mkdir()
            log = self.log_path.open("ab")
            command = [ALERTMANAGER]
            env = None
            if self.secrets:
                command = ["/bin/sh", str(ALERTS_DIR / "alertmanager-entrypoint.sh")]
                env = {
                    "PATH": "/usr/bin:/bin",
                    "ALERTMANAGER_BIN": ALERTMANAGER,
                    "VIGIE_SECRETS_DIR": str(self.secrets_dir or self.workdir),
                    **self.secrets,
                }
            self.process = subprocess.Popen(
                [
                    *command,
                    f"--config.file={self.config_path}",
                    f"--storage.path={storage}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--cluster.listen-address=",
                    "--log.level=debug",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
            log.close()
            try:
                wait_http_ok(f"{self.url}/-/ready", 20, self.process)
            except RuntimeError:
                continue
            return self
        raise RuntimeError(f"Alertmanager did not start; see {self.log_path}")

    def stop(self) -> None:
        """Stop the process."""
        if self.process is not None:
            _stop(self.process)

    def __enter__(self) -> Alertmanager:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def post_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        """Send alerts as Prometheus does (POST /api/v2/alerts)."""
        body = json.dumps(list(alerts)).encode()
        request = urllib.request.Request(
            f"{self.url}/api/v2/alerts",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts Alertmanager holds, with their status (active, suppressed, inhibitedBy)."""
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=5) as response:
            data: list[dict[str, Any]] = json.loads(response.read())
            return data

    def log_text(self) -> str:
        """Everything the process logged so far."""
        return self.log_path.read_text("utf-8", "replace")


def alert_payload(
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    *,
    starts_at: dt.datetime,
    ends_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """One alert in the JSON form Prometheus sends to Alertmanager."""
    payload: dict[str, Any] = {
        "labels": dict(labels),
        "annotations": dict(annotations),
        "startsAt": starts_at.isoformat(),
    }
    if ends_at is not None:
        payload["endsAt"] = ends_at.isoformat()
    return payload


class Prometheus:
    """A real Prometheus on a free loopback port with temporary storage."""

    def __init__(self, workdir: Path, config: Mapping[str, Any]) -> None:
        self.workdir = workdir
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(dict(config), allow_unicode=True), "utf-8")
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "prometheus.log"

    @property
    def url(self) -> str:
        """Base URL of the API."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Prometheus:
        """Start the process and wait until it is ready (retries if the port was taken)."""
        for _attempt in range(3):
            self.port = free_port()
            storage = self.workdir / f"prom-data-{self.port}"
            storage.mkdir()
            log = self.log_path.open("ab")
            self.process = subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={storage}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--rules.alert.resend-delay=1s",
                    "--log.level=info",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
            try:
                wait_http_ok(f"{self.url}/-/ready", 30, self.process)
            except RuntimeError:
                continue
            return self
        raise RuntimeError(f"Prometheus did not start; see {self.log_path}")

    def stop(self) -> None:
        """Stop the process."""
        if self.process is not None:
            _stop(self.process)

    def __enter__(self) -> Prometheus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; the result vector."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=5) as response:
            data = json.loads(response.read())
        result: list[dict[str, Any]] = data["data"]["result"]
        return result

    def log_text(self) -> str:
        """Everything the process logged so far."""
        return self.log_path.read_text("utf-8", "replace")


def prometheus_config(
    *,
    vigie_address: str,
    alertmanager_address: str,
    rule_files: Sequence[Path],
    vantage: str,
    interval: str = "1s",
) -> dict[str, Any]:
    """A Prometheus config as docs/alerting.md asks: job `vigie`, `vantage` label on the target."""
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(p) for p in rule_files],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager_address]}]}]},
        "scrape_configs": [
            {
                "job_name": "vigie",
                "scrape_timeout": interval,
                "static_configs": [{"targets": [vigie_address], "labels": {"vantage": vantage}}],
            }
        ],
    }


@contextlib.contextmanager
def running(*services: Alertmanager | Prometheus) -> Iterator[None]:
    """Start services in order, stop them in reverse order."""
    with contextlib.ExitStack() as stack:
        for service in services:
            stack.enter_context(service)
        yield


# --- The whole chain: simulator -> Vigie -> Prometheus -> Alertmanager -> sinks ------------


@dataclasses.dataclass(frozen=True)
class Timings:
    """Time settings of an end-to-end run (seconds), and the alert-latency goal they imply."""

    interval: float = 1.0
    recheck: float = 0.5
    confirm_after: int = 2
    recover_after: int = 2
    scrape: float = 1.0
    group_wait: float = 1.0
    rule_for_factor: float = 1 / 30  # `for: 1m` of the tech alerts becomes 2 s

    @property
    def goal_s(self) -> float:
        """Issue 8's goal for fault -> e-mail: interval + (confirm_after - 1) x recheck +
        scrape interval + group_wait + 2 s."""
        return (
            self.interval
            + (self.confirm_after - 1) * self.recheck
            + self.scrape
            + self.group_wait
            + 2.0
        )


def _duration(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


@dataclasses.dataclass
class AlertingStack:
    """Everything an end-to-end alerting test drives and observes."""

    simulator: SimulatorProcess
    service: ServiceProcess
    prometheus: Prometheus
    alertmanager: Alertmanager
    smtp: SmtpSink
    webhook: WebhookSink
    target: str
    target_name: str
    public_base: str
    timings: Timings

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the target is probed up and Prometheus has scraped and evaluated it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            up = self.service.sample("probe_success", target=self.target) == 1.0
            if (
                up
                and self.prometheus.query(
                    f'probe_success{{job="vigie",target="{self.target}"}} == 1'
                )
                and self.prometheus.query("vigie:public_url_info")
            ):
                return
            time.sleep(0.2)
        raise TimeoutError(f"stack not ready in {timeout} s; Vigie log:\n{self.service.log()}")

    def outage_start(self) -> float | None:
        """Start (unix seconds) of the target's open `down` outage, as Vigie exposes it."""
        value = self.service.sample(
            "vigie_outage_started_timestamp_seconds", target=self.target, kind="down"
        )
        return value or None

    def diagnostics(self) -> str:
        """Tails of every log, for failure messages."""
        return "\n".join(
            [
                "--- vigie ---",
                self.service.log()[-3000:],
                "--- prometheus ---",
                self.prometheus.log_text()[-2000:],
                "--- alertmanager ---",
                self.alertmanager.log_text()[-3000:],
            ]
        )


@contextlib.contextmanager
def alerting_stack(
    simulator: SimulatorProcess,
    workdir: Path,
    *,
    timings: Timings = Timings(),
    vantage: str = "e2e-1",
) -> Iterator[AlertingStack]:
    """Vigie probing `simulator`, with a real Prometheus and Alertmanager, SMTP and webhook sinks.

    One HTTP target (the simulated home page), two controls on the simulator (`/controle-1`,
    `/controle-2`, which a fault can take down to simulate a network cut), loopback only.
    """
    site = simulator.urls["site_url"].rstrip("/")
    target, name = "accueil", "ANEF — page d'accueil (simulée)"
    port = free_port()
    # Reachable, yet unlike the scraped address (127.0.0.1:port): links prove they use it.
    public_base = f"http://localhost:{port}"
    config: dict[str, Any] = {
        "vantage": {"name": vantage, "operator": "Tests d'alerte"},
        "user_agent": "Vigie-test/0.1 (+http://localhost; tests d'alerte)",
        "listen": f"127.0.0.1:{port}",
        "defaults": {"interval": f"{timings.interval}s", "timeout": "2s"},
        "min_interval": "0.2s",
        "targets": [
            {
                "id": target,
                "name": name,
                "kind": "http",
                "url": site + "/",
                "expect": {"contains": "trangers"},
            }
        ],
        "controls": [site + "/controle-1", site + "/controle-2"],
        "outages": {
            "confirm_after": timings.confirm_after,
            "recover_after": timings.recover_after,
            "recheck": f"{timings.recheck}s",
        },
    }
    if "public_url" in Settings.model_fields:
        config["public_url"] = public_base
    secrets_dir = workdir / "secrets"
    with contextlib.ExitStack() as stack:
        smtp = stack.enter_context(SmtpSink())
        webhook = stack.enter_context(WebhookSink())
        (workdir / "vigie").mkdir()
        service = ServiceProcess(config, workdir / "vigie")
        service.start()
        stack.callback(lambda: service.process is not None and service.stop())
        am_config = render_alertmanager_config(
            smtp_port=smtp.port,
            webhook_url=webhook.url,
            password_file=secrets_dir / "vigie_smtp_password",
            group_wait=_duration(timings.group_wait),
            group_interval=_duration(timings.group_wait),
        )
        (workdir / "am").mkdir()
        alertmanager = stack.enter_context(
            Alertmanager(
                workdir / "am",
                am_config,
                secrets={"VIGIE_SMTP_PASSWORD": "e2e-password"},
                secrets_dir=secrets_dir,
            )
        )
        (workdir / "prom").mkdir()
        rules = scaled_rule_files(workdir / "prom", timings.rule_for_factor)
        prometheus = stack.enter_context(
            Prometheus(
                workdir / "prom",
                prometheus_config(
                    vigie_address=f"127.0.0.1:{port}",
                    alertmanager_address=f"127.0.0.1:{alertmanager.port}",
                    rule_files=rules,
                    vantage=vantage,
                    interval=_duration(timings.scrape),
                ),
            )
        )
        yield AlertingStack(
            simulator=simulator,
            service=service,
            prometheus=prometheus,
            alertmanager=alertmanager,
            smtp=smtp,
            webhook=webhook,
            target=target,
            target_name=name,
            public_base=public_base,
            timings=timings,
        )
