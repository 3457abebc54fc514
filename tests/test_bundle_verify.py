"""`verify_bundle`: any changed byte in any file of a bundle is detected and the file named."""

from __future__ import annotations

import ast
import datetime as dt
import string
import zipfile
from pathlib import Path

import pytest

from evidence.bundle.model import ExportRequest
from evidence.bundle.verify import _FAILURES, _WARNINGS, ENGINE, verify_bundle
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


def _engine_calls(name: str) -> list[ast.Call]:
    """Every call of `name` in the engine's source (evidence/standalone/verify.py), and of its
    class methods (``Echec.avec_detail``)."""
    tree = ast.parse(ENGINE.read_text(encoding="utf-8"))
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == name)
            or (
                isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == name
            )
        )
    ]


def _codes_and_values(
    call: ast.Call, code: ast.expr | None, values: ast.expr | None
) -> tuple[list[str], set[str]]:
    """The code(s) a call names (a conditional names two) and the names of the values it
    gives (a dict literal, or nothing)."""
    if code is None:
        return [], set()
    codes = [
        node.value
        for node in ast.walk(code)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]
    assert codes, f"line {call.lineno}: the code is not a string literal"
    names: set[str] = set()
    if values is not None:
        assert isinstance(values, ast.Dict), f"line {call.lineno}: values are not a dict literal"
        names = {k.value for k in values.keys if isinstance(k, ast.Constant)}
    return codes, names


def _placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


class TestEnglishCodes:
    """The engine's failures and warnings are French; `vigie verify` says them in English from
    their stable codes. A failure raised without a code, or a code without English, fails here."""

    def test_every_failure_has_a_code_with_an_english_message(self) -> None:
        calls = _engine_calls("Echec")
        assert len(calls) > 90
        used = set()
        for call in calls:
            keywords = {k.arg: k.value for k in call.keywords}
            assert "code" in keywords, f"verify.py line {call.lineno}: Echec without a code"
            if isinstance(keywords["code"], ast.Attribute):
                continue  # `copie`: the same failure, its code passed on
            codes, names = _codes_and_values(call, keywords["code"], keywords.get("valeurs"))
            if isinstance(call.func, ast.Attribute):  # Echec.avec_detail: « texte (détail) »
                names = {"detail"}
            for code in codes:
                assert code in _FAILURES, f"verify.py line {call.lineno}: {code} has no English"
                missing = _placeholders(_FAILURES[code]) - names
                assert not missing, f"verify.py line {call.lineno}: {code} lacks {missing}"
                used.add(code)
        assert set(_FAILURES) - used == set(), "English for codes the engine never raises"

    def test_every_warning_code_has_an_english_message(self) -> None:
        used = set()
        for call in _engine_calls("info"):
            args = [*call.args, *(k.value for k in call.keywords)]
            if len(args) < 2:
                continue  # a remark, not a warning
            codes, names = _codes_and_values(call, args[1], args[2] if len(args) > 2 else None)
            for code in codes:
                assert code in _WARNINGS, f"verify.py line {call.lineno}: {code} has no English"
                missing = _placeholders(_WARNINGS[code]) - names
                assert not missing, f"verify.py line {call.lineno}: {code} lacks {missing}"
                used.add(code)
        assert used == set(_WARNINGS)

    def test_failures_read_in_english(
        self, bundle: tuple[Path, NoteSigner], tmp_path: Path
    ) -> None:
        """A failure with a cause (another key) and a damaged zip, as people read them."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        path, signer = bundle
        tampered = tmp_path / "t.zip"
        _rewrite(path, tampered, "manifest.sig", position=5)
        report = verify_bundle(tampered, public_key=signer.verifier)
        assert report.file == "manifest.sig"
        assert report.error is not None
        assert report.error.startswith(f"not signed by the vantage key {signer.name} ("), (
            report.error
        )
        other = NoteSigner(signer.name, Ed25519PrivateKey.generate())
        report = verify_bundle(path, public_key=other.verifier)
        assert report.error == (
            f"names another key ({signer.verifier.vkey()}) than the vantage key given "
            f"({other.verifier.vkey()})"
        )
        broken = tmp_path / "broken.zip"
        broken.write_bytes(b"PK\x03\x04 not a zip")
        report = verify_bundle(broken)
        assert report.summary() == "FAILED: the zip is damaged: File is not a zip file"
