"""`vigie corroborate`: outages seen from several vantages, each backed by a verified bundle."""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from pathlib import Path

import pytest

from evidence.bundle.corroborate import Corroboration, CorroborationError, corroborate
from evidence.bundle.model import ExportRequest
from tests.bundle_fixture import BUILD_START, build_ledger

PERIOD = ExportRequest(BUILD_START, BUILD_START + dt.timedelta(hours=3))


def _bundle(directory: Path, vantage: str, shift: int) -> Path:
    directory.mkdir()
    built = build_ledger(
        f"sqlite:///{directory / 'l.db'}", directory, vantage=vantage, outage_shift=shift
    )
    built.export(directory / "b.zip", PERIOD)
    return directory / "b.zip"


class TestCorroborate:
    def test_overlapping_outages_of_two_vantages(self, tmp_path: Path) -> None:
        """Two vantages that saw overlapping outages of the same target are grouped."""
        a = _bundle(tmp_path / "a", "paris-1", 0)
        b = _bundle(tmp_path / "b", "lyon-1", 5)
        c = _bundle(tmp_path / "c", "lille-1", 30)  # 70-80: no overlap
        result = corroborate([a, b, c], min_vantages=2)
        assert result.vantages == ("paris-1", "lyon-1", "lille-1")
        [group] = result.groups
        assert group.target_id == "anef-accueil"
        assert group.vantages == ("paris-1", "lyon-1")
        assert group.overlap_start.startswith("2026-11-23T09:45")
        assert result.vantages_for("paris-1", group.members[0].outage_id) == 2
        assert result.names_for("paris-1", group.members[0].outage_id) == ("paris-1", "lyon-1")
        assert result.names_by_outage("lyon-1") == {group.members[1].outage_id: group.vantages}
        assert result.names_by_outage("lille-1") == {}
        # what `vigie export --corroboration` reads back: the same result, names included
        assert Corroboration.from_dict(json.loads(json.dumps(result.to_dict()))) == result
        with pytest.raises(CorroborationError, match="vigie corroborate --json"):
            Corroboration.from_dict({"outages": [{"members": []}]})
        assert corroborate([a, b, c], min_vantages=3).groups == ()
        assert len(corroborate([a, b, c], min_vantages=1).groups) == 2

    def test_a_tampered_bundle_is_refused(self, tmp_path: Path) -> None:
        """A bundle that does not verify is never used to corroborate."""
        a = _bundle(tmp_path / "a", "paris-1", 0)
        bad = tmp_path / "bad.zip"
        with zipfile.ZipFile(a) as src, zipfile.ZipFile(bad, "w") as dst:
            for item in src.infolist():
                data = src.read(item)
                dst.writestr(item, data.replace(b"anef-accueil", b"anef-accuei1"))
        with pytest.raises(CorroborationError, match="does not verify"):
            corroborate([a, bad])


class TestCommandOutput:
    def test_french_with_agreement(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`vigie corroborate` speaks French throughout, with plurals and Paris times."""
        import argparse

        from exporter.commands.export import run_corroborate

        a = _bundle(tmp_path / "a", "paris-1", 0)
        b = _bundle(tmp_path / "b", "lyon-1", 5)
        args = argparse.Namespace(bundles=[a, b], min=2, json=False)
        capsys.readouterr()  # the fixture's log lines
        assert run_corroborate(args) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0] == (
            "1 panne vue depuis au moins 2 points d'observation sur 2 (paris-1, lyon-1) :"
        )
        assert lines[1].startswith("  anef-accueil : du 23/11/2026 10:40:00 au 23/11/2026 ")
        assert "confirmée depuis 2 points d'observation (paris-1 : " in lines[1]
        assert "outages" not in "\n".join(lines)
        args.min = 1
        capsys.readouterr()
        args.bundles = [a]
        assert run_corroborate(args) == 0
        assert capsys.readouterr().out.startswith("1 panne vue depuis au moins 1 point ")
