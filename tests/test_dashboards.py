"""Tests of the Grafana dashboards: generated JSON in sync, sound structure, working queries.

Grafana cannot run here, so every panel query runs against a real Prometheus scraping a real
Vigie that probes the local simulator, with Grafana's variables substituted as Grafana would.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards import DASHBOARD_FILES, all_dashboards, check_directory, panel_queries, render
from dashboards.build import OUTAGE_TAG, PanelQuery
from simulator import Simulator

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS_DIR = ROOT / "dashboards"
VIGIE = Path(sys.executable).with_name("vigie")
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
VANTAGE = "essai-1"


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


class TestGeneratedFiles:
    def test_committed_json_matches_the_code(self) -> None:
        """The committed dashboards/*.json are exactly what dashboards/build.py generates."""
        stale = check_directory(DASHBOARDS_DIR)
        assert stale == [], f"run `make dashboards` and commit: {stale}"

    def test_drift_is_detected(self, tmp_path: Path) -> None:
        """A hand edit of a generated file is reported as drift."""
        for name in DASHBOARD_FILES.values():
            shutil.copy(DASHBOARDS_DIR / name, tmp_path / name)
        path = tmp_path / DASHBOARD_FILES["vigie-overview"]
        path.write_text(path.read_text("utf-8").replace("Vue d'ensemble", "Vue"), "utf-8")
        assert check_directory(tmp_path) == [path.name]

    def test_check_command_fails_on_drift(self, tmp_path: Path) -> None:
        """`python -m dashboards --check DIR` exits 1 when a file is missing, 0 once written."""
        command = [sys.executable, "-m", "dashboards", "--check", str(tmp_path)]
        missing = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        assert missing.returncode == 1
        assert "make dashboards" in missing.stderr
        subprocess.run([*command[:3], str(tmp_path)], cwd=ROOT, capture_output=True, check=True)
        again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        assert again.returncode == 0

    def test_rendering_is_stable(self) -> None:
        """Two builds render to the same bytes (no dict-order or time dependence)."""
        first = {uid: render(d) for uid, d in all_dashboards().items()}
        second = {uid: render(d) for uid, d in all_dashboards().items()}
        assert first == second


class TestDashboardStructure:
    @pytest.fixture(params=sorted(DASHBOARD_FILES))
    def dashboard(self, request: pytest.FixtureRequest) -> dict[str, Any]:
        return all_dashboards()[request.param]

    def test_stable_uid_and_title(self, dashboard: dict[str, Any]) -> None:
        """Each dashboard has a fixed uid (Grafana's 40-character limit) and a French title."""
        assert re.fullmatch(r"[a-z0-9-]{1,40}", dashboard["uid"])
        assert dashboard["title"].startswith("Vigie — ")
        assert dashboard["id"] is None
        assert dashboard["schemaVersion"] >= 39

    def test_variables(self, dashboard: dict[str, Any]) -> None:
        """datasource, target and vantage variables exist, with the documented queries."""
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        assert variables["target"]["definition"] == "label_values(vigie_target_info, target)"
        assert variables["vantage"]["definition"] == "label_values(vigie_target_info, vantage)"

    def test_no_hard_coded_datasource(self, dashboard: dict[str, Any]) -> None:
        """Every Prometheus reference goes through ${datasource}, never a fixed uid."""
        text = json.dumps(dashboard)
        uids = set(re.findall(r'"type": "prometheus", "uid": "([^"]*)"', text))
        assert uids == {"${datasource}"}

    def test_every_panel_explained(self, dashboard: dict[str, Any]) -> None:
        """Every data panel has a title and a description for non-engineers (in French)."""
        for panel in _panels(dashboard):
            if panel["type"] in {"row", "text"}:
                continue
            assert panel["title"], panel
            assert len(panel["description"]) > 60, panel["title"]
            assert re.search(r"[éèàùçô]| le | la | les | des ", panel["description"]), panel[
                "title"
            ]

    def test_layout(self, dashboard: dict[str, Any]) -> None:
        """Panels fit the 24-column grid, have unique ids and never overlap."""
        ids = [p["id"] for p in _panels(dashboard)]
        assert len(ids) == len(set(ids))
        cells: set[tuple[int, int]] = set()
        for panel in _panels(dashboard):
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24, panel["title"]
            area = {
                (x, y)
                for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])
            }
            assert not area & cells, f"{panel['title']} overlaps another panel"
            cells |= area

    def test_outage_annotations(self) -> None:
        """Overview and detail show outages from Prometheus and from pushed annotations."""
        for uid in ("vigie-overview", "vigie-service"):
            notes = all_dashboards()[uid]["annotations"]["list"]
            assert any("vigie_outage_open" in n.get("expr", "") for n in notes)
            tags = [
                n["target"]["tags"]
                for n in notes
                if n["datasource"]["type"] == "grafana" and "target" in n
            ]
            assert tags
            assert all(OUTAGE_TAG in t for t in tags)

    def test_availability_definition_is_explained(self) -> None:
        """Availability panels say in plain French how availability is computed and why."""
        overview = all_dashboards()["vigie-overview"]
        availability = [
            p
            for p in _panels(overview)
            if p["type"] != "row" and p["title"].startswith("Disponibilité")
        ]
        assert len(availability) == 4
        for panel in availability:
            assert "avg_over_time(probe_success" in panel["targets"][0]["expr"]
            assert "Nous avons choisi ce calcul" in panel["description"]

    def test_provisioning_points_at_the_files(self) -> None:
        """The provisioning provider reads the folder where compose mounts the JSON files."""
        provider = yaml.safe_load(
            (DASHBOARDS_DIR / "provisioning/dashboards/vigie.yml").read_text("utf-8")
        )["providers"][0]
        compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))
        mounts = compose["services"]["grafana"]["volumes"]
        assert f"./dashboards:{provider['options']['path']}:ro" in mounts
        assert provider["folderUid"] == "vigie"
        datasource = yaml.safe_load(
            (DASHBOARDS_DIR / "provisioning/datasources/vigie.yml").read_text("utf-8")
        )["datasources"][0]
        assert datasource["type"] == "prometheus"
        assert datasource["url"] == "http://prometheus:9090"


# --- queries against a real Prometheus scraping a real Vigie ----------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str, params: dict[str, str] | None = None, timeout: float = 10.0) -> Any:
    if params:
        url = f"{url}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=timeout) as response:  # loopback only
        return json.load(response)


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as response:  # loopback only
        return bool(response.status == 200)


def _wait(
    condition: Any,
    what: str,
    timeout: float,
    proc: subprocess.Popen[bytes],
    log: Path,
    *,
    required: bool = True,
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what}: process exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError, ValueError, KeyError):
            if condition():
                return True
        time.sleep(0.3)
    if required:
        pytest.fail(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Stack:
    """A running simulator, Vigie and Prometheus."""

    def __init__(self, prometheus_url: str, targets: list[str]) -> None:
        self.prometheus_url = prometheus_url
        self.targets = targets

    def query(self, expr: str, *, instant: bool, step: str = "5s") -> list[Any]:
        """Run `expr` as Grafana would (instant or over the last 3 minutes); return results."""
        params = {"query": expr}
        if instant:
            path = "/api/v1/query"
        else:
            now = time.time()
            path = "/api/v1/query_range"
            params |= {"start": f"{now - 180:.3f}", "end": f"{now:.3f}", "step": step}
        try:
            answer = _get(self.prometheus_url + path, params)
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{exc.code}: {exc.read().decode()[:500]}\n{expr}") from None
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])


def _vigie_config(sim: Simulator, state: Path, listen: str) -> str:
    config = {
        "vantage": {"name": VANTAGE, "operator": "Tests"},
        "defaults": {"interval": "1s", "timeout": "5s"},
        "min_interval": "1s",
        "targets": [
            {
                "id": "sim-accueil",
                "name": "Simulateur — accueil",
                "kind": "http",
                "url": sim.site_url,
                "expect": {"status": [200]},
            },
            {
                "id": "sim-api",
                "name": "Simulateur — API",
                "kind": "http",
                "url": sim.api_url,
                "expect": {"status": [401, 403]},
            },
            {
                "id": "sim-https",
                "name": "Simulateur — HTTPS",
                "kind": "http",
                "url": sim.tls_url,
                "expect": {"status": [200]},
            },
        ],
        "outages": {"confirm_after": 2, "recover_after": 2, "recheck": "1s"},
        "ledger": {
            "url": f"sqlite:///{state}/ledger.db",
            "artifacts": str(state / "artifacts"),
            "checkpoint_interval": "2s",
        },
        "signing": {"key": str(state / "vantage.key")},
        "listen": listen,
    }
    return yaml.safe_dump(config, allow_unicode=True)


def _prometheus_config(vigie: str) -> str:
    """The deployed scrape config of Vigie (job, vantage label), at a 1 s interval.

    Alert rules are left out: tests/test_compose.py checks them with promtool.
    """
    deployed = (ROOT / "deploy/prometheus/prometheus.yml").read_text("utf-8")
    config = yaml.safe_load(deployed.replace("__VIGIE_VANTAGE__", VANTAGE))
    config["global"] |= {
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "evaluation_interval": "1s",
    }
    config.pop("rule_files")
    config.pop("alerting")
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "vigie"]
    job["static_configs"][0]["targets"] = [vigie]
    config["scrape_configs"] = [job]
    return yaml.safe_dump(config)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not VIGIE.exists() or not Path(PROMETHEUS).exists():
        pytest.skip("needs .venv/bin/vigie and /usr/bin/prometheus")
    tmp = tmp_path_factory.mktemp("dashboards-stack")
    with Simulator(host="127.0.0.1") as sim, contextlib.ExitStack() as stop:
        # The API fails from the start: an outage opens, so outage panels have data too.
        sim.set_fault("/api/usager/moi", "http_500")
        vigie_port, prom_port = _free_port(), _free_port()
        config = tmp / "vigie.yaml"
        config.write_text(_vigie_config(sim, tmp, f"127.0.0.1:{vigie_port}"), "utf-8")
        vigie_log = tmp / "vigie.log"
        env = {**os.environ, "SSL_CERT_FILE": str(sim.tls_ca_file)}
        vigie = subprocess.Popen(
            [str(VIGIE), "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=stop.enter_context(vigie_log.open("wb")),
            env=env,
            cwd=tmp,
        )
        stop.callback(_stop, vigie)
        _wait(
            lambda: _http_ok(f"http://127.0.0.1:{vigie_port}/healthz"),
            "vigie /healthz",
            30,
            vigie,
            vigie_log,
        )

        prom_dir = tmp / "prometheus"
        prom_dir.mkdir()
        (prom_dir / "prometheus.yml").write_text(
            _prometheus_config(f"127.0.0.1:{vigie_port}"), "utf-8"
        )
        prom_log = tmp / "prometheus.log"
        prom = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={prom_dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={prom_dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=stop.enter_context(prom_log.open("wb")),
            cwd=prom_dir,
        )
        stop.callback(_stop, prom)
        url = f"http://127.0.0.1:{prom_port}"
        result = Stack(url, ["sim-accueil", "sim-api", "sim-https"])

        def scraped() -> bool:
            probes = result.query("sum(increase(vigie_probes_total[1m]))", instant=True)
            quantile = result.query(
                "histogram_quantile(0.5, sum by (le) (rate(vigie_probe_duration_seconds_bucket"
                "[1m])))",
                instant=True,
            )
            return bool(probes and float(probes[0]["value"][1]) >= 12 and quantile)

        _wait(scraped, "Prometheus to hold several checks of every target", 60, prom, prom_log)
        # Give the outage of sim-api time to be confirmed (if the service opens outages).
        _wait(
            lambda: bool(result.query("vigie_outage_open == 1", instant=True)),
            "an open outage",
            15,
            prom,
            prom_log,
            required=False,
        )
        yield result


def _substitute(query: PanelQuery, target: str) -> str:
    interval = query.interval or "15s"
    seconds = int(interval[:-1]) * {"s": 1, "m": 60, "h": 3600}[interval[-1]]
    values = {
        "$__rate_interval": f"{max(seconds + 15, 60)}s",
        "$__interval": interval,
        "$__range": "3m",
        "$datasource": "vigie-prometheus",
        "$target": target,
        "$vantage": ".*",
        "$job": ".+",
    }
    expr = query.expr
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace(name, values[name])
    assert "$" not in expr.replace("$1", ""), f"unsubstituted variable in {expr}"
    return expr


# Panels that may legitimately be empty in this run: no browser target is configured, no
# RFC 3161 authority, and the checkpoint gauge stays at 0 until the first signed checkpoint.
MAY_BE_EMPTY = {
    "Durée des étapes du parcours (navigateur)",
    "Dernier horodatage par un tiers",
    "Dernier point de contrôle signé",
}


def _panel_query(uid: str, panel: str) -> PanelQuery:
    """The one query of the panel titled `panel` in dashboard `uid`."""
    (query,) = [q for q in panel_queries(all_dashboards()[uid]) if q.panel == panel]
    return query


def _empty_panels(stack: Stack, uid: str, target: str, skip: Callable[[str], bool]) -> list[str]:
    """The queries of dashboard `uid` (but the panels `skip` rejects) that return no data."""
    return [
        f"{query.panel} [{query.ref}]"
        for query in panel_queries(all_dashboards()[uid])
        if not skip(query.panel)
        and not stack.query(_substitute(query, target), instant=query.instant)
    ]


@pytest.mark.prometheus
@pytest.mark.slow
class TestQueriesAgainstPrometheus:
    def test_variables_list_the_running_probe(self, stack: Stack) -> None:
        """The target, vantage and job variables' label queries return the live values."""
        base = stack.prometheus_url + "/api/v1/label/{}/values"
        targets = _get(base.format("target"), {"match[]": "vigie_target_info"})["data"]
        assert sorted(targets) == sorted(stack.targets)
        vantages = _get(base.format("vantage"), {"match[]": "vigie_target_info"})["data"]
        assert vantages == [VANTAGE]
        assert _get(base.format("job"), {"match[]": "vigie_build_info"})["data"] == ["vigie"]

    def test_every_query_runs(self, stack: Stack) -> None:
        """Every panel and annotation query of every dashboard runs without error."""
        count = 0
        for uid, dashboard in all_dashboards().items():
            targets = stack.targets if uid == "vigie-service" else [".*"]
            for query in panel_queries(dashboard):
                for target in targets:
                    stack.query(_substitute(query, target), instant=query.instant)
                    count += 1
        assert count > 40

    def test_overview_panels_return_data(self, stack: Stack) -> None:
        """Every panel of the overview returns data for a live probe (all services selected)."""
        open_outage = bool(stack.query("vigie_outage_open == 1", instant=True))

        def skip(panel: str) -> bool:
            return panel.startswith("annotation:") or (
                panel == "Pannes en cours" and not open_outage
            )

        assert _empty_panels(stack, "vigie-overview", ".*", skip) == []

    def test_overview_names_each_service(self, stack: Stack) -> None:
        """The state panel returns one series per service, carrying its display name."""
        state = _panel_query("vigie-overview", "État actuel")
        result = stack.query(_substitute(state, ".*"), instant=True)
        assert sorted(r["metric"]["name"] for r in result) == [
            "Simulateur — API",
            "Simulateur — HTTPS",
            "Simulateur — accueil",
        ]
        codes = {r["metric"]["target"]: float(r["value"][1]) for r in result}
        assert codes["sim-accueil"] == 1  # en service
        assert codes["sim-api"] >= 4  # échecs en cours, ou en panne

    def test_availability_reflects_failures(self, stack: Stack) -> None:
        """The failing API shows a lower availability than the healthy home page."""
        avail = _panel_query("vigie-overview", "Disponibilité — 24 heures")
        values = {
            r["metric"]["target"]: float(r["value"][1])
            for r in stack.query(_substitute(avail, ".*"), instant=True)
        }
        assert values["sim-accueil"] == 1
        assert values["sim-api"] < 0.5

    def test_service_panels_return_data(self, stack: Stack) -> None:
        """The per-service dashboard has data for a failing target, except panels that need
        a browser journey or an RFC 3161 authority."""

        def skip(panel: str) -> bool:
            # sim-api is plain HTTP (no certificate); open outages: see the overview test.
            return (
                panel.startswith("annotation:")
                or panel in MAY_BE_EMPTY
                or panel in {"Certificat de sécurité", "Pannes en cours"}
            )

        assert _empty_panels(stack, "vigie-service", "sim-api", skip) == []

    def test_probe_health_panels_return_data(self, stack: Stack) -> None:
        """The probe-health dashboard has data for a running Vigie (except signatures/TSA)."""
        assert _empty_panels(stack, "vigie-probe-health", ".*", MAY_BE_EMPTY.__contains__) == []

    def test_certificate_expiry_shown_for_https(self, stack: Stack) -> None:
        """The certificate panel gives a number of days for the HTTPS target."""
        cert = _panel_query("vigie-service", "Certificat de sécurité")
        (result,) = stack.query(_substitute(cert, "sim-https"), instant=True)
        assert float(result["value"][1]) > 1
