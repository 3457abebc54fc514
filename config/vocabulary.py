"""The words every layer shares: probe outcomes, ledger entry types, the Paris time zone, the
exit codes.

Constants only, imported from everywhere: this module imports nothing of Vigie.
"""

from __future__ import annotations

import enum
from zoneinfo import ZoneInfo

__all__ = [
    "CHECKPOINT",
    "CLOCK_JUMP",
    "COSIGNATURE",
    "DRIFT",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "GAP",
    "OBSERVATION",
    "OUTAGE",
    "PARIS",
    "REVIEW",
    "TIMESTAMP",
    "TSA_FAILURE",
    "VANTAGE",
    "WITNESS_REFUSAL",
    "Outcome",
]


# Why a check succeeded or failed (the `outcome` of an Observation, DESIGN.md).
class Outcome(enum.StrEnum):
    """Why a check succeeded or failed; one class per distinguishable cause."""

    OK = "ok"
    DNS_ERROR = "dns_error"
    CONNECT_ERROR = "connect_error"
    TLS_ERROR = "tls_error"
    TIMEOUT = "timeout"
    HTTP_STATUS = "http_status"
    CONTENT_MISMATCH = "content_mismatch"
    BROWSER_ERROR = "browser_error"
    STEP_FAILED = "step_failed"
    TOO_LARGE = "too_large"
    VANTAGE_OFFLINE = "vantage_offline"
    PROTOCOL_ERROR = "protocol_error"
    REDIRECT_LOOP = "redirect_loop"
    BLOCKED = "blocked"
    # A journey step failed on a page that served normally but changed shape since the last
    # successful run: the journey needs updating; not an outage of the site.
    JOURNEY_DRIFT = "journey_drift"


# The time zone of the people who read Vigie's pages and reports (the law's too).
PARIS = ZoneInfo("Europe/Paris")

# Ledger entry types (the "type" key of every entry).
OBSERVATION = "observation"  # one probe run (probes/observation.py)
CHECKPOINT = "checkpoint"  # a signed tree head
TIMESTAMP = "timestamp"  # an RFC 3161 token over a checkpoint
TSA_FAILURE = "tsa_failure"  # the timestamp authority did not answer
CLOCK_JUMP = "clock_jump"  # the wall clock moved against the monotonic clock
GAP = "gap"  # {"from", "to", "duration_s", "reason"}: Vigie was not running
OUTAGE = "outage"  # an outage event (opened / closed / degraded...)
VANTAGE = "vantage"  # {"event": "offline" | "online", "at", "seqs"}
# {"event": "started" | "ended", "target_id", "at", "observation"}: a journey needed updating
# (journey_drift) from `started` to `ended`; the site was not watched by it meanwhile.
DRIFT = "drift"
REVIEW = "review"  # a person's signed verdict on an outage (evidence/ledger/reviews.py)
COSIGNATURE = "cosignature"  # {checkpoint_seq, witness, cosignature}: a witness cosigned
WITNESS_REFUSAL = "witness_refusal"  # a correctly signed checkpoint a witness refused

# Exit codes of every `vigie` command (and of `python -m exporter.central`).
EXIT_OK = 0
EXIT_FAILED = 1  # a failed verification or check
EXIT_USAGE = 2  # bad input: a bad option, file or value
