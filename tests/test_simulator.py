"""Tests of the ANEF simulator: pages, request counting, admin API, raw fault behaviour, process."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gzip
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest

from simulator import (
    API_PATH,
    AUDIT_ENV,
    INFO_PATHS,
    LOGIN_PATH,
    PORTAL_PATH,
    REGISTRATION_PATH,
    WRITE_PATHS,
    FaultError,
    Simulator,
    SimulatorError,
    SimulatorProcess,
    parse_fault,
    read_audit,
)
from simulator.faults import FaultTable

TEN_MIB = 10 * 1024 * 1024
T = TypeVar("T")


class Answer:
    """A response read with http.client."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def fetch(
    url: str,
    method: str = "GET",
    body: bytes | None = None,
    *,
    context: ssl.SSLContext | None = None,
    timeout: float = 10.0,
) -> Answer:
    """One request with the standard library's http.client (no proxy, no redirect following)."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=context
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path or "/", body=body)
        response = conn.getresponse()
        data = response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    finally:
        conn.close()


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    return parts.hostname, parts.port


def get_again(conn: http.client.HTTPConnection) -> bytes:
    """Another GET / on an already open connection."""
    conn.request("GET", "/")
    return conn.getresponse().read()


def raw_get(url: str, path: str = "/") -> socket.socket:
    """Open a socket and send a GET of `path`, leaving the answer to the caller."""
    sock = socket.create_connection(address(url), timeout=10)
    host, port = address(url)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    return sock


@pytest.fixture
def writable() -> Iterator[Simulator]:
    """A simulator whose writes are not audited (for tests that send writes on purpose)."""
    with Simulator(audit=False) as sim:
        yield sim


def html_pages(sim: Simulator) -> dict[str, str]:
    return {
        "home": sim.site_url,
        **{path: sim.url(path) for path in INFO_PATHS},
        "portal": sim.url(PORTAL_PATH),
        "login": sim.login_url,
        "registration": sim.registration_url,
    }


class TestPages:
    """The simulated site, portal and login host serve what ANEF serves."""

    def test_home_page_is_french_and_mentions_etrangers(self, simulator: Simulator) -> None:
        """The home page is a 200 HTML page with ANEF's title and the word "étrangers"."""
        answer = fetch(simulator.site_url)
        assert answer.status == 200
        assert answer.headers["content-type"] == "text/html; charset=utf-8"
        assert "Administration des étrangers en France" in answer.text
        assert '<html lang="fr">' in answer.text

    def test_information_pages_are_linked_and_served(self, simulator: Simulator) -> None:
        """Each information page is linked from the home page and served with its title."""
        home = fetch(simulator.site_url).text
        for path, (title, _) in INFO_PATHS.items():
            assert f'href="{path}"' in home
            answer = fetch(simulator.url(path))
            assert answer.status == 200
            assert f"<h1>{title}</h1>" in answer.text

    def test_back_end_answers_401_json(self, simulator: Simulator) -> None:
        """The unauthenticated back end refuses with 401 and a JSON body, as ANEF's does."""
        answer = fetch(simulator.api_url)
        assert answer.status == 401
        assert answer.headers["content-type"] == "application/json"
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert json.loads(answer.body)["status"] == 401

    def test_portal_is_an_app_root_shell_with_a_local_script(self, simulator: Simulator) -> None:
        """The portal is an empty app-root filled by a local script with hash routes."""
        page = fetch(simulator.url(PORTAL_PATH)).text
        assert "<app-root></app-root>" in page
        assert '<script src="/particuliers/main.js"></script>' in page
        script = fetch(simulator.url("/particuliers/main.js"))
        assert script.status == 200
        assert script.headers["content-type"].startswith("text/javascript")
        assert "hashchange" in script.text
        assert "Se connecter" in script.text
        config = json.loads(re.findall(r'id="sim-config"[^>]*>(.*?)</script>', page)[0])
        assert config["loginUrl"] == simulator.login_url
        assert config["fault"] is None

    def test_portal_without_trailing_slash_redirects(self, simulator: Simulator) -> None:
        """``/particuliers`` redirects to ``/particuliers/`` like a real web server."""
        answer = fetch(simulator.url("/particuliers"))
        assert answer.status == 301
        assert answer.headers["location"] == PORTAL_PATH

    def test_login_page_is_on_its_own_host_with_the_expected_fields(
        self, simulator: Simulator
    ) -> None:
        """The login page is served by a second origin with username, password, FranceConnect."""
        assert urlsplit(simulator.login_url).port != urlsplit(simulator.site_url).port
        assert urlsplit(simulator.login_url).path == LOGIN_PATH
        page = fetch(simulator.login_url).text
        assert 'name="username"' in page
        assert 'name="password"' in page
        assert "FranceConnect" in page
        link = re.search(r'<a href="([^"]+)">Première visite \? Créer votre compte</a>', page)
        assert link is not None
        assert link.group(1).replace("&amp;", "&") == simulator.registration_url

    def test_login_host_does_not_serve_the_site(self, simulator: Simulator) -> None:
        """The site's pages are not on the login host (two hosts, as in reality)."""
        assert fetch(simulator.url(PORTAL_PATH, host="login")).status == 404
        assert fetch(simulator.url(LOGIN_PATH)).status == 404

    def test_registration_screen_has_an_email_field(self, simulator: Simulator) -> None:
        """The account-creation screen has a form with an e-mail input."""
        page = fetch(simulator.registration_url).text
        assert urlsplit(simulator.registration_url).path == REGISTRATION_PATH
        assert re.search(r"<form [^>]*method=\"post\"", page)
        assert 'type="email"' in page

    def test_every_html_page_attempts_the_four_writes(self, simulator: Simulator) -> None:
        """Every HTML page carries a beacon, an XHR PUT, a fetch POST and an auto-posted form."""
        for name, url in html_pages(simulator).items():
            page = fetch(url).text
            assert f'navigator.sendBeacon("{WRITE_PATHS["beacon"]}"' in page, name
            assert f'xhr.open("PUT", "{WRITE_PATHS["xhr"]}")' in page, name
            assert f'fetch("{WRITE_PATHS["fetch"]}", {{method: "POST"' in page, name
            assert f'method="post" action="{WRITE_PATHS["form"]}"' in page, name
            assert 'getElementById("sim-write-form").submit()' in page, name

    def test_pages_reference_nothing_outside_the_simulator(self, simulator: Simulator) -> None:
        """Every absolute URL in pages and scripts points to one of the simulator's origins."""
        origins = {simulator.site_origin, simulator.login_origin}
        bodies = [fetch(url).text for url in html_pages(simulator).values()]
        bodies.append(fetch(simulator.url("/particuliers/main.js")).text)
        bodies.append(fetch(simulator.url("/auth/resources/portail-anef/login.js", "login")).text)
        found = 0
        for body in bodies:
            for url in re.findall(r"(?:https?:)?//[^\s\"'<>)]+", body.replace("&amp;", "&")):
                found += 1
                assert any(url.startswith(origin) for origin in origins), url
        assert found > 0  # the check saw the cross-host links

    def test_head_answers_headers_without_body(self, simulator: Simulator) -> None:
        """HEAD gets the GET's status and Content-Length, and no body."""
        get = fetch(simulator.site_url)
        head = fetch(simulator.site_url, "HEAD")
        assert head.status == 200
        assert head.body == b""
        assert head.headers["content-length"] == str(len(get.body))

    def test_unknown_path_is_a_french_404(self, simulator: Simulator) -> None:
        """An unknown path is a 404 page in French."""
        answer = fetch(simulator.url("/nulle-part"))
        assert answer.status == 404
        assert "Page introuvable" in answer.text

    def test_keep_alive_serves_several_requests_on_one_connection(
        self, simulator: Simulator
    ) -> None:
        """HTTP/1.1 keep-alive: two requests on one connection both get answers."""
        conn = http.client.HTTPConnection(*address(simulator.site_url), timeout=10)
        try:
            for _ in range(2):
                conn.request("GET", "/")
                response = conn.getresponse()
                assert response.status == 200
                response.read()
        finally:
            conn.close()
        assert simulator.counts.total("GET", "/") == 2


class TestCounting:
    """Every request is counted by host, method and path; writes are recorded and refused."""

    def test_counts_by_host_method_and_path(self, simulator: Simulator) -> None:
        """GET and HEAD are counted per listener and path, without the query string."""
        fetch(simulator.site_url)
        fetch(simulator.site_url + "?x=1", "HEAD")
        fetch(simulator.login_url)
        counts = simulator.counts
        assert counts.total("GET", "/", "site") == 1
        assert counts.total("HEAD", "/") == 1
        assert counts.total("GET", LOGIN_PATH, "login") == 1
        assert counts.by_method() == {"GET": 2, "HEAD": 1}
        assert counts.writes == 0

    def test_writes_are_recorded_and_answered_405(self, writable: Simulator) -> None:
        """A POST, a PUT and a DELETE arrive, are counted as writes and refused with 405."""
        for method in ("POST", "PUT", "DELETE"):
            answer = fetch(writable.url(WRITE_PATHS["fetch"]), method, b"vu=1")
            assert answer.status == 405
            assert answer.headers["allow"] == "GET, HEAD"
        assert writable.counts.writes == 3
        assert writable.counts.by_method() == {"POST": 1, "PUT": 1, "DELETE": 1}
        assert [(w.method, w.path) for w in writable.write_requests] == [
            ("POST", WRITE_PATHS["fetch"]),
            ("PUT", WRITE_PATHS["fetch"]),
            ("DELETE", WRITE_PATHS["fetch"]),
        ]

    def test_method_case_is_kept(self, writable: Simulator) -> None:
        """A lower-case ``get`` is not GET (methods are case-sensitive) and counts as a write."""
        with raw_get(writable.site_url) as sock:
            sock.sendall(b"get / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while data.count(b"HTTP/1.1 ") < 2:
                data += sock.recv(65536)
        assert writable.counts.total("get") == 1
        assert writable.counts.writes == 1

    def test_chunked_write_is_read_and_refused(self, writable: Simulator) -> None:
        """A chunked POST is read whole, counted and refused; the connection stays usable."""
        with socket.create_connection(address(writable.site_url), timeout=10) as sock:
            sock.sendall(
                b"POST /sim/write/fetch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                b"\r\n3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"
            )
            data = b""
            while data.count(b"HTTP/1.1 ") < 2 or not data.rstrip().endswith(b"</html>"):
                chunk = sock.recv(65536)
                assert chunk
                data += chunk
        assert data.startswith(b"HTTP/1.1 405 ")
        assert b"HTTP/1.1 200 OK" in data
        assert writable.counts.total("POST", "/sim/write/fetch") == 1

    @pytest.mark.parametrize(
        ("request_bytes", "status"),
        [
            (b"NONSENSE\r\n\r\n", b"400"),
            (b"GET / HTTP/1.1\r\nbad header line\r\n\r\n", b"400"),
            (b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", b"413"),
            (b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", b"431"),
        ],
    )
    def test_malformed_requests_get_a_4xx_and_a_close(
        self, writable: Simulator, request_bytes: bytes, status: bytes
    ) -> None:
        """Requests that cannot be read get a 4xx answer and the connection is closed."""
        with socket.create_connection(address(writable.site_url), timeout=10) as sock:
            sock.sendall(request_bytes)
            data = b""
            with contextlib.suppress(ConnectionResetError):  # closed with unread input: RST
                while chunk := sock.recv(65536):
                    data += chunk
        assert data.startswith(b"HTTP/1.1 " + status)

    def test_writes_go_to_the_audit_file_named_by_the_environment(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A simulator built without arguments appends each write to $VIGIE_SIMULATOR_AUDIT."""
        audit = tmp_path / "audit.jsonl"
        monkeypatch.setenv(AUDIT_ENV, str(audit))
        with Simulator() as sim:
            fetch(sim.site_url)
            fetch(sim.url(WRITE_PATHS["beacon"], "login"), "POST", b"x")
            sim.reset_counts()
        records = read_audit(audit)
        assert [(r["host"], r["method"], r["path"]) for r in records] == [
            ("login", "POST", WRITE_PATHS["beacon"])
        ]
        assert records[0]["pid"] == os.getpid()

    def test_audit_false_leaves_the_audit_file_alone(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With ``audit=False`` writes are counted but not appended to the audit file."""
        audit = tmp_path / "audit.jsonl"
        monkeypatch.setenv(AUDIT_ENV, str(audit))
        with Simulator(audit=False) as sim:
            fetch(sim.site_url, "POST", b"x")
            assert sim.counts.writes == 1
        assert read_audit(audit) == []

    def test_the_session_audit_covers_this_test_run(self, simulator_audit: Path) -> None:
        """The session fixture has pointed every simulator of this run at its audit file."""
        assert os.environ[AUDIT_ENV] == str(simulator_audit)

    @pytest.mark.slow
    def test_session_audit_fails_a_run_that_wrote(self, tmp_path: Path) -> None:
        """A pytest run whose simulator received a POST ends in error, naming the request."""
        (tmp_path / "pytest.ini").write_text("[pytest]\n")
        (tmp_path / "test_writer.py").write_text(
            "import http.client\n"
            "from simulator import Simulator\n"
            "def test_posts():\n"
            "    with Simulator() as sim:\n"
            "        conn = http.client.HTTPConnection(*sim.site_origin[7:].split(':'))\n"
            "        conn.request('POST', '/sim/write/fetch', body=b'x')\n"
            "        assert conn.getresponse().status == 405\n"
            "        conn.close()\n"
        )
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "tests.simulator_fixture",
                "-p",
                "no:cacheprovider",
                "-c",
                str(tmp_path / "pytest.ini"),
                "--rootdir",
                str(tmp_path),
                str(tmp_path / "test_writer.py"),
            ],
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 1, result.stdout
        assert "1 passed, 1 error" in result.stdout
        assert "received 1 request(s) other than GET/HEAD" in result.stdout
        assert "POST site/sim/write/fetch" in result.stdout

    def test_reset_forgets_counts(self, simulator: Simulator) -> None:
        """``reset_counts`` zeroes the counts."""
        fetch(simulator.site_url)
        simulator.reset_counts()
        assert simulator.counts.total() == 0


class TestAdminApi:
    """The admin API switches faults and reports counts on a port of its own."""

    def test_root_lists_urls_and_faults(self, simulator: Simulator) -> None:
        """``GET /`` of the admin API gives every URL and the active faults."""
        data = json.loads(fetch(simulator.admin_url).body)
        assert data["site_url"] == simulator.site_url
        assert data["login_url"] == simulator.login_url
        assert data["faults"] == []

    def test_set_list_and_clear_faults(self, simulator: Simulator) -> None:
        """POST sets a fault that the site then shows; DELETE clears it."""
        body = json.dumps({"path": "/", "fault": "http_500"}).encode()
        answer = fetch(simulator.url("/faults", "admin"), "POST", body)
        assert answer.status == 200
        assert json.loads(answer.body)["fault"] == {"host": "*", "path": "/", "fault": "http_500"}
        assert fetch(simulator.site_url).status == 500
        listed = json.loads(fetch(simulator.url("/faults", "admin")).body)["faults"]
        assert listed == [{"host": "*", "path": "/", "fault": "http_500"}]
        cleared = json.loads(fetch(simulator.url("/faults", "admin"), "DELETE").body)
        assert cleared["cleared"] == 1
        assert fetch(simulator.site_url).status == 200

    def test_portal_version_switch(self, simulator: Simulator) -> None:
        """``POST /version`` serves the redesign (renamed link, moved form); 1 switches back."""
        assert json.loads(fetch(simulator.url("/version", "admin")).body) == {"version": 1}
        old = fetch(simulator.login_url).body.decode()
        assert "Première visite ? Créer votre compte" in old
        answer = fetch(simulator.url("/version", "admin"), "POST", b'{"version": 2}')
        assert answer.status == 200
        new = fetch(simulator.login_url)
        assert new.status == 200
        assert "Première visite" not in new.body.decode()
        assert "Ouvrir mon espace ANEF" in new.body.decode()
        assert 'id="kc-form-connexion"' in new.body.decode()
        assert "<fieldset>" in fetch(simulator.registration_url).body.decode()
        assert json.loads(fetch(simulator.admin_url).body)["version"] == 2
        bad = fetch(simulator.url("/version", "admin"), "POST", b'{"version": 3}')
        assert bad.status == 400
        assert "valid versions: 1, 2" in json.loads(bad.body)["error"]
        simulator.set_portal_version(1)
        assert fetch(simulator.login_url).body.decode() == old

    def test_delete_one_fault_by_path(self, simulator: Simulator) -> None:
        """``DELETE /faults?path=...`` clears only that path's fault."""
        simulator.set_fault("/", "http_500")
        simulator.set_fault(API_PATH, "http_500")
        fetch(simulator.url("/faults?path=/", "admin"), "DELETE")
        assert [rule.path for rule in simulator.faults] == [API_PATH]

    def test_invalid_fault_is_a_400_listing_valid_faults(self, simulator: Simulator) -> None:
        """An unknown fault is refused with 400 and a message naming the valid faults."""
        body = json.dumps({"path": "/", "fault": "explode"}).encode()
        answer = fetch(simulator.url("/faults", "admin"), "PUT", body)
        assert answer.status == 400
        error = json.loads(answer.body)["error"]
        assert "unknown fault 'explode'" in error
        assert "http_503_maintenance" in error

    def test_malformed_body_is_a_400(self, simulator: Simulator) -> None:
        """A body that is not the expected JSON object is refused with 400."""
        for body in (b"not json", b"[]", b'{"path": "/"}'):
            assert fetch(simulator.url("/faults", "admin"), "POST", body).status == 400

    def test_requests_report_and_reset(self, writable: Simulator) -> None:
        """``GET /requests`` reports totals and writes; ``POST /requests/reset`` zeroes them."""
        fetch(writable.site_url)
        fetch(writable.site_url, "POST", b"x")
        data = json.loads(fetch(writable.url("/requests", "admin")).body)
        assert data["total"] == 2
        assert data["writes"] == 1
        assert data["by_method"] == {"GET": 1, "POST": 1}
        assert {"host": "site", "method": "GET", "path": "/", "count": 1} in data["by_path"]
        assert data["write_requests"][0]["method"] == "POST"
        fetch(writable.url("/requests/reset", "admin"), "POST")
        assert json.loads(fetch(writable.url("/requests", "admin")).body)["total"] == 0

    def test_admin_requests_are_not_counted(self, simulator: Simulator) -> None:
        """The admin API's own traffic (writes included) never shows in the site's counts."""
        fetch(simulator.url("/faults", "admin"), "POST", b'{"path": "/x", "fault": "hang"}')
        fetch(simulator.url("/requests", "admin"))
        assert simulator.counts.total() == 0

    def test_unknown_admin_path_is_a_404_naming_the_api(self, simulator: Simulator) -> None:
        """An unknown admin path answers 404 with the list of endpoints."""
        answer = fetch(simulator.url("/nope", "admin"))
        assert answer.status == 404
        assert "GET /faults" in json.loads(answer.body)["error"]


class TestHttpFaults:
    """Each HTTP-level fault behaves on the wire as documented."""

    def test_down_refuses_connections_and_comes_back_on_the_same_port(
        self, simulator: Simulator
    ) -> None:
        """``down`` makes the site refuse connections; the login host stays up; clear restores."""
        site = simulator.site_url
        simulator.set_fault("/", "down")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(address(site), timeout=5).close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(address(simulator.tls_url), timeout=5).close()
        assert fetch(simulator.login_url).status == 200
        simulator.clear_faults()
        assert simulator.site_url == site
        assert fetch(site).status == 200

    def test_down_drops_open_connections(self, simulator: Simulator) -> None:
        """A keep-alive connection open when the host goes down is cut."""
        conn = http.client.HTTPConnection(*address(simulator.site_url), timeout=10)
        try:
            conn.request("GET", "/")
            conn.getresponse().read()
            simulator.set_fault("*", "down")
            with pytest.raises((ConnectionError, http.client.HTTPException)):
                get_again(conn)
        finally:
            conn.close()

    def test_down_on_a_login_path_takes_only_the_login_host(self, simulator: Simulator) -> None:
        """With host ``*``, ``down`` on an ``/auth/...`` path takes the login host, not the site."""
        simulator.set_fault(LOGIN_PATH, "down")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(address(simulator.login_url), timeout=5).close()
        assert fetch(simulator.site_url).status == 200

    def test_down_can_be_switched_repeatedly(self, simulator: Simulator) -> None:
        """The host goes down and up several times, always on the same port."""
        for _ in range(3):
            simulator.set_fault("/", "down")
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(address(simulator.site_url), timeout=5).close()
            simulator.clear_fault("/")
            assert fetch(simulator.site_url).status == 200

    def test_http_500(self, simulator: Simulator) -> None:
        """``http_500`` answers 500 with an error page."""
        simulator.set_fault("/", "http_500")
        answer = fetch(simulator.site_url)
        assert answer.status == 500
        assert answer.headers["x-simulator-fault"] == "http_500"

    def test_http_503_maintenance(self, simulator: Simulator) -> None:
        """``http_503_maintenance`` answers 503 "Site en maintenance" with a Retry-After."""
        simulator.set_fault("/", "http_503_maintenance")
        answer = fetch(simulator.site_url)
        assert answer.status == 503
        assert "Site en maintenance" in answer.text
        assert answer.headers["retry-after"] == "3600"

    def test_slow_delays_the_first_byte(self, simulator: Simulator) -> None:
        """``slow:0.3`` sends nothing for at least 0.3 s, then the normal page."""
        simulator.set_fault("/", "slow:0.3")
        with raw_get(simulator.site_url) as sock:
            start = time.monotonic()
            first = sock.recv(1)
            waited = time.monotonic() - start
        assert first == b"H"
        assert waited >= 0.3

    def test_slow_reports_the_delay_it_applied(self, simulator: Simulator) -> None:
        """The slow answer says in ``X-Simulator-Delay`` how long the server really waited."""
        simulator.set_fault("/", "slow:0.1")
        applied = float(fetch(simulator.site_url).headers["x-simulator-delay"])
        assert applied >= 0.1

    def test_slow_then_normal_content(self, simulator: Simulator) -> None:
        """The slow answer is the page itself (the check still finds its text)."""
        simulator.set_fault("/", "slow:0.05")
        assert "étrangers" in fetch(simulator.site_url).text

    def test_hang_accepts_and_never_answers(self, simulator: Simulator) -> None:
        """``hang`` keeps the connection open without sending a byte."""
        simulator.set_fault("/", "hang")
        with raw_get(simulator.site_url) as sock:
            sock.settimeout(0.5)
            with pytest.raises(TimeoutError):
                sock.recv(1)

    def test_reset_sends_a_tcp_rst(self, simulator: Simulator) -> None:
        """``reset`` answers the request with a TCP reset."""
        simulator.set_fault("/", "reset")
        with raw_get(simulator.site_url) as sock, pytest.raises(ConnectionResetError):
            sock.recv(1)

    def test_disconnect_closes_without_an_answer(self, simulator: Simulator) -> None:
        """``disconnect`` closes the connection cleanly without a byte of answer."""
        simulator.set_fault("/", "disconnect")
        with raw_get(simulator.site_url) as sock:
            assert sock.recv(1) == b""

    def test_huge_body_streams_beyond_ten_mib(self, simulator: Simulator) -> None:
        """``huge_body`` streams a chunked 200 body past 10 MiB (until the client stops)."""
        simulator.set_fault("/", "huge_body")
        conn = http.client.HTTPConnection(*address(simulator.site_url), timeout=10)
        try:
            conn.request("GET", "/")
            response = conn.getresponse()
            assert response.status == 200
            assert response.getheader("transfer-encoding") == "chunked"
            received = 0
            while received <= TEN_MIB:
                chunk = response.read(1024 * 1024)
                assert chunk
                received += len(chunk)
        finally:
            conn.close()

    def test_gzip_bomb_inflates_beyond_ten_mib(self, simulator: Simulator) -> None:
        """``gzip_bomb`` sends a small gzip body that inflates past 10 MiB."""
        simulator.set_fault("/", "gzip_bomb")
        answer = fetch(simulator.site_url)
        assert answer.status == 200
        assert answer.headers["content-encoding"] == "gzip"
        assert len(answer.body) < 1024 * 1024
        inflater = zlib.decompressobj(31)
        assert len(inflater.decompress(answer.body, TEN_MIB + 1)) > TEN_MIB
        assert gzip.decompress(answer.body)[:4] == b"\x00\x00\x00\x00"

    def test_redirect_loop_sends_the_client_back_and_forth(self, simulator: Simulator) -> None:
        """``redirect_loop`` sends ``/`` to ``/?boucle=1`` and back: a loop."""
        simulator.set_fault("/", "redirect_loop")
        first = fetch(simulator.site_url)
        assert first.status == 302
        assert first.headers["location"] == "/?boucle=1"
        second = fetch(simulator.url(first.headers["location"]))
        assert second.status == 302
        assert second.headers["location"] == "/"

    def test_wrong_content_is_a_200_without_the_expected_text(self, simulator: Simulator) -> None:
        """``wrong_content`` answers 200 without "trangers" or "username"."""
        simulator.set_fault("*", "wrong_content")
        for url in (simulator.site_url, simulator.login_url):
            answer = fetch(url)
            assert answer.status == 200
            assert "trangers" not in answer.text
            assert "username" not in answer.text

    def test_fault_on_every_path(self, simulator: Simulator) -> None:
        """A fault on ``*`` applies to every path of both hosts."""
        simulator.set_fault("*", "http_500")
        assert fetch(simulator.api_url).status == 500
        assert fetch(simulator.login_url).status == 500

    def test_fault_on_one_host_only(self, simulator: Simulator) -> None:
        """A fault for host ``login`` leaves the same path on the site alone."""
        simulator.set_fault("*", "http_500", host="login")
        assert fetch(simulator.login_url).status == 500
        assert fetch(simulator.site_url).status == 200

    def test_exact_path_wins_over_star(self, simulator: Simulator) -> None:
        """A fault on the exact path takes precedence over one on ``*``."""
        simulator.set_fault("*", "http_500")
        simulator.set_fault("/", "http_503_maintenance")
        assert fetch(simulator.site_url).status == 503
        assert fetch(simulator.api_url).status == 500

    def test_query_string_does_not_change_the_match(self, simulator: Simulator) -> None:
        """A fault on the login path applies whatever the query string."""
        simulator.set_fault(LOGIN_PATH + "?ignored=1", "http_500")
        assert fetch(simulator.login_url).status == 500

    def test_faults_given_at_construction(self) -> None:
        """Faults passed to the constructor are active from the first request."""
        with Simulator(faults={API_PATH: "http_503_maintenance"}) as sim:
            assert fetch(sim.api_url).status == 503

    def test_writes_are_refused_even_under_a_fault(self, writable: Simulator) -> None:
        """A write is counted and refused with 405 whatever fault the path has."""
        writable.set_fault("/", "hang")
        assert fetch(writable.site_url, "POST", b"x").status == 405
        assert writable.counts.writes == 1


class TestTls:
    """The HTTPS listener: a certificate from a throwaway CA, and the bad_tls fault."""

    def test_https_verifies_with_the_throwaway_ca(self, simulator: Simulator) -> None:
        """A client trusting ``tls_ca_file`` gets the home page over verified HTTPS."""
        context = ssl.create_default_context(cafile=str(simulator.tls_ca_file))
        answer = fetch(simulator.tls_url, context=context)
        assert answer.status == 200
        assert "étrangers" in answer.text
        assert simulator.counts.total("GET", "/", "tls") == 1

    def test_https_fails_for_a_client_without_the_ca(self, simulator: Simulator) -> None:
        """A client with only the system roots refuses the throwaway certificate."""
        context = ssl.create_default_context()
        with pytest.raises(ssl.SSLCertVerificationError):
            fetch(simulator.tls_url, context=context)

    @pytest.mark.parametrize(
        ("fault", "message"),
        [
            ("bad_tls", "self-signed certificate"),
            ("bad_tls:self_signed", "self-signed certificate"),
            ("bad_tls:expired", "certificate has expired"),
            ("bad_tls:hostname", "mismatch"),
        ],
    )
    def test_bad_tls_fails_verification(
        self, simulator: Simulator, fault: str, message: str
    ) -> None:
        """Each bad_tls variant makes a client trusting the CA fail the handshake."""
        context = ssl.create_default_context(cafile=str(simulator.tls_ca_file))
        simulator.set_fault("/", fault)
        with pytest.raises(ssl.SSLCertVerificationError, match=message):
            fetch(simulator.tls_url, context=context)
        simulator.clear_faults()
        assert fetch(simulator.tls_url, context=context).status == 200

    def test_bad_tls_leaves_plain_http_alone(self, simulator: Simulator) -> None:
        """bad_tls concerns only the HTTPS listener."""
        simulator.set_fault("/", "bad_tls")
        assert fetch(simulator.site_url).status == 200

    def test_bad_tls_drops_open_https_connections(self, simulator: Simulator) -> None:
        """An HTTPS connection opened before bad_tls is dropped, so no client keeps the old cert."""
        context = ssl.create_default_context(cafile=str(simulator.tls_ca_file))
        host, port = address(simulator.tls_url)
        conn = http.client.HTTPSConnection(host, port, timeout=10, context=context)
        try:
            conn.request("GET", "/")
            conn.getresponse().read()
            simulator.set_fault("/", "bad_tls")
            with pytest.raises((ConnectionError, http.client.HTTPException, ssl.SSLError)):
                get_again(conn)
        finally:
            conn.close()


def page_config(page: str) -> dict[str, Any]:
    found = re.findall(r'id="sim-config"[^>]*>(.*?)</script>', page)
    assert len(found) == 1
    config: dict[str, Any] = json.loads(found[0])
    return config


class TestBrowserFaultPages:
    """Browser faults leave the HTTP answer a normal 200 and change what the page will do."""

    @pytest.mark.parametrize(
        "fault", ["js_error", "slow_render:1.5", "maintenance", "endless_spinner"]
    )
    def test_portal_fault_is_handed_to_the_app(self, simulator: Simulator, fault: str) -> None:
        """The portal stays a 200 with its shell; the fault goes into the app's configuration."""
        simulator.set_fault(PORTAL_PATH, fault)
        answer = fetch(simulator.url(PORTAL_PATH))
        assert answer.status == 200
        assert "<app-root></app-root>" in answer.text
        assert page_config(answer.text)["fault"] == fault
        assert "Site en maintenance" not in answer.text  # only the browser can see it

    def test_route_faults_reach_the_app(self, simulator: Simulator) -> None:
        """A fault on a hash route (``/particuliers/#/aide``) is handed to the app by route."""
        simulator.set_fault(PORTAL_PATH + "#/aide", "maintenance")
        config = page_config(fetch(simulator.url(PORTAL_PATH)).text)
        assert config["fault"] is None
        assert config["routeFaults"] == {"/aide": "maintenance"}

    def test_login_page_keeps_its_fields_for_http_checks(self, simulator: Simulator) -> None:
        """Under js_error the login page still has "username" in its bytes (HTTP checks pass)."""
        simulator.set_fault(LOGIN_PATH, "js_error")
        page = fetch(simulator.login_url).text
        assert 'name="username"' in page
        assert page_config(page)["fault"] == "js_error"

    def test_form_missing_removes_the_email_field(self, simulator: Simulator) -> None:
        """``form_missing`` serves the account-creation screen without its e-mail field."""
        simulator.set_fault(REGISTRATION_PATH, "form_missing")
        page = fetch(simulator.registration_url).text
        assert "Création de votre compte" in page
        assert 'type="email"' not in page


class TestFaultParsing:
    """Fault specifications are parsed strictly, with messages that say what is valid."""

    @pytest.mark.parametrize(
        ("spec", "name", "seconds", "variant"),
        [
            ("http_500", "http_500", None, None),
            ("slow:0.3", "slow", 0.3, None),
            ("slow_render:2", "slow_render", 2.0, None),
            ("bad_tls", "bad_tls", None, "self_signed"),
            ("bad_tls:expired", "bad_tls", None, "expired"),
        ],
    )
    def test_valid_specs(
        self, spec: str, name: str, seconds: float | None, variant: str | None
    ) -> None:
        """Valid specs parse into name, seconds and variant."""
        fault = parse_fault(spec)
        assert (fault.name, fault.seconds, fault.variant) == (name, seconds, variant)

    @pytest.mark.parametrize(
        ("spec", "message"),
        [
            ("explode", "unknown fault 'explode'; valid faults: down, http_500"),
            ("slow", "needs a delay in seconds, e.g. slow:0.5"),
            ("slow:abc", "'abc' is not a number of seconds"),
            ("slow:-1", "the delay must be between 0"),
            ("slow:nan", "the delay must be between 0"),
            ("bad_tls:weird", "bad_tls takes one of self_signed, expired, hostname"),
            ("http_500:1", "takes no argument"),
        ],
    )
    def test_invalid_specs(self, spec: str, message: str) -> None:
        """Invalid specs raise FaultError naming what is accepted."""
        with pytest.raises(FaultError, match=re.escape(message)):
            parse_fault(spec)

    @pytest.mark.parametrize(
        ("path", "host", "message"),
        [
            ("particuliers", "*", "must start with '/'"),
            ("/a b", "*", "white space"),
            ("/", "elsewhere", "must be one of: site, login"),
        ],
    )
    def test_invalid_paths_and_hosts(self, path: str, host: str, message: str) -> None:
        """Paths must be absolute or ``*``; hosts are site, login or ``*``."""
        with pytest.raises(FaultError, match=re.escape(message)):
            FaultTable().set(path, "http_500", host)

    def test_spec_round_trips(self) -> None:
        """A parsed fault prints back as its spec."""
        for spec in ("slow:0.25", "bad_tls:hostname", "maintenance"):
            assert parse_fault(spec).spec == spec


class TestInProcessLifeCycle:
    """The simulator runs on the caller's event loop too, and cleans up after itself."""

    def test_async_context_manager(self) -> None:
        """``async with Simulator()`` serves on the running loop and stops cleanly."""

        async def scenario() -> tuple[int, Path]:
            async with Simulator() as sim:
                reader, writer = await asyncio.open_connection(*address(sim.site_url))
                writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = await reader.read()
                writer.close()
                await writer.wait_closed()
                sim.set_fault("/", "down")  # from the loop thread itself
                with pytest.raises(ConnectionRefusedError):
                    await asyncio.open_connection(*address(sim.site_url))
                return int(data.split(b" ")[1]), sim.tls_ca_file

        status, ca_file = asyncio.run(scenario())
        assert status == 200
        assert not ca_file.exists()  # throwaway keys deleted at stop

    def test_stop_ends_hanging_connections(self) -> None:
        """Stopping the simulator closes connections held by ``hang``."""
        with Simulator(faults={"/": "hang"}) as sim:
            sock = raw_get(sim.site_url)
            deadline = time.monotonic() + 10
            while sim.counts.total("GET", "/") == 0 and time.monotonic() < deadline:
                time.sleep(0.01)  # wait until the request is held by the hang
            assert sim.counts.total("GET", "/") == 1
        with sock:
            sock.settimeout(10)
            try:
                data = sock.recv(1)
            except ConnectionResetError:
                data = b""  # aborted: closed all the same
            assert data == b""

    def test_port_in_use_is_a_clear_error(self, simulator: Simulator) -> None:
        """Asking for a port already taken fails with a message naming it."""
        _, port = address(simulator.site_url)
        with (
            pytest.raises(SimulatorError, match=f"cannot listen on 127.0.0.1 port {port}"),
            Simulator(port=port),
        ):
            pass


@pytest.mark.slow
class TestProcess:
    """``python -m simulator`` as a child process."""

    def test_prints_urls_as_one_json_line_and_stops_on_sigterm(self) -> None:
        """The child prints its URLs as one JSON line, serves, and exits 0 on SIGTERM."""
        process = subprocess.Popen(
            [sys.executable, "-m", "simulator", "--host", "127.0.0.1", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert process.stdout is not None
            urls = json.loads(process.stdout.readline())
            assert urls["pid"] == process.pid
            for key in ("site_url", "login_url", "admin_url", "tls_url", "portal_url"):
                assert urls[key].startswith(("http://127.0.0.1:", "https://127.0.0.1:")), key
            assert fetch(urls["site_url"]).status == 200
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
            assert process.stdout.read() == b""  # nothing but the one line on stdout
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()

    def test_admin_api_drives_the_child(self, simulator_process: SimulatorProcess) -> None:
        """Faults set through the admin API change what the child serves; counts come back."""
        simulator_process.set_fault("/", "http_503_maintenance")
        assert fetch(simulator_process.site_url).status == 503
        assert simulator_process.faults() == [
            {"host": "*", "path": "/", "fault": "http_503_maintenance"}
        ]
        simulator_process.clear_faults()
        assert fetch(simulator_process.site_url).status == 200
        counts = simulator_process.counts()
        assert counts.total("GET", "/") == 2
        assert counts.writes == 0

    def test_down_in_the_child(self, simulator_process: SimulatorProcess) -> None:
        """``down`` in the child refuses connections until cleared."""
        simulator_process.set_fault("/", "down")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(address(simulator_process.site_url), timeout=5).close()
        simulator_process.clear_faults()
        assert fetch(simulator_process.site_url).status == 200

    def test_fault_option_at_start(self) -> None:
        """``--fault PATH=FAULT`` switches a fault on from the start."""
        with SimulatorProcess(args=["--fault", f"login:{LOGIN_PATH}=http_500"]) as child:
            assert fetch(child.login_url).status == 500
            assert fetch(child.site_url).status == 200

    def test_bad_fault_option_exits_2_with_a_message(self) -> None:
        """An invalid ``--fault`` is a usage error (exit 2) naming the valid faults."""
        result = subprocess.run(
            [sys.executable, "-m", "simulator", "--fault", "/=explode"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 2
        assert "unknown fault 'explode'" in result.stderr
        assert result.stdout == ""

    def test_child_appends_writes_to_the_audit_file(self, tmp_path: Path) -> None:
        """A child inherits $VIGIE_SIMULATOR_AUDIT and appends the writes it receives."""
        audit = tmp_path / "audit.jsonl"
        env = {**os.environ, AUDIT_ENV: str(audit)}
        with SimulatorProcess(env=env) as child:
            fetch(child.site_url, "PUT", b"x")
            pid = child.pid
        records = read_audit(audit)
        assert [(r["method"], r["path"], r["pid"]) for r in records] == [("PUT", "/", pid)]


@dataclasses.dataclass
class BrowserRun:
    """A page of a real Chromium, its uncaught errors and the writes the route blocked."""

    page: Any
    errors: list[str]
    blocked: list[tuple[str, str]]


class Chromium:
    """One real headless Chromium on an event loop of its own thread, shared by a module."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._playwright: Any = None
        self._browser: Any = None
        self._call(self._launch())

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=120)

    async def _launch(self) -> None:
        from playwright.async_api import async_playwright

        from probes.browser_runtime import CHROMIUM_ARGS, DEBIAN_CHROMIUM

        self._playwright = await async_playwright().start()
        self._browser = await self._playwright.chromium.launch(
            executable_path=DEBIAN_CHROMIUM if Path(DEBIAN_CHROMIUM).exists() else None,
            args=list(CHROMIUM_ARGS),
        )

    def run(self, scenario: Callable[[BrowserRun], Awaitable[T]], *, block_writes: bool) -> T:
        """Run `scenario` on a page of a fresh context.

        With `block_writes`, every non-GET/HEAD request is aborted in the browser (as the
        browser probe's guard does) and listed in ``run.blocked``.
        """
        return self._call(self._run(scenario, block_writes))

    async def _run(self, scenario: Callable[[BrowserRun], Awaitable[T]], block_writes: bool) -> T:
        from playwright.async_api import Route

        context = await self._browser.new_context(service_workers="block")
        try:
            run = BrowserRun(await context.new_page(), [], [])
            if block_writes:

                async def guard(route: Route) -> None:
                    request = route.request
                    if request.method in ("GET", "HEAD"):
                        await route.continue_()
                    else:
                        run.blocked.append((request.method, urlsplit(request.url).path))
                        await route.abort()

                await context.route("**/*", guard)
            run.page.on("pageerror", lambda error: run.errors.append(str(error)))
            return await scenario(run)
        finally:
            await context.close()

    def close(self) -> None:
        """Close the browser and stop the thread."""
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()

    async def _close(self) -> None:
        await self._browser.close()
        await self._playwright.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    """A real Chromium shared by this module's browser tests (a fresh context per test)."""
    browser = Chromium()
    try:
        yield browser
    finally:
        browser.close()


def wait_for_writes(sim: Simulator, count: int) -> None:
    """Wait (at most 15 s) until `sim` has received `count` writes."""
    deadline = time.monotonic() + 15
    while sim.counts.writes < count and time.monotonic() < deadline:
        time.sleep(0.02)


FOUR_WRITES = {
    ("POST", WRITE_PATHS["beacon"]),
    ("PUT", WRITE_PATHS["xhr"]),
    ("POST", WRITE_PATHS["fetch"]),
    ("POST", WRITE_PATHS["form"]),
}


@pytest.mark.browser
@pytest.mark.slow
class TestPagesInChromium:
    """The pages do in a real browser what they promise: writes, journey and browser faults."""

    def test_pages_really_send_four_writes_without_a_guard(
        self, writable: Simulator, chromium: Chromium
    ) -> None:
        """Unguarded, each page's four writes reach the server (so a guard has work to do)."""

        async def scenario(run: BrowserRun) -> None:
            urls = (writable.portal_url, writable.login_url, writable.registration_url)
            for done, url in enumerate(urls, start=1):
                await run.page.goto(url)
                # Leaving a page cancels its hidden-form post if it has not left yet.
                deadline = time.monotonic() + 15
                while writable.counts.writes < 4 * done and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)

        chromium.run(scenario, block_writes=False)
        wait_for_writes(writable, 12)
        counts = writable.counts
        assert counts.writes == 12
        for method, path in FOUR_WRITES:
            assert counts.total(method, path, "site") == 1, (method, path)
            assert counts.total(method, path, "login") == 2, (method, path)

    def test_journey_renders_with_writes_blocked(
        self, simulator: Simulator, chromium: Chromium
    ) -> None:
        """With writes blocked in the browser, the whole journey renders and none arrives."""

        async def scenario(run: BrowserRun) -> str:
            page = run.page
            await page.goto(simulator.portal_url)
            title = await page.locator("app-root h1").inner_text()
            await page.click("text=Se connecter")
            await page.wait_for_selector("input[name=username]", state="visible")
            await page.wait_for_selector("input[name=password]", state="visible")
            await page.wait_for_selector("text=FranceConnect", state="visible")
            await page.click("a:has-text('Créer votre compte')")
            await page.wait_for_selector("input[type=email]", state="visible")
            await page.wait_for_timeout(200)  # let the last page's writes be attempted
            return str(title)

        run_blocked: list[tuple[str, str]] = []

        async def recording(run: BrowserRun) -> str:
            try:
                return await scenario(run)
            finally:
                run_blocked.extend(run.blocked)

        title = chromium.run(recording, block_writes=True)
        assert "étrangers" in title
        assert set(run_blocked) == FOUR_WRITES
        assert len(run_blocked) == 12  # four per page, three pages
        assert simulator.counts.writes == 0

    def test_js_error_leaves_the_app_empty(self, simulator: Simulator, chromium: Chromium) -> None:
        """js_error: an uncaught exception, an empty app-root and the spinner left on."""
        simulator.set_fault(PORTAL_PATH, "js_error")

        async def scenario(run: BrowserRun) -> tuple[bool, bool, list[str]]:
            await run.page.goto(simulator.portal_url)
            await run.page.wait_for_timeout(300)
            return (
                await run.page.locator("app-root").is_visible(),
                await run.page.locator("#app-loading").is_visible(),
                run.errors,
            )

        app_visible, spinner_visible, errors = chromium.run(scenario, block_writes=True)
        assert not app_visible
        assert spinner_visible
        assert any("simulated fault js_error" in error for error in errors)

    def test_slow_render_shows_the_app_after_the_delay(
        self, simulator: Simulator, chromium: Chromium
    ) -> None:
        """slow_render:1: the app's h1 appears, and not before one second."""
        simulator.set_fault(PORTAL_PATH, "slow_render:1")

        async def scenario(run: BrowserRun) -> float:
            start = time.monotonic()
            await run.page.goto(simulator.portal_url)
            await run.page.wait_for_selector("app-root h1", state="visible", timeout=15_000)
            return time.monotonic() - start

        assert chromium.run(scenario, block_writes=True) >= 1.0

    def test_maintenance_is_rendered_by_the_app(
        self, simulator: Simulator, chromium: Chromium
    ) -> None:
        """maintenance: the app renders an h1 "Site en maintenance" (HTTP status stays 200)."""
        simulator.set_fault(PORTAL_PATH, "maintenance")

        async def scenario(run: BrowserRun) -> str:
            await run.page.goto(simulator.portal_url)
            return str(await run.page.locator("app-root h1").inner_text())

        assert chromium.run(scenario, block_writes=True) == "Site en maintenance"

    def test_endless_spinner_never_renders_the_app(
        self, simulator: Simulator, chromium: Chromium
    ) -> None:
        """endless_spinner: well after a normal render time, only the spinner shows."""
        simulator.set_fault(PORTAL_PATH, "endless_spinner")

        async def scenario(run: BrowserRun) -> tuple[bool, bool, list[str]]:
            await run.page.goto(simulator.portal_url)
            await run.page.wait_for_timeout(1500)
            return (
                await run.page.locator("app-root").is_visible(),
                await run.page.locator("#app-loading").is_visible(),
                run.errors,
            )

        app_visible, spinner_visible, errors = chromium.run(scenario, block_writes=True)
        assert not app_visible
        assert spinner_visible
        assert errors == []

    def test_route_fault_applies_when_navigating_to_the_route(
        self, simulator: Simulator, chromium: Chromium
    ) -> None:
        """A fault on ``#/aide`` shows only once the app routes there."""
        simulator.set_fault(PORTAL_PATH + "#/aide", "maintenance")

        async def scenario(run: BrowserRun) -> tuple[str, str]:
            await run.page.goto(simulator.portal_url)
            home = await run.page.locator("app-root h1").inner_text()
            await run.page.click("text=Aide et contact")
            await run.page.wait_for_selector("h1:has-text('Site en maintenance')")
            return str(home), str(await run.page.locator("app-root h1").inner_text())

        home, aide = chromium.run(scenario, block_writes=True)
        assert "étrangers" in home
        assert aide == "Site en maintenance"

    def test_login_page_js_error_hides_the_fields(
        self, simulator: Simulator, chromium: Chromium
    ) -> None:
        """js_error on the login page: the fields stay hidden and the error is uncaught."""
        simulator.set_fault(LOGIN_PATH, "js_error")

        async def scenario(run: BrowserRun) -> tuple[bool, list[str]]:
            await run.page.goto(simulator.login_url)
            await run.page.wait_for_timeout(300)
            return await run.page.locator("input[name=username]").is_visible(), run.errors

        visible, errors = chromium.run(scenario, block_writes=True)
        assert not visible
        assert any("simulated fault js_error" in error for error in errors)

    def test_form_missing_shows_the_screen_without_email(
        self, simulator: Simulator, chromium: Chromium
    ) -> None:
        """form_missing: the account-creation screen renders, with no e-mail field."""
        simulator.set_fault(REGISTRATION_PATH, "form_missing")

        async def scenario(run: BrowserRun) -> tuple[str, int]:
            await run.page.goto(simulator.login_url)
            await run.page.click("a:has-text('Créer votre compte')")
            await run.page.wait_for_selector("h1:has-text('Création de votre compte')")
            return (
                str(await run.page.locator("h1").inner_text()),
                await run.page.locator("input[type=email]").count(),
            )

        title, emails = chromium.run(scenario, block_writes=True)
        assert title == "Création de votre compte"
        assert emails == 0
