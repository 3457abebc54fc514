"""Shared tools of the reliability suite: the real service with extra environment, its process
tree's memory, the real `vigie verify`, ledger reading, and a soak switch.

Loopback only: every server, target and database here lives on this machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evidence.ledger.backends import open_ledger
from tests.service_fixture import ServiceProcess

__all__ = [
    "REPO",
    "SOAK",
    "Service",
    "ledger_bodies",
    "process_memory_bytes",
    "soak_scale",
    "tree_rss_bytes",
    "vigie",
]

REPO = Path(__file__).resolve().parents[2]
SOAK = os.environ.get("VIGIE_SOAK") == "1"


def soak_scale(normal: int, soak: int) -> int:
    """`soak` under VIGIE_SOAK=1 (`make soak`), else `normal`."""
    return soak if SOAK else normal


def vigie(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Run the real `vigie` CLI (a child Python process) and capture everything it prints."""
    return subprocess.run(
        [sys.executable, "-m", "exporter.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        check=False,
    )


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return found


def process_memory_bytes(pid: int) -> int:
    """Proportional set size (shared pages split between sharers), else RSS, in bytes."""
    for name, key in (("smaps_rollup", "Pss:"), ("status", "VmRSS:")):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    return 0


def tree_rss_bytes(pid: int) -> int:
    """Memory of `pid` and all its descendants (PSS: pages shared between Chromium's processes
    are counted once, not once per process); 0 for processes already gone."""
    total = 0
    stack = [pid]
    seen: set[int] = set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        total += process_memory_bytes(current)
        stack += _children(current)
    return total


class Service(ServiceProcess):
    """`vigie run` with extra environment variables (CA bundle, secrets) and evidence helpers."""

    def kill(self) -> None:
        """SIGKILL the service (no cleanup at all) and reap it."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def rss(self) -> int:
        """Resident memory of the service and every process it started (browser included)."""
        assert self.process is not None
        return tree_rss_bytes(self.process.pid)

    def counted(self, name: str = "vigie_probes_total") -> dict[tuple[str, str], float]:
        """Every `name{target=..., outcome=...}` sample of /metrics."""
        found: dict[tuple[str, str], float] = {}
        for line in self.metrics().splitlines():
            if not line.startswith(name + "{"):
                continue
            series, _, value = line.rpartition(" ")
            labels = dict(
                part.split("=", 1) for part in series[len(name) + 1 : -1].split(",") if part
            )
            key = (labels.get("target", "").strip('"'), labels.get("outcome", "").strip('"'))
            found[key] = float(value)
        return found

    def verify(self) -> subprocess.CompletedProcess[str]:
        """The real `vigie verify` on this service's ledger (key, artifacts, copy from config)."""
        return vigie("verify", "--config", str(self.config_path), "--workers", "1")

    @property
    def ledger_url(self) -> str:
        """The ledger URL this service writes to."""
        text = self.config_path.read_text("utf-8")
        import yaml

        return str(yaml.safe_load(text)["ledger"]["url"])


def ledger_bodies(url: str, password: str | None = None) -> list[dict[str, Any]]:
    """Every entry of the ledger at `url`, parsed (read-only)."""
    ledger = open_ledger(url, readonly=True, password=password)
    try:
        return [json.loads(body) for _, body in ledger.iter_entries()]
    finally:
        ledger.close()
