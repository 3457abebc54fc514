"""The complete-history chain (evidence/ledger/chain.py): its checkpoint line, byte for byte,
and its walk by the bundle verifier engine."""

from __future__ import annotations

import base64
import hashlib

import pytest

from evidence.bundle.verify import engine
from evidence.ledger import chain
from evidence.ledger.checkpoint import head_text, parse_checkpoint_text
from evidence.ledger.entries import TreeHead

ROOT = hashlib.sha256(b"root").digest()


def test_checkpoint_text_with_heads_is_a_c2sp_checkpoint_with_one_extension_line() -> None:
    """Origin, size, root (C2SP tlog-checkpoint), then the heads line: each target by the first
    12 hex digits of SHA-256("vigie-target:" + id), its last entry as a distance back."""
    head = TreeHead(120, ROOT, {chain.head_key("anef-accueil"): 117, chain.head_key("b"): 119})
    text = head_text("paris-1", head)
    accueil = hashlib.sha256(b"vigie-target:anef-accueil").hexdigest()[:12]
    other = hashlib.sha256(b"vigie-target:b").hexdigest()[:12]
    assert accueil == "80769d2f79cf"
    first, second = sorted([f"{accueil}=3", f"{other}=1"])
    assert text == (
        f"paris-1\n120\n{base64.b64encode(ROOT).decode()}\nvigie-heads/1 {first} {second}\n"
    )
    assert parse_checkpoint_text(text) == ("paris-1", 120, ROOT)
    assert chain.note_heads(text + "\n— paris-1 AAAA\n") == head.heads
    assert head_text("paris-1", TreeHead(120, ROOT)).count("\n") == 3  # format 1: no line


@pytest.mark.parametrize("word", ["x=0", "x=121", "x=-1", "X=1", "x=1 x=2", "x="])
def test_malformed_heads_are_refused(word: str) -> None:
    text = f"paris-1\n120\n{base64.b64encode(ROOT).decode()}\nvigie-heads/1 {word}\n"
    with pytest.raises(chain.ChainError):
        chain.note_heads(text)


def test_walk_names_the_missing_and_the_stray_entry() -> None:
    """The walk of a target's chain by the bundle verifier engine (evidence/standalone/
    verify.py): the entries met; a missing entry and a stray one are named."""
    walk = engine().suivre_chaine
    shown = {10: 4, 14: 10, 20: 14}
    assert walk("t", 25, 5, shown, {25: 20}) == {10, 14, 20, 25}
    with pytest.raises(engine().Echec) as missing:
        walk("t", 25, 5, {10: 4, 20: 14}, {25: 20})
    assert (missing.value.code, missing.value.entree) == ("chain_entry_missing", 14)
    with pytest.raises(engine().Echec) as stray:
        walk("t", 20, 5, {**shown, 12: 10}, {})
    assert (stray.value.code, stray.value.entree) == ("chain_entry_not_in_chain", 12)
    with pytest.raises(engine().Echec) as bad:
        walk("t", 20, 5, {20: 20}, {})
    assert (bad.value.code, bad.value.entree) == ("chain_previous_invalid", 20)
    assert walk("t", 20, 5, {20: 14, 14: False, 8: False}, {}) == {14, 20}  # format 1
