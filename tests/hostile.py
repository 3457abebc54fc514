"""A small raw-socket loopback server for probe tests: each connection runs a handler in a thread.

It binds only to loopback on a free port and lets a test misbehave on purpose (drip, hang, reset,
garbage); it never reaches beyond this machine.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from types import TracebackType

__all__ = ["Client", "Handler", "HostileServer"]


class Client:
    """One accepted connection, with helpers to play a (mis)behaving HTTP server."""

    def __init__(self, sock: socket.socket, server: HostileServer) -> None:
        self.sock = sock
        self.server = server

    def read_request(self, limit: int = 65536) -> bytes:
        """Read up to the end of the request head, record it, and return it."""
        data = b""
        while b"\r\n\r\n" not in data and len(data) < limit:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            data += chunk
        self.server.record(data)
        return data

    def send(self, data: bytes) -> None:
        """Send all of `data`."""
        self.sock.sendall(data)

    def sleep(self, seconds: float) -> bool:
        """Wait `seconds` (True) unless the server stops first (False)."""
        return not self.server.stopping.wait(seconds)

    def reset(self) -> None:
        """Close with a TCP RST (SO_LINGER 0)."""
        raw = self.sock
        if isinstance(raw, ssl.SSLSocket):
            raw = socket.socket(fileno=raw.detach())
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.close()

    def drain(self) -> None:
        """Read until the peer closes (or the server stops)."""
        self.sock.settimeout(0.2)
        while not self.server.stopping.is_set():
            try:
                if not self.sock.recv(65536):
                    return
            except TimeoutError:
                continue


Handler = Callable[[Client], None]


def respond(
    status: str = "200 OK",
    body: bytes = b"",
    headers: tuple[tuple[str, str], ...] = (),
    *,
    length: bool = True,
) -> bytes:
    """A raw HTTP/1.1 response."""
    lines = [f"HTTP/1.1 {status}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class HostileServer:
    """Loopback TCP (or TLS) server; counts connections and records request heads."""

    def __init__(
        self,
        handler: Handler,
        *,
        tls: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self._handler = handler
        self._tls = tls
        self.host = host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, 0))
        self.port: int = self._listener.getsockname()[1]
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self.connections = 0
        self.requests: list[bytes] = []
        self.errors: list[BaseException] = []

    def url(self, path: str = "/") -> str:
        """The URL of `path` on this server."""
        scheme = "https" if self._tls is not None else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{path}"

    def record(self, request: bytes) -> None:
        """Remember a request head (thread-safe)."""
        with self._lock:
            self.requests.append(request)

    def __enter__(self) -> HostileServer:
        self._listener.listen(64)
        self._listener.settimeout(0.1)
        thread = threading.Thread(target=self._accept_loop, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stopping.set()
        with self._lock:
            socks = list(self._socks)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        deadline = time.monotonic() + 5
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._socks.append(sock)
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, sock: socket.socket) -> None:
        conn: socket.socket = sock
        try:
            sock.settimeout(10)
            if self._tls is not None:
                conn = self._tls.wrap_socket(sock, server_side=True)
            self._handler(Client(conn, self))
        except (OSError, ssl.SSLError):
            pass  # the probe hung up or refused the certificate: expected in these tests
        except Exception as exc:  # a broken handler must show up in the test, not vanish
            self.errors.append(exc)
        finally:
            with contextlib.suppress(OSError):
                conn.close()
