"""The simulator: a local stand-in for ANEF with a fault switch per path and a request counter.

It only listens on the addresses it is given and never opens a connection of its own; every
request it receives is counted, and every write (non-GET/HEAD) is recorded and refused.

Why it is long: one asyncio server holds every route and fault switch of the stand-in site; the
faults act on the connection itself (reset, hang, bad TLS, huge body), so they live beside the
handler that owns the connection.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import functools
import json
import os
import socket
import ssl
import struct
import tempfile
import threading
import time
import types
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs

import structlog

from simulator.counts import AUDIT_ENV, RequestCounts, RequestLog, WriteRecord
from simulator.faults import HOST_FAULTS, Fault, FaultError, FaultRule, FaultTable, HostRole
from simulator.http11 import (
    MAX_HEAD,
    BadRequestError,
    Request,
    Response,
    read_request,
    response_head,
)
from simulator.pages import API_PATH, PORTAL_PATH, PORTAL_VERSIONS, Links, Pages
from simulator.tls import TlsMaterial, make_tls_material

__all__ = ["Simulator", "SimulatorError"]

log = structlog.get_logger("simulator")

_BACKLOG: Final = 512
_IDLE_TIMEOUT_S: Final = 60.0
_TLS_HANDSHAKE_TIMEOUT_S: Final = 10.0
_HUGE_CHUNK_BYTES: Final = 64 * 1024
_HUGE_LIMIT_BYTES: Final = 1024 * 1024 * 1024  # "endless" for any sane client: it stops first
_GZIP_BOMB_MIB: Final = 64
_SPIN_S: Final = 0.002
_HUGE_LINE: Final = b"<p>Contenu sans fin du simulateur Vigie.</p>\n"
_HUGE_PAYLOAD: Final = (_HUGE_LINE * (_HUGE_CHUNK_BYTES // len(_HUGE_LINE) + 1))[:_HUGE_CHUNK_BYTES]
_HUGE_CHUNK: Final = b"%x\r\n" % _HUGE_CHUNK_BYTES + _HUGE_PAYLOAD + b"\r\n"


class SimulatorError(RuntimeError):
    """The simulator cannot do what was asked (not started, port taken, ...)."""


@functools.cache
def _gzip_bomb() -> bytes:
    """A small gzip body that inflates to 64 MiB (made once per process, ~65 KiB)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1024 * 1024)
    parts = [compressor.compress(block) for _ in range(_GZIP_BOMB_MIB)]
    parts.append(compressor.flush())
    return b"".join(parts)


async def _precise_sleep(seconds: float) -> float:
    """Sleep `seconds` to within a few tens of microseconds; return the time actually slept.

    Event-loop timers have millisecond granularity, so the last 2 ms are spent yielding in a
    loop: the ``slow`` fault is the reference the probes' timing accuracy is measured against.
    """
    start = time.perf_counter()
    target = start + seconds
    if seconds > _SPIN_S:
        await asyncio.sleep(seconds - _SPIN_S)
    while time.perf_counter() < target:  # noqa: ASYNC110 - a deadline, not an event
        await asyncio.sleep(0)
    return time.perf_counter() - start


def _bind(host: str, port: int) -> socket.socket:
    """A listening, non-blocking socket on (host, port) that keeps its port across `down`.

    A listener bound to an explicit port keeps it through ``shutdown()``/``listen()``, which is
    how the ``down`` fault refuses connections and later comes back on the same port. For port
    0 the free port is reserved first by a SO_REUSEPORT placeholder, so no other socket can take
    it between the two binds.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise SimulatorError(f"cannot listen on {host!r}: {exc}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # SO_REUSEADDR lets listen() succeed again after `down` while old connections of the
        # port linger in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if port == 0:
            with socket.socket(family, socket.SOCK_STREAM) as placeholder:
                placeholder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                placeholder.bind(address)
                address = placeholder.getsockname()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                sock.bind(address)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 0)
        else:
            sock.bind(address)
        sock.listen(_BACKLOG)
        sock.settimeout(0.0)  # non-blocking
    except OSError as exc:
        sock.close()
        raise SimulatorError(f"cannot listen on {host} port {port}: {exc.strerror}") from None
    return sock


def _origin(scheme: str, host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


@dataclasses.dataclass(eq=False)
class _Listener:
    name: str  # site | login | tls | admin
    role: HostRole | None  # whose content it serves; None for the admin API
    host: str
    sock: socket.socket
    tls: bool = False
    listening: bool = True
    connections: set[asyncio.Task[None]] = dataclasses.field(default_factory=set)
    transports: set[asyncio.Transport] = dataclasses.field(default_factory=set)

    @property
    def port(self) -> int:
        port = self.sock.getsockname()[1]
        assert isinstance(port, int)
        return port


class Simulator:
    """A local stand-in for ANEF: site, login host, HTTPS site, admin API, faults, counts.

    ``async with Simulator() as sim:`` runs it on the current event loop; ``with Simulator() as
    sim:`` runs it on an event loop of its own in a background thread (for synchronous tests).
    Fault and count methods are safe to call from any thread.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        *,
        port: int = 0,
        login_host: str | None = None,
        login_port: int = 0,
        tls_port: int = 0,
        admin_port: int = 0,
        faults: Mapping[str, str] | None = None,
        audit: bool = True,
        audit_file: str | os.PathLike[str] | None = None,
    ) -> None:
        """Prepare a simulator; nothing listens before `start` (or entering the context).

        `faults` maps paths to faults switched on from the start. With `audit` (the default),
        every write received is appended to `audit_file`, or else to the file named by the
        ``VIGIE_SIMULATOR_AUDIT`` environment variable when set; tests that send writes on
        purpose pass ``audit=False``.
        """
        self.host = host
        self.login_host = login_host or host
        self._ports = {"site": port, "login": login_port, "tls": tls_port, "admin": admin_port}
        self._faults = FaultTable()
        self._version = 1  # portal version served (simulator.pages.PORTAL_VERSIONS)
        for path, spec in (faults or {}).items():
            self._faults.set(path, spec)
        audit_path: Path | None = None
        if audit:
            chosen = audit_file if audit_file is not None else os.environ.get(AUDIT_ENV) or None
            audit_path = Path(chosen) if chosen is not None else None
        self._requests = RequestLog(audit_path)
        self._listeners: dict[str, _Listener] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self._tls: TlsMaterial | None = None
        self._tls_variant: str | None = None
        self._pages: Pages | None = None
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None

    # -- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind every listener and start serving on the running event loop."""
        if self._listeners:
            raise SimulatorError("simulator already started")
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._tmpdir = tempfile.TemporaryDirectory(prefix="vigie-simulator-")
        try:
            self._tls = make_tls_material(Path(self._tmpdir.name), self.host)
            specs: list[tuple[str, HostRole | None, str, bool]] = [
                ("site", "site", self.host, False),
                ("login", "login", self.login_host, False),
                ("tls", "site", self.host, True),
                ("admin", None, self.host, False),
            ]
            for name, role, host, tls in specs:
                sock = _bind(host, self._ports[name])
                self._listeners[name] = _Listener(name, role, host, sock, tls)
        except BaseException:
            for listener in self._listeners.values():
                listener.sock.close()
            self._listeners.clear()
            self._tmpdir.cleanup()
            raise
        self._pages = Pages(Links(self._origin("site"), self._origin("login")))
        for listener in self._listeners.values():
            self._loop.add_reader(listener.sock.fileno(), self._on_accept, listener)
        self._tls_variant = self._current_tls_variant()
        self._sync_host_faults()
        log.info("simulator_started", **self.urls())

    async def stop(self) -> None:
        """Close every listener and connection, and delete the throwaway TLS keys."""
        if not self._listeners or self._loop is None:
            return
        tasks: list[asyncio.Task[None]] = []
        for listener in self._listeners.values():
            if listener.listening:
                self._loop.remove_reader(listener.sock.fileno())
            listener.sock.close()
            for transport in list(listener.transports):
                transport.abort()
            tasks.extend(listener.connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0)  # let aborted transports finish closing their sockets
        self._listeners.clear()
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
        log.info("simulator_stopped")

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        await self.stop()

    def __enter__(self) -> Simulator:
        """Run the simulator on its own event loop in a background thread."""
        if self._thread is not None:
            raise SimulatorError("simulator already running in a thread")
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
                loop.run_until_complete(self.stop())
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

        self._thread_loop = loop
        self._thread = threading.Thread(target=run, name="vigie-simulator", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        thread, loop = self._thread, self._thread_loop
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        self._thread = None
        self._thread_loop = None

    # -- addresses ---------------------------------------------------------------------------

    def _listener(self, name: str) -> _Listener:
        try:
            return self._listeners[name]
        except KeyError:
            raise SimulatorError("the simulator is not started") from None

    def _origin(self, name: str) -> str:
        listener = self._listener(name)
        return _origin("https" if listener.tls else "http", listener.host, listener.port)

    @property
    def site_origin(self) -> str:
        """``http://host:port`` of the site."""
        return self._origin("site")

    @property
    def site_url(self) -> str:
        """The site's home page (``http://host:port/``)."""
        return f"{self.site_origin}/"

    @property
    def portal_url(self) -> str:
        """The hash-routed portal's home route (``/particuliers/#/``)."""
        return f"{self.site_origin}{PORTAL_PATH}#/"

    @property
    def api_url(self) -> str:
        """The unauthenticated back-end URL (answers 401)."""
        return f"{self.site_origin}{API_PATH}"

    @property
    def login_origin(self) -> str:
        """``http://host:port`` of the login host (a separate origin, as in reality)."""
        return self._origin("login")

    @property
    def login_url(self) -> str:
        """The Keycloak-like login page, with the query ANEF's portal sends."""
        assert self._pages is not None
        return self._pages.links.login_url

    @property
    def registration_url(self) -> str:
        """The account-creation screen (form with an e-mail field)."""
        assert self._pages is not None
        return self._pages.links.registration_url

    @property
    def tls_url(self) -> str:
        """The site's home page over HTTPS (certificate from a throwaway CA: `tls_ca_file`)."""
        return f"{self._origin('tls')}/"

    @property
    def admin_url(self) -> str:
        """The admin API root (``http://host:port/``): faults and counts."""
        return f"{self._origin('admin')}/"

    @property
    def tls_ca_file(self) -> Path:
        """PEM file of the throwaway CA that signs the HTTPS certificate (deleted at stop)."""
        if self._tls is None:
            raise SimulatorError("the simulator is not started")
        return self._tls.ca_file

    @property
    def tls_ca_pem(self) -> bytes:
        """The throwaway CA certificate, PEM."""
        if self._tls is None:
            raise SimulatorError("the simulator is not started")
        return self._tls.ca_pem

    def url(self, path: str, host: str = "site") -> str:
        """Absolute URL of `path` on ``site``, ``login``, ``tls`` or ``admin``."""
        return f"{self._origin(host)}{path}"

    def urls(self) -> dict[str, str]:
        """Every URL, as printed by ``python -m simulator``."""
        return {
            "site_url": self.site_url,
            "portal_url": self.portal_url,
            "api_url": self.api_url,
            "login_url": self.login_url,
            "login_origin": self.login_origin,
            "registration_url": self.registration_url,
            "tls_url": self.tls_url,
            "tls_ca_file": str(self.tls_ca_file),
            "admin_url": self.admin_url,
        }

    # -- faults and counts -------------------------------------------------------------------

    def set_fault(self, path: str, fault: str | Fault, host: str = "*") -> FaultRule:
        """Switch `fault` on for `path` (``*``: every path) on `host` (site, login, ``*``).

        ``down`` and ``bad_tls`` act before any path is known, so they take a whole host: the
        one named, or with ``*`` the host serving the path (login for ``/auth/...``). They take
        effect before this returns: a ``down`` host refuses connections on the same port.
        """
        rule = self._faults.set(path, fault, host)
        log.info("simulator_fault_set", **rule.to_dict())
        self._run_on_loop(self._sync_host_faults)
        return rule

    def clear_fault(self, path: str, host: str = "*") -> bool:
        """Switch off the fault of `path` on `host`; True if there was one."""
        found = self._faults.clear(path, host) > 0
        self._run_on_loop(self._sync_host_faults)
        return found

    def clear_faults(self) -> None:
        """Switch off every fault."""
        self._faults.clear()
        self._run_on_loop(self._sync_host_faults)

    @property
    def portal_version(self) -> int:
        """The version of the portal and login screens served now (1, or 2: the redesign)."""
        return self._version

    def set_portal_version(self, version: int) -> None:
        """Serve `version` of the portal and login screens from the next request on."""
        if version not in PORTAL_VERSIONS:
            choices = ", ".join(str(v) for v in PORTAL_VERSIONS)
            raise FaultError(f"unknown portal version {version!r}; valid versions: {choices}")
        self._version = version
        log.info("simulator_portal_version", version=version)

    @property
    def faults(self) -> tuple[FaultRule, ...]:
        """The faults switched on."""
        return self._faults.rules()

    @property
    def counts(self) -> RequestCounts:
        """A snapshot of the requests received by the site, login and HTTPS listeners."""
        return self._requests.snapshot()

    @property
    def write_requests(self) -> tuple[WriteRecord, ...]:
        """The non-GET/HEAD requests received (the last 1000)."""
        return self._requests.writes()

    def reset_counts(self) -> None:
        """Forget the counts (the audit file, if any, keeps every write)."""
        self._requests.reset()

    def _run_on_loop(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the simulator's loop and wait for it (direct when already there)."""
        loop = self._loop
        if loop is None or not self._listeners or loop.is_closed():
            return
        if threading.get_ident() == self._loop_thread:
            fn()
            return
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        def call() -> None:
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
                done.set_exception(exc)
            else:
                done.set_result(None)

        loop.call_soon_threadsafe(call)
        done.result(timeout=30)

    def _current_tls_variant(self) -> str | None:
        fault = self._faults.host_fault("site", "bad_tls")
        return fault.variant if fault is not None else None

    def _sync_host_faults(self) -> None:
        """Bring listeners in line with ``down`` and ``bad_tls`` (on the loop thread)."""
        for listener in list(self._listeners.values()):
            if listener.role is None:
                continue
            down = self._faults.host_fault(listener.role, "down") is not None
            if down and listener.listening:
                self._go_down(listener)
            elif not down and not listener.listening:
                self._go_up(listener)
        variant = self._current_tls_variant()
        if variant != self._tls_variant:
            self._tls_variant = variant
            tls = self._listeners.get("tls")
            if tls is not None:  # open connections keep their certificate: drop them
                self._drop_connections(tls)

    def _go_down(self, listener: _Listener) -> None:
        assert self._loop is not None
        self._loop.remove_reader(listener.sock.fileno())
        with contextlib.suppress(OSError):
            listener.sock.shutdown(socket.SHUT_RDWR)  # stops listening; the port stays ours
        listener.listening = False
        self._drop_connections(listener)
        log.info("simulator_listener_down", listener=listener.name, port=listener.port)

    def _go_up(self, listener: _Listener) -> None:
        assert self._loop is not None
        listener.sock.listen(_BACKLOG)
        listener.listening = True
        self._loop.add_reader(listener.sock.fileno(), self._on_accept, listener)
        log.info("simulator_listener_up", listener=listener.name, port=listener.port)

    @staticmethod
    def _drop_connections(listener: _Listener) -> None:
        for transport in list(listener.transports):
            transport.abort()
        for task in list(listener.connections):
            task.cancel()

    # -- connections -------------------------------------------------------------------------

    def _on_accept(self, listener: _Listener) -> None:
        assert self._loop is not None
        for _ in range(64):
            try:
                conn, _address = listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. out of file descriptors: pause, don't spin
                log.warning("simulator_accept_failed", listener=listener.name, error=str(exc))
                self._loop.remove_reader(listener.sock.fileno())
                self._loop.call_later(0.1, self._resume_accept, listener)
                return
            conn.settimeout(0.0)  # non-blocking
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = self._loop.create_task(self._serve(listener, conn))
            listener.connections.add(task)
            task.add_done_callback(listener.connections.discard)

    def _resume_accept(self, listener: _Listener) -> None:
        if listener.listening and self._loop is not None and self._listeners:
            self._loop.add_reader(listener.sock.fileno(), self._on_accept, listener)

    async def _serve(self, listener: _Listener, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=MAX_HEAD, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        context: ssl.SSLContext | None = None
        if listener.tls:
            assert self._tls is not None
            context = self._tls.context(self._tls_variant)
        try:
            transport, _ = await loop.connect_accepted_socket(
                lambda: protocol,
                conn,
                ssl=context,
                ssl_handshake_timeout=_TLS_HANDSHAKE_TIMEOUT_S if context is not None else None,
            )
        except (OSError, TimeoutError):
            conn.close()  # failed handshake (e.g. a client that refuses our certificate)
            return
        except asyncio.CancelledError:
            conn.close()
            raise
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        listener.transports.add(transport)
        try:
            await self._converse(listener, reader, writer)
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # the client went away or stalled: nothing to answer
        except Exception:  # one broken connection must not take the simulator down
            log.exception("simulator_connection_failed", listener=listener.name)
        finally:
            listener.transports.discard(transport)
            transport.close()

    async def _converse(
        self, listener: _Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            try:
                async with asyncio.timeout(_IDLE_TIMEOUT_S):
                    request = await read_request(reader, writer)
            except BadRequestError as exc:
                body = f"{exc}\n".encode()
                answer = Response(exc.status, body, "text/plain")
                writer.write(answer.encode(head_only=False, keep_alive=False))
                await writer.drain()
                return
            if request is None:
                return
            if listener.role is None:
                response = self._admin(request)
                writer.write(
                    response.encode(
                        head_only=request.method == "HEAD", keep_alive=request.keep_alive
                    )
                )
                await writer.drain()
                keep = request.keep_alive
            else:
                keep = await self._answer(listener, listener.role, request, reader, writer)
            if not keep:
                return

    async def _answer(
        self,
        listener: _Listener,
        role: HostRole,
        request: Request,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Answer one request of the site or login host; False to close the connection."""
        assert self._pages is not None
        user_agent = request.headers.get("user-agent", "")
        if self._requests.record(listener.name, request.method, request.path, user_agent):
            log.warning(
                "simulator_write_received",
                listener=listener.name,
                method=request.method,
                path=request.path,
                user_agent=user_agent,
            )
            self._send(writer, request, self._pages.method_not_allowed())
            await writer.drain()
            return request.keep_alive
        fault = self._faults.lookup(role, request.path)
        if fault is not None and fault.name in HOST_FAULTS:
            fault = None  # handled at accept / handshake time
        if fault is not None and not fault.is_browser_fault:
            return await self._fault(fault, role, request, reader, writer)
        route_faults = (
            self._faults.route_faults(role, request.path) if request.path == PORTAL_PATH else {}
        )
        self._send(
            writer,
            request,
            self._pages.render(role, request.path, fault, route_faults, self._version),
        )
        await writer.drain()
        return request.keep_alive

    @staticmethod
    def _send(
        writer: asyncio.StreamWriter, request: Request, response: Response, fault: str = ""
    ) -> None:
        if fault:
            response = dataclasses.replace(
                response, headers=(*response.headers, ("X-Simulator-Fault", fault))
            )
        writer.write(
            response.encode(head_only=request.method == "HEAD", keep_alive=request.keep_alive)
        )

    async def _fault(
        self,
        fault: Fault,
        role: HostRole,
        request: Request,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Misbehave as `fault` says; False to close the connection."""
        assert self._pages is not None
        name = fault.name
        if name == "slow":
            waited = await _precise_sleep(fault.seconds or 0.0)
            if writer.is_closing():
                return False
            response = self._pages.render(role, request.path, version=self._version)
            response = dataclasses.replace(
                response, headers=(*response.headers, ("X-Simulator-Delay", f"{waited:.6f}"))
            )
            self._send(writer, request, response, fault.spec)
        elif name == "hang":
            while await reader.read(65536):  # never answer; wait for the client to give up
                pass
            return False
        elif name == "reset":
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        elif name == "disconnect":
            return False
        elif name == "huge_body":
            await self._huge_body(request, writer)
            return False
        elif name == "gzip_bomb":
            response = Response(
                200,
                _gzip_bomb(),
                headers=(("Content-Encoding", "gzip"), ("Cache-Control", "no-store")),
            )
            self._send(writer, request, response, fault.spec)
        elif name == "http_500":
            self._send(writer, request, self._pages.error_500(), fault.spec)
        elif name == "http_503_maintenance":
            self._send(writer, request, self._pages.maintenance_503(), fault.spec)
        elif name == "wrong_content":
            self._send(writer, request, self._pages.wrong_content(), fault.spec)
        elif name == "redirect_loop":
            # Two URLs sending the client to each other: a loop by any definition.
            looped = "boucle=1" in request.query.split("&")
            location = request.path if looped else f"{request.path}?boucle=1"
            self._send(writer, request, self._pages.redirect(location), fault.spec)
        else:  # pragma: no cover - every HTTP fault is handled above
            raise AssertionError(f"unhandled fault {name}")
        await writer.drain()
        return request.keep_alive

    @staticmethod
    async def _huge_body(request: Request, writer: asyncio.StreamWriter) -> None:
        headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Transfer-Encoding", "chunked"),
            ("X-Simulator-Fault", "huge_body"),
        ]
        writer.write(response_head(200, headers, keep_alive=False))
        if request.method == "HEAD":
            await writer.drain()
            return
        sent = 0
        while sent < _HUGE_LIMIT_BYTES and not writer.is_closing():
            writer.write(_HUGE_CHUNK)
            await writer.drain()
            sent += _HUGE_CHUNK_BYTES
        if not writer.is_closing():
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    # -- admin API ---------------------------------------------------------------------------

    def _admin(self, request: Request) -> Response:
        """The admin API (never probed; its requests are not counted)."""
        method, path = request.method, request.path.rstrip("/") or "/"
        try:
            if path == "/" and method in ("GET", "HEAD"):
                return _json(
                    200, {**self.urls(), "faults": self._fault_list(), "version": self._version}
                )
            if path == "/healthz" and method in ("GET", "HEAD"):
                return Response(200, b"ok\n", "text/plain; charset=utf-8")
            if path == "/faults":
                if method in ("GET", "HEAD"):
                    return _json(200, {"faults": self._fault_list()})
                if method in ("POST", "PUT"):
                    return self._admin_set_fault(request)
                if method == "DELETE":
                    return self._admin_clear(request)
            if path == "/version":
                if method in ("GET", "HEAD"):
                    return _json(200, {"version": self._version})
                if method in ("POST", "PUT"):
                    return self._admin_set_version(request)
            if path == "/faults/clear" and method == "POST":
                self.clear_faults()
                return _json(200, {"faults": []})
            if path == "/requests":
                if method in ("GET", "HEAD"):
                    data = self.counts.to_dict()
                    data["write_requests"] = [w.to_dict() for w in self.write_requests]
                    return _json(200, data)
                if method == "DELETE":
                    self.reset_counts()
                    return _json(200, {"reset": True})
            if path == "/requests/reset" and method == "POST":
                self.reset_counts()
                return _json(200, {"reset": True})
        except FaultError as exc:
            return _json(400, {"error": str(exc)})
        known = (
            "GET /, GET /faults, POST /faults, DELETE /faults, GET /version, POST /version, "
            "GET /requests, POST /requests/reset"
        )
        return _json(404, {"error": f"no {method} {path} here; the admin API has: {known}"})

    def _fault_list(self) -> list[dict[str, str]]:
        return [rule.to_dict() for rule in self.faults]

    def _admin_set_fault(self, request: Request) -> Response:
        try:
            data: Any = json.loads(request.body or b"{}")
        except ValueError:
            return _json(400, {"error": 'body must be JSON: {"path": "/", "fault": "http_500"}'})
        if not isinstance(data, dict) or not isinstance(data.get("fault"), str):
            return _json(400, {"error": 'expected {"path": "/", "fault": "http_500", "host": "*"}'})
        path = data.get("path", "*")
        host = data.get("host", "*")
        if not isinstance(path, str) or not isinstance(host, str):
            return _json(400, {"error": "path and host must be strings"})
        rule = self.set_fault(path, data["fault"], host)
        return _json(200, {"fault": rule.to_dict(), "faults": self._fault_list()})

    def _admin_set_version(self, request: Request) -> Response:
        try:
            data: Any = json.loads(request.body or b"{}")
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("version"), int):
            return _json(400, {"error": 'expected {"version": 2} (1: usual portal, 2: redesign)'})
        self.set_portal_version(data["version"])
        return _json(200, {"version": self._version})

    def _admin_clear(self, request: Request) -> Response:
        params = {k: v[-1] for k, v in parse_qs(request.query).items()}
        if "path" in params:
            cleared = int(self.clear_fault(params["path"], params.get("host", "*")))
        else:
            cleared = len(self.faults)
            self.clear_faults()
        return _json(200, {"cleared": cleared, "faults": self._fault_list()})


def _json(status: int, data: object) -> Response:
    body = json.dumps(data, ensure_ascii=False, sort_keys=True, indent=1).encode() + b"\n"
    return Response(status, body, "application/json")
