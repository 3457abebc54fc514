"""Complete histories: each target's entries form a chain anchored in signed checkpoints.

Since ledger format 1.1 (issue 18), every entry that has a ``target_id`` also carries
``target_prev``: the sequence number of the previous entry of the same target (null for the
first one since the chain began). Each checkpoint note carries one extension line (C2SP
tlog-checkpoint allows extension lines after the root hash)::

    vigie-heads/1 0f3a5c7e9b1d=3 9b1c2d3e4f5a=1

naming each target's last entry before the checkpoint's tree size, as its distance back from
that size (the target by `head_key`, a hash of its id, so a bundle filtered to one target does
not name the others). A bundle for one
target can then prove it shows every entry of that target in its period, even against the
holder of the vantage key: walking the chain back from the head named by the checkpoint that
covers the bundle must meet exactly the disclosed entries. An entry dropped, or passed off as
another target's (its leaf hash among the hidden ones), breaks the walk. Entries written before
format 1.1 carry no ``target_prev``; the walk stops at them (they are not covered).

This module writes the chain; the walk is checked by the one bundle verifier engine,
``evidence/standalone/verify.py`` (`Historique`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "HEADS_LINE",
    "PREV",
    "ChainError",
    "after_lines",
    "head_key",
    "heads_line",
    "link",
    "note_heads",
    "target_of",
]

PREV = "target_prev"
HEADS_LINE = "vigie-heads/1"
_TARGET = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class ChainError(ValueError):
    """The disclosed entries of a target do not form its complete chain (the message says)."""

    def __init__(self, message: str, entry: int | None = None) -> None:
        super().__init__(message)
        self.entry = entry


def link(body: Mapping[str, Any], seq: int, heads: dict[str, int]) -> Mapping[str, Any]:
    """`body` with ``target_prev`` when it has a target; `heads` updated to `seq`."""
    target = body.get("target_id")
    if not isinstance(target, str) or not _TARGET.match(target):
        return body
    linked = {**body, PREV: heads.get(head_key(target))}
    heads[head_key(target)] = seq
    return linked


def head_key(target: str) -> str:
    """How a checkpoint names a target's head: a hash of its id, so that a bundle filtered to
    one target does not show the others' names (12 hex digits of SHA-256)."""
    return hashlib.sha256(b"vigie-target:" + target.encode("utf-8")).hexdigest()[:12]


def target_of(body: bytes) -> str | None:
    """The ``target_id`` of a stored entry (None when it has none)."""
    try:
        target = json.loads(body).get("target_id")
    except (ValueError, AttributeError):
        return None
    return target if isinstance(target, str) and _TARGET.match(target) else None


def heads_line(heads: Mapping[str, int], size: int) -> str:
    """The extension line of the checkpoint of tree `size` naming each target's last entry,
    as its distance back from `size` (small numbers: the line compresses well in bundles)."""
    return " ".join([HEADS_LINE, *(f"{t}={size - heads[t]}" for t in sorted(heads))])


def note_heads(note: str) -> dict[str, int] | None:
    """The heads a checkpoint note (text or signed note) carries; None for a note without."""
    lines = note.split("\n\n", 1)[0].split("\n")
    for line in lines[3:]:
        words = line.split(" ")
        if words[0] != HEADS_LINE:
            continue
        heads: dict[str, int] = {}
        size = int(lines[1]) if lines[1].isdigit() else -1
        for word in words[1:]:
            target, _, back = word.partition("=")
            if not _TARGET.match(target) or not back.isdigit() or target in heads:
                raise ChainError(f"bad heads line in checkpoint: {line!r}")
            if not 1 <= int(back) <= size:
                raise ChainError(f"bad heads line in checkpoint: {line!r}")
            heads[target] = size - int(back)
        return heads
    return None


def after_lines(ledger: Any, targets: Sequence[str], stop: int, tree_size: int) -> bytes:
    """``proofs/chain.jsonl`` of a bundle: the entries of `targets` in [stop, tree_size)
    (after the bundle's entries, before the checkpoint whose heads anchor the chains), each
    with its inclusion proof in the tree of `tree_size`."""
    wanted = set(targets)
    lines = []
    for rows in ledger.row_chunks(stop, tree_size):
        for seq, _kind, body, _leaf in rows:
            if target_of(body) in wanted:
                path = [
                    base64.b64encode(h).decode() for h in ledger.inclusion_proof(seq, tree_size)
                ]
                line = {"seq": seq, "tree_size": tree_size, "path": path, "entry": body.decode()}
                lines.append(json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n")
    return "".join(lines).encode()
