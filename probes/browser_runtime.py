"""The long-lived headless Chromium behind browser probes: launch, health check, relaunch, kill.

It hands out fresh browser contexts and never lets a wedged or dead browser block a check: every
call into the browser is time-bounded and a browser that stops answering is killed and replaced.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import os
import shlex
import signal
import socket
import ssl
import struct
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import structlog
from playwright.async_api import (
    Browser,
    BrowserContext,
    Playwright,
    ProxySettings,
    async_playwright,
)
from playwright.async_api import Error as PlaywrightError

from probes import confine
from probes.wireproxy import WireProxy, WireSession

__all__ = [
    "CHROMIUM_ARGS",
    "DEBIAN_CHROMIUM",
    "DEBIAN_HEADLESS_SHELL",
    "PLAYWRIGHT_ENABLED_FEATURES",
    "BrowserRuntime",
    "BrowserUnavailableError",
    "ConfinementUnavailableError",
    "process_tree",
    "process_tree_rss",
]

log = structlog.get_logger("vigie.browser")

DEBIAN_CHROMIUM = "/usr/bin/chromium"
# Debian's build of Chromium's "old headless" shell (package chromium-headless-shell): the same
# engine without the desktop browser around it, which is what Playwright itself runs headless.
# Measured with bench/browser.py: about half the memory and half the time of the full browser.
DEBIAN_HEADLESS_SHELL = "/usr/bin/chromium-headless-shell"
_HEADLESS_SHELL_BINARY = "/usr/lib/chromium/chromium-headless-shell"

# The Playwright driver is a Node.js process that lives as long as the browser. Node sizes its
# young generation for throughput (16 MiB semi-spaces); ours only relays protocol messages.
# Measured: ~30 MB less resident memory, no measurable change in check times.
DRIVER_NODE_OPTIONS = "--max-semi-space-size=2 --max-old-space-size=256"

# What Playwright 1.65 passes as --enable-features (chromiumSwitches.ts), kept by ours.
PLAYWRIGHT_ENABLED_FEATURES = ("CDPScreenshotNewSurface", "SkipListAccountsWithoutGaiaCookies")

# A closed network, running as root: no sandbox (needs user namespaces), no GPU, no traffic of
# the browser's own (updates, sync, field trials, QUIC probing) that could be mistaken for ours.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--no-proxy-server",  # direct connections only, whatever http_proxy says
    "--in-process-gpu",  # one process less (~50 MB): headless rendering needs no GPU process
    # The network service in the browser process: one process less (~15-25 MB). Chromium keeps
    # only the last --enable-features, so Playwright's own list (PLAYWRIGHT_ENABLED_FEATURES) is
    # repeated here; a test checks it against the installed Playwright.
    "--enable-features=" + ",".join((*PLAYWRIGHT_ENABLED_FEATURES, "NetworkServiceInProcess2")),
    # Names under the reserved .invalid TLD never resolve (RFC 6761): answer that locally
    # instead of asking the system resolver.
    "--host-resolver-rules=MAP *.invalid ~NOTFOUND",
)

# Added when the browser runs confined (probes/confine.py): WebRTC may only use proxied TCP
# (refused by the proxy) instead of trying UDP, and the proxy's certificates are accepted by the
# SPKI of their key, which only this instance's proxy holds.
CONFINED_ARGS = ("--force-webrtc-ip-handling-policy=disable_non_proxied_udp",)

_MARKER = "--vigie-browser-instance="
_CONFINE_WAIT = 30.0
# Listening ports made in the browser's namespace: one for the default context, which no check
# uses (everything sent there is refused), the others one per open browser context.
_SPARE_PORTS = 8

CONFINEMENT_REFUSED = (
    "confinement réseau du navigateur impossible, parcours navigateur refusés plutôt que lancés "
    "sans garde (browser network confinement unavailable, browser journeys refused; "
    "voir/see docs/browser-probes.md)"
)


class BrowserUnavailableError(Exception):
    """No browser could be started or reached; the message says what to install or fix."""


class ConfinementUnavailableError(BrowserUnavailableError):
    """The browser could not be confined to its proxy: it is not run at all."""


class BrowserRuntime:
    """One lazily launched Chromium shared by every check, replaced when it dies or hangs, and
    renewed after `restart_after` journeys."""

    def __init__(
        self,
        executable: str | None = None,
        *,
        launch_timeout: float = 30.0,
        health_timeout: float = 10.0,
        close_timeout: float = 5.0,
        idle_close: float | None = None,
        restart_after: int | None = None,
        max_contexts: int = 1,
        upstream_ssl: ssl.SSLContext | None = None,
    ) -> None:
        self._executable_override = executable
        self._ports = max(1, max_contexts) + _SPARE_PORTS
        self._upstream_ssl = upstream_ssl
        self._proxy: WireProxy | None = None
        self.confinement: str | None = None  # "root" or "userns" once a browser runs confined
        self._idle_close = idle_close or None
        self._restart_after = restart_after or None
        self._served = 0  # contexts handed out by the running browser
        self._users = 0
        self._drained = asyncio.Event()  # set when no context is in use
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_task: asyncio.Task[None] | None = None
        self._launch_timeout = launch_timeout
        self._health_timeout = health_timeout
        self._close_timeout = close_timeout
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._marker: str | None = None
        self._pid: int | None = None
        self._lock = asyncio.Lock()
        self.executable: str | None = None
        self.version: str | None = None
        self.launches = 0
        self.idle_closes = 0
        self.renewals = 0

    # ------------------------------------------------------------------ public

    @property
    def pid(self) -> int | None:
        """The main browser process id (None when no browser runs or it cannot be found)."""
        if self._browser is None or self._marker is None:
            return None
        if self._pid is None or not _pid_has_marker(self._pid, self._marker):
            self._pid = _find_browser_pid(self._marker)
        return self._pid

    @property
    def journeys(self) -> int:
        """Contexts the running browser handed out (0 once it is gone or renewed)."""
        return self._served if self._browser is not None else 0

    @property
    def connected(self) -> bool:
        """True when a launched browser is still connected."""
        return self._browser is not None and self._browser.is_connected()

    @property
    def proxy(self) -> WireProxy | None:
        """The policy proxy of the running browser (None when no browser runs)."""
        return self._proxy

    async def new_context(self, **options: Any) -> tuple[BrowserContext, WireSession]:
        """A fresh, empty browser context and its proxy session (what it sent, what was refused).

        Relaunches the browser once if it is dead or hangs. Raises `BrowserUnavailableError`
        when no working browser can be had. Every context handed out must be given back with
        `release` once closed: with `idle_close`, the browser and its driver stop when no
        context was in use for that long.
        """
        await self._renew_if_due()
        self._users += 1
        self._cancel_idle_timer()
        try:
            return await self._new_context(options)
        except BaseException:
            self.release()
            raise

    def release(self, session: WireSession | None = None) -> None:
        """A context obtained from `new_context` is closed (or its browser is gone)."""
        if session is not None and self._proxy is not None:
            self._proxy.close_session(session)
        self._users = max(0, self._users - 1)
        if self._users == 0:
            self._drained.set()
        if self._users == 0 and self._idle_close is not None and self._browser is not None:
            self._cancel_idle_timer()
            loop = asyncio.get_running_loop()
            self._idle_timer = loop.call_later(self._idle_close, self._start_idle_close)

    async def _new_context(self, options: dict[str, Any]) -> tuple[BrowserContext, WireSession]:
        last_error = "unknown error"
        for attempt in (1, 2):
            browser = await self._ensure_browser()
            proxy = self._proxy
            if proxy is None:  # never: a browser runs only with its proxy
                raise ConfinementUnavailableError(f"{CONFINEMENT_REFUSED}: no proxy")
            try:
                session = proxy.open_session()
            except RuntimeError as exc:
                raise BrowserUnavailableError(str(exc)) from None
            # The context's own proxy: everything it sends arrives on this session's port
            # (loopback included: Playwright adds <-loopback> to the bypass list).
            server: ProxySettings = {"server": f"http://127.0.0.1:{session.port}"}
            try:
                context = await asyncio.wait_for(
                    browser.new_context(proxy=server, **options), timeout=self._health_timeout
                )
            except TimeoutError:
                proxy.close_session(session)
                last_error = f"browser did not answer within {self._health_timeout:g} s"
            except PlaywrightError as exc:
                proxy.close_session(session)
                last_error = _first_line(str(exc))
            else:
                self._served += 1
                return context, session
            log.warning("browser_unresponsive", attempt=attempt, error=last_error)
            await self.kill(reason=last_error, expected=browser)
        raise BrowserUnavailableError(f"browser unusable after a relaunch: {last_error}")

    def _renewal_due(self) -> bool:
        return (
            self._restart_after is not None
            and self._browser is not None
            and self._served >= self._restart_after
        )

    async def _renew_if_due(self) -> None:
        """Close a browser that served `restart_after` contexts once none is in use; the next
        context starts a fresh one. The wait comes before the journey's clock starts: it is
        never counted against a target."""
        while self._renewal_due():
            if self._users:
                self._drained.clear()
                await self._drained.wait()
                continue
            async with self._lock:
                if self._renewal_due() and not self._users:
                    served = self._served
                    await self._close_locked()
                    self.renewals += 1
                    log.info("browser_renewed", journeys=served, renewals=self.renewals)

    def _cancel_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _start_idle_close(self) -> None:
        self._idle_timer = None
        if self._idle_task is None or self._idle_task.done():
            self._idle_task = asyncio.get_running_loop().create_task(self._close_if_idle())

    async def _close_if_idle(self) -> None:
        """Stop the browser and the driver: nothing used them for `idle_close` seconds."""
        async with self._lock:
            if self._users or self._browser is None:
                return
            await self._close_locked()
            self.idle_closes += 1
            log.info("browser_closed_idle", idle_s=self._idle_close, closes=self.idle_closes)

    async def healthy(self) -> bool:
        """True when the browser answers a protocol round trip within the health timeout."""
        browser = self._browser
        if browser is None or not browser.is_connected():
            return False
        try:
            session = await asyncio.wait_for(
                browser.new_browser_cdp_session(), timeout=self._health_timeout
            )
            await asyncio.wait_for(session.send("Browser.getVersion"), self._health_timeout)
            await asyncio.wait_for(session.detach(), self._health_timeout)
        except (TimeoutError, PlaywrightError):
            return False
        return True

    async def kill(self, reason: str, expected: Browser | None = None) -> None:
        """Kill the browser process tree now (SIGKILL); the next check launches a new one.

        With `expected`, do nothing if that browser was already replaced (a concurrent check
        that saw the same hang must not kill its successor).
        """
        if expected is not None and expected is not self._browser:
            return
        # Only a process still carrying this launch's marker is ours: a dead browser's pid may
        # already belong to another program.
        pid = self.pid
        browser, self._browser = self._browser, None
        self._pid = None
        self._marker = None
        if pid is not None:
            victims = [pid, *process_tree(pid)[1:]]
            for victim in victims:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(victim, signal.SIGKILL)
            log.warning("browser_killed", pid=pid, processes=len(victims), reason=reason)
        if browser is not None:
            with contextlib.suppress(TimeoutError, PlaywrightError):
                await asyncio.wait_for(browser.close(), timeout=self._close_timeout)
        await self._close_proxy()

    async def _close_proxy(self) -> None:
        proxy, self._proxy = self._proxy, None
        if proxy is not None:
            await proxy.aclose()

    async def aclose(self) -> None:
        """Close the browser and the Playwright driver, killing them if they do not comply."""
        self._cancel_idle_timer()
        idle_task, self._idle_task = self._idle_task, None
        if idle_task is not None and not idle_task.done():
            idle_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await idle_task
        async with self._lock:
            await self._close_locked()

    async def _close_locked(self) -> None:
        browser, self._browser = self._browser, None
        if browser is not None:
            try:
                await asyncio.wait_for(browser.close(), timeout=self._close_timeout)
            except (TimeoutError, PlaywrightError):
                self._browser = browser
                await self.kill(reason="browser did not close")
        self._marker = None
        self._pid = None
        await self._close_proxy()
        await self._stop_driver()

    # ----------------------------------------------------------------- private

    async def _ensure_browser(self) -> Browser:
        async with self._lock:
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            if self._browser is not None:
                log.warning("browser_disconnected", pid=self._pid)
                await self.kill(reason="browser disconnected")
            try:
                return await self._launch()
            except ConfinementUnavailableError:
                raise  # the same launcher would fail the same way
            except BrowserUnavailableError:
                # The Playwright driver itself may be dead: start a new one and retry once.
                await self._stop_driver()
                return await self._launch()

    async def _launch(self) -> Browser:
        if self._playwright is None:
            try:
                with _driver_environment():
                    self._playwright = await asyncio.wait_for(
                        async_playwright().start(), timeout=self._launch_timeout
                    )
            except (TimeoutError, PlaywrightError, OSError) as exc:
                raise BrowserUnavailableError(
                    f"the Playwright driver did not start: {_first_line(str(exc)) or 'timeout'}"
                ) from exc
        errors: list[str] = []
        for executable in self._candidates():
            marker = uuid.uuid4().hex
            real = executable or self._playwright.chromium.executable_path
            proxy = WireProxy(self._upstream_ssl)
            with _Confinement(real, self._ports) as confinement:
                args = [
                    *CHROMIUM_ARGS,
                    *CONFINED_ARGS,
                    f"--ignore-certificate-errors-spki-list={proxy.spki_sha256}",
                    f"{_MARKER}{marker}",
                ]
                launching = asyncio.ensure_future(
                    self._playwright.chromium.launch(
                        executable_path=str(confinement.launcher),
                        headless=True,
                        chromium_sandbox=False,
                        args=args,
                        handle_sigint=False,
                        handle_sigterm=False,
                        handle_sighup=False,
                        timeout=self._launch_timeout * 1000,
                    )
                )
                received = asyncio.ensure_future(asyncio.to_thread(confinement.receive))
                received.add_done_callback(_retrieved)
                listeners: list[socket.socket] = []
                try:
                    listeners = await _confined(received, launching)
                    browser = await asyncio.wait_for(launching, timeout=self._launch_timeout + 5)
                except ConfinementUnavailableError:
                    await _reap(launching)
                    await proxy.aclose()
                    raise
                except (TimeoutError, PlaywrightError, BrowserUnavailableError) as exc:
                    for sock in listeners:
                        sock.close()
                    await _reap(launching)
                    await proxy.aclose()
                    label = executable or "Playwright-managed Chromium"
                    errors.append(f"{label}: {_first_line(str(exc)) or 'launch timed out'}")
                    stray = _find_browser_pid(marker)
                    if stray is not None:
                        with contextlib.suppress(ProcessLookupError, PermissionError):
                            os.kill(stray, signal.SIGKILL)
                    continue
            await proxy.serve(listeners)
            self._proxy = proxy
            self.confinement = confinement.mode
            self._browser = browser
            self._marker = marker
            self._pid = _find_browser_pid(marker)
            self.executable = executable or self._playwright.chromium.executable_path
            self.version = browser.version
            self.launches += 1
            self._served = 0
            browser.on("disconnected", self._on_disconnected)
            log.info(
                "browser_launched",
                confinement=self.confinement,
                proxy_ports=len(proxy.ports),
                executable=self.executable,
                version=self.version,
                pid=self._pid,
                launches=self.launches,
            )
            return browser
        if not errors:
            errors.append(
                "no browser found: install the Debian package chromium-headless-shell "
                f"({DEBIAN_HEADLESS_SHELL}) or chromium ({DEBIAN_CHROMIUM}), "
                "or run 'playwright install chromium', or set browser.executable"
            )
        raise BrowserUnavailableError("; ".join(errors))

    def _on_disconnected(self, browser: Browser) -> None:
        if browser is self._browser:
            log.warning("browser_disconnected", pid=self._pid)

    def _candidates(self) -> Iterator[str | None]:
        """Executables to try: the configured one; else Playwright's own build, then Debian's."""
        if self._executable_override:
            yield self._executable_override
            return
        if _playwright_browser_installed():
            yield None
        for debian in (DEBIAN_HEADLESS_SHELL, DEBIAN_CHROMIUM):
            if Path(debian).exists():
                yield _unwrapped(debian)

    async def _stop_driver(self) -> None:
        playwright, self._playwright = self._playwright, None
        if playwright is not None:
            with contextlib.suppress(TimeoutError, PlaywrightError, OSError):
                await asyncio.wait_for(playwright.stop(), timeout=self._close_timeout)


class _Confinement:
    """The launcher script for one launch and the Unix socket it reports on (probes/confine.py)."""

    def __init__(self, browser: str, ports: int) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="vigie-confine-"))
        self.channel = self.directory / "channel.sock"
        self.launcher = self.directory / "chromium"
        self.mode: str | None = None
        self.launcher_pid: int | None = None
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.channel))
        self._listener.listen(1)
        command = [sys.executable, "-I", "-S", confine.__file__]
        command += [str(self.channel), browser, str(ports), "--"]
        self.launcher.write_text(
            "#!/bin/sh\n# Vigie: Chromium in a network namespace whose only way out is the proxy\n"
            f'exec {shlex.join(command)} "$@"\n',
            encoding="utf-8",
        )
        self.launcher.chmod(0o700)

    def __enter__(self) -> _Confinement:
        return self

    def __exit__(self, *_exc: object) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes a receive() still waiting
        self._listener.close()
        for path in (self.channel, self.launcher):
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.directory.rmdir()

    def receive(self) -> list[socket.socket]:
        """The proxy's listening sockets, made by the launcher inside the browser's namespace.

        Raises `ConfinementUnavailableError` with the launcher's reason when it failed.
        """
        self._listener.settimeout(_CONFINE_WAIT)
        try:
            channel, _ = self._listener.accept()
        except OSError:
            raise ConfinementUnavailableError(
                f"{CONFINEMENT_REFUSED}: the launcher did not report within {_CONFINE_WAIT:g} s"
            ) from None
        with channel:
            channel.settimeout(_CONFINE_WAIT)
            # Who sent this, and is it really elsewhere? The launcher's process (soon Chromium,
            # same pid) must be in another network namespace than Vigie's.
            peer = struct.unpack(
                "3i", channel.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
            )
            self.launcher_pid = peer[0]
            fds = array.array("i")
            message, ancillary, _, _ = channel.recvmsg(4096, socket.CMSG_SPACE(64 * fds.itemsize))
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
        sockets = [socket.socket(fileno=fd) for fd in fds]
        text = message.decode("utf-8", "replace").strip()
        words = text.split()
        if words and words[0] == "missing":
            raise BrowserUnavailableError(f"no such executable: {text.partition(' ')[2]}")
        if not words or words[0] != "ok" or len(words) < 3 or not sockets:
            for sock in sockets:
                sock.close()
            reason = text.removeprefix("error ").strip() or "the launcher sent nothing"
            raise ConfinementUnavailableError(f"{CONFINEMENT_REFUSED}: {reason}")
        try:
            elsewhere = (
                Path(f"/proc/{self.launcher_pid}/ns/net").readlink()
                != Path("/proc/self/ns/net").readlink()
            )
        except OSError:
            elsewhere = False
        if not elsewhere:
            for sock in sockets:
                sock.close()
            raise ConfinementUnavailableError(
                f"{CONFINEMENT_REFUSED}: the launcher (pid {self.launcher_pid}) is not "
                "(or no longer) in a network namespace of its own"
            )
        self.mode = words[1]
        return sockets


async def _confined(
    received: asyncio.Future[list[socket.socket]], launching: asyncio.Future[Browser]
) -> list[socket.socket]:
    """The launcher's listening sockets; raises when it failed (with its reason if it gave one).

    A launch that fails before the launcher reports (no such executable) is not waited for.
    """
    pending: set[asyncio.Future[Any]] = {received, launching}
    await asyncio.wait(pending, timeout=_CONFINE_WAIT, return_when="FIRST_COMPLETED")
    if not received.done() and launching.done() and launching.exception() is not None:
        # The launcher may still be writing its reason: a moment for it, then the launch error.
        await asyncio.wait({received}, timeout=1.0)
        if not received.done() or received.exception() is None:
            raise launching.exception()  # type: ignore[misc]
    return await asyncio.wait_for(received, timeout=_CONFINE_WAIT)


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Mark a future's exception as seen (it is reported through another path)."""
    if not future.cancelled():
        future.exception()


async def _reap(launching: asyncio.Future[Browser]) -> None:
    """Wait for a failed launch to end; close the browser if it started after all."""
    try:
        browser = await asyncio.wait_for(launching, timeout=10)
    except (TimeoutError, PlaywrightError):
        return
    with contextlib.suppress(TimeoutError, PlaywrightError):
        await asyncio.wait_for(browser.close(), timeout=5)


def _unwrapped(executable: str) -> str:
    """The binary behind Debian's headless-shell wrapper script (one process less)."""
    if executable == DEBIAN_HEADLESS_SHELL and Path(_HEADLESS_SHELL_BINARY).is_file():
        return _HEADLESS_SHELL_BINARY
    return executable


@contextlib.contextmanager
def _driver_environment() -> Iterator[None]:
    """While the Playwright driver starts, give Node.js our memory options (unless set)."""
    if "NODE_OPTIONS" in os.environ:
        yield
        return
    os.environ["NODE_OPTIONS"] = DRIVER_NODE_OPTIONS
    try:
        yield
    finally:
        os.environ.pop("NODE_OPTIONS", None)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else ""


def _playwright_browser_installed() -> bool:
    root = os.environ.get("PLAYWRIGHT_BROWSERS_PATH")
    base = Path(root) if root and root != "0" else Path.home() / ".cache" / "ms-playwright"
    try:
        return any(p.name.startswith("chromium") for p in base.iterdir())
    except OSError:
        return False


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _pid_has_marker(pid: int, marker: str) -> bool:
    return f"{_MARKER}{marker}".encode() in _cmdline(pid).split(b"\0")


def _find_browser_pid(marker: str) -> int | None:
    """The browser's main process: the one carrying our marker and no ``--type=`` switch."""
    wanted = f"{_MARKER}{marker}".encode()
    found = []
    for entry in _proc_pids():
        args = _cmdline(entry).split(b"\0")
        if wanted in args and not any(a.startswith(b"--type=") for a in args):
            found.append(entry)
    # A wrapper script that does not exec (Debian's chromium-headless-shell) carries the same
    # arguments: the browser is the one whose parent is not another match.
    for entry in found:
        if _parent_of(entry) in found:
            return entry
    return found[0] if found else None


def _proc_pids() -> list[int]:
    try:
        return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    except OSError:
        return []


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text("ascii", errors="replace")
    except OSError:
        return None
    # Field 4 is the parent pid; the command (field 2) may contain spaces and parentheses.
    fields = stat.rsplit(")", 1)[-1].split()
    return int(fields[1]) if len(fields) > 1 else None


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants (from /proc), root first."""
    children: dict[int, list[int]] = {}
    for pid in _proc_pids():
        parent = _parent_of(pid)
        if parent is not None:
            children.setdefault(parent, []).append(pid)
    tree, queue = [], [root]
    while queue:
        pid = queue.pop(0)
        tree.append(pid)
        queue.extend(children.get(pid, ()))
    return tree


def process_tree_rss(root: int) -> int:
    """Resident memory in bytes of `root` and all its descendants (from /proc/PID/statm)."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for pid in process_tree(root):
        try:
            fields = Path(f"/proc/{pid}/statm").read_text("ascii").split()
        except OSError:
            continue
        total += int(fields[1]) * page
    return total
