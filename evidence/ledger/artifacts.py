"""Content-addressed storage of captures (screenshots, HTML, WARC): a file's name is its SHA-256.

`put` returns only once the bytes are on disk (temp file, fsync, rename, fsync of the
directory), so an entry never names an artifact that a crash could lose; nothing is ever
modified or deleted in place.

Layout: ``<root>/<h[0:2]>/<h[2:4]>/<h>`` (65,536 directories at most, a few files in each).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
from pathlib import Path

import structlog

__all__ = ["ARTIFACT_KINDS", "ArtifactError", "FileArtifactStore"]

log = structlog.get_logger("vigie.artifacts")

ARTIFACT_KINDS = ("screenshot", "html", "warc", "har", "text", "json")
_KIND = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ArtifactError(Exception):
    """An artifact cannot be stored or read (the message says which and why)."""


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class FileArtifactStore:
    """Artifacts as files named by their SHA-256 under one directory (thread-safe)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FileArtifactStore({str(self.root)!r})"

    def path(self, sha256: str) -> Path:
        """Where the artifact with this digest lives (whether or not it exists)."""
        if not _SHA256.match(sha256):
            raise ArtifactError(f"not a lowercase hex SHA-256 digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes, kind: str) -> str:
        """Store `data` durably and return its SHA-256 hex digest (idempotent)."""
        if not _KIND.match(kind):
            raise ArtifactError(f"artifact kind must match {_KIND.pattern}: {kind!r}")
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        with self._lock:
            if target.is_file() and target.stat().st_size == len(data) and self.verify(digest):
                return digest
            try:
                self._write(target, data)
            except OSError as exc:
                log.error(  # noqa: TRY400 - the cause is in the event
                    "artifact_write_failed", sha256=digest, kind=kind, error=str(exc)
                )
                raise ArtifactError(
                    f"cannot store a {kind} artifact in {self.root}: {exc}"
                ) from exc
        log.debug("artifact_stored", sha256=digest, kind=kind, bytes=len(data))
        return digest

    def _write(self, target: Path, data: bytes) -> None:
        created: list[Path] = []
        for directory in (self.root, target.parent.parent, target.parent):
            if not directory.is_dir():
                directory.mkdir(parents=True, exist_ok=True)
                created.append(directory)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        os.close(fd)
        tmp.replace(target)
        _fsync_dir(target.parent)
        for directory in created:  # make the new directories' entries durable too
            _fsync_dir(directory.parent)

    def get(self, sha256: str) -> bytes:
        """The artifact's bytes, checked against its name (ArtifactError if missing/altered)."""
        path = self.path(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ArtifactError(f"artifact {sha256} is missing from {self.root}") from None
        except OSError as exc:
            raise ArtifactError(f"artifact {sha256} cannot be read: {exc}") from exc
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ArtifactError(f"artifact {sha256} was altered: its content no longer matches")
        return data

    def exists(self, sha256: str) -> bool:
        """Whether a file with this name exists (content not checked)."""
        return self.path(sha256).is_file()

    def verify(self, sha256: str) -> bool:
        """True when the artifact exists and its content hashes to its name."""
        path = self.path(sha256)
        try:
            return _sha256_file(path) == sha256
        except OSError:
            return False
