"""The probe kinds Vigie knows: ``kind`` in vigie.yaml -> the factory of its prober.

A kind is registered once, as a ``vigie.probe_kinds`` entry point (pyproject.toml): write its
module (a class with `kind`, `check` and `aclose`, built from `ProbeSettings`) and add one line
there (docs/architecture.md). The configuration checks ``kind`` against the same names
(config/probe_kinds.py). Heavy modules (Playwright) are imported here, on first use.
"""

from __future__ import annotations

from typing import cast

from config.probe_kinds import probe_kind_entry_points
from probes.base import ProbeFactory

__all__ = ["default_factories"]


def default_factories() -> dict[str, ProbeFactory]:
    """Every registered probe kind (``http`` and ``browser`` are Vigie's own)."""
    return {
        name: cast("ProbeFactory", point.load())
        for name, point in probe_kind_entry_points().items()
    }
