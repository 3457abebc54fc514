"""A lean HTTP/1.1 client for probes: one fresh connection per request, precise phase timing.

It never reuses a connection, never follows redirects or sends anything on its own, never uses a
proxy or keeps cookies, and never reads past its limits (head size, header count, body bytes).

Why Vigie's own raw-bytes client and not httpx: CPU per probe, and the raw bytes kept for the
WARC evidence. Measured with `bench/client_cpu.py` (loopback, a fresh connection per GET as a
probe makes, 3000 GETs, default asyncio loop, 2 shared cores, December 2026), CPU per GET:
this client 0.26-0.30 ms, raw asyncio streams 0.21-0.23 ms, httpx 0.28.1 with one shared
AsyncClient 1.36-2.10 ms (4-6x this client). Issue 16 had measured the same in the service:
httpx about 0.97 ms per probe against blackbox_exporter's 1.04 ms for its whole probe, raw
asyncio streams 0.13 ms. Happy Eyeballs (RFC 8305) is `aiohappyeyeballs`, used when a name has
several addresses; a single address connects directly (measured: no extra CPU, 0.26-0.30 ms
against 0.27-0.35 ms before Happy Eyeballs).

Why it is long: resolution, Happy Eyeballs, TLS, chunked and content decoding and the per-phase
timing are one state machine per request, kept in one place so the raw bytes and timings cannot
drift apart.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import dataclasses
import datetime as dt
import functools
import hashlib
import ipaddress
import re
import socket
import ssl
import zlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from time import perf_counter
from typing import Any, cast
from urllib.parse import quote, urlsplit

import aiohappyeyeballs
from cryptography import x509

from config.vocabulary import Outcome
from probes.observation import TLSInfo

__all__ = [
    "CONNECT_ATTEMPT_DELAY",
    "PHASES",
    "ConnectAttempt",
    "Exchange",
    "FetchError",
    "HttpClient",
    "Limits",
    "Resolver",
    "body_text_contains",
    "default_ssl_context",
]

# How host names become addresses: `loop.getaddrinfo` unless one is injected (tests use this to
# make lookups fail without asking the system's DNS resolver, which is not on this machine).
Resolver = Callable[
    [str, int],
    Awaitable[Sequence[tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]]],
]

PHASES = ("resolve", "connect", "tls", "processing", "transfer")
_MIB = 1024 * 1024
_HIGH_WATER = 256 * 1024  # pause reading when this much is buffered and not yet consumed
_MAX_INTERIM = 10  # 1xx responses skipped before giving up
_CHUNK_LINE_LIMIT = 4096
_CHUNK_SIZE_RE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_HEADER_RE = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([^\r\n]*?)[ \t]*\r?\n")
_HOST_RE = re.compile(r"[A-Za-z0-9._~-]+|[0-9A-Fa-f:.]+")
_STATUS_RE = re.compile(r"HTTP/(1\.[01]) ([0-9]{3})(?: ([^\r\n]*))?\r?\n")
_SAFE_TARGET = "!#$%&'()*+,/:;=?@[]~-._"
_NO_BODY_STATUS = frozenset({204, 304})
_TLS_HINTS = {
    "WRONG_VERSION_NUMBER": " (the server does not seem to speak TLS on this port)",
    "TLSV1_ALERT_PROTOCOL_VERSION": " (no TLS version in common: Vigie requires TLS 1.2 or later)",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": " (no cipher or protocol in common with the server)",
}
_PREPARED_CACHE = 4096  # requests prepared per client (one per target URL and redirect)
# RFC 8305 §5 "Connection Attempt Delay": the next address is tried after this long without an
# answer from the previous ones (recommended default 250 ms), families interleaved (§4).
CONNECT_ATTEMPT_DELAY = 0.25
_AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one response may make the probe read or hold."""

    max_body: int = 10 * _MIB  # decoded (after gzip/deflate) body bytes
    max_wire_body: int = 16 * _MIB  # raw body bytes on the wire, framing included
    max_head: int = 64 * 1024  # status line + headers
    max_headers: int = 100  # header (and trailer) lines
    capture_body: int = 2 * _MIB  # raw body bytes kept for captures (WARC)


@dataclasses.dataclass(slots=True)
class ConnectAttempt:
    """One TCP connection attempt to one address of the host (Happy Eyeballs, RFC 8305)."""

    ip: str
    after_s: float  # when it started, counted from the start of the connect phase
    result: str = "pending"  # connected | refused | failed | abandoned | runner_up
    duration_s: float = 0.0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form kept in the observation's environment (`connections`)."""
        data: dict[str, Any] = {
            "ip": self.ip,
            "after_s": round(self.after_s, 6),
            "result": self.result,
            "duration_s": round(self.duration_s, 6),
        }
        if self.error is not None:
            data["error"] = self.error
        return data


class _AttemptRecorder:
    """Stands in for the event loop given to `aiohappyeyeballs.start_connection`, which only
    calls its `sock_connect`: each attempt is timed and its outcome recorded, so the observation
    says which address answered, which were tried and how each failed."""

    def __init__(self, loop: asyncio.AbstractEventLoop, attempts: list[ConnectAttempt]) -> None:
        self._loop = loop
        self._start = perf_counter()
        self.attempts = attempts

    async def sock_connect(self, sock: socket.socket, address: tuple[Any, ...]) -> None:
        attempt = ConnectAttempt(str(address[0]), perf_counter() - self._start)
        self.attempts.append(attempt)
        with _recorded(attempt):
            await self._loop.sock_connect(sock, address)


@contextlib.contextmanager
def _recorded(attempt: ConnectAttempt) -> Iterator[None]:
    """Time the connection attempt run inside and record how it ended."""
    started = perf_counter()
    try:
        yield
    except asyncio.CancelledError:
        attempt.result = "abandoned"  # no answer before another address or the deadline
        raise
    except ConnectionRefusedError:
        attempt.result = "refused"
        raise
    except (OSError, RuntimeError) as exc:  # uvloop may raise RuntimeError
        attempt.result = "failed"
        attempt.error = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise
    else:
        attempt.result = "connected"
    finally:
        attempt.duration_s = perf_counter() - started


class FetchError(Exception):
    """One request failed; `outcome` classifies why and the message says it in one line."""

    def __init__(self, outcome: Outcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


@dataclasses.dataclass(slots=True, eq=False)
class Exchange:
    """One request/response on its own connection: timings, facts and raw bytes (for WARC)."""

    method: str
    url: str
    scheme: str
    host: str  # ASCII (IDNA) host, without IPv6 brackets
    port: int
    raw_request: bytes
    phases: dict[str, float] = dataclasses.field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    phase: str | None = None  # the phase under way, if any
    resolved_ips: tuple[str, ...] = ()
    attempts: list[ConnectAttempt] = dataclasses.field(default_factory=list)
    dns_error: str | None = None  # the resolver's error class (EAI_NONAME, EAI_AGAIN...), if any
    remote_ip: str | None = None
    tls: TLSInfo | None = None
    tls_verify_failed: bool = False
    status: int | None = None
    reason: str = ""
    http_version: str = ""
    headers: dict[str, str] = dataclasses.field(default_factory=dict)  # lower-case names
    raw_head: bytes = b""  # status line and headers as received (or the unparsable bytes)
    raw_body: bytes = b""  # body bytes as received (framing included), up to Limits.capture_body
    raw_body_truncated: bool = False
    body: bytes | None = None  # decoded body, when it was read completely
    body_sha256: str | None = None
    complete: bool = False
    phase_started: float = 0.0
    first_byte_at: float | None = None  # perf_counter() of the first response byte

    def begin(self, phase: str, at: float | None = None) -> None:
        """Close the phase under way at `at` (default: now) and start `phase` there."""
        now = perf_counter() if at is None else at
        if self.phase is not None:
            self.phases[self.phase] += max(0.0, now - self.phase_started)
        self.phase = phase
        self.phase_started = now

    def end(self, at: float | None = None) -> None:
        """Close the phase under way (used on success and when the deadline cuts the request)."""
        now = perf_counter() if at is None else at
        if self.phase == "processing" and self.first_byte_at is not None:
            self.begin("transfer", self.first_byte_at)
        if self.phase is not None:
            self.phases[self.phase] += max(0.0, now - self.phase_started)
        self.phase = None

    @property
    def location(self) -> str | None:
        """The Location header, if any."""
        return self.headers.get("location")

    @property
    def content_type(self) -> str:
        """The Content-Type header ('' when absent)."""
        return self.headers.get("content-type", "")


class _Connection(asyncio.Protocol):
    """Buffers what the server sends, timestamps the first byte, counts and captures bytes."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.first_byte_at: float | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self.consumed = 0
        self.wire_limit = -1
        self.capture: bytearray | None = None
        self.capture_limit = 0
        self.capture_truncated = False

    # asyncio.Protocol callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        if self.first_byte_at is None:
            self.first_byte_at = perf_counter()
        self.buffer += data
        if not self._paused and len(self.buffer) > _HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
            self._paused = True
        self._wake()

    def eof_received(self) -> bool | None:
        self.eof = True
        self._wake()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        if exc is not None and self.error is None:
            self.error = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # reading
    async def fill(self) -> None:
        """Wait until more bytes arrive or the stream ends."""
        if self.eof:
            return
        if self._paused and self.transport is not None:
            self.transport.resume_reading()
            self._paused = False
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def start_body(self, wire_limit: int, capture_limit: int) -> None:
        """From now on, count consumed bytes against `wire_limit` and keep the first ones."""
        self.consumed = 0
        self.wire_limit = wire_limit
        self.capture = bytearray()
        self.capture_limit = capture_limit

    def _account(self, data: bytes | bytearray) -> None:
        if self.wire_limit < 0:
            return
        self.consumed += len(data)
        if self.consumed > self.wire_limit:
            raise FetchError(
                Outcome.TOO_LARGE,
                f"response body larger than {_size(self.wire_limit)} on the wire",
            )
        capture = self.capture
        if capture is not None:
            room = self.capture_limit - len(capture)
            if room >= len(data):
                capture += data
            else:
                if room > 0:
                    capture += data[:room]
                self.capture_truncated = True

    def take(self, size: int) -> bytes:
        """Remove and return up to `size` buffered bytes."""
        buf = self.buffer
        if size >= len(buf):
            data = bytes(buf)
            buf.clear()
        else:
            data = bytes(buf[:size])
            del buf[:size]
        self._account(data)
        return data

    async def read_head(self, limit: int) -> bytes:
        """The next status line and header block, blank line included."""
        start = 0
        while True:
            buf = self.buffer
            if len(buf) >= 5 and not buf.startswith(b"HTTP/"):
                raise FetchError(
                    Outcome.PROTOCOL_ERROR,
                    f"response does not start with an HTTP status line: {_show(buf[:40])}",
                )
            end = _head_end(buf, start)
            if end > limit:
                raise FetchError(Outcome.TOO_LARGE, f"response headers larger than {_size(limit)}")
            if end:
                head = bytes(buf[:end])
                del buf[:end]
                return head
            if len(buf) > limit:
                raise FetchError(Outcome.TOO_LARGE, f"response headers larger than {_size(limit)}")
            start = max(0, len(buf) - 3)
            if self.eof:
                raise self._eof_before_head()
            await self.fill()

    def _eof_before_head(self) -> FetchError:
        if self.buffer:
            return FetchError(
                Outcome.PROTOCOL_ERROR,
                "connection closed in the middle of the response headers"
                + _reason_suffix(self.error),
            )
        if isinstance(self.error, ConnectionResetError):
            return FetchError(
                Outcome.CONNECT_ERROR, "connection reset by the server before any response"
            )
        return FetchError(
            Outcome.CONNECT_ERROR,
            "server closed the connection without sending a response" + _reason_suffix(self.error),
        )

    async def read_line(self, limit: int, what: str) -> bytes:
        """The next line (without its CRLF or LF)."""
        while True:
            buf = self.buffer
            idx = buf.find(b"\n")
            if idx >= 0:
                if idx > limit:
                    raise FetchError(Outcome.PROTOCOL_ERROR, f"{what} line is too long")
                line = self.take(idx + 1)
                return line[:-2] if line.endswith(b"\r\n") else line[:-1]
            if len(buf) > limit:
                raise FetchError(Outcome.PROTOCOL_ERROR, f"{what} line is too long")
            if self.eof:
                raise self.incomplete(f"connection closed in the middle of the {what}")
            await self.fill()

    def incomplete(self, message: str) -> FetchError:
        """The error for a body cut short (reset or early close)."""
        if isinstance(self.error, ConnectionResetError):
            message = message.replace("connection closed", "connection reset by the server")
        return FetchError(Outcome.PROTOCOL_ERROR, message + _reason_suffix(self.error))

    def close(self, *, graceful: bool) -> None:
        """Close the connection (never reused)."""
        transport = self.transport
        if transport is None:
            return
        if graceful and transport.get_extra_info("ssl_object") is None:
            transport.close()
        else:
            transport.abort()


def _same(conn: _Connection) -> _Connection:
    return conn


def _reason_suffix(error: BaseException | None) -> str:
    if error is None or isinstance(error, ConnectionResetError):
        return ""
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return f" ({text})"


def _head_end(buf: bytearray, start: int) -> int:
    """Index just after the blank line ending the head, or 0."""
    crlf = buf.find(b"\n\r\n", start)
    lf = buf.find(b"\n\n", start)
    if crlf < 0 and lf < 0:
        return 0
    if lf < 0 or (0 <= crlf < lf):
        return crlf + 3
    return lf + 2


def _show(data: bytes | bytearray) -> str:
    return repr(bytes(data))[:60]


def _size(limit: int) -> str:
    if limit % _MIB == 0:
        return f"{limit // _MIB} MiB"
    if limit % 1024 == 0:
        return f"{limit // 1024} KiB"
    return f"{limit} bytes"


def _parse_head(head: bytes, max_headers: int) -> tuple[str, int, str, dict[str, str]]:
    """(HTTP version, status, reason, headers by lower-case name) of a response head."""
    text = head.decode("latin-1")
    match = _STATUS_RE.match(text)
    if match is None:
        first = head.split(b"\n", 1)[0]
        raise FetchError(Outcome.PROTOCOL_ERROR, f"malformed status line: {_show(first)}")
    headers: dict[str, str] = {}
    last = ""
    count = 0
    pos = match.end()
    header_match = _HEADER_RE.match
    while True:
        found = header_match(text, pos)
        if found is None:
            if text.startswith(("\r\n", "\n"), pos):
                break
            line_end = text.find("\n", pos)
            line = text[pos:line_end].rstrip("\r")
            if line[:1] in (" ", "\t") and last:  # obsolete line folding: join to the value
                headers[last] = f"{headers[last]} {line.strip()}"
                pos = line_end + 1
                continue
            raise FetchError(
                Outcome.PROTOCOL_ERROR, f"malformed header line: {_show(line[:40].encode())}"
            )
        count += 1
        if count > max_headers:
            raise FetchError(Outcome.TOO_LARGE, f"more than {max_headers} response headers")
        key = found.group(1).lower()
        value = found.group(2)
        previous = headers.get(key)
        headers[key] = value if previous is None else f"{previous}, {value}"
        last = key
        pos = found.end()
    return match.group(1), int(match.group(2)), (match.group(3) or "").strip(), headers


def _content_length(value: str) -> int:
    values = {v.strip() for v in value.split(",")}
    if len(values) != 1:
        raise FetchError(
            Outcome.PROTOCOL_ERROR, f"conflicting Content-Length values: {value[:40]!r}"
        )
    text = values.pop()
    if not text.isdigit() or len(text) > 18:
        raise FetchError(Outcome.PROTOCOL_ERROR, f"malformed Content-Length: {text[:40]!r}")
    return int(text)


class _BodySink:
    """Decodes (gzip/deflate) and collects the body, refusing more than `limit` decoded bytes."""

    __slots__ = ("_dec", "_encoding", "_fed", "_gzip", "_limit", "_parts", "_raw_fallback", "size")

    def __init__(self, content_encoding: str, limit: int) -> None:
        encoding = content_encoding.strip().lower()
        self._encoding = encoding
        self._limit = limit
        self._parts: list[bytes] = []
        self._fed = False
        self._gzip = False
        self._raw_fallback = False
        self.size = 0
        self._dec: zlib._Decompress | None
        if encoding in ("", "identity"):
            self._dec = None
        elif encoding in ("gzip", "x-gzip"):
            self._dec = zlib.decompressobj(wbits=47)  # gzip (or zlib) header, auto-detected
            self._gzip = True
        elif encoding == "deflate":
            self._dec = zlib.decompressobj(wbits=15)
            self._raw_fallback = True  # some servers send raw deflate without the zlib header
        else:
            raise FetchError(
                Outcome.PROTOCOL_ERROR,
                f"unsupported Content-Encoding {encoding[:30]!r} (Vigie accepts gzip and deflate)",
            )

    def _add(self, data: bytes) -> None:
        if data:
            self.size += len(data)
            if self.size > self._limit:
                raise FetchError(
                    Outcome.TOO_LARGE,
                    f"body larger than {_size(self._limit)}"
                    + (" after decompression" if self._dec is not None else ""),
                )
            self._parts.append(data)

    def feed(self, data: bytes) -> None:
        """Take the next piece of the (de-chunked) body."""
        if not data:
            return
        self._fed = True
        if self._dec is None:
            self._add(data)
            return
        while data:
            dec = self._dec
            if dec.eof:
                if self._gzip and data[:2] == b"\x1f\x8b":  # another gzip member
                    dec = self._dec = zlib.decompressobj(wbits=47)
                else:
                    return  # trailing garbage after the stream: ignored, as browsers do
            try:
                out = dec.decompress(data, self._limit - self.size + 1)
            except zlib.error as exc:
                if self._raw_fallback and self.size == 0:
                    self._raw_fallback = False
                    self._dec = zlib.decompressobj(wbits=-15)
                    continue
                raise FetchError(
                    Outcome.PROTOCOL_ERROR, f"cannot decode the {self._encoding} body: {exc}"
                ) from None
            self._raw_fallback = False
            self._add(out)
            data = dec.unconsumed_tail or (dec.unused_data if dec.eof else b"")

    def finish(self) -> bytes:
        """The whole decoded body."""
        dec = self._dec
        if dec is not None and self._fed and not dec.eof:
            try:
                self._add(dec.flush())
            except zlib.error as exc:
                raise FetchError(
                    Outcome.PROTOCOL_ERROR, f"cannot decode the {self._encoding} body: {exc}"
                ) from None
            if not dec.eof:
                raise FetchError(Outcome.PROTOCOL_ERROR, f"the {self._encoding} body is truncated")
        if len(self._parts) == 1:
            return self._parts[0]
        return b"".join(self._parts)


def default_ssl_context() -> ssl.SSLContext:
    """Verification on, system CAs, TLS ≥ 1.2, HTTP/1.1 by ALPN."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


@functools.lru_cache(maxsize=512)
def _tls_info(der: bytes, version: str | None) -> TLSInfo:
    cert = x509.load_der_x509_certificate(der)
    not_after = cert.not_valid_after_utc.astimezone(dt.UTC)
    return TLSInfo(
        issuer=cert.issuer.rfc4514_string(),
        subject=cert.subject.rfc4514_string(),
        not_after=not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
        fingerprint_sha256=hashlib.sha256(der).hexdigest(),
        version=version,
    )


def _ssl_facts(transport: asyncio.BaseTransport) -> TLSInfo | None:
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    try:
        return _tls_info(der, ssl_object.version())
    except ValueError:
        return None


@functools.lru_cache(maxsize=1024)
def _literal_family(host: str) -> socket.AddressFamily | None:
    """The address family of an IP literal host, None for a name to resolve."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return None
    return socket.AF_INET6 if literal.version == 6 else socket.AF_INET


def _encode_target(target: str) -> str:
    if target.isascii() and target.isprintable() and " " not in target:
        return target
    return quote(target, safe=_SAFE_TARGET)


def body_text_contains(body: bytes, content_type: str, needle: str) -> bool:
    """Whether the body, decoded with its declared charset (default UTF-8), contains `needle`."""
    charset = "utf-8"
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'").lower() or "utf-8"
    try:
        codec = codecs.lookup(charset).name
    except LookupError:
        codec = "utf-8"
    if codec == "utf-8":
        return needle.encode("utf-8") in body
    return needle in body.decode(codec, errors="replace")


class HttpClient:
    """Sends one request per fresh connection and reads the response within `Limits`."""

    def __init__(
        self,
        user_agent: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        limits: Limits | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        if not (user_agent.isprintable() and user_agent.isascii()):
            raise ValueError("user_agent must be printable ASCII (it is sent as an HTTP header)")
        self._user_agent = user_agent
        self._ssl = ssl_context if ssl_context is not None else default_ssl_context()
        self.limits = limits if limits is not None else Limits()
        self._prepared: dict[tuple[str, str], tuple[str, str, int, bytes]] = {}
        self._peek_ssl: ssl.SSLContext | None = None
        self._resolver = resolver

    def exchange(self, method: str, url: str) -> Exchange:
        """Prepare a request (nothing is sent); raise FetchError for an unusable URL."""
        key = (method, url)
        prepared = self._prepared.get(key)
        if prepared is None:
            prepared = self._prepare(method, url)
            if len(self._prepared) >= _PREPARED_CACHE:
                self._prepared.clear()
            self._prepared[key] = prepared
        return Exchange(method, url, *prepared)

    def _prepare(self, method: str, url: str) -> tuple[str, str, int, bytes]:
        try:
            parts = urlsplit(url)
            scheme = parts.scheme.lower()
            host = parts.hostname or ""
            port = parts.port
        except ValueError as exc:
            raise FetchError(Outcome.PROTOCOL_ERROR, f"invalid URL {url[:80]!r}: {exc}") from None
        if scheme not in ("http", "https"):
            raise FetchError(Outcome.PROTOCOL_ERROR, f"not an http(s) URL: {url[:80]!r}")
        if not host.isascii():
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError:
                raise FetchError(Outcome.DNS_ERROR, f"invalid host name {host[:80]!r}") from None
        if not host or _HOST_RE.fullmatch(host) is None:
            raise FetchError(Outcome.PROTOCOL_ERROR, f"invalid host in URL {url[:80]!r}")
        default_port = 443 if scheme == "https" else 80
        port = port or default_port
        host_header = f"[{host}]" if ":" in host else host
        if port != default_port:
            host_header = f"{host_header}:{port}"
        target = parts.path or "/"
        if parts.query:
            target = f"{target}?{parts.query}"
        request = (
            f"{method} {_encode_target(target)} HTTP/1.1\r\n"
            f"Host: {host_header}\r\n"
            f"User-Agent: {self._user_agent}\r\n"
            "Accept: */*\r\n"
            "Accept-Encoding: gzip, deflate\r\n"
            "Connection: close\r\n\r\n"
        ).encode("ascii")
        return scheme, host, port, request

    async def fetch(
        self, ex: Exchange, skip_body: Callable[[Exchange], bool] | None = None
    ) -> None:
        """Run `ex` on a new connection; fill it in as phases complete. Raises FetchError."""
        loop = asyncio.get_running_loop()
        conn: _Connection | None = None
        graceful = False
        try:
            ex.begin("resolve")
            addresses = await self._resolve(loop, ex)
            ex.begin("connect")
            conn = await self._connect(loop, ex, addresses)
            if ex.scheme == "https":
                ex.begin("tls")
                await self._handshake(loop, ex, conn)
            assert conn.transport is not None
            conn.transport.write(ex.raw_request)
            ex.begin("processing")
            await self._read_head(ex, conn)
            if skip_body is None or not skip_body(ex):
                await self._read_body(ex, conn)
            ex.end()
            ex.complete = True
            graceful = True
        finally:
            if conn is not None:
                ex.first_byte_at = conn.first_byte_at
                if not ex.raw_head and conn.buffer:  # unparsable answer: keep what came
                    ex.raw_head = bytes(conn.buffer[: self.limits.max_head])
                conn.close(graceful=graceful)

    async def _resolve(self, loop: asyncio.AbstractEventLoop, ex: Exchange) -> list[_AddrInfo]:
        family = _literal_family(ex.host)
        if family is not None:
            ex.resolved_ips = (ex.host,)
            return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ex.host, ex.port))]
        try:
            if self._resolver is not None:
                infos = await self._resolver(ex.host, ex.port)
            else:
                infos = await loop.getaddrinfo(
                    ex.host, ex.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
                )
        except socket.gaierror as exc:
            ex.dns_error = _gai_name(exc.errno)
            raise FetchError(
                Outcome.DNS_ERROR,
                f"DNS lookup of {ex.host} failed: {exc.strerror or exc} ({ex.dns_error})",
            ) from None
        except UnicodeError:
            raise FetchError(Outcome.DNS_ERROR, f"invalid host name {ex.host[:80]!r}") from None
        addresses: list[_AddrInfo] = []
        seen: set[str] = set()
        for family, _type, _proto, _name, sockaddr in infos:
            ip = str(sockaddr[0])
            if ip not in seen:
                seen.add(ip)
                addresses.append((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
        if not addresses:
            ex.dns_error = "no_address"
            raise FetchError(Outcome.DNS_ERROR, f"DNS lookup of {ex.host} returned no address")
        ex.resolved_ips = tuple(str(info[4][0]) for info in addresses)
        return addresses

    async def _connect(
        self, loop: asyncio.AbstractEventLoop, ex: Exchange, addresses: list[_AddrInfo]
    ) -> _Connection:
        """Happy Eyeballs (RFC 8305) over the resolved addresses, by `aiohappyeyeballs`: the
        next address (families interleaved) starts after `CONNECT_ATTEMPT_DELAY` without an
        answer, so an address that silently drops packets does not use up the deadline."""
        if len(addresses) == 1:  # nothing to race: a plain connect (measured cheaper)
            return await self._connect_one(loop, ex, addresses[0])
        recorder = _AttemptRecorder(loop, ex.attempts)
        try:
            sock = await aiohappyeyeballs.start_connection(
                addresses,
                happy_eyeballs_delay=CONNECT_ATTEMPT_DELAY,
                interleave=1,
                loop=cast("asyncio.AbstractEventLoop", recorder),
            )
        except (OSError, RuntimeError):
            raise FetchError(Outcome.CONNECT_ERROR, _connect_failure(ex)) from None
        try:
            peer = str(sock.getpeername()[0])
        except OSError:
            sock.close()
            raise FetchError(Outcome.CONNECT_ERROR, _connect_failure(ex)) from None
        for attempt in ex.attempts:
            if attempt.result == "connected" and attempt.ip != peer:
                attempt.result = "runner_up"  # answered too, after the winner: closed
        conn = _Connection(loop)
        try:
            await loop.create_connection(functools.partial(_same, conn), sock=sock)
        except OSError as exc:
            sock.close()
            raise FetchError(
                Outcome.CONNECT_ERROR, f"connection to {_where(peer, ex.port)} lost: {exc}"
            ) from None
        ex.remote_ip = peer
        return conn

    @staticmethod
    async def _connect_one(
        loop: asyncio.AbstractEventLoop, ex: Exchange, info: _AddrInfo
    ) -> _Connection:
        family, ip = info[0], str(info[4][0])
        attempt = ConnectAttempt(ip, 0.0)
        ex.attempts.append(attempt)
        conn = _Connection(loop)
        try:
            with _recorded(attempt):
                await loop.create_connection(
                    functools.partial(_same, conn), ip, ex.port, family=family
                )
        except (OSError, RuntimeError):
            raise FetchError(Outcome.CONNECT_ERROR, _connect_failure(ex)) from None
        ex.remote_ip = ip
        return conn

    async def _handshake(
        self, loop: asyncio.AbstractEventLoop, ex: Exchange, conn: _Connection
    ) -> None:
        assert conn.transport is not None
        try:
            transport = await loop.start_tls(
                conn.transport, conn, self._ssl, server_hostname=ex.host
            )
        except ssl.SSLCertVerificationError as exc:
            ex.tls_verify_failed = True
            raise FetchError(
                Outcome.TLS_ERROR, f"TLS certificate rejected: {exc.verify_message or exc.reason}"
            ) from None
        except ssl.SSLError as exc:
            reason = exc.reason or str(exc)
            hint = _TLS_HINTS.get(reason, "")
            raise FetchError(Outcome.TLS_ERROR, f"TLS handshake failed: {reason}{hint}") from None
        except OSError as exc:
            raise FetchError(
                Outcome.TLS_ERROR,
                f"connection lost during the TLS handshake ({exc.strerror or exc or 'closed'})",
            ) from None
        if transport is None:
            raise FetchError(Outcome.TLS_ERROR, "connection lost during the TLS handshake")
        conn.transport = transport
        ex.tls = _ssl_facts(transport)

    async def peek_certificate(self, ex: Exchange) -> TLSInfo | None:
        """Handshake once more without verification to record the certificate that was refused.

        Only a TLS handshake: no HTTP request is sent. Best effort; None on any failure.
        """
        if ex.remote_ip is None:
            return None
        loop = asyncio.get_running_loop()
        if self._peek_ssl is None:
            self._peek_ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self._peek_ssl.check_hostname = False
            self._peek_ssl.verify_mode = ssl.CERT_NONE
        context = self._peek_ssl
        try:
            transport, _ = await loop.create_connection(
                asyncio.Protocol, ex.remote_ip, ex.port, ssl=context, server_hostname=ex.host
            )
        except (OSError, ssl.SSLError):
            return None
        try:
            return _ssl_facts(transport)
        finally:
            transport.abort()

    async def _read_head(self, ex: Exchange, conn: _Connection) -> None:
        limits = self.limits
        for _ in range(_MAX_INTERIM + 1):
            head = await conn.read_head(limits.max_head)
            ex.raw_head = head
            if ex.phase == "processing" and conn.first_byte_at is not None:
                ex.begin("transfer", conn.first_byte_at)
            version, status, reason, headers = _parse_head(head, limits.max_headers)
            ex.http_version, ex.status, ex.reason, ex.headers = version, status, reason, headers
            if status >= 200:
                return
            if status == 101:
                raise FetchError(Outcome.PROTOCOL_ERROR, "server switched protocols (HTTP 101)")
        raise FetchError(
            Outcome.PROTOCOL_ERROR, f"more than {_MAX_INTERIM} interim (1xx) responses"
        )

    async def _read_body(self, ex: Exchange, conn: _Connection) -> None:
        limits = self.limits
        headers = ex.headers
        status = ex.status or 0
        if ex.method == "HEAD" or status in _NO_BODY_STATUS:
            self._set_body(ex, b"")
            return
        sink = _BodySink(headers.get("content-encoding", ""), limits.max_body)
        conn.start_body(limits.max_wire_body, limits.capture_body)
        try:
            transfer_encoding = headers.get("transfer-encoding")
            if transfer_encoding is not None:
                codings = [c.strip().lower() for c in transfer_encoding.split(",") if c.strip()]
                if codings == ["chunked"]:
                    await self._read_chunked(conn, sink)
                elif codings in ([], ["identity"]):
                    await self._read_until_close(conn, sink)
                else:
                    raise FetchError(
                        Outcome.PROTOCOL_ERROR,
                        f"unsupported Transfer-Encoding {transfer_encoding[:40]!r}",
                    )
            elif (length := headers.get("content-length")) is not None:
                size = _content_length(length)
                if size > limits.max_wire_body:
                    raise FetchError(
                        Outcome.TOO_LARGE,
                        f"announced body of {size} bytes exceeds {_size(limits.max_wire_body)}",
                    )
                await self._read_exact(conn, size, sink)
            else:
                await self._read_until_close(conn, sink)
            body = sink.finish()
        finally:
            ex.raw_body = bytes(conn.capture or b"")
            ex.raw_body_truncated = conn.capture_truncated
        self._set_body(ex, body)

    @staticmethod
    def _set_body(ex: Exchange, body: bytes) -> None:
        ex.body = body
        ex.body_sha256 = hashlib.sha256(body).hexdigest()

    @staticmethod
    async def _read_exact(conn: _Connection, size: int, sink: _BodySink) -> None:
        remaining = size
        while remaining:
            if not conn.buffer:
                if conn.eof:
                    raise conn.incomplete(
                        f"connection closed after {size - remaining} of {size} body bytes"
                    )
                await conn.fill()
                continue
            data = conn.take(remaining)
            sink.feed(data)
            remaining -= len(data)

    async def _read_chunked(self, conn: _Connection, sink: _BodySink) -> None:
        while True:
            line = await conn.read_line(_CHUNK_LINE_LIMIT, "chunked body")
            size_text = line.split(b";", 1)[0].strip()
            if _CHUNK_SIZE_RE.fullmatch(size_text) is None:
                raise FetchError(
                    Outcome.PROTOCOL_ERROR, f"malformed chunk size line: {_show(line[:40])}"
                )
            size = int(size_text, 16)
            if size == 0:
                break
            if size > self.limits.max_wire_body:
                raise FetchError(
                    Outcome.TOO_LARGE,
                    f"chunk of {size} bytes exceeds {_size(self.limits.max_wire_body)}",
                )
            await self._read_exact(conn, size, sink)
            if await conn.read_line(2, "chunked body") != b"":
                raise FetchError(Outcome.PROTOCOL_ERROR, "chunk data not followed by CRLF")
        for _ in range(self.limits.max_headers + 1):
            if await conn.read_line(_CHUNK_LINE_LIMIT, "trailer section") == b"":
                return
        raise FetchError(Outcome.TOO_LARGE, f"more than {self.limits.max_headers} trailer lines")

    @staticmethod
    async def _read_until_close(conn: _Connection, sink: _BodySink) -> None:
        while True:
            if conn.buffer:
                sink.feed(conn.take(len(conn.buffer)))
                continue
            if conn.eof:
                error = conn.error
                if error is not None and not _is_clean_eof(error):
                    raise conn.incomplete(f"connection closed after {conn.consumed} body bytes")
                return
            await conn.fill()


def _where(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _connect_failure(ex: Exchange) -> str:
    """One line saying how the connection attempts failed (the last one named first)."""
    attempts = ex.attempts
    if not attempts:
        return f"connection to {ex.host}:{ex.port} failed"
    last = attempts[-1]
    where = _where(last.ip, ex.port)
    if last.result == "refused":
        message = f"connection to {where} refused"
    else:
        message = f"connection to {where} failed: {last.error or last.result}"
    if len(attempts) > 1:
        message += f" (tried {len(attempts)} addresses)"
    return message


_GAI_NAMES = {
    getattr(socket, name): name
    for name in (
        "EAI_AGAIN",
        "EAI_FAIL",
        "EAI_NONAME",
        "EAI_NODATA",
        "EAI_ADDRFAMILY",
        "EAI_SYSTEM",
        "EAI_MEMORY",
        "EAI_SERVICE",
    )
    if hasattr(socket, name)
}


def _gai_name(code: int | None) -> str:
    """The symbolic name of a getaddrinfo error code (``EAI_AGAIN``...)."""
    return _GAI_NAMES.get(code if code is not None else 0, f"EAI_{code}")


def _is_clean_eof(error: BaseException) -> bool:
    """A TLS peer that closes without close_notify still ends a read-until-close body."""
    return isinstance(error, ssl.SSLError) and "EOF" in str(error).upper()
