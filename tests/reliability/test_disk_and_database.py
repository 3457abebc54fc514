"""Disk full and database loss under the real service: errors are logged and counted
(`vigie_ledger_write_errors_total`), nothing is corrupted (`vigie verify` passes afterwards),
and probing resumes by itself once space or the database is back.

The ledger sits on a 2 MB tmpfs mounted by the test (root; skipped with the reason otherwise),
then on a PostgreSQL server of its own that the test stops and restarts. Loopback only.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hostile import Client, HostileServer, respond
from tests.postgres_fixture import PostgresServer, find_pg_bin
from tests.reliability.harness import Service, ledger_bodies


def _failing(client: Client) -> None:
    client.read_request()
    client.send(respond("503 Service Unavailable", body=b"<html>indisponible</html>"))


@pytest.fixture
def target() -> Iterator[HostileServer]:
    """A failing page (each check writes a WARC artifact and an observation)."""
    with HostileServer(_failing) as server:
        yield server


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs mounted for this test, unmounted at the end."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "vigie-tiny", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def _config(target: HostileServer, count: int, ledger_url: str, artifacts: Path) -> dict[str, Any]:
    """`count` HTTP targets checked every second; checkpoints every second."""
    return {
        "targets": [
            {"id": f"panne-{n}", "kind": "http", "url": target.url(f"/{n}"), "interval": "1s"}
            for n in range(count)
        ],
        "ledger": {"url": ledger_url, "artifacts": str(artifacts), "checkpoint_interval": "1s"},
    }


def _check_after_write_failures(service: Service, code: int) -> str:
    """The service stopped cleanly, logged its failed writes, and its ledger verifies."""
    assert code == 0
    log = service.log()
    assert "ledger_write_failed" in log
    assert "Traceback" not in log
    verified = service.verify()
    assert verified.returncode == 0, verified.stdout + verified.stderr
    return log


def _fill(directory: Path) -> Path:
    """Write a filler file until the filesystem is full; its path."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 512, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    return filler


def _probes(service: Service) -> float:
    return sum(service.counted().values())


def _errors(service: Service) -> float:
    return service.sample("vigie_ledger_write_errors_total") or 0.0


@pytest.mark.slow
class TestDiskFull:
    """The ledger's filesystem fills up under the running service."""

    def test_errors_counted_nothing_corrupted_resumes(
        self, tmp_path: Path, tiny_fs: Path, target: HostileServer
    ) -> None:
        """Full disk: writes fail (logged, counted), the service keeps answering; space freed:
        checks are recorded again without a restart; the ledger verifies."""
        config = _config(target, 3, f"sqlite:///{tiny_fs / 'ledger.db'}", tiny_fs / "artifacts")
        service = Service(config, tmp_path)
        service.start()
        try:
            service.wait_for(lambda: _probes(service) >= 3, what="first checks")
            filler = _fill(tiny_fs)
            service.wait_for(lambda: _errors(service) >= 3, what="write errors counted")
            assert service.sample("vigie_ledger_write_errors_total") is not None
            stalled = _probes(service)
            time.sleep(2.0)
            assert _probes(service) <= stalled + 3  # nothing counted that was not recorded
            filler.unlink()
            service.wait_for(
                lambda: _probes(service) >= stalled + 6, timeout=60, what="probing resumed"
            )
        finally:
            code = service.stop()
        _check_after_write_failures(service, code)
        observations = [e for e in ledger_bodies(service.ledger_url) if e["type"] == "observation"]
        assert len(observations) >= stalled + 6


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for this test only (it is stopped and restarted under the service)."""
    if find_pg_bin() is None:
        pytest.skip("PostgreSQL binaries not installed")
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


def _pg_ctl(server: PostgresServer, *args: str) -> None:
    subprocess.run(
        server._cmd(str(server.bin_dir / "pg_ctl"), "-D", str(server.data), *args),
        check=True,
        capture_output=True,
        timeout=90,
    )


@pytest.mark.slow
@pytest.mark.postgres
class TestDatabaseLoss:
    """PostgreSQL stops (immediate shutdown, like a crash) and comes back."""

    def test_errors_counted_then_resumes(
        self, tmp_path: Path, own_postgres: PostgresServer, target: HostileServer
    ) -> None:
        """While the database is down writes fail (logged, counted) and the service keeps
        answering; once it is back, checks are recorded again by themselves; verify passes."""
        url = own_postgres.create_database("vigie_loss")
        service = Service(_config(target, 2, url, tmp_path / "artifacts"), tmp_path)
        service.start()
        try:
            service.wait_for(lambda: _probes(service) >= 2, what="first checks")
            _pg_ctl(own_postgres, "-m", "immediate", "stop")
            service.wait_for(lambda: _errors(service) >= 2, timeout=60, what="errors counted")
            stalled = _probes(service)
            own_postgres._pg_ctl_start()
            service.wait_for(
                lambda: _probes(service) >= stalled + 4, timeout=90, what="probing resumed"
            )
        finally:
            code = service.stop()
        log = _check_after_write_failures(service, code)
        assert own_postgres.password not in log
