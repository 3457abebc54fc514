"""One way to open the evidence for an export, shared by `vigie export` and the status page.

Both write the bundle with the same signer, the same RFC 3161 authority and the same TSA roots,
from a read-only connection to the ledger: a bundle downloaded from the status page is the one
`vigie export --outage ID` writes (issue 16 found the download built without the TSA).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evidence.ledger.signing import NoteSigner, load_private_key

if TYPE_CHECKING:
    from config.settings import Settings
    from evidence.bundle.export import ExportRequest, ExportResult, Stamper

__all__ = ["ExportOpening", "export_with_settings", "open_export"]


@dataclasses.dataclass(frozen=True, slots=True)
class ExportOpening:
    """The signer, timestamp authority and TSA roots an export of `settings` uses."""

    signer: NoteSigner
    timestamper: Stamper | None
    tsa_name: str | None
    tsa_roots: tuple[bytes, ...]


def open_export(settings: Settings) -> ExportOpening:
    """The vantage key, and the TSA when one is configured (raises `SigningKeyError`)."""
    signer = NoteSigner(settings.vantage.name, load_private_key(settings.signing.key))
    roots: list[bytes] = []
    if settings.signing.tsa_ca is not None and settings.signing.tsa_ca.is_file():
        roots.append(settings.signing.tsa_ca.read_bytes())
    timestamper = None
    if settings.signing.tsa_url:
        from evidence.ledger.timestamp import HttpTimestamper

        timestamper = HttpTimestamper(
            settings.signing.tsa_url,
            timeout=settings.signing.tsa_timeout,
            ca_pem=roots[0] if roots else None,
            user_agent=settings.user_agent,
        )
    return ExportOpening(
        signer=signer,
        timestamper=timestamper,
        tsa_name=settings.signing.tsa_url or None,
        tsa_roots=tuple(roots),
    )


def export_with_settings(
    settings: Settings,
    out: Path,
    request: ExportRequest,
    *,
    opening: ExportOpening | None = None,
    **options: Any,
) -> ExportResult:
    """Write the bundle of `request` from the ledger of `settings`, opened read-only.

    `options` go to `export_bundle` (report, corroboration, progress...). Raises
    `SigningKeyError`, `LedgerError` or `BundleError` with a message a user can act on.
    """
    from evidence.bundle.export import export_bundle
    from evidence.ledger.core import open_ledger

    opening = opening or open_export(settings)
    password = settings.ledger.password.get_secret_value() if settings.ledger.password else None
    ledger = open_ledger(
        settings.ledger.url, vantage=settings.vantage.name, readonly=True, password=password
    )
    try:
        return export_bundle(
            ledger,
            out,
            request,
            signer=opening.signer,
            operator=settings.vantage.operator,
            artifacts_dir=settings.ledger.artifacts,
            timestamper=opening.timestamper,
            tsa_name=opening.tsa_name,
            tsa_certificates=opening.tsa_roots,
            settings=settings,
            **options,
        )
    finally:
        ledger.close()
