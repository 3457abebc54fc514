"""The read-only guard: the one place where every probe asks before a request leaves it.

Only GET and HEAD pass. Anything else is refused, never sent, and recorded so the observation
shows what the site tried to make the probe do. No probe may bypass it.

The browser probe asks it from the page's routes (a first layer) and enforces the same rule,
`ALLOWED_METHODS`, at the wire: its Chromium can only reach the network through the read-only
proxy of probes/wireproxy.py, whatever part of a page sends a request.
"""

from __future__ import annotations

import threading

from probes.observation import BlockedRequest

__all__ = ["ALLOWED_METHODS", "ReadOnlyGuard", "WriteBlockedError"]

ALLOWED_METHODS = frozenset({"GET", "HEAD"})


class WriteBlockedError(Exception):
    """A probe tried to send a request that could change state on the target."""

    def __init__(self, method: str, url: str) -> None:
        super().__init__(f"read-only guard blocked {method} {url}")
        self.method = method
        self.url = url


class ReadOnlyGuard:
    """Admits GET/HEAD, records and refuses every other method. One guard per check."""

    def __init__(self) -> None:
        self._blocked: list[BlockedRequest] = []
        self._lock = threading.Lock()

    def allows(self, method: str, url: str) -> bool:
        """True when `method` may leave the probe; otherwise record the attempt and say no."""
        verb = method.upper()
        if verb in ALLOWED_METHODS:
            return True
        with self._lock:
            self._blocked.append(BlockedRequest(method=verb, url=url))
        return False

    def admit(self, method: str, url: str) -> None:
        """Raise `WriteBlockedError` unless `method` may leave the probe."""
        if not self.allows(method, url):
            raise WriteBlockedError(method.upper(), url)

    @property
    def blocked(self) -> tuple[BlockedRequest, ...]:
        """Every request refused so far, in order."""
        with self._lock:
            return tuple(self._blocked)
