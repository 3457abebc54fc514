"""Running the real `vigie run` service as a child process against local targets.

Loopback only: configs written here point at the simulator or other local servers.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = ["LedgerFollower", "ServiceProcess", "free_port", "http_get", "run_service"]

REPO = Path(__file__).resolve().parent.parent
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, *, method: str = "GET", timeout: float = 10.0) -> tuple[int, bytes]:
    """Status and body of a request to a local URL (HTTP errors are returned, not raised)."""
    request = urllib.request.Request(url, method=method)
    try:
        with _NO_PROXY.open(request, timeout=timeout) as answer:
            return int(answer.status), answer.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


class ServiceProcess:
    """A `vigie run` child process with its config, state directory and log file."""

    def __init__(
        self, config: Mapping[str, Any], state: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.state = state
        self.env = dict(env or {})  # extra environment variables for the service
        self.port = free_port()
        cfg = dict(config)
        cfg.setdefault("listen", f"127.0.0.1:{self.port}")
        self.port = int(str(cfg["listen"]).rsplit(":", 1)[1])
        cfg.setdefault(
            "ledger",
            {
                "url": f"sqlite:///{state / 'ledger.db'}",
                "artifacts": str(state / "artifacts"),
                "checkpoint_interval": "5s",
            },
        )
        cfg.setdefault("signing", {"key": str(state / "vantage.key")})
        self.config_path = state / "vigie.yaml"
        self.config_path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False))
        self.log_path = state / "service.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the service's HTTP endpoints."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait: float = 30.0) -> None:
        """Start the service and wait until /healthz answers."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "exporter.cli", "run", "--config", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=REPO,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
            )
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"vigie run exited early:\n{self.log()}")
            with contextlib.suppress(OSError):
                if http_get(self.url + "/healthz", timeout=1.0)[0] == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"vigie run did not answer /healthz in {wait} s:\n{self.log()}")

    def metrics(self) -> str:
        """The current /metrics text."""
        status, body = http_get(self.url + "/metrics")
        assert status == 200
        return body.decode("utf-8")

    def sample(self, name: str, **labels: str) -> float | None:
        """The value of one series of /metrics, or None when absent."""
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in self.metrics().splitlines():
            if line.startswith("#"):
                continue
            series, _, value = line.rpartition(" ")
            metric, _, rest = series.partition("{")
            if metric != name:
                continue
            have = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
            if have == wanted:
                return float(value)
        return None

    def wait_for(self, predicate: Any, *, timeout: float = 30.0, what: str = "condition") -> None:
        """Poll `predicate()` until true (AssertionError naming `what` after `timeout`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log()[-4000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send `sig` and wait for the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def log(self) -> str:
        """Everything the service logged so far."""
        return self.log_path.read_text("utf-8", errors="replace")


@contextlib.contextmanager
def run_service(config: Mapping[str, Any], state: Path | None = None) -> Iterator[ServiceProcess]:
    """`with run_service(cfg) as svc:` a started service, stopped (SIGTERM) at the end."""
    with contextlib.ExitStack() as stack:
        if state is None:
            state = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vigie-svc-")))
        service = ServiceProcess(config, state)
        service.start()
        try:
            yield service
        finally:
            if service.process is not None and service.process.poll() is None:
                service.stop()


class LedgerFollower:
    """Follows the ledger a running `vigie run` writes (read-only): its new entries, in order.

    With `target`, keeps only the entries of that target (and those naming no target: gaps,
    vantage events); with `types`, parses only the rows of those entry types.
    """

    def __init__(
        self, path: Path, target: str | None = None, types: Collection[str] | None = None
    ) -> None:
        self.path, self.target, self.types = path, target, types
        self.ledger: Any = None
        self.next_seq = 0
        self.entries: list[dict[str, Any]] = []
        self._unread: collections.deque[dict[str, Any]] = collections.deque()

    def poll(self) -> list[dict[str, Any]]:
        """The entries appended since the last poll (none before the ledger exists)."""
        from evidence.ledger.backends import open_ledger
        from evidence.ledger.entries import LedgerError

        if self.ledger is None:
            if not self.path.exists():
                return []
            try:
                self.ledger = open_ledger(self.path, readonly=True)
            except LedgerError:
                return []
        new = []
        for row in self.ledger.iter_rows(self.next_seq):
            self.next_seq = row.seq + 1
            if self.types is not None and row.type not in self.types:
                continue
            entry = json.loads(row.body)
            if self.target is None or entry.get("target_id", self.target) == self.target:
                new.append(entry)
        self.entries.extend(new)
        self._unread.extend(new)
        return new

    def wait(
        self, predicate: Callable[[dict[str, Any]], bool], what: str, timeout: float = 40.0
    ) -> dict[str, Any]:
        """The first entry not yet passed by an earlier `wait` that matches `predicate`;
        AssertionError after `timeout` s. Entries after the match stay for the next `wait`
        (two events appended in the same poll are both seen, in ledger order)."""
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            while self._unread:
                entry = self._unread.popleft()
                if predicate(entry):
                    return entry
            if time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        raise AssertionError(f"no {what} in the ledger within {timeout} s")

    def of(self, kind: str) -> list[dict[str, Any]]:
        """Every entry of type `kind` so far."""
        self.poll()
        return [e for e in self.entries if e["type"] == kind]

    def close(self) -> None:
        """Close the ledger (a later poll opens it again)."""
        if self.ledger is not None:
            self.ledger.close()
            self.ledger = None
