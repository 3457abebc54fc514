"""Witness cosignatures in evidence bundles (issue 18).

The exporter adds ``proofs/cosignatures.jsonl``: the cosignatures the ledger holds for the
checkpoint that covers the bundle's entries (the closing checkpoint of a period, the
checkpoint of an outage's inclusion proofs), one JSON line each (``tree_size``, ``witness``,
``cosignature``: the C2SP tlog-cosignature line), and ``proofs/witnesses.txt``: the keys of
the witnesses the vantage asks (from its configuration, informational). The verifiers check
each line against a witness policy (keys from an independent source, and how many must have
cosigned): a rewrite of the ledger before a cosigned checkpoint, re-signed with the vantage's
key, has no valid cosignature.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from config.vocabulary import COSIGNATURE
from evidence.ledger.witness import CosignatureError, verify_cosignature

__all__ = ["LOOKAHEAD", "check", "collect"]

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


def check(data: bytes, notes: dict[int, str], keys: Sequence[str]) -> tuple[int, int, list[str]]:
    """(tree size, number of distinct `keys` that validly cosigned it, their names).

    Lines by witnesses not in `keys` are ignored (as C2SP says); a line by one of `keys` that
    does not verify raises CosignatureError.
    """
    by_name = {key.split("+", 1)[0]: key for key in keys}
    size = -1
    cosigned: list[str] = []
    for raw in _lines(data):
        line = json.loads(raw)
        size, name, text = int(line["tree_size"]), str(line["witness"]), str(line["cosignature"])
        if size not in notes:
            raise CosignatureError(f"cosignature of a checkpoint ({size}) the bundle lacks")
        key = by_name.get(name)
        if key is None:
            continue
        note = notes[size]
        verify_cosignature(text, note[: note.rfind("\n\n") + 1], key)
        if name not in cosigned:
            cosigned.append(name)
    return size, len(cosigned), cosigned


def _lines(data: bytes) -> Iterable[bytes]:
    return [line for line in data.splitlines() if line.strip()]
