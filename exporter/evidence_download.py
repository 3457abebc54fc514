"""`GET /outages/{id}/evidence.zip`: an outage's evidence bundle, built on request and cached.

It never serves a file outside its cache directory (ids are validated, names are built, never
taken from the request; symlinks are refused), never answers anything but GET/HEAD, and never
compares credentials in a way that leaks their length or content through timing.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import math
import os
import re
import secrets
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
from aiohttp import web
from pydantic import SecretStr

__all__ = [
    "OUTAGE_ID",
    "BundleBuilder",
    "EvidenceDownload",
    "NotCoveredYet",
    "OutageVersion",
    "check_basic_auth",
    "download_name",
    "evidence_download_handler",
]

log = structlog.get_logger("vigie.evidence_download")

# Outage ids are `<target id>-<YYYYMMDDTHHMMSSZ>[-n]`: letters, digits and '-' only (the
# compact UTC time carries an upper-case T and Z). Nothing that could name another path.
OUTAGE_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,199})")
_VERSION = re.compile(r"[A-Za-z0-9-]{1,64}")
_CHUNK = 256 * 1024

# outage id -> None (unknown outage: 404) or a version string that changes whenever the bundle
# would (e.g. "closed-<seq of the closed event>", or "open-<ledger size>" while it lasts).
OutageVersion = Callable[[str], str | None]
# (outage id, path) -> writes the bundle zip at `path` (blocking; run in a worker thread).
BundleBuilder = Callable[[str, Path], None]
# Writes a signed checkpoint now (the service's `Checkpointer.checkpoint`).
MakeCheckpoint = Callable[[], Awaitable[object]]
# A checkpoint is forced for a download at most this often (s): a stream of requests for an
# outage that keeps growing cannot make the ledger sign (and a TSA stamp) every second.
FORCED_CHECKPOINT_SPACING = 10.0
_NOT_COVERED_TEXT = (
    "Le dossier de preuves de cet incident sera disponible dans quelques secondes : ses "
    "dernières entrées attendent le prochain point de contrôle signé du registre. "
    "Réessayez dans {delay} s."
)


class NotCoveredYet(Exception):  # noqa: N818 - a state, raised by the builder, not a fault
    """The builder cannot prove the outage's entries yet: no signed checkpoint covers them."""


class EvidenceDownload:
    """The handler and its cache: one zip per outage and version, built at most once at a time."""

    def __init__(
        self,
        cache_dir: Path,
        version_of: OutageVersion,
        build: BundleBuilder,
        *,
        auth: tuple[str, SecretStr] | None = None,
        realm: str = "Vigie",
        max_builds: int = 1,
        checkpoint: MakeCheckpoint | None = None,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self._version_of = version_of
        self._build = build
        self._auth = auth
        self._realm = realm
        self._locks: dict[str, asyncio.Lock] = {}
        self._builds = asyncio.Semaphore(max_builds)
        self._checkpoint = checkpoint
        self._forced_at = -1e9  # loop time of the last checkpoint forced for a download

    # --- request handling ---------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Serve the bundle of the outage named in the URL (GET and HEAD only)."""
        if request.method not in {"GET", "HEAD"}:
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "HEAD"])
        self._check_auth(request)
        outage_id = request.match_info.get("id", "")
        if OUTAGE_ID.fullmatch(outage_id) is None:
            raise web.HTTPNotFound(text="Incident inconnu.")
        version = await asyncio.to_thread(self._version_of, outage_id)
        if version is None:
            raise web.HTTPNotFound(text="Incident inconnu.")
        if _VERSION.fullmatch(version) is None:
            log.error("evidence_bad_version", outage=outage_id, version=version[:80])
            raise web.HTTPInternalServerError(text="Version de dossier invalide.")
        path = self._cached_path(outage_id, version)
        lock = self._locks.setdefault(f"{outage_id}--{version}", asyncio.Lock())
        try:
            async with lock:
                if not _is_regular_file(path):
                    try:
                        await self._build_into(outage_id, path)
                    except NotCoveredYet:
                        await self._force_checkpoint()
                        try:
                            await self._build_into(outage_id, path)
                        except NotCoveredYet:
                            raise _not_covered(FORCED_CHECKPOINT_SPACING) from None
        finally:
            if not lock.locked():
                self._locks.pop(f"{outage_id}--{version}", None)
        return await self._send(request, path, download_name(outage_id))

    async def _force_checkpoint(self) -> None:
        """Have the ledger sign a checkpoint now, so that the outage's entries are covered;
        503 (with Retry-After, in French) when none may be forced yet."""
        loop = asyncio.get_running_loop()
        wait = FORCED_CHECKPOINT_SPACING - (loop.time() - self._forced_at)
        if self._checkpoint is None or wait > 0:
            raise _not_covered(wait if self._checkpoint is not None else 60)
        self._forced_at = loop.time()
        log.info("evidence_checkpoint_forced")
        await self._checkpoint()

    def _check_auth(self, request: web.Request) -> None:
        check_basic_auth(request, self._auth, self._realm)

    def _cached_path(self, outage_id: str, version: str) -> Path:
        """The cache file for this outage and version; always directly inside the cache."""
        root = self.cache_dir.resolve()
        path = root / f"{outage_id}--{version}.zip"
        if path.parent != root or not path.name.endswith(".zip"):  # defence in depth
            raise web.HTTPNotFound(text="Incident inconnu.")
        return path

    async def _build_into(self, outage_id: str, path: Path) -> None:
        """Build the bundle into a temp file in the cache, then rename it into place."""
        root = path.parent
        await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True, mode=0o750)
        if _exists_not_regular(path):
            log.error("evidence_cache_entry_refused", path=str(path), reason="not a regular file")
            raise web.HTTPNotFound(text="Incident inconnu.")
        tmp = root / f".{path.name}.{secrets.token_hex(8)}.part"
        async with self._builds:
            log.info("evidence_bundle_building", outage=outage_id)
            try:
                await asyncio.to_thread(self._build, outage_id, tmp)
                await asyncio.to_thread(os.replace, tmp, path)
            except KeyError:
                raise web.HTTPNotFound(text="Incident inconnu.") from None
            except NotCoveredYet:
                log.info("evidence_not_covered_yet", outage=outage_id)
                raise
            except Exception as exc:
                log.exception("evidence_bundle_failed", outage=outage_id, error=str(exc))
                raise web.HTTPInternalServerError(
                    text="Le dossier de preuves n'a pas pu être produit ; réessayez plus tard."
                ) from None
            finally:
                with contextlib.suppress(OSError):
                    tmp.unlink()
        log.info("evidence_bundle_cached", outage=outage_id, path=str(path))

    async def _send(self, request: web.Request, path: Path, filename: str) -> web.StreamResponse:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            raise web.HTTPNotFound(text="Incident inconnu.") from None
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise web.HTTPNotFound(text="Incident inconnu.")
            response = web.StreamResponse(
                headers={
                    "Content-Type": "application/zip",
                    "Content-Disposition": f'attachment; filename="{filename}"',
                    "Cache-Control": "private, no-store",
                }
            )
            response.content_length = info.st_size
            await response.prepare(request)
            if request.method == "HEAD":
                return response
            while chunk := await asyncio.to_thread(handle.read, _CHUNK):
                await response.write(chunk)
            await response.write_eof()
            return response


def download_name(outage_id: str) -> str:
    """The file name a browser saves an outage's bundle under (and the report names it)."""
    return f"vigie-preuves-{outage_id}.zip"


def _not_covered(wait: float) -> web.HTTPServiceUnavailable:
    delay = max(1, math.ceil(wait))
    return web.HTTPServiceUnavailable(
        text=_NOT_COVERED_TEXT.format(delay=delay), headers={"Retry-After": str(delay)}
    )


def check_basic_auth(
    request: web.Request, auth: tuple[str, SecretStr] | None, realm: str = "Vigie"
) -> None:
    """Raise 401 unless `request` carries the HTTP Basic credentials `auth` (None: open)."""
    if auth is None:
        return
    user, password = auth
    if not basic_auth_ok(request.headers.get("Authorization", ""), user, password):
        raise web.HTTPUnauthorized(
            text="Authentification requise pour télécharger les preuves.",
            headers={"WWW-Authenticate": f'Basic realm="{realm}", charset="UTF-8"'},
        )


def basic_auth_ok(header: str, user: str, password: SecretStr) -> bool:
    """Whether an ``Authorization`` header carries HTTP Basic credentials `user`/`password`."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return False
    try:
        given = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        given = b""
    given_user, sep, given_password = given.partition(b":")
    # Both comparisons always run: no early exit that would time the user name.
    user_ok = hmac.compare_digest(given_user, user.encode("utf-8"))
    password_ok = hmac.compare_digest(given_password, password.get_secret_value().encode("utf-8"))
    return bool(sep) and user_ok and password_ok


def _exists_not_regular(path: Path) -> bool:
    """True when something that is not a regular file (a symlink, a directory...) is there."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return not stat.S_ISREG(info.st_mode)


def _is_regular_file(path: Path) -> bool:
    """True for a regular file that is not a symlink."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode)


def evidence_download_handler(
    cache_dir: Path,
    version_of: OutageVersion,
    build: BundleBuilder,
    *,
    auth: tuple[str, SecretStr] | None = None,
    checkpoint: MakeCheckpoint | None = None,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler for ``GET /outages/{id}/evidence.zip`` (register with add_get).

    `checkpoint`: makes a signed checkpoint now, for an outage whose last entries none covers
    yet (without it, such a request answers 503 and Retry-After).
    """
    return EvidenceDownload(cache_dir, version_of, build, auth=auth, checkpoint=checkpoint).handle
