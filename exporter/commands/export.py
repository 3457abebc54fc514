"""`vigie export` and `vigie corroborate`: the evidence-bundle subcommands of the `vigie` CLI.

`export` only reads the ledger (opened read-only) and the artifact store and writes one zip;
`corroborate` only reads bundles. Neither ever changes evidence.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

from config.vocabulary import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from evidence.outages.availability import PARIS
from exporter.plumbing import LoadSettings, add_command, command_settings, parse_date

__all__ = ["add_commands", "run_corroborate", "run_export"]


def add_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    load_settings: LoadSettings,
) -> None:
    """Add `export` and `corroborate` to the `vigie` parser (handler in ``args.handler``)."""
    export = add_command(
        subparsers,
        "export",
        load_settings,
        help="write an evidence bundle (zip) for a period, some targets or one outage",
        description="Write the evidence bundle of a period: the ledger entries, CSV tables, "
        "captures of failures, Merkle proofs, signed checkpoints and RFC 3161 tokens, the "
        "French report, and a stand-alone verify.py. Dates are Paris days (--to inclusive) "
        "or ISO date-times.",
    )
    export.add_argument("--from", dest="start", metavar="DATE", help="first day (Paris time)")
    export.add_argument("--to", dest="end", metavar="DATE", help="last day, inclusive")
    export.add_argument(
        "--target", action="append", default=[], metavar="ID", help="only this target (repeatable)"
    )
    export.add_argument("--outage", metavar="ID", help="export one outage, with inclusion proofs")
    export.add_argument("--out", type=Path, metavar="FILE.zip", help="the bundle to write")
    export.add_argument(
        "--pieces",
        type=Path,
        metavar="DIR",
        help="also write the bundle as Télérecours pièces (numbered PDFs and their bordereau) "
        "in DIR",
    )
    export.add_argument(
        "--bundle",
        type=Path,
        metavar="FILE.zip",
        help="with --pieces: make the pièces of this existing bundle (nothing is exported)",
    )
    export.add_argument(
        "--corroboration",
        type=Path,
        metavar="FILE.json",
        help="output of `vigie corroborate --json`: the report says from how many vantages "
        "each outage was confirmed",
    )
    export.add_argument("--no-progress", action="store_true", help="no progress bar")
    export.set_defaults(handler=run_export)

    corroborate = add_command(
        subparsers,
        "corroborate",
        load_settings,
        help="list the outages seen by several vantages (one verified bundle per vantage)",
        description="Verify each bundle, then list the outages (same target, overlapping "
        "periods) seen from at least --min vantages.",
    )
    corroborate.add_argument("bundles", nargs="+", type=Path, metavar="BUNDLE.zip")
    corroborate.add_argument("--min", type=int, default=2, metavar="K", help="default: 2")
    corroborate.add_argument("--json", action="store_true", help="print JSON")
    corroborate.set_defaults(handler=run_corroborate)


def output_problem(out: Path, option: str = "--out") -> str | None:
    """Why `out` cannot be written (missing or unwritable folder, a directory), or None."""
    folder = out.parent
    if out.is_dir():
        return f"{option} {out}: is a folder; give a file name ending in .zip"
    if not folder.is_dir():
        return f"{option} {out}: the folder {folder} does not exist"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{option} {out}: the folder {folder} is not writable"
    return None


def run_export(args: argparse.Namespace) -> int:
    """`vigie export`: exit 0 with the bundle written, 1 when it cannot be, 2 on bad usage."""
    from evidence.bundle.model import BundleError, BundleRequestError, ExportRequest
    from evidence.bundle.with_settings import export_with_settings
    from evidence.ledger.entries import LedgerError, sqlite_path
    from evidence.ledger.opening import OriginError, open_signing
    from evidence.ledger.signing import SigningKeyError

    if args.bundle is not None:
        if args.pieces is None:
            print("vigie export: --bundle needs --pieces DIR", file=sys.stderr)
            return EXIT_USAGE
        return _write_pieces(args.bundle, args.pieces)
    if args.out is None:
        print("vigie export: give --out FILE.zip", file=sys.stderr)
        return EXIT_USAGE
    settings = command_settings(args)
    if args.outage is None and (args.start is None or args.end is None):
        print("vigie export: give --from and --to, or --outage ID", file=sys.stderr)
        return EXIT_USAGE
    try:
        start = parse_date(args.start) if args.start else dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        end = parse_date(args.end, end=True) if args.end else dt.datetime.now(dt.UTC)
    except argparse.ArgumentTypeError as exc:
        print(f"vigie export: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if end <= start:
        print(
            f"vigie export: --from {args.start} comes after --to {args.end}: swap them",
            file=sys.stderr,
        )
        return EXIT_USAGE
    known = {t.id for t in settings.targets}
    unknown = [t for t in args.target if known and t not in known]
    if unknown:
        print(
            f"vigie export: --target {unknown[0]!r}: no such target "
            f"(known: {', '.join(sorted(known))})",
            file=sys.stderr,
        )
        return EXIT_USAGE
    problem = output_problem(args.out)
    if problem is not None:
        print(f"vigie export: {problem}", file=sys.stderr)
        return EXIT_USAGE
    corroboration: dict[str, int] = {}
    report = None
    if args.corroboration is not None:
        from evidence.bundle.corroborate import Corroboration, CorroborationError
        from evidence.bundle.report_inputs import corroborated_report

        try:
            corroborated = Corroboration.from_dict(
                json.loads(args.corroboration.read_text(encoding="utf-8"))
            )
        except OSError as exc:
            print(
                f"vigie export: --corroboration {args.corroboration}: {exc.strerror or exc}",
                file=sys.stderr,
            )
            return EXIT_USAGE
        except (ValueError, CorroborationError) as exc:
            print(f"vigie export: --corroboration {args.corroboration}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        named = corroborated.names_by_outage(settings.vantage.name)
        corroboration = {outage_id: len(names) for outage_id, names in named.items()}
        report = corroborated_report(corroborated)  # the report names the vantages
    try:
        signing = open_signing(settings)
    except SigningKeyError as exc:
        print(f"vigie export: the bundle is signed with the vantage key: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OriginError as exc:
        print(f"vigie export: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LedgerError as exc:
        print(f"vigie export: {exc}", file=sys.stderr)
        return EXIT_FAILED
    missing = sqlite_path(settings.ledger.url)
    if missing is not None and not missing.is_file():  # a wrong ledger.url: bad input
        print(f"vigie export: no ledger at {missing} (ledger.url)", file=sys.stderr)
        return EXIT_USAGE
    try:
        result = export_with_settings(
            settings,
            args.out,
            ExportRequest(start, end, tuple(args.target), args.outage),
            signing=signing,
            corroboration=corroboration,
            report=report,
            progress=False if args.no_progress else None,
        )
    except BundleRequestError as exc:
        print(f"vigie export: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (BundleError, LedgerError) as exc:
        print(f"vigie export: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:  # the output could not be written (disk full, removed folder)
        print(f"vigie export: {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    summary = result.summary
    print(
        f"{result.path}: {summary.entries} entries ({summary.hidden} as hashes only), "
        f"{len(summary.outages)} outages, {len(summary.artifact_files)} captures, "
        f"{len(summary.checkpoints)} checkpoints, {result.elapsed_s:.1f} s"
    )
    for warning in summary.warnings:
        print(f"  warning: {warning}", file=sys.stderr)
    print(f"  verify with: vigie verify {result.path}  (or python3 verify.py inside it)")
    if args.pieces is not None:
        return _write_pieces(result.path, args.pieces)
    return EXIT_OK


def _write_pieces(bundle: Path, folder: Path) -> int:
    """The Télérecours pièces of `bundle` in `folder`: one line per file written."""
    from evidence.bundle.pieces import PiecesError, write_pieces

    if folder.exists() and not folder.is_dir():
        print(f"vigie export: --pieces {folder}: not a folder", file=sys.stderr)
        return EXIT_USAGE
    try:
        pieces = write_pieces(bundle, folder)
    except PiecesError as exc:
        print(f"vigie export: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"vigie export: --pieces {folder}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    for piece in pieces:
        label = f"pièce {piece.number}" if piece.number else "bordereau"
        pages = f"{piece.pages} page{'s' if piece.pages > 1 else ''}"
        print(f"{piece.path}: {label}, {pages}, SHA-256 {piece.sha256}")
    return EXIT_OK


def _paris(moment: str) -> str:
    return dt.datetime.fromisoformat(moment).astimezone(PARIS).strftime("%d/%m/%Y %H:%M:%S")


def _vantages_fr(count: int) -> str:
    return f"{count} point{'s' if count > 1 else ''} d'observation"


def run_corroborate(args: argparse.Namespace) -> int:
    """`vigie corroborate A.zip B.zip …`: exit 1 when a bundle does not verify, 2 on bad usage."""
    from evidence.bundle.corroborate import CorroborationError, corroborate

    def usage(message: str) -> int:
        print(f"vigie corroborate: {message}", file=sys.stderr)
        return EXIT_USAGE

    if args.min < 1:
        return usage("--min must be at least 1")
    for path in args.bundles:
        if not path.is_file():
            what = "is a folder, not a bundle (.zip)" if path.is_dir() else "no such file"
            return usage(f"{path}: {what}")
    if len(args.bundles) < args.min:
        return usage(
            f"--min {args.min} needs bundles of at least {args.min} vantages; "
            f"{len(args.bundles)} given"
        )
    try:
        result = corroborate(args.bundles, min_vantages=args.min)
    except CorroborationError as exc:
        print(f"vigie corroborate: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if len(result.vantages) < args.min:
        return usage(
            f"the bundles come from {len(result.vantages)} "
            f"vantage{'s' if len(result.vantages) > 1 else ''} only "
            f"({', '.join(result.vantages)}); --min {args.min} needs bundles of at least "
            f"{args.min} different vantages"
        )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return EXIT_OK
    among = (
        f"depuis au moins {_vantages_fr(args.min)} sur {len(result.vantages)} "
        f"({', '.join(result.vantages)})"
    )
    count = len(result.groups)
    if not count:
        print(f"Aucune panne vue {among}.")
        return EXIT_OK
    print(f"{count} panne{'s' if count > 1 else ''} vue{'s' if count > 1 else ''} {among} :")
    for group in result.groups:
        when = (
            f"depuis le {_paris(group.start)} (en cours)"
            if group.end is None
            else f"du {_paris(group.start)} au {_paris(group.end)}"
        )
        members = ", ".join(f"{m.vantage} : {m.outage_id}" for m in group.members)
        print(
            f"  {group.target_id} : {when} (heure de Paris), confirmée depuis "
            f"{_vantages_fr(len(group.vantages))} ({members})"
        )
    return EXIT_OK
