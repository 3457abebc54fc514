"""``python -m evidence.postgres --print-schema [--grant ROLE]``, the command the PostgreSQL
set-up documents; the backend itself is `evidence/ledger/postgres.py`. It only prints SQL.
"""

from __future__ import annotations

from evidence.ledger.postgres import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
