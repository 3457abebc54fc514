"""Synthetic ledgers for the evidence-bundle tests: observations, outages, checkpoints, stamps.

Everything goes through the real ledger API (`open_ledger(...).append`); nothing here writes
to the database directly, and nothing leaves the machine (a TSA, when used, is the local one).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from config.vocabulary import CHECKPOINT, OBSERVATION, TIMESTAMP, Outcome
from evidence.bundle.export import export_bundle
from evidence.bundle.model import ExportRequest, ExportResult
from evidence.ledger.artifacts import FileArtifactStore
from evidence.ledger.backends import open_ledger
from evidence.ledger.checkpoint import Checkpoint, head_text
from evidence.ledger.core import SqlLedger
from evidence.ledger.entries import TreeHead
from evidence.ledger.signing import NoteSigner
from probes.observation import Observation, format_time

__all__ = [
    "BUILD_START",
    "BuiltLedger",
    "build_ledger",
    "change_entry",
    "checkpoint_body",
    "cryptography_only_python",
    "standalone_verify",
    "vigie_cli",
]

BUILD_START = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
VANTAGE = "paris-1"


@dataclasses.dataclass
class BuiltLedger:
    """A ledger built for a test, with what a test needs to check an export of it."""

    url: str
    signer: NoteSigner
    artifacts: FileArtifactStore
    targets: tuple[str, ...]
    outage_ids: list[str]
    screenshots: list[str]
    size: int

    def open(self) -> SqlLedger:
        return open_ledger(self.url, readonly=True)  # its vantage need not be the signer's name

    def save_key(self, path: Path) -> Path:
        """Write the signing key to `path` (PEM, mode 0600), as `signing.key` expects it."""
        from cryptography.hazmat.primitives import serialization

        path.write_bytes(
            self.signer._key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)
        return path

    def export(self, out: Path, request: ExportRequest, **options: Any) -> ExportResult:
        """`export_bundle` of this ledger to `out`, signed, with its artifacts, no progress."""
        ledger = self.open()
        try:
            return export_bundle(
                ledger,
                out,
                request,
                signer=self.signer,
                artifacts_dir=self.artifacts.root,
                progress=False,
                **options,
            )
        finally:
            ledger.close()


def checkpoint_body(signer: NoteSigner, head: TreeHead, when: dt.datetime) -> dict[str, Any]:
    """The body of a checkpoint entry signing `head` (as the Checkpointer writes it)."""
    note = signer.sign(head_text(signer.name, head))
    checkpoint = Checkpoint.from_note(note, seq=head.size, time=format_time(when))
    return dataclasses.replace(checkpoint, key=signer.verifier.vkey()).body()


def _observation(
    target: str, when: dt.datetime, ok: bool, artifacts: dict[str, str]
) -> dict[str, Any]:
    return Observation(
        target_id=target,
        kind="http",
        vantage=VANTAGE,
        started_at=format_time(when),
        duration_s=0.25 if ok else 1.5,
        success=ok,
        outcome=Outcome.OK if ok else Outcome.HTTP_STATUS,
        http_status=200 if ok else 503,
        remote_ip="127.0.0.1",
        final_url=f"http://127.0.0.1/{target}",
        artifacts=artifacts,
        error=None if ok else "HTTP 503; « Service indisponible »",
        environment={"vantage": VANTAGE, "os": "Linux", "resolver": "127.0.0.53"},
    ).to_dict()


def build_ledger(
    url: str,
    directory: Path,
    *,
    minutes: int = 120,
    targets: tuple[str, ...] = ("anef-accueil", "anef-connexion"),
    checkpoint_every: int = 30,
    outage_at: tuple[int, int] = (40, 50),
    stamper: Any = None,
    final_checkpoint: bool = True,
    vantage: str = VANTAGE,
    outage_shift: int = 0,
    signer: NoteSigner | None = None,
) -> BuiltLedger:
    """`minutes` of one check per minute per target; the first target is down in `outage_at`.

    A checkpoint every `checkpoint_every` minutes (timestamped by `stamper` if given), a
    screenshot for every failed check, `opened`/`closed` outage events.
    """
    signer = signer or NoteSigner(vantage, Ed25519PrivateKey.generate())
    store = FileArtifactStore(directory / "artifacts")
    ledger = open_ledger(url, vantage=vantage)
    outage_at = (outage_at[0] + outage_shift, outage_at[1] + outage_shift)
    outage_id = f"{targets[0]}-{vantage}-{outage_at[0]}"
    screenshots: list[str] = []
    failed_seqs: list[int] = []
    first_seq: int | None = None
    try:
        for minute in range(minutes):
            when = BUILD_START + dt.timedelta(minutes=minute)
            batch: list[tuple[str, Any]] = []
            for index, target in enumerate(targets):
                down = index == 0 and outage_at[0] <= minute < outage_at[1]
                artifacts: dict[str, str] = {}
                if down:
                    png = b"\x89PNG fake screenshot " + str(minute).encode()
                    sha = store.put(png, "screenshot")
                    artifacts[sha] = "screenshot"
                    screenshots.append(sha)
                batch.append((OBSERVATION, _observation(target, when, not down, artifacts)))
            seqs = ledger.append(batch)
            if index_down(minute, outage_at):
                failed_seqs.append(seqs[0])
                if first_seq is None:
                    first_seq = seqs[0]
            if minute == outage_at[0] + 2:
                ledger.append(
                    [
                        (
                            "outage",
                            _event(
                                "opened",
                                outage_id,
                                targets[0],
                                failed_seqs,
                                first_seq,
                                when,
                                start=outage_at[0],
                            ),
                        )
                    ]
                )
            if minute == outage_at[1]:
                ledger.append(
                    [
                        (
                            "outage",
                            _event(
                                "closed",
                                outage_id,
                                targets[0],
                                [seqs[0]],
                                first_seq,
                                when,
                                seqs[0] - 1,
                                start=outage_at[0],
                            ),
                        )
                    ]
                )
            if (minute + 1) % checkpoint_every == 0 and (final_checkpoint or minute + 1 < minutes):
                _checkpoint(ledger, signer, when, stamper)
        size = ledger.size()
    finally:
        ledger.close()
    return BuiltLedger(url, signer, store, targets, [outage_id], screenshots, size)


def index_down(minute: int, outage_at: tuple[int, int]) -> bool:
    return outage_at[0] <= minute < outage_at[1]


def _event(
    event: str,
    outage_id: str,
    target: str,
    seqs: list[int],
    first_seq: int | None,
    when: dt.datetime,
    last_seq: int | None = None,
    *,
    start: int = 40,
) -> dict[str, Any]:
    began = BUILD_START + dt.timedelta(minutes=start)
    body: dict[str, Any] = {
        "event": event,
        "outage_id": outage_id,
        "target_id": target,
        "kind": "down",
        "started_at": format_time(began),
        "ended_at": None if event == "opened" else format_time(when),
        "at": format_time(when),
        "seqs": list(seqs),
        "failed_checks": len(seqs),
        "causes": {"http_503": len(seqs)},
        "first_seq": first_seq,
        "last_seq": last_seq,
    }
    if event == "closed":
        body["reason"] = "recovered"
    return body


def _checkpoint(ledger: SqlLedger, signer: NoteSigner, when: dt.datetime, stamper: Any) -> None:
    [seq] = ledger.append([(CHECKPOINT, lambda head: checkpoint_body(signer, head, when))])
    if stamper is not None:
        note = Checkpoint.from_entry(seq, ledger.get(seq)).note
        token = stamper.stamp(note.encode("utf-8"))
        ledger.append(
            [
                (
                    TIMESTAMP,
                    {
                        "checkpoint_seq": seq,
                        "tsa": "local",
                        "token": base64.b64encode(token).decode("ascii"),
                        "gen_time": format_time(when),
                    },
                )
            ]
        )


def cryptography_only_python() -> Path:
    """The Python of a venv holding only `cryptography` (and `cffi`), cached across sessions.

    Built with `python -m venv` (no system site-packages) and `pip install cryptography`.
    """
    venv = (
        Path(tempfile.gettempdir())
        / f"vigie-standalone-venv-{sys.version_info[0]}{sys.version_info[1]}"
    )
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import cryptography, sys; assert not sys.flags.no_site"]
    if python.exists() and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "cryptography",
        ],
        check=True,
        timeout=600,
    )
    return python


def standalone_verify(folder: Path) -> subprocess.CompletedProcess[str]:
    """A bundle's own ``verify.py`` run in `folder` (unzipped) by a Python holding only
    `cryptography`, with nothing of the environment but PATH."""
    return subprocess.run(
        [str(cryptography_only_python()), "verify.py"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONIOENCODING": "utf-8"},
    )


def vigie_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed `vigie` command (the console script beside this Python)."""
    script = Path(sys.executable).with_name("vigie")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "exporter.cli"]
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )


def change_entry(good: Path, out: Path, index: int) -> int:
    """Copy `good` with the duration of observations.jsonl's line `index` changed: its seq."""
    seq = -1
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "observations.jsonl":
                lines = data.split(b"\n")
                entry = json.loads(lines[index])
                assert entry["type"] == OBSERVATION
                seq = int(entry["seq"])
                entry["duration_s"] = 9.5
                lines[index] = json.dumps(
                    entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False
                ).encode()
                data = b"\n".join(lines)
            dst.writestr(item, data)
    return seq
