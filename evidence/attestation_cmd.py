"""`vigie attestation`: an attestation d'observation (PDF) for the time windows a person gives,
with the signed evidence bundle of those windows beside it.

It only reads the ledger (opened read-only) and the artifact store; the reference of the case
is printed in the PDF and never written anywhere else.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from evidence.commands import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    LoadSettings,
    add_command,
    command_settings,
)

if TYPE_CHECKING:
    from evidence.attestation import Attestation, TargetInfo, Window
    from evidence.ledger import Ledger
    from exporter.config import Settings

__all__ = ["add_commands", "chosen_targets", "run_attestation", "write_attestation"]

MAX_REFERENCE = 200


def chosen_targets(settings: Settings, ids: list[str], kind: str | None) -> list[TargetInfo]:
    """The targets named by --target and --kind (ValueError naming what is unknown)."""
    from evidence.attestation import TargetInfo

    known = {t.id: t for t in settings.targets}
    unknown = [t for t in ids if t not in known]
    if unknown:
        listed = ", ".join(sorted(known)) or "none"
        raise ValueError(f"--target: no target with id {unknown[0]!r} (known: {listed})")
    chosen = [known[t] for t in dict.fromkeys(ids)]
    if kind is not None:
        chosen += [t for t in settings.targets if t.kind == kind and t not in chosen]
        if not chosen:
            raise ValueError(f"--kind: no target of kind {kind!r} in the configuration")
    if not chosen:
        raise ValueError("give --target ID (repeatable) or --kind http|browser")
    return [
        TargetInfo(
            t.id,
            t.name or t.id,
            str(t.kind),
            str(t.url),
            settings.interval_of(t),
            settings.timeout_of(t),
        )
        for t in chosen
    ]


def write_attestation(
    settings: Settings,
    targets: list[TargetInfo],
    windows: list[Window],
    out: Path | None,
    *,
    reference: str | None = None,
    now: dt.datetime | None = None,
) -> Attestation:
    """Build the figures; with `out`, write the bundle (out.zip) and then the PDF (out).

    Raises LedgerError, SigningKeyError or OSError; the bundle is skipped (and the PDF says so)
    when the ledger holds nothing in the windows.
    """
    import dataclasses

    from evidence.artifacts import ArtifactError, FileArtifactStore
    from evidence.attestation import build_attestation
    from evidence.attestation_pdf import render_attestation
    from evidence.ledger import open_ledger

    moment = now or dt.datetime.now(dt.UTC)
    password = settings.ledger.password.get_secret_value() if settings.ledger.password else None
    ledger = open_ledger(
        settings.ledger.url, vantage=settings.vantage.name, readonly=True, password=password
    )
    try:
        attestation = build_attestation(
            ledger,
            targets,
            windows,
            vantage=settings.vantage.name,
            operator=settings.vantage.operator,
            now=moment,
            reference=reference,
        )
        if out is None:
            return attestation
        bundle = _write_bundle(
            settings, ledger, targets, windows, path=out.with_suffix(".zip"), now=moment
        )
    finally:
        ledger.close()
    if bundle is not None:
        digest = hashlib.sha256(bundle.read_bytes()).hexdigest()
        attestation = dataclasses.replace(
            attestation, bundle_name=bundle.name, bundle_sha256=digest
        )
    store = FileArtifactStore(settings.ledger.artifacts)

    def read(sha256: str) -> bytes | None:
        try:
            return store.get(sha256)
        except (ArtifactError, OSError):
            return None

    pdf = render_attestation(attestation, read)
    tmp = out.with_name(f".{out.name}.part")
    tmp.write_bytes(pdf)
    tmp.replace(out)
    return attestation


def _write_bundle(
    settings: Settings,
    ledger: Ledger,
    targets: list[TargetInfo],
    windows: list[Window],
    *,
    path: Path,
    now: dt.datetime,
) -> Path | None:
    """The signed bundle of the period holding every window, for these targets only."""
    from evidence.bundle import BundleError, ExportRequest, export_bundle
    from evidence.signing import NoteSigner, load_private_key

    start = min(w.start for w in windows)
    end = min(max(w.end for w in windows), now)
    path.unlink(missing_ok=True)  # never leave an older bundle beside a new attestation
    if end <= start:
        return None
    signer = NoteSigner(settings.vantage.name, load_private_key(settings.signing.key))
    try:
        export_bundle(
            ledger,
            path,
            ExportRequest(start, end, tuple(t.id for t in targets)),
            signer=signer,
            operator=settings.vantage.operator,
            artifacts_dir=settings.ledger.artifacts,
            progress=False,
            settings=settings,
            now=now,
        )
    except BundleError as exc:
        print(f"vigie attestation: no evidence bundle: {exc}", file=sys.stderr)
        return None
    return path


def run_attestation(args: argparse.Namespace) -> int:
    """`vigie attestation`: 0 with the PDF (and bundle) written, 1 when it cannot be, 2 on bad
    input."""
    from evidence.attestation import WindowError, parse_window
    from evidence.ledger import LedgerError
    from evidence.signing import SigningKeyError

    settings = command_settings(args)
    try:
        targets = chosen_targets(settings, args.target, args.kind)
        windows = [parse_window(text) for text in args.window]
    except (ValueError, WindowError) as exc:
        print(f"vigie attestation: {exc}", file=sys.stderr)
        return EXIT_USAGE
    reference = args.reference.strip() if args.reference else None
    if reference is not None and (len(reference) > MAX_REFERENCE or not reference.isprintable()):
        print(
            f"vigie attestation: --reference: at most {MAX_REFERENCE} printable characters",
            file=sys.stderr,
        )
        return EXIT_USAGE
    out: Path | None = args.out
    if out is None and args.format == "pdf":
        print("vigie attestation: give --out FILE.pdf (or --format json)", file=sys.stderr)
        return EXIT_USAGE
    if out is not None and out.suffix.lower() != ".pdf":
        print(f"vigie attestation: --out {out}: the file name must end in .pdf", file=sys.stderr)
        return EXIT_USAGE
    if out is not None and not out.parent.is_dir():
        print(f"vigie attestation: --out {out}: no such directory", file=sys.stderr)
        return EXIT_USAGE
    try:
        attestation = write_attestation(settings, targets, windows, out, reference=reference)
    except (LedgerError, SigningKeyError, OSError) as exc:
        print(f"vigie attestation: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.format == "json":
        sys.stdout.write(attestation.to_json())
        return EXIT_OK
    assert out is not None
    print(f"{out}: attestation d'observation, {len(windows)} window(s), {len(targets)} target(s)")
    for facts in attestation.facts:
        print(
            f"  {facts.window.text} {facts.target.id}: {facts.checks} checks, "
            f"{facts.failed} failed, {len(facts.outages)} outage(s)"
        )
    if attestation.bundle_name:
        bundle = out.with_suffix(".zip")
        print(f"{bundle}: the evidence bundle; verify with: vigie verify {bundle}")
    return EXIT_OK


def add_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    load_settings: LoadSettings,
) -> None:
    """Add `vigie attestation` to the `vigie` parser (handler in ``args.handler``)."""
    parser = add_command(
        subparsers,
        "attestation",
        load_settings,
        help="attestation d'observation (PDF) for time windows, with its evidence bundle",
        description="Write a one- or two-page French attestation of what Vigie observed of "
        "some targets during the windows a person gives (Paris time), and the signed evidence "
        "bundle of those windows beside it (FILE.zip). WINDOW is START/END: "
        "2026-11-03T09:00/11:30, 2026-11-03T22:00/2026-11-04T01:00, or whole days "
        "2026-11-03/2026-11-04. The reference is printed in the PDF only, never stored.",
    )
    parser.add_argument(
        "--target", action="append", default=[], metavar="ID", help="a target (repeatable)"
    )
    parser.add_argument(
        "--kind", choices=["http", "browser"], help="every target of this kind (e.g. journeys)"
    )
    parser.add_argument(
        "--window", action="append", required=True, metavar="START/END", help="repeatable"
    )
    parser.add_argument("--reference", metavar="TEXT", help='e.g. "dossier n° 2026-114"')
    parser.add_argument("--out", type=Path, metavar="FILE.pdf")
    parser.add_argument(
        "--format", choices=["pdf", "json"], default="pdf", help="json: print the figures"
    )
    parser.set_defaults(handler=run_attestation)
