"""The probe kinds Vigie knows, by name: the ``vigie.probe_kinds`` entry points.

A probe kind is registered in one place, the entry-point table of the package that ships it
(``[project.entry-points."vigie.probe_kinds"]`` in pyproject.toml: ``name = "module:Class"``).
The configuration reads only the names, to check ``kind`` in vigie.yaml, and never imports a
probe (``config/`` is the bottom layer); ``probes/kinds.py`` loads the classes when the service
starts. A separate package can add a kind the same way, without editing Vigie.
"""

from __future__ import annotations

import functools
from importlib.metadata import EntryPoint, entry_points

__all__ = ["GROUP", "ProbeKindsError", "probe_kind_entry_points", "probe_kinds"]

GROUP = "vigie.probe_kinds"


class ProbeKindsError(ValueError):
    """The probe kinds cannot be read (Vigie is not installed, or two packages claim a name).

    A ValueError, so that a configuration naming a kind reports it as its error on ``kind``."""


@functools.cache
def probe_kind_entry_points() -> dict[str, EntryPoint]:
    """Every registered probe kind, by name (read once per process)."""
    found: dict[str, EntryPoint] = {}
    for point in entry_points(group=GROUP):
        other = found.get(point.name)
        if other is not None and other.value != point.value:
            raise ProbeKindsError(
                f"probe kind {point.name!r} is registered twice: {other.value} and {point.value}"
            )
        found[point.name] = point
    if not found:
        raise ProbeKindsError(
            f"no probe kind is registered (entry points {GROUP!r}): Vigie is not installed "
            "in this Python environment; run `make venv` (or `pip install -e .`)"
        )
    return found


def probe_kinds() -> tuple[str, ...]:
    """The names ``kind`` may take in vigie.yaml, sorted."""
    return tuple(sorted(probe_kind_entry_points()))
