"""The services give large freed blocks back to the system (exporter/allocator.py)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.allocator import return_large_blocks

REPO = Path(__file__).resolve().parent.parent

# 64 MiB in 4 MiB blocks, freed while a block allocated after them is still in use: the freed
# memory can only go back to the system if each block had its own mapping.
_SCRIPT = """
import sys
from exporter.allocator import return_large_blocks

def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024

if sys.argv[1] == "fixed":
    assert return_large_blocks()
big = b"x" * (16 << 20)
del big  # glibc's own rule now serves blocks under 16 MiB from its heap
blocks = [b"y" * (4 << 20) for _ in range(16)]
pinned = b"k" * 200_000  # above them in the heap, still in use
held = rss_mib()
del blocks
print(held - rss_mib())
"""

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)


def _returned_mib(mode: str, **env: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, mode],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | env,
        check=True,
    )
    return int(done.stdout)


def test_freed_large_blocks_go_back_to_the_system() -> None:
    """Without the setting glibc keeps the 64 MiB freed; with it they are returned."""
    assert _returned_mib("dynamic") < 16
    assert _returned_mib("fixed") >= 56


def test_an_operator_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    """MALLOC_MMAP_THRESHOLD_ in the environment is the operator's choice: left alone."""
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "1048576")
    assert return_large_blocks() is False
