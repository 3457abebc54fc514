"""The text form of C2SP signed-note keys (vkeys): ``<name>+<key id hex>+<base64(type ‖ key)>``.

Syntax and key id only (standard library): the configuration checks the keys it is given with
it, and the ledger's signed notes and witness cosignatures read their keys with it. Nothing here
verifies a signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

__all__ = [
    "COSIGNATURE_ED25519",
    "NOTE_ED25519",
    "check_note_name",
    "key_id",
    "parse_cosignature_vkey",
    "parse_note_vkey",
    "parse_vkey",
]

NOTE_ED25519 = b"\x01"  # C2SP signed-note: Ed25519 signature
COSIGNATURE_ED25519 = b"\x04"  # C2SP signed-note: timestamped Ed25519 cosignature/v1


def key_id(name: str, alg: bytes, public: bytes) -> bytes:
    """SHA-256(name ‖ 0x0A ‖ type ‖ 32-byte Ed25519 public key)[:4]."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + alg + public).digest()[:4]


def check_note_name(name: str) -> None:
    """ValueError unless `name` is a valid note key name."""
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise ValueError(f"a note key name must be non-empty, without spaces or '+': {name!r}")


def parse_vkey(
    vkey: str, *, alg: bytes, what: str, wrong_type: str, note_name: bool = False
) -> tuple[str, bytes, bytes]:
    """(name, key id, raw public key) of `vkey`; ValueError naming `what` when malformed.

    `wrong_type` is the message when the key is not of type `alg`; `note_name` also checks
    the name as signed notes require.
    """
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3:
        raise ValueError(f"a {what} looks like <name>+<key id hex>+<base64 key>")
    name, hex_id, encoded = parts
    if note_name:
        check_note_name(name)
    try:
        blob = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise ValueError(f"the {what}'s base64 part is malformed") from None
    if len(blob) != 33 or blob[:1] != alg:
        raise ValueError(wrong_type)
    identifier = key_id(name, alg, blob[1:])
    if identifier.hex() != hex_id.lower():
        raise ValueError(f"the {what}'s id does not match its name and key")
    return name, identifier, blob[1:]


def parse_note_vkey(vkey: str) -> tuple[str, bytes, bytes]:
    """(name, key id, public key) of a log's signed-note key (type 0x01); ValueError if bad."""
    return parse_vkey(
        vkey,
        alg=NOTE_ED25519,
        what="verifier key",
        wrong_type="the verifier key is not an Ed25519 key",
        note_name=True,
    )


def parse_cosignature_vkey(vkey: str) -> tuple[str, bytes, bytes]:
    """(name, key id, public key) of a witness's cosignature key (type 0x04); ValueError if bad."""
    return parse_vkey(
        vkey,
        alg=COSIGNATURE_ED25519,
        what="witness key",
        wrong_type="the witness key is not an Ed25519 cosignature key (type 0x04)",
    )
