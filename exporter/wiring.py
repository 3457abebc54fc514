"""Evidence wiring for the service: opens the ledger, artifact store and checkpointer.

Temporary stage: an in-memory sink while the ledger is being built (replaced before release).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from typing import Any

from exporter.config import Settings
from exporter.metrics import Metrics

__all__ = ["Evidence", "open_evidence"]


class _MemorySink:
    def __init__(self) -> None:
        self.entries: list[tuple[str, Mapping[str, Any]]] = []

    async def append(self, entry_type: str, body: Mapping[str, Any]) -> int:
        self.entries.append((entry_type, body))
        return len(self.entries) - 1


@dataclasses.dataclass
class Evidence:
    """The evidence side of a running service."""

    sink: Any
    artifacts: Any
    description: str

    def bind_metrics(self, metrics: Metrics) -> None:
        """Let the evidence side publish its own metrics."""

    def background_tasks(self, stopping: asyncio.Event) -> list[asyncio.Task[None]]:
        """Tasks that run beside the scheduler (checkpoints)."""
        return []

    async def aclose(self) -> None:
        """Flush and close."""


async def open_evidence(settings: Settings) -> Evidence:
    """Open the ledger named in `settings`."""
    return Evidence(sink=_MemorySink(), artifacts=None, description="memory (temporary)")
