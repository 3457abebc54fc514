"""The `verify.py` shipped in every bundle, run in a virtualenv holding only `cryptography`."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from types import ModuleType

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from evidence.bundle.model import ExportRequest
from evidence.ledger.signing import NoteSigner
from tests.bundle_fixture import (
    BUILD_START,
    BuiltLedger,
    build_ledger,
    change_entry,
    cryptography_only_python,
)

SCRIPT = Path(__file__).parents[1] / "evidence/standalone/verify.py"
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


@pytest.fixture(scope="module")
def engine() -> ModuleType:
    """The stand-alone verifier loaded as a module, as a program using its engine does."""
    spec = importlib.util.spec_from_file_location("vigie_standalone_engine", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _main_output(engine: ModuleType, *arguments: str) -> tuple[int, list[str]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = engine.main(list(arguments))
    return code, out.getvalue().splitlines()


class TestEngine:
    """`verifier_dossier`: the same checks as `python3 verify.py`, as a structured result."""

    def test_good_bundle_result_matches_the_printed_lines(
        self, engine: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
        bundle = _bundle(tmp_path, built)
        key = built.signer.verifier.vkey()
        capsys.readouterr()  # what building the ledger logged
        result = engine.verifier_dossier(str(bundle), key)
        assert result.ok, str(result.echec)
        assert result.echec is None
        assert capsys.readouterr().out == ""  # the engine prints nothing unless asked
        assert any(m.startswith("manifeste signé par ") for m in result.reussis)
        assert any("captures (artifacts/) conformes" in m for m in result.reussis)
        code, lines = _main_output(engine, str(bundle), "--cle", key)
        assert code == 0
        assert [line[7:] for line in lines if line.startswith("OK     ")] == result.reussis
        assert [line[7:] for line in lines if line.startswith("       ")] == result.remarques
        assert lines[-1].startswith("RÉSULTAT : OK")
        # Without the key the result says where the key came from, as the printed text does.
        bare = engine.verifier_dossier(str(bundle))
        assert bare.ok
        assert any("comparez-la" in m for m in bare.remarques)

    def test_changed_entry_names_file_and_entry(
        self, engine: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
        good = _bundle(tmp_path, built)
        tampered = tmp_path / "tampered.zip"
        seq = change_entry(good, tampered, 30)
        key = built.signer.verifier.vkey()
        capsys.readouterr()  # what building the ledger logged
        result = engine.verifier_dossier(str(tampered), key)
        assert not result.ok
        assert (result.echec.fichier, result.echec.entree) == ("observations.jsonl", seq)
        assert capsys.readouterr().out == ""
        code, lines = _main_output(engine, str(tampered), "--cle", key)
        assert code == 1
        assert f"ÉCHEC  {result.echec}" in lines
        assert str(result.echec).startswith(f"observations.jsonl, entrée {seq} : ")
        # The checks passed before the failure are in the result, as they were printed.
        assert [line[7:] for line in lines if line.startswith("OK     ")] == result.reussis

    def test_a_line_that_is_no_longer_json_is_named_at_its_line(
        self, engine: ModuleType, tmp_path: Path
    ) -> None:
        """The fast pass reads only each entry's seq; a line whose JSON no longer parses (its
        seq intact) is caught by the roots, and the exact pass names that line, as before."""
        from evidence.bundle.verify import verify_bundle

        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
        good = _bundle(tmp_path, built)
        broken = tmp_path / "broken.zip"
        with zipfile.ZipFile(good) as src, zipfile.ZipFile(broken, "w") as dst:
            for item in src.infolist():
                data = src.read(item)
                if item.filename == "observations.jsonl":
                    lines = data.split(b"\n")
                    seq = json.loads(lines[30])["seq"]
                    lines[30] = lines[30].replace(b'"duration_s":', b'"duration_s"', 1)
                    data = b"\n".join(lines)
                dst.writestr(item, data)
        result = engine.verifier_dossier(str(broken), built.signer.verifier.vkey())
        # the file's hash differs from the signed manifest's: named first, with the first sign
        assert (result.echec.code, result.echec.fichier, result.echec.entree) == (
            "file_hash_mismatch_first_sign",
            "observations.jsonl",
            seq,
        ), str(result.echec)
        assert result.echec.valeurs["cause"].code == "line_not_entry"
        assert result.echec.message == (
            "modifié (empreinte SHA-256 différente ; ligne 31 : ce n'est pas une entrée)"
        )
        report = verify_bundle(broken, public_key=built.signer.verifier)
        assert (report.file, report.entry, report.error) == (
            "observations.jsonl",
            seq,
            (
                "changed: its SHA-256 differs from the manifest's (first sign: line 31 is not "
                "an entry)"
            ),
        )

    def test_leaves_added_in_bulk_give_the_same_tree(self, engine: ModuleType) -> None:
        """`Arbre.ajouter_feuilles` (subtrees computed layer by layer) is `ajouter(0, leaf)`
        leaf by leaf, from any tree size (the batches start anywhere in a bundle's range)."""
        leaves = [bytes([i]) * 32 for i in range(70)]
        for before in range(19):
            for count in (0, 1, 2, 3, 5, 8, 13, 32, 33, 51):
                one, bulk = engine.Arbre(), engine.Arbre()
                for leaf in leaves[:before]:
                    one.ajouter(0, leaf)
                    bulk.ajouter(0, leaf)
                for leaf in leaves[before : before + count]:
                    one.ajouter(0, leaf)
                bulk.ajouter_feuilles(leaves[before : before + count])
                assert (bulk.taille, bulk.racine()) == (one.taille, one.racine()), (before, count)

    def test_wrong_key_and_broken_zip_are_failures_not_exceptions(
        self, engine: ModuleType, tmp_path: Path
    ) -> None:
        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
        good = _bundle(tmp_path, built)
        other = NoteSigner(built.signer.name, Ed25519PrivateKey.generate())
        wrong = engine.verifier_dossier(str(good), other.verifier.vkey())
        assert not wrong.ok
        assert wrong.echec.fichier == "manifest.json"
        broken = tmp_path / "broken.zip"
        broken.write_bytes(b"PK\x03\x04 ce n'est pas un zip")
        result = engine.verifier_dossier(str(broken))
        assert not result.ok
        assert result.echec.fichier is None
        assert result.echec.message.startswith("BadZipFile : ")
        code, lines = _main_output(engine, str(broken))
        assert code == 1
        assert f"ÉCHEC  {result.echec.message}" in lines

    def test_counts_are_what_the_bundle_holds(self, engine: ModuleType, tmp_path: Path) -> None:
        """What the engine counts (and `vigie verify` reports from it) is what the bundle
        holds, on the three kinds of bundle: the whole period, one target (other entries as
        hashes only), one outage."""
        from evidence.bundle.verify import verify_bundle

        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path)
        requests = {
            "all": PERIOD,
            "one": ExportRequest(PERIOD.start, PERIOD.end, ("anef-accueil",)),
            "outage": ExportRequest(
                BUILD_START, BUILD_START + dt.timedelta(minutes=90), outage_id=built.outage_ids[0]
            ),
        }
        seen = set()
        for label, request in requests.items():
            path = tmp_path / f"{label}.zip"
            built.export(path, request)
            result = engine.verifier_dossier(str(path), built.signer.verifier.vkey())
            assert result.ok, str(result.echec)
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
                manifest = json.loads(zf.read("manifest.json"))
                hidden = len(zf.read("proofs/hidden-leaves.bin")) // 32 if label == "one" else 0
                expected = {
                    "fichiers": len(manifest["files"]),
                    "points_de_controle": len(zf.read("proofs/checkpoints.jsonl").splitlines()),
                    "entrees": len(zf.read("observations.jsonl").splitlines()),
                    "masquees": hidden if label != "outage" else None,
                    "preuves_tlog": sum(n.startswith("proofs/tlog/") for n in names) or None,
                    "captures": sum(n.startswith("artifacts/") for n in manifest["files"]),
                }
            got = {name: result.comptes.get(name) for name in expected}
            assert got == expected, label
            report = verify_bundle(path, public_key=built.signer.verifier)
            assert report.ok, report.summary()
            assert (report.files, report.entries, report.hidden, report.artifacts) == (
                expected["fichiers"],
                expected["entrees"],
                hidden,
                expected["captures"],
            )
            assert result.complets == report.complete, label
            assert result.temoins == report.cosigned_by == []
            seen.add((hidden > 0, bool(expected["preuves_tlog"])))
        assert seen == {(False, False), (True, False), (False, True)}  # each kind was exercised
