"""End to end: a real `vigie run` sees a real outage of the simulator, then `vigie export`.

The bundle the real CLI writes is checked by `vigie verify` and by its own `verify.py` in a
virtualenv holding only `cryptography`. Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evidence.ledger.signing import public_key_path
from evidence.outages.availability import PARIS
from tests.bundle_fixture import standalone_verify, vigie_cli
from tests.service_fixture import run_service

_vigie = vigie_cli  # the name test_attestation imports


class _LedgerFollower:
    """Reads the ledger the service writes (read-only), entry by entry."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: list[dict[str, Any]] = []

    def poll(self) -> None:
        from evidence.ledger.backends import open_ledger
        from evidence.ledger.entries import LedgerError

        if not self.path.exists():
            return
        try:
            ledger = open_ledger(self.path, readonly=True)
        except LedgerError:
            return
        try:
            self.entries.extend(
                json.loads(body) for _, body in ledger.iter_entries(len(self.entries))
            )
        finally:
            ledger.close()

    def wait(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        what: str,
        *,
        count: int = 1,
        after: int = 0,
        timeout: float = 40.0,
    ) -> int:
        """Wait for `count` entries matching `predicate` from index `after` on.

        Returns the index just past the last one; AssertionError naming `what` on timeout.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            found = [i for i, e in enumerate(self.entries) if i >= after and predicate(e)]
            if len(found) >= count:
                return found[count - 1] + 1
            time.sleep(0.05)
        raise AssertionError(f"no {what} in the ledger within {timeout} s")


def _observation(*, success: bool) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e.get("type") == "observation" and e.get("success") is success


def _outage(event: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e.get("type") == "outage" and e.get("event") == event


def _config(sim: Any, state: Path) -> dict[str, Any]:
    return {
        "vantage": {"name": "e2e-export", "operator": "Association de test"},
        "user_agent": "Vigie-test/0.1 (+http://localhost; tests)",
        "defaults": {"interval": "1s", "timeout": "2s"},
        "min_interval": "0.3s",
        "targets": [
            {
                "id": "accueil",
                "name": "Simulateur — accueil",
                "kind": "http",
                "url": sim.urls["site_url"],
                "interval": "0.5s",
                "expect": {"contains": "trangers"},
            }
        ],
        "controls": [sim.urls["login_url"]],  # another host of the simulator
        "outages": {"confirm_after": 2, "recover_after": 2, "recheck": "0.3s"},
        "ledger": {
            "url": f"sqlite:///{state / 'ledger.db'}",
            "artifacts": str(state / "artifacts"),
            "checkpoint_interval": "1s",
        },
        "signing": {"key": str(state / "vantage.key")},
    }


@pytest.mark.slow
class TestExportAfterRealOutage:
    def test_service_outage_exported_and_verified(
        self, simulator_process: Any, tmp_path: Path
    ) -> None:
        """A real outage recorded by `vigie run` exports to a bundle that every verifier accepts."""
        state = tmp_path / "state"
        state.mkdir()
        ledger = _LedgerFollower(state / "ledger.db")
        with run_service(_config(simulator_process, state), state) as service:
            mark = ledger.wait(_observation(success=True), "first good check")
            simulator_process.set_fault("/", "http_500", "site")
            try:  # more failed checks than confirm_after
                mark = ledger.wait(
                    _observation(success=False), "failed checks", count=3, after=mark
                )
            finally:
                simulator_process.clear_faults()
            # more good checks than recover_after
            ledger.wait(_observation(success=True), "recovery", count=3, after=mark)
            ledger.wait(_outage("closed"), "the outage closing", after=mark)
            config_path = service.config_path
        ledger.entries = []
        ledger.poll()
        observations = [e for e in ledger.entries if e["type"] == "observation"]
        failures = [o for o in observations if not o["success"]]
        opened = [e for e in ledger.entries if e["type"] == "outage" and e["event"] == "opened"]
        closed = [e for e in ledger.entries if e["type"] == "outage" and e["event"] == "closed"]
        assert len(failures) >= 3
        assert all(o["http_status"] == 500 for o in failures)

        days = sorted(
            {
                dt.datetime.fromisoformat(o["started_at"]).astimezone(PARIS).date()
                for o in observations
            }
        )
        out = tmp_path / "preuves.zip"
        done = vigie_cli(
            "export",
            "--config",
            str(config_path),
            "--from",
            days[0].isoformat(),
            "--to",
            days[-1].isoformat(),
            "--out",
            str(out),
        )
        assert done.returncode == 0, done.stdout + done.stderr
        done = vigie_cli("verify", str(out))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "OK:" in done.stdout
        public = public_key_path(state / "vantage.key")
        done = vigie_cli("verify", "--public-key", str(public), str(out))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "given key" in done.stdout

        folder = tmp_path / "unzipped"
        with zipfile.ZipFile(out) as zf:
            zf.extractall(folder)
            lines = zf.read("observations.jsonl").splitlines()
            table = zf.read("observations.csv").decode("utf-8-sig")
            outages = zf.read("outages.csv").decode("utf-8-sig")
            names = set(zf.namelist())
        report = subprocess.run(
            ["pdftotext", "-layout", str(folder / "report.pdf"), "-"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        # The report lists the watched service, not the control sites (vantage health only).
        assert "accueil" in report
        assert "control-1" not in report
        bare = standalone_verify(folder)
        assert bare.returncode == 0, bare.stdout + bare.stderr
        assert "RÉSULTAT : OK" in bare.stdout

        # The failed checks are in the bundle byte for byte and in the spreadsheet table.
        exported = {json.loads(line)["seq"]: line for line in lines}
        for failure in failures:
            assert failure["seq"] in exported
        rows = list(csv.DictReader(io.StringIO(table), delimiter=";"))
        failed_rows = [r for r in rows if r["succes"] == "non"]
        assert {int(r["seq"]) for r in failed_rows} == {o["seq"] for o in failures}
        assert {r["statut_http"] for r in failed_rows} == {"500"}
        # Captures of the failing responses (WARC) travel with the bundle.
        for failure in failures:
            for sha in failure.get("artifacts") or {}:
                assert any(n.startswith(f"artifacts/{sha}") for n in names), sha
        # The outage the service recorded is a row of outages.csv, closed.
        outage_rows = list(csv.DictReader(io.StringIO(outages), delimiter=";"))
        assert opened
        assert closed, "an outage opened but never closed"
        assert {r["identifiant"] for r in outage_rows} == {e["outage_id"] for e in closed}
        [row] = [r for r in outage_rows if r["identifiant"] == closed[0]["outage_id"]]
        assert row["cible"] == "accueil"
        assert row["fin_paris"] != "en cours"
