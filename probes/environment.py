"""Environment facts of a vantage, recorded with every observation (NF Z67-147).

Gathered once at start-up and cheaply refreshed; never blocks or fails a probe.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import platform
import socket
import subprocess
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "clock_sync_state",
    "collect_environment",
    "kernel_clock_state",
    "local_addresses",
    "resolvers",
    "vigie_version",
]


def vigie_version() -> str:
    """The installed Vigie version."""
    try:
        return metadata.version("vigie")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


def resolvers(resolv_conf: Path = Path("/etc/resolv.conf")) -> list[str]:
    """The DNS resolvers the system uses (from resolv.conf)."""
    try:
        lines = resolv_conf.read_text("utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return [
        parts[1] for line in lines if len(parts := line.split()) >= 2 and parts[0] == "nameserver"
    ]


def local_addresses() -> list[str]:
    """This machine's global IP addresses (from ``ip addr``, else the host name), best effort."""
    found: set[str] = set()
    try:
        out = subprocess.run(
            ["ip", "-j", "addr", "show", "scope", "global"],
            capture_output=True,
            text=True,
            timeout=2,
            check=False,
        ).stdout
        for link in json.loads(out or "[]"):
            found.update(str(a["local"]) for a in link.get("addr_info", ()) if "local" in a)
    except (OSError, subprocess.SubprocessError, ValueError, TypeError, KeyError):
        pass
    if not found:
        with contextlib.suppress(OSError):
            found.update(str(i[4][0]) for i in socket.getaddrinfo(socket.gethostname(), None))
    return sorted(a for a in found if not a.startswith(("127.", "::1")))


_STA_UNSYNC = 0x0040
_TIME_ERROR = 5


class _Timex(ctypes.Structure):
    """Linux `struct timex` (x86-64 and aarch64 layout), followed by reserved padding."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    ]


def kernel_clock_state() -> dict[str, Any] | None:
    """The kernel's NTP discipline state (adjtimex, read-only: modes=0); None if unavailable."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        adjtimex = libc.adjtimex
    except (OSError, AttributeError):
        return None
    timex = _Timex()
    timex.modes = 0  # read only: never adjusts the clock
    state = int(adjtimex(ctypes.byref(timex)))
    if state < 0:
        return None
    synced = state != _TIME_ERROR and not timex.status & _STA_UNSYNC
    return {
        "source": "kernel",
        "synchronized": synced,
        "max_error_s": timex.maxerror / 1e6,
        "est_error_s": timex.esterror / 1e6,
    }


def clock_sync_state(
    run: Callable[[list[str]], str | None] | None = None,
    kernel: Callable[[], dict[str, Any] | None] = kernel_clock_state,
) -> dict[str, Any]:
    """Whether the system clock is synchronised: timedatectl when systemd answers, else the
    kernel's own NTP state (works in containers), else unknown (``synchronized: None``)."""
    out = (run or _run)(["timedatectl", "show", "-p", "NTPSynchronized", "-p", "NTP"])
    values = dict(line.split("=", 1) for line in (out or "").splitlines() if "=" in line)
    if "NTPSynchronized" in values:
        return {
            "source": "ntp" if values.get("NTP") == "yes" else "system",
            "synchronized": values["NTPSynchronized"] == "yes",
            "reported_by": "timedatectl",
        }
    state = kernel()
    if state is not None:
        return {**state, "reported_by": "adjtimex"}
    return {"source": "system", "synchronized": None, "reported_by": None}


def _run(command: list[str]) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=2, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _proxy() -> str | None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        if os.environ.get(name):
            return "ignored by Vigie (direct connections only)"
    return None


def collect_environment(vantage: str, operator: str, user_agent: str) -> dict[str, Any]:
    """The static facts of this vantage, as a JSON-ready mapping."""
    return {
        "vantage": vantage,
        "operator": operator,
        "hostname": socket.gethostname(),
        "local_ips": local_addresses(),
        "resolvers": resolvers(),
        "proxy": _proxy(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "vigie": vigie_version(),
        "user_agent": user_agent,
        "clock": clock_sync_state(),
    }
