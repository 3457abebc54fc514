"""Checkpoints: signed tree heads in the C2SP tlog-checkpoint format, written into the ledger.

A checkpoint never blocks probing: a timestamp authority that fails or hangs is recorded as a
`tsa_failure` entry and retried later. The ledger never signs a root inconsistent with the
previous checkpoint it signed.

A checkpoint entry at sequence number c signs the tree of the c entries before it::

    <vantage>\\n<c>\\n<base64 root>\\n\\n— <vantage> <base64(key id ‖ Ed25519 signature)>\\n

Its ledger entry is ``{"type": "checkpoint", "seq": c, "origin", "tree_size": c,
"root_hash", "time", "key" (verifier key), "note" (the signed note)}``. An RFC 3161 token over
the note bytes follows as a ``timestamp`` entry ``{"checkpoint_seq", "token" (base64 DER
TimeStampResp), "gen_time", "tsa"}``. Each checkpoint is also appended to a copy kept outside
the database (`CheckpointCopy`), so cutting the ledger's tail, checkpoints included, shows.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import datetime as dt
import json
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from config.vocabulary import CHECKPOINT, TIMESTAMP, TSA_FAILURE
from evidence.ledger import chain, merkle
from evidence.ledger.entries import LedgerCorruptedError, TreeHead
from evidence.ledger.signing import NoteError, NoteSigner, NoteVerifier, open_note
from probes.observation import format_time, utc_now

if TYPE_CHECKING:
    from evidence.ledger.core import Ledger, LedgerWriter

__all__ = [
    "Checkpoint",
    "CheckpointCopy",
    "CheckpointError",
    "Checkpointer",
    "Stamper",
    "checkpoint_text",
    "default_copy_path",
    "head_text",
    "parse_checkpoint_text",
]

log = structlog.get_logger("vigie.checkpoint")


class CheckpointError(ValueError):
    """A checkpoint is malformed or its signature does not verify."""


class Stamper(Protocol):
    """What a checkpoint needs from a timestamp authority
    (`evidence.ledger.timestamp.HttpTimestamper`)."""

    def stamp(self, data: bytes) -> bytes:
        """A verified DER TimeStampResp over `data`; raises on any failure."""
        ...


def checkpoint_text(origin: str, size: int, root: bytes) -> str:
    """The C2SP tlog-checkpoint note text (three lines, no extension lines)."""
    if not origin or "\n" in origin:
        raise CheckpointError(f"bad checkpoint origin {origin!r}")
    if len(root) != merkle.HASH_SIZE:
        raise CheckpointError("a checkpoint root is a 32-byte SHA-256 hash")
    return f"{origin}\n{size}\n{base64.b64encode(root).decode('ascii')}\n"


def head_text(origin: str, head: TreeHead) -> str:
    """The checkpoint text of `head`: with the targets' heads line when the ledger gave them
    (evidence/chain.py)."""
    text = checkpoint_text(origin, head.size, head.root)
    return text if head.heads is None else text + chain.heads_line(head.heads, head.size) + "\n"


def parse_checkpoint_text(text: str) -> tuple[str, int, bytes]:
    """(origin, tree size, root hash) of a checkpoint note text; extension lines ignored."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "" or any(not line for line in lines[:-1]):
        raise CheckpointError("a checkpoint is at least three non-empty lines, newline-ended")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise CheckpointError(f"bad tree size line {size_text!r}")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error as exc:
        raise CheckpointError("the root hash line is not base64") from exc
    if len(root) != merkle.HASH_SIZE:
        raise CheckpointError("the root hash line is not a 32-byte hash")
    return origin, int(size_text), root


@dataclasses.dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed tree head as recorded in the ledger."""

    seq: int | None  # where the checkpoint entry sits in the ledger (None: outside of it)
    origin: str
    tree_size: int
    root_hash: bytes
    note: str  # the whole signed note
    time: str | None = None
    key: str | None = None  # verifier key string of the signer, as recorded

    @classmethod
    def from_note(cls, note: str, *, seq: int | None = None, time: str | None = None) -> Checkpoint:
        """Parse a signed note (signature not checked)."""
        split = note.rfind("\n\n")
        if split < 0:
            raise CheckpointError("a signed checkpoint has a blank line before its signature")
        origin, size, root = parse_checkpoint_text(note[: split + 1])
        return cls(seq, origin, size, root, note, time)

    @classmethod
    def from_entry(cls, seq: int, body: bytes) -> Checkpoint:
        """Parse a `checkpoint` ledger entry (its signature is not checked)."""
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise CheckpointError(f"checkpoint entry {seq} is not JSON") from exc
        return cls.from_body(seq, data)

    @classmethod
    def from_body(cls, seq: int, data: Mapping[str, Any]) -> Checkpoint:
        """Parse the decoded JSON of a `checkpoint` entry."""
        note = data.get("note")
        if data.get("type") != CHECKPOINT or not isinstance(note, str):
            raise CheckpointError(f"entry {seq} is not a checkpoint")
        # Exactly the fields a checkpoint is written with: an added, removed or renamed field
        # (even one the signature does not cover, such as `time`) is an altered entry.
        if set(data) != _ENTRY_FIELDS:
            odd = sorted(set(data) ^ _ENTRY_FIELDS)
            raise CheckpointError(f"checkpoint entry {seq}: unexpected or missing fields {odd}")
        time = data["time"]
        if time is not None and not isinstance(time, str):
            raise CheckpointError(f"checkpoint entry {seq}: its time is not text")
        parsed = cls.from_note(note, seq=seq, time=data.get("time"))
        if (
            data.get("origin") != parsed.origin
            or data.get("tree_size") != parsed.tree_size
            or data.get("root_hash") != base64.b64encode(parsed.root_hash).decode("ascii")
        ):
            raise CheckpointError(f"checkpoint entry {seq}: its fields disagree with its note")
        key = data.get("key")
        return dataclasses.replace(parsed, key=key if isinstance(key, str) else None)

    @property
    def unix_time(self) -> float | None:
        """`time` as seconds since the epoch (for metrics), None when unknown."""
        if not self.time:
            return None
        try:
            return dt.datetime.fromisoformat(self.time).timestamp()
        except ValueError:
            return None

    @property
    def head(self) -> TreeHead:
        """Tree size and root."""
        return TreeHead(self.tree_size, self.root_hash)

    def recorded_verifier(self) -> NoteVerifier:
        """The verifier key recorded with the checkpoint (not independently trusted)."""
        if not self.key:
            raise CheckpointError("the checkpoint records no verifier key")
        try:
            return NoteVerifier.parse(self.key)
        except NoteError as exc:
            raise CheckpointError(f"the recorded verifier key is malformed: {exc}") from exc

    def verify(self, verifier: NoteVerifier) -> None:
        """Check the note's signature by `verifier`; raise CheckpointError if it fails."""
        if verifier.name != self.origin:
            raise CheckpointError(
                f"the checkpoint's origin is {self.origin!r} but the key is named {verifier.name!r}"
            )
        try:
            open_note(self.note, verifier)
        except NoteError as exc:
            raise CheckpointError(str(exc)) from exc

    def body(self) -> dict[str, Any]:
        """The ledger entry body of this checkpoint."""
        return {
            "origin": self.origin,
            "tree_size": self.tree_size,
            "root_hash": base64.b64encode(self.root_hash).decode("ascii"),
            "time": self.time,
            "key": self.key,
            "note": self.note,
        }


# The keys of a checkpoint entry: `Checkpoint.body()` plus the ledger's own `type` and `seq`.
_ENTRY_FIELDS = frozenset(
    {"type", "seq", "origin", "tree_size", "root_hash", "time", "key", "note"}
)


def default_copy_path(ledger_url: str, artifacts_dir: Path | None = None) -> Path | None:
    """Where the outside copy of checkpoints goes by default.

    SQLite: ``<database>.checkpoints`` beside the file. PostgreSQL: ``ledger.checkpoints``
    beside the artifacts directory (the database is elsewhere; the copy must not be in it).
    """
    from evidence.ledger.entries import sqlite_path

    path = sqlite_path(ledger_url)
    if path is not None:
        return path.with_name(path.name + ".checkpoints")
    if artifacts_dir is not None:
        return artifacts_dir.parent / "ledger.checkpoints"
    return None


class CheckpointCopy:
    """An append-only JSON-lines file of every checkpoint, fsynced, outside the database.

    It is written after the checkpoint is committed to the ledger, so it is never ahead of a
    ledger that was not cut: a copied checkpoint beyond the ledger's end proves truncation.
    A torn last line (crash while writing) is ignored when reading.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.skipped: list[int] = []

    def append(self, checkpoint: Checkpoint) -> None:
        """Append one checkpoint durably."""
        record = {"seq": checkpoint.seq, "time": checkpoint.time, "note": checkpoint.note}
        line = json.dumps(record, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size and not _ends_with_newline(fd):
                os.write(fd, b"\n")  # close a torn line left by a crash
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            dir_fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def read(self) -> Iterator[Checkpoint]:
        """Every well-formed record, in file order (signatures not checked).

        Lines that are not records (a line torn by a crash, later closed by the next append)
        are skipped and their numbers kept in `skipped`.
        """
        self.skipped = []
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        lines = data.split(b"\n")
        for number, line in enumerate(lines[:-1], start=1):  # the last piece has no newline
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                checkpoint = Checkpoint.from_note(
                    record["note"], seq=int(record["seq"]), time=record.get("time")
                )
            except (ValueError, KeyError, TypeError):
                self.skipped.append(number)
                continue
            yield checkpoint


def _ends_with_newline(fd: int) -> bool:
    size = os.fstat(fd).st_size
    return os.pread(fd, 1, size - 1) == b"\n"


class Checkpointer:
    """Appends a signed checkpoint every interval and at shutdown; timestamps it if it can.

    A tick with nothing new since the last checkpoint writes nothing (but retries a timestamp
    that failed). Before signing, it checks the new tree is consistent with the previous
    checkpoint: a ledger changed behind its back is never signed over.
    """

    def __init__(
        self,
        writer: LedgerWriter,
        signer: NoteSigner,
        *,
        timestamper: Stamper | None = None,
        tsa_name: str | None = None,
        copy: CheckpointCopy | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
        on_checkpoint: Callable[[Checkpoint], None] | None = None,
    ) -> None:
        self._writer = writer
        self._signer = signer
        self._timestamper = timestamper
        self._tsa_name = tsa_name
        self._copy = copy
        self._clock = clock
        self._on_checkpoint = on_checkpoint
        self._quiet_size: int | None = None  # ledger size right after our own last records
        self._unstamped: Checkpoint | None = None
        self._last: Checkpoint | None = None
        self._lock = asyncio.Lock()

    @property
    def last(self) -> Checkpoint | None:
        """The last checkpoint this checkpointer wrote."""
        return self._last

    async def run(self, interval: float) -> None:
        """Checkpoint every `interval` seconds until cancelled (errors are logged, not raised)."""
        if interval <= 0:
            raise ValueError("the checkpoint interval must be positive")
        while True:
            await asyncio.sleep(interval)
            try:
                await self.checkpoint()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the next tick retries; the loop must live
                log.error(  # noqa: TRY400 - the event carries the cause
                    "checkpoint_failed", error=f"{type(exc).__name__}: {exc}"
                )

    async def final(self) -> Checkpoint | None:
        """The shutdown checkpoint (and its timestamp, if the TSA answers in time)."""
        return await self.checkpoint()

    async def checkpoint(self, *, force: bool = False) -> Checkpoint | None:
        """Write a checkpoint now unless nothing was appended since the last one."""
        async with self._lock:
            size = await self._writer.call(lambda ledger: ledger.size())
            if not force and size == self._quiet_size:
                if self._unstamped is not None:
                    await self._stamp(self._unstamped)
                return None
            checkpoint = await self._append_checkpoint()
            self._last = checkpoint
            self._unstamped = checkpoint if self._timestamper is not None else None
            if self._copy is not None:
                try:
                    await asyncio.to_thread(self._copy.append, checkpoint)
                except OSError as exc:
                    log.error(  # noqa: TRY400 - the event carries the cause
                        "checkpoint_copy_failed", path=str(self._copy.path), error=str(exc)
                    )
            assert checkpoint.seq is not None
            self._quiet_size = checkpoint.seq + 1
            if self._on_checkpoint is not None:
                self._on_checkpoint(checkpoint)
            log.info(
                "checkpoint_written",
                seq=checkpoint.seq,
                tree_size=checkpoint.tree_size,
                root=checkpoint.root_hash.hex(),
            )
            if self._timestamper is not None:
                await self._stamp(checkpoint)
            return checkpoint

    async def _append_checkpoint(self) -> Checkpoint:
        signer = self._signer
        time_text = format_time(self._clock())
        built: list[Checkpoint] = []

        def build(head: TreeHead) -> dict[str, Any]:
            note = signer.sign(head_text(signer.name, head))
            checkpoint = Checkpoint(
                seq=head.size,
                origin=signer.name,
                tree_size=head.size,
                root_hash=head.root,
                note=note,
                time=time_text,
                key=signer.verifier.vkey(),
            )
            built.append(checkpoint)
            return checkpoint.body()

        def check_then_append(ledger: Ledger) -> list[int]:
            previous = ledger.latest_checkpoint()
            if previous is not None:
                _check_consistent(ledger, previous)
            return ledger.append([(CHECKPOINT, build)])

        seqs = await self._writer.call(check_then_append)
        checkpoint = built[-1]
        assert checkpoint.seq == seqs[0]
        return checkpoint

    async def _stamp(self, checkpoint: Checkpoint) -> None:
        stamper = self._timestamper
        assert stamper is not None
        assert checkpoint.seq is not None
        data = checkpoint.note.encode("utf-8")
        try:
            reply = await asyncio.to_thread(stamper.stamp, data)
        except Exception as exc:  # noqa: BLE001 - any TSA failure is recorded, never raised
            reason = getattr(getattr(exc, "reason", None), "value", type(exc).__name__)
            log.warning("tsa_failure", checkpoint_seq=checkpoint.seq, reason=reason, error=str(exc))
            body = {
                "checkpoint_seq": checkpoint.seq,
                "tsa": self._tsa_name,
                "reason": str(reason),
                "error": str(exc)[:500],
                "time": format_time(self._clock()),
            }
            seq = await self._writer.append(TSA_FAILURE, body)
            self._quiet_size = max(self._quiet_size or 0, seq + 1)
            return
        gen_time = _gen_time(reply)
        seq = await self._writer.append(
            TIMESTAMP,
            {
                "checkpoint_seq": checkpoint.seq,
                "tsa": self._tsa_name,
                "token": base64.b64encode(reply).decode("ascii"),
                "gen_time": gen_time,
            },
        )
        self._unstamped = None
        self._quiet_size = max(self._quiet_size or 0, seq + 1)
        log.info("checkpoint_timestamped", checkpoint_seq=checkpoint.seq, gen_time=gen_time)


def _gen_time(reply: bytes) -> str | None:
    try:
        from evidence.ledger.timestamp import token_info
    except ImportError:  # pragma: no cover - the timestamp module ships with Vigie
        return None
    with contextlib.suppress(Exception):
        return format_time(token_info(reply).gen_time)
    return None


def _check_consistent(ledger: Ledger, previous: Checkpoint) -> None:
    """Refuse to sign when the stored tree no longer extends the previous checkpoint."""
    size = ledger.size()
    try:
        proof = ledger.consistency_proof(previous.tree_size, size)
        merkle.verify_consistency(
            previous.tree_size, size, previous.root_hash, ledger.root(size), proof
        )
    except (merkle.ProofError, IndexError, LedgerCorruptedError) as exc:
        raise LedgerCorruptedError(
            f"the ledger no longer extends its checkpoint at seq {previous.seq} ({exc}); "
            "refusing to sign. Run `vigie verify` to find what changed."
        ) from exc
