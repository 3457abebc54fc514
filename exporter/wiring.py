"""Evidence wiring for the service: the evidence opened as every command opens it
(`evidence.ledger.opening`), a counting writer and the checkpointer.

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

from config.settings import Settings
from evidence.ledger.artifacts import FileArtifactStore
from evidence.ledger.checkpoint import Checkpoint, CheckpointCopy, Checkpointer, default_copy_path
from evidence.ledger.core import EntryBody, Ledger, LedgerWriter
from evidence.ledger.entries import LedgerError, redact_url
from evidence.ledger.opening import OriginError, open_evidence, open_signing
from evidence.ledger.signing import SigningKeyError
from exporter.metrics import Metrics
from probes.drift import FingerprintBook

if TYPE_CHECKING:
    from evidence.ledger.checkpoint import Stamper

__all__ = [
    "Evidence",
    "EvidenceConfigError",
    "EvidenceError",
    "journey_fingerprints",
    "open_service_evidence",
]

log = structlog.get_logger("vigie.evidence")


class EvidenceError(Exception):
    """The evidence side cannot be opened; the service must not start without it."""


class EvidenceConfigError(EvidenceError):
    """The configuration contradicts the evidence (a `vantage.origin` that would rename the log)."""


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

    def __init__(self, inner: Stamper, metrics: Metrics) -> None:
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


async def open_service_evidence(settings: Settings, metrics: Metrics) -> Evidence:
    """Open the ledger, artifact store, signing key and checkpointer named in `settings`.

    A missing signing key is created (mode 0600) on first start, as SSH does for host keys.
    Raises `EvidenceError` with a message a user can act on.
    """
    ledger_settings = settings.ledger
    key_path = settings.signing.key
    created = not key_path.exists()
    try:
        signing = await asyncio.to_thread(
            open_signing,
            settings,
            create_key=True,
            stamper=lambda inner: _MeteredStamper(inner, metrics),
        )
    except OriginError as exc:
        raise EvidenceConfigError(str(exc)) from None
    except (SigningKeyError, OSError) as exc:
        raise EvidenceError(f"signing key {settings.signing.key}: {exc}") from None
    except LedgerError as exc:
        raise EvidenceError(f"ledger {redact_url(ledger_settings.url)}: {exc}") from None
    if created:
        log.warning("signing_key_created", path=str(key_path))
    try:
        evidence = await asyncio.to_thread(open_evidence, settings, readonly=False, signing=signing)
    except OriginError as exc:
        raise EvidenceConfigError(str(exc)) from None
    except (LedgerError, OSError) as exc:
        raise EvidenceError(f"ledger {redact_url(ledger_settings.url)}: {exc}") from None
    ledger, artifacts = evidence.ledger, evidence.artifacts
    metrics.ledger_entries.inc(ledger.size())
    last = ledger.latest_checkpoint()
    if last is not None and last.unix_time is not None:
        metrics.last_checkpoint.set(last.unix_time)

    def on_checkpoint(checkpoint: Checkpoint) -> None:
        if checkpoint.unix_time is not None:
            metrics.last_checkpoint.set(checkpoint.unix_time)

    writer = _CountingWriter(ledger, metrics)
    copy_path = default_copy_path(ledger_settings.url, ledger_settings.artifacts)
    checkpointer = Checkpointer(
        writer,
        signing.signer,
        timestamper=signing.timestamper,
        tsa_name=signing.tsa_name,
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
