"""Settings -> the opened evidence: the ledger, the artifact store, the vantage's signer and the
RFC 3161 authority with its roots.

The one place that turns the `ledger:` and `signing:` sections of vigie.yaml into open objects:
the service, every command (`vigie export`, `verify`, `outages`, `attestation`, `dashboards
push`) and the status page's download open the evidence here, so a bundle downloaded from the
status page is signed and stamped exactly as `vigie export` signs and stamps it. It opens; it
never appends an entry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from evidence.ledger.artifacts import FileArtifactStore
from evidence.ledger.backends import open_ledger
from evidence.ledger.checkpoint import Stamper
from evidence.ledger.signing import NoteSigner, keygen, load_private_key

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from config.settings import Settings
    from evidence.ledger.core import SqlLedger

__all__ = [
    "OpenedEvidence",
    "Signing",
    "ledger_password",
    "open_evidence",
    "open_signing",
]


@dataclasses.dataclass(frozen=True, slots=True)
class Signing:
    """The vantage's signer, and the timestamp authority and its roots when one is configured."""

    signer: NoteSigner
    timestamper: Stamper | None
    tsa_name: str | None
    tsa_roots: tuple[bytes, ...]


@dataclasses.dataclass(slots=True)
class OpenedEvidence:
    """The evidence of one vantage, opened: close it (or use ``with``) when done."""

    ledger: SqlLedger
    artifacts: FileArtifactStore
    signing: Signing | None = None

    def close(self) -> None:
        """Close the ledger (idempotent)."""
        self.ledger.close()

    def __enter__(self) -> OpenedEvidence:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ledger_password(settings: Settings) -> str | None:
    """The ledger password of `settings` (``ledger.password`` or VIGIE_LEDGER__PASSWORD)."""
    password = settings.ledger.password
    return password.get_secret_value() if password is not None else None


def _private_key(settings: Settings, *, create_key: bool) -> Ed25519PrivateKey:
    path = settings.signing.key
    if create_key and not path.exists():
        return keygen(path)
    return load_private_key(path)


def open_signing(
    settings: Settings,
    *,
    create_key: bool = False,
    stamper: Callable[[Stamper], Stamper] | None = None,
) -> Signing:
    """The vantage key (created when `create_key` and missing), and the TSA when configured.

    `stamper` wraps the timestamp authority (the service counts its failures). Raises
    `SigningKeyError` (or OSError) when the key cannot be read.
    """
    signer = NoteSigner(settings.vantage.name, _private_key(settings, create_key=create_key))
    roots: list[bytes] = []
    if settings.signing.tsa_ca is not None and settings.signing.tsa_ca.is_file():
        roots.append(settings.signing.tsa_ca.read_bytes())
    timestamper: Stamper | None = None
    if settings.signing.tsa_url:
        # Imported only with a TSA: X.509 and RFC 3161 parsing cost the service ~9 MB.
        from evidence.ledger.timestamp import HttpTimestamper

        timestamper = HttpTimestamper(
            settings.signing.tsa_url,
            timeout=settings.signing.tsa_timeout,
            ca_pem=roots[0] if roots else None,
            user_agent=settings.user_agent,
        )
        if stamper is not None:
            timestamper = stamper(timestamper)
    return Signing(
        signer=signer,
        timestamper=timestamper,
        tsa_name=settings.signing.tsa_url or None,
        tsa_roots=tuple(roots),
    )


def open_evidence(
    settings: Settings,
    *,
    readonly: bool = True,
    signing: Signing | bool = False,
) -> OpenedEvidence:
    """Open the ledger (read-only unless `readonly` is False) and artifact store of `settings`.

    `signing`: True opens the signer and TSA too (`open_signing`); a `Signing` already opened
    (to report a bad key before anything else) is used as it is. Raises the ledger's error
    (`LedgerError`, OSError) or the key's (`SigningKeyError`), with their own messages.
    """
    opened = open_signing(settings) if signing is True else signing or None
    ledger = open_ledger(
        settings.ledger.url,
        vantage=settings.vantage.name,
        readonly=readonly,
        password=ledger_password(settings),
    )
    return OpenedEvidence(ledger, FileArtifactStore(settings.ledger.artifacts), opened)
