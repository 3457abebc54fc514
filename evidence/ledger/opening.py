"""Settings -> the opened evidence: the ledger, the artifact store, the vantage's signer and the
RFC 3161 authority with its roots.

The one place that turns the `ledger:` and `signing:` sections of vigie.yaml into open objects,
and that decides the log's origin (the first line of every checkpoint, and the signer's key
name: C2SP tlog-checkpoint asks for a schema-less URL, and the checkpoint's signature must be
by a key of that name). A new ledger takes `vantage.origin`, else `default_origin`; a ledger
that has checkpoints keeps the origin of its first one for good (see `settle_origin`).
the service, every command (`vigie export`, `verify`, `outages`, `attestation`, `dashboards
push`) and the status page's download open the evidence here, so a bundle downloaded from the
status page is signed and stamped exactly as `vigie export` signs and stamps it. It opens; it
never appends an entry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from evidence.ledger.artifacts import FileArtifactStore
from evidence.ledger.backends import open_ledger
from evidence.ledger.checkpoint import Stamper
from evidence.ledger.entries import NoLedgerYetError, sqlite_path
from evidence.ledger.signing import NoteSigner, keygen, load_private_key

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from config.settings import Settings
    from evidence.ledger.core import SqlLedger

__all__ = [
    "OpenedEvidence",
    "OriginError",
    "Signing",
    "default_origin",
    "ledger_origin",
    "ledger_password",
    "open_evidence",
    "open_signing",
    "settle_origin",
]

_DEFAULT_PORTS = {"https": 443, "http": 80}


class OriginError(ValueError):
    """A configured origin that differs from the one a ledger has signed as (bad input)."""


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


def default_origin(settings: Settings) -> str:
    """The origin of a new ledger when `vantage.origin` is not set.

    With `public_url` (``https://vigie.asso.org/paris/``): its host (and port unless the
    scheme's default), its path and the vantage name, as a schema-less URL
    (``vigie.asso.org/paris/paris-1``), unique in the world as the C2SP specs recommend. Without
    it, the bare vantage name: no address of the vantage is known, and a made-up domain would
    claim a name that is not the association's.
    """
    name = settings.vantage.name
    if not settings.public_url:
        return name
    url = urlsplit(settings.public_url)
    host = url.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = url.port
    if port is not None and port != _DEFAULT_PORTS.get(url.scheme):
        host = f"{host}:{port}"
    return "/".join(part for part in (host, url.path.strip("/"), name) if part)


def settle_origin(settings: Settings, begun: str | None) -> str:
    """The origin to sign as: `begun` (the ledger's first checkpoint's) when there is one.

    A log's origin never changes: witnesses, tlog-proofs and published keys name it, and a new
    name would fork the log's identity. So a configured `vantage.origin` that differs from
    `begun` raises `OriginError` naming both, rather than being ignored or obeyed.
    """
    wanted = settings.vantage.origin
    if begun is None:
        return wanted or default_origin(settings)
    if wanted is not None and wanted != begun:
        raise OriginError(
            f"vantage.origin is {wanted!r}, but the ledger has signed its checkpoints as "
            f"{begun!r} since its first one; a log keeps its origin for good (remove "
            f"vantage.origin, or set it to {begun!r})"
        )
    return begun


def ledger_origin(settings: Settings) -> str:
    """The origin of `settings`' ledger: its first checkpoint's, else the one a new ledger gets.

    Opens the ledger read-only for a moment (a SQLite file that does not exist yet, or a
    PostgreSQL database without the ledger's tables, has no checkpoint). Raises `OriginError`,
    or the ledger's own error when it cannot be read.
    """
    path = sqlite_path(settings.ledger.url)
    if path is not None and not path.is_file():
        return settle_origin(settings, None)
    try:
        ledger = open_ledger(settings.ledger.url, readonly=True, password=ledger_password(settings))
    except NoLedgerYetError:  # an empty PostgreSQL database: `vigie run` creates the ledger
        return settle_origin(settings, None)
    try:
        return settle_origin(settings, ledger.first_checkpoint_origin())
    finally:
        ledger.close()


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
    origin: str | None = None,
) -> Signing:
    """The vantage key (created when `create_key` and missing), and the TSA when configured.

    The signer signs as `origin`, by default the ledger's (`ledger_origin`). `stamper` wraps
    the timestamp authority (the service counts its failures). Raises `SigningKeyError` (or
    OSError) when the key cannot be read, `OriginError` for a conflicting `vantage.origin`.
    """
    name = origin if origin is not None else ledger_origin(settings)
    signer = NoteSigner(name, _private_key(settings, create_key=create_key))
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


def _check_signer(settings: Settings, ledger: SqlLedger, signer: NoteSigner) -> None:
    """OriginError unless `signer` signs as the ledger's origin (`settle_origin`)."""
    origin = settle_origin(settings, ledger.first_checkpoint_origin())
    if signer.name != origin:
        raise OriginError(f"the signer signs as {signer.name!r}, the ledger's origin is {origin!r}")


def open_evidence(
    settings: Settings,
    *,
    readonly: bool = True,
    signing: Signing | bool = False,
) -> OpenedEvidence:
    """Open the ledger (read-only unless `readonly` is False) and artifact store of `settings`.

    `signing`: True opens the signer and TSA too (`open_signing`); a `Signing` already opened
    (to report a bad key before anything else) is used as it is, once its origin is checked
    against the ledger's. Raises the ledger's error (`LedgerError`, OSError), the key's
    (`SigningKeyError`) or `OriginError`, with their own messages.
    """
    opened = open_signing(settings) if signing is True else signing or None
    ledger = open_ledger(
        settings.ledger.url,
        vantage=settings.vantage.name,
        readonly=readonly,
        password=ledger_password(settings),
    )
    if opened is not None:
        try:
            _check_signer(settings, ledger, opened.signer)
        except BaseException:
            ledger.close()
            raise
    return OpenedEvidence(ledger, FileArtifactStore(settings.ledger.artifacts), opened)
