"""Witnessing in `vigie run` (issue 18): serve as a witness, ask witnesses to cosign.

`witnessing.listen` set: this vantage is a witness for the logs in `witnessing.follow`; it
serves C2SP tlog-witness ``POST /add-checkpoint`` on that listener (not on the status page's,
which stays read-only), keeps its state in `witnessing.state`, and records every refused,
correctly signed checkpoint (a fork, a rewind, an inconsistent tree) in its own ledger as a
``witness_refusal`` entry. `witnessing.ask` set: after each checkpoint it writes, the vantage
asks those witnesses to cosign it and stores their cosignatures in its ledger
(``cosignature`` entries); a witness that is down delays nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import TYPE_CHECKING, Any

import structlog

from config.vocabulary import WITNESS_REFUSAL
from evidence.ledger.signing import keygen, load_private_key
from evidence.ledger.witness import Cosigner, Refusal, Witness, WitnessState
from evidence.ledger.witness_http import Cosigning, WitnessEndpoint, witness_app

if TYPE_CHECKING:
    from aiohttp import web

    from config.settings import Settings
    from exporter.metrics import Metrics
    from exporter.wiring import Evidence

__all__ = ["Witnessing", "cosigned_note", "start_witnessing"]

log = structlog.get_logger("vigie.witnessing")

_POLL = 0.2  # how often the log side looks for a new checkpoint (s)


@dataclasses.dataclass
class Witnessing:
    """What `start_witnessing` started; `aclose` stops it."""

    runner: web.AppRunner | None = None
    cosigning: Cosigning | None = None
    task: asyncio.Task[None] | None = None

    async def aclose(self) -> None:
        """Stop asking and serving."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.cosigning is not None:
            await self.cosigning.aclose()
        if self.runner is not None:
            await self.runner.cleanup()


async def start_witnessing(
    settings: Settings, evidence: Evidence, metrics: Metrics | None = None
) -> Witnessing:
    """Start what `settings.witnessing` asks for (nothing when it is empty); `metrics`:
    ``vigie_ledger_last_checkpoint_cosignatures`` (shown on the status page)."""
    from aiohttp import web

    config = settings.witnessing
    started = Witnessing()
    if config.listen is not None:
        path = config.key
        key = await asyncio.to_thread(load_private_key if path.exists() else keygen, path)
        cosigner = Cosigner(config.name or f"{settings.vantage.name}/temoin", key)
        ledger = evidence.ledger

        def record(refusal: Refusal) -> None:  # in the request's worker thread
            ledger.append([(WITNESS_REFUSAL, dataclasses.asdict(refusal))])
            log.warning("witness_refused_checkpoint", origin=refusal.origin, reason=refusal.reason)

        witness = Witness(
            cosigner,
            {log_.origin: log_.key for log_ in config.follow},
            WitnessState(config.state),
            on_refusal=record,
        )
        host, _, port = config.listen.rpartition(":")
        started.runner = web.AppRunner(witness_app(witness), access_log=None)
        await started.runner.setup()
        await web.TCPSite(started.runner, host.strip("[]"), int(port)).start()
        log.info("witness_started", listen=config.listen, key=cosigner.vkey())
    if config.ask:
        endpoints = [WitnessEndpoint(w.name, w.key, w.url) for w in config.ask]

        async def append(entry_type: str, body: dict[str, Any]) -> None:
            await evidence.sink.append(entry_type, body)

        started.cosigning = Cosigning(
            endpoints,
            evidence.ledger.consistency_proof,
            append,
            timeout=config.timeout,
            user_agent=settings.user_agent,
        )
        started.task = asyncio.create_task(
            _follow(evidence, started.cosigning, metrics), name="witnesses"
        )
    return started


async def _follow(evidence: Evidence, cosigning: Cosigning, metrics: Metrics | None) -> None:
    """Ask the witnesses to cosign each new checkpoint of the ledger."""
    done = -1
    while True:
        last = await asyncio.to_thread(evidence.ledger.latest_checkpoint)
        if last is not None and last.seq is not None and last.seq > done:
            done = last.seq
            count = await cosigning.cosign(last)
            if metrics is not None:
                metrics.checkpoint_cosignatures.set(count)
        await asyncio.sleep(_POLL)


def cosigned_note(service: Any) -> str:
    """The status page's line: « Dernier point de contrôle cosigné par N témoins » (HTML),
    or "" when the vantage asks no witness."""
    asked = len(service.settings.witnessing.ask)
    if not asked:
        return ""
    count = int(service.metrics.checkpoint_cosignatures.collect()[0].samples[0].value)
    if count == 0:
        return (
            "<p>Dernier point de contrôle du registre : pas encore cosigné par les témoins "
            f"({asked} sollicités) ; Vigie le leur redemande au point suivant.</p>"
        )
    word = "témoin" if count == 1 else "témoins"
    return (
        f"<p>Dernier point de contrôle du registre cosigné par {count} {word} "
        f"(sur {asked}) : des tiers indépendants ont vérifié qu'il prolonge l'historique "
        "sans rien en retirer.</p>"
    )
