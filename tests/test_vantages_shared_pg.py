"""Several vantages on one PostgreSQL server: isolation of their ledgers, concurrent writers.

Runs on the throwaway PostgreSQL server of tests/postgres_fixture.py (loopback only); vantage and
role names are unique per session, since roles are server-wide.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evidence.ledger.backends import open_ledger
from evidence.ledger.entries import LedgerError
from evidence.shared_pg import (
    ProvisionError,
    database_url,
    provision_reader,
    provision_vantage,
    provisioning_script,
    vantage_names,
)
from simulator import SimulatorProcess
from tests.postgres_fixture import PostgresServer
from tests.service_fixture import ServiceProcess

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Shared:
    """Two provisioned vantages and the reader on one server, with their URLs."""

    server: PostgresServer
    a: str
    b: str
    reader: str
    passwords: dict[str, str]

    def url(self, vantage: str, *, as_role: str | None = None) -> str:
        """URL of `vantage`'s database, logged in as `as_role` (default: the vantage's role)."""
        names = vantage_names(vantage)
        role = as_role or names.role
        return database_url(
            self.server.url(), names.database, user=role, password=self.passwords[role]
        )


@pytest.fixture(scope="module")
def shared(postgres_server: PostgresServer) -> Shared:
    """Vantages ``a-<token>`` and ``b-<token>`` and a reader role, provisioned once."""
    token = secrets.token_hex(3)
    a, b, reader = f"a-{token}", f"b-{token}", f"vigie_central_{token}"
    passwords: dict[str, str] = {}
    admin = postgres_server.url()
    for vantage in (a, b):
        passwords[vantage_names(vantage).role] = secrets.token_hex(8)
        provision_vantage(admin, vantage, password=passwords[vantage_names(vantage).role])
    passwords[reader] = secrets.token_hex(8)
    provision_reader(admin, [a, b], password=passwords[reader], reader=reader)
    return Shared(postgres_server, a, b, reader, passwords)


def _sql(url: str, statement: str) -> Any:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(statement.encode()).fetchall()


def _refused(url: str, statement: str) -> str:
    """The error PostgreSQL gives for `statement` (AssertionError if it succeeds)."""
    import psycopg

    try:
        _sql(url, statement)
    except psycopg.Error as exc:
        return str(exc)
    raise AssertionError(f"{statement!r} succeeded on {url}")


class TestIsolation:
    """A vantage's credentials reach its own ledger only, and only to append."""

    def test_cannot_connect_to_another_ledger(self, shared: Shared) -> None:
        """Vantage A's role is refused a connection to B's database."""
        a_role = vantage_names(shared.a).role
        url = shared.url(shared.b, as_role=a_role)
        message = _refused(url, "SELECT 1")
        assert "permission denied for database" in message

    def test_cannot_insert_into_another_ledger(self, shared: Shared) -> None:
        """From its own connection, A cannot INSERT into B's entries (nor even name them)."""
        b_db = vantage_names(shared.b).database
        message = _refused(
            shared.url(shared.a),
            f"INSERT INTO {b_db}.public.ledger_entries (seq, type, body, leaf_hash) "
            "VALUES (0, 'observation', '\\x00', decode(repeat('00', 32), 'hex'))",
        )
        assert "cross-database references are not implemented" in message
        # B's ledger is unchanged: still empty, still bound to B.
        with open_ledger(shared.url(shared.b), vantage=shared.b) as ledger:
            assert ledger.size() == 0

    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE ledger_meta SET value = 'x' WHERE key = 'vantage'",
            "DELETE FROM ledger_entries",
            "TRUNCATE ledger_entries",
            "ALTER TABLE ledger_entries DISABLE TRIGGER ALL",
            "DROP TRIGGER ledger_entries_frozen ON ledger_entries",
            "DROP TABLE ledger_tree_nodes",
            "CREATE TABLE public.extra (x int)",
            "CREATE TEMP TABLE scratch (x int)",
            "SET session_replication_role = replica",
        ],
    )
    def test_own_ledger_append_only(self, shared: Shared, statement: str) -> None:
        """On its own ledger a vantage cannot update, delete, truncate or change the schema."""
        message = _refused(shared.url(shared.a), statement)
        assert "permission denied" in message or "must be owner" in message

    def test_ledger_bound_to_its_vantage(self, shared: Shared) -> None:
        """A ledger provisioned for A refuses to be opened under another vantage name."""
        with pytest.raises(LedgerError, match="belongs to vantage"):
            open_ledger(shared.url(shared.a), vantage="someone-else")

    def test_reader_reads_and_cannot_write(self, shared: Shared) -> None:
        """The central role reads every ledger and cannot append to any."""
        for vantage in (shared.a, shared.b):
            url = shared.url(vantage, as_role=shared.reader)
            with open_ledger(url, readonly=True) as ledger:
                assert ledger.vantage == vantage
            message = _refused(url, "INSERT INTO ledger_meta (key, value) VALUES ('k', 'v')")
            assert "read-only transaction" in message or "permission denied" in message

    def test_reader_without_read_only_session_still_cannot_write(self, shared: Shared) -> None:
        """Even after switching its session to read-write, the reader has no INSERT grant."""
        import psycopg

        url = shared.url(shared.a, as_role=shared.reader)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET default_transaction_read_only = off")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("INSERT INTO ledger_meta (key, value) VALUES ('k', 'v')")

    def test_bad_vantage_name(self) -> None:
        """A vantage name that cannot be a role name is refused with the rule."""
        with pytest.raises(ProvisionError, match="lower-case letters"):
            vantage_names("Paris 1")

    def test_existing_vantage_not_reprovisioned(self, shared: Shared) -> None:
        """Provisioning an existing vantage fails and leaves its ledger alone."""
        with pytest.raises(ProvisionError, match="already exists"):
            provision_vantage(shared.server.url(), shared.a, password="x")
        with open_ledger(shared.url(shared.a), vantage=shared.a) as ledger:
            assert ledger.vantage == shared.a


class TestScript:
    """The psql script a DBA runs does what the Python provisioning does."""

    def test_script_runs_in_psql(self, postgres_server: PostgresServer) -> None:
        """The printed script provisions a vantage that can append, and a reader that reads."""
        token = secrets.token_hex(3)
        vantage, reader = f"s-{token}", f"vigie_reader_{token}"
        names = vantage_names(vantage)
        script = provisioning_script([vantage], reader=reader)
        assert "\\password" in script
        # psql asks passwords interactively: set them with SQL instead for the test.
        script = script.replace(
            f"\\password {names.role}", f"ALTER ROLE {names.role} PASSWORD 'pw-a';"
        ).replace(f"\\password {reader}", f"ALTER ROLE {reader} PASSWORD 'pw-r';")
        psql = postgres_server.bin_dir / "psql"
        done = subprocess.run(
            [str(psql), postgres_server.url(), "-q", "-v", "ON_ERROR_STOP=1"],
            input=script,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        url = database_url(postgres_server.url(), names.database, user=names.role, password="pw-a")
        with open_ledger(url, vantage=vantage) as ledger:
            ledger.append([("observation", {"x": 1})])
            assert ledger.size() == 1
        read = database_url(postgres_server.url(), names.database, user=reader, password="pw-r")
        with open_ledger(read, readonly=True) as ledger:
            assert ledger.size() == 1
        assert "permission denied" in _refused(url, "DELETE FROM ledger_entries")

    def test_module_prints_script(self) -> None:
        """``python -m evidence.shared_pg`` prints the script, exit 2 on a bad name."""
        done = subprocess.run(
            [sys.executable, "-m", "evidence.shared_pg", "--vantage", "paris-1"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert 'CREATE DATABASE "vigie_paris_1" OWNER "vigie_paris_1_owner"' in done.stdout
        bad = subprocess.run(
            [sys.executable, "-m", "evidence.shared_pg", "--vantage", "Paris"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        assert bad.returncode == 2
        assert "lower-case" in bad.stderr


def _service_config(sim: SimulatorProcess, vantage: str, url: str, state: Path) -> dict[str, Any]:
    site = sim.urls["site_url"].rstrip("/")
    admin = sim.urls["admin_url"].rstrip("/")
    return {
        "vantage": {"name": vantage, "operator": "Tests"},
        "user_agent": "Vigie-test/0.1 (+http://localhost; tests)",
        "defaults": {"interval": "0.3s", "timeout": "3s"},
        "min_interval": "0.2s",
        "targets": [
            {
                "id": "accueil",
                "kind": "http",
                "url": site + "/",
                "expect": {"contains": "trangers"},
            },
            {"id": "connexion", "kind": "http", "url": sim.urls["login_url"]},
        ],
        "controls": [admin + "/faults", admin + "/requests"],
        "outages": {"confirm_after": 2, "recover_after": 2, "recheck": "0.3s"},
        "ledger": {
            "url": url,
            "artifacts": str(state / "artifacts"),
            "checkpoint_interval": "1s",
        },
        "signing": {"key": str(state / "vantage.key")},
    }


@pytest.fixture
def two_services(
    shared: Shared, simulator_process: SimulatorProcess, tmp_path: Path
) -> Iterator[list[ServiceProcess]]:
    """`vigie run` of A and of B, each on its own ledger of the shared server (not started)."""
    services = []
    for vantage in (shared.a, shared.b):
        state = tmp_path / vantage
        state.mkdir()
        config = _service_config(simulator_process, vantage, shared.url(vantage), state)
        services.append(ServiceProcess(config, state))
    try:
        yield services
    finally:
        for service in services:
            if service.process is not None and service.process.poll() is None:
                service.stop()


class TestConcurrentVantages:
    """Two services append to their own ledgers on one server at the same time."""

    def test_two_services_each_ledger_verifies(
        self, shared: Shared, two_services: list[ServiceProcess]
    ) -> None:
        """Both ledgers fill concurrently, hold only their vantage's entries, and verify."""
        for service in two_services:
            service.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            counts = [s.sample("vigie_ledger_entries_total") or 0 for s in two_services]
            if min(counts) >= 40:
                break
            time.sleep(0.2)
        for service in two_services:
            assert service.stop() == 0, service.log()[-3000:]
        for vantage, service in zip((shared.a, shared.b), two_services, strict=True):
            with open_ledger(shared.url(vantage, as_role=shared.reader), readonly=True) as ledger:
                size = ledger.size()
                assert size >= 40
                vantages = {
                    body["vantage"]
                    for _, raw in ledger.iter_entries()
                    if (body := json.loads(raw)).get("type") == "observation"
                }
                assert vantages == {vantage}
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "exporter.cli",
                    "verify",
                    "--config",
                    str(service.config_path),
                ],
                capture_output=True,
                text=True,
                cwd=ROOT,
                check=False,
                timeout=120,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            assert "checkpoint" in done.stdout
