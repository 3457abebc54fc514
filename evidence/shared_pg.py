"""Several vantages on one PostgreSQL server: one database, owner and login role per vantage.

It provisions ledgers (as a superuser) and grants nothing beyond what each role needs: a vantage
can SELECT and INSERT into its own ledger only, the central reader can only SELECT; it never
reads, changes or deletes ledger entries.

Layout (vantage ``paris-1``):

* database ``vigie_paris_1`` owned by the NOLOGIN role ``vigie_paris_1_owner`` (who owns the
  ledger tables and their append-only triggers, and is never used to connect);
* login role ``vigie_paris_1``: CONNECT on that database only, SELECT and INSERT on its three
  ledger tables, nothing else (no UPDATE, DELETE, TRUNCATE, DDL or TEMP);
* the vantage name is written into the ledger's meta table at provisioning, so the ledger is
  bound to that vantage before the service first connects;
* the read-only role (``vigie_central``): CONNECT and SELECT on every vantage's database, and
  ``default_transaction_read_only``.

One database per vantage rather than one schema per vantage: the ledger serialises its writers
with a PostgreSQL advisory lock, and advisory locks are scoped to a database; in a shared
database any role that can connect could hold that lock and stall the other vantages' writes.
Separate databases also mean a vantage's credentials cannot even connect to another's ledger.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import urllib.parse
from collections.abc import Iterable, Sequence
from typing import Any

from evidence.ledger.core import FORMAT
from evidence.ledger.entries import LedgerError, redact_url
from evidence.ledger.postgres import SCHEMA, TABLES

__all__ = [
    "READER_ROLE",
    "ProvisionError",
    "VantageLedger",
    "database_url",
    "provision_reader",
    "provision_vantage",
    "provisioning_script",
    "vantage_names",
]

READER_ROLE = "vigie_central"
CONNECTION_LIMIT = 10  # per login role: one vantage cannot exhaust the server's connections
_META_INSERT = (
    "INSERT INTO ledger_meta (key, value) VALUES ('format', {fmt}), ('vantage', {vantage})"
)
_VANTAGE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


class ProvisionError(LedgerError):
    """A vantage ledger cannot be provisioned (bad name, missing privilege...)."""


@dataclasses.dataclass(frozen=True, slots=True)
class VantageLedger:
    """The names of one vantage's ledger on the shared server."""

    vantage: str
    database: str
    owner: str
    role: str


def vantage_names(vantage: str) -> VantageLedger:
    """Database and role names for `vantage` (``paris-1`` -> ``vigie_paris_1``)."""
    if not _VANTAGE.match(vantage):
        raise ProvisionError(
            f"vantage name {vantage!r} must be lower-case letters, digits and dashes "
            "(at most 40), starting with a letter or digit"
        )
    base = "vigie_" + vantage.replace("-", "_")
    return VantageLedger(vantage, base, base + "_owner", base)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _cluster_sql(names: VantageLedger) -> list[str]:
    """Statements run connected to any database (roles, the database itself)."""
    owner, role, db = _ident(names.owner), _ident(names.role), _ident(names.database)
    return [
        f"CREATE ROLE {owner} NOLOGIN",
        f"CREATE ROLE {role} LOGIN CONNECTION LIMIT {CONNECTION_LIMIT}",
        (
            f"CREATE DATABASE {db} OWNER {owner} TEMPLATE template0 ENCODING 'UTF8' "
            "STRATEGY FILE_COPY"
        ),
        f"REVOKE ALL ON DATABASE {db} FROM PUBLIC",
        f"GRANT CONNECT ON DATABASE {db} TO {role}",
    ]


def _database_sql(names: VantageLedger) -> list[str]:
    """Statements run connected to the vantage's database, as a superuser."""
    owner, role = _ident(names.owner), _ident(names.role)
    tables = ", ".join(TABLES)
    return [
        "REVOKE ALL ON SCHEMA public FROM PUBLIC",
        f"ALTER SCHEMA public OWNER TO {owner}",
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"SET ROLE {owner}",
        "SET search_path = public",
        SCHEMA,
        f"REVOKE ALL ON {tables} FROM PUBLIC",
        f"GRANT SELECT, INSERT ON {tables} TO {role}",
        # constants and a validated vantage name, quoted as literals
        _META_INSERT.format(fmt=_literal(FORMAT), vantage=_literal(names.vantage)),
        "RESET ROLE",
    ]


def _reader_sql(names: VantageLedger, reader: str) -> tuple[list[str], list[str]]:
    """(cluster statements, database statements) giving `reader` read access to a ledger."""
    db, rd = _ident(names.database), _ident(reader)
    return (
        [f"GRANT CONNECT ON DATABASE {db} TO {rd}"],
        [
            f"GRANT USAGE ON SCHEMA public TO {rd}",
            f"GRANT SELECT ON {', '.join(TABLES)} TO {rd}",
        ],
    )


def _reader_role_sql(reader: str) -> list[str]:
    rd = _ident(reader)
    return [
        f"CREATE ROLE {rd} LOGIN CONNECTION LIMIT {CONNECTION_LIMIT}",
        f"ALTER ROLE {rd} SET default_transaction_read_only = on",
    ]


def database_url(server_url: str, database: str, *, user: str, password: str | None) -> str:
    """`server_url` (postgresql://...@host:port/anything) for another database and user."""
    parts = urllib.parse.urlsplit(server_url)
    host = parts.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    netloc = urllib.parse.quote(user, safe="")
    if password:
        netloc += ":" + urllib.parse.quote(password, safe="")
    netloc += "@" + host + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit((parts.scheme, netloc, "/" + database, parts.query, ""))


def _execute(url: str, statements: Iterable[str], *, transaction: bool) -> None:
    import psycopg

    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            if transaction:
                with conn.transaction():
                    for statement in statements:
                        conn.execute(statement.encode())
            else:
                for statement in statements:
                    conn.execute(statement.encode())
    except psycopg.Error as exc:
        raise ProvisionError(f"provisioning on {redact_url(url)} failed: {exc}") from exc


def _set_password(admin_url: str, role: str, password: str) -> None:
    import psycopg
    from psycopg import sql

    statement = sql.SQL("ALTER ROLE {} PASSWORD {}").format(
        sql.Identifier(role), sql.Literal(password)
    )
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(statement)
    except psycopg.Error as exc:
        raise ProvisionError(f"cannot set the password of {role}: {exc}") from exc


def provision_vantage(admin_url: str, vantage: str, *, password: str) -> VantageLedger:
    """Create the roles, database and (empty, bound) ledger of `vantage`, as a superuser.

    `admin_url` is a superuser URL to any database of the server. Fails (ProvisionError) when
    the roles or database already exist: provisioning never touches an existing ledger.
    """
    names = vantage_names(vantage)
    _execute(admin_url, _cluster_sql(names), transaction=False)
    _set_password(admin_url, names.role, password)
    admin_db = database_url(
        admin_url,
        names.database,
        user=urllib.parse.unquote(urllib.parse.urlsplit(admin_url).username or ""),
        password=_url_password(admin_url),
    )
    _execute(admin_db, _database_sql(names), transaction=True)
    return names


def provision_reader(
    admin_url: str, vantages: Sequence[str], *, password: str, reader: str = READER_ROLE
) -> None:
    """Create the read-only role `reader` (if needed) and let it read each vantage's ledger."""
    import psycopg

    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (reader,)).fetchone()
    except psycopg.Error as exc:
        raise ProvisionError(f"cannot reach {redact_url(admin_url)}: {exc}") from exc
    if exists is None:
        _execute(admin_url, _reader_role_sql(reader), transaction=False)
    _set_password(admin_url, reader, password)
    user = urllib.parse.unquote(urllib.parse.urlsplit(admin_url).username or "")
    for vantage in vantages:
        names = vantage_names(vantage)
        cluster, database = _reader_sql(names, reader)
        _execute(admin_url, cluster, transaction=False)
        url = database_url(admin_url, names.database, user=user, password=_url_password(admin_url))
        _execute(url, database, transaction=True)


def _url_password(url: str) -> str | None:
    password = urllib.parse.urlsplit(url).password
    return None if password is None else urllib.parse.unquote(password)


def provisioning_script(vantages: Sequence[str], *, reader: str | None = READER_ROLE) -> str:
    """A psql script doing what `provision_vantage`/`provision_reader` do (passwords asked)."""
    lines = [
        "-- Vigie: ledgers of several vantages on one PostgreSQL server.",
        "-- Run as a superuser:  psql -v ON_ERROR_STOP=1 -f this.sql",
        "\\set ON_ERROR_STOP on",
    ]
    all_names = [vantage_names(v) for v in vantages]
    if reader:
        lines += [f"{s};" for s in _reader_role_sql(reader)]
        lines.append(f"\\password {reader}")
    for names in all_names:
        lines.append(f"\n-- vantage {names.vantage}")
        lines += [f"{s};" for s in _cluster_sql(names)]
        lines.append(f"\\password {names.role}")
        if reader:
            lines += [f"{s};" for s in _reader_sql(names, reader)[0]]
        lines.append(f"\\connect {names.database}")
        lines.append("BEGIN;")
        body = _database_sql(names)
        if reader:
            body += _reader_sql(names, reader)[1]
        lines += [s.strip() if s is SCHEMA else f"{s};" for s in body]
        lines.append("COMMIT;")
        lines.append("\\connect postgres")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m evidence.shared_pg --vantage paris-1 --vantage lyon-1``: print the script."""
    parser = argparse.ArgumentParser(
        prog="python -m evidence.shared_pg",
        description="Print the psql script that provisions one ledger per vantage on a shared "
        "PostgreSQL server, and a read-only role for the central status page.",
    )
    parser.add_argument("--vantage", action="append", required=True, metavar="NAME")
    parser.add_argument("--reader", default=READER_ROLE, metavar="ROLE", help="'' for none")
    args: Any = parser.parse_args(argv)
    try:
        sys.stdout.write(provisioning_script(args.vantage, reader=args.reader or None))
    except ProvisionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
