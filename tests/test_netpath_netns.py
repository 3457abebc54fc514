"""The network path is not the site: Happy Eyeballs and the vantage's own DNS resolver.

Each test builds its own network namespace with one veth pair (random names, IPv4 10.200.x.0/30
and IPv6 2001:db8:c0:x::/64 on that pair only) and `/etc/netns/<name>/` files (hosts, resolv.conf,
gai.conf) that `ip netns exec` mounts over `/etc` for the probe it runs inside. Nothing else is
used, and everything is removed afterwards. Needs root and `ip netns`; skipped otherwise.

- Dual stack: the host end answers HTTP on both addresses; one family is black-holed by a
  permanent neighbour entry to a MAC nobody has (every packet to that address silently
  vanishes, as on a broken IPv6 path). The check must succeed over the other family within the
  timeout, and the observation must say which address answered and how the other fared.
- DNS: a small DNS server (dnslib for the wire format) on the host end times out, refuses,
  answers NXDOMAIN or SERVFAIL in turn. Failures of the resolver itself are `vantage_offline`
  and never open an outage; NXDOMAIN and SERVFAIL for the target's name (the controls' names
  still resolve) are `dns_error` and do.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_netns import _Handler, _ip, _outages

dnslib = pytest.importorskip("dnslib")

pytestmark = [pytest.mark.netns, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
BLACK_HOLE_MAC = "02:00:5e:00:53:01"  # documentation range: no interface has it

# Runs inside the namespace: one HTTP check of argv[1] with the real probe, printed as JSON.
PROBE = r"""
import asyncio, json, sys
from probes.base import ProbeContext, ProbeSettings
from probes.http import HttpProbe
from config.targets import Target

async def main():
    probe = HttpProbe(ProbeSettings(vantage="netns", user_agent="Vigie-test/1.0", environment={}))
    target = Target(id="site", name="site", kind="http", url=sys.argv[1])
    obs = await probe.check(ProbeContext(target=target, timeout=float(sys.argv[2])))
    print(json.dumps(obs.to_dict()))

asyncio.run(main())
"""


@dataclasses.dataclass
class Net:
    """A namespace linked to the host by one veth pair, with HTTP servers on the host end."""

    namespace: str
    host_if: str
    ns_if: str
    host_ip4: str
    host_ip6: str
    port: int
    etc: Path
    status: dict[str, int]

    def ns(self, *args: str) -> None:
        _ip("netns", "exec", self.namespace, *args)

    def black_hole(self, address: str) -> None:
        """Every packet from the namespace to `address` silently disappears."""
        self.ns("ip", "neigh", "replace", address, "lladdr", BLACK_HOLE_MAC, "dev", self.ns_if)
        self.ns("ip", "neigh", "change", address, "lladdr", BLACK_HOLE_MAC, "dev", self.ns_if)

    def write_etc(self, name: str, text: str) -> None:
        (self.etc / name).write_text(text, "utf-8")

    def probe(self, url: str, timeout: float) -> dict[str, Any]:
        done = subprocess.run(
            ["ip", "netns", "exec", self.namespace, sys.executable, "-c", PROBE, url, str(timeout)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        return result


class _Server6(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6


class NetUnavailableError(Exception):
    """This machine cannot build the test network (not root, no iproute2...)."""


def _free_octet() -> int:
    used = _ip("-o", "addr").stdout
    for _ in range(50):
        octet = secrets.randbelow(250) + 2
        if f" 10.200.{octet}." not in used and f"2001:db8:c0:{octet:x}::" not in used:
            return octet
    raise NetUnavailableError("no free test subnet for the veth pair")


@contextlib.contextmanager
def make_net() -> Iterator[Net]:
    """The namespace, veth pair, /etc/netns files and servers; all removed on exit.

    Raises `NetUnavailableError` when this machine cannot create them (not root, no iproute2).
    """
    if os.geteuid() != 0:
        raise NetUnavailableError("needs root to create a network namespace (ip netns)")
    if shutil.which("ip") is None:
        raise NetUnavailableError("needs the `ip` command (iproute2)")
    token = secrets.token_hex(3)
    namespace, host_if, ns_if = f"vigie-test-{token}", f"vh{token}", f"vn{token}"
    etc = Path("/etc/netns") / namespace
    created = _ip("netns", "add", namespace, check=False)
    if created.returncode != 0:
        raise NetUnavailableError(
            f"cannot create a network namespace here: {created.stderr.strip()}"
        )
    servers: list[http.server.ThreadingHTTPServer] = []
    try:
        etc.mkdir(parents=True)
        octet = _free_octet()
        host4, ns4 = f"10.200.{octet}.1", f"10.200.{octet}.2"
        host6, ns6 = f"2001:db8:c0:{octet:x}::1", f"2001:db8:c0:{octet:x}::2"
        _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _ip("link", "set", ns_if, "netns", namespace)
        _ip("addr", "add", f"{host4}/30", "dev", host_if)
        _ip("-6", "addr", "add", f"{host6}/64", "dev", host_if, "nodad")
        _ip("link", "set", host_if, "up")
        net = Net(namespace, host_if, ns_if, host4, host6, 0, etc, {})
        net.ns("ip", "addr", "add", f"{ns4}/30", "dev", ns_if)
        net.ns("ip", "-6", "addr", "add", f"{ns6}/64", "dev", ns_if, "nodad")
        net.ns("ip", "link", "set", ns_if, "up")
        net.ns("ip", "link", "set", "lo", "up")
        handler = type("Handler", (_Handler,), {"status": net.status})
        server4 = http.server.ThreadingHTTPServer((host4, 0), handler)
        servers.append(server4)
        net.port = int(server4.server_address[1])
        servers.append(_Server6((host6, net.port), handler))  # same port on both addresses
        for server in servers:
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
        yield net
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        _ip("link", "del", host_if, check=False)
        _ip("netns", "del", namespace, check=False)
        shutil.rmtree(etc, ignore_errors=True)


@pytest.fixture
def net() -> Iterator[Net]:
    try:
        with make_net() as built:
            yield built
    except NetUnavailableError as exc:
        pytest.skip(str(exc))


def dual_stack(net: Net, *, first: str) -> str:
    """`dual.test` names both host addresses; `first` (ipv4|ipv6) is the one tried first."""
    net.write_etc(
        "hosts", f"127.0.0.1 localhost\n{net.host_ip6} dual.test\n{net.host_ip4} dual.test\n"
    )
    ipv4_precedence = 100 if first == "ipv4" else 10
    net.write_etc(
        "gai.conf",
        f"precedence ::1/128 50\nprecedence ::/0 40\nprecedence ::ffff:0:0/96 {ipv4_precedence}\n",
    )
    return f"http://dual.test:{net.port}/site"


class TestHappyEyeballs:
    @pytest.mark.parametrize(
        ("first", "dropped", "answering"),
        [("ipv6", "host_ip6", "host_ip4"), ("ipv4", "host_ip4", "host_ip6")],
        ids=["ipv6-black-hole", "ipv4-black-hole"],
    )
    def test_black_holed_first_family_falls_back_to_the_other(
        self, net: Net, first: str, dropped: str, answering: str
    ) -> None:
        """The first address drops every packet: the other family answers well within the
        timeout (a sequential connect would spend the whole deadline on the first)."""
        url = dual_stack(net, first=first)
        net.black_hole(getattr(net, dropped))
        obs = net.probe(url, timeout=5.0)
        assert obs["outcome"] == "ok", obs["error"]
        assert obs["remote_ip"] == getattr(net, answering)
        (connection,) = obs["environment"]["connections"]
        assert connection["answered"] == getattr(net, answering)
        attempts = {a["ip"]: a for a in connection["attempts"]}
        assert list(attempts) == [getattr(net, dropped), getattr(net, answering)]
        assert attempts[getattr(net, dropped)]["result"] == "abandoned"
        assert attempts[getattr(net, answering)]["result"] == "connected"
        # the second attempt started after the RFC 8305 delay, not after a timeout
        assert attempts[getattr(net, answering)]["after_s"] < 2.0
        assert obs["duration_s"] < 5.0

    def test_refused_family_is_recorded_and_the_other_answers(self, net: Net) -> None:
        """An address that refuses at once is recorded as refused; the next one answers."""
        url = dual_stack(net, first="ipv6").replace(f":{net.port}/", f":{net.port + 1}/")
        obs = net.probe(url, timeout=5.0)
        assert obs["outcome"] == "connect_error"  # nothing listens on port+1 at all
        attempts = obs["environment"]["connections"][0]["attempts"]
        assert [a["result"] for a in attempts] == ["refused", "refused"]
        assert "tried 2 addresses" in obs["error"]


# --- DNS ---------------------------------------------------------------------------------------


class DnsServer:
    """Answers for `*.test` on UDP port 53 of the host end, in the mode the test sets."""

    def __init__(self, address: str, names: dict[str, str]) -> None:
        self.mode = "ok"
        self.names = names
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 53))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        rcode = dnslib.RCODE
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            try:
                request = dnslib.DNSRecord.parse(data)
            except dnslib.DNSError:
                continue
            qname = str(request.q.qname).rstrip(".")
            reply = request.reply()
            mode = self.mode
            if mode == "timeout":
                continue  # the resolver never answers
            if mode == "refused":
                reply.header.rcode = rcode.REFUSED
            elif qname == "site.test" and mode == "nxdomain":
                reply.header.rcode = rcode.NXDOMAIN
            elif qname == "site.test" and mode == "servfail":
                reply.header.rcode = rcode.SERVFAIL
            elif qname in self.names and request.q.qtype == dnslib.QTYPE.A:
                reply.add_answer(dnslib.RR(qname, rdata=dnslib.A(self.names[qname]), ttl=0))
            elif qname not in self.names:
                reply.header.rcode = rcode.NXDOMAIN
            self.sock.sendto(reply.pack(), peer)

    def close(self) -> None:
        self.sock.close()


class TestResolverIsNotTheSite:
    def test_resolver_failures_are_the_vantage_s_authoritative_ones_the_target_s(
        self, net: Net
    ) -> None:
        from tests.test_netns import Cut, Runner

        dns = DnsServer(net.host_ip4, {"site.test": net.host_ip4, "control.test": net.host_ip4})
        try:
            net.write_etc(
                "resolv.conf", f"nameserver {net.host_ip4}\noptions timeout:1 attempts:1\n"
            )
            net.write_etc("hosts", "127.0.0.1 localhost\n")
            settings: dict[str, Any] = {
                "vantage": {"name": "netns"},
                "defaults": {"interval": "1s", "timeout": "4s"},
                "targets": [
                    {"id": "site", "kind": "http", "url": f"http://site.test:{net.port}/site"}
                ],
                "controls": [f"http://control.test:{net.port}/control"],
                "outages": {"confirm_after": 2, "recover_after": 1, "recheck": "10ms"},
            }
            cut = Cut(net.namespace, net.host_if, net.host_ip4, net.status)
            runner = Runner(cut, settings)
            plan = ["ok", "timeout", "timeout", "refused", "refused", "ok"]
            plan += ["nxdomain", "nxdomain", "ok", "servfail", "servfail", "ok"]
            try:
                for index, mode in enumerate(plan):
                    dns.mode = mode
                    if index == 6:
                        # a control check started while the resolver failed (up to its 1 s
                        # timeout) must end first: the service shares an in-flight check
                        time.sleep(2.5)
                    runner.check(1)
                # names resolve (say, from a cache) but no control site answers: no verdict
                net.status["/control"] = 503
                dns.mode = "nxdomain"
                time.sleep(1.5)  # the same: no control check started before the cut in flight
                runner.check(1)
            finally:
                err = runner.stop()
        finally:
            dns.close()
        observations = runner.observations("site")
        outcomes = [o["outcome"] for o in observations]
        assert outcomes == [
            "ok",
            "vantage_offline",
            "vantage_offline",
            "vantage_offline",
            "vantage_offline",
            "ok",
            "dns_error",
            "dns_error",
            "ok",
            "dns_error",
            "dns_error",
            "ok",
            "vantage_offline",
        ], err
        assert observations[-1]["environment"]["dns"]["verdict"] == "network"
        assert "all controls failed" in observations[-1]["error"]
        for obs in observations[1:5]:
            dns_facts = obs["environment"]["dns"]
            assert dns_facts["verdict"] == "resolver"
            assert dns_facts["resolvers"] == [net.host_ip4]  # the resolver asked is recorded
            assert "DNS resolver failed" in obs["error"]
        nxdomain, servfail = (
            observations[6]["environment"]["dns"],
            observations[9]["environment"]["dns"],
        )
        assert nxdomain["verdict"] == servfail["verdict"] == "target"
        assert nxdomain["error"] in {"EAI_NONAME", "EAI_NODATA"}
        assert servfail["error"] in {"EAI_AGAIN", "EAI_FAIL"}
        tracker = _outages(settings, runner.entries)
        records = [r for r in tracker.records() if r.kind == "down"]
        # two outages: NXDOMAIN, then SERVFAIL; none from the resolver's own failures
        assert len(records) == 2, records
        assert all(r.ended_at is not None for r in records)


class TestVigieCheckOffline:
    def test_vigie_check_without_network_blames_the_vantage(self, net: Net, tmp_path: Path) -> None:
        """`vigie check` with the vantage's resolver unreachable asks the controls and says the
        probe's own connection is down, instead of a dns_error of the target (issue 17 #5)."""
        net.write_etc("resolv.conf", "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        net.write_etc("hosts", "127.0.0.1 localhost\n")
        config = tmp_path / "vigie.yaml"
        config.write_text(
            "targets:\n"
            f"  - {{id: site, name: Site, kind: http, url: 'http://site.test:{net.port}/'}}\n"
            f"controls: ['http://control.test:{net.port}/control']\n"
            "defaults: {timeout: 5s}\n",
            "utf-8",
        )
        command = ["check", "--config", str(config), "--format", "json"]
        done = subprocess.run(
            ["ip", "netns", "exec", net.namespace, sys.executable, "-m", "exporter.cli", *command],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            check=False,
        )
        assert done.returncode == 1, done.stderr
        (obs,) = json.loads(done.stdout)
        assert obs["outcome"] == "vantage_offline"
        assert obs["environment"]["dns"]["verdict"] == "resolver"
        assert obs["environment"]["dns"]["resolvers"] == ["127.0.0.1"]
        assert "connexion de cette sonde semble coupée" in done.stderr
