"""`vigie review OUTAGE_ID --verdict confirmed|dismissed --by NAME --reason TEXT`.

It appends one signed `review` entry to the ledger and nothing else: no entry is edited or
removed, a dismissed outage stays in the history, and a later review supersedes an earlier one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import TYPE_CHECKING, Any

from config.vocabulary import EXIT_FAILED, EXIT_OK, EXIT_USAGE, OUTAGE, REVIEW
from evidence.ledger.entries import LedgerError
from evidence.ledger.opening import OriginError, open_evidence, open_signing
from evidence.ledger.reviews import VERDICTS, Review, ReviewError, review_body
from evidence.ledger.signing import NoteSigner, SigningKeyError
from exporter.plumbing import LoadSettings, add_command
from exporter.plumbing import command_settings as _command_settings

if TYPE_CHECKING:
    from config.settings import Settings

__all__ = ["add_commands", "append_review", "find_outage", "record_review", "run_review"]


def find_outage(ledger: Any, outage_id: str) -> dict[str, Any] | None:
    """The latest recorded event (opened or closed) of outage `outage_id`, or None."""
    marker = f'"outage_id":{json.dumps(outage_id, ensure_ascii=False)}'.encode()
    found = None
    for row in ledger.iter_rows():
        if row.type == OUTAGE and marker in row.body:
            entry = json.loads(row.body)
            if entry.get("outage_id") == outage_id:
                found = entry
    return found


def record_review(
    ledger: Any, signer: NoteSigner, outage_id: str, *, verdict: str, by: str, reason: str
) -> Review:
    """Sign a review of `outage_id` with `signer` and append it to `ledger`.

    ReviewError for bad input or an id no outage event of the ledger bears.
    """
    event = find_outage(ledger, outage_id)
    if event is None:
        raise ReviewError(f"no outage with id {outage_id!r} in the ledger (see `vigie outages`)")
    body = review_body(
        signer,
        outage_id=outage_id,
        target_id=str(event["target_id"]),
        verdict=verdict,
        by=by,
        reason=reason,
        at=dt.datetime.now(dt.UTC),
    )
    [seq] = ledger.append([(REVIEW, body)])
    return Review.of({**body, "seq": seq})


def append_review(
    settings: Settings, outage_id: str, *, verdict: str, by: str, reason: str
) -> Review:
    """`record_review` in the ledger of `settings`, signed with its vantage key."""
    signing = open_signing(settings)  # a bad key is said before the ledger is opened
    with open_evidence(settings, readonly=False, signing=signing) as evidence:
        return record_review(
            evidence.ledger, signing.signer, outage_id, verdict=verdict, by=by, reason=reason
        )


def run_review(args: argparse.Namespace) -> int:
    """Handler of `vigie review`."""
    settings = _command_settings(args)
    try:
        review = append_review(
            settings, args.outage_id, verdict=args.verdict, by=args.by, reason=args.reason
        )
    except (ReviewError, OriginError) as exc:
        print(f"vigie review: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SigningKeyError as exc:
        print(f"vigie review: error: signing key {settings.signing.key}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (LedgerError, OSError) as exc:
        print(f"vigie review: cannot write to the ledger: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"Vérification enregistrée au registre (entrée n° {review.seq}, signée) : "
        f"panne {review.outage_id} {review.text_fr}"
    )
    return EXIT_OK


def add_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], load_settings: LoadSettings
) -> None:
    """Add `vigie review` to the `vigie` parser (handler in ``args.handler``)."""
    parser = add_command(
        subparsers,
        "review",
        load_settings,
        help="record a person's review of an outage (a signed ledger entry)",
        description="Append a signed review of an outage to the ledger: 'confirmed' (a person "
        "looked at the evidence and the outage is real) or 'dismissed' (not an outage of the "
        "site, e.g. an obsolete selector; the outage stays in the history, marked dismissed). "
        "Nothing is edited or removed; a later review supersedes an earlier one.",
    )
    parser.add_argument("outage_id", metavar="OUTAGE_ID", help="as listed by `vigie outages`")
    parser.add_argument("--verdict", required=True, choices=VERDICTS)
    parser.add_argument("--by", required=True, metavar="NAME", help="who reviewed it")
    parser.add_argument("--reason", required=True, metavar="TEXT", help="why (in French)")
    parser.set_defaults(handler=run_review)
