"""Counting every request the simulated site receives, by host, method and path.

The proof that probes are read-only: every non-GET/HEAD request is recorded, and appended to an
audit file when one is set. Counting never drops or rewrites a request it saw.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

__all__ = [
    "AUDIT_ENV",
    "READ_ONLY_METHODS",
    "RequestCounts",
    "RequestKey",
    "RequestLog",
    "WriteRecord",
    "read_audit",
]

READ_ONLY_METHODS: Final = frozenset({"GET", "HEAD"})
# When set, every simulator (in-process or `python -m simulator`) appends the non-GET/HEAD
# requests it receives to this file, one JSON object per line; the test session checks it.
AUDIT_ENV: Final = "VIGIE_SIMULATOR_AUDIT"
_MAX_KEPT_WRITES: Final = 1000


@dataclasses.dataclass(frozen=True, slots=True, order=True)
class RequestKey:
    """Which listener (``site``, ``login``, ``tls``), which method, which path (no query)."""

    host: str
    method: str
    path: str


@dataclasses.dataclass(frozen=True, slots=True)
class WriteRecord:
    """A request that was neither GET nor HEAD: it should never have reached the site."""

    host: str
    method: str
    path: str
    time: float
    user_agent: str
    pid: int

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON types."""
        return dataclasses.asdict(self)


class RequestCounts:
    """An immutable snapshot of request counts, with the totals tests ask about."""

    def __init__(self, counts: Mapping[RequestKey, int]) -> None:
        self._counts = dict(counts)

    def total(
        self, method: str | None = None, path: str | None = None, host: str | None = None
    ) -> int:
        """How many requests matched every filter given (method is case-insensitive)."""
        verb = method.upper() if method is not None else None
        return sum(
            n
            for key, n in self._counts.items()
            if (verb is None or key.method == verb)
            and (path is None or key.path == path)
            and (host is None or key.host == host)
        )

    def by_method(self) -> dict[str, int]:
        """Request totals per method."""
        totals: collections.Counter[str] = collections.Counter()
        for key, n in self._counts.items():
            totals[key.method] += n
        return dict(totals)

    @property
    def writes(self) -> int:
        """How many requests were neither GET nor HEAD (a read-only probe makes it 0)."""
        return sum(n for key, n in self._counts.items() if key.method not in READ_ONLY_METHODS)

    def items(self) -> list[tuple[RequestKey, int]]:
        """Every (key, count), sorted by key."""
        return sorted(self._counts.items())

    def to_dict(self) -> dict[str, Any]:
        """The JSON the admin API serves at ``GET /requests`` (without the write records)."""
        return {
            "total": sum(self._counts.values()),
            "writes": self.writes,
            "by_method": self.by_method(),
            "by_path": [
                {"host": k.host, "method": k.method, "path": k.path, "count": n}
                for k, n in self.items()
            ],
        }

    def __repr__(self) -> str:
        return f"RequestCounts({self.to_dict()['by_method']}, writes={self.writes})"


class RequestLog:
    """Thread-safe request recorder; writes also go to the audit file (never reset)."""

    def __init__(self, audit_file: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._counts: collections.Counter[RequestKey] = collections.Counter()
        self._writes: collections.deque[WriteRecord] = collections.deque(maxlen=_MAX_KEPT_WRITES)
        self.audit_file = audit_file

    def record(self, host: str, method: str, path: str, user_agent: str = "") -> bool:
        """Count one request; return True when it was a write (neither GET nor HEAD)."""
        key = RequestKey(host, method, path)
        with self._lock:
            self._counts[key] += 1
        if method in READ_ONLY_METHODS:
            return False
        record = WriteRecord(host, method, path, time.time(), user_agent, os.getpid())
        with self._lock:
            self._writes.append(record)
        if self.audit_file is not None:
            self._append_audit(self.audit_file, record)
        return True

    @staticmethod
    def _append_audit(path: Path, record: WriteRecord) -> None:
        line = json.dumps(record.to_dict(), ensure_ascii=False, sort_keys=True) + "\n"
        # One O_APPEND write per record: several simulators (threads, processes) share the file.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)

    def snapshot(self) -> RequestCounts:
        """The counts so far."""
        with self._lock:
            return RequestCounts(self._counts)

    def writes(self) -> tuple[WriteRecord, ...]:
        """The last write requests received (at most 1000), oldest first."""
        with self._lock:
            return tuple(self._writes)

    def reset(self) -> None:
        """Forget the counts and kept write records (the audit file keeps its lines)."""
        with self._lock:
            self._counts.clear()
            self._writes.clear()


def read_audit(path: Path) -> list[dict[str, Any]]:
    """The write records appended to an audit file (empty when the file does not exist)."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]
