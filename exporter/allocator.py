"""Give large freed buffers back to the system: a fixed glibc mmap threshold for the services.

glibc raises its mmap threshold each time a large block (a WARC capture, a 10 MiB page body,
an export's batch) is freed, up to 32 MiB: later blocks of that size then come from the heap,
which keeps them after they are freed. A long-running `vigie run` so keeps the high-water mark
of its largest check for good. Fixing the threshold at glibc's own default (128 KiB) keeps every
large block in its own mapping, returned to the system when freed.

Measured (2026-12-07, the hostile-targets run of tests/reliability/test_hostile.py, 300 s, one
sample per second): the Vigie process settled at 170 MiB from the first 200 MB page on and never
came down; with the fixed threshold it came back to 108-124 MiB after each such page (peaks
145-157 MiB). CPU per probe did not change measurably: bench/http_cpu.py (200 probes/s, 15 s
windows) gave a Vigie / blackbox_exporter ratio of 0.98-1.02 before and 0.99-1.01 after, run to
run. The same setting can be given from outside with MALLOC_MMAP_THRESHOLD_=131072.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

__all__ = ["MMAP_THRESHOLD", "return_large_blocks"]

MMAP_THRESHOLD = 128 * 1024
_M_MMAP_THRESHOLD = -3  # from glibc's malloc.h


def return_large_blocks() -> bool:
    """Fix glibc's mmap threshold (see above); False where it does not apply (another libc,
    or already set through MALLOC_MMAP_THRESHOLD_)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False  # the operator chose
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name, use_errno=True)
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
