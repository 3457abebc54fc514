"""`verify_bundle`: any changed byte in any file of a bundle is detected and the file named."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import pytest

from evidence.bundle.model import ExportRequest
from evidence.bundle.verify import verify_bundle
from evidence.ledger.signing import NoteSigner
from tests.bundle_fixture import BUILD_START, build_ledger

PERIOD = ExportRequest(
    BUILD_START + dt.timedelta(minutes=20),
    BUILD_START + dt.timedelta(minutes=70),
    ("anef-accueil",),
)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, NoteSigner]:
    """One filtered bundle (hidden leaves, artifacts, checkpoints) shared by the tamper tests."""
    directory = tmp_path_factory.mktemp("bundle")
    built = build_ledger(f"sqlite:///{directory / 'l.db'}", directory)
    built.export(directory / "b.zip", PERIOD)
    return directory / "b.zip", built.signer


def _rewrite(source: Path, target: Path, name: str, position: int | None = None) -> None:
    """Copy the zip, flipping one byte of member `name` (valid zip, changed content)."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for item in src.infolist():
            data = bytearray(src.read(item))
            if item.filename == name:
                at = len(data) // 2 if position is None else position
                data[at] ^= 0x01
            dst.writestr(item, bytes(data))


def _members(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        return zf.namelist()


class TestTampering:
    def test_intact_bundle_verifies(self, bundle: tuple[Path, NoteSigner]) -> None:
        """The untouched bundle verifies with the vantage's key."""
        report = verify_bundle(bundle[0], public_key=bundle[1].verifier)
        assert report.ok, report.summary()

    def test_every_changed_file_is_named(
        self, bundle: tuple[Path, NoteSigner], tmp_path: Path
    ) -> None:
        """Flipping one byte in any file fails verification and names that very file."""
        path, signer = bundle
        names = _members(path)
        assert len(names) > 15
        for name in names:
            tampered = tmp_path / "t.zip"
            _rewrite(path, tampered, name)
            report = verify_bundle(tampered, public_key=signer.verifier)
            assert not report.ok, name
            assert report.file == name, (name, report.summary())

    def test_changed_entry_is_named(self, bundle: tuple[Path, NoteSigner], tmp_path: Path) -> None:
        """A changed entry names observations.jsonl."""
        path, signer = bundle
        tampered = tmp_path / "t.zip"
        _rewrite(path, tampered, "observations.jsonl", position=30)
        report = verify_bundle(tampered, public_key=signer.verifier)
        assert report.file == "observations.jsonl"

    def test_raw_zip_corruption_is_reported(
        self, bundle: tuple[Path, NoteSigner], tmp_path: Path
    ) -> None:
        """A byte flipped in the zip file itself (compressed data) fails verification."""
        path, signer = bundle
        data = bytearray(path.read_bytes())
        data[200] ^= 0xFF
        tampered = tmp_path / "raw.zip"
        tampered.write_bytes(bytes(data))
        assert not verify_bundle(tampered, public_key=signer.verifier).ok

    def test_added_file_is_refused(self, bundle: tuple[Path, NoteSigner], tmp_path: Path) -> None:
        """A file slipped into the bundle, outside the signed manifest, is named."""
        path, signer = bundle
        tampered = tmp_path / "extra.zip"
        tampered.write_bytes(path.read_bytes())
        with zipfile.ZipFile(tampered, "a") as zf:
            zf.writestr("artifacts/extra.png", b"not evidence")
        report = verify_bundle(tampered, public_key=signer.verifier)
        assert report.file == "artifacts/extra.png"

    def test_another_key_is_refused(self, bundle: tuple[Path, NoteSigner]) -> None:
        """Given the genuine key of another vantage setup, the bundle does not verify."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        other = NoteSigner(bundle[1].name, Ed25519PrivateKey.generate())
        report = verify_bundle(bundle[0], public_key=other.verifier)
        assert not report.ok
        assert report.file == "manifest.json"
