"""Pytest fixtures for the ANEF simulator, and the session-wide proof that it saw no write.

Loaded by tests/conftest.py (``pytest_plugins = ["tests.simulator_fixture"]``). The audit is
session-wide: every simulator of the run, in-process or child process, reports into one file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator import AUDIT_ENV, Simulator, SimulatorProcess, read_audit

__all__ = ["simulator", "simulator_audit", "simulator_process", "simulator_process_shared"]


@pytest.fixture(scope="session", autouse=True)
def simulator_audit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The file where every simulator of the session appends the writes it receives.

    Set as ``VIGIE_SIMULATOR_AUDIT`` before the first test, so simulators started by any test
    (``Simulator()``, ``python -m simulator``, ``vigie demo``) inherit it. At the end of the
    session a single line in it fails the run: no probe may ever send anything but GET/HEAD.
    Tests that send writes on purpose use ``Simulator(audit=False)`` (or ``--no-audit``).
    """
    path = tmp_path_factory.mktemp("simulator-audit") / "writes.jsonl"
    previous = os.environ.get(AUDIT_ENV)
    os.environ[AUDIT_ENV] = str(path)
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(AUDIT_ENV, None)
        else:
            os.environ[AUDIT_ENV] = previous
    writes = read_audit(path)
    if writes:
        listed = "\n".join(
            f"  {w['method']} {w['host']}{w['path']} (user agent: {w['user_agent']!r})"
            for w in writes[:20]
        )
        pytest.fail(
            f"the simulator received {len(writes)} request(s) other than GET/HEAD during the "
            f"test session; probes must be read-only:\n{listed}\n(audit file: {path})",
            pytrace=False,
        )


@pytest.fixture
def simulator(simulator_audit: Path) -> Iterator[Simulator]:
    """A fresh in-process simulator on 127.0.0.1, served from a background thread.

    Synchronous tests use it directly; async code run with ``asyncio.run`` reaches it over
    loopback like any site. Faults: ``simulator.set_fault(path, fault)``; counts:
    ``simulator.counts``.
    """
    with Simulator(host="127.0.0.1") as sim:
        yield sim


@pytest.fixture(scope="session")
def simulator_process_shared(simulator_audit: Path) -> Iterator[SimulatorProcess]:
    """One ``python -m simulator`` child for the whole session (started on first use)."""
    with SimulatorProcess(host="127.0.0.1") as process:
        yield process


@pytest.fixture
def simulator_process(simulator_process_shared: SimulatorProcess) -> Iterator[SimulatorProcess]:
    """The shared child simulator with no fault and zeroed counts (audit file untouched)."""
    simulator_process_shared.clear_faults()
    simulator_process_shared.reset_requests()
    yield simulator_process_shared
    simulator_process_shared.clear_faults()
