"""C2SP tlog-proof: one entry's self-contained, offline-verifiable proof of inclusion.

    c2sp.org/tlog-proof@v1
    index <n>
    <inclusion proof, one base64 SHA-256 hash a line, from the leaf's sibling up>

    <the checkpoint, verbatim: signed note, with the log's signature (and cosignatures)>

Outage bundles carry one for each entry they show (``proofs/tlog/<seq>.tlog-proof``), so a
third party can check one observation with any tlog-proof implementation: the leaf hash is
SHA-256(0x00 ‖ the entry's line in observations.jsonl) (RFC 9162 §2.1.1).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Sequence

from evidence.ledger import merkle
from evidence.ledger.checkpoint import CheckpointError, parse_checkpoint_text
from evidence.ledger.signing import NoteError, NoteVerifier, open_note

__all__ = ["HEADER", "TlogProof", "TlogProofError", "format_tlog_proof", "parse_tlog_proof"]

HEADER = "c2sp.org/tlog-proof@v1"


class TlogProofError(ValueError):
    """A tlog-proof that is malformed or does not prove its entry."""


@dataclasses.dataclass(frozen=True)
class TlogProof:
    """A parsed tlog-proof."""

    index: int
    path: list[bytes]
    checkpoint: str  # the signed note, verbatim
    extra: bytes | None = None

    def verify(self, entry: bytes, log_key: NoteVerifier) -> None:
        """Check that `entry` (its bytes as logged) is at `index` under the checkpoint signed
        by `log_key`; raise TlogProofError otherwise."""
        try:
            text = open_note(self.checkpoint, log_key)
            origin, size, root = parse_checkpoint_text(text)
        except (NoteError, CheckpointError) as exc:
            raise TlogProofError(f"checkpoint not valid: {exc}") from None
        if origin != log_key.name:
            raise TlogProofError(f"checkpoint of log {origin!r}, not {log_key.name!r}")
        try:
            merkle.verify_inclusion(merkle.leaf_hash(entry), self.index, size, self.path, root)
        except merkle.ProofError as exc:
            raise TlogProofError(f"entry {self.index} not proved: {exc}") from None


def format_tlog_proof(
    index: int, path: Sequence[bytes], checkpoint: str, extra: bytes | None = None
) -> str:
    """The text of a tlog-proof (`checkpoint`: a signed note ending in a newline)."""
    lines = [HEADER]
    if extra is not None:
        lines.append("extra " + base64.b64encode(extra).decode("ascii"))
    lines.append(f"index {index}")
    lines.extend(base64.b64encode(node).decode("ascii") for node in path)
    return "\n".join(lines) + "\n\n" + checkpoint


def parse_tlog_proof(text: str) -> TlogProof:
    """Parse a tlog-proof; raise TlogProofError when it does not follow the format."""
    head, sep, checkpoint = text.partition("\n\n")
    lines = head.split("\n")
    if not sep or lines[0] != HEADER:
        raise TlogProofError(f"not a tlog-proof (first line {lines[0][:40]!r})")
    position = 1
    extra = None
    try:
        if len(lines) > position and lines[position].startswith("extra "):
            extra = base64.b64decode(lines[position][6:], validate=True)
            position += 1
        if len(lines) <= position or not lines[position].startswith("index "):
            raise TlogProofError("no index line")
        number = lines[position][6:]
        if not number.isdigit() or (number != "0" and number.startswith("0")):
            raise TlogProofError(f"bad index {number!r}")
        path = [base64.b64decode(line, validate=True) for line in lines[position + 1 :]]
    except binascii.Error:
        raise TlogProofError("a proof line is not base64") from None
    if any(len(node) != merkle.HASH_SIZE for node in path):
        raise TlogProofError("a proof line is not a 32-byte hash")
    return TlogProof(int(number), path, checkpoint, extra)
