"""What a configuration would make an evidence report lack, said when the service starts and
by `vigie config check`, not first discovered by a lawyer in the PDF.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from config.settings import Settings

__all__ = ["dossier_warnings"]


def dossier_warnings(
    settings: Settings, clock: Callable[[], dict[str, Any]] | None = None
) -> list[str]:
    """One line per gap the reports would show; `clock`: reads the clock's sync state (None:
    not checked, e.g. by `vigie config check` on another machine)."""
    warnings = []
    if not settings.vantage.operator.strip():
        warnings.append(
            "vantage.operator is empty: evidence reports will say 'Opérateur : non renseigné'; "
            "set who runs this vantage (association or person) in the configuration"
        )
    if clock is not None and clock().get("synchronized") is False:
        warnings.append(
            "the system clock is not synchronised (NTP): every observation records it and the "
            "evidence report says so; enable time synchronisation (timedatectl set-ntp true)"
        )
    return warnings
