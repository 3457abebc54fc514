"""The observation: one probe run, the unit of evidence, and its canonical JSON form.

An observation is immutable once made; its canonical bytes are what the ledger hashes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

from config.vocabulary import Outcome

__all__ = [
    "BlockedRequest",
    "Observation",
    "StepResult",
    "TLSInfo",
    "canonical_json",
    "format_time",
    "utc_now",
]


@dataclasses.dataclass(frozen=True, slots=True)
class TLSInfo:
    """Facts about the certificate the server presented."""

    issuer: str
    subject: str
    not_after: str  # RFC 3339, UTC
    fingerprint_sha256: str
    version: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class StepResult:
    """One step of a browser journey."""

    name: str
    duration_s: float
    ok: bool
    error: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class BlockedRequest:
    """A request the read-only guard stopped before it left the probe."""

    method: str
    url: str
    # Which part of the page sent it, when known (Chromium's Sec-Fetch-Dest: "document",
    # "iframe", "worker", "sharedworker", "serviceworker", "empty" for fetch/XHR/beacon...).
    sender: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Observation:
    """Everything one probe run saw, as recorded in the ledger (field names: DESIGN.md)."""

    target_id: str
    kind: str
    vantage: str
    started_at: str
    duration_s: float
    success: bool
    outcome: Outcome
    http_status: int | None = None
    phases: dict[str, float] = dataclasses.field(default_factory=dict)
    final_url: str | None = None
    redirects: int = 0
    remote_ip: str | None = None
    tls: TLSInfo | None = None
    body_sha256: str | None = None
    body_bytes: int | None = None
    steps: tuple[StepResult, ...] = ()
    console_errors: tuple[str, ...] = ()
    blocked_requests: tuple[BlockedRequest, ...] = ()
    artifacts: dict[str, str] = dataclasses.field(default_factory=dict)
    error: str | None = None
    environment: dict[str, Any] = dataclasses.field(default_factory=dict)
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    # Browser journeys: page fingerprints of a success, or how a failed step's page compared
    # with the last success (probes/drift.py). Serialised only when not empty.
    drift: dict[str, Any] = dataclasses.field(default_factory=dict)
    seq: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The observation as plain JSON types, keyed by the DESIGN.md field names.

        Written out by hand: `dataclasses.asdict` deep-copies recursively and costs about a
        tenth of a probe's CPU budget.
        """
        tls = self.tls
        data: dict[str, Any] = {
            "target_id": self.target_id,
            "kind": self.kind,
            "vantage": self.vantage,
            "started_at": self.started_at,
            "duration_s": self.duration_s,
            "success": self.success,
            "outcome": self.outcome.value,
            "http_status": self.http_status,
            "phases": dict(self.phases),
            "final_url": self.final_url,
            "redirects": self.redirects,
            "remote_ip": self.remote_ip,
            "tls": None
            if tls is None
            else {
                "issuer": tls.issuer,
                "subject": tls.subject,
                "not_after": tls.not_after,
                "fingerprint_sha256": tls.fingerprint_sha256,
                "version": tls.version,
            },
            "body_sha256": self.body_sha256,
            "body_bytes": self.body_bytes,
            "steps": [
                {"name": s.name, "duration_s": s.duration_s, "ok": s.ok, "error": s.error}
                for s in self.steps
            ],
            "console_errors": list(self.console_errors),
            "blocked_requests": [_blocked_dict(b) for b in self.blocked_requests],
            "artifacts": dict(self.artifacts),
            "error": self.error,
            "environment": dict(self.environment),
            "timings": dict(self.timings),
            "seq": self.seq,
        }
        if self.drift:
            data["drift"] = dict(self.drift)
        return data

    def to_json(self) -> bytes:
        """Canonical JSON bytes (sorted keys, UTF-8, no spaces)."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Observation:
        """Rebuild an observation from `to_dict` output (e.g. a ledger entry)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values["outcome"] = Outcome(values["outcome"])
        if values.get("tls") is not None:
            values["tls"] = TLSInfo(**values["tls"])
        values["steps"] = tuple(StepResult(**s) for s in values.get("steps", ()))
        values["console_errors"] = tuple(values.get("console_errors", ()))
        values["blocked_requests"] = tuple(
            BlockedRequest(**b) for b in values.get("blocked_requests", ())
        )
        return cls(**values)

    def with_seq(self, seq: int) -> Observation:
        """A copy carrying its ledger sequence number."""
        return dataclasses.replace(self, seq=seq)

    @property
    def started(self) -> dt.datetime:
        """`started_at` as an aware datetime."""
        return dt.datetime.fromisoformat(self.started_at)


def canonical_json(data: Any) -> bytes:
    """Serialise `data` as canonical JSON: sorted keys, UTF-8, no insignificant spaces."""
    return json.dumps(
        data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")


def utc_now() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


def format_time(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with microseconds, e.g. ``2026-11-23T13:27:18.123456Z``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _blocked_dict(blocked: BlockedRequest) -> dict[str, str]:
    """A blocked request as JSON; `sender` only when known (older entries hash unchanged)."""
    found = {"method": blocked.method, "url": blocked.url}
    if blocked.sender is not None:
        found["sender"] = blocked.sender
    return found
