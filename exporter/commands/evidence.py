"""`vigie keygen` and `vigie verify`: the evidence subcommands of the `vigie` CLI.

`keygen` never overwrites a key; `verify` only reads (the ledger is opened read-only) and
exits 1 naming the first bad entry, so scripts and people can rely on its exit code. The
exit codes, `add_command` and `command_settings` serve the other subcommands too.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from config.vocabulary import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from exporter.plumbing import LoadSettings, add_command, command_settings

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from config.settings import Settings

__all__ = [
    "add_commands",
    "public_key_lines",
    "run_keygen",
    "run_verify",
]


def add_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    load_settings: LoadSettings,
    *,
    parents: Sequence[argparse.ArgumentParser] = (),
) -> None:
    """Add `keygen` and `verify` to the `vigie` parser (handler in ``args.handler``).

    `parents` may carry the common ``--config`` option; without it, each command adds its own.
    """

    keygen = add_command(
        subparsers,
        "keygen",
        load_settings,
        parents=parents,
        help="create the vantage's Ed25519 signing key (never overwrites one)",
        description="Create the Ed25519 key that signs this vantage's checkpoints. The "
        "private key is written with mode 0600, the public key beside it as <key>.pub.",
    )
    keygen.add_argument(
        "--out", type=Path, metavar="PATH", help="where to write it (default: signing.key)"
    )
    keygen.add_argument(
        "--show",
        action="store_true",
        help="write nothing: print the public key and fingerprint of the existing key",
    )
    keygen.set_defaults(handler=run_keygen)

    verify = add_command(
        subparsers,
        "verify",
        load_settings,
        parents=parents,
        help="verify a ledger or an evidence bundle (zip): exit 1 if anything was altered",
        description="Recompute every entry's hash and the Merkle tree, check every "
        "checkpoint's root and signature, every timestamp token and every artifact; for a "
        "bundle (.zip), also the signed manifest and every file in it. Prints how much was "
        "verified, or the first bad entry or file and what is wrong with it (exit 1).",
    )
    verify.add_argument(
        "path",
        nargs="?",
        metavar="PATH",
        help="ledger file or URL (sqlite:///..., postgresql://...) or an evidence bundle "
        "(.zip); default: ledger.url",
    )
    verify.add_argument(
        "--public-key",
        type=Path,
        metavar="FILE",
        help="the vantage's public key (PEM, or the key file itself; default: signing.key)",
    )
    verify.add_argument(
        "--artifacts", type=Path, metavar="DIR", help="artifact store (default: ledger.artifacts)"
    )
    verify.add_argument(
        "--checkpoints",
        type=Path,
        metavar="FILE",
        help="outside copy of the checkpoints (default: <database>.checkpoints)",
    )
    verify.add_argument(
        "--tsa-cert",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="trusted TSA root certificate (PEM/DER) to chain timestamp tokens to (repeatable)",
    )
    verify.add_argument(
        "--witness",
        action="append",
        default=[],
        metavar="VKEY",
        help="a witness's key (bundle): the witness policy (repeatable; docs/witnesses.md)",
    )
    verify.add_argument(
        "--witnesses-required",
        type=int,
        default=0,
        metavar="N",
        help="how many of the --witness keys must have cosigned (bundle; default 0)",
    )
    verify.add_argument(
        "--workers", type=int, default=None, metavar="N", help="processes (default: CPU count)"
    )
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.set_defaults(handler=run_verify)


def run_keygen(args: argparse.Namespace) -> int:
    """`vigie keygen [--out PATH] [--show]`."""
    from evidence.ledger.entries import LedgerError
    from evidence.ledger.opening import OriginError, ledger_origin
    from evidence.ledger.signing import (
        KeyExistsError,
        SigningKeyError,
        keygen,
        load_private_key,
        public_key_path,
    )

    settings = command_settings(args)
    path: Path = args.out or settings.signing.key
    try:  # the key signs as the log's origin: a signed-note key name is part of its key ID
        origin = ledger_origin(settings)
    except OriginError as exc:
        print(f"vigie keygen: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LedgerError as exc:
        print(f"vigie keygen: {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        if args.show:
            if not path.is_file():
                print(
                    f"vigie keygen: {path}: no such key (create it with `vigie keygen`)",
                    file=sys.stderr,
                )
                return EXIT_USAGE
            key = load_private_key(path)
        else:
            key = keygen(path)
    except KeyExistsError as exc:  # bad input: the path names a key already
        print(f"vigie keygen: {exc} (`vigie keygen --show` prints its public key)", file=sys.stderr)
        return EXIT_USAGE
    except SigningKeyError as exc:
        print(f"vigie keygen: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if not args.show:
        print(f"signing key written to {path} (mode 0600): keep it secret, back it up offline")
        print(f"public key file: {public_key_path(path)}")
    print(public_key_lines(origin, key.public_key()), end="")
    return EXIT_OK


def public_key_lines(origin: str, public: Ed25519PublicKey) -> str:
    """The public key as PEM, its verifier key and its fingerprint (as the report prints it),
    with why the operator publishes the fingerprint."""
    from cryptography.hazmat.primitives import serialization

    from evidence.ledger.signing import NoteVerifier, key_fingerprint, raw_public_key

    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
    verifier = NoteVerifier(origin, public)
    return (
        f"public key (PEM):\n{pem}"
        f"verifier key (give it to whoever checks this vantage's evidence): {verifier.vkey()}\n"
        f"key fingerprint (SHA-256): {key_fingerprint(raw_public_key(public))}\n"
        "Publish this fingerprint where readers can find it without the evidence (your "
        "website, a letter, a bailiff's record; the status page shows it too): every report "
        "asks its reader to compare the fingerprint it prints with one obtained another way.\n"
    )


def run_verify(args: argparse.Namespace) -> int:
    """`vigie verify [PATH]`: exit 0 when everything verifies, 1 at the first problem."""
    settings = command_settings(args)
    target = args.path or settings.ledger.url
    if args.public_key is not None and not args.public_key.is_file():
        print(f"vigie verify: --public-key {args.public_key}: no such file", file=sys.stderr)
        return EXIT_USAGE
    if str(target).lower().endswith(".zip"):
        return _verify_bundle(args, Path(target))
    return _verify_ledger(args, settings, target)


def _verify_bundle(args: argparse.Namespace, path: Path) -> int:
    """An evidence bundle (`vigie export`): `evidence.bundle.verify.verify_bundle`."""
    from evidence.bundle.verify import print_bundle_report, verify_bundle_cli

    report = verify_bundle_cli(args, path)
    if report is None:
        return EXIT_USAGE
    print_bundle_report(report, as_json=args.json)
    return EXIT_OK if report.ok else EXIT_FAILED


def _default_public_key(settings: Settings) -> Path | None:
    from evidence.ledger.signing import public_key_path

    key = settings.signing.key
    for candidate in (public_key_path(key), key):
        if candidate.is_file():
            return candidate
    return None


def _verify_ledger(args: argparse.Namespace, settings: Settings, target: str) -> int:
    from evidence.ledger.checkpoint import default_copy_path
    from evidence.ledger.entries import sqlite_path
    from evidence.ledger.opening import ledger_password
    from evidence.ledger.signing import SigningKeyError
    from evidence.ledger.verify import VerifyReport, verify_ledger

    configured = args.path is None or args.path == settings.ledger.url
    public_key = args.public_key or (_default_public_key(settings) if configured else None)
    artifacts = args.artifacts or (settings.ledger.artifacts if configured else None)
    if artifacts is not None and not artifacts.is_dir():
        if args.artifacts is not None:
            print(f"vigie verify: no artifact directory at {artifacts}", file=sys.stderr)
            return EXIT_USAGE
        artifacts = None
    if args.checkpoints is not None and not args.checkpoints.is_file():
        print(f"vigie verify: no checkpoint copy at {args.checkpoints}", file=sys.stderr)
        return EXIT_USAGE
    copy = args.checkpoints or default_copy_path(
        target, settings.ledger.artifacts if configured else None
    )
    password = ledger_password(settings)
    path = sqlite_path(target)
    if path is not None and not path.is_file():
        print(f"vigie verify: no ledger at {path}", file=sys.stderr)
        return EXIT_USAGE
    try:
        certificates = [cert.read_bytes() for cert in args.tsa_cert]
    except OSError as exc:
        print(f"vigie verify: cannot read a TSA certificate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = verify_ledger(
            target,
            public_key=public_key,
            artifacts_dir=artifacts,
            checkpoint_copy=copy if copy is not None and copy.exists() else None,
            tsa_certificates=certificates,
            workers=args.workers,
            password=password,
        )
    except SigningKeyError as exc:
        report = VerifyReport(source=str(target))
        report.fail(None, str(exc))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    else:
        _print_report(report)
    return EXIT_OK if report.ok else EXIT_FAILED


def _print_report(report: Any) -> None:
    # The verdict of a failed verification is the one line on stderr; the rest is the report.
    print(f"{report.source}: {report.summary()}", file=sys.stdout if report.ok else sys.stderr)
    if report.ok:
        if report.last_checkpoint_seq is not None:
            print(
                f"  last checkpoint at entry {report.last_checkpoint_seq}; "
                f"{report.unsigned_tail} later entries not yet covered by a checkpoint"
            )
        if report.root:
            print(f"  tree root: {report.root}")
        if report.copied_checkpoints:
            print(f"  {report.copied_checkpoints} checkpoints match the outside copy")
        if report.key and report.checkpoints:
            trust = "given key" if report.key_trusted else "key recorded in the ledger"
            print(f"  signatures checked with the {trust}: {report.key}")
    for warning in report.warnings:
        print(f"  warning: {warning}")
