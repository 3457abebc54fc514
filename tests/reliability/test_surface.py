"""The service's own HTTP surface, attacked through the real `vigie run`: only GET/HEAD, no way
out of what it serves, loopback by default, bounded requests, and it keeps answering.

Every request goes to 127.0.0.1 over raw sockets or urllib.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import Settings, load_settings
from tests.reliability.harness import Service
from tests.service_fixture import http_get

ENDPOINTS = ("/", "/metrics", "/healthz")
METHODS = ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "PROPFIND")
TRAVERSALS = (
    "/../../../../etc/passwd",
    "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/%252e%252e/%252e%252e/etc/passwd",
    "/..%2f..%2f..%2fetc%2fpasswd",
    "/....//....//etc/passwd",
    "/metrics/../../etc/passwd",
    "//etc/passwd",
    "/%00/etc/passwd",
    "/vigie.yaml",
    "/ledger.db",
    "/vantage.key",
)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A running service with no targets (its surface is what is tested)."""
    state = tmp_path_factory.mktemp("surface")
    svc = Service({"targets": []}, state)
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()


def _raw(port: int, data: bytes, *, read: bool = True, timeout: float = 10.0) -> bytes:
    """Send raw bytes to the service and return what it answers (until it closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)  # the service may hang up early: that is a refusal too
        if not read:
            return b""
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and len(answer) > 4096:
                    break
        except (ConnectionResetError, TimeoutError):
            pass
        return answer


def _status(answer: bytes) -> int:
    parts = answer.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def _alive(service: Service) -> bool:
    return http_get(service.url + "/metrics", timeout=10.0)[0] == 200


@pytest.mark.slow
class TestOnlyGetAndHead:
    """Methods other than GET and HEAD are refused on every endpoint."""

    @pytest.mark.parametrize("path", ENDPOINTS)
    def test_get_and_head_answer(self, service: Service, path: str) -> None:
        """GET and HEAD answer 200 on each endpoint."""
        assert http_get(service.url + path)[0] == 200
        assert http_get(service.url + path, method="HEAD")[0] == 200

    @pytest.mark.parametrize("method", METHODS)
    @pytest.mark.parametrize("path", ENDPOINTS)
    def test_other_methods_refused(self, service: Service, path: str, method: str) -> None:
        """Any other method gets 405 (or 400 for CONNECT's odd form), never 2xx."""
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        request = head + "Content-Length: 2\r\n\r\n{}"
        status = _status(_raw(service.port, request.encode()))
        assert status in {400, 405}, (method, path, status)


@pytest.mark.slow
class TestNoEscape:
    """Nothing outside what the service builds can be fetched."""

    @pytest.mark.parametrize("path", TRAVERSALS)
    def test_traversal_finds_nothing(self, service: Service, path: str) -> None:
        """Traversal and encoded variants answer 404 (or 400) and never leak a file."""
        answer = _raw(
            service.port,
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode(),
        )
        assert _status(answer) in {400, 404}, (path, answer[:200])
        assert b"root:" not in answer
        assert b"PRIVATE KEY" not in answer


@pytest.mark.slow
class TestRequestLimits:
    """Oversized or abusive requests are refused without harm."""

    def test_huge_header_refused(self, service: Service) -> None:
        """A 100 KB header is refused (4xx) and the service keeps answering."""
        request = (
            b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
        )
        assert 400 <= _status(_raw(service.port, request)) < 500
        assert _alive(service)

    def test_many_headers_refused(self, service: Service) -> None:
        """Thousands of headers are refused (4xx)."""
        headers = b"".join(b"X-H%d: v\r\n" % i for i in range(5000))
        request = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + b"\r\n"
        assert 400 <= _status(_raw(service.port, request)) < 500
        assert _alive(service)

    def test_huge_request_line_refused(self, service: Service) -> None:
        """A 100 KB URL is refused (4xx)."""
        request = b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        assert 400 <= _status(_raw(service.port, request)) < 500
        assert _alive(service)

    def test_large_body_refused_without_memory(self, service: Service) -> None:
        """A 50 MB POST body is refused before it is read: the service's memory does not
        grow by the body's size and it keeps answering."""
        before = service.rss()
        with socket.create_connection(("127.0.0.1", service.port), timeout=10) as sock:
            sock.sendall(
                b"POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 52428800\r\n\r\n"
            )
            chunk = b"\0" * 65536
            sent = 0
            try:
                while sent < 52_428_800:
                    sock.sendall(chunk)
                    sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                pass
            sock.settimeout(5)
            try:
                answer = sock.recv(4096)
            except (ConnectionResetError, TimeoutError):
                answer = b""
        if answer:
            assert _status(answer) in {405, 413}, answer[:100]
        assert service.rss() - before < 20 << 20
        assert _alive(service)

    def test_slowloris_connections_do_not_block(self, service: Service) -> None:
        """200 connections that never finish their headers do not stop /metrics answering."""
        socks = []
        try:
            for _ in range(200):
                sock = socket.create_connection(("127.0.0.1", service.port), timeout=10)
                sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                socks.append(sock)
            assert _alive(service)
        finally:
            for sock in socks:
                sock.close()
        time.sleep(0.2)
        assert _alive(service)


class TestDefaultBind:
    """Without configuration the service listens on loopback only."""

    def test_model_default_is_loopback(self) -> None:
        """The Settings default `listen` is 127.0.0.1."""
        assert Settings().listen_host == "127.0.0.1"

    def test_builtin_and_shipped_configs_are_loopback(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The built-in ANEF configuration and the shipped vigie.yaml bind to loopback."""
        monkeypatch.chdir(tmp_path)
        assert load_settings(None).listen_host == "127.0.0.1"
        repo = Path(__file__).resolve().parents[2]
        assert load_settings(repo / "vigie.yaml").listen_host == "127.0.0.1"

    @pytest.mark.slow
    def test_service_not_reachable_on_other_addresses(self, service: Service) -> None:
        """The running service's socket is bound to 127.0.0.1, not to every address."""
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
        port = f"{service.port:04X}"
        listening = [ln.split()[1] for ln in lines if ln.split()[3] == "0A"]
        mine = [addr for addr in listening if addr.endswith(":" + port)]
        assert mine == ["0100007F:" + port], mine
