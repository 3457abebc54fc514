"""Faults the simulator can inject, their parsing, and the thread-safe table of active faults.

Parsing only: a fault describes a misbehaviour of the simulated site and never reaches out of it.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Iterable
from typing import Final, Literal

__all__ = [
    "BROWSER_FAULTS",
    "FAULT_NAMES",
    "HOST_FAULTS",
    "HOST_ROLES",
    "HTTP_FAULTS",
    "Fault",
    "FaultError",
    "FaultRule",
    "FaultTable",
    "HostRole",
    "parse_fault",
]

HostRole = Literal["site", "login"]
HOST_ROLES: Final[tuple[HostRole, ...]] = ("site", "login")
_HOST_SELECTORS: Final = ("site", "login", "*")

# Faults of the HTTP/TCP layer, seen by any client.
HTTP_FAULTS: Final = (
    "down",
    "http_500",
    "http_503_maintenance",
    "slow",
    "hang",
    "reset",
    "disconnect",
    "huge_body",
    "gzip_bomb",
    "redirect_loop",
    "wrong_content",
    "bad_tls",
)
# Faults only a browser sees: the HTML answer is a normal 200, the page misbehaves when run.
BROWSER_FAULTS: Final = (
    "js_error",
    "form_missing",
    "slow_render",
    "maintenance",
    "endless_spinner",
)
FAULT_NAMES: Final = HTTP_FAULTS + BROWSER_FAULTS
# Faults that act before any path is known (TCP accept, TLS handshake): they take a whole host.
HOST_FAULTS: Final = ("down", "bad_tls")

_SECONDS_ARG: Final = ("slow", "slow_render")
_BAD_TLS_KINDS: Final = ("self_signed", "expired", "hostname")
_MAX_DELAY_S: Final = 24 * 3600.0


class FaultError(ValueError):
    """A fault, path or host given to the simulator is not valid."""


@dataclasses.dataclass(frozen=True, slots=True)
class Fault:
    """One fault: its name and, for some, an argument (seconds, or a TLS failure kind)."""

    name: str
    seconds: float | None = None
    variant: str | None = None

    @property
    def spec(self) -> str:
        """The fault as written in the admin API, e.g. ``slow:0.3`` or ``bad_tls:expired``."""
        if self.seconds is not None:
            return f"{self.name}:{self.seconds:g}"
        if self.variant is not None:
            return f"{self.name}:{self.variant}"
        return self.name

    @property
    def is_browser_fault(self) -> bool:
        """True for faults that only show when a browser runs the page."""
        return self.name in BROWSER_FAULTS

    def __str__(self) -> str:
        return self.spec


def parse_fault(spec: str) -> Fault:
    """Parse ``name`` or ``name:argument`` into a Fault; raise FaultError with the valid choices."""
    text = spec.strip()
    name, sep, arg = text.partition(":")
    if name not in FAULT_NAMES:
        raise FaultError(
            f"unknown fault {spec!r}; valid faults: {', '.join(FAULT_NAMES)} "
            "(slow and slow_render take seconds, e.g. slow:0.3)"
        )
    if name in _SECONDS_ARG:
        if not sep:
            raise FaultError(f"fault {name!r} needs a delay in seconds, e.g. {name}:0.5")
        try:
            seconds = float(arg)
        except ValueError:
            raise FaultError(f"fault {spec!r}: {arg!r} is not a number of seconds") from None
        if not math.isfinite(seconds) or not 0 <= seconds <= _MAX_DELAY_S:
            raise FaultError(f"fault {spec!r}: the delay must be between 0 and {_MAX_DELAY_S:g} s")
        return Fault(name, seconds=seconds)
    if name == "bad_tls":
        variant = arg if sep else "self_signed"
        if variant not in _BAD_TLS_KINDS:
            raise FaultError(
                f"fault {spec!r}: bad_tls takes one of {', '.join(_BAD_TLS_KINDS)} "
                "(default self_signed)"
            )
        return Fault(name, variant=variant)
    if sep:
        raise FaultError(f"fault {name!r} takes no argument (got {spec!r})")
    return Fault(name)


def _check_path(path: str) -> str:
    if path == "*":
        return path
    if not path.startswith("/"):
        raise FaultError(f"fault path {path!r} must start with '/' (or be '*' for every path)")
    if any(ch.isspace() for ch in path):
        raise FaultError(f"fault path {path!r} contains white space")
    # A query string is never part of the match: drop it, keep a hash route (SPA faults).
    base, hash_sep, route = path.partition("#")
    return base.partition("?")[0] + hash_sep + route


def _check_host(host: str) -> str:
    value = "*" if host in ("any", "") else host
    if value not in _HOST_SELECTORS:
        raise FaultError(f"fault host {host!r} must be one of: site, login, * (both)")
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class FaultRule:
    """A fault switched on for a path (``*``: every path) on a host (``*``: both hosts)."""

    host: str
    path: str
    fault: Fault

    def to_dict(self) -> dict[str, str]:
        """The rule as the admin API shows it."""
        return {"host": self.host, "path": self.path, "fault": self.fault.spec}

    def hosts(self) -> frozenset[str]:
        """The hosts a host-wide fault (``down``, ``bad_tls``) of this rule takes.

        An explicit host names itself; with ``*``, the host that serves the path: the login
        host for ``/auth/...``, the site otherwise, both for the path ``*``.
        """
        if self.host != "*":
            return frozenset({self.host})
        if self.path == "*":
            return frozenset(HOST_ROLES)
        return frozenset({"login" if self.path.startswith("/auth") else "site"})


class FaultTable:
    """The faults switched on, keyed by (host, path); safe to use from any thread."""

    def __init__(self, rules: Iterable[FaultRule] = ()) -> None:
        self._lock = threading.Lock()
        self._rules: dict[tuple[str, str], FaultRule] = {}
        for rule in rules:
            self._rules[(rule.host, rule.path)] = rule

    def set(self, path: str, fault: str | Fault, host: str = "*") -> FaultRule:
        """Switch `fault` on for `path` on `host`, replacing any fault already there."""
        parsed = fault if isinstance(fault, Fault) else parse_fault(fault)
        rule = FaultRule(_check_host(host), _check_path(path), parsed)
        with self._lock:
            self._rules[(rule.host, rule.path)] = rule
        return rule

    def clear(self, path: str | None = None, host: str = "*") -> int:
        """Switch off the fault of `path` on `host`, or every fault when `path` is None."""
        with self._lock:
            if path is None:
                count = len(self._rules)
                self._rules.clear()
                return count
            key = (_check_host(host), _check_path(path))
            return 1 if self._rules.pop(key, None) is not None else 0

    def rules(self) -> tuple[FaultRule, ...]:
        """Every active rule, sorted by host then path."""
        with self._lock:
            return tuple(sorted(self._rules.values(), key=lambda r: (r.host, r.path)))

    def lookup(self, host: str, path: str) -> Fault | None:
        """The fault for a request of `path` on `host` (exact path first, then ``*``)."""
        with self._lock:
            if not self._rules:
                return None
            for key in ((host, path), ("*", path), (host, "*"), ("*", "*")):
                rule = self._rules.get(key)
                if rule is not None:
                    return rule.fault
        return None

    def route_faults(self, host: str, page_path: str) -> dict[str, str]:
        """Faults set on hash routes of a page (``/particuliers/#/aide``), by route."""
        prefix = page_path + "#"
        found: dict[str, str] = {}
        with self._lock:
            for rule in self._rules.values():
                if rule.host in (host, "*") and rule.path.startswith(prefix):
                    found[rule.path[len(prefix) :] or "/"] = rule.fault.spec
        return found

    def host_fault(self, host: str, name: str) -> Fault | None:
        """The active host-wide fault `name` (``down`` or ``bad_tls``) that takes `host`."""
        with self._lock:
            for rule in self._rules.values():
                if rule.fault.name == name and host in rule.hosts():
                    return rule.fault
        return None
