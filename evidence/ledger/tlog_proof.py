"""C2SP tlog-proof: one entry's self-contained, offline-verifiable proof of inclusion.

    c2sp.org/tlog-proof@v1
    index <n>
    <inclusion proof, one base64 SHA-256 hash a line, from the leaf's sibling up>

    <the checkpoint, verbatim: signed note, with the log's signature (and cosignatures)>

Outage bundles carry one for each entry they show (``proofs/tlog/<seq>.tlog-proof``), so a
third party can check one observation with any tlog-proof implementation: the leaf hash is
SHA-256(0x00 ‖ the entry's line in observations.jsonl) (RFC 9162 §2.1.1). They are checked by
the bundle verifier engine (evidence/standalone/verify.py, `verifier_preuves_tlog`).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

__all__ = ["HEADER", "format_tlog_proof"]

HEADER = "c2sp.org/tlog-proof@v1"


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
