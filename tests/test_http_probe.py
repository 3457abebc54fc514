"""Tests of the HTTP probe against misbehaving loopback servers (no network beyond 127.0.0.1/::1).

Each outcome class is provoked by a real server; nothing here may reach another machine.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import hashlib
import socket
import ssl
import zlib
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
import uvloop

from config.targets import Target
from config.vocabulary import Outcome
from probes.base import ProbeContext, ProbeSettings
from probes.guard import ReadOnlyGuard
from probes.http import HttpCheckResult, HttpProbe
from probes.httpclient import Limits, body_text_contains
from probes.observation import BlockedRequest, Observation
from simulator.tls import make_tls_material
from tests.hostile import Client, HostileServer, respond

T = TypeVar("T")
UA = "Vigie-test/1.0 (+https://example.invalid/vigie)"
PAGE = "<html><body>Bienvenue sur le site des étrangers en France</body></html>".encode()
ENV = {"vantage": "test", "proxy": None}


def run(coro: Coroutine[Any, Any, T], loop: str = "asyncio") -> T:
    """Run `coro` on a fresh event loop of the given kind."""
    if loop == "uvloop":
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)
    return asyncio.run(coro)


def target(url: str, **fields: Any) -> Target:
    """An http target for `url`."""
    return Target(id="t", kind="http", url=url, **fields)


async def local_resolver(host: str, port: int) -> list[Any]:
    """Resolve like the system, but fail names under the reserved .invalid TLD locally.

    The system resolver is not on this machine: tests must not send it queries.
    """
    if host.endswith(".invalid"):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    loop = asyncio.get_running_loop()
    return await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)


def check(
    url: str,
    *,
    timeout: float = 5.0,
    guard: ReadOnlyGuard | None = None,
    ssl_context: ssl.SSLContext | None = None,
    limits: Limits | None = None,
    loop: str = "asyncio",
    **fields: Any,
) -> Observation:
    """One probe run of `url` with a fresh probe."""
    probe = HttpProbe(
        ProbeSettings(vantage="test", user_agent=UA, environment=ENV),
        ssl_context=ssl_context,
        limits=limits,
        resolver=local_resolver,
    )
    ctx = ProbeContext(
        target=target(url, **fields), timeout=timeout, guard=guard or ReadOnlyGuard()
    )

    async def go() -> Observation:
        try:
            return await probe.check(ctx)
        finally:
            await probe.aclose()

    return run(go(), loop)


def serve(handler: Callable[[Client], None], **kwargs: Any) -> HostileServer:
    """A started hostile server (use as a context manager)."""
    return HostileServer(handler, **kwargs)


def answer(response: bytes) -> Callable[[Client], None]:
    """A handler that reads the request and sends `response`, then closes."""

    def handler(client: Client) -> None:
        client.read_request()
        client.send(response)

    return handler


def free_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RecordingGuard(ReadOnlyGuard):
    """A guard that remembers every request it was asked about."""

    def __init__(self, refuse: Callable[[str, str], bool] = lambda _m, _u: False) -> None:
        super().__init__()
        self.asked: list[tuple[str, str]] = []
        self._refuse = refuse

    def allows(self, method: str, url: str) -> bool:
        """Record the question; refuse when `refuse` says so, else defer to the real guard."""
        self.asked.append((method, url))
        if self._refuse(method, url):
            with self._lock:
                self._blocked.append(BlockedRequest(method=method, url=url))
            return False
        return super().allows(method, url)


# --- certificates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certs:
    """A test CA and server contexts for good and bad certificates."""

    client: ssl.SSLContext  # trusts the test CA
    good: ssl.SSLContext
    expired: ssl.SSLContext
    wrong_host: ssl.SSLContext
    self_signed: ssl.SSLContext
    good_fingerprint: str
    self_signed_fingerprint: str


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """A throw-away CA, a good loopback certificate and three bad ones (the simulator's)."""
    material = make_tls_material(tmp_path_factory.mktemp("certs"), "127.0.0.1")
    client = ssl.create_default_context(cadata=material.ca_pem.decode("ascii"))
    client.set_alpn_protocols(["http/1.1"])
    return Certs(
        client=client,
        good=material.good,
        expired=material.bad["expired"],
        wrong_host=material.bad["hostname"],
        self_signed=material.bad["self_signed"],
        good_fingerprint=material.fingerprints["good"],
        self_signed_fingerprint=material.fingerprints["self_signed"],
    )


@pytest.fixture
def page_server() -> Iterator[HostileServer]:
    """A well-behaved server answering PAGE with a Content-Length."""
    headers = (("Content-Type", "text/html; charset=utf-8"),)
    with serve(answer(respond(body=PAGE, headers=headers))) as server:
        yield server


# --- tests --------------------------------------------------------------------------------------


class TestSuccessfulCheck:
    """A healthy answer is recorded completely."""

    def test_ok_with_all_facts(self, page_server: HostileServer) -> None:
        """A 200 page that contains the expected text gives `ok` with phases, hash and facts."""
        obs = check(page_server.url(), expect={"contains": "étrangers"})
        assert obs.outcome is Outcome.OK
        assert obs.success
        assert obs.error is None
        assert set(obs.phases) == {"resolve", "connect", "tls", "processing", "transfer"}
        assert obs.phases["connect"] > 0
        assert obs.phases["processing"] > 0
        assert obs.phases["tls"] == 0.0
        assert obs.duration_s >= sum(obs.phases.values()) * 0.99
        assert obs.http_status == 200
        assert obs.redirects == 0
        assert obs.final_url == page_server.url()
        assert obs.body_sha256 == hashlib.sha256(PAGE).hexdigest()
        assert obs.body_bytes == len(PAGE)
        assert obs.remote_ip == "127.0.0.1"
        assert obs.kind == "http"
        assert obs.vantage == "test"
        assert obs.target_id == "t"
        assert obs.started_at.endswith("Z")
        assert "T" in obs.started_at
        assert obs.environment["vantage"] == "test"
        assert obs.environment["resolved_ips"] == ["127.0.0.1"]
        assert obs.environment["fresh_connection"] is True
        assert obs.tls is None
        Observation.from_dict(obs.to_dict())  # round-trips through the ledger form

    def test_request_headers(self, page_server: HostileServer) -> None:
        """The request has the configured User-Agent, Connection: close and gzip/deflate only."""
        check(page_server.url("/a/b?x=1"))
        request = page_server.requests[0].decode("latin-1")
        assert request.startswith("GET /a/b?x=1 HTTP/1.1\r\n")
        assert f"\r\nUser-Agent: {UA}\r\n" in request
        assert "\r\nConnection: close\r\n" in request
        assert f"\r\nHost: 127.0.0.1:{page_server.port}\r\n" in request
        assert "\r\nAccept-Encoding: gzip, deflate\r\n" in request
        assert "br" not in request.split("Accept-Encoding:")[1].split("\r\n")[0]
        assert "cookie" not in request.lower()

    def test_fresh_connection_per_check(self, page_server: HostileServer) -> None:
        """Each check opens its own connection, so connect time is measured every time."""
        probe = HttpProbe(ProbeSettings(vantage="test", user_agent=UA, environment=ENV))
        ctx = ProbeContext(target=target(page_server.url()), timeout=5)

        async def twice() -> list[Observation]:
            return [await probe.check(ctx), await probe.check(ctx)]

        results = run(twice())
        assert [o.outcome for o in results] == [Outcome.OK, Outcome.OK]
        assert page_server.connections == 2
        assert all(o.phases["connect"] > 0 for o in results)

    def test_processing_measures_server_delay(self) -> None:
        """A 300 ms pause before the first byte shows up in `processing`, not elsewhere."""

        def slow(client: Client) -> None:
            client.read_request()
            client.sleep(0.3)
            client.send(respond(body=PAGE))

        with serve(slow) as server:
            obs = check(server.url())
        assert obs.outcome is Outcome.OK
        assert 0.25 <= obs.phases["processing"] <= 1.0
        assert obs.phases["transfer"] < 0.25
        assert obs.duration_s >= obs.phases["processing"]

    def test_chunked_body(self) -> None:
        """A chunked body (with extensions and trailers) is reassembled before hashing."""
        raw = (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;ext=1\r\nhello\r\n7\r\n world!\r\n0\r\nX-Trailer: yes\r\n\r\n"
        )
        with serve(answer(raw)) as server:
            obs = check(server.url(), expect={"contains": "world"})
        assert obs.outcome is Outcome.OK
        assert obs.body_sha256 == hashlib.sha256(b"hello world!").hexdigest()
        assert obs.body_bytes == 12

    def test_body_until_close(self) -> None:
        """Without Content-Length or chunking, the body runs until the server closes."""
        with serve(answer(b"HTTP/1.0 200 OK\r\n\r\n" + PAGE)) as server:
            obs = check(server.url())
        assert obs.outcome is Outcome.OK
        assert obs.body_bytes == len(PAGE)

    def test_gzip_decoded(self) -> None:
        """A gzip body is decoded: text matched, size and hash taken on the decoded bytes."""
        body = gzip.compress(PAGE)
        with serve(answer(respond(body=body, headers=(("Content-Encoding", "gzip"),)))) as server:
            obs = check(server.url(), expect={"contains": "étrangers"})
        assert obs.outcome is Outcome.OK
        assert obs.body_bytes == len(PAGE)
        assert obs.body_sha256 == hashlib.sha256(PAGE).hexdigest()

    @pytest.mark.parametrize("wbits", [15, -15], ids=["zlib", "raw"])
    def test_deflate_decoded(self, wbits: int) -> None:
        """A deflate body is decoded whether or not the server wraps it in a zlib header."""
        compressor = zlib.compressobj(wbits=wbits)
        body = compressor.compress(PAGE) + compressor.flush()
        headers = (("Content-Encoding", "deflate"),)
        with serve(answer(respond(body=body, headers=headers))) as server:
            obs = check(server.url())
        assert obs.outcome is Outcome.OK
        assert obs.body_sha256 == hashlib.sha256(PAGE).hexdigest()

    def test_head_reads_no_body(self) -> None:
        """HEAD is sent as HEAD and its Content-Length is not waited for."""

        def head(client: Client) -> None:
            client.read_request()
            client.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n")
            client.sleep(10)  # keep the connection open: the probe must not wait for a body

        with serve(head) as server:
            obs = check(server.url(), method="HEAD", timeout=3)
        assert obs.outcome is Outcome.OK
        assert obs.body_bytes == 0
        assert obs.duration_s < 3
        assert server.requests[0].startswith(b"HEAD / HTTP/1.1\r\n")

    def test_interim_responses_skipped(self) -> None:
        """1xx interim responses are skipped; the final status counts."""
        raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        with serve(answer(raw + respond(body=PAGE))) as server:
            obs = check(server.url())
        assert obs.outcome is Outcome.OK
        assert obs.http_status == 200

    def test_declared_charset(self) -> None:
        """Expected text is matched on the body decoded with its declared charset."""
        body = "Accueil des étrangers".encode("latin-1")
        headers = (("Content-Type", "text/html; charset=ISO-8859-1"),)
        with serve(answer(respond(body=body, headers=headers))) as server:
            obs = check(server.url(), expect={"contains": "étrangers"})
        assert obs.outcome is Outcome.OK

    def test_other_expected_status(self) -> None:
        """A status listed in `expect.status` (401 for a live API) counts as success."""
        with serve(answer(respond("401 Unauthorized", b"{}"))) as server:
            obs = check(server.url(), expect={"status": [401, 403]})
        assert obs.outcome is Outcome.OK
        assert obs.http_status == 401

    def test_ipv6_loopback(self) -> None:
        """An IPv6 literal URL is probed over ::1."""
        try:
            server = serve(answer(respond(body=PAGE)), host="::1")
        except OSError:
            pytest.skip("no IPv6 loopback on this machine")
        with server:
            obs = check(server.url())
        assert obs.outcome is Outcome.OK
        assert obs.remote_ip == "::1"


class TestFailureOutcomes:
    """Each way a target can fail gets its own outcome and a short, one-line error."""

    def test_dns_error(self) -> None:
        """A name that cannot resolve is a dns_error naming the host (resolved locally)."""
        obs = check("http://vigie-probe-test.invalid/")
        assert obs.outcome is Outcome.DNS_ERROR
        assert not obs.success
        assert "vigie-probe-test.invalid" in (obs.error or "")
        assert obs.phases["connect"] == 0.0

    def test_connection_refused(self) -> None:
        """Nothing listening on the port is a connect_error saying 'refused'."""
        obs = check(f"http://127.0.0.1:{free_port()}/")
        assert obs.outcome is Outcome.CONNECT_ERROR
        assert "refused" in (obs.error or "")
        # the attempt is recorded (one address: no race, a direct connect)
        (connection,) = obs.environment["connections"]
        assert connection["answered"] is None
        assert [a["result"] for a in connection["attempts"]] == ["refused"]
        assert connection["attempts"][0]["ip"] == "127.0.0.1"

    def test_reset_before_response(self) -> None:
        """A reset before any response byte is a connect_error."""

        def reset(client: Client) -> None:
            client.read_request()
            client.reset()

        with serve(reset) as server:
            obs = check(server.url())
        assert obs.outcome is Outcome.CONNECT_ERROR
        assert "reset" in (obs.error or "")

    def test_closed_without_response(self) -> None:
        """A server that hangs up without answering is a connect_error."""

        def hang_up(client: Client) -> None:
            client.read_request()

        with serve(hang_up) as server:
            obs = check(server.url())
        assert obs.outcome is Outcome.CONNECT_ERROR
        assert "without sending a response" in (obs.error or "")

    def test_reset_mid_body(self) -> None:
        """A reset in the middle of the body is a protocol_error naming the reset."""

        def cut(client: Client) -> None:
            client.read_request()
            client.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 100)
            client.sleep(0.1)
            client.reset()

        with serve(cut) as server:
            obs = check(server.url())
        assert obs.outcome is Outcome.PROTOCOL_ERROR
        assert "reset" in (obs.error or "")
        assert obs.http_status == 200

    def test_closed_mid_body(self) -> None:
        """A body shorter than its Content-Length is a protocol_error with the byte counts."""
        with serve(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 100)) as s:
            obs = check(s.url())
        assert obs.outcome is Outcome.PROTOCOL_ERROR
        assert "100 of 1000" in (obs.error or "")

    @pytest.mark.parametrize(
        "raw",
        [
            b"SSH-2.0-OpenSSH_9.2\r\n",
            b"HTTP/1.1 2OO OK\r\n\r\n",
            b"HTTP/2 200\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad Header Line\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 3\r\n\r\nabc",
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc",
        ],
        ids=[
            "not-http",
            "bad-status",
            "http2",
            "bad-header",
            "bad-length",
            "bad-chunk",
            "brotli",
            "bad-gzip",
        ],
    )
    def test_protocol_errors(self, raw: bytes) -> None:
        """Responses that break HTTP/1.1 framing or encoding are protocol_errors."""
        with serve(answer(raw)) as server:
            obs = check(server.url(), timeout=3)
        assert obs.outcome is Outcome.PROTOCOL_ERROR, obs.error
        assert obs.error
        assert "\n" not in obs.error
        assert len(obs.error) < 200

    def test_unexpected_status(self) -> None:
        """A status outside `expect.status` is http_status; the body is still hashed."""
        body = b"<h1>Site en maintenance</h1>"
        with serve(answer(respond("503 Service Unavailable", body))) as server:
            obs = check(server.url())
        assert obs.outcome is Outcome.HTTP_STATUS
        assert obs.http_status == 503
        assert obs.error == "HTTP 503 Service Unavailable (expected 200)"
        assert obs.body_sha256 == hashlib.sha256(body).hexdigest()

    def test_missing_text(self, page_server: HostileServer) -> None:
        """A page without the expected text is a content_mismatch."""
        obs = check(page_server.url(), expect={"contains": "Se connecter"})
        assert obs.outcome is Outcome.CONTENT_MISMATCH
        assert "Se connecter" in (obs.error or "")

    def test_forbidden_text(self, page_server: HostileServer) -> None:
        """A page containing the `not_contains` text is a content_mismatch."""
        obs = check(page_server.url(), expect={"not_contains": "Bienvenue"})
        assert obs.outcome is Outcome.CONTENT_MISMATCH

    def test_gzip_bomb(self) -> None:
        """A small gzip body that inflates beyond 10 MiB is too_large, cut while decoding."""
        bomb = gzip.compress(b"\0" * (11 * 1024 * 1024), compresslevel=9)
        assert len(bomb) < 100_000
        with serve(answer(respond(body=bomb, headers=(("Content-Encoding", "gzip"),)))) as s:
            obs = check(s.url())
        assert obs.outcome is Outcome.TOO_LARGE
        assert "after decompression" in (obs.error or "")
        assert obs.body_bytes is None

    def test_body_just_under_limit(self) -> None:
        """A body exactly at the limit is accepted (the limit is inclusive)."""
        body = gzip.compress(b"a" * 4096)
        with serve(answer(respond(body=body, headers=(("Content-Encoding", "gzip"),)))) as s:
            obs = check(s.url(), limits=Limits(max_body=4096))
        assert obs.outcome is Outcome.OK
        assert obs.body_bytes == 4096

    def test_endless_body(self) -> None:
        """A server streaming forever is cut at the wire limit as too_large, before the timeout."""

        def endless(client: Client) -> None:
            client.read_request()
            client.send(b"HTTP/1.1 200 OK\r\n\r\n")
            chunk = b"y" * 65536
            while not client.server.stopping.is_set():
                client.send(chunk)

        with serve(endless) as server:
            obs = check(server.url(), timeout=20)
        assert obs.outcome is Outcome.TOO_LARGE, obs.error

    def test_announced_length_too_large(self) -> None:
        """A Content-Length over the limit is refused without reading the body."""

        def huge(client: Client) -> None:
            client.read_request()
            client.send(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n")
            client.sleep(10)

        with serve(huge) as server:
            obs = check(server.url(), timeout=5)
        assert obs.outcome is Outcome.TOO_LARGE
        assert obs.duration_s < 5

    @pytest.mark.parametrize(
        "head",
        [
            b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n" + b"X-Many: 1\r\n" * 150 + b"\r\n",
        ],
        ids=["header-size", "header-count"],
    )
    def test_header_limits(self, head: bytes) -> None:
        """Oversized or too many response headers are too_large."""
        with serve(answer(head)) as server:
            obs = check(server.url())
        assert obs.outcome is Outcome.TOO_LARGE, obs.error

    def test_server_never_answers(self) -> None:
        """A server that accepts and stays silent is a timeout while waiting for the first byte."""

        def hang(client: Client) -> None:
            client.read_request()
            client.sleep(30)

        with serve(hang) as server:
            obs = check(server.url(), timeout=1)
        assert obs.outcome is Outcome.TIMEOUT
        assert "first response byte" in (obs.error or "")
        assert 0.9 <= obs.duration_s < 3
        assert obs.phases["processing"] >= 0.9

    def test_slow_drip_body(self) -> None:
        """A body dripping one byte at a time is cut at the overall deadline."""

        def drip(client: Client) -> None:
            client.read_request()
            client.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            while client.sleep(0.05):
                client.send(b"x")

        with serve(drip) as server:
            obs = check(server.url(), timeout=1)
        assert obs.outcome is Outcome.TIMEOUT
        assert "reading the response" in (obs.error or "")
        assert obs.duration_s < 3
        assert obs.phases["transfer"] > 0.5

    def test_slow_drip_headers(self) -> None:
        """Headers that never end are cut at the overall deadline too."""

        def drip(client: Client) -> None:
            client.read_request()
            client.send(b"HTTP/1.1 200 OK\r\n")
            while client.sleep(0.05):
                client.send(b"X-Drip: 1\r\n"[:1])

        with serve(drip) as server:
            obs = check(server.url(), timeout=1)
        assert obs.outcome is Outcome.TIMEOUT
        assert obs.duration_s < 3

    def test_timeout_after_bad_status(self) -> None:
        """When a 503 body never completes, the status (the real failure) is what is reported."""

        def stuck(client: Client) -> None:
            client.read_request()
            client.send(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 100\r\n\r\nab")
            client.sleep(30)

        with serve(stuck) as server:
            obs = check(server.url(), timeout=1)
        assert obs.outcome is Outcome.HTTP_STATUS
        assert obs.error is not None
        assert obs.error.startswith("HTTP 503")
        assert "1 s" in obs.error


class TestRedirects:
    """Redirects are followed up to `max_redirects`, each one a fresh, guarded request."""

    def test_followed_and_counted(self) -> None:
        """Two redirects (absolute and relative) lead to the final page; phases are summed."""

        def handler(client: Client) -> None:
            request = client.read_request()
            path = request.split(b" ")[1]
            if path == b"/start":
                client.send(respond("301 Moved Permanently", headers=(("Location", "/next"),)))
            elif path == b"/next":
                port = client.server.port
                location = f"http://127.0.0.1:{port}/final"
                client.send(respond("302 Found", headers=(("Location", location),)))
            else:
                client.send(respond(body=PAGE))

        guard = RecordingGuard()
        with serve(handler) as server:
            obs = check(server.url("/start"), guard=guard)
            assert server.connections == 3
        assert obs.outcome is Outcome.OK
        assert obs.redirects == 2
        assert obs.final_url == server.url("/final")
        assert [url for _, url in guard.asked] == [
            server.url("/start"),
            server.url("/next"),
            server.url("/final"),
        ]
        assert obs.body_bytes == len(PAGE)

    def test_redirect_loop(self) -> None:
        """A server that always redirects ends as redirect_loop after max_redirects + 1 requests."""

        def loop(client: Client) -> None:
            client.read_request()
            client.send(respond("302 Found", headers=(("Location", "/again"),)))

        with serve(loop) as server:
            obs = check(server.url(), max_redirects=3)
            assert server.connections == 4
        assert obs.outcome is Outcome.REDIRECT_LOOP
        assert obs.redirects == 3
        assert "more than 3 redirects" in (obs.error or "")

    def test_expected_redirect_not_followed(self) -> None:
        """A 3xx listed in `expect.status` is the answer itself and is not followed."""
        with serve(answer(respond("301 Moved", headers=(("Location", "/x"),)))) as server:
            obs = check(server.url(), expect={"status": [301]})
            assert server.connections == 1
        assert obs.outcome is Outcome.OK
        assert obs.redirects == 0

    def test_redirect_to_other_scheme(self) -> None:
        """A redirect to a non-http(s) URL is a protocol_error and is not followed."""
        headers = (("Location", "ftp://127.0.0.1/file"),)
        with serve(answer(respond("302 Found", headers=headers))) as server:
            obs = check(server.url())
        assert obs.outcome is Outcome.PROTOCOL_ERROR


class TestReadOnlyGuard:
    """Every request asks the guard first; a refused request sends nothing at all."""

    def test_guard_consulted(self, page_server: HostileServer) -> None:
        """The guard is asked about the request with its method and URL."""
        guard = RecordingGuard()
        check(page_server.url(), guard=guard, method="HEAD")
        assert guard.asked == [("HEAD", page_server.url())]

    def test_refused_request_sends_nothing(self, page_server: HostileServer) -> None:
        """A request the guard refuses never opens a connection and is recorded as blocked."""
        guard = RecordingGuard(refuse=lambda _m, _u: True)
        obs = check(page_server.url(), guard=guard)
        assert obs.outcome is Outcome.BLOCKED
        assert not obs.success
        assert page_server.connections == 0
        assert [(b.method, b.url) for b in obs.blocked_requests] == [("GET", page_server.url())]

    def test_refused_redirect_sends_nothing(self) -> None:
        """A redirect the guard refuses is not followed: only the first connection happens."""

        def handler(client: Client) -> None:
            client.read_request()
            client.send(respond("302 Found", headers=(("Location", "/elsewhere"),)))

        guard = RecordingGuard(refuse=lambda _m, url: url.endswith("/elsewhere"))
        with serve(handler) as server:
            obs = check(server.url(), guard=guard)
            assert server.connections == 1
        assert obs.outcome is Outcome.BLOCKED


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
class TestTLS:
    """HTTPS: verified with the trust store, phases and certificate facts recorded."""

    def test_ok_with_certificate_facts(self, certs: Certs, loop: str) -> None:
        """A trusted certificate gives ok, a tls phase and issuer/subject/expiry/fingerprint."""
        with serve(answer(respond(body=PAGE)), tls=certs.good) as server:
            obs = check(server.url(), ssl_context=certs.client, loop=loop)
        assert obs.outcome is Outcome.OK, obs.error
        assert obs.phases["tls"] > 0
        assert obs.tls is not None
        assert obs.tls.issuer.startswith("CN=Vigie simulator test CA,")
        assert obs.tls.subject.startswith("CN=localhost")
        assert obs.tls.fingerprint_sha256 == certs.good_fingerprint
        assert obs.tls.version in ("TLSv1.2", "TLSv1.3")
        assert dt.datetime.fromisoformat(obs.tls.not_after) > dt.datetime.now(dt.UTC)

    @pytest.mark.parametrize(
        ("which", "words"),
        [("self_signed", "self-signed"), ("expired", "expired"), ("wrong_host", "mismatch")],
    )
    def test_bad_certificate(self, certs: Certs, loop: str, which: str, words: str) -> None:
        """A self-signed, expired or wrong-host certificate is a tls_error saying which."""
        with serve(answer(respond(body=PAGE)), tls=getattr(certs, which)) as server:
            obs = check(server.url(), ssl_context=certs.client, loop=loop)
            # no HTTP request after a refused handshake (a bare handshake records b"")
            assert all(request == b"" for request in server.requests)
        assert obs.outcome is Outcome.TLS_ERROR
        assert words in (obs.error or "").lower()
        assert obs.tls is not None  # the refused certificate is kept as evidence

    def test_self_signed_fingerprint_recorded(self, certs: Certs, loop: str) -> None:
        """The refused certificate's own fingerprint is what the observation records."""
        with serve(answer(respond(body=PAGE)), tls=certs.self_signed) as server:
            obs = check(server.url(), ssl_context=certs.client, loop=loop)
        assert obs.tls is not None
        assert obs.tls.fingerprint_sha256 == certs.self_signed_fingerprint

    def test_plain_http_on_tls_port(self, certs: Certs, loop: str) -> None:
        """A server that does not speak TLS on an https URL is a tls_error."""

        def plain(client: Client) -> None:
            client.sock.recv(4096)  # a TLS ClientHello, answered like nginx does on a plain port
            client.send(respond("400 Bad Request", b"plain HTTP server"))

        with serve(plain) as server:
            obs = check(
                server.url().replace("http:", "https:"), ssl_context=certs.client, loop=loop
            )
        assert obs.outcome is Outcome.TLS_ERROR


class TestCaptureMaterial:
    """The raw bytes of each exchange stay available for captures (WARC of failures)."""

    def run_probe(self, url: str, limits: Limits | None = None) -> HttpCheckResult:
        """`HttpProbe.run` on `url`."""
        probe = HttpProbe(
            ProbeSettings(vantage="test", user_agent=UA, environment=ENV), limits=limits
        )
        return run(probe.run(ProbeContext(target=target(url), timeout=5)))

    def test_raw_exchange_kept(self) -> None:
        """Request, status line + headers and the wire body (chunk framing included) are kept."""
        raw_body = b"4\r\noops\r\n0\r\n\r\n"
        head = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n"
        with serve(answer(head + raw_body)) as server:
            result = self.run_probe(server.url())
        assert result.observation.outcome is Outcome.HTTP_STATUS
        (ex,) = result.exchanges
        assert ex.raw_request.startswith(b"GET / HTTP/1.1\r\n")
        assert ex.raw_head == head
        assert ex.raw_body == raw_body
        assert not ex.raw_body_truncated
        assert ex.body == b"oops"

    def test_unparsable_answer_kept(self) -> None:
        """Bytes that are not HTTP are still kept as the raw head."""
        with serve(answer(b"SSH-2.0-OpenSSH_9.2\r\n")) as server:
            result = self.run_probe(server.url())
        assert result.observation.outcome is Outcome.PROTOCOL_ERROR
        assert result.exchanges[0].raw_head == b"SSH-2.0-OpenSSH_9.2\r\n"

    def test_capture_bounded(self) -> None:
        """The kept raw body is cut at the capture limit and marked truncated."""
        with serve(answer(respond(body=b"z" * 5000))) as server:
            result = self.run_probe(server.url(), Limits(capture_body=1000))
        ex = result.exchanges[0]
        assert result.observation.body_bytes == 5000
        assert len(ex.raw_body) == 1000
        assert ex.raw_body_truncated


class TestHelpers:
    """Small pure functions of the client."""

    def test_charset_fallback(self) -> None:
        """An unknown charset falls back to UTF-8 instead of failing."""
        assert body_text_contains("é".encode(), "text/html; charset=bogus", "é")
        assert not body_text_contains(b"abc", "text/plain", "d")

    def test_user_agent_must_be_a_header_value(self) -> None:
        """A User-Agent with a line break is refused when the probe is built."""
        with pytest.raises(ValueError, match="user_agent"):
            HttpProbe(ProbeSettings(vantage="v", user_agent="bad\r\nX: 1", environment={}))
