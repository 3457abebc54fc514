"""A hostile web site in a network namespace of its own, which records every byte it receives.

The test creates the namespace (random name) with a veth pair whose both ends stay on this
machine: the host end carries 10.202.N.1/29, the namespace end 10.202.N.2 and .3 (two addresses,
so that the site has a second, cross-site origin). Inside it listen:

* HTTP on port 8080 of both addresses, answering any method (pages by path, "ok" otherwise),
  upgrading any WebSocket handshake and keeping every frame it then receives;
* TCP 3478/3480 and UDP 3478/3479/443 (STUN, TURN, ICE candidates, QUIC): every datagram and
  every byte kept;
* a packet sniffer (AF_PACKET) on the namespace's end of the link, which counts every UDP
  datagram and every TCP connection attempt, whatever the port: what no listener would see.

`writes()` lists every write that reached the site: a request other than GET/HEAD, a request
carrying a body, a WebSocket handshake or frame, any UDP datagram, any byte on a non-HTTP port.
Needs root (ip netns, setns); the fixture skips otherwise. Nothing here leaves the machine.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import dataclasses
import hashlib
import os
import secrets
import shutil
import socket
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = ["Received", "WireSite", "in_namespace", "wire_site"]

CLONE_NEWNET = 0x40000000
HTTP_PORT = 8080
TCP_TRAPS = (3478, 3480)
UDP_TRAPS = (3478, 3479, 443)
ETH_P_ALL = 0x0003


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


def in_namespace(namespace_path: str, make: Callable[[], Any]) -> Any:
    """Run `make` in a thread that joined the network namespace at `namespace_path`.

    Sockets keep the namespace they were created in: what `make` creates listens there.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    result: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fd = os.open(namespace_path, os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns failed")
            finally:
                os.close(fd)
            result.append(make())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(20)
    if errors:
        raise errors[0]
    return result[0]


@dataclasses.dataclass
class Received:
    """One HTTP request as the site received it."""

    method: str
    host: str
    path: str
    headers: dict[str, str]
    body: bytes
    frames: bytes = b""  # bytes received after a WebSocket upgrade


class WireSite:
    """The hostile site: its addresses, pages and every byte it received."""

    def __init__(self, namespace: str, host_if: str, subnet: int) -> None:
        self.namespace = namespace
        self.host_if = host_if
        self.host_ip = f"10.202.{subnet}.1"
        self.ip_a = f"10.202.{subnet}.2"
        self.ip_b = f"10.202.{subnet}.3"
        self.origin_a = f"http://{self.ip_a}:{HTTP_PORT}"
        self.origin_b = f"http://{self.ip_b}:{HTTP_PORT}"
        self.pages: dict[str, tuple[str, str, tuple[tuple[str, str], ...]]] = {}
        self.requests: list[Received] = []
        self.datagrams: list[tuple[int, bytes]] = []
        self.trap_bytes: list[tuple[int, bytes]] = []
        self.sniffed: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []

    # ------------------------------------------------------------------ pages

    def page(
        self,
        path: str,
        body: str,
        content_type: str = "text/html; charset=utf-8",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Serve `body` at `path` ({A} and {B} become the site's two origins, {IP} its address)."""
        self.pages[path] = (body, content_type, tuple((headers or {}).items()))

    def url(self, path: str, *, cross: bool = False) -> str:
        return (self.origin_b if cross else self.origin_a) + path

    # ------------------------------------------------------------------ evidence

    def writes(self) -> list[str]:
        """Every write that reached the site, described in one line each."""
        with self._lock:
            found = [
                f"{r.method} http://{r.host}{r.path} body={len(r.body)} frames={len(r.frames)}"
                for r in self.requests
                if r.method not in ("GET", "HEAD")
                or r.body
                or r.frames
                or r.headers.get("upgrade", "").lower() == "websocket"
            ]
            found += [f"UDP :{port} {len(data)} bytes" for port, data in self.datagrams]
            found += [f"TCP :{port} {len(data)} bytes" for port, data in self.trap_bytes]
            found += [f"sniffed {line}" for line in self.sniffed]
        return found

    def gets(self) -> list[str]:
        with self._lock:
            return [f"{r.method} {r.path}" for r in self.requests]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
            self.datagrams.clear()
            self.trap_bytes.clear()
            self.sniffed.clear()

    # ------------------------------------------------------------------ serving

    def start(self) -> None:
        path = f"/run/netns/{self.namespace}"

        def make() -> list[tuple[str, socket.socket, int]]:
            made = [("http", _listen(ip, HTTP_PORT), HTTP_PORT) for ip in (self.ip_a, self.ip_b)]
            made += [("tcp", _listen("0.0.0.0", port), port) for port in TCP_TRAPS]
            for port in UDP_TRAPS:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.bind(("0.0.0.0", port))
                made.append(("udp", sock, port))
            sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            sniffer.bind((self.ns_if, 0))
            made.append(("sniff", sniffer, 0))
            return made

        for kind, sock, port in in_namespace(path, make):
            self._sockets.append(sock)
            sock.settimeout(0.2)
            target = {
                "http": self._accept_http,
                "tcp": self._accept_trap,
                "udp": self._udp,
                "sniff": self._sniff,
            }[kind]
            threading.Thread(target=target, args=(sock, port), daemon=True).start()

    @property
    def ns_if(self) -> str:
        return "vn" + self.host_if[2:]

    def stop(self) -> None:
        self._stop.set()
        for sock in self._sockets:
            sock.close()

    def _each(self, receive: Callable[[], Any], handle: Callable[[Any], bool | None]) -> None:
        """Pass what `receive` returns to `handle` until the site stops, the socket closes or
        `handle` returns False."""
        while not self._stop.is_set():
            try:
                item = receive()
            except TimeoutError:
                continue
            except OSError:
                return
            if handle(item) is False:
                return

    def _accept_http(self, listener: socket.socket, _port: int) -> None:
        def serve(accepted: tuple[socket.socket, Any]) -> None:
            threading.Thread(target=self._serve_http, args=(accepted[0],), daemon=True).start()

        self._each(listener.accept, serve)

    def _accept_trap(self, listener: socket.socket, port: int) -> None:
        def drain(accepted: tuple[socket.socket, Any]) -> None:
            threading.Thread(target=self._drain_trap, args=(accepted[0], port), daemon=True).start()

        self._each(listener.accept, drain)

    def _drain_trap(self, conn: socket.socket, port: int) -> None:
        def keep(data: bytes) -> bool:
            if data:
                with self._lock:
                    self.trap_bytes.append((port, data))
            return bool(data)

        conn.settimeout(0.5)
        with conn:
            self._each(lambda: conn.recv(65536), keep)

    def _udp(self, sock: socket.socket, port: int) -> None:
        def keep(received: tuple[bytes, Any]) -> None:
            with self._lock:
                self.datagrams.append((port, received[0]))

        self._each(lambda: sock.recvfrom(65536), keep)

    def _sniff(self, sock: socket.socket, _port: int) -> None:
        """Every IPv4 UDP datagram, and every TCP SYN to a port other than HTTP."""
        self._each(lambda: sock.recv(65536), self._sniffed)

    def _sniffed(self, frame: bytes) -> None:
        if len(frame) < 34 or frame[12:14] != b"\x08\x00":
            return
        ip = frame[14:]
        header = (ip[0] & 0x0F) * 4
        proto = ip[9]
        dst = socket.inet_ntoa(ip[16:20])
        if dst not in (self.ip_a, self.ip_b):
            return
        if proto == 17:
            port = struct.unpack(">H", ip[header + 2 : header + 4])[0]
            with self._lock:
                self.sniffed.append(f"UDP to {dst}:{port}")
        elif proto == 6:
            port = struct.unpack(">H", ip[header + 2 : header + 4])[0]
            flags = ip[header + 13]
            if flags & 0x02 and not flags & 0x10 and port != HTTP_PORT:  # SYN
                with self._lock:
                    self.sniffed.append(f"TCP SYN to {dst}:{port}")

    def _serve_http(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        reader = conn.makefile("rb")
        with conn, contextlib.suppress(OSError, ValueError):
            while not self._stop.is_set():
                line = reader.readline(65536)
                if not line.strip():
                    return
                method, target, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (raw := reader.readline(65536)) not in (b"\r\n", b"\n", b""):
                    name, _, value = raw.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = b""
                if "content-length" in headers:
                    body = reader.read(int(headers["content-length"]))
                elif "chunked" in headers.get("transfer-encoding", "").lower():
                    while (size := int(reader.readline().split(b";")[0], 16)) > 0:
                        body += reader.read(size)
                        reader.readline()
                    reader.readline()
                received = Received(method, headers.get("host", ""), target, headers, body)
                with self._lock:
                    self.requests.append(received)
                if headers.get("upgrade", "").lower() == "websocket":
                    self._websocket(conn, reader, headers, received)
                    return
                conn.sendall(self._answer(method, target))

    def _websocket(
        self, conn: socket.socket, reader: Any, headers: dict[str, str], received: Received
    ) -> None:
        key = headers.get("sec-websocket-key", "")
        accept = base64.b64encode(
            hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
        ).decode()
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
        )
        conn.settimeout(0.5)
        while not self._stop.is_set():
            try:
                data = reader.read1(65536)
            except TimeoutError:
                continue
            if not data:
                return
            with self._lock:
                received.frames += data

    def _answer(self, method: str, target: str) -> bytes:
        path = target.split("?", 1)[0]
        if path.startswith("http://"):
            path = "/" + path.split("/", 3)[3].split("?", 1)[0]
        body, ctype, extra = self.pages.get(path, ("ok", "text/plain", ()))
        body = body.replace("{A}", self.origin_a).replace("{B}", self.origin_b)
        body = body.replace("{IP}", self.ip_a)
        data = b"" if method == "HEAD" else body.encode()
        head = [
            "HTTP/1.1 200 OK",
            f"Content-Type: {ctype}",
            f"Content-Length: {len(body.encode())}",
            "Cache-Control: no-store",
            *(f"{name}: {value}" for name, value in extra),
        ]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + data


def _listen(ip: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((ip, port))
    sock.listen(64)
    return sock


def _free_subnet() -> int | None:
    used = _ip("-o", "addr").stdout
    for _ in range(50):
        octet = secrets.randbelow(250) + 2
        if f" 10.202.{octet}." not in used:
            return octet
    return None


@contextlib.contextmanager
def wire_site() -> Iterator[WireSite | str]:
    """The hostile site in a fresh namespace (always cleaned up), or why it cannot exist here."""
    if os.geteuid() != 0:
        yield "needs root to create a network namespace (ip netns)"
        return
    if shutil.which("ip") is None:
        yield "needs the `ip` command (iproute2)"
        return
    token = secrets.token_hex(3)
    namespace, host_if, ns_if = f"vigie-wire-{token}", f"vh{token}", f"vn{token}"
    created = _ip("netns", "add", namespace, check=False)
    if created.returncode != 0:
        yield f"cannot create a network namespace here: {created.stderr.strip()}"
        return
    site: WireSite | None = None
    try:
        subnet = _free_subnet()
        if subnet is None:
            yield "no free 10.202.x.0/29 subnet for the test veth pair"
            return
        site = WireSite(namespace, host_if, subnet)
        _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _ip("link", "set", ns_if, "netns", namespace)
        _ip("addr", "add", f"{site.host_ip}/29", "dev", host_if)
        _ip("link", "set", host_if, "up")
        for address in (site.ip_a, site.ip_b):
            _ip("-n", namespace, "addr", "add", f"{address}/29", "dev", ns_if)
        _ip("-n", namespace, "link", "set", ns_if, "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        site.start()
        yield site
    finally:
        if site is not None:
            site.stop()
        _ip("link", "del", host_if, check=False)
        _ip("netns", "del", namespace, check=False)
