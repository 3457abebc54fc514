"""The ledger on both backends: append-only storage, tree, proofs, durability, group commit."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from config.vocabulary import OBSERVATION, Outcome
from evidence.ledger import merkle
from evidence.ledger.artifacts import ArtifactError, FileArtifactStore
from evidence.ledger.backends import open_ledger
from evidence.ledger.core import LedgerWriter, SqlLedger, encode_entry
from evidence.ledger.entries import LedgerEntryError, LedgerError, LedgerWriteError, sqlite_path
from evidence.ledger.verify import verify_ledger
from probes.base import ArtifactStore
from probes.observation import Observation, canonical_json

if TYPE_CHECKING:
    from tests.postgres_fixture import PostgresServer

pytest_plugins = ["tests.postgres_fixture"]


def _observation(n: int) -> dict[str, Any]:
    obs = Observation(
        target_id=f"target-{n % 3}",
        kind="http",
        vantage="paris-1",
        started_at=f"2026-11-23T13:{n % 60:02d}:00.000000Z",
        duration_s=0.25 + n / 1000,
        success=n % 5 != 0,
        outcome=Outcome.OK if n % 5 else Outcome.TIMEOUT,
        http_status=200 if n % 5 else None,
        phases={"resolve": 0.01, "connect": 0.02},
        environment={"os": "Linux", "note": "é€ ✓"},
    )
    return obs.to_dict()


class TestAppend:
    """Appending entries and reading them back."""

    def test_sequence_numbers_are_contiguous_from_zero(self, ledger: SqlLedger) -> None:
        """Successive appends get 0, 1, 2 ... and the size follows."""
        assert ledger.append([(OBSERVATION, _observation(0))]) == [0]
        assert ledger.append([(OBSERVATION, _observation(n)) for n in (1, 2, 3)]) == [1, 2, 3]
        assert ledger.size() == 4

    def test_entry_is_canonical_json_with_type_and_seq(self, ledger: SqlLedger) -> None:
        """The stored bytes are canonical JSON of the body plus type and seq (seq None dropped)."""
        body = _observation(7)
        assert body["seq"] is None
        ledger.append([(OBSERVATION, body)])
        stored = ledger.get(0)
        # target_prev: the previous entry of the same target (evidence/chain.py; none here)
        expected = {**body, "type": OBSERVATION, "seq": 0, "target_prev": None}
        assert stored == canonical_json(expected)
        assert Observation.from_dict(json.loads(stored)).with_seq(0).to_dict()["seq"] == 0

    def test_iter_entries_streams_in_order(self, ledger: SqlLedger) -> None:
        """iter_entries returns every entry in order, across chunk boundaries, with bounds."""
        ledger.append([("gap", {"n": n}) for n in range(5000)])
        seen = list(ledger.iter_entries())
        assert [seq for seq, _ in seen] == list(range(5000))
        assert json.loads(seen[4321][1])["n"] == 4321
        assert [seq for seq, _ in ledger.iter_entries(4095, 4100)] == list(range(4095, 4100))

    def test_get_missing_entry(self, ledger: SqlLedger) -> None:
        """Asking for an entry that does not exist raises IndexError."""
        with pytest.raises(IndexError):
            ledger.get(0)
        with pytest.raises(IndexError):
            ledger.get(-1)

    @pytest.mark.parametrize(
        ("entry_type", "body"),
        [
            ("Observation", {}),
            ("observation", {"type": "x"}),
            ("observation", {"seq": 3}),
            ("observation", {"value": float("nan")}),
            ("observation", {"value": object()}),
        ],
    )
    def test_invalid_entries_are_refused_and_nothing_written(
        self, ledger: SqlLedger, entry_type: str, body: dict[str, Any]
    ) -> None:
        """A bad type or body fails the whole call and writes nothing."""
        with pytest.raises(LedgerEntryError):
            ledger.append([("gap", {"ok": True}), (entry_type, body)])
        assert ledger.size() == 0
        assert ledger.append([("gap", {"ok": True})]) == [0]

    def test_readonly_ledger_refuses_appends(self, ledger: SqlLedger, ledger_url: str) -> None:
        """A ledger opened read-only cannot be appended to."""
        ledger.append([("gap", {})])
        reader = open_ledger(ledger_url, readonly=True)
        try:
            with pytest.raises(LedgerError, match="read-only"):
                reader.append([("gap", {})])
            assert reader.size() == 1
        finally:
            reader.close()

    def test_concurrent_threads_get_distinct_sequence_numbers(self, ledger: SqlLedger) -> None:
        """Appends from several threads at once never share or skip a number."""
        results: list[int] = []
        lock = threading.Lock()

        def work(worker: int) -> None:
            for n in range(25):
                seqs = ledger.append([("gap", {"worker": worker, "n": n})])
                with lock:
                    results.extend(seqs)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == list(range(100))


class TestTree:
    """Roots and proofs served from the stored tree."""

    def test_root_and_proofs_match_an_independent_computation(self, ledger: SqlLedger) -> None:
        """Roots of every prefix, inclusion and consistency proofs all check out."""
        for chunk in (1, 2, 13, 40, 1, 90):
            ledger.append([("gap", {"n": n}) for n in range(chunk)])
        entries = [body for _, body in ledger.iter_entries()]
        size = len(entries)
        assert ledger.root() == merkle.mth(entries)
        for old in range(0, size + 1, 7):
            assert ledger.root(old) == merkle.mth(entries[:old])
        root = ledger.root()
        for seq in range(0, size, 5):
            proof = ledger.inclusion_proof(seq)
            merkle.verify_inclusion(merkle.leaf_hash(entries[seq]), seq, size, proof, root)
            old_proof = ledger.inclusion_proof(seq, seq + 1)
            merkle.verify_inclusion(
                merkle.leaf_hash(entries[seq]), seq, seq + 1, old_proof, ledger.root(seq + 1)
            )
        for old in (0, 1, 16, 17, 100, size):
            proof = ledger.consistency_proof(old)
            merkle.verify_consistency(old, size, ledger.root(old), root, proof)

    def test_head_is_size_and_root(self, ledger: SqlLedger) -> None:
        """head() pairs the size with the root of exactly those entries."""
        assert ledger.head().root == merkle.EMPTY_ROOT
        ledger.append([("gap", {"n": 1})])
        head = ledger.head()
        assert head.size == 1
        assert head.root == merkle.leaf_hash(ledger.get(0))

    def test_reopening_restores_the_tree_without_rehashing(
        self, ledger: SqlLedger, ledger_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A reopened ledger has the same size and root, reading O(log n) stored hashes."""
        ledger.append([("gap", {"n": n}) for n in range(3000)])
        root = ledger.root()
        ledger.close()
        read: list[int] = []
        cls = type(ledger)
        original = cls._fetch_leaf_hashes
        original_nodes = cls._fetch_nodes

        def counting(self: SqlLedger, start: int, stop: int) -> list[bytes]:
            result = original(self, start, stop)  # type: ignore[arg-type]
            read.append(len(result))
            return result

        def counting_nodes(
            self: SqlLedger, level: int, start: int, stop: int
        ) -> list[tuple[int, bytes]]:
            result = original_nodes(self, level, start, stop)  # type: ignore[arg-type]
            read.append(len(result))
            return result

        monkeypatch.setattr(cls, "_fetch_leaf_hashes", counting)
        monkeypatch.setattr(cls, "_fetch_nodes", counting_nodes)
        reopened = open_ledger(ledger_url, vantage="paris-1")
        try:
            assert reopened.size() == 3000
            assert reopened.root() == root
            assert sum(read) <= 16 * (3000).bit_length()
        finally:
            reopened.close()

    def test_ledger_grown_by_another_writer_is_caught_up(self, ledger_url: str) -> None:
        """Two handles on one ledger interleave appends without gaps or a wrong root."""
        first = open_ledger(ledger_url, vantage="paris-1")
        second = open_ledger(ledger_url, vantage="paris-1")
        try:
            assert first.append([("gap", {"by": 1})]) == [0]
            assert second.append([("gap", {"by": 2})]) == [1]
            assert first.append([("gap", {"by": 1})]) == [2]
            entries = [body for _, body in first.iter_entries()]
            assert first.root() == merkle.mth(entries)
        finally:
            first.close()
            second.close()


class TestVantage:
    """A ledger belongs to one vantage."""

    def test_vantage_is_recorded_and_enforced(self, ledger_url: str) -> None:
        """The first vantage name is kept; opening with another one is refused."""
        open_ledger(ledger_url, vantage="paris-1").close()
        reader = open_ledger(ledger_url)
        assert reader.vantage == "paris-1"
        reader.close()
        with pytest.raises(LedgerError, match="belongs to vantage 'paris-1'"):
            open_ledger(ledger_url, vantage="lyon-2")


class TestAppendOnly:
    """History cannot be rewritten through the database."""

    def _fill(self, ledger: SqlLedger) -> None:
        ledger.append([("gap", {"n": n}) for n in range(20)])

    def test_sqlite_refuses_update_delete_replace_and_gaps(self, tmp_path: Path) -> None:
        """UPDATE, DELETE, INSERT OR REPLACE and out-of-sequence INSERT all fail in SQLite."""
        path = tmp_path / "ledger.db"
        ledger = open_ledger(f"sqlite:///{path}", vantage="paris-1")
        self._fill(ledger)
        ledger.close()
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            attempts = [
                "UPDATE ledger_entries SET body = x'00' WHERE seq = 3",
                "DELETE FROM ledger_entries WHERE seq = 19",
                "DELETE FROM ledger_entries",
                "INSERT OR REPLACE INTO ledger_entries VALUES (3, 'gap', x'00', zeroblob(32))",
                "INSERT INTO ledger_entries VALUES (25, 'gap', x'00', zeroblob(32))",
                "UPDATE ledger_tree_nodes SET hash = zeroblob(32)",
                "DELETE FROM ledger_tree_nodes",
                "INSERT OR REPLACE INTO ledger_tree_nodes VALUES (4, 0, zeroblob(32))",
                "UPDATE ledger_meta SET value = 'lyon-2'",
                "DELETE FROM ledger_meta",
            ]
            for sql in attempts:
                with pytest.raises(sqlite3.DatabaseError, match="vigie ledger"):
                    conn.execute(sql)
            count = conn.execute("SELECT count(*) FROM ledger_entries").fetchone()[0]
        finally:
            conn.close()
        assert count == 20
        assert verify_ledger(path).ok

    @pytest.mark.postgres
    @pytest.mark.slow
    def test_postgres_triggers_refuse_even_the_owner(self, postgres_db: str) -> None:
        """UPDATE, DELETE, TRUNCATE, upsert and gaps fail in PostgreSQL, even for the owner."""
        import psycopg

        ledger = open_ledger(postgres_db, vantage="paris-1")
        self._fill(ledger)
        ledger.close()
        zero = "decode(repeat('00', 32), 'hex')"
        attempts = [
            "UPDATE ledger_entries SET body = '\\x00' WHERE seq = 3",
            "DELETE FROM ledger_entries WHERE seq = 19",
            "TRUNCATE ledger_entries",
            (
                f"INSERT INTO ledger_entries VALUES (3, 'gap', '\\x00', {zero}) "
                "ON CONFLICT (seq) DO UPDATE SET body = EXCLUDED.body"
            ),
            f"INSERT INTO ledger_entries VALUES (25, 'gap', '\\x00', {zero})",
            f"UPDATE ledger_tree_nodes SET hash = {zero}",
            "DELETE FROM ledger_tree_nodes",
            "TRUNCATE ledger_tree_nodes",
            "UPDATE ledger_meta SET value = 'lyon-2'",
            "DELETE FROM ledger_meta",
        ]
        with psycopg.connect(postgres_db, autocommit=True) as conn:
            for sql in attempts:
                with pytest.raises(psycopg.Error, match="vigie ledger"):
                    conn.execute(sql)  # type: ignore[arg-type]
            row = conn.execute("SELECT count(*) FROM ledger_entries").fetchone()
        assert row is not None
        assert row[0] == 20

    @pytest.mark.postgres
    @pytest.mark.slow
    def test_postgres_service_role_has_only_select_and_insert(
        self, postgres_server: PostgresServer
    ) -> None:
        """The documented role set-up works, and the service role cannot change history."""
        import psycopg

        from evidence.ledger.postgres import schema_sql

        database = "vigie_roles"
        postgres_server.execute("CREATE ROLE vigie_owner NOLOGIN")
        postgres_server.execute("CREATE ROLE vigie_svc LOGIN PASSWORD 'svc-secret'")
        postgres_server.execute(f"CREATE DATABASE {database} OWNER vigie_owner STRATEGY FILE_COPY")
        admin_url = postgres_server.url(database)
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute("SET ROLE vigie_owner")
            conn.execute(schema_sql(grant_to="vigie_svc"))  # type: ignore[arg-type]
        service_url = postgres_server.url(database, user="vigie_svc", password="svc-secret")
        ledger = open_ledger(service_url, vantage="paris-1")
        try:
            assert "svc-secret" not in ledger.url
            assert ledger.append([("gap", {"n": n}) for n in range(20)]) == list(range(20))
        finally:
            ledger.close()
        with psycopg.connect(service_url, autocommit=True) as conn:
            for sql in (
                "UPDATE ledger_entries SET type = 'x'",
                "DELETE FROM ledger_entries",
                "TRUNCATE ledger_entries",
                "DROP TABLE ledger_entries",
                "ALTER TABLE ledger_entries DISABLE TRIGGER ALL",
                "DELETE FROM ledger_tree_nodes",
                "UPDATE ledger_meta SET value = 'x'",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(sql)  # type: ignore[arg-type]
        assert verify_ledger(service_url).ok


class TestWriteFailures:
    """A failed write is reported, writes nothing, and leaves a ledger that verifies."""

    def test_sqlite_disk_full_fails_the_append_and_nothing_else(self, tmp_path: Path) -> None:
        """With the database full, append raises LedgerWriteError; the ledger stays whole."""
        path = tmp_path / "ledger.db"
        ledger = open_ledger(f"sqlite:///{path}", vantage="paris-1")
        try:
            ledger.append([(OBSERVATION, _observation(n)) for n in range(50)])
            root = ledger.root()
            conn = ledger._conn  # type: ignore[attr-defined]
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # "database or disk is full"
            with pytest.raises(LedgerWriteError, match="full"):
                ledger.append([(OBSERVATION, _observation(n)) for n in range(200)])
            assert ledger.size() == 50
            assert ledger.root() == root
            conn.execute("PRAGMA max_page_count = 1073741823")
            assert ledger.append([(OBSERVATION, _observation(1))]) == [50]
        finally:
            ledger.close()
        assert verify_ledger(path).ok

    @pytest.mark.postgres
    @pytest.mark.slow
    def test_postgres_connection_loss_fails_one_append_then_reconnects(
        self, postgres_db: str
    ) -> None:
        """A killed connection fails the append in flight; the next append reconnects."""
        import psycopg

        ledger = open_ledger(postgres_db, vantage="paris-1")
        try:
            ledger.append([("gap", {"n": n}) for n in range(10)])
            with psycopg.connect(postgres_db, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'vigie-ledger'"
                )
            with pytest.raises(LedgerWriteError):
                ledger.append([("gap", {"n": 10})])
            assert ledger.append([("gap", {"n": 10})]) == [10]
        finally:
            ledger.close()
        assert verify_ledger(postgres_db).ok


class TestLedgerWriter:
    """The async facade: group commit from concurrent coroutines."""

    def test_concurrent_appends_share_transactions(self, ledger: SqlLedger) -> None:
        """300 concurrent appends all get distinct numbers in far fewer transactions."""
        calls: list[int] = []
        original = ledger.append

        def spy(entries: Any) -> list[int]:
            calls.append(len(entries))
            return original(entries)

        ledger.append = spy  # type: ignore[method-assign]

        async def scenario() -> list[int]:
            writer = LedgerWriter(ledger)
            try:
                return await asyncio.gather(
                    *(writer.append(OBSERVATION, _observation(n)) for n in range(300))
                )
            finally:
                await writer.aclose()

        seqs = asyncio.run(scenario())
        assert sorted(seqs) == list(range(300))
        assert sum(calls) == 300
        assert len(calls) < 300
        assert ledger.root() == merkle.mth([body for _, body in ledger.iter_entries()])

    def test_a_bad_entry_fails_alone(self, ledger: SqlLedger) -> None:
        """An invalid entry in a shared batch fails only its own caller."""

        async def scenario() -> list[Any]:
            writer = LedgerWriter(ledger)
            try:
                calls = [writer.append("gap", {"n": n}) for n in range(10)]
                calls.insert(5, writer.append("gap", {"bad": float("nan")}))
                return await asyncio.gather(*calls, return_exceptions=True)
            finally:
                await writer.aclose()

        results = asyncio.run(scenario())
        assert isinstance(results[5], LedgerEntryError)
        assert sorted(r for r in results if isinstance(r, int)) == list(range(10))

    def test_write_error_fails_the_callers_of_that_batch(self, ledger: SqlLedger) -> None:
        """A database error reaches every waiting caller as LedgerWriteError."""

        def broken(entries: Any) -> list[int]:
            raise LedgerWriteError("disk full")

        ledger.append = broken  # type: ignore[method-assign]

        async def scenario() -> list[Any]:
            writer = LedgerWriter(ledger)
            try:
                return await asyncio.gather(
                    *(writer.append("gap", {"n": n}) for n in range(5)), return_exceptions=True
                )
            finally:
                await writer.aclose()

        results = asyncio.run(scenario())
        assert all(isinstance(r, LedgerWriteError) for r in results)

    def test_closed_writer_refuses_and_flushes_pending(self, ledger: SqlLedger) -> None:
        """aclose writes what was queued; appending afterwards is refused."""

        async def scenario() -> None:
            writer = LedgerWriter(ledger)
            pending = asyncio.ensure_future(writer.append("gap", {"n": 1}))
            await asyncio.sleep(0)
            await writer.aclose()
            assert await pending == 0
            with pytest.raises(LedgerError, match="closed"):
                await writer.append("gap", {"n": 2})

        asyncio.run(scenario())
        assert ledger.size() == 1


class TestUrls:
    """Ledger URLs, SQLAlchemy style."""

    def test_sqlite_paths(self) -> None:
        """Three slashes: relative to the working directory; four: absolute."""
        assert sqlite_path("sqlite:///var/ledger.db") == Path("var/ledger.db")
        assert sqlite_path("sqlite:////var/lib/vigie/ledger.db") == Path("/var/lib/vigie/ledger.db")
        assert sqlite_path("postgresql://u@h/db") is None
        assert sqlite_path("ledger.db") == Path("ledger.db")

    def test_relative_sqlite_url_is_relative_to_cwd(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """sqlite:///var/ledger.db creates var/ledger.db under the working directory."""
        monkeypatch.chdir(tmp_path)
        open_ledger("sqlite:///var/ledger.db", vantage="paris-1").close()
        assert (tmp_path / "var" / "ledger.db").is_file()

    def test_unknown_scheme(self) -> None:
        """Anything but sqlite and postgresql is refused with the accepted forms."""
        with pytest.raises(LedgerError, match="sqlite:///PATH or postgresql"):
            open_ledger("mysql://u:secret@h/db")

    def test_encode_entry_is_deterministic(self) -> None:
        """The same body always encodes to the same bytes, whatever the key order."""
        assert encode_entry("gap", 1, {"b": 1, "a": [1, "é"]}) == encode_entry(
            "gap", 1, {"a": [1, "é"], "b": 1}
        )


class TestArtifactStore:
    """The content-addressed store for screenshots, HTML and WARC."""

    def test_put_stores_under_the_sha256(self, tmp_path: Path) -> None:
        """put returns the SHA-256 and the file lives at root/ab/cd/<sha>, readable back."""
        store = FileArtifactStore(tmp_path / "artifacts")
        data = b"\x89PNG fake screenshot"
        sha = store.put(data, "screenshot")
        assert sha == hashlib.sha256(data).hexdigest()
        assert store.path(sha) == tmp_path / "artifacts" / sha[:2] / sha[2:4] / sha
        assert store.get(sha) == data
        assert store.verify(sha)
        assert isinstance(store, ArtifactStore)

    def test_put_is_idempotent_and_leaves_no_temporary_file(self, tmp_path: Path) -> None:
        """Storing the same bytes twice gives the same name and one file."""
        store = FileArtifactStore(tmp_path)
        first = store.put(b"<html></html>", "html")
        second = store.put(b"<html></html>", "html")
        assert first == second
        files = [p for p in tmp_path.rglob("*") if p.is_file()]
        assert files == [store.path(first)]

    def test_a_damaged_copy_is_repaired_by_put(self, tmp_path: Path) -> None:
        """If the stored file was altered, putting the original bytes again restores it."""
        store = FileArtifactStore(tmp_path)
        sha = store.put(b"original", "html")
        store.path(sha).write_bytes(b"damaged!")
        assert not store.verify(sha)
        with pytest.raises(ArtifactError, match="altered"):
            store.get(sha)
        assert store.put(b"original", "html") == sha
        assert store.get(sha) == b"original"

    def test_missing_and_malformed(self, tmp_path: Path) -> None:
        """Unknown digests, malformed digests and bad kinds are clear errors."""
        store = FileArtifactStore(tmp_path)
        with pytest.raises(ArtifactError, match="missing"):
            store.get("0" * 64)
        assert not store.verify("0" * 64)
        with pytest.raises(ArtifactError, match="not a lowercase hex"):
            store.path("../../etc/passwd")
        with pytest.raises(ArtifactError, match="kind"):
            store.put(b"x", "Screen Shot")
