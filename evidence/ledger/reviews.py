"""Human review of outages: signed `review` ledger entries (confirmed or dismissed) and their state.

A review is appended, never edited: a later review supersedes an earlier one in the shown state,
and both stay in the ledger. Each is a C2SP signed note by the vantage key over its own fields.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

from config.vocabulary import PARIS, REVIEW
from evidence.ledger.signing import NoteError, NoteSigner, NoteVerifier, open_note
from probes.observation import canonical_json, format_time

__all__ = [
    "FIELDS",
    "MAX_TEXT",
    "VERDICTS",
    "Review",
    "ReviewError",
    "check_review",
    "review_body",
    "review_required",
    "review_state",
    "reviews_from_entries",
]

VERDICTS = ("confirmed", "dismissed")
FIELDS = ("at", "by", "outage_id", "reason", "target_id", "verdict")  # what the note signs
MAX_TEXT = 2000


class ReviewError(ValueError):
    """A review cannot be made (bad input) or does not verify (altered or forged)."""


def _clean(name: str, value: str, limit: int) -> str:
    text = " ".join(value.split())
    if not text:
        raise ReviewError(f"--{name} must not be empty")
    if len(text) > limit:
        raise ReviewError(f"--{name} is too long ({len(text)} characters, at most {limit})")
    return text


def review_body(
    signer: NoteSigner,
    *,
    outage_id: str,
    target_id: str,
    verdict: str,
    by: str,
    reason: str,
    at: dt.datetime,
) -> dict[str, Any]:
    """The body of a `review` entry: its fields, and a signed note over them by `signer`."""
    if verdict not in VERDICTS:
        raise ReviewError(f"--verdict must be confirmed or dismissed, not {verdict!r}")
    fields = {
        "at": format_time(at),
        "by": _clean("by", by, 200),
        "outage_id": outage_id,
        "reason": _clean("reason", reason, MAX_TEXT),
        "target_id": target_id,
        "verdict": verdict,
    }
    note = signer.sign(_note_text(fields))
    return {**fields, "key": signer.verifier.vkey(), "note": note}


def _note_text(fields: Mapping[str, Any]) -> str:
    return "vigie-review\n" + canonical_json({k: fields[k] for k in FIELDS}).decode() + "\n"


def check_review(body: Mapping[str, Any], verifier: NoteVerifier | None = None) -> NoteVerifier:
    """Check a review entry's note against its fields and `verifier` (else its own key).

    Returns the key that signed it; raises ReviewError when a field was edited after signing,
    the note is malformed, or the signature is not `verifier`'s.
    """
    missing = [k for k in (*FIELDS, "key", "note") if not isinstance(body.get(k), str)]
    if missing:
        raise ReviewError(f"malformed review entry: missing {', '.join(missing)}")
    if body["verdict"] not in VERDICTS:
        raise ReviewError(f"malformed review entry: verdict {body['verdict']!r}")
    try:
        declared = NoteVerifier.parse(str(body["key"]))
        key = verifier or declared
        if verifier is not None and declared.vkey() != verifier.vkey():
            raise ReviewError(
                f"the review is signed with another key ({declared.vkey()}) than the vantage's "
                f"({verifier.vkey()}): forged review"
            )
        text = open_note(str(body["note"]), key)
    except NoteError as exc:
        raise ReviewError(f"forged or altered review: {exc}") from None
    if text != _note_text(body):
        raise ReviewError(
            "the review's fields differ from what its signature covers: altered review"
        )
    return key


@dataclasses.dataclass(frozen=True, slots=True)
class Review:
    """One review of one outage, as recorded."""

    outage_id: str
    target_id: str
    verdict: str
    by: str
    reason: str
    at: str
    seq: int | None = None

    @classmethod
    def of(cls, entry: Mapping[str, Any]) -> Review:
        """From a decoded `review` entry."""
        return cls(
            outage_id=str(entry["outage_id"]),
            target_id=str(entry.get("target_id", "")),
            verdict=str(entry["verdict"]),
            by=str(entry["by"]),
            reason=str(entry["reason"]),
            at=str(entry["at"]),
            seq=entry.get("seq"),
        )

    @property
    def text_fr(self) -> str:
        """The review state as users read it."""
        when = _paris(self.at)
        if self.verdict == "confirmed":
            return f"constatée et vérifiée par {self.by} le {when} : {self.reason}"
        return f"écartée : {self.reason} (par {self.by} le {when})"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return dataclasses.asdict(self)


def _paris(value: str) -> str:

    moment = dt.datetime.fromisoformat(value)
    return moment.astimezone(PARIS).strftime("%d/%m/%Y %H:%M")


def reviews_from_entries(entries: Iterable[Mapping[str, Any]]) -> dict[str, list[Review]]:
    """Reviews by outage id, oldest first, from decoded ledger entries (others skipped)."""
    found: dict[str, list[Review]] = {}
    for entry in entries:
        if entry.get("type") == REVIEW:
            review = Review.of(entry)
            found.setdefault(review.outage_id, []).append(review)
    return found


def review_state(reviews: Iterable[Review] | None, *, required: bool = False) -> dict[str, Any]:
    """The review state of one outage for exports: the latest review decides.

    `state`: ``confirmed``, ``dismissed``, or ``unreviewed`` (``pending`` when a review is
    required before the outage counts as confirmed evidence).
    """
    history = list(reviews or ())
    if not history:
        state = "pending" if required else "unreviewed"
        text = "en attente de vérification" if required else "non vérifiée"
        return {"state": state, "text": text, "reviews": []}
    last = history[-1]
    return {
        "state": last.verdict,
        "text": last.text_fr,
        "by": last.by,
        "reason": last.reason,
        "at": last.at,
        "reviews": [r.to_dict() for r in history],
    }


def review_required(settings: Any, target_id: str) -> bool:
    """Whether outages of `target_id` must be reviewed before exports call them confirmed."""
    if not getattr(getattr(settings, "outages", None), "review_core", False):
        return False
    return any(t.id == target_id and t.core for t in getattr(settings, "targets", ()))


def decode_review(data: bytes) -> dict[str, Any] | None:
    """A `review` entry decoded from its stored bytes (None for other entry types)."""
    if b'"type":"review"' not in data:
        return None
    entry: dict[str, Any] = json.loads(data)
    return entry if entry.get("type") == REVIEW else None
