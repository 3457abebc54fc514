"""Tests of the evidence download endpoint: traversal refused, basic auth, cache, GET/HEAD only.

A real aiohttp server on 127.0.0.1 receives raw request lines over a socket, so that no client
library normalises the hostile paths before they reach the server.
"""

from __future__ import annotations

import asyncio
import base64
import zipfile
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest
from aiohttp import web
from pydantic import SecretStr

from exporter.evidence_download import EvidenceDownload, NotCoveredYet

if TYPE_CHECKING:
    from tests.tsa_fixture import LocalTsa

T = TypeVar("T")
SECRET = b"TOP-SECRET-CONTENT-OUTSIDE-THE-CACHE"
GOOD = "anef-accueil-20261123T132700Z"


class Fixture:
    """A download handler over a temp cache, recording what it was asked to build."""

    def __init__(self, tmp_path: Path, auth: tuple[str, SecretStr] | None = None) -> None:
        self.cache = tmp_path / "state" / "evidence-cache"
        self.secret = tmp_path / "secret.txt"
        self.secret.write_bytes(SECRET)
        self.cache.parent.mkdir(parents=True)
        (self.cache.parent / "secret.zip").write_bytes(SECRET)
        self.asked: list[str] = []
        self.built: list[str] = []
        self.handler = EvidenceDownload(self.cache, self.version_of, self.build, auth=auth)

    def version_of(self, outage_id: str) -> str | None:
        """Known outages: GOOD only (closed, so its bundle never changes)."""
        self.asked.append(outage_id)
        return "closed-42" if outage_id == GOOD else None

    def build(self, outage_id: str, path: Path) -> None:
        """Write a small zip standing in for the bundle."""
        self.built.append(outage_id)
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("manifest.json", f'{{"outage": "{outage_id}"}}')


async def serve(handler: EvidenceDownload, requests: list[bytes]) -> list[bytes]:
    """Start an app with the route, send each raw request on its own connection, return replies."""
    app = web.Application()
    app.router.add_route("*", "/outages/{id}/evidence.zip", handler.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server  # the only way to learn the bound port
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    replies = []
    try:
        for raw in requests:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(raw)
            await writer.drain()
            replies.append(await asyncio.wait_for(reader.read(), timeout=10))
            writer.close()
    finally:
        await runner.cleanup()
    return replies


def get(path: str, method: str = "GET", headers: dict[str, str] | None = None) -> bytes:
    """A raw HTTP/1.1 request for `path`, sent exactly as written."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def status(reply: bytes) -> int:
    """The status code of a raw reply."""
    return int(reply.split(b" ", 2)[1])


def run(coro: Awaitable[T]) -> T:
    """Run a coroutine on a fresh loop."""

    async def main() -> T:
        return await coro

    return asyncio.run(main())


def basic(user: str, password: str) -> dict[str, str]:
    """An Authorization header for HTTP basic auth."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class TestDownload:
    """The bundle is built on first request, cached, and served as a zip."""

    def test_builds_once_and_serves_zip(self, tmp_path: Path) -> None:
        """Two requests build the bundle once; both receive the same zip."""
        fx = Fixture(tmp_path)
        path = f"/outages/{GOOD}/evidence.zip"
        first, second = run(serve(fx.handler, [get(path), get(path)]))
        assert status(first) == 200
        assert status(second) == 200
        assert b"Content-Type: application/zip" in first
        assert f'filename="vigie-preuves-{GOOD}.zip"'.encode() in first
        assert fx.built == [GOOD]
        cached = list(fx.cache.iterdir())
        assert [p.name for p in cached] == [f"{GOOD}--closed-42.zip"]
        assert first.split(b"\r\n\r\n", 1)[1] == cached[0].read_bytes()

    def test_unknown_outage_is_404(self, tmp_path: Path) -> None:
        """An id that names no outage is 404 and builds nothing."""
        fx = Fixture(tmp_path)
        (reply,) = run(
            serve(fx.handler, [get("/outages/anef-accueil-19990101T000000Z/evidence.zip")])
        )
        assert status(reply) == 404
        assert fx.built == []

    def test_head_sends_no_body(self, tmp_path: Path) -> None:
        """HEAD answers the headers of the zip without its bytes."""
        fx = Fixture(tmp_path)
        (reply,) = run(serve(fx.handler, [get(f"/outages/{GOOD}/evidence.zip", "HEAD")]))
        assert status(reply) == 200
        head, _, body = reply.partition(b"\r\n\r\n")
        assert body == b""
        assert b"Content-Length: " in head

    @pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
    def test_only_get_and_head(self, tmp_path: Path, method: str) -> None:
        """Any other method is refused with 405 and builds nothing."""
        fx = Fixture(tmp_path)
        raw = get(f"/outages/{GOOD}/evidence.zip", method, {"Content-Length": "0"})
        (reply,) = run(serve(fx.handler, [raw]))
        assert status(reply) == 405
        assert fx.built == []


HOSTILE = [
    "/outages/../../secret.txt/evidence.zip",
    "/outages/..%2f..%2fsecret.txt/evidence.zip",
    "/outages/%2e%2e%2f%2e%2e%2fsecret.txt/evidence.zip",
    "/outages/%2e%2e/evidence.zip",
    "/outages/..%2fsecret/evidence.zip",
    "/outages/%252e%252e%252fsecret/evidence.zip",
    "/outages/..%5csecret/evidence.zip",
    "/outages//etc/passwd/evidence.zip",
    "/outages/%2fetc%2fpasswd/evidence.zip",
    "/outages/secret.zip%00/evidence.zip",
    "/outages/anef-accueil.zip/evidence.zip",
    "/outages/.hidden/evidence.zip",
    "/outages/-/evidence.zip",
]


class TestTraversal:
    """Hostile ids never reach the disk outside the cache."""

    @pytest.mark.parametrize("path", HOSTILE)
    def test_refused(self, tmp_path: Path, path: str) -> None:
        """Each traversal attempt is 400/404, nothing is read or built for it."""
        fx = Fixture(tmp_path)
        (reply,) = run(serve(fx.handler, [get(path)]))
        assert status(reply) in {400, 404}
        assert SECRET not in reply
        assert fx.built == []
        assert all(a == GOOD for a in fx.asked)  # bad ids never even reach the lookup

    def test_absolute_url_form(self, tmp_path: Path) -> None:
        """An absolute-form request target naming another path is refused too."""
        fx = Fixture(tmp_path)
        raw = get(f"http://127.0.0.1/outages/..%2f..%2f{fx.secret}/evidence.zip")
        (reply,) = run(serve(fx.handler, [raw]))
        assert status(reply) in {400, 404}
        assert SECRET not in reply

    def test_symlinked_cache_entry(self, tmp_path: Path) -> None:
        """A cache entry that is a symlink (to a file outside) is never followed."""
        fx = Fixture(tmp_path)
        fx.cache.mkdir(parents=True)
        (fx.cache / f"{GOOD}--closed-42.zip").symlink_to(fx.secret)
        (reply,) = run(serve(fx.handler, [get(f"/outages/{GOOD}/evidence.zip")]))
        assert status(reply) in {400, 404}
        assert SECRET not in reply
        assert fx.built == []

    def test_symlinked_cache_directory_entry_swapped(self, tmp_path: Path) -> None:
        """A symlink planted after the build is refused when sending (O_NOFOLLOW)."""
        fx = Fixture(tmp_path)
        target = fx.cache / f"{GOOD}--closed-42.zip"
        original = fx.build

        def build_then_swap(outage_id: str, path: Path) -> None:
            original(outage_id, path)
            path.unlink()
            path.symlink_to(fx.secret)

        fx.handler = EvidenceDownload(fx.cache, fx.version_of, build_then_swap)
        (reply,) = run(serve(fx.handler, [get(f"/outages/{GOOD}/evidence.zip")]))
        assert status(reply) in {400, 404}
        assert SECRET not in reply
        assert target.is_symlink()


class TestBasicAuth:
    """With credentials configured, the bundle needs them."""

    def test_401_without_and_200_with(self, tmp_path: Path) -> None:
        """No or wrong credentials get 401 with a challenge; the right ones get the zip."""
        fx = Fixture(tmp_path, auth=("avocat", SecretStr("s3cret-é")))
        path = f"/outages/{GOOD}/evidence.zip"
        none, wrong_pw, wrong_user, garbage, right = run(
            serve(
                fx.handler,
                [
                    get(path),
                    get(path, headers=basic("avocat", "nope")),
                    get(path, headers=basic("juge", "s3cret-é")),
                    get(path, headers={"Authorization": "Basic !!!"}),
                    get(path, headers=basic("avocat", "s3cret-é")),
                ],
            )
        )
        for reply in (none, wrong_pw, wrong_user, garbage):
            assert status(reply) == 401
            assert b'WWW-Authenticate: Basic realm="Vigie"' in reply
        assert status(right) == 200
        assert fx.built == [GOOD]

    def test_auth_checked_before_lookup(self, tmp_path: Path) -> None:
        """Without credentials, even the existence of an outage is not revealed."""
        fx = Fixture(tmp_path, auth=("avocat", SecretStr("pw")))
        (reply,) = run(serve(fx.handler, [get("/outages/unknown/evidence.zip")]))
        assert status(reply) == 401
        assert fx.asked == []


class TestRealVersions:
    """The version strings the service really builds (not a made-up "closed-42")."""

    @pytest.mark.parametrize(
        ("ended_at", "failed"),
        [("2026-12-07T18:33:45.123456+00:00", 3), ("2026-12-07T18:33:45Z", 3), (None, 12)],
    )
    def test_service_versions_are_served(
        self, tmp_path: Path, ended_at: str | None, failed: int
    ) -> None:
        """An outage closed at a real RFC 3339 time (with ':' and '.') or still open gets its
        bundle (issue 17: every closed outage answered 500)."""
        from evidence.outages.tracker import OutageRecord
        from exporter.evidence_routes import outage_version

        record = OutageRecord(
            id=GOOD,
            target_id="anef-accueil",
            kind="down",
            started_at="2026-12-07T18:30:00+00:00",
            ended_at=ended_at,
            failed_checks=failed,
            causes={},
            artifacts={},
            maintenance=None,
            seqs=(),
        )
        fx = Fixture(tmp_path)
        fx.version_of = lambda outage_id: outage_version(record)  # type: ignore[method-assign]
        fx.handler = EvidenceDownload(fx.cache, fx.version_of, fx.build)
        [reply] = run(serve(fx.handler, [get(f"/outages/{GOOD}/evidence.zip")]))
        assert status(reply) == 200, reply[:300]


class TestNotCoveredYet:
    """An outage whose last entries no checkpoint covers yet: a checkpoint, or a clear 503."""

    def _fixture(self, tmp_path: Path, covered_after_checkpoint: bool) -> Fixture:
        fx = Fixture(tmp_path)
        self.checkpoints = 0
        inner = fx.build

        def build(outage_id: str, path: Path) -> None:
            if not (covered_after_checkpoint and self.checkpoints):
                raise NotCoveredYet("no checkpoint after entry 41 yet")
            inner(outage_id, path)

        fx.build = build  # type: ignore[method-assign]
        return fx

    async def _checkpoint(self) -> None:
        self.checkpoints += 1

    def test_checkpoint_made_then_served(self, tmp_path: Path) -> None:
        """With the service's checkpointer, the download signs a checkpoint and is served."""
        fx = self._fixture(tmp_path, covered_after_checkpoint=True)
        handler = EvidenceDownload(fx.cache, fx.version_of, fx.build, checkpoint=self._checkpoint)
        [reply] = run(serve(handler, [get(f"/outages/{GOOD}/evidence.zip")]))
        assert status(reply) == 200
        assert self.checkpoints == 1
        assert fx.built == [GOOD]

    def test_without_checkpointer_503_in_french(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without one: 503, Retry-After and a French sentence; no traceback in the log."""
        fx = self._fixture(tmp_path, covered_after_checkpoint=False)
        handler = EvidenceDownload(fx.cache, fx.version_of, fx.build)
        [reply] = run(serve(handler, [get(f"/outages/{GOOD}/evidence.zip")]))
        assert status(reply) == 503
        assert b"Retry-After: 60" in reply
        assert "prochain point de contrôle signé" in reply.decode("utf-8")
        captured = capsys.readouterr()
        assert "Traceback" not in captured.out + captured.err

    def test_forced_checkpoints_are_spaced(self, tmp_path: Path) -> None:
        """A stream of requests cannot make the ledger sign a checkpoint each time."""
        fx = self._fixture(tmp_path, covered_after_checkpoint=False)
        handler = EvidenceDownload(fx.cache, fx.version_of, fx.build, checkpoint=self._checkpoint)
        path = f"/outages/{GOOD}/evidence.zip"
        replies = run(serve(handler, [get(path), get(path), get(path)]))
        assert [status(r) for r in replies] == [503, 503, 503]
        assert self.checkpoints == 1


class TestSameOpeningAsExport:
    def test_download_is_timestamped_like_vigie_export(
        self, tmp_path: Path, local_tsa: LocalTsa
    ) -> None:
        """The status page's bundle is built as `vigie export --outage` builds it: stamped by
        the configured TSA, with its root (issue 16: the download had neither)."""
        from config.settings import Settings
        from evidence.bundle.verify import verify_bundle
        from exporter.evidence_routes import _export_outage
        from tests.bundle_fixture import build_ledger

        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
        key = built.save_key(tmp_path / "vantage.key")
        ca = tmp_path / "tsa-ca.pem"
        ca.write_bytes(local_tsa.ca_pem)
        settings = Settings.model_validate(
            {
                "vantage": {"name": built.signer.name, "operator": "Association de test"},
                "ledger": {"url": built.url, "artifacts": str(built.artifacts.root)},
                "signing": {"key": str(key), "tsa_url": local_tsa.url, "tsa_ca": str(ca)},
            }
        )
        out = tmp_path / "download.zip"
        _export_outage(settings, built.outage_ids[0], out)
        with zipfile.ZipFile(out) as zf:
            names = set(zf.namelist())
            manifest = zf.read("manifest.json").decode("utf-8")
        assert {"manifest.tsr", "proofs/tsa-ca.pem"} <= names
        assert local_tsa.url in manifest
        assert verify_bundle(out, public_key=built.signer.verifier).ok
