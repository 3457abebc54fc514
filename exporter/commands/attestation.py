"""`vigie attestation`: an attestation d'observation (PDF) for the time windows a person gives,
with the signed evidence bundle of those windows beside it.

It only reads the ledger (opened read-only) and the artifact store; the reference of the case
is printed in the PDF and never written anywhere else.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from config.vocabulary import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from exporter.plumbing import LoadSettings, add_command, command_settings

__all__ = ["add_commands", "run_attestation"]

MAX_REFERENCE = 200


def run_attestation(args: argparse.Namespace) -> int:
    """`vigie attestation`: 0 with the PDF (and bundle) written, 1 when it cannot be, 2 on bad
    input."""
    from evidence.bundle.attestation import WindowError, parse_window
    from evidence.bundle.with_settings import chosen_targets, write_attestation
    from evidence.ledger.entries import LedgerError
    from evidence.ledger.opening import OriginError
    from evidence.ledger.signing import SigningKeyError

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
    except OriginError as exc:  # vantage.origin contradicts the ledger: bad configuration
        print(f"vigie attestation: {exc}", file=sys.stderr)
        return EXIT_USAGE
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
