"""Télérecours pièces from a bundle: file names, a capture that is no image, a zip that is no
bundle (the end-to-end flow is in test_dossier_e2e.py)."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path

import pytest

from evidence.bundle.model import ExportRequest
from evidence.bundle.pieces import MAX_NAME, PiecesError, telerecours_name, write_pieces
from tests.bundle_fixture import BUILD_START, build_ledger, vigie_cli


class TestNames:
    @pytest.mark.parametrize(
        ("title", "number", "expected"),
        [
            ("Rapport de constat", 1, "Piece-01-Rapport-de-constat.pdf"),
            ("Captures d'écran des échecs", 3, "Piece-03-Captures-d-ecran-des-echecs.pdf"),
            ("Relevé n° 2.1 / 50 % & co.", 12, "Piece-12-Releve-n-2-1-50-co.pdf"),
            ("Bordereau des pièces", None, "Bordereau-des-pieces.pdf"),
        ],
    )
    def test_accents_dots_and_specials_removed(
        self, title: str, number: int | None, expected: str
    ) -> None:
        """Letters without accents, '-' for anything else, one dot: the extension's."""
        assert telerecours_name(title, number) == expected

    def test_at_most_80_characters(self) -> None:
        """A long title is cut so that the whole name, extension included, fits."""
        name = telerecours_name("Observations " * 20, 2)
        assert len(name) <= MAX_NAME
        assert re.fullmatch(r"Piece-02-[A-Za-z0-9-]+[A-Za-z0-9]\.pdf", name)


class TestFromABundle:
    def test_capture_that_is_no_image(self, tmp_path: Path) -> None:
        """A capture file that no image reader opens is said so in its pièce, not fatal."""
        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
        request = ExportRequest(BUILD_START, BUILD_START + dt.timedelta(hours=3))
        bundle = built.export(tmp_path / "b.zip", request).path
        pieces = write_pieces(bundle, tmp_path / "pieces")
        names = [p.path.name for p in pieces]
        assert "Piece-03-Captures-d-ecran-des-echecs.pdf" in names
        assert names[-1] == "Bordereau-des-pieces.pdf"
        assert all(p.sha256 and p.pages >= 1 for p in pieces)
        # a second run into the same folder would leave stale pièces beside new ones: refused
        with pytest.raises(PiecesError, match="already holds pièces"):
            write_pieces(bundle, tmp_path / "pieces")

    def test_a_zip_that_is_no_bundle(self, tmp_path: Path) -> None:
        """One line, exit 2, nothing written."""
        other = tmp_path / "autre.zip"
        with zipfile.ZipFile(other, "w") as zf:
            zf.writestr("a.txt", "rien")
        with pytest.raises(PiecesError, match="not a Vigie evidence bundle"):
            write_pieces(other, tmp_path / "pieces")
        done = vigie_cli("export", "--bundle", str(other), "--pieces", str(tmp_path / "p"))
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1, done.stderr
        assert "Traceback" not in done.stderr
        assert not (tmp_path / "p").exists()
