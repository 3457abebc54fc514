"""The vantage's Ed25519 signing key and C2SP signed notes (https://c2sp.org/signed-note).

A private key is written once with mode 0600 and never overwritten; a key file readable by
anyone else is refused, never silently used. Nothing here logs or prints private key bytes.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import hashlib
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from config.vkeys import NOTE_ED25519, check_note_name, parse_note_vkey

__all__ = [
    "KeyExistsError",
    "KeyPermissionError",
    "NoteError",
    "NoteSigner",
    "NoteVerifier",
    "SigningKeyError",
    "keygen",
    "load_private_key",
    "load_public_key",
    "open_note",
    "public_key_path",
    "raw_public_key",
]

_ALG_ED25519 = NOTE_ED25519
_SIGNATURE_PREFIX = "\u2014 "  # em dash, space
_MAX_NOTE_BYTES = 1 << 20


class SigningKeyError(Exception):
    """The signing key cannot be created or used (the message says what to do)."""


class KeyExistsError(SigningKeyError):
    """`keygen` refused to overwrite an existing key: evidence is already signed with it."""


class KeyPermissionError(SigningKeyError):
    """The private key file is readable or writable by other users (mode wider than 0600)."""


class NoteError(ValueError):
    """A signed note is malformed, or no signature by the expected key verifies."""


def public_key_path(key_path: Path) -> Path:
    """Where `keygen` writes the public half: ``<key>.pub``."""
    return key_path.with_name(key_path.name + ".pub")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_new(path: Path, data: bytes, mode: int, *, replace: bool) -> None:
    """Write `data` to `path` atomically (temp + fsync + link/rename + fsync dir)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # the umask must not widen or narrow it
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        if replace:
            tmp.replace(path)
        else:
            os.link(tmp, path)  # fails if `path` exists: no window where a key is overwritten
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_dir(path.parent)


def keygen(path: Path) -> Ed25519PrivateKey:
    """Create a new Ed25519 key at `path` (PKCS#8 PEM, mode 0600) and its public key beside it.

    Refuses with KeyExistsError when `path` exists. The parent directory is created (0700)
    when missing. The public key goes to ``<path>.pub`` (PEM, 0644) for verifiers.
    """
    if path.exists() or path.is_symlink():
        raise KeyExistsError(
            f"{path} already exists; refusing to overwrite a signing key (the evidence already "
            "signed with it could no longer be checked against a new one). Move it away first "
            "if you really mean to start with a new key."
        )
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise SigningKeyError(f"cannot create the directory {path.parent}: {exc}") from exc
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        _write_new(path, pem, 0o600, replace=False)
    except FileExistsError:
        raise KeyExistsError(f"{path} was created meanwhile; refusing to overwrite it") from None
    except OSError as exc:
        raise SigningKeyError(f"cannot write the key to {path}: {exc}") from exc
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        _write_new(public_key_path(path), public_pem, 0o644, replace=True)
    except OSError as exc:
        raise SigningKeyError(f"cannot write the public key beside {path}: {exc}") from exc
    return key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Load the vantage's private key, refusing a file others can read or write."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise SigningKeyError(
            f"no signing key at {path}; create one with `vigie keygen --out {path}`"
        ) from None
    except OSError as exc:
        raise SigningKeyError(f"cannot read the signing key {path}: {exc}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise SigningKeyError(f"{path} is not a regular file")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise KeyPermissionError(
            f"{path} has mode {mode:04o}: other users can read or change the signing key. "
            f"Restrict it with `chmod 600 {path}` (and check who could have copied it)."
        )
    try:
        data = path.read_bytes()
        key = serialization.load_pem_private_key(data, password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SigningKeyError(f"{path} is not a readable unencrypted PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Load a public key: a PEM public key, a signed-note verifier key, or a private key file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read the public key {path}: {exc}") from exc
    text = data.strip()
    if b"PRIVATE KEY" in text:
        return load_private_key(path).public_key()
    if b"-----BEGIN" not in text and text.count(b"+") >= 2:
        return NoteVerifier.parse(text.decode("ascii", "replace")).public_key
    try:
        key = serialization.load_pem_public_key(text)
    except ValueError as exc:
        raise SigningKeyError(f"{path} is not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_fingerprint(public: bytes) -> str:
    """A public key's fingerprint for people: SHA-256 of its 32 raw bytes, in 16 groups of 4
    hex digits (``3F2A 9C01 …``). Anyone recomputes it from ``vantage.pub`` with
    ``openssl pkey -pubin -in vantage.pub -outform DER | tail -c 32 | sha256sum``."""
    digest = hashlib.sha256(public).hexdigest().upper()
    return " ".join(digest[i : i + 4] for i in range(0, len(digest), 4))


def _key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode("utf-8") + b"\n" + _ALG_ED25519 + public).digest()[:4]


def _check_name(name: str) -> None:
    try:
        check_note_name(name)
    except ValueError as exc:
        raise NoteError(str(exc)) from None


@dataclasses.dataclass(frozen=True)
class NoteVerifier:
    """A named Ed25519 public key, as signed notes use it (name + 4-byte key id)."""

    name: str
    public_key: Ed25519PublicKey

    @property
    def raw(self) -> bytes:
        """The raw 32-byte public key."""
        return raw_public_key(self.public_key)

    @property
    def key_id(self) -> bytes:
        """SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]."""
        return _key_id(self.name, self.raw)

    def vkey(self) -> str:
        """The verifier key string: ``<name>+<hex key id>+<base64(0x01 ‖ public key)>``."""
        encoded = base64.b64encode(_ALG_ED25519 + self.raw).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def parse(cls, vkey: str) -> NoteVerifier:
        """Parse a verifier key string (see `vkey`)."""
        try:
            name, _, public = parse_note_vkey(vkey)
        except ValueError as exc:
            raise NoteError(str(exc)) from None
        return cls(name, Ed25519PublicKey.from_public_bytes(public))


class NoteSigner:
    """Signs notes as `name` with an Ed25519 key (the vantage name is the checkpoint origin)."""

    def __init__(self, name: str, key: Ed25519PrivateKey) -> None:
        _check_name(name)
        self.name = name
        self._key = key
        self.verifier = NoteVerifier(name, key.public_key())

    def __repr__(self) -> str:
        return f"NoteSigner({self.name!r}, key_id={self.verifier.key_id.hex()})"

    def sign(self, text: str) -> str:
        """The signed note: `text` (ending in a newline), a blank line, one signature line."""
        _check_text(text)
        signature = self._key.sign(text.encode("utf-8"))
        blob = base64.b64encode(self.verifier.key_id + signature).decode("ascii")
        return f"{text}\n{_SIGNATURE_PREFIX}{self.name} {blob}\n"


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("a note text must end with a newline")
    if "\n\n" in text:
        raise NoteError("a note text must not contain a blank line")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("a note text must not contain control characters")


def open_note(note: str, verifier: NoteVerifier) -> str:
    """Check a signed note and return its text; raise NoteError unless `verifier` signed it.

    Signature lines by other keys are ignored (C2SP: clients ignore unknown signatures); a
    line by the verifier's name and key id that does not verify rejects the note.
    """
    if len(note.encode("utf-8")) > _MAX_NOTE_BYTES:
        raise NoteError("the note is too large")
    if not note.endswith("\n"):
        raise NoteError("a signed note ends with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("the note has no blank line before its signatures")
    text, signature_block = note[: split + 1], note[split + 2 :]
    _check_text(text)
    wanted_id = verifier.key_id
    found = False
    for line in signature_block.splitlines():
        if not line.startswith(_SIGNATURE_PREFIX):
            raise NoteError(f"malformed signature line: {line[:60]!r}")
        name, _, encoded = line[len(_SIGNATURE_PREFIX) :].rpartition(" ")
        try:
            blob = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise NoteError("a signature line's base64 is malformed") from exc
        if len(blob) < 5:
            raise NoteError("a signature line is too short")
        if name != verifier.name or blob[:4] != wanted_id:
            continue
        try:
            verifier.public_key.verify(blob[4:], text.encode("utf-8"))
        except InvalidSignature:
            raise NoteError(
                f"the signature by {verifier.name} (key {wanted_id.hex()}) does not verify: "
                "the note was altered or forged"
            ) from None
        found = True
    if not found:
        raise NoteError(
            f"the note carries no signature by {verifier.name} with key {wanted_id.hex()}"
        )
    return text
