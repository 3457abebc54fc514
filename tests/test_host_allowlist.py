"""DNS rebinding: `vigie run` and `vigie central` answer only the host names they were given.

A page on attacker.example whose name is re-pointed at 127.0.0.1 makes the browser send
``Host: attacker.example``: every endpoint must answer 421 to it, and nothing of the page. The
endpoints are taken from the applications' own routers, so a route added later is covered too.
"""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import Settings
from exporter.central import Central, CentralConfig
from exporter.central import build_app as build_central_app
from exporter.hostcheck import HostAllowList
from exporter.server import build_app
from tests.service_fixture import free_port, run_service

ROOT = Path(__file__).resolve().parents[1]
FOREIGN = ["attacker.example", "attacker.example:{port}", "127.0.0.1.attacker.example", "vigie"]


def _paths(app_resources: list[str]) -> list[str]:
    """Concrete paths for every route (path parameters filled with a made-up value)."""
    return [re.sub(r"\{[^}]+\}", "x", path) for path in app_resources] + ["/no-such-page"]


def _service_paths() -> list[str]:
    app = build_app(types.SimpleNamespace(settings=Settings(), checkpointer=None))  # type: ignore[arg-type]
    return _paths([r.canonical for r in app.router.resources()])


def _central_paths() -> list[str]:
    config = CentralConfig.model_validate({"vantages": [{"ledger": "sqlite:////none.db"}]})
    return _paths([r.canonical for r in build_central_app(Central(config)).router.resources()])


def _get(port: int, path: str, host: str | None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.putrequest("GET", path, skip_host=True)
        if host is not None:
            conn.putheader("Host", host)
        conn.endheaders()
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def _assert_guarded(port: int, paths: list[str], ours: list[str]) -> None:
    for path in paths:
        for host in FOREIGN:
            status, body = _get(port, path, host.format(port=port))
            assert status == 421, (path, host, status)
            assert b"vigie_" not in body, (path, host)
            assert b"<html" not in body, (path, host)
        status, _ = _get(port, path, None)
        assert status in {400, 421}, (path, "no Host header", status)
        for host in ours:
            status, _ = _get(port, path, host.format(port=port))
            assert status != 421, (path, host, status)


@pytest.mark.slow
def test_vigie_run_answers_only_its_own_host_names(tmp_path: Path) -> None:
    config = {
        "targets": [],
        "public_url": "https://vigie.example.org/statut/",
        "allowed_hosts": ["monitor.lan"],
    }
    paths = _service_paths()
    assert {"/metrics", "/healthz", "/"} <= set(paths)
    with run_service(config, tmp_path) as service:
        ours = [
            "127.0.0.1:{port}",
            "127.0.0.1",
            "localhost:{port}",
            "vigie.example.org",
            "monitor.lan:{port}",
            "MONITOR.LAN",
        ]
        _assert_guarded(service.port, paths, ours)
        status, body = _get(service.port, "/metrics", f"127.0.0.1:{service.port}")
        assert status == 200
        assert b"vigie_build_info" in body


@pytest.fixture
def central_port(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    config = tmp_path / "central.yaml"
    config.write_text(
        "vantages:\n"
        f"  - {{name: a, ledger: 'sqlite:///{tmp_path}/none.db'}}\n"
        f"listen: 127.0.0.1:{port}\n"
        "allowed_hosts: [centre.lan]\n",
        "utf-8",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter.cli", "central", "--config", str(config)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if _get(port, "/healthz", "127.0.0.1")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            process.kill()
            raise AssertionError(process.communicate()[1])
        yield port
    finally:
        process.terminate()
        process.communicate(timeout=20)


@pytest.mark.slow
def test_vigie_central_answers_only_its_own_host_names(central_port: int) -> None:
    paths = _central_paths()
    assert {"/", "/healthz"} <= set(paths)
    _assert_guarded(central_port, paths, ["127.0.0.1:{port}", "localhost", "centre.lan:{port}"])


class TestAllowList:
    def test_wildcard_listen_accepts_ip_literals_not_names(self) -> None:
        allow = HostAllowList("0.0.0.0", None, ["vigie"])
        assert allow.allows("10.1.2.3:9188")
        assert allow.allows("[fd00::5]:9188")
        assert allow.allows("vigie:9188")
        assert allow.allows("localhost")
        assert not allow.allows("rebind.attacker.example:9188")
        assert not allow.allows("")

    def test_specific_listen_address(self) -> None:
        allow = HostAllowList("[::1]", "https://statut.example.org:8443/", ())
        assert allow.allows("[::1]:9188")
        assert allow.allows("statut.example.org:8443")
        assert allow.allows("statut.example.org.")
        assert not allow.allows("10.1.2.3")
        assert not allow.allows("example.org")

    def test_bracketed_ipv6_in_the_list(self) -> None:
        allow = HostAllowList("127.0.0.1", None, ["[fd00::7]"])
        assert allow.allows("[fd00::7]:9188")

    def test_star_turns_the_check_off(self) -> None:
        assert HostAllowList("127.0.0.1", None, ["*"]).allows("anything.example")

    def test_config_refuses_a_malformed_entry(self) -> None:
        from pydantic import ValidationError

        with pytest.raises(ValidationError):
            Settings.model_validate({"allowed_hosts": ["bad host/"]})
