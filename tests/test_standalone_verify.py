"""The `verify.py` shipped in every bundle, run in a virtualenv holding only `cryptography`."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from evidence.bundle.model import ExportRequest
from tests.bundle_fixture import (
    BUILD_START,
    BuiltLedger,
    build_ledger,
    cryptography_only_python,
)

PERIOD = ExportRequest(
    BUILD_START + dt.timedelta(minutes=20), BUILD_START + dt.timedelta(minutes=70)
)


@pytest.fixture(scope="session")
def bare_python() -> Path:
    """A virtualenv's Python with nothing but `cryptography` (see `cryptography_only_python`)."""
    return cryptography_only_python()


def _bundle(directory: Path, built: BuiltLedger, request: ExportRequest = PERIOD) -> Path:
    built.export(directory / "b.zip", request)
    return directory / "b.zip"


def _run(python: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [str(python), *args],
        capture_output=True,
        text=True,
        cwd=cwd or tempfile.gettempdir(),
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
class TestStandaloneVerify:
    def test_the_venv_has_no_vigie(self, bare_python: Path) -> None:
        """The bare virtualenv cannot import Vigie nor rfc3161-client: the script stands alone."""
        result = _run(bare_python, "-c", "import evidence")
        assert result.returncode != 0
        assert _run(bare_python, "-c", "import rfc3161_client").returncode != 0

    def test_verifies_the_zip_and_the_unzipped_folder(
        self, bare_python: Path, tmp_path: Path
    ) -> None:
        """`python3 verify.py bundle.zip` and `python3 verify.py` in the folder both say OK."""
        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
        bundle = _bundle(tmp_path, built)
        result = _run(
            bare_python,
            str(Path(__file__).parents[1] / "evidence/standalone/verify.py"),
            str(bundle),
            "--cle",
            built.signer.verifier.vkey(),
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "RÉSULTAT : OK" in result.stdout
        folder = tmp_path / "unzipped"
        zipfile.ZipFile(bundle).extractall(folder)
        result = _run(bare_python, "verify.py", cwd=folder)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "comparez-la" in result.stdout  # no key given: it says where the key came from

    def test_every_changed_file_fails(self, bare_python: Path, tmp_path: Path) -> None:
        """One flipped byte in any file of the unzipped folder: ÉCHEC naming the file."""
        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
        request = ExportRequest(PERIOD.start, PERIOD.end, ("anef-accueil",))
        bundle = _bundle(tmp_path, built, request)
        folder = tmp_path / "unzipped"
        zipfile.ZipFile(bundle).extractall(folder)
        script = Path(__file__).parents[1] / "evidence/standalone/verify.py"
        key = built.signer.verifier.vkey()
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            name = path.relative_to(folder).as_posix()
            original = path.read_bytes()
            data = bytearray(original)
            data[len(data) // 2] ^= 0x01
            path.write_bytes(bytes(data))
            try:
                result = _run(bare_python, str(script), str(folder), "--cle", key)
            finally:
                path.write_bytes(original)
            if name == "verify.py":
                assert "verify.py" in result.stdout, result.stdout
                assert result.returncode == 1, result.stdout
                continue
            assert result.returncode == 1, (name, result.stdout)
            failure = [line for line in result.stdout.splitlines() if line.startswith("ÉCHEC")]
            assert failure, (name, result.stdout)
            assert name in failure[0], (name, result.stdout)

    def test_timestamps_explained_without_rfc3161_client(
        self, bare_python: Path, local_tsa: object, tmp_path: Path
    ) -> None:
        """Without rfc3161-client the script prints `openssl ts -verify` commands, which pass."""
        from evidence.ledger.timestamp import HttpTimestamper

        root = local_tsa.ca_pem  # type: ignore[attr-defined]
        stamper = HttpTimestamper(local_tsa.url, ca_pem=root)  # type: ignore[attr-defined]
        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path, stamper=stamper)
        built.export(tmp_path / "b.zip", PERIOD, timestamper=stamper, tsa_certificates=[root])
        folder = tmp_path / "unzipped"
        zipfile.ZipFile(tmp_path / "b.zip").extractall(folder)
        result = _run(bare_python, "verify.py", cwd=folder)
        assert result.returncode == 0, result.stdout
        commands = [
            line.strip()
            for line in result.stdout.splitlines()
            if line.strip().startswith("openssl ts -verify")
        ]
        assert len(commands) == 4
        for command in commands:
            done = subprocess.run(
                command.split(), cwd=folder, capture_output=True, text=True, check=False
            )
            assert "Verification: OK" in done.stdout, done.stdout + done.stderr
        # With rfc3161-client (Vigie's venv has it), the script checks the tokens itself.
        result = subprocess.run(
            [sys.executable, "verify.py"], cwd=folder, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout
        assert result.stdout.count("horodatage RFC 3161 valide") == 4
