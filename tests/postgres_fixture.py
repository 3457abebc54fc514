"""A throwaway PostgreSQL server for tests: `initdb` in a temporary directory, loopback only.

It listens on 127.0.0.1 on a free port and a private socket directory, runs as an unprivileged
user (never as root), and is stopped and deleted at the end of the session.

Fixtures: `postgres_server` (session; the `PostgresServer`), `postgres_url` (session; an admin
URL to a database of its own), `postgres_db` (a fresh empty schema per test, as a URL whose
search_path is that schema: a new database takes seconds, a schema milliseconds) and
`ledger_url` (parametrized: a fresh SQLite file, then a fresh PostgreSQL schema, so every
ledger scenario runs on both backends). `bypass_sql` plays the attacker who edits the
database directly.
Skips with the reason when the PostgreSQL binaries are missing (`make test` installs them).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from evidence.ledger.backends import open_ledger
from evidence.ledger.core import SqlLedger

__all__ = [
    "PostgresServer",
    "bypass_sql",
    "find_pg_bin",
    "ledger",
    "ledger_url",
    "postgres_db",
    "postgres_server",
    "postgres_url",
    "rebuild_stored_tree",
    "shift_seqs",
]

ADMIN = "vigie_admin"
_RUN_AS_CANDIDATES = ("postgres", "vigie-test")


def find_pg_bin() -> Path | None:
    """The directory holding initdb/pg_ctl (newest Debian version first, then PATH)."""
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        versions = sorted(
            (p for p in root.iterdir() if (p / "bin" / "initdb").exists()),
            key=lambda p: int(p.name) if p.name.isdigit() else 0,
            reverse=True,
        )
        if versions:
            return versions[0] / "bin"
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_user() -> str | None:
    """The unprivileged user to run the server as (None: the current user, not root)."""
    if os.geteuid() != 0:
        return None
    for name in _RUN_AS_CANDIDATES:
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "vigie-test"],
        check=True,
        capture_output=True,
    )
    return "vigie-test"


class PostgresServer:
    """One throwaway server (`start`, `stop`); `url(...)` builds connection URLs."""

    def __init__(
        self, bin_dir: Path, directory: Path, user: str | None, *, durable: bool = False
    ) -> None:
        self.bin_dir = bin_dir
        self.directory = directory
        self.data = directory / "data"
        self.sockets = directory / "sockets"
        self.user = user
        self.durable = durable
        self.password = secrets.token_hex(12)
        self.port = 0
        self._counter = itertools.count(1)
        self._databases: set[str] = set()
        self._lock = threading.Lock()

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.user, "--", *args] if self.user else list(args)

    def _chown(self, path: Path) -> None:
        if self.user:
            info = pwd.getpwnam(self.user)
            os.chown(path, info.pw_uid, info.pw_gid)

    @classmethod
    def start(cls, *, durable: bool = False) -> PostgresServer:
        """initdb + pg_ctl start on a free loopback port (a few retries on a port race).

        `durable`: keep fsync on (benchmarks); tests turn it off, they never kill the server.
        """
        bin_dir = find_pg_bin()
        if bin_dir is None:
            raise FileNotFoundError("initdb not found (install Debian's postgresql package)")
        directory = Path(tempfile.mkdtemp(prefix="vigie-pg-"))
        server = cls(bin_dir, directory, _run_user(), durable=durable)
        try:
            server._init()
            last: subprocess.CalledProcessError | None = None
            for _ in range(3):
                server.port = _free_port()
                try:
                    server._pg_ctl_start()
                    return server
                except subprocess.CalledProcessError as exc:
                    last = exc
            assert last is not None
            raise last
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise

    def _init(self) -> None:
        self.directory.chmod(0o700)
        self._chown(self.directory)
        self.sockets.mkdir(mode=0o700)
        self._chown(self.sockets)
        pwfile = self.directory / "pw"
        pwfile.write_text(self.password + "\n")
        self._chown(pwfile)
        subprocess.run(
            self._cmd(
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                ADMIN,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        pwfile.unlink()

    def _pg_ctl_start(self) -> None:
        settings = [
            f"-p {self.port}",
            f"-k {self.sockets}",
            "-c listen_addresses=127.0.0.1",
            "-c max_connections=50",
        ]
        if not self.durable:  # the server is not what the tests kill; keep them fast
            settings += ["-c fsync=off", "-c full_page_writes=off"]
        options = " ".join(settings)
        subprocess.run(
            self._cmd(
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.directory / "server.log"),
                "-w",
                "-t",
                "60",
                "-o",
                options,
                "start",
            ),
            check=True,
            capture_output=True,
            timeout=90,
        )

    def stop(self) -> None:
        """Stop the server and delete its files."""
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run(
                self._cmd(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"),
                check=False,
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(self.directory, ignore_errors=True)

    def url(
        self, database: str = "postgres", *, user: str = ADMIN, password: str | None = None
    ) -> str:
        """postgresql://user:password@127.0.0.1:port/database (admin password by default)."""
        secret = self.password if password is None and user == ADMIN else password
        auth = f"{user}:{secret}" if secret else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str, *, database: str = "postgres") -> None:
        """Run SQL as the admin (autocommit)."""
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]  # test SQL, not user input

    def create_database(self, name: str | None = None) -> str:
        """A new empty database (slow: a second or more); its admin URL."""
        name = name or f"t{os.getpid()}_{next(self._counter)}"
        self.execute(f'CREATE DATABASE "{name}" STRATEGY FILE_COPY')
        return self.url(name)

    def create_schema(self, database: str = "vigie_session") -> str:
        """A fresh empty schema (fast) in `database`; an admin URL whose search_path is it."""
        import psycopg

        with self._lock:
            if database not in self._databases:
                with psycopg.connect(self.url(), autocommit=True) as conn:
                    found = conn.execute(
                        "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
                    ).fetchone()
                if found is None:
                    self.create_database(database)
                self._databases.add(database)
        schema = f"s{os.getpid()}_{next(self._counter)}"
        self.execute(f'CREATE SCHEMA "{schema}"', database=database)
        return f"{self.url(database)}?options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session (skips when PostgreSQL is not installed)."""
    if find_pg_bin() is None:
        pytest.skip("PostgreSQL binaries not found (initdb, pg_ctl): run `make deps-test`")
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """Admin URL of a database created for this session."""
    postgres_server.create_schema()  # creates the session database once
    return postgres_server.url("vigie_session")


@pytest.fixture
def postgres_db(postgres_server: PostgresServer) -> str:
    """Admin URL of a fresh, empty schema (search_path) for one test: a ledger of its own."""
    return postgres_server.create_schema()


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.slow])]
)
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to an empty ledger location: SQLite file, then PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_schema()


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[SqlLedger]:
    """An open empty ledger of vantage paris-1 at `ledger_url` (SQLite, then PostgreSQL)."""
    opened = open_ledger(ledger_url, vantage="paris-1")
    try:
        yield opened
    finally:
        opened.close()


def bypass_sql(url: str, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
    """Run SQL on a ledger around its append-only triggers, as someone with full DB access.

    SQLite: the triggers are dropped (as anyone who can write the file can). PostgreSQL: the
    admin sets session_replication_role = replica. Placeholders are written ``?``.
    """
    if url.startswith("sqlite:///"):
        import sqlite3

        conn = sqlite3.connect(url[len("sqlite:///") :], isolation_level=None)
        try:
            names = [
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")
            ]
            conn.execute("BEGIN")
            for name in names:
                conn.execute(f'DROP TRIGGER "{name}"')
            for sql, params in statements:
                conn.execute(sql, tuple(params))
            conn.execute("COMMIT")
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=False) as conn:
        conn.execute("SET session_replication_role = replica")
        for sql, params in statements:
            conn.execute(sql.replace("?", "%s"), tuple(params))  # type: ignore[arg-type]
        conn.commit()


def shift_seqs(first: int, delta: int) -> list[tuple[str, list[Any]]]:
    """Statements (for `bypass_sql`) moving the entries from `first` on by `delta` places."""
    return [
        ("UPDATE ledger_entries SET seq = seq + 1000000 WHERE seq >= ?", [first]),
        ("UPDATE ledger_entries SET seq = seq - 1000000 + ? WHERE seq >= 1000000", [delta]),
    ]


def rebuild_stored_tree(url: str) -> None:
    """Recompute every stored node from the (tampered) leaf hashes, as a careful forger would."""
    from evidence.ledger import merkle
    from evidence.ledger.backends import open_ledger

    ledger = open_ledger(url, readonly=True)
    try:
        leaves = [row.leaf_hash for row in ledger.iter_rows()]
    finally:
        ledger.close()
    nodes: list[tuple[int, int, bytes]] = []
    tree = merkle.CompactTree()
    tree.extend(leaves, lambda level, index, node: nodes.append((level, index, node)), 4)
    statements: list[tuple[str, list[Any]]] = [("DELETE FROM ledger_tree_nodes", [])]
    statements += [
        ("INSERT INTO ledger_tree_nodes (level, idx, hash) VALUES (?, ?, ?)", list(node))
        for node in nodes
    ]
    bypass_sql(url, statements)
