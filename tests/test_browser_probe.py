"""Browser probe: real headless Chromium against local pages, read-only and bounded in time.

Every test stays on 127.0.0.1/localhost; one shared probe (one Chromium) per module keeps it fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time
import zlib
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import playwright
import pytest
from aiohttp import WSMsgType, web
from warcio.archiveiterator import ArchiveIterator

from config.settings import ConfigError, load_settings
from config.targets import Target
from config.vocabulary import Outcome
from probes.base import BrowserOptions, ProbeContext, ProbeRegistry, ProbeSettings
from probes.browser import (
    LOAD_STEP,
    MAX_BODY_BYTES,
    MAX_CONSOLE_ERRORS,
    BrowserProbe,
    classify_net_error,
    navigation_timings,
)
from probes.browser_runtime import (
    DEBIAN_CHROMIUM,
    PLAYWRIGHT_ENABLED_FEATURES,
    process_tree,
    process_tree_rss,
)
from probes.guard import ReadOnlyGuard
from probes.kinds import default_factories
from probes.observation import Observation

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent

needs_chromium = pytest.mark.skipif(
    not Path(DEBIAN_CHROMIUM).exists(), reason="Chromium is not installed (apt install chromium)"
)
browser_test = [pytest.mark.browser, pytest.mark.slow, needs_chromium]


# --------------------------------------------------------------------------- helpers


class LoopThread:
    """An event loop in a thread, so one browser serves every test of the module."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Awaitable[T], timeout: float = 60.0) -> T:
        async def wrapper() -> T:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(timeout)

    def close(self) -> None:
        async def drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.loop.shutdown_asyncgens()

        self.run(drain())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class DirStore:
    """A content-addressed artifact store in a directory (what the evidence store promises)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.kinds: dict[str, str] = {}

    def put(self, data: bytes, kind: str) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (self.root / digest).write_bytes(data)
        self.kinds[digest] = kind
        return digest

    def read(self, digest: str) -> bytes:
        return (self.root / digest).read_bytes()


class RecordingGuard(ReadOnlyGuard):
    """A guard that also remembers every request it was asked about."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[tuple[str, str]] = []

    def allows(self, method: str, url: str) -> bool:
        self.asked.append((method, url))
        return super().allows(method, url)


JOURNEY_PAGE = """<!doctype html><html lang="fr"><head><title>Connexion</title></head><body>
<h1>Connexion</h1>
<a id="creer" href="#/creation">Première visite ? Créer votre compte</a>
<a id="autre" href="/other">Autre page</a>
<label><input type="checkbox" id="cb"> Se souvenir</label>
<div id="app"></div>
<script>
function route() {
  document.getElementById('app').innerHTML = location.hash === '#/creation'
    ? '<form><input type="email" name="email" id="email"></form>' : '';
}
window.addEventListener('hashchange', route); route();
</script></body></html>"""

OTHER_PAGE = """<!doctype html><html><body><h1>Autre page</h1></body></html>"""

WRITES_PAGE = """<!doctype html><html><head><title>Écritures</title></head><body>
<h1>Page qui tente d'écrire</h1>
<form id="f" method="post" action="/w/form"><input name="a" value="1"></form>
<a id="ping" href="#fini" ping="/w/ping">suivre</a>
<script>
var pending = [];
function settle(p) { pending.push(Promise.resolve(p).catch(function () {})); }
navigator.sendBeacon('/w/beacon', 'x');
settle(new Promise(function (ok) {
  var x = new XMLHttpRequest(); x.open('PUT', '/w/xhr');
  x.onloadend = ok; x.send('y');
}));
settle(fetch('/w/fetch', {method: 'POST', body: 'z'}));
settle(fetch('/w/delete', {method: 'DELETE'}));
settle(new Promise(function (ok) {
  var src = "fetch('" + location.origin + "/w/worker', {method: 'POST'})"
    + ".catch(function () {}).then(function () { postMessage('done'); });";
  var w = new Worker(URL.createObjectURL(new Blob([src], {type: 'text/javascript'})));
  w.onmessage = ok; w.onerror = ok;
}));
settle(new Promise(function (ok) {
  window.addEventListener('message', function (e) { if (e.data === 'frame-done') ok(); });
  var f = document.createElement('iframe');
  f.src = 'http://localhost:' + location.port + '/frame';
  document.body.appendChild(f);
}));
settle(new Promise(function (ok) {
  try {
    var ws = new WebSocket('ws://' + location.host + '/ws');
    ws.onopen = function () { ws.send('write'); ws.close(); };
    ws.onclose = ok; ws.onerror = ok;
  } catch (e) { ok(); }
}));
setTimeout(function () { document.getElementById('f').submit(); }, 10);
Promise.all(pending).then(function () {
  setTimeout(function () {
    document.body.insertAdjacentHTML('beforeend', '<p id="ready">prêt</p>');
  }, 150);
});
</script></body></html>"""

FRAME_PAGE = """<!doctype html><html><body><script>
fetch('/w/frame', {method: 'POST', body: 'f'}).catch(function () {})
  .then(function () { parent.postMessage('frame-done', '*'); });
</script></body></html>"""

NEVER_LOADS_PAGE = """<!doctype html><html><body><h1>Chargement sans fin</h1>
<img src="/hang"></body></html>"""

LOOP_PAGE = """<!doctype html><html><body><h1>Boucle</h1>
<script>while (true) {}</script></body></html>"""

NOISY_PAGE = """<!doctype html><html><body><h1>Bruyante</h1><script>
for (var i = 0; i < 50; i++) console.error('erreur numéro ' + i + ' ' + 'x'.repeat(1000));
</script></body></html>"""

EXCEPTION_PAGE = """<!doctype html><html><body><h1>Exception</h1><script>
setTimeout(function () { throw new RangeError('plantage volontaire'); }, 0);
</script></body></html>"""

POPUP_PAGE = """<!doctype html><html><body><h1>Fenêtres</h1><script>
alert('Bonjour'); confirm('Continuer ?'); window.open('/other', '_blank');
document.body.insertAdjacentHTML('beforeend', '<p id="after">après les dialogues</p>');
</script></body></html>"""

COOKIE_PAGE = """<!doctype html><html><body><h1>Cookies</h1><script>
localStorage.setItem('seen', 'yes'); document.cookie = 'js=1; path=/';
document.body.insertAdjacentHTML('beforeend',
  '<p id="storage">' + (localStorage.length > 1 ? 'ancien' : 'neuf') + '</p>');
</script></body></html>"""

SLOW_DOC_PAGE = """<!doctype html><html><body><p id="late">enfin</p></body></html>"""


class Site:
    """Local pages for the tests; counts every request by method."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str, dict[str, str]]] = []
        self.release = asyncio.Event()
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def methods(self) -> set[str]:
        return {method for method, _, _, _ in self.requests}

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.host, request.path, dict(request.headers)))
        path = request.path
        pages = {
            "/": JOURNEY_PAGE,
            "/other": OTHER_PAGE,
            "/writes": WRITES_PAGE,
            "/frame": FRAME_PAGE,
            "/never-loads": NEVER_LOADS_PAGE,
            "/loop": LOOP_PAGE,
            "/noisy": NOISY_PAGE,
            "/exception": EXCEPTION_PAGE,
            "/popup": POPUP_PAGE,
            "/moves-on": MOVES_ON_PAGE,
        }
        if path == "/ws":
            socket_ = web.WebSocketResponse()
            await socket_.prepare(request)
            async for message in socket_:
                if message.type == WSMsgType.TEXT:
                    self.requests.append(("WS-MESSAGE", request.host, path, {}))
            return socket_
        if path == "/hang":
            await self.release.wait()
            return web.Response(status=503)
        if path == "/big":  # one byte over the limit, in a page that still renders
            filler = "x" * (MAX_BODY_BYTES + 1 - len(BIG_PAGE_HEAD) - len(BIG_PAGE_TAIL))
            return web.Response(
                text=BIG_PAGE_HEAD + filler + BIG_PAGE_TAIL, content_type="text/html"
            )
        if path == "/slow-image":
            await asyncio.sleep(1)
            return web.Response(status=404)
        if path == "/slow-doc":
            await asyncio.sleep(3)
            return web.Response(text=SLOW_DOC_PAGE, content_type="text/html")
        if path == "/cookie":
            response = web.Response(text=COOKIE_PAGE, content_type="text/html")
            response.set_cookie("session", "abc")
            return response
        if path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            return web.Response(
                text=f"<html><body><h1>Erreur {code}</h1></body></html>",
                status=code,
                content_type="text/html",
            )
        if path.startswith("/redirect/"):
            hops = int(path.rsplit("/", 1)[1])
            raise web.HTTPFound("/other" if hops <= 1 else f"/redirect/{hops - 1}")
        if path in pages and request.method in ("GET", "HEAD"):
            return web.Response(text=pages[path], content_type="text/html")
        if path == "/favicon.ico":
            return web.Response(status=404)
        return web.Response(text="écrit", status=200)


BIG_PAGE_HEAD = "<html><body><h1>Grande page</h1><!-- "
BIG_PAGE_TAIL = " --></body></html>"

# Leaves for /other once parsed, while an image still holds its load event back.
MOVES_ON_PAGE = """<html><body><h1>Redirection</h1><img src="/slow-image">
<script>addEventListener('DOMContentLoaded', () => location.replace('/other'));</script>
</body></html>"""


class Env:
    """The module's shared loop, site, artifact store and probe."""

    def __init__(self, loop: LoopThread, site: Site, store: DirStore, probe: BrowserProbe) -> None:
        self.loop = loop
        self.site = site
        self.store = store
        self.probe = probe

    def check(
        self,
        path: str = "/",
        steps: list[dict[str, Any]] | None = None,
        *,
        timeout: float = 10.0,
        capture: bool = False,
        guard: ReadOnlyGuard | None = None,
        url: str | None = None,
        **target: Any,
    ) -> Observation:
        spec = {"id": "essai", "kind": "browser", "url": url or self.site.url(path), **target}
        ctx = ProbeContext(
            target=Target.model_validate({**spec, "steps": steps or []}),
            timeout=timeout,
            guard=guard or ReadOnlyGuard(),
            capture=capture,
        )
        return self.loop.run(self.probe.check(ctx), timeout=timeout + 30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def png_size(data: bytes) -> tuple[int, int]:
    """Validate a PNG fully (signature, chunk CRCs, image data size) and return its size."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    pos, idat, width, height, depth, colour = 8, b"", 0, 0, 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
        if kind == b"IEND":
            break
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    row = 1 + (width * channels * depth + 7) // 8
    assert len(zlib.decompress(idat)) == row * height, "image data does not match IHDR"
    return width, height


def renderer_pids(browser_pid: int) -> list[int]:
    found = []
    for pid in process_tree(browser_pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        # Chromium rewrites its children's titles: the switches may be joined by spaces.
        if b"--type=renderer" in command and b"--top-chrome-webui" not in command:
            found.append(pid)
    return found


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    loop = LoopThread()
    site = Site()
    loop.run(site.start())
    store_dir = tmp_path_factory.mktemp("artifacts")
    store = DirStore(store_dir)
    settings = ProbeSettings(
        vantage="test",
        user_agent="Vigie-test/1.0 (+tests; lecture seule)",
        environment={"vantage": "test", "os": "test-os"},
        artifacts=store,
        browser=BrowserOptions(max_concurrency=1),
    )
    probe = BrowserProbe(settings, health_timeout=2.0, close_timeout=3.0, capture_timeout=2.0)
    try:
        yield Env(loop, site, store, probe)
    finally:
        loop.run(probe.aclose())
        loop.run(site.stop())
        loop.close()


# ----------------------------------------------------------------------------- tests


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Page.goto: net::ERR_NAME_NOT_RESOLVED at http://x.invalid/", Outcome.DNS_ERROR),
        ("net::ERR_CONNECTION_REFUSED at http://127.0.0.1:9/", Outcome.CONNECT_ERROR),
        ("net::ERR_CERT_DATE_INVALID at https://x/", Outcome.TLS_ERROR),
        ("net::ERR_SSL_PROTOCOL_ERROR", Outcome.TLS_ERROR),
        ("net::ERR_TIMED_OUT", Outcome.TIMEOUT),
        ("net::ERR_TOO_MANY_REDIRECTS", Outcome.REDIRECT_LOOP),
        ("net::ERR_EMPTY_RESPONSE", Outcome.PROTOCOL_ERROR),
        ("net::ERR_SOMETHING_NEW", Outcome.STEP_FAILED),
    ],
)
class TestClassifyNetError:
    def test_maps_chromium_codes(self, message: str, expected: Outcome) -> None:
        """Chromium's net::ERR_* codes map to the same outcomes the HTTP probe uses."""
        result = classify_net_error(message)
        assert result is not None
        assert result[0] is expected


class TestNavigationTimings:
    def test_converts_milliseconds_to_seconds(self) -> None:
        """A navigation timing entry becomes ttfb/DOMContentLoaded/load and HTTP-like phases."""
        timings, phases = navigation_timings(
            {
                "domainLookupStart": 1.0,
                "domainLookupEnd": 11.0,
                "connectStart": 11.0,
                "secureConnectionStart": 21.0,
                "connectEnd": 51.0,
                "requestStart": 52.0,
                "responseStart": 152.0,
                "responseEnd": 252.0,
                "domContentLoadedEventEnd": 400.0,
                "loadEventEnd": 500.0,
            }
        )
        assert timings == {"ttfb": 0.152, "dom_content_loaded": 0.4, "load": 0.5}
        assert phases == {
            "resolve": 0.01,
            "connect": 0.01,
            "tls": 0.03,
            "processing": 0.1,
            "transfer": 0.1,
        }

    def test_no_classify_without_entry(self) -> None:
        """An empty entry (no navigation happened) gives no timings rather than zeros."""
        assert navigation_timings({}) == ({}, {})

    def test_none_is_not_a_message(self) -> None:
        """A message without a Chromium network code is not classified as a network error."""
        assert classify_net_error("Timeout 3000ms exceeded") is None


class TestProcessTree:
    def test_tree_lists_children_and_sums_memory(self) -> None:
        """process_tree finds a child process and process_tree_rss counts its memory."""
        child = subprocess.Popen(["sleep", "30"])
        try:
            tree = process_tree(os.getpid())
            assert tree[0] == os.getpid()
            assert child.pid in tree
            assert process_tree_rss(os.getpid()) > process_tree_rss(child.pid) > 0
        finally:
            child.kill()
            child.wait()


class TestRegistry:
    def test_default_factories_build_a_browser_probe(self) -> None:
        """The built-in registry builds this probe for targets of kind 'browser'."""
        settings = ProbeSettings(vantage="test", user_agent="Vigie-test/1.0", environment={})
        registry = ProbeRegistry(settings, default_factories())
        probe = registry.get("browser")
        assert isinstance(probe, BrowserProbe)
        assert probe.kind == "browser"
        assert probe.runtime.pid is None  # launched lazily, at the first check
        asyncio.run(registry.aclose())


def _journey_config(tmp_path: Path, second_step: str) -> Path:
    """A vigie.yaml with one browser target: a click, then `second_step` (YAML flow map)."""
    config = tmp_path / "vigie.yaml"
    config.write_text(
        "targets:\n"
        "  - id: essai\n"
        "    kind: browser\n"
        "    url: http://127.0.0.1:8080/\n"
        "    steps:\n"
        "      - {click: 'text=Se connecter'}\n"
        f"      - {second_step}\n",
        "utf-8",
    )
    return config


class TestRefusedSteps:
    @pytest.mark.parametrize(
        "action", ["fill", "type", "press", "select_option", "check", "submit"]
    )
    def test_config_refuses_acting_steps(self, tmp_path: Path, action: str) -> None:
        """A browser step that would type, fill, select, check, press or submit fails config."""
        config = _journey_config(tmp_path, f"{{{action}: 'input[name=username]'}}")
        with pytest.raises(ConfigError) as caught:
            load_settings(config)
        message = str(caught.value)
        assert f"{config}: targets[0].steps[1]" in message
        assert f"step '{action}' is refused" in message
        assert "read-only" in message

    def test_config_accepts_read_only_journey(self, tmp_path: Path) -> None:
        """The same journey with only read-only steps is valid."""
        config = _journey_config(tmp_path, "{expect_visible: 'input[type=email]', timeout: 5s}")
        settings = load_settings(config)
        assert [s.action for s in settings.targets[0].steps] == ["click", "expect_visible"]


@pytest.mark.browser
@pytest.mark.slow
@needs_chromium
class TestJourney:
    def test_three_step_journey_succeeds(self, env: Env) -> None:
        """Load, click the account-creation link, see the e-mail field: ok with step timings."""
        obs = env.check(
            "/",
            [
                {"name": "page-de-connexion", "expect_visible": "#creer"},
                {"name": "lien-creation", "click": "a:has-text('Créer votre compte')"},
                {"name": "formulaire", "expect_visible": "input[type=email]"},
            ],
        )
        assert obs.outcome is Outcome.OK, obs.error
        assert obs.success
        assert [s.name for s in obs.steps] == [
            LOAD_STEP,
            "page-de-connexion",
            "lien-creation",
            "formulaire",
        ]
        assert all(s.ok and s.duration_s > 0 for s in obs.steps)
        assert obs.http_status == 200
        assert obs.final_url == env.site.url("/#/creation")
        assert obs.error is None
        assert obs.artifacts == {}
        assert 0 < obs.timings["ttfb"] <= obs.timings["dom_content_loaded"] <= obs.timings["load"]
        assert set(obs.phases) == {"resolve", "connect", "processing", "transfer"}
        assert obs.remote_ip == "127.0.0.1"
        assert obs.body_sha256 == hashlib.sha256(JOURNEY_PAGE.encode()).hexdigest()

    def test_body_over_the_limit_is_not_hashed(self, env: Env) -> None:
        """A document over MAX_BODY_BYTES is checked as usual, its body left in the browser."""
        obs = env.check("/big", [{"expect_text": "Grande page"}])
        assert obs.outcome is Outcome.OK, obs.error
        assert obs.body_sha256 is None
        assert obs.body_bytes is None

    def test_observation_records_environment(self, env: Env) -> None:
        """The environment names the browser, the user agent and the fresh profile."""
        obs = env.check("/other")
        assert obs.environment["fresh_profile"] is True
        assert obs.environment["user_agent"] == env.probe.settings.user_agent
        assert obs.environment["browser"].startswith("chromium ")
        assert obs.environment["os"] == "test-os"
        _, _, _, headers = env.site.requests[-1]
        assert headers["User-Agent"] == env.probe.settings.user_agent
        assert json.loads(obs.to_json())["environment"]["fresh_profile"] is True

    def test_each_check_has_a_fresh_profile(self, env: Env) -> None:
        """Cookies and storage set by one check are gone at the next one."""
        first = env.check("/cookie", [{"expect_text": "neuf"}])
        second = env.check("/cookie", [{"expect_text": "neuf"}])
        assert first.outcome is Outcome.OK, first.error
        assert second.outcome is Outcome.OK, second.error
        cookie_requests = [h for _, _, p, h in env.site.requests if p == "/cookie"]
        assert "Cookie" not in cookie_requests[-1]

    def test_goto_and_expectations(self, env: Env) -> None:
        """goto (relative), expect_url (substring, glob, regex), expect_text and wait_for work."""
        obs = env.check(
            "/",
            [
                {"goto": "/other"},
                {"expect_url": "/other"},
                {"expect_url": "**/other"},
                {"expect_url": "/:\\d+/other$/"},
                {"expect_text": "Autre page"},
                {"wait_for": "h1"},
                {"wait_for": "networkidle"},
                {"wait_for": "50ms"},
                {"fail_if_text": "Site en maintenance"},
            ],
        )
        assert obs.outcome is Outcome.OK, obs.error
        assert len(obs.steps) == 10
        assert obs.final_url == env.site.url("/other")

    def test_click_follows_a_link_to_another_page(self, env: Env) -> None:
        """A click on a link navigates and waits for the new page to load."""
        obs = env.check("/", [{"click": "#autre"}, {"expect_text": "Autre page"}])
        assert obs.outcome is Outcome.OK, obs.error
        assert obs.final_url == env.site.url("/other")

    def test_click_refuses_a_checkbox(self, env: Env) -> None:
        """click only presses links and buttons: a checkbox fails the step, unticked."""
        obs = env.check("/", [{"click": "#cb"}])
        assert obs.outcome is Outcome.STEP_FAILED
        assert obs.error is not None
        assert "not a link or a button" in obs.error
        assert "step 2/2 'click:#cb'" in obs.error

    def test_fail_if_text_fails_when_shown(self, env: Env) -> None:
        """fail_if_text fails the journey when the page shows the text."""
        obs = env.check("/", [{"name": "pas-de-maintenance", "fail_if_text": "Connexion"}])
        assert obs.outcome is Outcome.STEP_FAILED
        assert obs.error is not None
        assert "'pas-de-maintenance'" in obs.error
        assert "the page shows 'Connexion'" in obs.error

    def test_missing_element_is_step_failed_with_captures(self, env: Env) -> None:
        """A missing element fails its step; a valid PNG screenshot and the HTML are stored."""
        obs = env.check("/", [{"name": "formulaire", "expect_visible": "#absent", "timeout": "1s"}])
        assert obs.outcome is Outcome.STEP_FAILED
        assert obs.steps[-1].name == "formulaire"
        assert not obs.steps[-1].ok
        assert obs.error is not None
        assert "no visible element matches '#absent' within 1.0 s" in obs.error
        assert sorted(obs.artifacts.values()) == ["html", "screenshot", "warc"]
        by_kind = {kind: digest for digest, kind in obs.artifacts.items()}
        # The WARC holds what crossed the read-only proxy: the page's request and its answer.
        records = {}
        for record in ArchiveIterator(io.BytesIO(env.store.read(by_kind["warc"]))):
            uri = record.rec_headers.get_header("WARC-Target-URI")
            records[record.rec_type, uri] = record.content_stream().read()
        assert records["request", env.site.url("/")] == b""  # GET: no body
        assert "Première visite".encode() in records["response", env.site.url("/")]
        png = env.store.read(by_kind["screenshot"])
        assert hashlib.sha256(png).hexdigest() == by_kind["screenshot"]
        width, height = png_size(png)
        assert width > 100
        assert height > 100
        html = env.store.read(by_kind["html"]).decode("utf-8")
        assert "Première visite" in html

    def test_success_screenshot_only_when_asked(self, env: Env) -> None:
        """A success stores a screenshot (no HTML) only when the scheduler asks for a capture."""
        quiet = env.check("/other")
        captured = env.check("/other", capture=True)
        assert quiet.outcome is captured.outcome is Outcome.OK
        assert quiet.artifacts == {}
        assert list(captured.artifacts.values()) == ["screenshot"]
        png_size(env.store.read(next(iter(captured.artifacts))))

    def test_console_errors_are_bounded(self, env: Env) -> None:
        """Console errors and uncaught exceptions are kept, bounded in number and length."""
        obs = env.check("/noisy", [{"wait_for": "200ms"}])
        assert obs.outcome is Outcome.OK, obs.error
        assert len(obs.console_errors) == MAX_CONSOLE_ERRORS + 1
        assert obs.console_errors[0].startswith("erreur numéro 0 xxx")
        assert all(len(e) <= 300 for e in obs.console_errors)
        assert obs.console_errors[-1].endswith("more errors not listed")

    def test_uncaught_exception_is_recorded(self, env: Env) -> None:
        """An uncaught page exception is listed with its type and message, without failing."""
        obs = env.check("/exception", [{"expect_text": "Exception"}, {"wait_for": "100ms"}])
        assert obs.outcome is Outcome.OK, obs.error
        assert obs.console_errors == ("Uncaught RangeError: plantage volontaire",)

    def test_dialogs_dismissed_and_popups_closed(self, env: Env) -> None:
        """alert/confirm are dismissed and a pop-up window is closed; the journey goes on."""
        obs = env.check("/popup", [{"expect_visible": "#after"}, {"wait_for": "200ms"}])
        assert obs.outcome is Outcome.OK, obs.error
        assert obs.final_url == env.site.url("/popup")


@pytest.mark.browser
@pytest.mark.slow
@needs_chromium
class TestBrowserFlags:
    def test_network_service_runs_in_the_browser_process(self, env: Env) -> None:
        """Our --enable-features is the one Chromium keeps: no separate network process."""
        assert env.check("/other").outcome is Outcome.OK
        pid = env.probe.runtime.pid
        assert pid is not None
        commands = []
        for child in process_tree(pid):
            with contextlib.suppress(OSError):
                commands.append(Path(f"/proc/{child}/cmdline").read_bytes())
        assert any(b"--type=zygote" in command for command in commands)  # the listing works
        assert not any(b"=network.mojom.NetworkService" in command for command in commands)

    def test_playwright_feature_list_is_kept(self) -> None:
        """Replacing Playwright's --enable-features must not drop any feature it enables."""
        bundle = Path(playwright.__file__).parent / "driver/package/lib/coreBundle.js"
        text = bundle.read_text("utf-8")
        start = text.find("enabledFeatures = () => [")
        assert start >= 0, f"Playwright's feature list moved: read {bundle} and update"
        block = text[start : text.index("]", start)]
        theirs = set(re.findall(r'"([A-Za-z0-9]+)"', block))
        assert theirs, block
        assert theirs <= set(PLAYWRIGHT_ENABLED_FEATURES), (
            f"update PLAYWRIGHT_ENABLED_FEATURES in probes/browser_runtime.py to {sorted(theirs)}"
        )


@pytest.mark.browser
@pytest.mark.slow
@needs_chromium
class TestReadOnly:
    def test_no_write_reaches_the_server(self, env: Env) -> None:
        """Beacon, XHR PUT, fetch POST/DELETE, form POST, ping, worker, iframe and WebSocket writes
        are all stopped in the browser; the server sees only GETs, the observation lists them."""
        before = len(env.site.requests)
        guard = RecordingGuard()
        obs = env.check(
            "/writes",
            [{"expect_visible": "#ready"}, {"click": "#ping"}, {"expect_url": "#fini"}],
            guard=guard,
        )
        assert obs.outcome is Outcome.OK, obs.error
        seen = env.site.requests[before:]
        assert {method for method, _, _, _ in seen} == {"GET"}
        blocked = {(b.method, b.url) for b in obs.blocked_requests}
        site = env.site.url

        def cross(path: str) -> str:
            return env.site.url(path, host="localhost")

        assert {
            ("POST", site("/w/beacon")),
            ("PUT", site("/w/xhr")),
            ("POST", site("/w/fetch")),
            ("DELETE", site("/w/delete")),
            ("POST", site("/w/form")),
            ("POST", site("/w/ping")),
            ("POST", site("/w/worker")),
            ("POST", cross("/w/frame")),
            ("WEBSOCKET", f"ws://127.0.0.1:{env.site.port}/ws"),
        } == blocked
        # Every request that reached the server had asked the guard first.
        asked = {url for _, url in guard.asked}
        for _, host, path, _ in seen:
            assert f"http://{host}{path}" in asked or f"http://{host}{path}?" in asked

    def test_blocked_form_post_keeps_the_page(self, env: Env) -> None:
        """A blocked form submission leaves the page in place instead of an error page."""
        obs = env.check("/writes", [{"expect_visible": "#ready"}, {"expect_text": "qui tente"}])
        assert obs.outcome is Outcome.OK, obs.error
        assert obs.final_url == env.site.url("/writes")
        assert "ERR_BLOCKED_BY_CLIENT" not in " ".join(obs.console_errors)


@pytest.mark.browser
@pytest.mark.slow
@needs_chromium
class TestFailures:
    def test_http_error_status(self, env: Env) -> None:
        """A main document answering 503 is an http_status failure with its status."""
        obs = env.check("/status/503", [{"expect_visible": "h1"}])
        assert obs.outcome is Outcome.HTTP_STATUS
        assert obs.http_status == 503
        assert [s.name for s in obs.steps] == [LOAD_STEP]
        assert obs.error is not None
        assert "HTTP 503" in obs.error
        assert sorted(obs.artifacts.values()) == ["html", "screenshot", "warc"]

    def test_expected_error_status_passes(self, env: Env) -> None:
        """A status listed in expect.status is accepted, as for HTTP targets."""
        obs = env.check("/status/404", [{"expect_text": "Erreur 404"}], expect={"status": [404]})
        assert obs.outcome is Outcome.OK, obs.error

    def test_redirects_are_counted(self, env: Env) -> None:
        """Redirects of the main document are followed and counted."""
        obs = env.check("/redirect/2")
        assert obs.outcome is Outcome.OK, obs.error
        assert obs.redirects == 2
        assert obs.final_url == env.site.url("/other")

    def test_page_moving_on_before_its_load_event(self, env: Env) -> None:
        """A script navigating away before the load event: the wait goes on in the new page."""
        obs = env.check("/moves-on", [{"expect_text": "Autre page"}])
        assert obs.outcome is Outcome.OK, obs.error
        assert obs.final_url == env.site.url("/other")

    def test_dns_failure(self, env: Env) -> None:
        """A host name that does not resolve is a dns_error (.invalid is answered locally)."""
        obs = env.check(url="http://vigie-test.invalid/")
        assert obs.outcome is Outcome.DNS_ERROR
        assert obs.error is not None
        assert "ERR_NAME_NOT_RESOLVED" in obs.error

    def test_connection_refused(self, env: Env) -> None:
        """A closed port is a connect_error."""
        obs = env.check(url=f"http://127.0.0.1:{free_port()}/")
        assert obs.outcome is Outcome.CONNECT_ERROR
        assert obs.http_status is None

    def test_slow_document_times_out(self, env: Env) -> None:
        """A document slower than the check timeout is a timeout, cut at the deadline."""
        obs = env.check("/slow-doc", timeout=1.0)
        assert obs.outcome is Outcome.TIMEOUT
        assert obs.duration_s < 3
        assert obs.error is not None
        assert "did not finish loading" in obs.error

    def test_infinite_script_loop_cannot_wedge_the_probe(self, env: Env) -> None:
        """A page stuck in an infinite JS loop is a timeout; the probe stays usable."""
        cut = env.check("/loop", timeout=1.5)
        after = env.check("/other")
        assert cut.outcome is Outcome.TIMEOUT
        assert after.outcome is Outcome.OK, after.error

    def test_page_crash_is_browser_error(self, env: Env) -> None:
        """A renderer killed during a check gives browser_error; the next check works."""

        async def crash_while_loading() -> Observation:
            target = Target(id="essai", kind="browser", url=env.site.url("/never-loads"))
            check = asyncio.ensure_future(env.probe.check(ProbeContext(target=target, timeout=10)))
            before = len(env.site.requests)
            for _ in range(200):
                await asyncio.sleep(0.05)
                pid = env.probe.runtime.pid
                hanging = any(p == "/hang" for _, _, p, _ in env.site.requests[before:])
                if pid and hanging:
                    for victim in renderer_pids(pid):
                        os.kill(victim, signal.SIGKILL)
                    break
            return await check

        obs = env.loop.run(crash_while_loading())
        after = env.check("/other")
        assert obs.outcome is Outcome.BROWSER_ERROR
        assert obs.error is not None
        assert "crashed" in obs.error
        assert after.outcome is Outcome.OK, after.error


@pytest.mark.browser
@pytest.mark.slow
@needs_chromium
class TestBrowserLifecycle:
    def test_relaunch_after_freeze(self, env: Env) -> None:
        """A browser that stops answering (SIGSTOP) is killed and replaced within the check."""
        assert env.check("/other").outcome is Outcome.OK
        pid = env.probe.runtime.pid
        launches = env.probe.runtime.launches
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            obs = env.check("/other")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        assert obs.outcome is Outcome.OK, obs.error
        assert env.probe.runtime.launches == launches + 1
        assert env.loop.run(env.probe.healthy())

    def test_unstartable_browser_is_browser_error(self, tmp_path: Path) -> None:
        """A browser executable that does not exist gives browser_error naming it, no raise."""
        settings = ProbeSettings(
            vantage="test",
            user_agent="Vigie-test/1.0",
            environment={},
            browser=BrowserOptions(executable=str(tmp_path / "no-such-chromium")),
        )

        async def run() -> Observation:
            probe = BrowserProbe(settings, launch_timeout=10)
            try:
                target = Target(id="essai", kind="browser", url="http://127.0.0.1:9/")
                return await probe.check(ProbeContext(target=target, timeout=5))
            finally:
                await probe.aclose()

        obs = asyncio.run(run())
        assert obs.outcome is Outcome.BROWSER_ERROR
        assert obs.error is not None
        assert "no-such-chromium" in obs.error
        assert obs.steps == ()


def driver_pids() -> set[int]:
    """Pids of running Playwright drivers (Node.js processes), children of this process."""
    found = set()
    for pid in process_tree(os.getpid())[1:]:
        with contextlib.suppress(OSError):  # a process that exited meanwhile is no driver
            if b"run-driver" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.add(pid)
    return found


@pytest.mark.browser
def _lifecycle_probe(browser: BrowserOptions) -> BrowserProbe:
    """A browser probe of its own (its own Chromium), for the tests of the browser's life."""
    settings = ProbeSettings(
        vantage="test",
        user_agent="Vigie-test/1.0 (+tests; lecture seule)",
        environment={"vantage": "test"},
        browser=browser,
    )
    return BrowserProbe(settings, health_timeout=2.0, close_timeout=3.0)


def _slow_and_quick(env: Env) -> tuple[ProbeContext, ProbeContext]:
    """A journey of about 3 s (`/slow-doc`) and a quick one, to overlap."""

    def journey(name: str, path: str) -> ProbeContext:
        target = Target(id=name, kind="browser", url=env.site.url(path))
        return ProbeContext(target=target, timeout=10, guard=ReadOnlyGuard())

    return journey("lent", "/slow-doc"), journey("vite", "/other")


def _check_with(env: Env, probe: BrowserProbe, path: str, timeout: float = 10) -> Observation:
    """One journey of `probe` to `path` of the local site."""
    target = Target.model_validate({"id": "essai", "kind": "browser", "url": env.site.url(path)})
    ctx = ProbeContext(target=target, timeout=timeout, guard=ReadOnlyGuard())
    return env.loop.run(probe.check(ctx), timeout=timeout + 30)


@pytest.mark.slow
@needs_chromium
class TestIdleClose:
    """browser.idle_close: between checks the browser and its driver stop, then come back."""

    def probe(self, env: Env, idle_close: float | None) -> BrowserProbe:
        return _lifecycle_probe(BrowserOptions(max_concurrency=2, idle_close=idle_close))

    def check(self, env: Env, probe: BrowserProbe, path: str, timeout: float = 10) -> Observation:
        return _check_with(env, probe, path, timeout)

    def test_idle_browser_and_driver_stop_and_come_back(self, env: Env) -> None:
        """After idle_close without a check, no browser or driver runs; the next check works."""
        before = driver_pids()
        probe = self.probe(env, idle_close=0.5)
        try:
            assert self.check(env, probe, "/other").outcome is Outcome.OK
            pid = probe.runtime.pid
            assert pid is not None
            assert driver_pids() - before
            deadline = time.monotonic() + 10
            while probe.runtime.idle_closes == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert probe.runtime.idle_closes == 1
            assert not probe.runtime.connected
            assert probe.runtime.proxy is None  # the read-only proxy stops with its browser
            assert pid not in process_tree(os.getpid())
            assert not driver_pids() - before
            obs = self.check(env, probe, "/other")
            assert obs.outcome is Outcome.OK, obs.error
            assert probe.runtime.launches == 2
            assert probe.runtime.connected
            assert probe.runtime.proxy is not None
        finally:
            env.loop.run(probe.aclose())

    def test_no_idle_close_while_a_check_runs(self, env: Env) -> None:
        """A check longer than idle_close keeps the browser: only idle time counts."""
        probe = self.probe(env, idle_close=0.5)
        try:
            assert self.check(env, probe, "/other").outcome is Outcome.OK

            async def overlapping() -> tuple[Observation, Observation]:
                slow, quick = _slow_and_quick(env)
                first = asyncio.ensure_future(probe.check(slow))
                await asyncio.sleep(0.2)
                second = await probe.check(quick)  # ends while the slow one still runs
                return await first, second

            slow_obs, quick_obs = env.loop.run(overlapping(), timeout=40)
            assert slow_obs.outcome is Outcome.OK, slow_obs.error
            assert quick_obs.outcome is Outcome.OK, quick_obs.error
            assert slow_obs.duration_s > 2.5  # well beyond idle_close
            assert probe.runtime.idle_closes == 0
            assert probe.runtime.launches == 1
        finally:
            env.loop.run(probe.aclose())

    def test_without_idle_close_the_browser_stays(self, env: Env) -> None:
        """idle_close None (the library default): one browser for the probe's whole life."""
        probe = self.probe(env, idle_close=None)
        try:
            assert self.check(env, probe, "/other").outcome is Outcome.OK
            time.sleep(1.0)
            assert probe.runtime.connected
            assert self.check(env, probe, "/other").outcome is Outcome.OK
            assert probe.runtime.launches == 1
            assert probe.runtime.idle_closes == 0
        finally:
            env.loop.run(probe.aclose())


@pytest.mark.slow
@needs_chromium
class TestRenewal:
    """browser.restart_after: a fresh browser after that many journeys, never mid-journey."""

    def probe(self, restart_after: int) -> BrowserProbe:
        return _lifecycle_probe(BrowserOptions(max_concurrency=2, restart_after=restart_after))

    def test_a_fresh_browser_after_the_limit(self, env: Env) -> None:
        """Two journeys per browser: the third starts a new Chromium; the old one is gone."""
        probe = self.probe(restart_after=2)
        try:
            assert _check_with(env, probe, "/other").outcome is Outcome.OK
            first = probe.runtime.pid
            assert _check_with(env, probe, "/other").outcome is Outcome.OK
            assert probe.runtime.launches == 1
            obs = _check_with(env, probe, "/other")
            assert obs.outcome is Outcome.OK, obs.error
            assert probe.runtime.renewals == 1
            assert probe.runtime.launches == 2
            assert probe.runtime.pid not in (None, first)
            assert first not in process_tree(os.getpid())
        finally:
            env.loop.run(probe.aclose())

    def test_journeys_in_flight_finish_first(self, env: Env) -> None:
        """A journey due for a fresh browser waits for the one in flight, and that wait is not
        in its duration: the renewal never cuts a journey or counts against a target."""
        probe = self.probe(restart_after=1)
        try:
            assert _check_with(env, probe, "/other").outcome is Outcome.OK

            async def overlapping() -> tuple[Observation, Observation, float]:
                slow, quick = _slow_and_quick(env)
                first = asyncio.ensure_future(probe.check(slow))
                while probe.runtime.launches < 2 or probe.runtime.journeys < 1:
                    await asyncio.sleep(0.01)  # the slow journey runs on a renewed browser
                began = time.monotonic()
                second = await probe.check(quick)  # due again: waits for the slow one
                return await first, second, time.monotonic() - began

            slow_obs, quick_obs, waited = env.loop.run(overlapping(), timeout=60)
            assert slow_obs.outcome is Outcome.OK, slow_obs.error  # not cut by the renewal
            assert quick_obs.outcome is Outcome.OK, quick_obs.error
            assert probe.runtime.renewals == 2
            assert probe.runtime.launches == 3
            assert waited > slow_obs.duration_s / 2  # it did wait for the slow journey...
            assert quick_obs.duration_s < waited - 1.0  # ...and the wait is not its duration
        finally:
            env.loop.run(probe.aclose())


# ------------------------------------------------------------------ against the simulator


class SimEnv:
    """The shared probe plus an in-process simulator and the shipped ANEF journeys."""

    def __init__(self, env: Env, sim: Any) -> None:
        self.env = env
        self.sim = sim
        shipped = {t.id: t for t in load_settings(REPO / "vigie.yaml").targets}
        self.journeys = {
            "creation": shipped["anef-creation-compte"].model_copy(update={"url": sim.login_url}),
            "portail": shipped["anef-portail"].model_copy(update={"url": sim.portal_url}),
            "connexion": shipped["anef-connexion-navigateur"].model_copy(
                update={"url": sim.login_url}
            ),
        }

    def check(self, journey: str, timeout: float = 15.0) -> Observation:
        ctx = ProbeContext(target=self.journeys[journey], timeout=timeout)
        return self.env.loop.run(self.env.probe.check(ctx), timeout=timeout + 30)


@pytest.fixture(scope="module")
def sim_env(env: Env) -> Iterator[SimEnv]:
    from simulator.server import Simulator

    sim = Simulator(host="127.0.0.1")
    env.loop.run(sim.start())
    try:
        yield SimEnv(env, sim)
    finally:
        env.loop.run(sim.stop())


@pytest.fixture
def simulator(sim_env: SimEnv) -> Iterator[SimEnv]:
    sim_env.sim.clear_faults()
    sim_env.sim.reset_counts()
    try:
        yield sim_env
    finally:
        sim_env.sim.clear_faults()


@pytest.mark.browser
@pytest.mark.slow
@needs_chromium
class TestSimulatorJourneys:
    def test_account_creation_journey(self, simulator: SimEnv) -> None:
        """The shipped account-creation journey succeeds on the simulator with step timings."""
        obs = simulator.check("creation")
        assert obs.outcome is Outcome.OK, obs.error
        assert [s.name for s in obs.steps] == [
            LOAD_STEP,
            "page-de-connexion",
            "lien-creation",
            "formulaire",
        ]
        assert all(s.ok and s.duration_s > 0 for s in obs.steps)
        assert obs.final_url is not None
        assert "/login-actions/registration" in obs.final_url
        assert {"ttfb", "dom_content_loaded", "load"} <= set(obs.timings)

    def test_portal_and_login_journeys(self, simulator: SimEnv) -> None:
        """The shipped portal and login-screen journeys succeed on the simulator."""
        portal = simulator.check("portail")
        login = simulator.check("connexion")
        assert portal.outcome is Outcome.OK, portal.error
        assert login.outcome is Outcome.OK, login.error
        assert len(login.steps) == 4

    def test_no_write_reaches_the_simulator(self, simulator: SimEnv) -> None:
        """Every page tries a beacon, an XHR PUT, a fetch POST and a form POST: none arrives."""
        from simulator.pages import WRITE_PATHS

        obs = simulator.check("creation")
        assert obs.outcome is Outcome.OK, obs.error
        counts = simulator.sim.counts
        assert counts.writes == 0
        assert set(counts.by_method()) == {"GET"}
        assert counts.total("GET") > 0
        blocked = {(b.method, urlsplit(b.url).path) for b in obs.blocked_requests}
        assert {
            ("POST", WRITE_PATHS["beacon"]),
            ("PUT", WRITE_PATHS["xhr"]),
            ("POST", WRITE_PATHS["fetch"]),
            ("POST", WRITE_PATHS["form"]),
        } == blocked
        # Two pages (login, then registration), four writes each.
        assert len(obs.blocked_requests) == 8


# (journey, path, fault, host, timeout, outcome, failing step)
SIM_FAULTS = [
    ("portail", "/particuliers/", "js_error", "site", 2.0, Outcome.STEP_FAILED, "application"),
    (
        "portail",
        "/particuliers/",
        "maintenance",
        "site",
        5.0,
        Outcome.STEP_FAILED,
        "pas-de-maintenance",
    ),
    (
        "portail",
        "/particuliers/",
        "endless_spinner",
        "site",
        2.0,
        Outcome.STEP_FAILED,
        "application",
    ),
    (
        "portail",
        "/particuliers/",
        "slow_render:30",
        "site",
        2.0,
        Outcome.STEP_FAILED,
        "application",
    ),
    ("portail", "/particuliers/", "slow_render:0.3", "site", 10.0, Outcome.OK, None),
    (
        "portail",
        "/particuliers/",
        "http_503_maintenance",
        "site",
        5.0,
        Outcome.HTTP_STATUS,
        LOAD_STEP,
    ),
    ("creation", "*", "js_error", "login", 2.0, Outcome.STEP_FAILED, "page-de-connexion"),
    (
        "creation",
        "/auth/realms/anef-usagers/login-actions/registration",
        "form_missing",
        "login",
        3.0,
        Outcome.STEP_FAILED,
        "formulaire",
    ),
    ("creation", "*", "down", "login", 5.0, Outcome.CONNECT_ERROR, LOAD_STEP),
]


@pytest.mark.browser
@pytest.mark.slow
@needs_chromium
class TestSimulatorFaults:
    @pytest.mark.parametrize(
        ("journey", "path", "fault", "host", "timeout", "outcome", "step"),
        SIM_FAULTS,
        ids=[f"{j}-{f}" for j, _, f, _, _, _, _ in SIM_FAULTS],
    )
    def test_fault_is_classified(
        self,
        simulator: SimEnv,
        journey: str,
        path: str,
        fault: str,
        host: str,
        timeout: float,
        outcome: Outcome,
        step: str | None,
    ) -> None:
        """Each simulated failure gives the expected outcome at the expected step."""
        simulator.sim.set_fault(path, fault, host=host)
        obs = simulator.check(journey, timeout=timeout)
        assert obs.outcome is outcome, obs.error
        if step is None:
            assert obs.error is None
            assert obs.artifacts == {}
        else:
            failed = [s for s in obs.steps if not s.ok]
            assert [s.name for s in failed] == [step]
            assert obs.error is not None
            assert f"'{step}'" in obs.error
            assert "screenshot" in obs.artifacts.values()
        if fault == "js_error":
            assert any("simulated fault js_error" in e for e in obs.console_errors)
        assert simulator.sim.counts.writes == 0

    def test_failure_screenshot_is_a_valid_png(self, simulator: SimEnv) -> None:
        """A failed journey stores a decodable full-page PNG and the page's HTML."""
        simulator.sim.set_fault(
            "/auth/realms/anef-usagers/login-actions/registration", "form_missing", host="login"
        )
        obs = simulator.check("creation", timeout=3.0)
        assert obs.outcome is Outcome.STEP_FAILED
        by_kind = {kind: digest for digest, kind in obs.artifacts.items()}
        width, height = png_size(simulator.env.store.read(by_kind["screenshot"]))
        assert width >= 800
        assert height >= 300
        html = simulator.env.store.read(by_kind["html"]).decode("utf-8")
        assert "Création de votre compte" in html
        assert 'type="email"' not in html

    def test_never_loading_page_is_cut_then_recovers(self, simulator: SimEnv) -> None:
        """A login page whose script never arrives is cut at the timeout; the next check works."""
        from simulator.pages import LOGIN_SCRIPT_PATH

        simulator.sim.set_fault(LOGIN_SCRIPT_PATH, "hang", host="login")
        cut = simulator.check("creation", timeout=1.5)
        simulator.sim.clear_faults()
        after = simulator.check("creation")
        assert cut.outcome is Outcome.TIMEOUT
        assert cut.steps[0].name == LOAD_STEP
        assert not cut.steps[0].ok
        assert "screenshot" in cut.artifacts.values()
        assert after.outcome is Outcome.OK, after.error

    def test_killed_browser_is_relaunched(self, simulator: SimEnv) -> None:
        """After SIGKILL of Chromium, the next journey relaunches it and succeeds."""
        probe = simulator.env.probe
        assert simulator.check("portail").outcome is Outcome.OK
        pid = probe.runtime.pid
        assert pid is not None
        launches = probe.runtime.launches
        os.kill(pid, signal.SIGKILL)
        obs = simulator.check("creation")
        assert obs.outcome is Outcome.OK, obs.error
        assert probe.runtime.launches == launches + 1
