"""Issue 18: a forger who holds the vantage key and re-signs bundles, against both verifiers.

Each attack is built the way a key holder would build it (edit the zip, re-sign the manifest
with the real vantage key) and must fail in `vigie verify` (exit 1) and in the bundle's own
`verify.py` run by a Python holding only `cryptography`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from evidence.bundle import BUNDLE_FORMAT, ExportRequest
from evidence.bundle_verify import verify_bundle
from evidence.signing import NoteSigner
from tests.bundle_fixture import BUILD_START, BuiltLedger, build_ledger, cryptography_only_python

PERIOD = ExportRequest(
    BUILD_START + dt.timedelta(minutes=20), BUILD_START + dt.timedelta(minutes=70)
)
STANDALONE = Path(__file__).parents[1] / "evidence/standalone/verify.py"


@pytest.fixture(scope="module")
def bare_python() -> Path:
    return cryptography_only_python()


def forge(
    source: Path,
    target: Path,
    signer: NoteSigner,
    *,
    drop: tuple[str, ...] = (),
    edit: Callable[[str, bytes], bytes] | None = None,
) -> Path:
    """Copy `source` to `target` without the members `drop`, members changed by `edit`, and
    the manifest re-signed with the vantage key (what the key holder can always do)."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        manifest = src.read("manifest.json")
        for item in src.infolist():
            name = item.filename
            if name in drop or name in ("manifest.json", "manifest.sig"):
                continue
            data = src.read(item)
            dst.writestr(item, edit(name, data) if edit is not None else data)
        if edit is not None:
            manifest = edit("manifest.json", manifest)
        dst.writestr("manifest.json", manifest)
        digest = hashlib.sha256(manifest).hexdigest()
        dst.writestr("manifest.sig", signer.sign(f"{BUNDLE_FORMAT}\n{digest}\n"))
    return target


def standalone(python: Path, bundle: BuiltLedger, path: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [str(python), str(STANDALONE), str(path), "--cle", bundle.signer.verifier.vkey()],
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
        env=env,
        timeout=120,
        check=False,
    )


class _BrokenTsa:
    def stamp(self, data: bytes) -> bytes:
        raise OSError("connexion refusée par tsa.example")


@pytest.mark.slow
class TestManifestTimestamp:
    def test_removing_the_declared_token_fails_in_both_verifiers(
        self, local_tsa: object, bare_python: Path, tmp_path: Path
    ) -> None:
        """The manifest of a TSA-configured vantage declares its token: removing it (and
        re-signing the manifest) is a failure, not a warning."""
        from evidence.timestamp import HttpTimestamper

        root = local_tsa.ca_pem  # type: ignore[attr-defined]
        stamper = HttpTimestamper(local_tsa.url, ca_pem=root)  # type: ignore[attr-defined]
        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
        good = tmp_path / "b.zip"
        built.export(good, PERIOD, timestamper=stamper, tsa_name="local", tsa_certificates=[root])
        assert '"token": "manifest.tsr"' in zipfile.ZipFile(good).read("manifest.json").decode()
        assert verify_bundle(good, tsa_certificates=[root]).ok
        assert standalone(bare_python, built, good).returncode == 0

        forged = forge(good, tmp_path / "f.zip", built.signer, drop=("manifest.tsr",))
        report = verify_bundle(forged, tsa_certificates=[root])
        assert not report.ok
        assert "manifest.tsr" in report.summary()
        result = standalone(bare_python, built, forged)
        assert result.returncode == 1, result.stdout
        assert "manifest.tsr" in result.stdout + result.stderr

    def test_a_tsa_down_at_export_is_declared_and_only_warned(
        self, bare_python: Path, tmp_path: Path
    ) -> None:
        """When the TSA fails at export, the signed manifest says so: a warning, exit 0."""
        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
        out = tmp_path / "b.zip"
        built.export(out, PERIOD, timestamper=_BrokenTsa(), tsa_name="https://tsa.example/")
        assert "manifest.tsr" not in zipfile.ZipFile(out).namelist()
        report = verify_bundle(out)
        assert report.ok, report.summary()
        assert any("connexion refusée" in w for w in report.warnings)
        result = standalone(bare_python, built, out)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "connexion refusée" in result.stdout
