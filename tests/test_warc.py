"""Tests of the WARC capture of failing HTTP checks (loopback servers only).

Every WARC is checked by `warcio check` (the reference reader's digest verification) and read
back with warcio to prove the failing response itself is preserved.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator

from config.targets import Target
from config.vocabulary import Outcome
from evidence.ledger.artifacts import FileArtifactStore
from probes.base import ProbeContext, ProbeSettings
from probes.http import HttpCheckResult, HttpProbe
from probes.httpclient import Limits
from simulator import Simulator
from tests.hostile import Client, HostileServer, respond

UA = "Vigie-test/1.0 (+https://example.invalid/vigie)"
WARCIO = Path(sys.executable).with_name("warcio")


def run_check(
    url: str, store: FileArtifactStore, *, limits: Limits | None = None, **fields: Any
) -> HttpCheckResult:
    """One check of `url` by a probe that stores captures in `store`."""
    settings = ProbeSettings(
        vantage="test", user_agent=UA, environment={"proxy": None}, artifacts=store
    )
    probe = HttpProbe(settings, limits=limits)
    ctx = ProbeContext(target=Target(id="t", kind="http", url=url, **fields), timeout=5.0)
    return asyncio.run(probe.run(ctx))


def warc_of(result: HttpCheckResult, store: FileArtifactStore) -> tuple[Path, bytes]:
    """The path and bytes of the one WARC the check's observation names."""
    warcs = [h for h, kind in result.observation.artifacts.items() if kind == "warc"]
    assert len(warcs) == 1, result.observation.artifacts
    return store.path(warcs[0]), store.get(warcs[0])


def records(data: bytes) -> list[tuple[str, dict[str, str], bytes, bytes]]:
    """(type, WARC headers, raw HTTP head, rest of the block) of each record, parsed by hand.

    Parsing the ISO 28500 framing independently of warcio proves the bytes are laid out as the
    standard says (header block, Content-Length bytes of block, CRLF CRLF).
    """
    plain = gzip.decompress(data)
    assert len(list(ArchiveIterator(io.BytesIO(data)))) >= 1  # warcio reads it too
    found = []
    pos = 0
    while pos < len(plain):
        end = plain.index(b"\r\n\r\n", pos)
        lines = plain[pos:end].decode("utf-8").split("\r\n")
        assert lines[0] == "WARC/1.1"
        headers = dict(line.split(": ", 1) for line in lines[1:])
        length = int(headers["Content-Length"])
        block = plain[end + 4 : end + 4 + length]
        assert plain[end + 4 + length : end + 8 + length] == b"\r\n\r\n"
        pos = end + 8 + length
        if headers["Content-Type"].startswith("application/http"):
            cut = block.index(b"\r\n\r\n") + 4
            head, rest = block[:cut], block[cut:]
        else:
            head, rest = b"", block
        found.append((headers["WARC-Type"], headers, head, rest))
    return found


def warcio_check(path: Path) -> subprocess.CompletedProcess[str]:
    """`warcio check -v PATH` (digest verification by the reference implementation)."""
    return subprocess.run(
        [str(WARCIO), "check", "-v", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


class TestWarcCapture:
    """The HTTP probe stores a WARC of each failing check and none of a successful one."""

    def test_http_500_is_captured(self, simulator: Simulator, tmp_path: Path) -> None:
        """A 500 answer is kept as request + response records that `warcio check` accepts."""
        simulator.set_fault("/", "http_500")
        store = FileArtifactStore(tmp_path / "artifacts")
        result = run_check(simulator.url("/"), store)
        assert result.observation.outcome is Outcome.HTTP_STATUS
        path, data = warc_of(result, store)
        checked = warcio_check(path)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "digest pass" in checked.stdout
        assert "failed" not in checked.stdout
        kinds = [r[0] for r in records(data)]
        assert kinds == ["warcinfo", "response", "request"]
        _, headers, head, body = records(data)[1]
        assert head.startswith(b"HTTP/1.1 500 ")
        ex = result.exchanges[-1]
        assert head == ex.raw_head
        assert body == ex.raw_body
        assert body
        assert headers["WARC-Target-URI"] == simulator.url("/")
        assert headers["WARC-IP-Address"] == "127.0.0.1"
        assert headers["WARC-Date"] == result.observation.started_at
        assert headers["WARC-Payload-Digest"].startswith("sha256:")
        assert "WARC-Truncated" not in headers
        request = records(data)[2]
        assert request[2] == ex.raw_request
        assert request[1]["WARC-Concurrent-To"] == headers["WARC-Record-ID"]

    def test_success_stores_nothing(self, simulator: Simulator, tmp_path: Path) -> None:
        """A successful check writes no WARC and names no artifact."""
        store = FileArtifactStore(tmp_path / "artifacts")
        result = run_check(simulator.url("/"), store)
        assert result.observation.outcome is Outcome.OK
        assert result.observation.artifacts == {}
        assert not (tmp_path / "artifacts").exists()

    def test_body_is_bounded(self, tmp_path: Path) -> None:
        """A failing answer larger than the capture limit is cut there and marked truncated."""
        big = b"x" * 300_000

        def handler(client: Client) -> None:
            client.read_request()
            client.send(respond("503 Service Unavailable", big))

        store = FileArtifactStore(tmp_path / "artifacts")
        with HostileServer(handler) as server:
            result = run_check(server.url("/"), store, limits=Limits(capture_body=65536))
        assert result.observation.outcome is Outcome.HTTP_STATUS
        path, data = warc_of(result, store)
        assert warcio_check(path).returncode == 0
        _, headers, head, body = records(data)[1]
        assert head.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        assert body == big[:65536]
        assert headers["WARC-Truncated"] == "length"

    def test_chunked_body_keeps_framing(self, tmp_path: Path) -> None:
        """A chunked failing body is kept byte for byte, framing included, and still checks."""
        wire = b"5\r\nfaute\r\n6\r\n serve\r\n0\r\n\r\n"

        def handler(client: Client) -> None:
            client.read_request()
            client.send(
                b"HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\n"
                b"Connection: close\r\n\r\n" + wire
            )

        store = FileArtifactStore(tmp_path / "artifacts")
        with HostileServer(handler) as server:
            result = run_check(server.url("/"), store)
        path, data = warc_of(result, store)
        checked = warcio_check(path)
        assert checked.returncode == 0, checked.stdout
        assert records(data)[1][3] == wire

    def test_redirect_chain_is_captured(self, tmp_path: Path) -> None:
        """Every hop of a failing check is kept, the redirect marked as not read in full."""

        def handler(client: Client) -> None:
            request = client.read_request()
            if request.startswith(b"GET /next"):
                client.send(respond("404 Not Found", b"absent"))
            else:
                client.send(respond("302 Found", b"moved", (("Location", "/next"),)))

        store = FileArtifactStore(tmp_path / "artifacts")
        with HostileServer(handler) as server:
            result = run_check(server.url("/"), store)
        path, data = warc_of(result, store)
        assert warcio_check(path).returncode == 0
        found = records(data)
        assert [r[0] for r in found] == ["warcinfo", "response", "request", "response", "request"]
        assert found[1][2].startswith(b"HTTP/1.1 302 ")
        assert found[1][1]["WARC-Truncated"] == "unspecified"
        assert found[3][2].startswith(b"HTTP/1.1 404 ")
        assert found[3][3] == b"absent"
        assert found[3][1]["WARC-Target-URI"] == server.url("/next")

    def test_garbage_answer_is_a_resource_record(self, tmp_path: Path) -> None:
        """An answer that is not HTTP is preserved as a resource record of its raw bytes."""

        def handler(client: Client) -> None:
            client.read_request()
            client.send(b"SSH-2.0-OpenSSH_9.2\r\n")

        store = FileArtifactStore(tmp_path / "artifacts")
        with HostileServer(handler) as server:
            result = run_check(server.url("/"), store)
        assert result.observation.outcome is Outcome.PROTOCOL_ERROR
        path, data = warc_of(result, store)
        assert warcio_check(path).returncode == 0
        found = records(data)
        assert [r[0] for r in found] == ["warcinfo", "resource", "request"]
        assert found[1][3].startswith(b"SSH-2.0-OpenSSH_9.2")

    def test_nothing_sent_nothing_stored(self, tmp_path: Path) -> None:
        """A refused connection sent no request: there is nothing to capture."""
        with socket.socket() as sock:  # a loopback port that refuses connections once closed
            sock.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        store = FileArtifactStore(tmp_path / "artifacts")
        result = run_check(url, store)
        assert result.observation.outcome is Outcome.CONNECT_ERROR
        assert result.observation.artifacts == {}

    def test_failing_store_keeps_observation(self, tmp_path: Path) -> None:
        """A store that cannot write loses the capture, never the observation."""

        class Broken:
            def put(self, data: bytes, kind: str) -> str:
                raise OSError("disk full")

        def handler(client: Client) -> None:
            client.read_request()
            client.send(respond("500 Internal Server Error", b"boom"))

        settings = ProbeSettings(vantage="test", user_agent=UA, environment={}, artifacts=Broken())
        with HostileServer(handler) as server:
            ctx = ProbeContext(target=Target(id="t", kind="http", url=server.url("/")), timeout=5)
            result = asyncio.run(HttpProbe(settings).run(ctx))
        assert result.observation.outcome is Outcome.HTTP_STATUS
        assert result.observation.artifacts == {}


@pytest.mark.parametrize("status", ["500 Internal Server Error", "404 Not Found"])
def test_warc_digest_detects_change(tmp_path: Path, status: str) -> None:
    """Changing one body byte of a stored WARC makes `warcio check` fail."""

    def handler(client: Client) -> None:
        client.read_request()
        client.send(respond(status, b"corps de la page d'erreur"))

    store = FileArtifactStore(tmp_path / "artifacts")
    with HostileServer(handler) as server:
        result = run_check(server.url("/"), store)
    _, data = warc_of(result, store)
    plain = gzip.decompress(data)  # every gzip member, concatenated
    altered = plain.replace(b"corps de la page", b"corps de la PAGE")
    assert altered != plain
    bad = tmp_path / "altered.warc"
    bad.write_bytes(altered)
    checked = warcio_check(bad)
    assert checked.returncode != 0
    assert "digest failed" in checked.stdout
