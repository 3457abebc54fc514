"""The PostgreSQL ledger backend (psycopg 3), for associations that outgrow one machine.

It only ever INSERTs and SELECTs; triggers refuse UPDATE, DELETE, TRUNCATE and out-of-sequence
inserts, and in production the service connects as a role that holds no other privilege.

Production set-up (as a PostgreSQL superuser; the service then connects as ``vigie``)::

    CREATE ROLE vigie_owner NOLOGIN;           -- owns the tables, never used by the service
    CREATE ROLE vigie LOGIN PASSWORD '...';    -- the service: SELECT and INSERT only
    CREATE DATABASE vigie OWNER vigie_owner;
    -- then, connected to the database vigie:
    SET ROLE vigie_owner;
    <the output of: python -m evidence.postgres --print-schema --grant vigie>

The schema is `SCHEMA` below; `schema_sql(grant_to=...)` adds the GRANTs.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import urllib.parse
from collections.abc import Iterator, Sequence
from typing import Any

from evidence.ledger.core import SqlLedger
from evidence.ledger.entries import LedgerError, NoLedgerYetError, redact_url

__all__ = ["SCHEMA", "PostgresLedger", "schema_sql"]

TABLES = ("ledger_meta", "ledger_entries", "ledger_tree_nodes")
_LOCK_KEY = 0x76696769  # "vigi": serialises writers of one database (transaction-scoped)

# Every table is frozen: no UPDATE, DELETE or TRUNCATE, whoever asks.
_FROZEN = "".join(
    f"""
DROP TRIGGER IF EXISTS {table}_frozen ON {table};
CREATE TRIGGER {table}_frozen BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};
CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
"""
    for table in TABLES
)

_TABLES_AND_FUNCTIONS = """
CREATE TABLE IF NOT EXISTS ledger_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_entries (
    seq BIGINT PRIMARY KEY CHECK (seq >= 0),
    type TEXT NOT NULL,
    body BYTEA NOT NULL,
    leaf_hash BYTEA NOT NULL CHECK (length(leaf_hash) = 32)
);
CREATE INDEX IF NOT EXISTS ledger_entries_events
    ON ledger_entries (type, seq) WHERE type <> 'observation';
CREATE TABLE IF NOT EXISTS ledger_tree_nodes (
    level SMALLINT NOT NULL,
    idx BIGINT NOT NULL,
    hash BYTEA NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);

CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'vigie ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE OR REPLACE FUNCTION ledger_entries_in_sequence() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.seq IS DISTINCT FROM (SELECT COALESCE(MAX(seq), -1) + 1 FROM ledger_entries) THEN
        RAISE EXCEPTION 'vigie ledger: entries are appended in sequence only (got seq %)',
            NEW.seq USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS ledger_entries_in_sequence ON ledger_entries;
CREATE TRIGGER ledger_entries_in_sequence BEFORE INSERT ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entries_in_sequence();
"""

SCHEMA = "".join((_TABLES_AND_FUNCTIONS, _FROZEN))


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def schema_sql(*, grant_to: str | None = None) -> str:
    """The DDL of a ledger, plus SELECT/INSERT grants (and nothing else) for `grant_to`."""
    text = SCHEMA
    if grant_to:
        role = _quote_ident(grant_to)
        text += f"\nREVOKE ALL ON {', '.join(TABLES)} FROM PUBLIC;\n"
        text += f"GRANT SELECT, INSERT ON {', '.join(TABLES)} TO {role};\n"
    return text


_LAST_OF_TYPE = (
    "SELECT seq, body FROM ledger_entries WHERE type = %s AND type <> 'observation' "
    "ORDER BY seq DESC LIMIT 1"
)
_FIRST_OF_TYPE = _LAST_OF_TYPE.replace("DESC", "ASC")


class PostgresLedger(SqlLedger):
    """A ledger in a PostgreSQL database (tables ``ledger_*`` in the search path)."""

    backend = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        vantage: str | None = None,
        readonly: bool = False,
        password: str | None = None,
    ) -> None:
        super().__init__(vantage=vantage, readonly=readonly)
        self._dsn = url
        self._password = password
        self._conn: Any = None
        self._start()

    @property
    def url(self) -> str:
        """The URL without its password."""
        return redact_url(self._dsn)

    def _connect(self) -> Any:
        import psycopg

        kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": 10}
        if self._password is not None:
            kwargs["password"] = self._password
        if "application_name" not in urllib.parse.urlsplit(self._dsn).query:
            kwargs["application_name"] = "vigie-ledger"
        try:
            conn = psycopg.connect(self._dsn, **kwargs)
        except psycopg.Error as exc:
            raise LedgerError(f"cannot connect to the ledger {self.url}: {exc}") from exc
        if self._readonly:
            conn.read_only = True
        return conn

    def _db(self) -> Any:
        conn = self._conn
        if conn is None or conn.broken or conn.closed:
            # Reconnect after a lost connection; the next append re-reads the size.
            self._conn = None
            conn = self._conn = self._connect()
        return conn

    def _open_connection(self) -> None:
        import psycopg

        conn = self._db()
        try:
            exists = conn.execute("SELECT to_regclass('ledger_entries') IS NOT NULL").fetchone()
            if not exists[0]:
                if self._readonly:
                    raise NoLedgerYetError(f"{self.url} holds no Vigie ledger (no ledger_entries)")
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                    conn.execute(SCHEMA)
        except psycopg.Error as exc:
            conn.close()
            self._conn = None
            raise LedgerError(f"cannot prepare the ledger {self.url}: {exc}") from exc

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _read_meta(self) -> dict[str, str]:
        rows = self._db().execute("SELECT key, value FROM ledger_meta").fetchall()
        return {str(k): str(v) for k, v in rows}

    @contextlib.contextmanager
    def _write_txn(self) -> Iterator[None]:
        conn = self._db()
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            yield

    def _insert_meta(self, key: str, value: str) -> None:
        self._db().execute("INSERT INTO ledger_meta (key, value) VALUES (%s, %s)", (key, value))

    def _count(self) -> int:
        row = self._db().execute("SELECT MAX(seq) FROM ledger_entries").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def _insert(
        self, rows: Sequence[tuple[int, str, bytes, bytes]], nodes: Sequence[tuple[int, int, bytes]]
    ) -> None:
        with self._db().cursor() as cursor:
            cursor.executemany(
                "INSERT INTO ledger_entries (seq, type, body, leaf_hash) VALUES (%s, %s, %b, %b)",
                rows,
            )
            if nodes:
                cursor.executemany(
                    "INSERT INTO ledger_tree_nodes (level, idx, hash) VALUES (%s, %s, %b)", nodes
                )

    def _fetch_leaf_hashes(self, start: int, stop: int) -> list[bytes]:
        with self._db().cursor(binary=True) as cursor:
            cursor.execute(
                "SELECT leaf_hash FROM ledger_entries WHERE seq >= %s AND seq < %s ORDER BY seq",
                (start, stop),
            )
            return [bytes(row[0]) for row in cursor]

    def _fetch_nodes(self, level: int, start: int, stop: int) -> list[tuple[int, bytes]]:
        with self._db().cursor(binary=True) as cursor:
            cursor.execute(
                "SELECT idx, hash FROM ledger_tree_nodes WHERE level = %s AND idx >= %s "
                "AND idx < %s ORDER BY idx",
                (level, start, stop),
            )
            return [(int(row[0]), bytes(row[1])) for row in cursor]

    def _fetch_range(self, start: int, stop: int) -> list[tuple[int, str, bytes, bytes]]:
        # No ORDER BY: without fresh statistics the planner may sort the whole table on disk
        # for it; the rows come back nearly in order and a sort here is cheap.
        with self._db().cursor(binary=True) as cursor:
            cursor.execute(
                "SELECT seq, type, body, leaf_hash FROM ledger_entries "
                "WHERE seq >= %s AND seq < %s",
                (start, stop),
            )
            rows: list[tuple[int, str, bytes, bytes]] = cursor.fetchall()
        rows.sort(key=_first)
        return rows

    def _fetch_last_of_type(
        self, entry_type: str, *, first: bool = False
    ) -> tuple[int, bytes] | None:
        with self._db().cursor(binary=True) as cursor:
            cursor.execute(
                _FIRST_OF_TYPE if first else _LAST_OF_TYPE,
                (entry_type,),
            )
            row = cursor.fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))


def _first(row: tuple[int, str, bytes, bytes]) -> int:
    return row[0]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m evidence.postgres --print-schema [--grant ROLE]``: print the ledger DDL."""
    parser = argparse.ArgumentParser(prog="python -m evidence.postgres", description=__doc__)
    parser.add_argument("--print-schema", action="store_true", help="print the ledger's DDL")
    parser.add_argument("--grant", metavar="ROLE", help="grant SELECT, INSERT (only) to ROLE")
    args = parser.parse_args(argv)
    if not args.print_schema:
        parser.print_help()
        return 2
    sys.stdout.write(schema_sql(grant_to=args.grant))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
