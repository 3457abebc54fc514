"""Two vantages on two networks: network namespaces A and B, the simulator in a third, S.

A and B each have their own veth link to S (and nothing else); the test reaches S through a
third link from the host to drive the simulator's faults. Each vantage's controls are the
simulator's admin server (another server in S), so cutting a vantage's link fails its target
and its controls together. Real `vigie run` processes write SQLite ledgers the test reads.
Needs root and `ip netns` (skipped otherwise); only addresses on links the test creates are
used, names are unique, everything is removed at the end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from evidence.ledger.backends import open_ledger
from evidence.outages.tracker import outages_from_entries
from exporter.central import Central, CentralConfig, Sighting, group_sightings
from simulator import SimulatorProcess

pytestmark = [pytest.mark.netns, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


def _free_octets(count: int) -> list[int]:
    used = _ip("-o", "addr").stdout
    octets: list[int] = []
    for _ in range(200):
        octet = secrets.randbelow(250) + 2
        if f" 10.201.{octet}." not in used and octet not in octets:
            octets.append(octet)
        if len(octets) == count:
            return octets
    pytest.skip("no free 10.201.x.0/30 subnets for the test links")


@dataclasses.dataclass
class Topology:
    """Namespaces and links: `sim_ip[v]` is the simulator's address as vantage v sees it."""

    token: str
    namespaces: dict[str, str]  # role (a, b, s) -> namespace name
    sim_ip: dict[str, str]  # a, b, host -> S's address on that link
    s_ifs: dict[str, str]  # a, b -> S's end of the vantage's link

    def cut(self, vantage: str, *, up: bool = False) -> None:
        """Unplug (or plug back) vantage's only link, at the simulator's end."""
        _ip(
            "netns",
            "exec",
            self.namespaces["s"],
            "ip",
            "link",
            "set",
            self.s_ifs[vantage],
            "up" if up else "down",
        )


@pytest.fixture
def topology() -> Iterator[Topology]:
    """Three namespaces and three /30 links (host-S, A-S, B-S); always removed."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces (ip netns)")
    if shutil.which("ip") is None:
        pytest.skip("needs the `ip` command (iproute2)")
    token = secrets.token_hex(3)
    namespaces = {role: f"vigie-v{role}-{token}" for role in ("a", "b", "s")}
    created: list[str] = []
    host_if = f"vh{token}"
    try:
        for name in namespaces.values():
            done = _ip("netns", "add", name, check=False)
            if done.returncode != 0:
                pytest.skip(f"cannot create a network namespace here: {done.stderr.strip()}")
            created.append(name)
            _ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        octets = _free_octets(3)
        sim_ip: dict[str, str] = {}
        s_ifs: dict[str, str] = {}
        for role, octet in zip(("host", "a", "b"), octets, strict=True):
            outer, inner = (
                (host_if, f"sh{token}")
                if role == "host"
                else (
                    f"v{role}{token}",
                    f"s{role}{token}",
                )
            )
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            _ip("link", "set", inner, "netns", namespaces["s"])
            if role != "host":
                _ip("link", "set", outer, "netns", namespaces[role])
            near = ["ip"] if role == "host" else ["ip", "netns", "exec", namespaces[role], "ip"]
            subprocess.run(
                [*near, "addr", "add", f"10.201.{octet}.1/30", "dev", outer],
                check=True,
                capture_output=True,
            )
            subprocess.run([*near, "link", "set", outer, "up"], check=True, capture_output=True)
            _ip(
                "netns",
                "exec",
                namespaces["s"],
                "ip",
                "addr",
                "add",
                f"10.201.{octet}.2/30",
                "dev",
                inner,
            )
            _ip("netns", "exec", namespaces["s"], "ip", "link", "set", inner, "up")
            sim_ip[role] = f"10.201.{octet}.2"
            if role != "host":
                s_ifs[role] = inner
        yield Topology(token, namespaces, sim_ip, s_ifs)
    finally:
        _ip("link", "del", host_if, check=False)
        for name in created:
            _ip("netns", "del", name, check=False)


@pytest.fixture
def simulator_in_s(topology: Topology, simulator_audit: Path) -> Iterator[SimulatorProcess]:
    """The simulator in namespace S, listening on all of S's addresses; driven from the host."""
    sim = SimulatorProcess(host="0.0.0.0")  # all of S's addresses: only the test's links
    sim.command = ["ip", "netns", "exec", topology.namespaces["s"], *sim.command]
    sim.start()
    try:
        sim.urls = {k: _retarget(v, topology.sim_ip["host"]) for k, v in sim.urls.items()}
        yield sim
    finally:
        sim.stop()


def _retarget(url: str, address: str) -> str:
    return url.replace("0.0.0.0", address) if isinstance(url, str) else url


@dataclasses.dataclass
class Vantage:
    """A `vigie run` inside a vantage namespace, with its ledger on the shared filesystem."""

    name: str
    state: Path
    process: subprocess.Popen[bytes]

    @property
    def ledger_url(self) -> str:
        return f"sqlite:///{self.state / 'ledger.db'}"

    def entries(self) -> list[dict[str, Any]]:
        """Every entry of the ledger so far (read-only)."""
        if not (self.state / "ledger.db").exists():
            return []
        with open_ledger(self.ledger_url, readonly=True) as ledger:
            return [json.loads(raw) for _, raw in ledger.iter_entries()]

    def log(self) -> str:
        return (self.state / "service.log").read_text("utf-8", "replace")


def _start_vantage(topology: Topology, sim: SimulatorProcess, role: str, tmp_path: Path) -> Vantage:
    address = topology.sim_ip[role]
    site = sim.urls["site_url"].replace(topology.sim_ip["host"], address).rstrip("/")
    admin = sim.urls["admin_url"].replace(topology.sim_ip["host"], address).rstrip("/")
    name = f"vantage-{role}"
    state = tmp_path / name
    state.mkdir()
    config = {
        "vantage": {"name": name, "operator": "Tests"},
        "user_agent": "Vigie-test/0.1 (+http://localhost; tests)",
        "defaults": {"interval": "0.5s", "timeout": "1.5s"},
        "min_interval": "0.2s",
        "targets": [{"id": "accueil", "kind": "http", "url": site + "/"}],
        "controls": [admin + "/faults", admin + "/requests"],
        "outages": {"confirm_after": 2, "recover_after": 2, "recheck": "0.3s"},
        "listen": "127.0.0.1:9188",  # inside the vantage's own namespace
        "ledger": {
            "url": f"sqlite:///{state / 'ledger.db'}",
            "artifacts": str(state / "artifacts"),
            "checkpoint_interval": "5s",
        },
        "signing": {"key": str(state / "vantage.key")},
    }
    path = state / "vigie.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    with (state / "service.log").open("ab") as log:
        process = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                topology.namespaces[role],
                sys.executable,
                "-m",
                "exporter.cli",
                "run",
                "--config",
                str(path),
            ],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    return Vantage(name, state, process)


@pytest.fixture
def vantages(
    topology: Topology, simulator_in_s: SimulatorProcess, tmp_path: Path
) -> Iterator[dict[str, Vantage]]:
    """`vigie run` in A and in B, each probing the simulator over its own link."""
    started: dict[str, Vantage] = {}
    try:
        for role in ("a", "b"):
            started[role] = _start_vantage(topology, simulator_in_s, role, tmp_path)
        yield started
    finally:
        for vantage in started.values():
            if vantage.process.poll() is None:
                vantage.process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    vantage.process.wait(timeout=20)
            if vantage.process.poll() is None:
                vantage.process.kill()
                vantage.process.wait()


def _wait(predicate: Callable[[], bool], what: str, vantages: dict[str, Vantage]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if predicate():
            return
        for vantage in vantages.values():
            assert vantage.process.poll() is None, f"{vantage.name} exited:\n{vantage.log()}"
        time.sleep(0.3)
    logs = "\n".join(v.log()[-2000:] for v in vantages.values())
    raise AssertionError(f"timed out waiting for {what}\n{logs}")


def _observations(vantage: Vantage, outcome: str | None = None) -> list[dict[str, Any]]:
    return [
        e
        for e in vantage.entries()
        if e.get("type") == "observation"
        and e.get("target_id") == "accueil"
        and (outcome is None or e.get("outcome") == outcome)
    ]


def _sightings(vantages: dict[str, Vantage]) -> list[Sighting]:
    return [
        Sighting(v.name, record)
        for v in vantages.values()
        for record in outages_from_entries(v.entries())
    ]


class TestVantagesOnTwoNetworks:
    """A cut link is the vantage's problem; a fault of the site is confirmed by both."""

    def test_cut_link_is_local_and_fault_is_corroborated(
        self,
        topology: Topology,
        simulator_in_s: SimulatorProcess,
        vantages: dict[str, Vantage],
    ) -> None:
        """Cutting A's link: A records vantage-offline, no outage anywhere; then a site fault
        is an outage seen by both vantages, and the central view counts two."""
        _wait(
            lambda: all(len(_observations(v, "ok")) >= 2 for v in vantages.values()),
            "both vantages to see the site up",
            vantages,
        )

        topology.cut("a")
        _wait(
            lambda: (
                len(_observations(vantages["a"], "vantage_offline")) >= 4
                and any(
                    e.get("type") == "vantage" and e.get("event") == "offline"
                    for e in vantages["a"].entries()
                )
            ),
            "vantage A to record its own network as offline",
            vantages,
        )
        assert _sightings(vantages) == []  # no outage, not at A, not at B
        assert _observations(vantages["b"], "vantage_offline") == []

        topology.cut("a", up=True)
        _wait(
            lambda: any(
                e.get("type") == "vantage" and e.get("event") == "online"
                for e in vantages["a"].entries()
            ),
            "vantage A back online",
            vantages,
        )

        simulator_in_s.set_fault("/", "http_500", "site")
        _wait(
            lambda: {s.vantage for s in _sightings(vantages)} == {"vantage-a", "vantage-b"},
            "an outage confirmed from both vantages",
            vantages,
        )
        groups = group_sightings(_sightings(vantages))
        assert [(g.target_id, g.vantages) for g in groups] == [
            ("accueil", ("vantage-a", "vantage-b"))
        ]
        central = Central(
            CentralConfig.model_validate(
                {"vantages": [{"ledger": v.ledger_url} for v in vantages.values()]}
            )
        )
        try:
            view = central.view()
        finally:
            central.close()
        assert [len(o.vantages) for o in view.outages] == [2]
        simulator_in_s.clear_faults()
