"""The read-only proxy's rule, byte by byte, without a browser: what passes, what is refused.

A raw client speaks to the proxy on loopback; the target is a local server that records every
connection and every byte. A refused request must leave the target untouched (no connection).
"""

from __future__ import annotations

import array
import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest

from probes.browser_runtime import ConfinementUnavailableError, _Confinement
from probes.wireproxy import WireProxy, WireSession
from tests.hostile import Client, HostileServer, respond


@pytest.fixture
def target() -> Iterator[HostileServer]:
    def handler(client: Client) -> None:
        head = client.read_request()
        if head:
            client.send(respond(body=b"bonjour"))

    with HostileServer(handler) as server:
        yield server


class Proxy:
    """A WireProxy on two loopback sockets (default port, one session) run in its own loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        socks = []
        for _ in range(2):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            socks.append(sock)
        self.proxy = WireProxy()
        self.loop.run_until_complete(self.proxy.serve(socks))
        self.session: WireSession = self.proxy.open_session()

    def exchange(self, data: bytes, port: int | None = None, wait: float = 1.0) -> bytes:
        """Send `data` on a new connection; everything the proxy answers within `wait`."""

        async def talk() -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", port or self.session.port)
            writer.write(data)
            await writer.drain()
            got = b""
            try:
                async with asyncio.timeout(wait):
                    while chunk := await reader.read(65536):
                        got += chunk
            except (TimeoutError, ConnectionResetError):
                pass  # the proxy closed (a reset: it did not read what we sent)
            writer.close()
            return got

        return self.loop.run_until_complete(talk())

    def close(self) -> None:
        async def drain() -> None:
            await self.proxy.aclose()

        self.loop.run_until_complete(drain())
        self.loop.close()


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    made = Proxy()
    try:
        yield made
    finally:
        made.close()


CLOSE = "Connection: close\r\n"  # the proxy then closes after its answer: no waiting


def _get(url: str, extra: str = "", method: str = "GET") -> bytes:
    host = url.split("/")[2]
    return f"{method} {url} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()


class TestRule:
    def test_get_and_head_pass(self, proxy: Proxy, target: HostileServer) -> None:
        """GET and HEAD reach the target and its answer comes back."""
        answer = proxy.exchange(_get(target.url("/a"), CLOSE), wait=5)
        assert answer.startswith(b"HTTP/1.1 200")
        assert answer.endswith(b"bonjour")
        answer = proxy.exchange(_get(target.url("/b"), CLOSE, method="HEAD"), wait=5)
        assert answer.startswith(b"HTTP/1.1 200")
        assert [head.split(b"\r\n")[0] for head in target.requests] == [
            b"GET /a HTTP/1.1",
            b"HEAD /b HTTP/1.1",
        ]
        assert proxy.session.blocked == []

    @pytest.mark.parametrize(
        ("request_text", "method"),
        [
            ("POST {url} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 6\r\n\r\nsecret", "POST"),
            ("PUT {url} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n\r\n", "PUT"),
            ("DELETE {url} HTTP/1.1\r\nHost: {host}\r\n\r\n", "DELETE"),
            ("OPTIONS {url} HTTP/1.1\r\nHost: {host}\r\n\r\n", "OPTIONS"),
            ("GET {url} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 6\r\n\r\nsecret", "GET"),
            (
                (
                    "GET {url} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "6\r\nsecret\r\n0\r\n\r\n"
                ),
                "GET",
            ),
            (
                (
                    "GET {url} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n"
                ),
                "WEBSOCKET",
            ),
        ],
    )
    def test_writes_never_reach_the_target(
        self, proxy: Proxy, target: HostileServer, request_text: str, method: str
    ) -> None:
        """Other methods, a GET with a body (by length or chunked) and a WebSocket upgrade are
        answered 403 by the proxy, listed, and the target sees no connection at all."""
        url = target.url("/w")
        data = request_text.format(url=url, host=url.split("/")[2]).encode()
        answer = proxy.exchange(data)
        assert answer.startswith(b"HTTP/1.1 403"), answer
        assert target.connections == 0
        assert [b.method for b in proxy.session.blocked] == [method]

    def test_tunnel_that_is_neither_tls_nor_http(self, proxy: Proxy, target: HostileServer) -> None:
        """CONNECT followed by raw bytes (TURN over TCP, say): refused, nothing sent."""
        authority = f"127.0.0.1:{target.port}"
        data = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode()
        proxy.exchange(data + b"\x00\x03\x00\x00TURN-ALLOCATE")
        assert target.connections == 0
        assert [(b.method, b.url) for b in proxy.session.blocked] == [("CONNECT", authority)]

    def test_plain_http_in_a_tunnel_follows_the_same_rule(
        self, proxy: Proxy, target: HostileServer
    ) -> None:
        """How Chromium sends ws:// through a proxy: CONNECT, then HTTP inside. A POST there is
        refused like anywhere else."""
        authority = f"127.0.0.1:{target.port}"
        data = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode()
        proxy.exchange(data + b"POST /w HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nz")
        assert target.connections == 0
        assert [(b.method, b.url) for b in proxy.session.blocked] == [("POST", target.url("/w"))]

    def test_no_context_no_way_out(self, proxy: Proxy, target: HostileServer) -> None:
        """The port of no context (the browser's default one) forwards nothing, not even GET."""
        answer = proxy.exchange(_get(target.url("/a")), port=proxy.proxy.ports[0])
        assert answer == b""
        assert target.connections == 0

    def test_keep_alive(self, proxy: Proxy, target: HostileServer) -> None:
        """Two GETs on one browser connection are both answered (no reconnect per request)."""
        answer = proxy.exchange(_get(target.url("/1")) + _get(target.url("/2"), CLOSE), wait=5)
        assert answer.count(b"HTTP/1.1 200") == 2
        assert proxy.session.forwarded == 2

    def test_unreachable_target_is_recorded(self, proxy: Proxy) -> None:
        """A target that refuses connections: the browser's connection closes and the session
        says why, for the observation's outcome."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        answer = proxy.exchange(_get(f"http://127.0.0.1:{port}/"))
        assert answer == b""
        failure = proxy.session.failure(f"http://127.0.0.1:{port}/x")
        assert failure is not None
        assert failure[0].value == "connect_error"


class TestLauncherCheck:
    def test_sockets_from_the_host_namespace_are_refused(self) -> None:
        """Vigie checks that the process that hands it the proxy's sockets lives in another
        network namespace: a process in Vigie's own namespace (a launcher that did not, or
        could not, unshare; or an impostor on the channel) is refused."""
        with _Confinement("/bin/true", 1) as confinement:

            def impostor() -> None:
                with (
                    socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener,
                    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as channel,
                ):
                    listener.bind(("127.0.0.1", 0))
                    listener.listen()
                    channel.connect(str(confinement.channel))
                    rights = array.array("i", [listener.fileno()])
                    port = listener.getsockname()[1]
                    channel.sendmsg(
                        [f"ok root {port}".encode()],
                        [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)],
                    )

            thread = threading.Thread(target=impostor)
            thread.start()
            with pytest.raises(ConfinementUnavailableError, match="network namespace of its own"):
                confinement.receive()
            thread.join(10)


class TestCase:
    def test_a_lower_case_get_goes_out_as_get(self, proxy: Proxy, target: HostileServer) -> None:
        """The method the target receives is the one the rule allowed, in upper case."""
        proxy.exchange(_get(target.url("/a"), CLOSE, method="get"), wait=5)
        assert [head.split(b" ")[0] for head in target.requests] == [b"GET"]
