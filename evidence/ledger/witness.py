"""Witnessing: C2SP tlog-cosignature (Ed25519, ``cosignature/v1``) and the witness side of
C2SP tlog-witness ``add-checkpoint``.

A witness follows logs (an origin and the log's Ed25519 note key each) and keeps, for each,
the latest checkpoint it cosigned, durably (`WitnessState`: one JSON file, written to a
temporary file, fsynced, renamed, directory fsynced, under a lock, so the check of the old
size and the update are atomic as the spec requires). `Witness.add_checkpoint` takes the
request body and answers (status, content type, body) exactly as the spec says: 404 unknown
origin, 403 no valid log signature, 400 old size above the checkpoint's, 409 (with the
cosigned size, ``text/x.tlog.size``) old size not the one it cosigned or same size with
another root (a fork), 422 consistency proof that does not verify, 200 with the cosignature
line. Each refusal of a correctly signed checkpoint (409, 422) is handed to `on_refusal`, so
the witness can record it as evidence of its own (the log signed two inconsistent views).

HTTP and the log side: evidence/witness_http.py; in `vigie run`: exporter/witnessing.py; in
bundles and verifiers: evidence/cosignatures.py.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import os
import struct
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from config.vkeys import COSIGNATURE_ED25519, parse_cosignature_vkey
from evidence.ledger import merkle
from evidence.ledger.checkpoint import CheckpointError, parse_checkpoint_text
from evidence.ledger.signing import NoteError, NoteVerifier, open_note, raw_public_key

__all__ = [
    "COSIGNATURE_ALG",
    "CosignatureError",
    "Cosigner",
    "Refusal",
    "Reply",
    "Witness",
    "WitnessState",
    "cosignature_key_id",
    "cosigned_message",
    "parse_add_checkpoint",
    "parse_cosigner_vkey",
    "verify_cosignature",
]

COSIGNATURE_ALG = COSIGNATURE_ED25519  # C2SP signed-note: timestamped Ed25519 cosignature/v1
_DASH = "\u2014 "
_MAX_PROOF_LINES = 63
_MAX_BODY = 1 << 16


class CosignatureError(ValueError):
    """A cosignature line that is malformed or does not verify."""


def cosignature_key_id(name: str, public: bytes) -> bytes:
    """SHA-256(name ‖ "\\n" ‖ 0x04 ‖ 32-byte Ed25519 public key)[:4] (tlog-cosignature)."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + COSIGNATURE_ALG + public).digest()[:4]


def cosigned_message(checkpoint_body: str, timestamp: int) -> bytes:
    """What an Ed25519 cosignature signs: ``cosignature/v1``, ``time <t>``, then the whole
    checkpoint body (extension lines included, signature lines not)."""
    if not 0 <= timestamp < 1 << 63:
        raise CosignatureError(f"cosignature time out of range: {timestamp}")
    return f"cosignature/v1\ntime {timestamp}\n{checkpoint_body}".encode()


class Cosigner:
    """A witness key: signs cosignature/v1 lines as `name` (a schema-less URL)."""

    def __init__(self, name: str, key: Ed25519PrivateKey) -> None:
        if not name or any(c.isspace() for c in name) or "+" in name:
            raise CosignatureError(f"bad cosigner name {name!r}")
        self.name = name
        self._key = key
        self.public = raw_public_key(key.public_key())
        self.key_id = cosignature_key_id(name, self.public)

    def vkey(self) -> str:
        """``<name>+<key id hex>+<base64(0x04 ‖ public key)>`` (C2SP signed-note vkey)."""
        encoded = base64.b64encode(COSIGNATURE_ALG + self.public).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def cosign(self, checkpoint_body: str, timestamp: int | None = None) -> str:
        """The note signature line (with its newline) cosigning `checkpoint_body`."""
        when = int(time.time()) if timestamp is None else timestamp
        signature = self._key.sign(cosigned_message(checkpoint_body, when))
        blob = self.key_id + struct.pack(">Q", when) + signature
        return f"{_DASH}{self.name} {base64.b64encode(blob).decode('ascii')}\n"


def verify_cosignature(line: str, checkpoint_body: str, vkey: str) -> int:
    """Check one cosignature line by the witness `vkey` over `checkpoint_body`; its time."""
    name, key_id, public = parse_cosigner_vkey(vkey)
    text = line.rstrip("\n")
    if not text.startswith(_DASH):
        raise CosignatureError("a cosignature line starts with an em dash and a space")
    signer, _, encoded = text[len(_DASH) :].rpartition(" ")
    try:
        blob = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise CosignatureError("the cosignature's base64 is malformed") from None
    if signer != name or blob[:4] != key_id:
        raise CosignatureError(f"not a cosignature by {name} (key {key_id.hex()})")
    if len(blob) != 4 + 8 + 64:
        raise CosignatureError("a cosignature is key id, 8-byte time and 64-byte signature")
    (when,) = struct.unpack(">Q", blob[4:12])
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(
            blob[12:], cosigned_message(checkpoint_body, when)
        )
    except (InvalidSignature, CosignatureError):
        raise CosignatureError(f"the cosignature by {name} does not verify") from None
    return int(when)


def parse_cosigner_vkey(vkey: str) -> tuple[str, bytes, bytes]:
    """(name, key id, raw public key) of a witness's vkey; CosignatureError when malformed."""
    try:
        return parse_cosignature_vkey(vkey)
    except ValueError as exc:
        raise CosignatureError(str(exc)) from None


@dataclasses.dataclass(frozen=True)
class Reply:
    """An add-checkpoint answer: HTTP status, content type and body."""

    status: int
    content_type: str
    body: bytes


@dataclasses.dataclass(frozen=True)
class Refusal:
    """A correctly signed checkpoint the witness refused (evidence against the log)."""

    origin: str
    status: int
    reason: str
    known_size: int
    known_root: str
    checkpoint: str  # the signed note as received
    old_size: int
    proof: list[str]


def parse_add_checkpoint(body: bytes) -> tuple[int, list[bytes], str]:
    """(old size, consistency proof, signed checkpoint) of an add-checkpoint request body."""
    if len(body) > _MAX_BODY:
        raise ValueError("request too large")
    text = body.decode("utf-8")
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise ValueError("no empty line before the checkpoint")
    lines = head.split("\n")
    first = lines[0]
    if not first.startswith("old "):
        raise ValueError("the first line is not 'old <size>'")
    size_text = first[4:]
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise ValueError(f"bad old size {size_text!r}")
    if len(lines) - 1 > _MAX_PROOF_LINES:
        raise ValueError("more than 63 consistency proof lines")
    proof = []
    for line in lines[1:]:
        node = base64.b64decode(line, validate=True)
        if len(node) != merkle.HASH_SIZE:
            raise ValueError("a consistency proof line is not a 32-byte hash")
        proof.append(node)
    return int(size_text), proof, note


class WitnessState:
    """The latest cosigned (size, root) of each followed log, in one JSON file kept durably."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self._data: dict[str, dict[str, Any]] = {}
        if path.exists():
            self._data = json.loads(path.read_text("utf-8"))

    def get(self, origin: str) -> tuple[int, bytes]:
        """The latest cosigned size and root of `origin` ((0, b"") when none)."""
        record = self._data.get(origin)
        if record is None:
            return 0, b""
        return int(record["size"]), base64.b64decode(record["root"])

    def put(self, origin: str, size: int, root: bytes, note: str) -> None:
        """Record `origin` at (size, root), durably, before returning."""
        data = {**self._data, origin: {"size": size, "root": _b64(root), "note": note}}
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("w", encoding="utf-8") as out:
            json.dump(data, out, sort_keys=True, indent=1)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(self.path)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self._data = data


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class Witness:
    """The witness side of tlog-witness for the logs in `logs` (origin -> log note vkey)."""

    def __init__(
        self,
        cosigner: Cosigner,
        logs: Mapping[str, str],
        state: WitnessState,
        *,
        on_refusal: Callable[[Refusal], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cosigner = cosigner
        self.logs = {origin: NoteVerifier.parse(vkey) for origin, vkey in logs.items()}
        self.state = state
        self.on_refusal = on_refusal
        self.clock = clock

    def add_checkpoint(self, body: bytes) -> Reply:
        """Handle one ``POST <prefix>/add-checkpoint`` body."""
        try:
            old, proof, note = parse_add_checkpoint(body)
            split = note.rfind("\n\n")
            text = note[: split + 1] if split >= 0 else note
            origin, size, root = parse_checkpoint_text(text)
        except (ValueError, UnicodeDecodeError, CheckpointError, binascii.Error) as exc:
            return _text(400, f"malformed request: {exc}")
        verifier = self.logs.get(origin)
        if verifier is None:
            return _text(404, f"unknown log {origin}")
        try:
            open_note(note, verifier)
        except NoteError:
            return _text(403, "no valid signature by a key this witness trusts for the log")
        if old > size:
            return _text(400, "old size above the checkpoint's size")
        with self.state.lock:
            known, known_root = self.state.get(origin)
            refusal = None
            if old != known:
                # a stale old size is normal (the log learns the size from this answer); a
                # signed tree smaller than the cosigned one is a rewind: evidence
                reply = Reply(409, "text/x.tlog.size", f"{known}\n".encode())
                if size < known:
                    refusal = f"smaller tree ({size}) than the one cosigned ({known})"
            elif size == known and root != known_root:
                reply = _text(409, "same size, another root: the log forked")
                refusal = "same size as the cosigned checkpoint with another root (fork)"
            else:
                try:
                    _check_consistency(known, size, known_root, root, proof)
                except merkle.ProofError as exc:
                    reply = _text(422, f"consistency proof does not verify: {exc}")
                    refusal = f"not consistent with the cosigned tree of size {known}: {exc}"
                else:
                    self.state.put(origin, size, root, note)
                    line = self.cosigner.cosign(text, int(self.clock()))
                    return Reply(200, "text/plain; charset=utf-8", line.encode())
        if refusal is not None and self.on_refusal is not None:
            evidence = Refusal(
                origin,
                reply.status,
                refusal,
                known,
                _b64(known_root),
                note,
                old,
                [_b64(p) for p in proof],
            )
            self.on_refusal(evidence)
        return reply


def _check_consistency(
    known: int, size: int, known_root: bytes, root: bytes, proof: list[bytes]
) -> None:
    """RFC 6962 consistency from the cosigned tree; none expected from 0 or at equal size."""
    if known and size != known:
        merkle.verify_consistency(known, size, known_root, root, proof)
    elif proof:
        raise merkle.ProofError("a proof was given where none is expected")


def _text(status: int, message: str) -> Reply:
    return Reply(status, "text/plain; charset=utf-8", (message + "\n").encode())
