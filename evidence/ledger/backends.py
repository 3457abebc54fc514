"""Open a ledger by its URL: SQLite (a file path or ``sqlite:///``) or PostgreSQL.

The one place that knows the backends; it only opens, and never changes an entry.
"""

from __future__ import annotations

from pathlib import Path

from evidence.ledger.core import SqlLedger
from evidence.ledger.entries import LedgerError, redact_url, sqlite_path

__all__ = ["open_ledger"]


def open_ledger(
    url: str | Path,
    *,
    vantage: str | None = None,
    readonly: bool = False,
    password: str | None = None,
    mmap: bool = False,
) -> SqlLedger:
    """Open (creating if needed, unless `readonly`) the ledger at `url`.

    `url`: ``sqlite:///relative.db``, ``sqlite:////absolute.db``, a plain file path, or
    ``postgresql://user:pass@host:port/db``. `vantage` is recorded on creation and must
    match afterwards (it is the checkpoint origin). `password` overrides the URL's.
    `mmap` (SQLite, read-only): map up to 2 GB of the file, for a whole-ledger scan that
    wants speed more than a small resident size (`vigie verify`).
    """
    path = sqlite_path(url)
    if path is not None:
        from evidence.ledger.sqlite import SqliteLedger  # the sqlite3 module only when used

        return SqliteLedger(path, vantage=vantage, readonly=readonly, mmap=mmap)
    text = str(url)
    if text.startswith(("postgresql://", "postgres://")):
        from evidence.ledger.postgres import PostgresLedger

        return PostgresLedger(text, vantage=vantage, readonly=readonly, password=password)
    raise LedgerError(
        f"unsupported ledger URL {redact_url(text)!r}: use sqlite:///PATH or postgresql://..."
    )
