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
covers the bundle must meet exactly the disclosed entries (`walk`). An entry dropped, or passed
off as another target's (its leaf hash among the hidden ones), breaks the walk. Entries written
before format 1.1 carry no ``target_prev``; the walk stops at them (they are not covered).

The same logic is written again, with the standard library only, in
``evidence/standalone/verify.py``.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from evidence.ledger import merkle

__all__ = [
    "HEADS_LINE",
    "PREV",
    "ChainError",
    "Completeness",
    "after_lines",
    "head_key",
    "heads_line",
    "link",
    "note_heads",
    "target_of",
    "walk",
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


def walk(
    target: str,
    head: int | None,
    start: int,
    disclosed: Mapping[int, int | bool | None],
    after: Mapping[int, int | bool | None],
) -> set[int]:
    """Follow `target`'s chain from `head` down to the first entry before `start`.

    `disclosed` / `after`: seq -> its ``target_prev`` (False: an entry written before the
    chain, None: the first of the chain) for the target's entries the bundle shows, in its
    period and between the period and the checkpoint that names `head`. Returns the seqs
    met; raises ChainError when the chain leads to an entry the bundle does not show, or
    when a shown entry is not on it.
    """
    met: set[int] = set()
    seq: int | None = head
    while seq is not None and seq >= start:
        if seq in disclosed:
            prev = disclosed[seq]
        elif seq in after:
            prev = after[seq]
        else:
            raise ChainError(
                f"entry {seq} of target {target} is missing from the bundle (the chain of "
                "the target's entries, anchored in a signed checkpoint, leads to it)",
                seq,
            )
        met.add(seq)
        if prev is False:  # written before the chain: older entries are not covered
            break
        if prev is not None and prev >= seq:
            raise ChainError(f"entry {seq} of target {target}: bad previous entry {prev}", seq)
        seq = prev
    stray = sorted(s for s, prev in disclosed.items() if s not in met and prev is not False)
    if stray:
        raise ChainError(
            f"entry {stray[0]} is shown as target {target}'s but is not on its chain",
            stray[0],
        )
    return met


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


_PREV_FIELD = re.compile(rb'"target_prev":(null|[0-9]+)[,}]')
_SEQ_FIELD = re.compile(rb'"seq":([0-9]+)[,}]')
_FIRST_FIELD = re.compile(rb'"first_seq":([0-9]+)[,}]')


def _marker_target(line: bytes) -> str | None:
    at = line.find(b'"target_id":"')
    if at < 0:
        return None
    at += len(b'"target_id":"')
    return line[at : line.find(b'"', at)].decode("utf-8", "replace")


def _prev_of(line: bytes) -> int | bool | None:
    found = _PREV_FIELD.search(line)
    if found is None:
        return False
    return None if found.group(1) == b"null" else int(found.group(1))


@dataclasses.dataclass
class Completeness:
    """What a bundle needs to prove its targets' histories complete (fed by the verifier)."""

    targets: Sequence[str]
    start: int  # the first entry of the bundle's range
    stop: int  # one past its last entry
    disclosed: dict[str, dict[int, int | bool | None]] = dataclasses.field(default_factory=dict)

    def line(self, line: bytes) -> None:
        """One entry of observations.jsonl (as stored)."""
        first = _FIRST_FIELD.search(line)  # an outage event: where its observations begin
        if first is not None:
            self.start = min(self.start, int(first.group(1)))
        target = _marker_target(line)
        if target is None or target not in self.targets:
            return
        seq = _SEQ_FIELD.search(line)
        if seq is not None:
            self.disclosed.setdefault(target, {})[int(seq.group(1))] = _prev_of(line)

    def check(self, note: str, root: bytes, tree_size: int, after: bytes) -> str | None:
        """Walk every target's chain from the heads of `note` (the checkpoint of `tree_size`
        and `root` that covers the bundle); `after`: ``proofs/chain.jsonl``. None when proved,
        else why it cannot be (a warning); raises ChainError on a missing or stray entry."""
        heads = note_heads(note)
        if heads is None:
            return (
                "the completeness of the targets' histories cannot be proved: the checkpoint "
                f"of tree size {tree_size} names no heads (ledger written before format 1.1)"
            )
        later: dict[str, dict[int, int | bool | None]] = {}
        for number, raw in enumerate(after.splitlines(), start=1):
            try:
                data = json.loads(raw)
                seq, size, entry = int(data["seq"]), int(data["tree_size"]), data["entry"]
                path = [base64.b64decode(h, validate=True) for h in data["path"]]
                body = entry.encode("utf-8")
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise ChainError(f"proofs/chain.jsonl: line {number} unreadable: {exc}") from None
            if size != tree_size or not self.stop <= seq < tree_size:
                raise ChainError(f"proofs/chain.jsonl: entry {seq} outside [{self.stop}, {size})")
            try:
                merkle.verify_inclusion(merkle.leaf_hash(body), seq, size, path, root)
            except merkle.ProofError as exc:
                raise ChainError(f"proofs/chain.jsonl: entry {seq} changed: {exc}", seq) from None
            target = _marker_target(body)
            if target is not None and target in self.targets:
                later.setdefault(target, {})[seq] = _prev_of(body)
        for target in self.targets:
            walk(
                target,
                heads.get(head_key(target)),
                self.start,
                self.disclosed.get(target, {}),
                later.get(target, {}),
            )
        return None
