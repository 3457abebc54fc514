"""The words every layer shares: ledger entry types, the Paris time zone, the exit codes.

Constants only, imported from everywhere: this module imports nothing of Vigie. (Probe outcomes
are the `Outcome` enum of `probes/observation.py`, the Observation's own vocabulary.)
"""

from __future__ import annotations

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
]

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
