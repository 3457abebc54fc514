"""The probe kinds Vigie knows: ``kind`` in vigie.yaml -> the factory of its prober.

Adding a probe kind: write its module (a class with `kind`, `check` and `aclose`, built from
`ProbeSettings`), add one entry here and its name to `Target.kind` in `config/targets.py`
(docs/architecture.md). Heavy modules (Playwright) are imported on first use.
"""

from __future__ import annotations

from probes.base import ProbeFactory

__all__ = ["default_factories"]


def default_factories() -> dict[str, ProbeFactory]:
    """The built-in probe kinds: ``http`` and ``browser``."""
    from probes.browser import BrowserProbe
    from probes.http import HttpProbe

    return {"http": HttpProbe, "browser": BrowserProbe}
