"""What a configuration would leave out of the evidence report is said before any report."""

from __future__ import annotations

from pathlib import Path

import yaml

from config.settings import Settings
from evidence.bundle.dossier_checks import dossier_warnings
from tests.bundle_fixture import vigie_cli


def _settings(operator: str) -> Settings:
    return Settings.model_validate({"vantage": {"name": "paris-1", "operator": operator}})


class TestDossierWarnings:
    def test_empty_operator(self) -> None:
        """The shipped configuration leaves the operator empty: that is said."""
        [warning] = dossier_warnings(_settings(""))
        assert "vantage.operator" in warning
        assert dossier_warnings(_settings("Association X")) == []

    def test_unsynchronised_clock(self) -> None:
        """A clock known not to be synchronised is said; an unknown state is not."""
        unsynced = dossier_warnings(_settings("A"), lambda: {"synchronized": False})
        assert len(unsynced) == 1
        assert "not synchronised" in unsynced[0]
        assert dossier_warnings(_settings("A"), lambda: {"synchronized": None}) == []
        assert dossier_warnings(_settings("A"), lambda: {"synchronized": True}) == []

    def test_config_check_warns_and_passes(self) -> None:
        """`vigie config check` on the shipped file: OK (exit 0) and one warning line."""
        shipped = Path(__file__).resolve().parent.parent / "vigie.yaml"
        assert yaml.safe_load(shipped.read_text("utf-8"))["vantage"]["operator"] == ""
        done = vigie_cli("config", "check", str(shipped))
        assert done.returncode == 0, done.stderr
        assert "warning: vantage.operator is empty" in done.stderr
