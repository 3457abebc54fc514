"""Witness cosignatures in evidence bundles (issue 18).

The exporter adds ``proofs/cosignatures.jsonl``: the cosignatures the ledger holds for the
checkpoint that covers the bundle's entries (the closing checkpoint of a period, the
checkpoint of an outage's inclusion proofs), one JSON line each (``tree_size``, ``witness``,
``cosignature``: the C2SP tlog-cosignature line), and ``proofs/witnesses.txt``: the keys of
the witnesses the vantage asks (from its configuration, informational). The bundle verifier
(evidence/standalone/verify.py, under `vigie verify` too) checks each line against a witness
policy (keys from an independent source, and how many must have cosigned): a rewrite of the
ledger before a cosigned checkpoint, re-signed with the vantage's key, has no valid
cosignature.
"""

from __future__ import annotations

import json
from typing import Any

from config.vocabulary import COSIGNATURE

__all__ = ["LOOKAHEAD", "collect"]

LOOKAHEAD = 4096  # entries after a checkpoint searched for its cosignatures


def collect(ledger: Any, checkpoint_seq: int, size: int) -> bytes:
    """``proofs/cosignatures.jsonl`` for the checkpoint at `checkpoint_seq` (b"": none)."""
    lines = []
    for rows in ledger.row_chunks(checkpoint_seq + 1, min(size, checkpoint_seq + 1 + LOOKAHEAD)):
        for _seq, kind, body, _leaf in rows:
            if kind != COSIGNATURE:
                continue
            entry = json.loads(body)
            if entry.get("checkpoint_seq") == checkpoint_seq:
                line = {k: entry[k] for k in ("tree_size", "witness", "cosignature")}
                lines.append(json.dumps(line, sort_keys=True, ensure_ascii=False) + "\n")
    return "".join(lines).encode()
