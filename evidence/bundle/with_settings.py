"""Bundles and attestations written from Settings: what `vigie export`, `vigie attestation` and
the status page's downloads share, the evidence opened the one way (`open_evidence`).

The ledger is opened read-only; a bundle or PDF is written to a new file and never changes
evidence.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evidence.ledger.artifacts import ArtifactError
from evidence.ledger.opening import OpenedEvidence, Signing, open_evidence

if TYPE_CHECKING:
    from config.settings import Settings
    from evidence.bundle.attestation import Attestation, TargetInfo, Window
    from evidence.bundle.model import ExportRequest, ExportResult

__all__ = ["chosen_targets", "export_with_settings", "write_attestation"]


def chosen_targets(settings: Settings, ids: list[str], kind: str | None) -> list[TargetInfo]:
    """The targets named by --target and --kind (ValueError naming what is unknown)."""
    from evidence.bundle.attestation import TargetInfo

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
    from evidence.bundle.attestation import build_attestation
    from evidence.bundle.attestation_pdf import render_attestation

    moment = now or dt.datetime.now(dt.UTC)
    with open_evidence(settings) as evidence:
        attestation = build_attestation(
            evidence.ledger,
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
            settings, evidence, targets, windows, path=out.with_suffix(".zip"), now=moment
        )
    if bundle is not None:
        digest = hashlib.sha256(bundle.read_bytes()).hexdigest()
        attestation = dataclasses.replace(
            attestation, bundle_name=bundle.name, bundle_sha256=digest
        )
    store = evidence.artifacts

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
    evidence: OpenedEvidence,
    targets: list[TargetInfo],
    windows: list[Window],
    *,
    path: Path,
    now: dt.datetime,
) -> Path | None:
    """The signed bundle of the period holding every window, for these targets only."""
    from evidence.bundle.model import BundleError, ExportRequest
    from evidence.ledger.opening import open_signing

    start = min(w.start for w in windows)
    end = min(max(w.end for w in windows), now)
    path.unlink(missing_ok=True)  # never leave an older bundle beside a new attestation
    if end <= start:
        return None
    # The same signer, RFC 3161 authority and TSA roots as `vigie export` and the downloads.
    evidence.signing = evidence.signing or open_signing(settings)
    try:
        _export(
            settings,
            evidence,
            path,
            ExportRequest(start, end, tuple(t.id for t in targets)),
            progress=False,
            now=now,
        )
    except BundleError as exc:
        print(f"vigie attestation: no evidence bundle: {exc}", file=sys.stderr)
        return None
    return path


def export_with_settings(
    settings: Settings,
    out: Path,
    request: ExportRequest,
    *,
    signing: Signing | None = None,
    **options: Any,
) -> ExportResult:
    """Write the bundle of `request` from the ledger of `settings`, opened read-only.

    `signing` (the vantage key and TSA, `open_signing`) is opened here when not given.
    `options` go to `export_bundle` (report, corroboration, progress...). Raises
    `SigningKeyError`, `LedgerError` or `BundleError` with a message a user can act on.
    """
    with open_evidence(settings, signing=signing or True) as evidence:
        return _export(settings, evidence, out, request, **options)


def _export(
    settings: Settings,
    evidence: OpenedEvidence,
    out: Path,
    request: ExportRequest,
    **options: Any,
) -> ExportResult:
    from evidence.bundle.export import export_bundle

    signing = evidence.signing
    assert signing is not None
    return export_bundle(
        evidence.ledger,
        out,
        request,
        signer=signing.signer,
        operator=settings.vantage.operator,
        artifacts_dir=settings.ledger.artifacts,
        timestamper=signing.timestamper,
        tsa_name=signing.tsa_name,
        tsa_certificates=signing.tsa_roots,
        settings=settings,
        **options,
    )
