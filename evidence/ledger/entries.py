"""What a ledger entry is made of, and the ledger's errors: tree heads, stored rows, URLs.

Plain values and exceptions only, shared by the ledger, its backends and checkpoints; it never
opens a database.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "EntryRow",
    "LedgerClosedError",
    "LedgerCorruptedError",
    "LedgerEntryError",
    "LedgerError",
    "LedgerWriteError",
    "NoLedgerYetError",
    "TreeHead",
    "redact_url",
    "sqlite_path",
]


@dataclasses.dataclass(frozen=True, slots=True)
class TreeHead:
    """A tree size and its root hash (the entries [0, size))."""

    size: int
    root: bytes
    # each target's last entry before `size` (for checkpoints: see evidence/ledger/chain.py)
    heads: Mapping[str, int] | None = None


class EntryRow(NamedTuple):
    """One stored entry as the database holds it."""

    seq: int
    type: str
    body: bytes
    leaf_hash: bytes


class LedgerError(Exception):
    """The ledger cannot be opened or used (the message says what to do)."""


class LedgerWriteError(LedgerError):
    """An append failed (disk full, database down...); nothing of it was written."""


class LedgerEntryError(LedgerError, ValueError):
    """An entry cannot be stored as given (bad type, non-JSON value, reserved key)."""


class LedgerCorruptedError(LedgerError):
    """The stored tree contradicts the ledger's own records; run `vigie verify`."""


class LedgerClosedError(LedgerError):
    """The ledger or writer was closed."""


class NoLedgerYetError(LedgerError):
    """Opened read-only, the database holds no ledger yet: `vigie run` has not created it."""


def redact_url(url: str) -> str:
    """`url` without its password."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def sqlite_path(url: str | Path) -> Path | None:
    """The database file of a SQLite ledger URL or plain path; None for other URLs.

    ``sqlite:///var/ledger.db`` is relative to the working directory,
    ``sqlite:////var/lib/vigie/ledger.db`` absolute (SQLAlchemy's convention).
    """
    if isinstance(url, Path):
        return url
    if url.startswith("sqlite:///"):
        rest = url[len("sqlite:///") :]
        if not rest:
            raise LedgerError(f"no database file in {url!r}")
        return Path(rest)
    if "://" in url:
        return None
    return Path(url)
