"""A socketserver served from a background thread, for local test peers (SMTP, webhooks).

Loopback only: subclasses bind 127.0.0.1 on a free port.
"""

from __future__ import annotations

import socketserver
import threading
from types import TracebackType
from typing import Self

__all__ = ["BackgroundServer"]


class BackgroundServer:
    """Starts `make_server()` in a daemon thread on enter; shuts it down on exit."""

    def __init__(self) -> None:
        self._server: socketserver.TCPServer | None = None
        self._thread: threading.Thread | None = None

    def make_server(self) -> socketserver.TCPServer:
        """The server to run (bound, not yet serving)."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._server = self.make_server()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
