"""The browser's only way out: a policy proxy that lets GET and HEAD through and nothing else.

Chromium runs in a network namespace of its own (probes/confine.py) where the only open door is
a set of listening sockets this proxy serves from Vigie's process. Every byte any part of a page
sends (page, iframe, dedicated/shared/service worker, pop-up, prerender, unload handler, WebRTC
over TCP) crosses this code, and this code lets through:

* plain ``GET`` and ``HEAD`` requests without a body, re-sent by the proxy to the target;
* ``CONNECT`` tunnels whose first byte opens a TLS handshake: the proxy ends TLS itself with a
  certificate of a per-instance authority (only this browser accepts it, by the SPKI of its key)
  and applies the same rule to every request inside.

Everything else is refused *before a byte is sent to the target*: other methods, WebSocket
upgrades, requests with a body, tunnels that do not start with TLS (TURN over TCP, raw sockets),
garbage. Each refusal is recorded, with the kind of sender Chromium declares (`Sec-Fetch-Dest`),
in the session of the check whose browser context sent it: one listening port per context.

The proxy validates the target's certificate itself (system CAs, hostname), so a bad certificate
is still a `tls_error`; the certificate facts and the remote address of the upstream connection go
into the observation.

Why our own proxy and not mitmproxy's addon API (measured 2026-12-07, details in
docs/browser-probes.md): mitmproxy 11.0.2, the newest that installs on Python 3.11, brings 37
packages and pins `cryptography<44.1` (Vigie uses 51: downgrade) and `h11<=0.14` (0.14 has the
request-smuggling flaw CVE-2025-43859, fixed in 0.16 which Vigie has). The policy needs only
HTTP/1.1 parsing (h11, a well-kept sans-I/O parser), TLS (the standard library) and a certificate
authority (`cryptography`, already a dependency): ~700 lines in the probe's own process.

Why it is long: the GET/HEAD-only rule at the wire is read byte by byte (request line, headers,
bodies, tunnels, upgrades) in one parser; split, one security rule would be spread over several
files.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import ipaddress
import os
import re
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import h11
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from config.vocabulary import Outcome
from probes.guard import ALLOWED_METHODS
from probes.httpclient import Exchange, _ssl_facts  # the HTTP probe's facts, same format
from probes.observation import BlockedRequest, TLSInfo

__all__ = ["RefusedError", "WireProxy", "WireSession"]

log = structlog.get_logger("vigie.wireproxy")

CONNECT_TIMEOUT = 30.0  # the check's own deadline cuts sooner
HANDSHAKE_TIMEOUT = 15.0
IDLE_TIMEOUT = 120.0
READ_SIZE = 65536
MAX_LISTED = 500
CAPTURE_BYTES = 8 * 1024 * 1024  # answers kept per check for its WARC; beyond: WARC-Truncated
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authorization",
        b"proxy-authenticate",
        b"te",
        b"trailer",
        b"upgrade",
    }
)
# Header names the proxy never forwards from the target to the browser.
_NOT_BACK = _HOP_BY_HOP - {b"proxy-authenticate"}


class RefusedError(Exception):
    """The policy refused a request: nothing of it goes further."""


class WireSession:
    """What the browser context of one check sent through the proxy (one listening port)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.blocked: list[BlockedRequest] = []
        self.dropped = 0
        # Per origin ("https://host:443"): why the proxy could not reach it, its certificate,
        # the address it connected to.
        self.failures: dict[str, tuple[Outcome, str]] = {}
        self.certificates: dict[str, TLSInfo] = {}
        self.addresses: dict[str, str] = {}
        self.forwarded = 0
        # What crossed the wire, for the WARC of a failed check (bounded: CAPTURE_BYTES).
        self.exchanges: list[Exchange] = []
        self.capture_left = CAPTURE_BYTES
        self.streams: set[_Plain] = set()  # open connections, closed with the session
        self._lock = threading.Lock()

    def block(self, method: str, url: str, sender: str | None) -> None:
        with self._lock:
            if len(self.blocked) < MAX_LISTED:
                self.blocked.append(BlockedRequest(method=method, url=url, sender=sender))
            else:
                self.dropped += 1
        log.info("wire_blocked", method=method, url=url, sender=sender, port=self.port)

    def failure(self, url: str) -> tuple[Outcome, str] | None:
        """Why the proxy could not reach `url`'s origin, if it could not."""
        return self.failures.get(_origin_of(url))

    def certificate(self, url: str) -> TLSInfo | None:
        return self.certificates.get(_origin_of(url))

    def address(self, url: str) -> str | None:
        return self.addresses.get(_origin_of(url))


class _Stream(Protocol):
    async def recv(self) -> bytes: ...
    async def send(self, data: bytes) -> None: ...
    def close(self) -> None: ...


class _Tap:
    """Keeps the bytes of one answer as they came from the target, for the WARC capture."""

    def __init__(self, exchange: Exchange, session: WireSession) -> None:
        self.exchange = exchange
        self.session = session
        self.raw = bytearray()
        self.decoded: list[bytes] | None = []
        self.truncated = False

    def add(self, data: bytes) -> None:
        room = max(0, self.session.capture_left)
        kept = data[:room]
        self.raw += kept
        self.session.capture_left -= len(kept)
        if len(kept) < len(data):
            self.truncated = True
            self.decoded = None

    def finish(self, response: h11.Response, *, complete: bool) -> None:
        """Fill the exchange: status, headers, raw head and body as received."""
        ex = self.exchange
        ex.status = response.status_code
        ex.reason = response.reason.decode("latin-1", "replace")
        ex.http_version = response.http_version.decode("ascii", "replace")
        ex.headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in response.headers}
        end = self.raw.find(b"\r\n\r\n")
        split = len(self.raw) if end < 0 else end + 4
        # One copy of up to CAPTURE_BYTES, not two: a 200 MB page keeps the capture full.
        with memoryview(self.raw) as view:
            ex.raw_head, ex.raw_body = bytes(view[:split]), bytes(view[split:])
        ex.raw_body_truncated = self.truncated
        ex.complete = complete
        ex.body = b"".join(self.decoded) if complete and self.decoded is not None else None
        self.raw, self.decoded = bytearray(), None


class _Plain:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.tap: _Tap | None = None

    async def recv(self) -> bytes:
        data = await self.reader.read(READ_SIZE)
        if self.tap is not None:
            self.tap.add(data)
        return data

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def close(self) -> None:
        self.writer.close()


class _Tls:
    """Server side of TLS over another stream (memory BIOs: the first bytes are already read)."""

    def __init__(self, raw: _Stream, context: ssl.SSLContext, first: bytes) -> None:
        self.raw = raw
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.incoming.write(first)

    async def handshake(self) -> None:
        while True:
            try:
                self.tls.do_handshake()
            except ssl.SSLWantReadError:
                await self._flush()
                if not await self._fill():
                    raise ConnectionError("the browser closed during the TLS handshake") from None
            else:
                await self._flush()
                return

    async def _fill(self) -> bool:
        data = await self.raw.recv()
        if not data:
            self.incoming.write_eof()
            return False
        self.incoming.write(data)
        return True

    async def _flush(self) -> None:
        pending = self.outgoing.read()
        if pending:
            await self.raw.send(pending)

    async def recv(self) -> bytes:
        while True:
            try:
                return self.tls.read(READ_SIZE)
            except ssl.SSLWantReadError:
                await self._flush()
                if not await self._fill():
                    return b""
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    async def send(self, data: bytes) -> None:
        self.tls.write(data)
        await self._flush()

    def close(self) -> None:
        self.raw.close()


class _Prefixed:
    """A stream whose first bytes were already read."""

    def __init__(self, raw: _Stream, first: bytes) -> None:
        self.raw = raw
        self.first = first

    async def recv(self) -> bytes:
        if self.first:
            first, self.first = self.first, b""
            return first
        return await self.raw.recv()

    async def send(self, data: bytes) -> None:
        await self.raw.send(data)

    def close(self) -> None:
        self.raw.close()


class _Upstream:
    """A connection from the proxy to a target, reused by the requests of one browser connection."""

    def __init__(self, stream: _Plain, session: WireSession) -> None:
        self.stream = stream
        self.session = session
        self.http = h11.Connection(h11.CLIENT)
        self.fresh = True

    def reusable(self) -> bool:
        return self.http.our_state is h11.IDLE and self.http.their_state is h11.IDLE

    def close(self) -> None:
        self.session.streams.discard(self.stream)
        self.stream.close()


class _Authority:
    """The per-instance certificate authority: one CA, one leaf key, one leaf per host."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.leaf_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(
                    NameOID.COMMON_NAME, f"Vigie read-only proxy {os.urandom(4).hex()}"
                )
            ]
        )
        now = dt.datetime.now(dt.UTC)
        self.ca_name = name
        self.ca_cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self.ca_key, hashes.SHA256())
        )
        spki = self.leaf_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        # What Chromium's --ignore-certificate-errors-spki-list takes: base64 SHA-256 of the SPKI.
        self.spki_sha256 = base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")
        self.key_path = directory / "leaf.key"
        self.key_path.write_bytes(
            self.leaf_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self._contexts: dict[str, ssl.SSLContext] = {}

    def context(self, host: str) -> ssl.SSLContext:
        """A TLS server context presenting a certificate for `host` (made once per host)."""
        found = self._contexts.get(host)
        if found is not None:
            return found
        now = dt.datetime.now(dt.UTC)
        try:
            san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            san = x509.DNSName(host)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host[:64])]))
            .issuer_name(self.ca_name)
            .public_key(self.leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([san]), critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )
        chain = self.directory / f"leaf-{hashlib.sha256(host.encode()).hexdigest()[:16]}.pem"
        chain.write_bytes(
            cert.public_bytes(serialization.Encoding.PEM)
            + self.ca_cert.public_bytes(serialization.Encoding.PEM)
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["http/1.1"])
        context.load_cert_chain(chain, self.key_path)
        if len(self._contexts) > 256:
            self._contexts.clear()
        self._contexts[host] = context
        return context


# (scheme, host, port, upstream already open) of a CONNECT tunnel
_Tunnel = tuple[str, str, int, "_Upstream | None"]
_HTTP_REQUEST = re.compile(rb"[A-Z]{3,12} /")


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    default = 443 if scheme == "https" else 80
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{parts.port or default}"


def _split_authority(authority: str, default: int) -> tuple[str, int]:
    if authority.startswith("["):
        host, _, rest = authority[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = authority.rpartition(":") if ":" in authority else (authority, "", "")
    if not port.isdigit() or not 0 < int(port) < 65536:
        if port:
            raise RefusedError(f"bad port in {authority!r}")
        return host.lower(), default
    return host.lower(), int(port)


def _url(scheme: str, host: str, port: int, path: str) -> str:
    default = 443 if scheme in ("https", "wss") else 80
    shown = f"[{host}]" if ":" in host else host
    if port != default:
        shown += f":{port}"
    return f"{scheme}://{shown}{path}"


def _sender(headers: dict[bytes, bytes]) -> str | None:
    """The kind of sender Chromium declares (Fetch Metadata), when it says."""
    dest = headers.get(b"sec-fetch-dest", b"").decode("latin-1")
    if headers.get(b"ping-from") or headers.get(b"content-type", b"").startswith(b"text/ping"):
        return "ping"
    if headers.get(b"sec-purpose", b"").startswith(b"prefetch"):
        return f"{dest or 'document'} (prefetch/prerender)"
    return dest or None


class WireProxy:
    """The policy proxy of one browser instance: one session (listening port) per context."""

    def __init__(self, upstream_ssl: ssl.SSLContext | None = None) -> None:
        self._directory = Path(tempfile.mkdtemp(prefix="vigie-wire-"))
        self._authority = _Authority(self._directory)
        self._upstream_ssl = upstream_ssl or _default_upstream_context()
        self._servers: list[asyncio.Server] = []
        self._free: list[int] = []
        self._sessions: dict[int, WireSession] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.ports: list[int] = []

    @property
    def spki_sha256(self) -> str:
        """Base64 SHA-256 of the key of every certificate this proxy presents to the browser."""
        return self._authority.spki_sha256

    async def serve(self, listeners: Iterable[socket.socket]) -> None:
        """Serve the sockets created in the browser's namespace (the first: no context's)."""
        for index, sock in enumerate(listeners):
            sock.setblocking(False)  # noqa: FBT003 - the socket API
            port = int(sock.getsockname()[1])
            self.ports.append(port)
            if index:
                self._free.append(port)

            async def client(
                reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int = port
            ) -> None:
                await self._client(port, reader, writer)

            self._servers.append(await asyncio.start_server(client, sock=sock, limit=READ_SIZE))

    def open_session(self) -> WireSession:
        """A port of its own for a new browser context; raises RuntimeError when none is free."""
        if not self._free:
            raise RuntimeError("no free proxy port for another browser context")
        port = self._free.pop(0)
        session = WireSession(port)
        self._sessions[port] = session
        return session

    def close_session(self, session: WireSession) -> None:
        """The context is closed: its connections end, its port serves the next one."""
        if self._sessions.get(session.port) is session:
            del self._sessions[session.port]
            self._free.append(session.port)
        # Closing the connections ends their tasks (cancelling them would make asyncio's
        # stream server log each one as an error).
        for stream in list(session.streams):
            stream.close()

    async def aclose(self) -> None:
        for session in list(self._sessions.values()):
            self.close_session(session)
        for server in self._servers:
            server.close()
        self._servers.clear()
        # Their connections are closed: let the tasks serving them end before the loop does.
        pending = {task for task in self._tasks if not task.done()}
        if pending:
            await asyncio.wait(pending, timeout=2.0)
        with contextlib.suppress(OSError):
            for path in self._directory.iterdir():
                path.unlink()
            self._directory.rmdir()

    # ------------------------------------------------------------------ connections

    async def _client(
        self, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        session = self._sessions.get(port)
        stream = _Plain(reader, writer)
        raw = writer.get_extra_info("socket")
        if raw is not None:  # small writes go at once (asyncio skips sockets made with proto 0)
            with contextlib.suppress(OSError):
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if session is None:  # the default context, or one already closed: nothing passes
            log.warning("wire_connection_without_context", port=port)
            stream.close()
            return
        session.streams.add(stream)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        try:
            await self._serve(session, stream, None)
        except (OSError, asyncio.IncompleteReadError, h11.ProtocolError, ssl.SSLError):
            pass
        except TimeoutError:
            pass
        finally:
            session.streams.discard(stream)
            stream.close()

    async def _next_event(self, conn: h11.Connection, stream: _Stream) -> object:
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            async with asyncio.timeout(IDLE_TIMEOUT):
                data = await stream.recv()
            conn.receive_data(data)

    async def _serve(
        self,
        session: WireSession,
        stream: _Stream,
        tunnel: _Tunnel | None,
    ) -> None:
        """Serve the requests of one browser connection (or of one tunnel) in turn."""
        conn = h11.Connection(h11.SERVER)
        upstreams: dict[tuple[str, str, int], _Upstream] = {}
        if tunnel is not None and tunnel[3] is not None:
            upstreams[tunnel[0], tunnel[1], tunnel[2]] = tunnel[3]
        try:
            while True:
                event = await self._next_event(conn, stream)
                if not isinstance(event, h11.Request):
                    return  # ConnectionClosed, or a client speaking out of turn
                method = event.method.decode("ascii", "replace").upper()
                headers = {k.lower(): v for k, v in event.headers}
                target = event.target.decode("latin-1")
                if tunnel is None and method == "CONNECT":
                    await self._connect(session, conn, stream, target)
                    return
                try:
                    scheme, host, port, path = self._locate(target, tunnel)
                except RefusedError as exc:
                    session.block(method, target[:300], _sender(headers))
                    await self._refuse(conn, stream, str(exc))
                    return
                upgrade = headers.get(b"upgrade", b"").lower()
                if upgrade:
                    shown = (
                        {"http": "ws", "https": "wss"}[scheme]
                        if upgrade == b"websocket"
                        else scheme
                    )
                    kind = (
                        "WEBSOCKET"
                        if upgrade == b"websocket"
                        else f"UPGRADE {upgrade.decode('latin-1')}"
                    )
                    session.block(
                        kind, _url(shown, host, port, path), _sender(headers) or "websocket"
                    )
                    await self._refuse(conn, stream, "no protocol upgrade: read-only")
                    return
                url = _url(scheme, host, port, path)
                has_body = headers.get(b"content-length", b"0").strip() not in (b"0", b"")
                if method not in ALLOWED_METHODS or has_body or b"transfer-encoding" in headers:
                    session.block(method, url, _sender(headers))
                    await self._refuse(conn, stream, f"{method} refused: read-only")
                    return
                # No body: the request's end is already parsed; read it so that the browser's
                # connection can carry its next request (keep-alive).
                if not isinstance(await self._next_event(conn, stream), h11.EndOfMessage):
                    session.block(method, url, _sender(headers))
                    await self._refuse(conn, stream, f"{method} with a body refused: read-only")
                    return
                forwarded = await self._forward(
                    session=session,
                    conn=conn,
                    stream=stream,
                    request=event,
                    where=(scheme, host, port, path),
                    upstreams=upstreams,
                )
                if not forwarded:
                    return
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        finally:
            for upstream in upstreams.values():
                upstream.close()

    @staticmethod
    def _locate(target: str, tunnel: _Tunnel | None) -> tuple[str, str, int, str]:
        if tunnel is not None:
            if not target.startswith("/"):
                raise RefusedError("inside a tunnel, only origin-form targets")
            return tunnel[0], tunnel[1], tunnel[2], target
        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.netloc:
            raise RefusedError(f"not an http URL: {target[:100]!r}")
        host, port = _split_authority(parts.netloc.rpartition("@")[2], 80)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return "http", host, port, path

    async def _refuse(self, conn: h11.Connection, stream: _Stream, reason: str) -> None:
        body = f"Vigie: {reason}\n".encode()
        with contextlib.suppress(h11.LocalProtocolError, OSError):
            data = conn.send(
                h11.Response(
                    status_code=403,
                    headers=[
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close"),
                    ],
                )
            )
            data = (data or b"") + (conn.send(h11.Data(data=body)) or b"")
            data += conn.send(h11.EndOfMessage()) or b""
            await stream.send(data)

    async def _connect(
        self, session: WireSession, conn: h11.Connection, stream: _Stream, target: str
    ) -> None:
        """A CONNECT tunnel: only TLS, which the proxy ends itself to see the requests inside."""
        try:
            host, port = _split_authority(target, 443)
        except RefusedError:
            session.block("CONNECT", target[:300], "tunnel")
            await self._refuse(conn, stream, "bad CONNECT target")
            return
        await stream.send(conn.send(h11.Response(status_code=200, headers=[])) or b"")
        first, _ = conn.trailing_data
        if not first:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                first = await stream.recv()
        if not first:
            return
        if _HTTP_REQUEST.match(first):
            # Plain HTTP in a tunnel: what Chromium does for ws:// through a proxy. Served like
            # any request (the WebSocket upgrade is refused and listed as such).
            await self._serve(session, _Prefixed(stream, first), ("http", host, port, None))
            return
        if first[0] != 0x16:  # not a TLS handshake record: nothing the proxy could inspect
            session.block("CONNECT", f"{host}:{port}", "tunnel (not TLS nor HTTP)")
            return
        upstream = await self._open(session, "https", host, port)
        if upstream is None:
            return  # the browser sees the tunnel close; the session says why
        tls = _Tls(stream, self._authority.context(host), first)
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                await tls.handshake()
            await self._serve(session, tls, ("https", host, port, upstream))
        finally:
            upstream.close()

    async def _open(
        self, session: WireSession, scheme: str, host: str, port: int
    ) -> _Upstream | None:
        """A connection to the target, or None with the failure recorded in the session."""
        origin = _origin_of(_url(scheme, host, port, "/"))
        failure: tuple[Outcome, str] | None = None
        if host.endswith(".invalid") or host == "invalid":
            failure = (Outcome.DNS_ERROR, f"ERR_NAME_NOT_RESOLVED: {host} (reserved name)")
        else:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    reader, writer = await asyncio.open_connection(
                        host.strip("[]"),
                        port,
                        ssl=self._upstream_ssl if scheme == "https" else None,
                        server_hostname=host.strip("[]") if scheme == "https" else None,
                        limit=READ_SIZE,
                    )
            except socket.gaierror as exc:
                failure = (Outcome.DNS_ERROR, f"ERR_NAME_NOT_RESOLVED: {host} ({exc.strerror})")
            except ssl.SSLCertVerificationError as exc:
                failure = (Outcome.TLS_ERROR, f"ERR_CERT_INVALID: {exc.verify_message}")
            except ssl.SSLError as exc:
                failure = (Outcome.TLS_ERROR, f"ERR_SSL_PROTOCOL_ERROR: {exc.reason or exc}")
            except TimeoutError:
                failure = (Outcome.TIMEOUT, f"ERR_CONNECTION_TIMED_OUT: {host}:{port}")
            except ConnectionRefusedError:
                failure = (Outcome.CONNECT_ERROR, f"ERR_CONNECTION_REFUSED: {host}:{port}")
            except OSError as exc:
                failure = (Outcome.CONNECT_ERROR, f"ERR_CONNECTION_FAILED: {exc.strerror or exc}")
        if failure is not None:
            session.failures[origin] = failure
            log.info("wire_upstream_failed", origin=origin, error=failure[1])
            return None
        session.failures.pop(origin, None)
        peer = writer.get_extra_info("peername")
        if peer:
            session.addresses[origin] = str(peer[0])
        if scheme == "https":
            facts = _ssl_facts(writer.transport)
            if facts is not None:
                session.certificates[origin] = facts
        upstream = _Upstream(_Plain(reader, writer), session)
        session.streams.add(upstream.stream)
        return upstream

    async def _forward(
        self,
        *,
        session: WireSession,
        conn: h11.Connection,
        stream: _Stream,
        request: h11.Request,
        where: tuple[str, str, int, str],
        upstreams: dict[tuple[str, str, int], _Upstream],
    ) -> bool:
        """Send a GET/HEAD to the target and its answer back; False: close the browser's side."""
        scheme, host, port, path = where
        headers = [(k, v) for k, v in request.headers if k.lower() not in _HOP_BY_HOP]
        if not any(k.lower() == b"host" for k, _ in headers):
            headers.append((b"host", _url("x", host, port, "")[4:].encode("latin-1")))
        # The method as the policy read it (upper case): a "get" is sent as GET, never as is.
        outgoing = h11.Request(
            method=request.method.upper(), target=path.encode("latin-1"), headers=headers
        )
        key = (scheme, host, port)
        for attempt in (1, 2):
            upstream = upstreams.get(key)
            if upstream is None or not upstream.reusable():
                if upstream is not None:
                    upstream.close()
                upstream = await self._open(session, scheme, host, port)
                if upstream is None:
                    upstreams.pop(key, None)
                    return False
                upstreams[key] = upstream
            reused = not upstream.fresh
            upstream.fresh = False
            origin = _origin_of(_url(scheme, host, port, "/"))
            raw_request = upstream.http.send(outgoing) + (
                upstream.http.send(h11.EndOfMessage()) or b""
            )
            exchange = Exchange(
                method=request.method.upper().decode("ascii"),
                url=_url(scheme, host, port, path),
                scheme=scheme,
                host=host.strip("[]"),
                port=port,
                raw_request=raw_request,
                remote_ip=session.addresses.get(origin),
                tls=session.certificates.get(origin),
            )
            tap = upstream.stream.tap = _Tap(exchange, session)
            try:
                await upstream.stream.send(raw_request)
                response = await self._next_event(upstream.http, upstream.stream)
                while isinstance(response, h11.InformationalResponse):
                    response = await self._next_event(upstream.http, upstream.stream)
            except (OSError, h11.ProtocolError):
                response = None
            if isinstance(response, h11.Response):
                break
            upstreams.pop(key).close()
            if not reused or attempt == 2:
                session.failures[_origin_of(_url(scheme, host, port, "/"))] = (
                    Outcome.PROTOCOL_ERROR,
                    f"ERR_EMPTY_RESPONSE: {host}:{port} closed without an answer",
                )
                return False
        else:  # pragma: no cover - the loop breaks or returns
            return False
        session.forwarded += 1
        if len(session.exchanges) < MAX_LISTED:
            session.exchanges.append(tap.exchange)
        back = [(k, v) for k, v in response.headers if k.lower() not in _NOT_BACK]
        await stream.send(
            conn.send(
                h11.Response(status_code=response.status_code, headers=back, reason=response.reason)
            )
            or b""
        )
        complete = False
        try:
            while True:
                event = await self._next_event(upstream.http, upstream.stream)
                if isinstance(event, h11.Data):
                    if tap.decoded is not None:
                        tap.decoded.append(event.data)
                    await stream.send(conn.send(h11.Data(data=event.data)) or b"")
                elif isinstance(event, h11.EndOfMessage):
                    complete = True
                    await stream.send(conn.send(h11.EndOfMessage()) or b"")
                    break
                else:
                    return False
        finally:
            upstream.stream.tap = None
            tap.finish(response, complete=complete)
        if upstream.http.our_state is h11.DONE and upstream.http.their_state is h11.DONE:
            upstream.http.start_next_cycle()
        else:
            upstreams.pop(key).close()
        return True


def _default_upstream_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context
