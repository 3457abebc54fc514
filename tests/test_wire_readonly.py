"""Read-only at the wire: whatever part of a page sends a write, no byte of it reaches the site.

The site (tests/wire_site.py) lives in a network namespace the test creates and records every
byte it receives: request bodies, WebSocket frames, UDP datagrams, bytes on TURN ports, and, by a
packet sniffer, any UDP datagram or TCP connection attempt to a port nobody listens on. Each
journey below packs many attacks in one page (these are races: the journey runs several times);
each must leave zero writes at the site, be listed in `blocked_requests`, and end with an
outcome that tells what happened.
"""

from __future__ import annotations

import errno
import io
import json
import re
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from warcio.archiveiterator import ArchiveIterator

from config.targets import Target
from config.vocabulary import Outcome
from probes.base import ProbeContext, ProbeSettings
from probes.browser import BrowserProbe
from probes.browser_runtime import DEBIAN_CHROMIUM
from probes.guard import ReadOnlyGuard
from probes.observation import Observation
from simulator.tls import TlsMaterial, make_tls_material
from tests.hostile import Client, HostileServer, respond
from tests.service_fixture import REPO, LedgerFollower, run_service
from tests.test_browser_probe import DirStore, LoopThread
from tests.wire_site import WireSite, wire_site

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.netns,
    pytest.mark.skipif(not Path(DEBIAN_CHROMIUM).exists(), reason="Chromium is not installed"),
]

RUNS = 3  # each journey is a race between the page and the probe: run it several times

# --------------------------------------------------------------------------- the hostile pages

# Sent by a worker, a pop-up or a page: fetch POST, XHR PUT, WebSocket + frame, beacon.
# Returns a promise settled once the three attempts got their answer (refused or not).
WRITER_JS = """
function vigieWrites(tag, base) {
  base = base || location.origin;
  var done = [];
  try { done.push(fetch(base + '/w/' + tag + '-fetch', {method: 'POST', body: 'secret-' + tag})
    .catch(function () {})); } catch (e) {}
  done.push(new Promise(function (ok) {
    try { var x = new XMLHttpRequest(); x.open('PUT', base + '/w/' + tag + '-xhr');
      x.onloadend = ok; x.send('secret-' + tag); } catch (e) { ok(); } }));
  done.push(new Promise(function (ok) {
    try { var ws = new WebSocket(base.replace('http', 'ws') + '/ws/' + tag);
      ws.onopen = function () { ws.send('frame-' + tag); }; ws.onerror = ok; ws.onclose = ok; }
    catch (e) { ok(); } }));
  return Promise.all(done);
}
"""

SHARED_JS = (
    WRITER_JS
    + """
var who = new URL(location.href).searchParams.get('who');
var finished = vigieWrites('shared-' + who);
onconnect = function (e) {
  var port = e.ports[0];
  port.start();
  finished.then(function () { port.postMessage('done'); });
};
"""
)

WORKER_JS = (
    WRITER_JS
    + """
Promise.all([vigieWrites('worker'), new Promise(function (ok) {
  try { var nested = new Worker('/nested.js'); nested.onmessage = ok; nested.onerror = ok; }
  catch (e) { ok(); }
})]).then(function () { postMessage('done'); });
"""
)

NESTED_JS = WRITER_JS + "vigieWrites('nested').then(function () { postMessage('done'); });"

SERVICE_WORKER_JS = WRITER_JS + "vigieWrites('serviceworker');"

FRAME_PAGE = """<!doctype html><html><body><p>cadre</p><script>
try {
  var shared = new SharedWorker('/shared.js?who=xsite');
  shared.port.onmessage = function () { parent.postMessage('xsite-done', '*'); };
  shared.port.start();
} catch (e) { parent.postMessage('xsite-done', '*'); }
</script></body></html>"""

POPUP_PAGE = (
    """<!doctype html><html><body>
<form id="f" method="post" action="/w/popup-form"><input name="a" value="1"></form>
<script>"""
    + WRITER_JS
    + """
vigieWrites('popup');
try { navigator.sendBeacon('/w/popup-beacon', 'b'); } catch (e) {}
document.getElementById('f').submit();
</script></body></html>"""
)

PRERENDER_PAGE = (
    """<!doctype html><html><body><script>"""
    + WRITER_JS
    + """
vigieWrites('prerender');
</script></body></html>"""
)

NEXT_PAGE = """<!doctype html><html><body><h1>Page suivante</h1></body></html>"""

# Everything a page can do from its own realm's outskirts, in one page.
ATTACK_PAGE = (
    """<!doctype html><html lang="fr"><head><title>Hostile</title>
<script type="speculationrules">{"prerender": [{"source": "list", "urls": ["/prerendered"]}]}
</script>
<link rel="prefetch" href="/prefetched">
<script>
var cspSeen = new Promise(function (ok) {
  document.addEventListener('securitypolicyviolation', ok, {once: true});
});
var xsiteDone = new Promise(function (ok) {
  addEventListener('message', function (e) { if (e.data === 'xsite-done') ok(); });
});
</script>
</head><body><h1>Page hostile</h1>
<a id="leave" href="/next" ping="/w/ping">Suivre</a>
<iframe src="{B}/frame"></iframe>
<iframe name="cible"></iframe>
<form id="fblank" method="post" action="/w/form-blank" target="_blank"><input name="a" value="1">
</form>
<form id="fframe" method="post" action="/w/form-frame" target="cible"><input name="a" value="1">
</form>
<img src="{B}/csp-violation.png">
<script>"""
    + WRITER_JS
    + """
var A = location.origin;
var waits = [cspSeen, xsiteDone];
function worker(make) {  // settles when the worker says its attempts got their answers
  waits.push(new Promise(function (ok) {
    try { var w = make(); w.onmessage = ok; w.onerror = ok; } catch (e) { ok(); }
  }));
}
function then(tag) {
  return vigieWrites.toString() + "vigieWrites('" + tag + "', '" + A + "')"
    + ".then(function () { postMessage('done'); });";
}
// SharedWorker (the cross-site one is started by the iframe above)
waits.push(new Promise(function (ok) {
  try { var shared = new SharedWorker('/shared.js?who=page'); shared.port.onmessage = ok;
    shared.port.start(); } catch (e) { ok(); }
}));
// dedicated workers: script URL (which starts a nested worker), blob:, data:
worker(function () { return new Worker('/worker.js'); });
worker(function () {
  return new Worker(URL.createObjectURL(new Blob([then('blobworker')], {type: 'text/javascript'})));
});
worker(function () {
  return new Worker('data:text/javascript,' + encodeURIComponent(then('dataworker')));
});
// service worker
try { navigator.serviceWorker.register('/sw.js').catch(function () {}); } catch (e) {}
// writes while the page is left by the journey's click
function leaving(tag) {
  try { navigator.sendBeacon('/w/' + tag + '-beacon', 'b'); } catch (e) {}
  try { fetch('/w/' + tag + '-keepalive', {method: 'POST', body: 'k', keepalive: true}); }
  catch (e) {}
}
addEventListener('pagehide', function () { leaving('pagehide'); });
addEventListener('unload', function () { leaving('unload'); });
addEventListener('beforeunload', function () { leaving('beforeunload'); });
document.addEventListener('visibilitychange', function () { leaving('visibility'); });
// pop-ups: same-origin page, blob: document, about:blank and data: driven by the opener
try { window.open('/popup'); } catch (e) {}
try {
  var doc = '<form id=f method=post action="' + A + '/w/blobpopup-form"></form><script>'
    + vigieWrites.toString() + "vigieWrites('blobpopup', '" + A + "');"
    + "navigator.sendBeacon('" + A + "/w/blobpopup-beacon', 'b');"
    + "document.getElementById('f').submit();<" + "/script>";
  window.open(URL.createObjectURL(new Blob([doc], {type: 'text/html'})));
} catch (e) {}
try {
  var blank = window.open('about:blank');
  blank.eval(vigieWrites.toString() + "vigieWrites('blankpopup', '" + A + "');");
} catch (e) {}
try { window.open('data:text/html,<script>fetch("' + A
  + '/w/datapopup",{method:"POST",body:"d"})<' + '/script>'); } catch (e) {}
// forms to a new window and to an iframe
try { document.getElementById('fblank').submit(); } catch (e) {}
try { document.getElementById('fframe').submit(); } catch (e) {}
// EventSource (a GET: allowed) and WebTransport (HTTP/3 over UDP)
try { new EventSource('/events'); } catch (e) {}
try { new WebTransport('https://{IP}:443/wt').ready.catch(function () {}); } catch (e) {}
// WebRTC: STUN and TURN servers, and a remote description whose ICE ufrag carries data
(async function () {
  try {
    var pc = new RTCPeerConnection({iceServers: [
      {urls: ['stun:{IP}:3478']},
      {urls: ['turn:{IP}:3478?transport=udp', 'turn:{IP}:3478?transport=tcp'],
       username: 'vigie', credential: 'secret'}]});
    pc.createDataChannel('x');
    var offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    var sdp = offer.sdp.replace(/a=ice-ufrag:.*\\r\\n/g, 'a=ice-ufrag:EXFILTRE\\r\\n')
      .replace(/a=ice-pwd:.*\\r\\n/g, 'a=ice-pwd:exfiltrationexfiltration\\r\\n')
      .replace(/a=setup:actpass/g, 'a=setup:active');
    await pc.setRemoteDescription({type: 'answer', sdp: sdp});
    await pc.addIceCandidate({candidate: 'candidate:1 1 udp 2122260223 {IP} 3479 typ host',
      sdpMid: '0', sdpMLineIndex: 0});
    await pc.addIceCandidate({candidate:
      'candidate:2 1 tcp 2122260223 {IP} 3480 typ host tcptype passive',
      sdpMid: '0', sdpMLineIndex: 0});
  } catch (e) { console.log('webrtc: ' + e); }
})();
// the page's own realm too
waits.push(vigieWrites('page'));
// Ready once every attempt above got its answer (at most 8 s: the old guard let WebSockets
// open, which never settle), and a little time for what follows them (prerender, pop-ups).
Promise.race([Promise.all(waits), new Promise(function (ok) { setTimeout(ok, 8000); })])
  .then(function () { setTimeout(function () {
    document.body.insertAdjacentHTML('beforeend', '<p id="ready">prêt</p>');
  }, 500); });
</script></body></html>"""
)

ATTACK_HEADERS = {
    "Content-Security-Policy": "img-src 'self'; report-uri /w/csp-report",
    "Reporting-Endpoints": 'vigie="/w/reporting-api"',
    "NEL": '{"report_to": "vigie", "max_age": 3600}',
}

# Sent by every journey that ran to the end, whatever the race: listed in blocked_requests.
ALWAYS_ATTEMPTED = [
    ("POST", "A", "/w/page-fetch"),
    ("PUT", "A", "/w/page-xhr"),
    ("WEBSOCKET", "A", "/ws/page"),
    ("POST", "A", "/w/shared-page-fetch"),
    ("PUT", "A", "/w/shared-page-xhr"),
    ("WEBSOCKET", "A", "/ws/shared-page"),
    ("POST", "B", "/w/shared-xsite-fetch"),
    ("PUT", "B", "/w/shared-xsite-xhr"),
    ("WEBSOCKET", "B", "/ws/shared-xsite"),
    ("WEBSOCKET", "A", "/ws/worker"),
    ("WEBSOCKET", "A", "/ws/nested"),
    ("WEBSOCKET", "A", "/ws/blobworker"),
    ("WEBSOCKET", "A", "/ws/dataworker"),
    ("POST", "A", "/w/form-blank"),
    ("POST", "A", "/w/form-frame"),
    ("POST", "A", "/w/ping"),
    ("POST", "A", "/w/csp-report"),
    ("POST", "A", "/w/pagehide-beacon"),
    ("POST", "A", "/w/pagehide-keepalive"),
    ("POST", "A", "/w/unload-beacon"),
    ("POST", "A", "/w/unload-keepalive"),
    ("POST", "A", "/w/visibility-beacon"),
    ("POST", "A", "/w/visibility-keepalive"),
    ("POST", "A", "/w/blobworker-fetch"),
    ("POST", "A", "/w/dataworker-fetch"),
    ("POST", "A", "/w/nested-fetch"),
]


def serve_attack_site(site: WireSite) -> None:
    js = "text/javascript"
    site.page("/attack", ATTACK_PAGE, headers=ATTACK_HEADERS)
    site.page("/next", NEXT_PAGE)
    site.page("/frame", FRAME_PAGE)
    site.page("/popup", POPUP_PAGE)
    site.page("/prerendered", PRERENDER_PAGE)
    site.page("/shared.js", SHARED_JS, js)
    site.page("/worker.js", WORKER_JS, js)
    site.page("/nested.js", NESTED_JS, js)
    site.page("/sw.js", SERVICE_WORKER_JS, js)
    site.page("/events", "data: bonjour\n\n", "text/event-stream")


# --------------------------------------------------------------------------- fixtures


class Bench:
    """The site, a probe with its own browser, and the loop that drives it."""

    def __init__(
        self,
        site: WireSite,
        loop: LoopThread,
        probe: BrowserProbe,
        tls: TlsMaterial,
        store: DirStore,
    ) -> None:
        self.store = store
        self.site = site
        self.loop = loop
        self.probe = probe
        self.tls = tls

    def check(
        self,
        path: str,
        steps: list[dict[str, Any]],
        timeout: float = 20.0,
        url: str | None = None,
    ) -> Observation:
        target = Target.model_validate(
            {"id": "hostile", "kind": "browser", "url": url or self.site.url(path), "steps": steps}
        )
        ctx = ProbeContext(target=target, timeout=timeout, guard=ReadOnlyGuard())
        return self.loop.run(self.probe.check(ctx), timeout=timeout + 30)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    tls = make_tls_material(tmp_path_factory.mktemp("tls"), "127.0.0.1")
    trust = ssl.create_default_context(cadata=tls.ca_pem.decode("ascii"))
    with wire_site() as site:
        if isinstance(site, str):
            pytest.skip(site)
        serve_attack_site(site)
        loop = LoopThread()
        store = DirStore(tmp_path_factory.mktemp("artifacts"))
        settings = ProbeSettings(
            vantage="test",
            user_agent="Vigie-test/1.0 (lecture seule)",
            environment={},
            artifacts=store,
        )
        probe = BrowserProbe(settings, health_timeout=5.0, close_timeout=5.0, upstream_ssl=trust)
        try:
            yield Bench(site, loop, probe, tls, store)
        finally:
            loop.run(probe.aclose())
            loop.close()


def _blocked(obs: Observation) -> set[tuple[str, str]]:
    return {(b.method, re.sub(r"\?.*", "", b.url)) for b in obs.blocked_requests}


# --------------------------------------------------------------------------- tests


class TestNoWriteLeavesTheBrowser:
    def test_every_sender_is_stopped_at_the_wire(self, bench: Bench) -> None:
        """Workers (shared, dedicated, nested, blob:, data:, service), pop-ups, unload beacons,
        forms to other windows, pings, CSP reports, prerender and WebRTC: not one byte of a
        write reaches the site, the deterministic attempts are listed, the journey is ok."""
        site = bench.site
        origins = {"A": site.origin_a, "B": site.origin_b}
        for run in range(RUNS):
            site.clear()
            obs = bench.check(
                "/attack",
                [
                    {"expect_visible": "#ready"},
                    {"click": "#leave"},
                    {"expect_text": "Page suivante"},
                ],
            )
            assert site.writes() == [], f"run {run}: {site.writes()}"
            assert obs.outcome is Outcome.OK, (run, obs.error)
            blocked = _blocked(obs)
            for method, origin, path in ALWAYS_ATTEMPTED:
                url = origins[origin] + path
                if method == "WEBSOCKET":
                    url = url.replace("http://", "ws://")
                assert (method, url) in blocked, (run, method, url, sorted(blocked))
            assert "GET /attack" in site.gets()
            # WebRTC sends no HTTP: listed from the page's side, stopped by the namespace.
            for server in ("stun:{IP}:3478", "turn:{IP}:3478"):
                assert ("WEBRTC", server.replace("{IP}", site.ip_a)) in blocked, sorted(blocked)


# --------------------------------------------------------------------------- HTTPS

TLS_PAGE = """<!doctype html><html><body><h1>Page chiffrée</h1><script>
fetch('/w/tls-fetch', {method: 'POST', body: 'secret'}).catch(function () {});
try { var ws = new WebSocket('wss://' + location.host + '/ws/tls');
  ws.onopen = function () { ws.send('frame'); }; } catch (e) {}
try { new SharedWorker(URL.createObjectURL(new Blob(["fetch('" + location.origin
  + "/w/tls-shared', {method: 'PUT', body: 's'})"], {type: 'text/javascript'}))); } catch (e) {}
try { navigator.serviceWorker.register('/sw.js').catch(function () {}); } catch (e) {}
setTimeout(function () {
  document.body.insertAdjacentHTML('beforeend', '<p id="ready">prêt</p>');
}, 800);
</script></body></html>"""


def _tls_site(context: ssl.SSLContext) -> HostileServer:
    def handler(client: Client) -> None:
        head = client.read_request()
        if not head:
            return
        path = head.split(b" ", 2)[1]
        if path == b"/sw.js":
            body = b"fetch('/w/tls-serviceworker', {method: 'POST', body: 'sw'});"
            client.send(respond(body=body, headers=(("Content-Type", "text/javascript"),)))
            return
        origin = f"https://127.0.0.1:{client.server.port}"
        headers = (
            ("Content-Type", "text/html; charset=utf-8"),
            # Network Error Logging over HTTPS: reports would be POSTed to /w/nel
            (
                "Report-To",
                json.dumps(
                    {"group": "nel", "max_age": 600, "endpoints": [{"url": f"{origin}/w/nel"}]}
                ),
            ),
            ("NEL", '{"report_to":"nel","max_age":600,"success_fraction":1.0}'),
        )
        client.send(respond(body=TLS_PAGE.encode() if path == b"/" else b"ok", headers=headers))

    return HostileServer(handler, tls=context)


class TestHttps:
    def test_writes_inside_tls_are_seen_and_refused(self, bench: Bench) -> None:
        """TLS is ended at the proxy (per-instance authority): a POST, a wss:// WebSocket, a
        shared worker's PUT, a service worker and NEL reports inside HTTPS are refused; the
        observation keeps the real site's certificate and address, as the proxy's upstream
        connection saw them."""
        with _tls_site(bench.tls.good) as server:
            obs = bench.check("", [{"expect_visible": "#ready"}], url=server.url("/"))
            # (a tunnel the proxy opened for a request it then refused carries no request)
            heads = [head for head in server.requests if head]
        assert obs.outcome is Outcome.OK, obs.error
        assert heads, "the page was fetched through the proxy"
        assert all(head.startswith((b"GET ", b"HEAD ")) for head in heads), heads
        assert not any(b"upgrade: websocket" in head.lower() for head in heads)
        blocked = _blocked(obs)
        origin = f"127.0.0.1:{server.port}"
        assert ("POST", f"https://{origin}/w/tls-fetch") in blocked, blocked
        assert ("WEBSOCKET", f"wss://{origin}/ws/tls") in blocked, blocked
        assert ("PUT", f"https://{origin}/w/tls-shared") in blocked, blocked
        senders = {b.url: b.sender for b in obs.blocked_requests}
        assert senders[f"https://{origin}/w/tls-shared"] == "empty"  # Sec-Fetch-Dest, in HTTPS
        assert obs.tls is not None
        assert obs.tls.fingerprint_sha256 == bench.tls.fingerprints["good"]
        assert "Vigie simulator test CA" in obs.tls.issuer
        assert obs.remote_ip == "127.0.0.1"

    def test_bad_upstream_certificate_is_tls_error(self, bench: Bench) -> None:
        """The browser trusts only its proxy; the proxy checks the site: an expired
        certificate is a tls_error, not a page."""
        with _tls_site(bench.tls.bad["expired"]) as server:
            obs = bench.check("", [], url=server.url("/"))
            heads = [head for head in server.requests if head]
        assert obs.outcome is Outcome.TLS_ERROR, obs.error
        assert obs.error is not None
        assert "certificate has expired" in obs.error
        assert heads == []


# --------------------------------------------------------------------------- outcomes

AUTOSUBMIT_PAGE = """<!doctype html><html><body><h1>Formulaire automatique</h1>
<form id="f" method="post" action="/w/autosubmit"><input name="a" value="1"></form>
<p id="after">après</p>
<script>document.getElementById('f').submit();</script></body></html>"""

DOWNLOAD_PAGE = """<!doctype html><html><body><h1>Téléchargement</h1>
<a id="dl" href="/attachment">télécharger</a>
<p id="after">après</p>
<script>location.href = '/attachment';</script></body></html>"""


class TestTruthfulOutcomes:
    def test_form_submitted_while_loading_is_not_a_timeout(self, bench: Bench) -> None:
        """A page that submits a POST form while it loads: the write is refused and listed,
        the journey goes on in the page (not a timeout of the loading step)."""
        bench.site.page("/autosubmit", AUTOSUBMIT_PAGE)
        for _ in range(2):
            bench.site.clear()
            obs = bench.check("/autosubmit", [{"expect_text": "après"}], timeout=10)
            assert bench.site.writes() == []
            assert obs.outcome is Outcome.OK, obs.error
            assert ("POST", bench.site.url("/w/autosubmit")) in _blocked(obs)

    def test_download_is_not_a_timeout(self, bench: Bench) -> None:
        """A page that starts a download while it loads, or a download as the target itself:
        no timeout; the download is refused (nothing saved) and said."""
        bench.site.page("/download", DOWNLOAD_PAGE)
        bench.site.pages["/attachment"] = (
            "PK-fichier",
            "application/octet-stream",
            (("Content-Disposition", 'attachment; filename="x.bin"'),),
        )
        obs = bench.check("/download", [{"expect_text": "après"}, {"click": "#dl"}], timeout=10)
        assert obs.outcome is Outcome.OK, obs.error
        direct = bench.check("/attachment", [], timeout=10)
        assert direct.outcome is Outcome.STEP_FAILED, direct.error
        assert direct.error is not None
        assert "download" in direct.error
        assert bench.site.writes() == []


# --------------------------------------------------------------------------- confinement

# Run inside the browser's network namespace (nsenter): what can a process there reach?
PROBE_FROM_INSIDE = r"""
import json, socket, sys
site, proxy_port, host = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def tcp(address, port):
    sock = socket.socket()
    sock.settimeout(3)
    try:
        sock.connect((address, port))
        return "connected"
    except OSError as exc:
        return f"refused errno {exc.errno}"
    finally:
        sock.close()
def udp(address, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.sendto(b"exfiltration", (address, port))
        return "sent"
    except OSError as exc:
        return f"refused errno {exc.errno}"
    finally:
        sock.close()
print(json.dumps({
    "interfaces": [name for _, name in socket.if_nameindex()],
    "site_tcp": tcp(site, 8080),
    "site_udp": udp(site, 3478),
    "host_tcp": tcp(host, 22),
    "proxy": tcp("127.0.0.1", proxy_port),
}))
"""


class TestWarc:
    def test_failed_journey_keeps_what_crossed_the_wire(self, bench: Bench) -> None:
        """A failed journey stores a WARC written at the proxy: the requests as sent (GETs
        only: the refused writes never left) and the answers as received, with the site's
        address."""
        bench.site.clear()
        obs = bench.check("/attack", [{"expect_visible": "#absent", "timeout": "3s"}])
        assert obs.outcome is Outcome.STEP_FAILED, obs.error
        assert bench.site.writes() == []
        (warc,) = [digest for digest, kind in obs.artifacts.items() if kind == "warc"]
        requests, responses = [], {}
        for record in ArchiveIterator(io.BytesIO(bench.store.read(warc))):
            uri = record.rec_headers.get_header("WARC-Target-URI")
            if record.rec_type == "request":
                requests.append(record.http_headers.protocol + " " + uri)
            elif record.rec_type == "response":
                address = record.rec_headers.get_header("WARC-IP-Address")
                responses[uri] = (address, record.content_stream().read())
        assert requests
        assert all(line.startswith("GET ") for line in requests), requests
        address, body = responses[bench.site.url("/attack")]
        assert address == bench.site.ip_a
        assert b"Page hostile" in body
        assert not any("/w/" in uri or "/ws/" in uri for uri in responses)


class TestConfinement:
    def test_from_inside_the_browser_only_the_proxy_is_reachable(self, bench: Bench) -> None:
        """In the browser's own namespace there is only loopback: the site, the host and any
        UDP are unreachable (no route); the proxy's port answers."""
        assert bench.check("/next", [{"expect_text": "Page suivante"}]).outcome is Outcome.OK
        pid = bench.probe.runtime.pid
        proxy = bench.probe.runtime.proxy
        assert pid is not None
        assert proxy is not None
        bench.site.clear()
        found = subprocess.run(
            [
                *("nsenter", "-t", str(pid), "-n", sys.executable, "-I", "-c", PROBE_FROM_INSIDE),
                *(bench.site.ip_a, str(proxy.ports[0]), bench.site.host_ip),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        seen = json.loads(found.stdout)
        unreachable = f"refused errno {errno.ENETUNREACH}"
        assert seen == {
            "interfaces": ["lo"],
            "site_tcp": unreachable,
            "site_udp": unreachable,
            "host_tcp": unreachable,
            "proxy": "connected",
        }
        assert bench.site.writes() == []
        assert bench.probe.runtime.confinement == "root"


# --------------------------------------------------------------------------- the commands

LEAVE_STEPS = [{"expect_visible": "#ready"}, {"click": "#leave"}, {"expect_text": "Page suivante"}]


def _config(site: WireSite, path: Path) -> Path:
    config = {
        "vantage": {"name": "test"},
        "targets": [
            {
                "id": "hostile",
                "kind": "browser",
                "url": site.url("/attack"),
                "timeout": "25s",
                "steps": LEAVE_STEPS,
            }
        ],
        "controls": [site.url("/next")],
        "ledger": {"url": f"sqlite:///{path / 'ledger.db'}", "artifacts": str(path / "art")},
        "signing": {"key": str(path / "vantage.key")},
    }
    file = path / "vigie.yaml"
    file.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return file


def _check_json(config: Path, wrapper: list[str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "exporter.cli", "check", "--config", str(config)]
    return subprocess.run(
        [*wrapper, *command, "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )


# A user namespace where this test is root (for the files it reads) but without CAP_SYS_ADMIN:
# the launcher cannot create a network namespace directly (as in a container run as root
# without that capability) and must use an unprivileged user namespace.
NO_SYS_ADMIN = ["unshare", "--user", "--map-root-user", "setpriv", "--bounding-set=-sys_admin"]


class TestCommands:
    def test_vigie_check_without_privilege_confines_with_a_user_namespace(
        self, bench: Bench, tmp_path: Path
    ) -> None:
        """Without CAP_SYS_ADMIN, `vigie check` confines the browser in a user namespace: the
        attacks are stopped the same way."""
        bench.site.clear()
        done = _check_json(_config(bench.site, tmp_path), NO_SYS_ADMIN)
        assert done.returncode in (0, 1), done.stderr[-3000:]
        (obs,) = [o for o in json.loads(done.stdout) if o["target_id"] == "hostile"]
        assert obs["environment"]["browser_confinement"] == "userns", done.stderr[-2000:]
        assert obs["outcome"] == "ok", obs["error"]
        assert len(obs["blocked_requests"]) >= len(ALWAYS_ATTEMPTED)
        assert bench.site.writes() == []

    def test_vigie_check_refuses_browser_journeys_it_cannot_confine(
        self, bench: Bench, tmp_path: Path
    ) -> None:
        """No privilege for any namespace: the journey is refused with one clear line, the
        browser never starts, the site sees nothing at all."""
        bench.site.clear()
        no_userns = [
            "unshare",
            "--user",
            "--map-root-user",
            "sh",
            "-c",
            'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"',
            "sh",
            *NO_SYS_ADMIN[3:],
        ]
        done = _check_json(_config(bench.site, tmp_path), no_userns)
        assert done.returncode == 1, done.stderr[-3000:]
        (obs,) = [o for o in json.loads(done.stdout) if o["target_id"] == "hostile"]
        assert obs["outcome"] == "browser_error"
        assert "confinement réseau du navigateur impossible" in obs["error"]
        assert "browser network confinement unavailable" in obs["error"]
        assert obs["steps"] == []
        assert [r for r in bench.site.gets() if "/attack" in r] == []
        assert bench.site.writes() == []

    def test_vigie_run_records_the_refusals_in_the_ledger(
        self, bench: Bench, tmp_path: Path
    ) -> None:
        """The real service (`vigie run`): the observation in the ledger lists the refused
        writes, the journey is ok, the site received no byte of them."""
        bench.site.clear()
        config = yaml.safe_load(_config(bench.site, tmp_path).read_text(encoding="utf-8"))
        config["targets"][0]["interval"] = "30s"  # first check ~6 s after start (spread offset)
        (tmp_path / "svc").mkdir()
        with run_service(config, tmp_path / "svc"):
            follower = LedgerFollower(tmp_path / "ledger.db", target="hostile")
            try:
                obs = follower.wait(lambda e: e["type"] == "observation", "observation", 90)
            finally:
                follower.close()
        assert obs["outcome"] == "ok", obs["error"]
        blocked = {(b["method"], b["url"]) for b in obs["blocked_requests"]}
        assert ("POST", bench.site.url("/w/shared-xsite-fetch", cross=True)) in blocked
        assert ("POST", bench.site.url("/w/pagehide-beacon")) in blocked
        assert bench.site.writes() == []
