"""The evidence ledger: one append-only, Merkle-hashed log of entries behind one protocol.

Entries are only ever appended, in sequence, durably before `append` returns; nothing here
updates, deletes or reorders an entry, and a failed write leaves the ledger as it was.

Every entry is stored as the canonical JSON bytes of ``{"type": <type>, "seq": <n>, ...body}``
with its sequence number (0-based, contiguous) and its RFC 9162 leaf hash. The tree is kept as
a compact range in memory and as a sparse set of interior nodes in the database (every 4th
level), so start-up reads O(log n) rows and proofs cost O(log n) small queries.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import structlog

from config.vocabulary import CHECKPOINT
from evidence.ledger import chain, merkle
from evidence.ledger.checkpoint import Checkpoint
from evidence.ledger.entries import (
    EntryRow,
    LedgerClosedError,
    LedgerCorruptedError,
    LedgerEntryError,
    LedgerError,
    LedgerWriteError,
    TreeHead,
)
from probes.observation import canonical_json

__all__ = [
    "FORMAT",
    "STORED_LEVEL_STRIDE",
    "Body",
    "BodyFactory",
    "EntryBody",
    "Ledger",
    "LedgerWriter",
    "SqlLedger",
    "encode_entry",
]

log = structlog.get_logger("vigie.ledger")

FORMAT = "vigie-ledger/1"


# Interior nodes at levels 4, 8, 12, ... are stored: 1/15 as many rows as entries, and any
# subtree hash is at most 16 stored hashes away.
STORED_LEVEL_STRIDE = 4
_ENTRY_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_CHUNK = 4096
_SUBTREE_CACHE = 16384

Body = Mapping[str, Any]


# A body computed inside the append transaction from the head of all entries before it
# (checkpoints: the signed root must cover exactly the entries that precede it).
BodyFactory = Callable[[TreeHead], Body]
EntryBody = Body | BodyFactory


class Ledger(Protocol):
    """An append-only Merkle log of evidence entries (SQLite or PostgreSQL).

    Thread-safe; every method is blocking (call it from a worker thread in async code, or use
    `LedgerWriter`).
    """

    @property
    def url(self) -> str:
        """Where the ledger lives (credentials removed)."""
        ...

    @property
    def vantage(self) -> str | None:
        """The vantage this ledger belongs to (checkpoint origin)."""
        ...

    def append(self, entries: Sequence[tuple[str, EntryBody]]) -> list[int]:
        """Append entries in one transaction, durable on return; their sequence numbers."""
        ...

    def size(self) -> int:
        """Number of entries."""
        ...

    def head(self) -> TreeHead:
        """Current size and root."""
        ...

    def get(self, seq: int) -> bytes:
        """The stored bytes of entry `seq` (IndexError when absent)."""
        ...

    def iter_entries(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, bytes]]:
        """(seq, bytes) for entries [start, stop), streamed in chunks."""
        ...

    def iter_rows(self, start: int = 0, stop: int | None = None) -> Iterator[EntryRow]:
        """Stored rows [start, stop) as the database holds them (for verification)."""
        ...

    def stored_nodes(self, level: int, start: int, stop: int) -> list[tuple[int, bytes]]:
        """Stored interior nodes (index, hash) of `level` with start ≤ index < stop."""
        ...

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first `size` entries (default: all)."""
        ...

    def inclusion_proof(self, seq: int, size: int | None = None) -> list[bytes]:
        """Audit path of entry `seq` in the tree of the first `size` entries."""
        ...

    def consistency_proof(self, old: int, new: int | None = None) -> list[bytes]:
        """RFC 9162 consistency proof between tree sizes `old` and `new`."""
        ...

    def latest_checkpoint(self) -> Checkpoint | None:
        """The last checkpoint entry, parsed (signature not checked)."""
        ...

    def first_checkpoint_origin(self) -> str | None:
        """The origin of the first checkpoint (the log's name for good), None before it."""
        ...

    def close(self) -> None:
        """Release the connection; further calls raise LedgerClosedError."""
        ...


def encode_entry(entry_type: str, seq: int, body: Body) -> bytes:
    """Canonical JSON bytes of ``{"type": entry_type, "seq": seq, ...body}``.

    A ``seq`` of None in `body` (an Observation not yet numbered) is dropped; any other
    ``seq`` or ``type`` key is refused.
    """
    if not _ENTRY_TYPE.match(entry_type):
        raise LedgerEntryError(f"entry type must match {_ENTRY_TYPE.pattern}: {entry_type!r}")
    if "type" in body:
        raise LedgerEntryError("an entry body must not have its own 'type' key")
    data = dict(body)
    if "seq" in data:
        if data["seq"] is not None:
            raise LedgerEntryError("an entry body must not carry a 'seq': the ledger assigns it")
        del data["seq"]
    data["type"] = entry_type
    data["seq"] = seq
    try:
        return canonical_json(data)
    except (TypeError, ValueError) as exc:
        raise LedgerEntryError(f"entry of type {entry_type!r} is not plain JSON: {exc}") from exc


def _build(entry_type: str, factory: BodyFactory, head: TreeHead) -> Body:
    try:
        return factory(head)
    except LedgerError:
        raise
    except Exception as exc:
        raise LedgerEntryError(f"could not build the {entry_type} entry: {exc}") from exc


class SqlLedger(abc.ABC):
    """The ledger logic shared by the SQL backends; subclasses supply the SQL."""

    backend: str = "sql"

    def __init__(self, *, vantage: str | None, readonly: bool) -> None:
        self._lock = threading.RLock()
        self._readonly = readonly
        self._closed = False
        self._vantage: str | None = None
        self._tree = merkle.CompactTree()
        self._wanted_vantage = vantage
        self._subtrees: dict[tuple[int, int], bytes] = {}
        self._heads: dict[str, int] = {}  # target key -> its last entry (evidence/chain.py)

    # -- backend hooks ------------------------------------------------------------------------

    @abc.abstractmethod
    def _open_connection(self) -> None:
        """Connect (and create the schema unless read-only)."""

    @abc.abstractmethod
    def _close_connection(self) -> None:
        """Disconnect."""

    @abc.abstractmethod
    def _read_meta(self) -> dict[str, str]:
        """All meta rows."""

    @abc.abstractmethod
    def _write_txn(self) -> contextlib.AbstractContextManager[None]:
        """A write transaction, exclusive among writers of this ledger; commits on exit."""

    @abc.abstractmethod
    def _insert_meta(self, key: str, value: str) -> None:
        """Insert one meta row (inside `_write_txn`)."""

    @abc.abstractmethod
    def _count(self) -> int:
        """Number of stored entries (max seq + 1)."""

    @abc.abstractmethod
    def _insert(
        self, rows: Sequence[tuple[int, str, bytes, bytes]], nodes: Sequence[tuple[int, int, bytes]]
    ) -> None:
        """Insert entry rows and interior nodes (inside `_write_txn`)."""

    @abc.abstractmethod
    def _fetch_leaf_hashes(self, start: int, stop: int) -> list[bytes]:
        """Stored leaf hashes of [start, stop), in order."""

    @abc.abstractmethod
    def _fetch_nodes(self, level: int, start: int, stop: int) -> list[tuple[int, bytes]]:
        """Stored (index, hash) of `level` for start ≤ index < stop, in order."""

    @abc.abstractmethod
    def _fetch_range(self, start: int, stop: int) -> list[tuple[int, str, bytes, bytes]]:
        """Every (seq, type, body, leaf hash) row with start ≤ seq < stop, in order."""

    @abc.abstractmethod
    def _fetch_last_of_type(
        self, entry_type: str, *, first: bool = False
    ) -> tuple[int, bytes] | None:
        """The last entry of a type (the first one when `first`)."""

    # -- opening ------------------------------------------------------------------------------

    def _start(self) -> None:
        began = time.monotonic()
        self._open_connection()
        try:
            meta = self._read_meta()
            self._check_meta(meta)
            size = self._count()
            self._tree = self._load_tree(size)
            if not self._readonly:
                self._check_last_checkpoint()
                self._heads = self._load_heads()
        except BaseException:
            self._close_connection()
            raise
        log.info(
            "ledger_opened",
            backend=self.backend,
            url=self.url,
            entries=size,
            readonly=self._readonly,
            elapsed_s=round(time.monotonic() - began, 4),
        )

    def _check_meta(self, meta: dict[str, str]) -> None:
        stored_format = meta.get("format")
        if stored_format is not None and stored_format != FORMAT:
            raise LedgerError(
                f"{self.url} is in format {stored_format!r}; this Vigie reads {FORMAT!r}"
            )
        stored = meta.get("vantage")
        wanted = self._wanted_vantage
        if stored is not None and wanted is not None and stored != wanted:
            raise LedgerError(
                f"the ledger {self.url} belongs to vantage {stored!r}, not {wanted!r}: "
                "a vantage keeps its own ledger (set vantage.name back, or use another ledger)"
            )
        missing = [
            (k, v) for k, v in (("format", FORMAT), ("vantage", wanted)) if k not in meta and v
        ]
        if missing and not self._readonly:
            with self._write_txn():
                for key, value in missing:
                    assert value is not None
                    self._insert_meta(key, value)
            meta = {**meta, **{k: v for k, v in missing if v is not None}}
        self._vantage = meta.get("vantage")

    def _check_last_checkpoint(self) -> None:
        last = self._last_checkpoint_unlocked()
        if last is None:
            return
        if last.tree_size != last.seq or last.seq >= self._tree.size:
            raise LedgerCorruptedError(
                f"{self.url}: checkpoint at seq {last.seq} claims tree size {last.tree_size}"
            )
        if self._root_unlocked(last.tree_size) != last.root_hash:
            raise LedgerCorruptedError(
                f"{self.url}: the stored tree does not match the last checkpoint (seq "
                f"{last.seq}); refusing to append to it. Run `vigie verify` to find what "
                "changed, and move the ledger aside to start a new one."
            )

    # -- tree ---------------------------------------------------------------------------------

    def _subtree(self, level: int, index: int) -> bytes:
        # A complete subtree never changes: cache the upper ones every proof shares.
        cached = self._subtrees.get((level, index))
        if cached is not None:
            return cached
        node = self._subtree_uncached(level, index)
        if level >= STORED_LEVEL_STRIDE:
            if len(self._subtrees) >= _SUBTREE_CACHE:
                self._subtrees.pop(next(iter(self._subtrees)))
            self._subtrees[(level, index)] = node
        return node

    def _subtree_uncached(self, level: int, index: int) -> bytes:
        base = level - level % STORED_LEVEL_STRIDE
        width = 1 << (level - base)
        first = index * width
        if base == 0:
            hashes = self._fetch_leaf_hashes(first, first + width)
        else:
            hashes = [h for _, h in self._fetch_nodes(base, first, first + width)]
        if len(hashes) != width:
            raise LedgerCorruptedError(
                f"{self.url}: stored tree node ({level}, {index}) cannot be rebuilt: "
                f"{width - len(hashes)} of its {width} parts are missing; run `vigie verify`"
            )
        return merkle.reduce_perfect(hashes)

    def _load_tree(self, size: int) -> merkle.CompactTree:
        return merkle.CompactTree.from_source(self._subtree, size)

    def _root_unlocked(self, size: int) -> bytes:
        if size == self._tree.size:
            return self._tree.root()
        if not 0 <= size <= self._tree.size:
            raise IndexError(f"no tree of size {size}: the ledger has {self._tree.size} entries")
        return merkle.CompactTree.from_source(self._subtree, size).root()

    # -- public API ---------------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """Where the ledger lives (credentials removed)."""

    @property
    def vantage(self) -> str | None:
        """The vantage this ledger belongs to (checkpoint origin)."""
        return self._vantage

    def _usable(self) -> None:
        if self._closed:
            raise LedgerClosedError(f"the ledger {self.url} is closed")

    def append(self, entries: Sequence[tuple[str, EntryBody]]) -> list[int]:
        """Append entries in one transaction (group commit); durable when it returns."""
        if not entries:
            return []
        with self._lock:
            self._usable()
            if self._readonly:
                raise LedgerError(f"the ledger {self.url} is open read-only")
            try:
                tree, seqs = self._append_unlocked(entries)
            except LedgerEntryError:
                raise
            except LedgerCorruptedError:
                raise
            except Exception as exc:
                log.error(  # noqa: TRY400 - the cause is in the event; no traceback for disk-full
                    "ledger_append_failed",
                    url=self.url,
                    entries=len(entries),
                    error=f"{type(exc).__name__}: {exc}",
                )
                raise LedgerWriteError(
                    f"could not write {len(entries)} entries to {self.url}: {exc}"
                ) from exc
            self._tree = tree
            return seqs

    def _append_unlocked(
        self, entries: Sequence[tuple[str, EntryBody]]
    ) -> tuple[merkle.CompactTree, list[int]]:
        nodes: list[tuple[int, int, bytes]] = []
        rows: list[tuple[int, str, bytes, bytes]] = []

        def sink(level: int, index: int, node: bytes) -> None:
            nodes.append((level, index, node))

        with self._write_txn():
            stored = self._count()
            if stored != self._tree.size:
                # Another process appended (or a commit we saw fail did land): catch up.
                log.warning("ledger_reloaded", url=self.url, expected=self._tree.size, found=stored)
                self._tree = self._load_tree(stored)
                self._heads = self._load_heads()
            tree = self._tree.copy()
            heads = dict(self._heads)
            for entry_type, given in entries:
                seq = tree.size
                body = (
                    _build(entry_type, given, TreeHead(seq, tree.root(), dict(heads)))
                    if callable(given)
                    else given
                )
                body = chain.link(body, seq, heads)
                data = encode_entry(entry_type, seq, body)
                leaf = merkle.leaf_hash(data)
                tree.extend((leaf,), sink, STORED_LEVEL_STRIDE)
                rows.append((seq, entry_type, data, leaf))
            self._insert(rows, nodes)
        self._heads = heads
        return tree, [row[0] for row in rows]

    def _load_heads(self) -> dict[str, int]:
        """Each target's last entry: the heads of the last checkpoint, then the entries after."""
        last = self._last_checkpoint_unlocked()
        if last is None or last.seq is None:
            heads, start = {}, 0
        else:  # a checkpoint without heads (format 1): the chain starts after it
            heads, start = dict(chain.note_heads(last.note) or {}), last.seq + 1
        for rows in self.row_chunks(start, self._count(), _CHUNK):
            for seq, _kind, body, _leaf in rows:
                target = chain.target_of(body)
                if target is not None:
                    heads[chain.head_key(target)] = seq
        return heads

    def size(self) -> int:
        """Number of entries."""
        with self._lock:
            self._usable()
            return self._tree.size

    def head(self) -> TreeHead:
        """Current size and root."""
        with self._lock:
            self._usable()
            return TreeHead(self._tree.size, self._tree.root())

    def refresh(self) -> int:
        """Re-read the size from the database (a reader following a live writer)."""
        with self._lock:
            self._usable()
            stored = self._count()
            if stored != self._tree.size:
                self._tree = self._load_tree(stored)
            return stored

    def get(self, seq: int) -> bytes:
        """The stored bytes of entry `seq`."""
        with self._lock:
            self._usable()
            rows = self._fetch_range(seq, seq + 1) if seq >= 0 else []
        if not rows:
            raise IndexError(f"no entry {seq} in {self.url}")
        return rows[0][2]

    def iter_rows(self, start: int = 0, stop: int | None = None) -> Iterator[EntryRow]:
        """Stored rows [start, stop) in chunks (the lock is released between chunks)."""
        with self._lock:
            self._usable()
            end = self._count() if stop is None else min(stop, self._count())
        for rows in self.row_chunks(start, end, _CHUNK):
            for row in rows:
                yield EntryRow(*row)

    def row_chunks(
        self, start: int, stop: int, chunk: int = 8192
    ) -> Iterator[list[tuple[int, str, bytes, bytes]]]:
        """Raw (seq, type, body, leaf hash) rows of [start, stop) in lists (fast scanning).

        Reads seq ranges of `chunk` (no LIMIT/ORDER BY plan to go wrong); a range with no row
        (a gap) yields nothing.
        """
        position = max(start, 0)
        while position < stop:
            end = min(position + chunk, stop)
            with self._lock:
                self._usable()
                rows = self._fetch_range(position, end)
            if rows:
                yield rows
            position = end

    def iter_entries(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, bytes]]:
        """(seq, bytes) for entries [start, stop), streamed in chunks."""
        for row in self.iter_rows(start, stop):
            yield row.seq, row.body

    def stored_nodes(self, level: int, start: int, stop: int) -> list[tuple[int, bytes]]:
        """Stored interior nodes (index, hash) of `level` with start ≤ index < stop."""
        with self._lock:
            self._usable()
            return self._fetch_nodes(level, start, stop)

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first `size` entries (default: all)."""
        with self._lock:
            self._usable()
            return self._root_unlocked(self._tree.size if size is None else size)

    def inclusion_proof(self, seq: int, size: int | None = None) -> list[bytes]:
        """Audit path of entry `seq` in the tree of the first `size` entries (default: all)."""
        with self._lock:
            self._usable()
            tree_size = self._tree.size if size is None else size
            if tree_size > self._tree.size:
                raise IndexError(f"no tree of size {tree_size}: {self._tree.size} entries")
            return merkle.inclusion_proof(self._subtree, seq, tree_size)

    def consistency_proof(self, old: int, new: int | None = None) -> list[bytes]:
        """Consistency proof between tree sizes `old` and `new` (default: all)."""
        with self._lock:
            self._usable()
            new_size = self._tree.size if new is None else new
            if new_size > self._tree.size:
                raise IndexError(f"no tree of size {new_size}: {self._tree.size} entries")
            return merkle.consistency_proof(self._subtree, old, new_size)

    def latest_checkpoint(self) -> Checkpoint | None:
        """The last checkpoint entry, parsed (its signature is not checked here)."""
        with self._lock:
            self._usable()
            return self._last_checkpoint_unlocked()

    def first_checkpoint_origin(self) -> str | None:
        """The origin of the first checkpoint: the log's name for good (None: no checkpoint yet).

        Every later checkpoint names the same origin (`vigie verify` checks it); a configured
        origin never renames a log that has begun.
        """
        with self._lock:
            self._usable()
            found = self._fetch_last_of_type(CHECKPOINT, first=True)
        return None if found is None else Checkpoint.from_entry(*found).origin

    def _last_checkpoint_unlocked(self) -> Checkpoint | None:
        found = self._fetch_last_of_type(CHECKPOINT)
        if found is None:
            return None
        seq, body = found
        return Checkpoint.from_entry(seq, body)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._close_connection()
        log.info("ledger_closed", url=self.url, entries=self._tree.size)

    def __enter__(self) -> SqlLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_T = TypeVar("_T")


@dataclasses.dataclass(slots=True)
class _Request:
    entries: list[tuple[str, EntryBody]]
    future: asyncio.Future[list[int]]


class LedgerWriter:
    """Async facade: concurrent `append` calls share transactions (group commit).

    One worker thread owns every write; callers wait until their entry is durable. A failed
    transaction fails exactly the calls it held (an invalid entry fails alone).
    `aclose` flushes what is pending; it does not close the ledger (its opener does).
    """

    def __init__(self, ledger: Ledger, *, max_batch: int = 4096) -> None:
        self._ledger = ledger
        self._max_batch = max_batch
        self._pending: collections.deque[_Request] = collections.deque()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="vigie-ledger"
        )
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def ledger(self) -> Ledger:
        """The ledger written to."""
        return self._ledger

    async def append(self, entry_type: str, body: EntryBody) -> int:
        """Append one entry; return its sequence number once it is durable."""
        seqs = await self.append_many([(entry_type, body)])
        return seqs[0]

    async def append_many(self, entries: Sequence[tuple[str, EntryBody]]) -> list[int]:
        """Append entries atomically (all in the same transaction); their sequence numbers."""
        if self._closed:
            raise LedgerClosedError("the ledger writer is closed")
        if not entries:
            return []
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[int]] = loop.create_future()
        self._pending.append(_Request(list(entries), future))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush(), name="vigie-ledger-flush")
        return await future

    async def call(self, function: Callable[[Ledger], _T]) -> _T:
        """Run `function(ledger)` on the writer thread (after the writes already sent to it)."""
        if self._closed:
            raise LedgerClosedError("the ledger writer is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function, self._ledger)

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch: list[_Request] = []
            count = 0
            while self._pending and (
                not batch or count + len(self._pending[0].entries) <= self._max_batch
            ):
                request = self._pending.popleft()
                batch.append(request)
                count += len(request.entries)
            entries = [entry for request in batch for entry in request.entries]
            try:
                seqs = await loop.run_in_executor(self._executor, self._ledger.append, entries)
            except LedgerEntryError as exc:
                if len(batch) == 1:
                    _fail(batch[0], exc)
                    continue
                for request in batch:  # find the bad one: every other entry is still written
                    try:
                        one = await loop.run_in_executor(
                            self._executor, self._ledger.append, request.entries
                        )
                    except Exception as single:  # noqa: BLE001 - handed to its caller
                        _fail(request, single)
                    else:
                        _resolve(request, one)
            except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch
                for request in batch:
                    _fail(request, exc)
            except BaseException as exc:  # cancelled: the callers must not wait forever
                for request in [*batch, *self._pending]:
                    _fail(request, LedgerClosedError(f"the ledger writer stopped: {exc!r}"))
                self._pending.clear()
                raise
            else:
                position = 0
                for request in batch:
                    size = len(request.entries)
                    _resolve(request, seqs[position : position + size])
                    position += size

    async def aclose(self) -> None:
        """Write what is pending, then stop the worker thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._flusher)
        await asyncio.to_thread(self._executor.shutdown, wait=True)


def _resolve(request: _Request, seqs: list[int]) -> None:
    if not request.future.done():
        request.future.set_result(seqs)


def _fail(request: _Request, exc: BaseException) -> None:
    if not request.future.done():
        request.future.set_exception(exc)
