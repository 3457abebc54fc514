"""Environment facts of a vantage, recorded with every observation (NF Z67-147).

Gathered once at start-up and cheaply refreshed; never blocks or fails a probe.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["clock_state", "collect_environment", "local_addresses", "resolvers", "vigie_version"]


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


def clock_state() -> dict[str, Any]:
    """Whether the system clock is synchronised (timedatectl), when the system says."""
    try:
        out = subprocess.run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "-p", "NTP"],
            capture_output=True,
            text=True,
            timeout=2,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {"source": "system", "synchronized": None}
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    synced = values.get("NTPSynchronized")
    return {
        "source": "ntp" if values.get("NTP") == "yes" else "system",
        "synchronized": None if synced is None else synced == "yes",
    }


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
        "clock": clock_state(),
    }
