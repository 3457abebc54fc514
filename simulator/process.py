"""Running ``python -m simulator`` as a child process and driving it through its admin API.

For tests, benchmarks and ``vigie demo``: it talks to loopback only, with proxies disabled.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
import types
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import IO, Any

from simulator.counts import RequestCounts, RequestKey

__all__ = ["SimulatorProcess"]

_ADMIN_TIMEOUT_S = 10.0


class SimulatorProcess:
    """``python -m simulator`` in a child process; ``with SimulatorProcess() as sim:``.

    After start, ``sim.urls`` holds the JSON line the process printed (``site_url``,
    ``login_url``, ``tls_url``, ``admin_url``, ...). Faults and counts go through the admin API.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        *,
        args: Sequence[str] = (),
        faults: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        python: str = sys.executable,
        start_timeout: float = 30.0,
    ) -> None:
        """Prepare the command; `args` are extra ``python -m simulator`` options."""
        self.command = [python, "-m", "simulator", "--host", host, *args]
        for path, fault in (faults or {}).items():
            self.command += ["--fault", f"{path}={fault}"]
        self.env = dict(os.environ if env is None else env)
        self.start_timeout = start_timeout
        self.urls: dict[str, str] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> dict[str, str]:
        """Start the process and wait for its JSON line; return the URLs."""
        if self._process is not None:
            raise RuntimeError("simulator process already started")
        # Lives as long as the child (closed in stop), so no context manager here.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self._process = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=self.env,
        )
        assert self._process.stdout is not None
        try:
            line = self._read_line(self._process.stdout, time.monotonic() + self.start_timeout)
            data = json.loads(line)
        except (TimeoutError, ValueError) as exc:
            self.stop()
            raise RuntimeError(f"simulator process did not start: {exc}; {self.stderr()}") from None
        self.urls = {k: str(v) for k, v in data.items()}
        return self.urls

    def _read_line(self, stream: IO[bytes], deadline: float) -> bytes:
        buffer = b""
        with selectors.DefaultSelector() as selector:
            selector.register(stream, selectors.EVENT_READ)
            while not buffer.endswith(b"\n"):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("no JSON line on stdout in time")
                if not selector.select(remaining):
                    continue
                chunk = os.read(stream.fileno(), 65536)
                if not chunk:
                    raise ValueError("the process exited before printing its URLs")
                buffer += chunk
        return buffer

    def stderr(self) -> str:
        """What the process wrote on stderr so far (its logs)."""
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the process and wait for it (SIGKILL after `timeout`); its exit code."""
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        return process.returncode

    @property
    def pid(self) -> int:
        """The child's process id."""
        if self._process is None:
            raise RuntimeError("simulator process not started")
        return self._process.pid

    def __enter__(self) -> SimulatorProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.stop()

    # -- URLs --------------------------------------------------------------------------------

    def _url(self, key: str) -> str:
        try:
            return self.urls[key]
        except KeyError:
            raise RuntimeError("simulator process not started") from None

    @property
    def site_url(self) -> str:
        """The site's home page."""
        return self._url("site_url")

    @property
    def portal_url(self) -> str:
        """The portal's home route."""
        return self._url("portal_url")

    @property
    def api_url(self) -> str:
        """The unauthenticated back-end URL (401)."""
        return self._url("api_url")

    @property
    def login_url(self) -> str:
        """The login page."""
        return self._url("login_url")

    @property
    def registration_url(self) -> str:
        """The account-creation screen."""
        return self._url("registration_url")

    @property
    def tls_url(self) -> str:
        """The site's home page over HTTPS."""
        return self._url("tls_url")

    @property
    def tls_ca_file(self) -> str:
        """PEM of the throwaway CA of the HTTPS listener."""
        return self._url("tls_ca_file")

    @property
    def admin_url(self) -> str:
        """The admin API root."""
        return self._url("admin_url")

    def url(self, path: str, host: str = "site") -> str:
        """Absolute URL of `path` on ``site``, ``login``, ``tls`` or ``admin``."""
        roots = {
            "site": self.site_url,
            "login": self._url("login_origin"),
            "tls": self.tls_url,
            "admin": self.admin_url,
        }
        return roots[host].rstrip("/") + path

    # -- admin API ---------------------------------------------------------------------------

    def admin(self, method: str, path: str, body: object | None = None) -> Any:
        """Call the admin API; the decoded JSON answer (RuntimeError on an HTTP error)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.admin_url.rstrip("/") + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with self._opener.open(request, timeout=_ADMIN_TIMEOUT_S) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            raise RuntimeError(f"simulator admin {method} {path}: {exc.code} {detail}") from None

    def set_fault(self, path: str, fault: str, host: str = "*") -> dict[str, str]:
        """Switch `fault` on for `path` (see Simulator.set_fault)."""
        answer = self.admin("POST", "/faults", {"path": path, "fault": fault, "host": host})
        rule: dict[str, str] = answer["fault"]
        return rule

    def clear_faults(self) -> None:
        """Switch every fault off."""
        self.admin("DELETE", "/faults")

    def set_portal_version(self, version: int) -> None:
        """Serve `version` of the portal (see Simulator.set_portal_version)."""
        self.admin("POST", "/version", {"version": version})

    def faults(self) -> list[dict[str, str]]:
        """The faults switched on."""
        answer: list[dict[str, str]] = self.admin("GET", "/faults")["faults"]
        return answer

    def requests(self) -> dict[str, Any]:
        """``GET /requests``: totals, by method, by path, and the write requests received."""
        answer: dict[str, Any] = self.admin("GET", "/requests")
        return answer

    def counts(self) -> RequestCounts:
        """The request counts as a RequestCounts (same API as Simulator.counts)."""
        rows = self.requests()["by_path"]
        return RequestCounts(
            {RequestKey(r["host"], r["method"], r["path"]): int(r["count"]) for r in rows}
        )

    def reset_requests(self) -> None:
        """Forget the counts (the audit file keeps every write)."""
        self.admin("POST", "/requests/reset")
