"""A local HTTP receiver for Alertmanager webhooks in tests: keeps every JSON body it is sent.

It listens only on 127.0.0.1 (port chosen by the system) and never forwards anything.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from tests.background_server import BackgroundServer

__all__ = ["WebhookCall", "WebhookSink"]


@dataclasses.dataclass(frozen=True)
class WebhookCall:
    """One POST received by the sink."""

    path: str
    headers: dict[str, str]
    payload: Any
    received_at: float  # time.monotonic()

    @property
    def alertnames(self) -> set[str]:
        """Names of the alerts in an Alertmanager webhook payload."""
        return {a["labels"].get("alertname", "") for a in self.payload.get("alerts", [])}

    @property
    def status(self) -> str:
        """The group status Alertmanager sent: firing or resolved."""
        return str(self.payload.get("status", ""))


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        try:
            payload = json.loads(body)
        except ValueError:
            self.send_error(400, "body is not JSON")
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.sink.add(WebhookCall(self.path, headers, payload, time.monotonic()))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Stay quiet: pytest shows what matters."""


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, sink: WebhookSink) -> None:
        self.sink = sink
        super().__init__(("127.0.0.1", 0), _Handler)


class WebhookSink(BackgroundServer):
    """An HTTP server on 127.0.0.1 that keeps every webhook call; use as a context manager."""

    def __init__(self) -> None:
        self._calls: list[WebhookCall] = []
        self._cond = threading.Condition()
        super().__init__()

    def make_server(self) -> _Server:
        """The server bound to 127.0.0.1 on a free port."""
        return _Server(self)

    @property
    def url(self) -> str:
        """The URL to give Alertmanager."""
        assert self._server is not None, "use WebhookSink as a context manager"
        return f"http://127.0.0.1:{self._server.server_address[1]}/alertmanager"

    @property
    def calls(self) -> list[WebhookCall]:
        """Every call received so far, oldest first."""
        with self._cond:
            return list(self._calls)

    def add(self, call: WebhookCall) -> None:
        """Record `call` and wake up waiters."""
        with self._cond:
            self._calls.append(call)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[WebhookCall], bool], timeout: float) -> WebhookCall:
        """The first call matching `predicate`, waiting up to `timeout` seconds for it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for call in self._calls:
                    with contextlib.suppress(Exception):
                        if predicate(call):
                            return call
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [sorted(c.alertnames) for c in self._calls]
                    raise TimeoutError(
                        f"no matching webhook call within {timeout:.0f} s; received: {seen}"
                    )
                self._cond.wait(remaining)
