"""Evidence wiring for the service: opens the ledger, artifact store, signing key, checkpointer.

It only assembles parts of `evidence/`; it never writes an entry itself, and a failure to open
the evidence side stops the service before any probe runs (nothing would be recorded).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import structlog

from evidence.artifacts import FileArtifactStore
from evidence.checkpoint import Checkpoint, CheckpointCopy, Checkpointer, default_copy_path
from evidence.ledger import EntryBody, Ledger, LedgerError, LedgerWriter, open_ledger, redact_url
from evidence.signing import NoteSigner, SigningKeyError, keygen, load_private_key
from exporter.config import Settings
from exporter.metrics import Metrics
from probes.drift import FingerprintBook

if TYPE_CHECKING:
    from evidence.timestamp import HttpTimestamper

__all__ = ["Evidence", "EvidenceError", "journey_fingerprints", "open_evidence"]

log = structlog.get_logger("vigie.evidence")


class EvidenceError(Exception):
    """The evidence side cannot be opened; the service must not start without it."""


class _CountingWriter(LedgerWriter):
    """A ledger writer that tells the metrics how many entries were appended."""

    def __init__(self, ledger: Ledger, metrics: Metrics) -> None:
        super().__init__(ledger)
        self._metrics = metrics

    async def append_many(self, entries: Sequence[tuple[str, EntryBody]]) -> list[int]:
        seqs = await super().append_many(entries)
        self._metrics.ledger_entries.inc(len(seqs))
        return seqs


class _MeteredStamper:
    """Counts RFC 3161 failures and remembers the last success for the metrics."""

    def __init__(self, inner: HttpTimestamper, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    def stamp(self, data: bytes) -> bytes:
        try:
            token = self._inner.stamp(data)
        except Exception:
            self._metrics.tsa_failures.inc()
            raise
        self._metrics.tsa_last_success.set(time.time())
        return token


@dataclasses.dataclass
class Evidence:
    """The evidence side of a running service."""

    ledger: Ledger
    writer: _CountingWriter
    artifacts: FileArtifactStore
    checkpointer: Checkpointer
    description: str

    @property
    def sink(self) -> LedgerWriter:
        """Where the service appends entries (durable when `append` returns)."""
        return self.writer

    def background_tasks(self, interval: float) -> list[asyncio.Task[None]]:
        """The checkpoint loop, to run beside the scheduler."""
        return [asyncio.create_task(self.checkpointer.run(interval), name="checkpoints")]

    async def aclose(self, tasks: Sequence[asyncio.Task[None]] = ()) -> None:
        """Stop the checkpoint loop, write the final checkpoint, flush and close the ledger."""
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            await asyncio.wait_for(self.checkpointer.final(), timeout=5.0)
        except (TimeoutError, LedgerError) as exc:
            log.error("final_checkpoint_failed", error=f"{type(exc).__name__}: {exc}")  # noqa: TRY400
        await self.writer.aclose()
        await asyncio.to_thread(self.ledger.close)


async def open_evidence(settings: Settings, metrics: Metrics) -> Evidence:
    """Open the ledger, artifact store, signing key and checkpointer named in `settings`.

    A missing signing key is created (mode 0600) on first start, as SSH does for host keys.
    Raises `EvidenceError` with a message a user can act on.
    """
    ledger_settings = settings.ledger
    password = ledger_settings.password.get_secret_value() if ledger_settings.password else None
    try:
        key_path = settings.signing.key
        if not key_path.exists():
            key = await asyncio.to_thread(keygen, key_path)
            log.warning("signing_key_created", path=str(key_path))
        else:
            key = await asyncio.to_thread(load_private_key, key_path)
    except (SigningKeyError, OSError) as exc:
        raise EvidenceError(f"signing key {settings.signing.key}: {exc}") from None
    try:
        ledger = await asyncio.to_thread(
            open_ledger,
            ledger_settings.url,
            vantage=settings.vantage.name,
            password=password or None,
        )
    except (LedgerError, OSError) as exc:
        raise EvidenceError(f"ledger {redact_url(ledger_settings.url)}: {exc}") from None
    try:
        artifacts = FileArtifactStore(ledger_settings.artifacts)
    except OSError as exc:
        ledger.close()
        raise EvidenceError(f"artifacts directory {ledger_settings.artifacts}: {exc}") from None
    metrics.ledger_entries.inc(ledger.size())
    last = ledger.latest_checkpoint()
    if last is not None and last.unix_time is not None:
        metrics.last_checkpoint.set(last.unix_time)

    def on_checkpoint(checkpoint: Checkpoint) -> None:
        if checkpoint.unix_time is not None:
            metrics.last_checkpoint.set(checkpoint.unix_time)

    writer = _CountingWriter(ledger, metrics)
    stamper = None
    if settings.signing.tsa_url:
        # Imported only with a TSA: X.509 and RFC 3161 parsing cost the service ~9 MB.
        from evidence.timestamp import HttpTimestamper

        ca = settings.signing.tsa_ca
        stamper = _MeteredStamper(
            HttpTimestamper(
                settings.signing.tsa_url,
                timeout=settings.signing.tsa_timeout,
                ca_pem=ca.read_bytes() if ca else None,
                user_agent=settings.user_agent,
            ),
            metrics,
        )
    copy_path = default_copy_path(ledger_settings.url, ledger_settings.artifacts)
    checkpointer = Checkpointer(
        writer,
        NoteSigner(settings.vantage.name, key),
        timestamper=stamper,
        tsa_name=settings.signing.tsa_url,
        copy=CheckpointCopy(copy_path) if copy_path is not None else None,
        on_checkpoint=on_checkpoint,
    )
    return Evidence(
        ledger=ledger,
        writer=writer,
        artifacts=artifacts,
        checkpointer=checkpointer,
        description=redact_url(ledger_settings.url),
    )


async def journey_fingerprints(settings: Settings, evidence: Evidence) -> FingerprintBook:
    """The journeys' last successful fingerprints, found in the ledger (survives restarts)."""
    book = FingerprintBook(load=evidence.artifacts.get)
    journeys = [t.id for t in settings.targets if t.kind == "browser"]
    await asyncio.to_thread(book.seed_from_ledger, evidence.ledger, journeys)
    log.info("journey_baselines", found=[t for t in journeys if book.baseline(t) is not None])
    return book
