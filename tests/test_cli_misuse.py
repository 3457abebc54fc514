"""Every `vigie` command misused as people misuse it: one clear line on stderr, never a trace.

Table-driven, through the real `vigie` console script in a subprocess: bad input exits 2, a
failed verification 1. The stand-alone verify.py of a bundle follows the same rules.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from evidence.bundle.model import ExportRequest
from tests.bundle_fixture import BUILD_START, build_ledger, change_entry

pytestmark = pytest.mark.slow

VIGIE = Path(sys.executable).parent / "vigie"
TAMPERED_SEQ_INDEX = 50  # the line of observations.jsonl the tampered bundle changes


@dataclasses.dataclass(frozen=True)
class Scene:
    """A vantage with a ledger, its key and configuration, and bundles good and bad."""

    root: Path
    config: Path
    good: Path
    tampered: Path
    tampered_seq: int
    outage_id: str


def _tamper(good: Path, out: Path) -> int:
    """Copy `good` with one observation's duration changed; return that entry's seq."""
    return change_entry(good, out, TAMPERED_SEQ_INDEX)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    root = tmp_path_factory.mktemp("misuse")
    built = build_ledger(
        f"sqlite:///{root / 'ledger.db'}", root, minutes=60, checkpoint_every=20, outage_at=(20, 30)
    )
    key = root / "vantage.key"
    key.write_bytes(
        built.signer._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key.chmod(0o600)
    config = root / "vigie.yaml"
    config.write_text(
        "vantage: {name: paris-1, operator: Association test}\n"
        "targets:\n"
        "  - {id: anef-accueil, kind: http, url: 'http://127.0.0.1:9/'}\n"
        "  - {id: anef-connexion, kind: http, url: 'http://127.0.0.1:9/connexion'}\n"
        f"ledger: {{url: 'sqlite:///{root / 'ledger.db'}', artifacts: '{root / 'artifacts'}'}}\n"
        f"signing: {{key: '{key}'}}\n",
        encoding="utf-8",
    )
    good = root / "good.zip"
    built.export(
        good,
        ExportRequest(BUILD_START, BUILD_START + dt.timedelta(hours=2), (), None),
        operator="Asso",
    )
    tampered = root / "tampered.zip"
    seq = _tamper(good, tampered)
    (root / "bad.yaml").write_text("targets: [\n", encoding="utf-8")
    (root / "noledger.yaml").write_text(
        config.read_text(encoding="utf-8").replace("ledger.db", "missing.db"), encoding="utf-8"
    )
    (root / "not.json").write_text("{nope", encoding="utf-8")
    (root / "folder").mkdir()
    return Scene(root, config, good, tampered, seq, built.outage_ids[0])


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("VIGIE_") and k != "GRAFANA_TOKEN"
    }
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


EXPORT = ["export", "--config", "{config}", "--no-progress"]
DAY = ["--from", "2026-11-23", "--to", "2026-11-23"]
ATTEST = ["attestation", "--config", "{config}"]

# (case, arguments, exit code, what the one line on stderr must say)
CASES: list[tuple[str, list[str], int, str]] = [
    ("no command", [], 2, "required: COMMAND"),
    ("unknown command", ["exprot"], 2, "invalid choice: 'exprot'"),
    ("export: no --out", [*EXPORT, *DAY], 2, "give --out FILE.zip"),
    (
        "export: missing folder",
        [*EXPORT, *DAY, "--out", "/nonexistent/dir/x.zip"],
        2,
        "does not exist",
    ),
    ("export: --out is a folder", [*EXPORT, *DAY, "--out", "{root}/folder"], 2, "is a folder"),
    (
        "export: reversed period",
        [*EXPORT, "--from", "2026-11-24", "--to", "2026-11-22", "--out", "{root}/x.zip"],
        2,
        "comes after --to",
    ),
    (
        "export: unknown outage",
        [*EXPORT, "--outage", "nope", "--out", "{root}/x.zip"],
        2,
        "no outage 'nope'",
    ),
    (
        "export: empty period",
        [*EXPORT, "--from", "2020-01-01", "--to", "2020-01-02", "--out", "{root}/x.zip"],
        2,
        "no entry between",
    ),
    (
        "export: bad date",
        [*EXPORT, "--from", "2026-13-01", "--to", "2026-11-23", "--out", "{root}/x.zip"],
        2,
        "is not a date",
    ),
    (
        "export: only --from",
        [*EXPORT, "--from", "2026-11-23", "--out", "{root}/x.zip"],
        2,
        "give --from and --to",
    ),
    (
        "export: unknown target",
        [*EXPORT, *DAY, "--target", "nope", "--out", "{root}/x.zip"],
        2,
        "--target 'nope': no such target",
    ),
    (
        "export: missing corroboration",
        [*EXPORT, *DAY, "--corroboration", "{root}/nope.json", "--out", "{root}/x.zip"],
        2,
        "No such file",
    ),
    (
        "export: corroboration not JSON",
        [*EXPORT, *DAY, "--corroboration", "{root}/not.json", "--out", "{root}/x.zip"],
        2,
        "--corroboration",
    ),
    (
        "export: missing config",
        ["export", "--config", "{root}/nope.yaml", *DAY, "--out", "{root}/x.zip"],
        2,
        "nope.yaml: file not found",
    ),
    (
        "export: config not YAML",
        ["export", "--config", "{root}/bad.yaml", *DAY, "--out", "{root}/x.zip"],
        2,
        "invalid YAML",
    ),
    (
        "export: no ledger yet",
        ["export", "--config", "{root}/noledger.yaml", *DAY, "--out", "{root}/x.zip"],
        2,
        "no ledger at",
    ),
    ("outages: no ledger yet", ["outages", "--config", "{root}/noledger.yaml"], 2, "no ledger at"),
    (
        "verify: no such path",
        ["verify", "--config", "{config}", "{root}/nope.zip"],
        2,
        "no bundle at",
    ),
    (
        "verify: no such ledger",
        ["verify", "--config", "{config}", "{root}/nope.db"],
        2,
        "no ledger at",
    ),
    (
        "verify: missing public key",
        ["verify", "--config", "{config}", "--public-key", "{root}/nope.pub", "{good}"],
        2,
        "--public-key",
    ),
    ("verify: changed entry", ["verify", "--config", "{config}", "{tampered}"], 1, "entry {seq}"),
    ("verify: unknown flag", ["verify", "--nope", "{good}"], 2, "unrecognized arguments: --nope"),
    (
        "corroborate: no such file",
        ["corroborate", "--config", "{config}", "{root}/nope.zip", "{good}"],
        2,
        "no such file",
    ),
    (
        "corroborate: one vantage",
        ["corroborate", "--config", "{config}", "{good}", "{good}"],
        2,
        "1 vantage only",
    ),
    (
        "corroborate: too few bundles",
        ["corroborate", "--config", "{config}", "{good}"],
        2,
        "--min 2 needs",
    ),
    (
        "corroborate: --min 0",
        ["corroborate", "--config", "{config}", "--min", "0", "{good}"],
        2,
        "at least 1",
    ),
    (
        "corroborate: changed bundle",
        ["corroborate", "--config", "{config}", "{tampered}", "{good}"],
        1,
        "does not verify",
    ),
    (
        "outages: bad date",
        ["outages", "--config", "{config}", "--from", "hier"],
        2,
        "'hier' is not a date",
    ),
    (
        "outages: bad format",
        ["outages", "--config", "{config}", "--format", "xml"],
        2,
        "invalid choice: 'xml'",
    ),
    (
        "outages: unknown target",
        ["outages", "--config", "{config}", "--target", "nope"],
        2,
        "'nope'",
    ),
    ("config check: missing file", ["config", "check", "{root}/nope.yaml"], 2, "file not found"),
    (
        "config check: not YAML",
        ["config", "check", "{root}/bad.yaml"],
        2,
        "line 2, column 1: invalid YAML",
    ),
    ("keygen: key exists", ["keygen", "--config", "{config}"], 2, "refusing to overwrite"),
    (
        "demo: missing config",
        ["demo", "--config", "{root}/nope.yaml"],
        2,
        "nope.yaml: file not found",
    ),
    ("central: missing config", ["central", "--config", "{root}/nope.yaml"], 2, "nope.yaml"),
    ("central: config not YAML", ["central", "--config", "{root}/bad.yaml"], 2, "invalid YAML"),
    (
        "attestation: unknown target",
        [
            *ATTEST,
            "--target",
            "nope",
            "--window",
            "2026-11-23T10:00/11:00",
            "--out",
            "{root}/a.pdf",
        ],
        2,
        "no target with id 'nope'",
    ),
    (
        "attestation: reversed window",
        [
            *ATTEST,
            "--target",
            "anef-accueil",
            "--window",
            "2026-11-23T11:00/10:00",
            "--out",
            "a.pdf",
        ],
        2,
        "the end must come after the start",
    ),
    (
        "attestation: missing folder",
        [
            *ATTEST,
            "--target",
            "anef-accueil",
            "--window",
            "2026-11-23T10:00/11:00",
            "--out",
            "/no/a.pdf",
        ],
        2,
        "/no/a.pdf",
    ),
    (
        "dashboards: no token",
        ["dashboards", "push", "--config", "{config}", "--grafana-url", "http://127.0.0.1:9"],
        2,
        "GRAFANA_TOKEN",
    ),
]


def _fill(text: str, scene: Scene) -> str:
    return text.format(
        config=scene.config,
        root=scene.root,
        good=scene.good,
        tampered=scene.tampered,
        seq=scene.tampered_seq,
    )


@pytest.mark.parametrize(
    ("argv", "code", "says"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_vigie_misuse(scene: Scene, argv: list[str], code: int, says: str) -> None:
    """One line on stderr naming the problem, no traceback, exit 2 (bad input) or 1 (failed)."""
    result = run([str(VIGIE), *(_fill(a, scene) for a in argv)], scene.root)
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert result.returncode == code, result.stderr
    assert len(lines) == 1, result.stderr
    assert _fill(says, scene) in lines[0]


def test_good_inputs_still_work(scene: Scene) -> None:
    """The same scene used well: the bundle verifies, the config checks, the default applies."""
    assert run([str(VIGIE), "verify", str(scene.good)], scene.root).returncode == 0
    checked = run([str(VIGIE), "config", "check"], scene.root)  # ./vigie.yaml of the scene
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("vigie.yaml: OK")
    elsewhere = run([str(VIGIE), "config", "check"], scene.root / "folder")
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert "built-in defaults" in elsewhere.stdout


def test_export_writes_nothing_on_bad_input(scene: Scene) -> None:
    """A refused export leaves no file behind (not even a partial one)."""
    out = scene.root / "refused.zip"
    run(
        [str(VIGIE), *(_fill(a, scene) for a in EXPORT), "--outage", "nope", "--out", str(out)],
        scene.root,
    )
    assert not out.exists()
    assert not list(scene.root.glob(".refused.zip*"))


@pytest.fixture(scope="module")
def verify_py(scene: Scene) -> Path:
    folder = scene.root / "unzipped"
    with zipfile.ZipFile(scene.good) as zf:
        zf.extractall(folder)
    return folder / "verify.py"


STANDALONE: list[tuple[str, list[str], int, str, str]] = [
    ("help", ["--help"], 0, "stdout", "python3 verify.py [DOSSIER] [--cle CLE]"),
    ("no such path", ["{root}/nope.zip"], 2, "stderr", "nope.zip n'existe pas"),
    ("unknown option", ["--key", "x"], 2, "stderr", "erreur d'usage"),
    ("--cle without value", ["--cle"], 2, "stderr", "erreur d'usage"),
    ("changed entry", ["{tampered}"], 1, "stdout", "observations.jsonl, entrée {seq} :"),
    ("good bundle", ["{good}"], 0, "stdout", "RÉSULTAT : OK"),
]


@pytest.mark.parametrize(
    ("argv", "code", "stream", "says"), [c[1:] for c in STANDALONE], ids=[c[0] for c in STANDALONE]
)
def test_standalone_misuse(
    scene: Scene, verify_py: Path, argv: list[str], code: int, stream: str, says: str
) -> None:
    """verify.py: help, a clear usage error (2), or the entry that was changed (1)."""
    result = run([sys.executable, str(verify_py), *(_fill(a, scene) for a in argv)], scene.root)
    assert "Traceback" not in result.stderr
    assert result.returncode == code, result.stdout + result.stderr
    assert _fill(says, scene) in getattr(result, stream)
    if code == 2:
        assert len(result.stderr.strip().splitlines()) == 1
        assert "RÉSULTAT" not in result.stdout
