"""C2SP tlog-witness over HTTP: the witness endpoint and the log side that asks witnesses.

`witness_app` serves ``POST /add-checkpoint`` for a `Witness` (on a listener of its own: the
status page's server stays read-only). `Cosigning` is the log side: after each checkpoint it
asks every configured witness at once, with a consistency proof from the last size that
witness cosigned (learnt from a 409 answer when unknown), checks each cosignature and appends
it to the ledger as a ``cosignature`` entry. A witness that is down or slow delays nothing:
its request fails after `timeout` and the next checkpoint asks again from the size it last
cosigned, with one consistency proof.

`vigie run` uses both through exporter/witnessing.py (the `witnessing` section of vigie.yaml).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from config.vocabulary import COSIGNATURE
from evidence.ledger.checkpoint import Checkpoint
from evidence.ledger.witness import CosignatureError, Witness, verify_cosignature

__all__ = ["Cosigning", "WitnessEndpoint", "witness_app"]

log = structlog.get_logger("vigie.witness")

_MAX_REQUEST = 1 << 16


def witness_app(witness: Witness) -> web.Application:
    """An aiohttp application answering ``POST /add-checkpoint`` for `witness`."""

    async def add_checkpoint(request: web.Request) -> web.Response:
        body = await request.read()
        reply = await asyncio.to_thread(witness.add_checkpoint, body)  # fsync: off the loop
        return web.Response(
            status=reply.status, body=reply.body, headers={"Content-Type": reply.content_type}
        )

    app = web.Application(client_max_size=_MAX_REQUEST)
    app.router.add_post("/add-checkpoint", add_checkpoint)
    return app


@dataclasses.dataclass(frozen=True)
class WitnessEndpoint:
    """A witness the log asks: its cosigner name, its key (vkey, type 0x04), its URL prefix."""

    name: str
    vkey: str
    url: str


class Cosigning:
    """Asks `witnesses` to cosign each checkpoint; stores their cosignatures in the ledger.

    `proof(old, new)`: the ledger's consistency proof (blocking; run in a thread);
    `append(entry_type, body)`: appends one entry durably (awaitable).
    """

    def __init__(
        self,
        witnesses: Sequence[WitnessEndpoint],
        proof: Callable[[int, int], list[bytes]],
        append: Callable[[str, dict[str, Any]], Any],
        *,
        timeout: float = 5.0,
        user_agent: str = "Vigie",
    ) -> None:
        self.witnesses = list(witnesses)
        self.proof = proof
        self.append = append
        self.timeout = timeout
        self.user_agent = user_agent
        self.sizes: dict[str, int] = {}  # witness name -> the size it last cosigned
        self.requests: dict[str, int] = {}  # witness name -> requests made (for tests, metrics)
        self._session: aiohttp.ClientSession | None = None

    async def aclose(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def cosign(self, checkpoint: Checkpoint) -> int:
        """Ask every witness at once; the number of cosignatures stored for `checkpoint`."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"User-Agent": self.user_agent},
            )
        results = await asyncio.gather(
            *(self._one(self._session, w, checkpoint) for w in self.witnesses)
        )
        return sum(results)

    async def _one(
        self, session: aiohttp.ClientSession, witness: WitnessEndpoint, checkpoint: Checkpoint
    ) -> bool:
        size = checkpoint.tree_size
        body = checkpoint.note[: checkpoint.note.rfind("\n\n") + 1]
        began = time.monotonic()
        try:
            for _attempt in range(2):  # a 409 tells the size the witness has: ask again once
                old = self.sizes.get(witness.name, 0)
                proof = await asyncio.to_thread(self.proof, old, size) if 0 < old < size else []
                lines = [f"old {old}", *(base64.b64encode(p).decode() for p in proof)]
                payload = ("\n".join(lines) + "\n\n" + checkpoint.note).encode()
                self.requests[witness.name] = self.requests.get(witness.name, 0) + 1
                url = witness.url.rstrip("/") + "/add-checkpoint"
                async with session.post(url, data=payload) as response:
                    text = await response.text()
                    if response.status == 200:
                        return await self._store(witness, checkpoint, body, text, began)
                    if response.status == 409 and response.content_type == "text/x.tlog.size":
                        known = int(text.strip())
                        if known == self.sizes.get(witness.name, 0) or known > size:
                            break
                        self.sizes[witness.name] = known
                        continue
                    log.warning(
                        "witness_refused",
                        witness=witness.name,
                        status=response.status,
                        reason=text.strip()[:200],
                        tree_size=size,
                    )
                    return False
        except (aiohttp.ClientError, TimeoutError, ValueError, OSError) as exc:
            log.warning(
                "witness_unreachable", witness=witness.name, error=f"{type(exc).__name__}: {exc}"
            )
        return False

    async def _store(
        self,
        witness: WitnessEndpoint,
        checkpoint: Checkpoint,
        body: str,
        text: str,
        began: float,
    ) -> bool:
        for line in text.splitlines(keepends=True):
            try:
                when = verify_cosignature(line, body, witness.vkey)
            except CosignatureError:
                continue  # other keys of the witness: ignored, as the spec says
            await self.append(
                COSIGNATURE,
                {
                    "checkpoint_seq": checkpoint.seq,
                    "tree_size": checkpoint.tree_size,
                    "witness": witness.name,
                    "cosignature": line,
                    "time": when,
                },
            )
            self.sizes[witness.name] = checkpoint.tree_size
            log.info(
                "checkpoint_cosigned",
                witness=witness.name,
                tree_size=checkpoint.tree_size,
                elapsed_s=round(time.monotonic() - began, 4),
            )
            return True
        log.warning("witness_bad_cosignature", witness=witness.name)
        return False
