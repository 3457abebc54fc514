"""Browser probe: a read-only journey in a real headless Chromium, with a fresh profile per check.

It must never let a write leave the browser (every request asks the ReadOnlyGuard first) and never
let a page wedge the probe (every call into the browser is bounded by the check's deadline).

Why it is long: one journey is one sequence (launch in its confinement, fresh context, steps,
captures, drift fingerprints) that shares the check's deadline and guard; the runtime
(browser_runtime.py), the read-only proxy (wireproxy.py) and drift (drift.py) are already apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import re
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import structlog
from playwright.async_api import (
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Locator,
    Page,
    Response,
    Route,
    WebSocketRoute,
)
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from config.targets import Step, parse_duration
from config.vocabulary import Outcome
from probes.base import ArtifactStore, ProbeContext, ProbeSettings
from probes.browser_runtime import BrowserRuntime, BrowserUnavailableError
from probes.drift import DRIFT_ACTIONS, DriftWatch, conclude
from probes.observation import (
    BlockedRequest,
    Observation,
    StepResult,
    TLSInfo,
    format_time,
    utc_now,
)
from probes.warc import WarcCapture, build_warc
from probes.wireproxy import WireSession

__all__ = [
    "CLICKABLE_SELECTOR",
    "LOAD_STEP",
    "MAX_BLOCKED_LISTED",
    "MAX_BODY_BYTES",
    "MAX_CONSOLE_ERRORS",
    "BrowserProbe",
    "classify_net_error",
    "navigation_timings",
]

log = structlog.get_logger("vigie.browser")

T = TypeVar("T")

LOAD_STEP = "chargement"  # name of the initial navigation in `Observation.steps`
MAX_CONSOLE_ERRORS = 20
MAX_MESSAGE_CHARS = 300
MAX_BLOCKED_LISTED = 100
# The first document's body is hashed up to this size, the HTTP probe's limit; a larger one is
# not copied out of the browser (it would pass through the driver and Vigie base64-encoded).
MAX_BODY_BYTES = 10 * 1024 * 1024
HARD_DEADLINE_GRACE = 1.0  # seconds past ctx.timeout before the asyncio guard cuts the check

# What `click` may press: links and buttons. Anything else (checkboxes, inputs, selects) would be
# acting as a user, not following the site.
CLICKABLE_SELECTOR = (
    "a[href], area[href], button, summary, [role=button], [role=link], [role=tab], "
    "[role=menuitem], input[type=button], input[type=submit], input[type=image]"
)
_CLICKABLE_JS = """(el, allowed) => {
  if (el.closest(allowed)) return '';
  const type = el.getAttribute('type');
  return '<' + el.tagName.toLowerCase() + (type ? ' type=' + type : '') + '>';
}"""
_NAV_TIMING_JS = """() => {
  const e = performance.getEntriesByType('navigation')[0];
  return e ? e.toJSON() : null;
}"""
# Resolves at the document's load event (at once if it already fired). A promise awaited by one
# `evaluate`, not `wait_for_function`: that one first injects Playwright's large helper script
# into the page's own world, which cost ~25 ms per page (a tenth of the journey).
_COMPLETE_JS = """() => document.readyState === 'complete' || new Promise((resolve) => {
  addEventListener('load', () => resolve(true), {once: true});
})"""
# Reports each RTCPeerConnection a page creates (with its ICE servers) on the console, where
# `_on_webrtc` lists it: WebRTC sends no HTTP, so the proxy never sees an attempt to list.
_WEBRTC_MARK = "vigie:webrtc "
_WEBRTC_JS = (
    """(() => {
  const Native = window.RTCPeerConnection;
  if (!Native) return;
  const debug = console.debug.bind(console);
  function RTCPeerConnection(config, ...rest) {
    let urls = [];
    try {
      urls = ((config && config.iceServers) || []).flatMap((s) => [].concat(s.urls || s.url || []));
    } catch (e) {}
    debug('"""
    + _WEBRTC_MARK
    + """' + JSON.stringify(urls.map(String)));
    return new Native(config, ...rest);
  }
  RTCPeerConnection.prototype = Native.prototype;
  Object.setPrototypeOf(RTCPeerConnection, Native);
  window.RTCPeerConnection = RTCPeerConnection;
  if (window.webkitRTCPeerConnection) window.webkitRTCPeerConnection = RTCPeerConnection;
})();"""
)
# The evaluation was lost to a navigation: the wait goes on in the new document.
_COMPLETE_ATTEMPT_S = 1.0
_NAVIGATED = ("Execution context was destroyed", "navigat", "Frame was detached")
_LOAD_STATES = ("load", "domcontentloaded", "networkidle")
_ALLOWED_SCHEMES = ("http", "https")
_LOCAL_SCHEMES = ("data", "blob", "about")

_NET_ERROR_RE = re.compile(r"net::(ERR_[A-Z0-9_]+)")
_AT_URL_RE = re.compile(r" at (\S+)")
_NET_OUTCOMES: tuple[tuple[str, Outcome], ...] = (
    ("ERR_NAME_NOT_RESOLVED", Outcome.DNS_ERROR),
    ("ERR_NAME_RESOLUTION_FAILED", Outcome.DNS_ERROR),
    ("ERR_DNS_", Outcome.DNS_ERROR),
    ("ERR_CERT_", Outcome.TLS_ERROR),
    ("ERR_SSL_", Outcome.TLS_ERROR),
    ("ERR_BAD_SSL_", Outcome.TLS_ERROR),
    ("ERR_TIMED_OUT", Outcome.TIMEOUT),
    ("ERR_CONNECTION_TIMED_OUT", Outcome.TIMEOUT),
    ("ERR_TOO_MANY_REDIRECTS", Outcome.REDIRECT_LOOP),
    ("ERR_EMPTY_RESPONSE", Outcome.PROTOCOL_ERROR),
    ("ERR_INVALID_", Outcome.PROTOCOL_ERROR),
    ("ERR_RESPONSE_HEADERS_", Outcome.PROTOCOL_ERROR),
    ("ERR_CONTENT_LENGTH_MISMATCH", Outcome.PROTOCOL_ERROR),
    ("ERR_INCOMPLETE_CHUNKED_ENCODING", Outcome.PROTOCOL_ERROR),
    ("ERR_HTTP2_", Outcome.PROTOCOL_ERROR),
    ("ERR_CONNECTION_", Outcome.CONNECT_ERROR),
    ("ERR_ADDRESS_", Outcome.CONNECT_ERROR),
    ("ERR_INTERNET_DISCONNECTED", Outcome.CONNECT_ERROR),
    ("ERR_NETWORK_", Outcome.CONNECT_ERROR),
    ("ERR_SOCKET_", Outcome.CONNECT_ERROR),
    ("ERR_BLOCKED_BY_CLIENT", Outcome.BLOCKED),
)


def classify_net_error(message: str) -> tuple[Outcome, str] | None:
    """The outcome for a Chromium ``net::ERR_*`` navigation error, with the code; else None."""
    match = _NET_ERROR_RE.search(message)
    if match is None:
        return None
    code = match.group(1)
    for prefix, outcome in _NET_OUTCOMES:
        if code.startswith(prefix):
            return outcome, code
    return Outcome.STEP_FAILED, code


class _StepError(Exception):
    """A step failed for a reason the probe itself established."""

    def __init__(self, outcome: Outcome, reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason


class BrowserProbe:
    """Runs read-only journeys in one shared headless Chromium; one fresh context per check."""

    kind = "browser"

    def __init__(
        self,
        settings: ProbeSettings,
        *,
        launch_timeout: float = 30.0,
        health_timeout: float = 10.0,
        close_timeout: float = 5.0,
        capture_timeout: float = 5.0,
        upstream_ssl: ssl.SSLContext | None = None,
    ) -> None:
        self._settings = settings
        self._runtime = BrowserRuntime(
            settings.browser.executable,
            launch_timeout=launch_timeout,
            health_timeout=health_timeout,
            close_timeout=close_timeout,
            idle_close=settings.browser.idle_close,
            restart_after=settings.browser.restart_after,
            max_contexts=settings.browser.max_concurrency,
            upstream_ssl=upstream_ssl,
        )
        self._slots = asyncio.Semaphore(max(1, settings.browser.max_concurrency))
        self._close_timeout = close_timeout
        self._capture_timeout = capture_timeout

    @property
    def capture_timeout(self) -> float:
        """Seconds allowed to capture a screenshot (and the HTML) after a check."""
        return self._capture_timeout

    @property
    def close_timeout(self) -> float:
        """Seconds allowed to close a context before the browser is killed."""
        return self._close_timeout

    @property
    def runtime(self) -> BrowserRuntime:
        """The shared browser (pid, version, launch count, health check)."""
        return self._runtime

    async def check(self, ctx: ProbeContext) -> Observation:
        """Run `ctx.target`'s journey once. Never raises for a failure of the target.

        Returns within ``ctx.timeout`` + 1 s for the journey, plus at most ``capture_timeout``
        for failure captures and ``close_timeout`` to close the context (then the browser is
        killed and relaunched at the next check).
        """
        async with self._slots:
            return await _Check(self, ctx).run()

    async def healthy(self) -> bool:
        """True when the shared browser runs and answers (False before the first check)."""
        return await self._runtime.healthy()

    async def aclose(self) -> None:
        """Close the browser and the Playwright driver."""
        await self._runtime.aclose()

    # Used by _Check -----------------------------------------------------------
    @property
    def settings(self) -> ProbeSettings:
        """The settings the probe was built with."""
        return self._settings


@dataclasses.dataclass
class _Failure:
    outcome: Outcome
    error: str


class _Check:
    """One run of one journey: state shared by the page's event handlers and the steps."""

    def __init__(self, probe: BrowserProbe, ctx: ProbeContext) -> None:
        self.probe = probe
        self.runtime = probe.runtime
        self.settings = probe.settings
        self.ctx = ctx
        self.target = ctx.target
        self.loop = asyncio.get_running_loop()
        self.deadline = 0.0
        self.steps: list[StepResult] = []
        self.console: list[str] = []
        self.console_dropped = 0
        self.refused_schemes: list[BlockedRequest] = []
        self.crashed = False
        self.failure: _Failure | None = None
        self.http_status: int | None = None
        self.redirects = 0
        self.remote_ip: str | None = None
        self.tls: TLSInfo | None = None
        self.session: WireSession | None = None
        self.document_url: str | None = None
        self.body_sha256: str | None = None
        self.body_bytes: int | None = None
        self.timings: dict[str, float] = {}
        self.phases: dict[str, float] = {}
        self.final_url: str | None = None
        self.page: Page | None = None
        self.current: tuple[str, str, float] | None = None  # (name, prefix, started)
        # When the first navigation began: what started_at and duration_s describe.
        self.journey_started: tuple[dt.datetime, float] | None = None
        self.body_task: asyncio.Future[bytes | None] | None = None
        self.timing_task: asyncio.Future[Any] | None = None
        self.notes: list[str] = []
        self.drift: DriftWatch | None = None  # page drift evidence (probes/drift.py)
        self.failed_step: Step | None = None
        self.drift_record: dict[str, Any] = {}

    # ---------------------------------------------------------------- driving

    async def run(self) -> Observation:
        started = utc_now()
        clock = time.monotonic()
        try:
            context, self.session = await self.runtime.new_context(**self._context_options())
        except BrowserUnavailableError as exc:
            # One line (no traceback): the message says what is missing, e.g. the confinement.
            log.error("browser_unavailable", target=self.target.id, error=str(exc))  # noqa: TRY400
            self.failure = _Failure(Outcome.BROWSER_ERROR, _clip(f"browser unavailable: {exc}"))
            return self._observation(started, time.monotonic() - clock, {})
        artifacts: dict[str, str] = {}
        journey_time = 0.0
        try:
            self.deadline = self.loop.time() + self.ctx.timeout
            try:
                async with asyncio.timeout(self.ctx.timeout + HARD_DEADLINE_GRACE):
                    await self._journey(context)
            except TimeoutError:
                self._cut_at_deadline()
            except PlaywrightError as exc:  # outside any step: the browser itself failed
                self.failure = _Failure(
                    Outcome.BROWSER_ERROR, _clip(f"browser error: {_first_line(str(exc))}")
                )
            if self.journey_started is not None:
                started, clock = self.journey_started
                journey_time = time.monotonic() - clock
            await self._finish_background()
            if self.page is not None and self.page.url.startswith(_ALLOWED_SCHEMES):
                self.final_url = self.page.url
            artifacts = await self._conclude_drift()
            if self.failure is not None or self.ctx.capture:
                artifacts.update(await self._capture(failed=self.failure is not None))
            if self.failure is not None:
                artifacts.update(await self._capture_warc(started))
        finally:
            for task in (self.body_task, self.timing_task):
                if task is not None:
                    task.cancel()
            try:
                await self._close(context)
            finally:
                self.runtime.release(self.session)
        self._upstream_facts()
        return self._observation(started, journey_time, artifacts)

    def _upstream_facts(self) -> None:
        """Remote address and certificate of the first document, from the proxy's connection."""
        if self.session is None or self.document_url is None:
            return
        self.remote_ip = self.session.address(self.document_url)
        self.tls = self.session.certificate(self.document_url)

    def _context_options(self) -> dict[str, Any]:
        return {
            "user_agent": self.settings.user_agent,
            "service_workers": "block",
            "accept_downloads": False,
            "locale": "fr-FR",
            "timezone_id": "Europe/Paris",
            "ignore_https_errors": False,
            "java_script_enabled": True,
        }

    async def _journey(self, context: BrowserContext) -> None:
        await context.route("**/*", self._on_route)
        await context.route_web_socket(re.compile(r".*"), self._on_websocket)
        await context.add_init_script(_WEBRTC_JS)
        context.on("console", self._on_webrtc)
        page = await context.new_page()
        self.page = page
        self.drift = DriftWatch(page)
        context.on("page", self._on_new_page)
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)
        page.on("crash", self._on_crash)
        page.on("dialog", self._on_dialog)

        total = len(self.target.steps) + 1
        ok = await self._step(
            1,
            total,
            name=LOAD_STEP,
            description=f"goto {self.target.url}",
            own_timeout=None,
            action=self._load,
        )
        if not ok:
            return
        for index, step in enumerate(self.target.steps, start=2):
            ok = await self._step(
                index,
                total,
                name=step.label,
                description=f"{step.action} {step.argument}",
                own_timeout=step.timeout,
                action=self._action(step),
            )
            if not ok:
                self.failed_step = step
                return
            if step.action in DRIFT_ACTIONS and step.action != "click" and self.drift:
                await self.drift.snapshot(step.label)  # the page this step looked at

    async def _step(
        self,
        index: int,
        total: int,
        *,
        name: str,
        description: str,
        own_timeout: float | None,
        action: Callable[[float], Awaitable[None]],
    ) -> bool:
        """Run one step with its own budget; record it; on failure set `self.failure`."""
        started = time.monotonic()
        prefix = f"step {index}/{total} '{name}' ({_clip(description, 120)})"
        self.current = (name, prefix, started)
        if self.journey_started is None:
            self.journey_started = (utc_now(), started)
        budget = self._remaining()
        if own_timeout is not None:
            budget = min(budget, own_timeout)
        failure: _Failure | None = None
        if budget <= 0:
            failure = _Failure(Outcome.TIMEOUT, "no time left before this step")
        else:
            try:
                await action(budget)
            except _StepError as exc:
                failure = _Failure(exc.outcome, exc.reason)
            except PlaywrightError as exc:
                failure = self._classify(exc)
            except TimeoutError:
                failure = _Failure(
                    Outcome.TIMEOUT, f"the page did not answer within {budget:.1f} s"
                )
        if failure is None and self.crashed:
            failure = _Failure(Outcome.BROWSER_ERROR, "the page crashed")
        elapsed = time.monotonic() - started
        self.current = None
        self.steps.append(
            StepResult(
                name=name,
                duration_s=round(elapsed, 6),
                ok=failure is None,
                error=None if failure is None else _clip(failure.error),
            )
        )
        if failure is not None:
            self.failure = _Failure(failure.outcome, _clip(f"{prefix}: {failure.error}"))
            return False
        return True

    def _classify(self, exc: PlaywrightError) -> _Failure:
        message = _first_line(str(exc))
        if self.crashed:
            return _Failure(Outcome.BROWSER_ERROR, "the page crashed")
        if not self.runtime.connected:
            return _Failure(Outcome.BROWSER_ERROR, f"the browser went away ({message})")
        if isinstance(exc, PlaywrightTimeoutError):
            return _Failure(Outcome.STEP_FAILED, message)
        upstream = self._upstream_failure(message)
        if upstream is not None:
            return upstream
        net = classify_net_error(message)
        if net is not None:
            outcome, code = net
            return _Failure(outcome, f"navigation failed: {code}")
        if "Download is starting" in message:
            return _Failure(
                Outcome.STEP_FAILED,
                "the address starts a download, not a page (the file is not kept)",
            )
        if "has been closed" in message or "Target crashed" in message:
            return _Failure(Outcome.BROWSER_ERROR, message)
        return _Failure(Outcome.STEP_FAILED, message)

    def _upstream_failure(self, message: str) -> _Failure | None:
        """Why a navigation failed, as the proxy saw it on its side (DNS, connect, TLS...).

        The browser only sees its proxy close: the proxy knows what the target did.
        """
        if self.session is None or "net::ERR_" not in message:
            return None
        found = _AT_URL_RE.search(message)
        url = found.group(1) if found else self.target.url
        failure = self.session.failure(url)
        if failure is None:
            return None
        return _Failure(failure[0], f"navigation failed: {failure[1]}")

    def _cut_at_deadline(self) -> None:
        """The asyncio guard fired: the page wedged a call; record the step it interrupted."""
        limit = f"{self.ctx.timeout:g} s"
        if self.current is not None:
            name, prefix, started = self.current
            self.steps.append(
                StepResult(
                    name=name,
                    duration_s=round(time.monotonic() - started, 6),
                    ok=False,
                    error=f"cut at the check timeout ({limit})",
                )
            )
            self.failure = _Failure(
                Outcome.TIMEOUT, _clip(f"{prefix}: cut at the check timeout ({limit})")
            )
            self.current = None
        elif self.failure is None:
            self.failure = _Failure(Outcome.TIMEOUT, f"check cut at its timeout ({limit})")

    def _remaining(self) -> float:
        return self.deadline - self.loop.time()

    # ------------------------------------------------------------------ steps

    async def _load(self, budget: float) -> None:
        page = self._page()
        until = self.loop.time() + budget
        try:
            response = await page.goto(self.target.url, wait_until="commit", timeout=_ms(budget))
        except PlaywrightTimeoutError:
            raise _StepError(
                Outcome.TIMEOUT, f"the page did not finish loading within {budget:.1f} s"
            ) from None
        if response is not None:
            await self._record_document(response)
        status = self.http_status
        if status is not None and status >= 400 and status not in self.target.expect.status:
            raise _StepError(Outcome.HTTP_STATUS, f"the page answered HTTP {status}")
        await self._wait_complete(until, budget)
        self._record_timing()

    async def _wait_complete(self, until: float, budget: float) -> None:
        """Wait for the document's load event (readyState ``complete``) until `until`.

        Not Playwright's ``load`` lifecycle: it never resolves when a blocked form submission
        aborts a navigation while a subframe loads, although the document itself is complete.
        A navigation during the wait (a script or a meta refresh moving on) restarts it in the
        new document.
        """
        page = self._page()
        while (left := until - self.loop.time()) > 0:
            try:
                # Asked again after a while: an evaluation sent while the page's own form
                # submission is being aborted may never be answered (seen 2 runs in 6).
                await asyncio.wait_for(
                    page.evaluate(_COMPLETE_JS), timeout=min(_COMPLETE_ATTEMPT_S, left)
                )
            except TimeoutError:
                continue
            except PlaywrightError as exc:
                if not any(sign in str(exc) for sign in _NAVIGATED):
                    raise
                await asyncio.sleep(0.01)  # the new document's context, not a spin
            else:
                return
        raise _StepError(Outcome.TIMEOUT, f"the page did not finish loading within {budget:.1f} s")

    def _action(self, step: Step) -> Callable[[float], Awaitable[None]]:
        actions: dict[str, Callable[[str, float], Awaitable[None]]] = {
            "goto": self._goto,
            "click": self._click,
            "wait_for": self._wait_for,
            "expect_visible": self._expect_visible,
            "expect_text": self._expect_text,
            "expect_url": self._expect_url,
            "fail_if_text": self._fail_if_text,
        }
        run = actions[step.action]
        argument = step.argument

        async def bound(budget: float) -> None:
            await run(argument, budget)

        return bound

    async def _goto(self, url: str, budget: float) -> None:
        page = self._page()
        absolute = urljoin(page.url, url) if page.url.startswith("http") else url
        if urlsplit(absolute).scheme not in _ALLOWED_SCHEMES:
            raise _StepError(Outcome.STEP_FAILED, f"goto only follows http(s) URLs, not {url!r}")
        until = self.loop.time() + budget
        try:
            response = await page.goto(absolute, wait_until="commit", timeout=_ms(budget))
        except PlaywrightTimeoutError:
            raise _StepError(
                Outcome.TIMEOUT, f"the page did not finish loading within {budget:.1f} s"
            ) from None
        if response is not None and response.status >= 400:
            raise _StepError(Outcome.STEP_FAILED, f"the page answered HTTP {response.status}")
        await self._wait_complete(until, budget)

    async def _click(self, selector: str, budget: float) -> None:
        target = self._visible(selector)
        until = self.loop.time() + budget
        try:  # waits for a visible match, then checks it is a link or a button
            tag = await target.evaluate(_CLICKABLE_JS, CLICKABLE_SELECTOR, timeout=_ms(budget))
        except PlaywrightTimeoutError:
            raise _StepError(
                Outcome.STEP_FAILED,
                f"no visible element matches {selector!r} within {budget:.1f} s",
            ) from None
        if tag:
            raise _StepError(
                Outcome.STEP_FAILED,
                f"{selector!r} is a {tag}, not a link or a button: click only follows links "
                "and presses buttons",
            )
        if self.drift is not None and self.current is not None:
            await self.drift.snapshot(self.current[0])  # the page as the click found it
        try:
            # Returns once a navigation the click started has committed (Playwright waits for
            # it), so the wait below looks at the new document.
            await target.click(timeout=_ms(until - self.loop.time()))
        except PlaywrightTimeoutError:
            raise _StepError(
                Outcome.STEP_FAILED, f"{selector!r} could not be clicked within {budget:.1f} s"
            ) from None
        await self._wait_complete(self.deadline, self._remaining())

    async def _wait_for(self, argument: str, budget: float) -> None:
        page = self._page()
        if argument == "load":
            await self._wait_complete(self.loop.time() + budget, budget)
            return
        if argument in _LOAD_STATES:
            try:
                await page.wait_for_load_state(argument, timeout=_ms(budget))  # type: ignore[arg-type]
            except PlaywrightTimeoutError:
                raise _StepError(
                    Outcome.TIMEOUT, f"load state {argument!r} not reached within {budget:.1f} s"
                ) from None
            return
        try:
            pause = parse_duration(argument)
        except ValueError:
            pause = None
        if pause is not None:
            if pause > budget:
                await asyncio.sleep(budget)
                raise _StepError(
                    Outcome.TIMEOUT, f"a pause of {pause:g} s does not fit in the time left"
                )
            await asyncio.sleep(pause)
            return
        await self._wait_visible(
            self._visible(argument), budget, f"no visible element matches {argument!r}"
        )

    async def _expect_visible(self, selector: str, budget: float) -> None:
        await self._wait_visible(
            self._visible(selector), budget, f"no visible element matches {selector!r}"
        )

    async def _expect_text(self, text: str, budget: float) -> None:
        locator = self._page().get_by_text(text).filter(visible=True).first
        await self._wait_visible(locator, budget, f"text {text!r} not shown")

    async def _expect_url(self, pattern: str, budget: float) -> None:
        page = self._page()
        matcher: str | re.Pattern[str] | Callable[[str], bool]
        if len(pattern) > 2 and pattern.startswith("/") and pattern.endswith("/"):
            try:
                matcher = re.compile(pattern[1:-1])
            except re.error as exc:
                raise _StepError(
                    Outcome.STEP_FAILED, f"invalid regular expression: {exc}"
                ) from None
        elif "*" in pattern:
            matcher = pattern
        else:

            def matcher(url: str) -> bool:
                return pattern in url

        try:
            await page.wait_for_url(matcher, wait_until="commit", timeout=_ms(budget))
        except PlaywrightTimeoutError:
            raise _StepError(
                Outcome.STEP_FAILED,
                f"the URL is {page.url!r}, it did not match {pattern!r} within {budget:.1f} s",
            ) from None

    async def _fail_if_text(self, text: str, budget: float) -> None:
        locator = self._page().get_by_text(text).filter(visible=True)
        count = await _bounded(locator.count(), budget)
        if count:
            raise _StepError(Outcome.STEP_FAILED, f"the page shows {text!r}")

    def _visible(self, selector: str) -> Locator:
        return self._page().locator(selector).filter(visible=True).first

    async def _wait_visible(self, locator: Locator, budget: float, what: str) -> None:
        try:
            await locator.wait_for(state="visible", timeout=_ms(budget))
        except PlaywrightTimeoutError:
            raise _StepError(Outcome.STEP_FAILED, f"{what} within {budget:.1f} s") from None

    def _page(self) -> Page:
        assert self.page is not None
        return self.page

    # ----------------------------------------------------------- measurements

    async def _record_document(self, response: Response) -> None:
        self.http_status = response.status
        request = response.request
        hops = 0
        while request.redirected_from is not None and hops < 100:
            request = request.redirected_from
            hops += 1
        self.redirects = hops
        self.document_url = response.url
        # The body is fetched while the journey goes on, off its critical path.
        self.body_task = asyncio.ensure_future(_document_body(response))

    async def _finish_background(self) -> None:
        """Collect what was fetched in the background (bounded, best effort)."""
        body = await _collect(self.body_task)
        self.body_task = None
        if body is not None:
            self.body_sha256 = hashlib.sha256(body).hexdigest()
            self.body_bytes = len(body)
        entry = await _collect(self.timing_task)
        self.timing_task = None
        if isinstance(entry, dict):
            self.timings, self.phases = navigation_timings(entry)

    def _record_timing(self) -> None:
        # Sent before any later step's command, so it runs in the first page's document.
        self.timing_task = asyncio.ensure_future(self._page().evaluate(_NAV_TIMING_JS))

    # --------------------------------------------------------- event handlers

    async def _on_route(self, route: Route) -> None:
        request = route.request
        url = request.url
        scheme = url.split(":", 1)[0].lower()
        try:
            if scheme in _LOCAL_SCHEMES:
                await route.continue_()
            elif scheme not in _ALLOWED_SCHEMES:
                self.refused_schemes.append(BlockedRequest(method=request.method.upper(), url=url))
                await route.abort("aborted")
            elif self.ctx.guard.allows(request.method, url):
                await route.continue_()
            elif request.is_navigation_request():
                # ERR_ABORTED leaves the current page in place (no error page): the journey
                # goes on as if the form had never been submitted.
                await route.abort("aborted")
            else:
                await route.abort("blockedbyclient")
        except PlaywrightError:
            pass  # the page or context closed while the request waited: nothing left to do

    async def _on_websocket(self, socket: WebSocketRoute) -> None:
        # A WebSocket carries writes in both directions: never opened, recorded like a write.
        self.refused_schemes.append(BlockedRequest(method="WEBSOCKET", url=socket.url))
        with contextlib.suppress(PlaywrightError):
            await socket.close(code=1008, reason="read-only probe")

    def _on_webrtc(self, message: ConsoleMessage) -> None:
        """List a WebRTC connection a page set up (its packets have no way out: see
        docs/browser-probes.md); the page's own report, for attribution only."""
        text = message.text
        if message.type != "debug" or not text.startswith(_WEBRTC_MARK):
            return
        try:
            servers = json.loads(text[len(_WEBRTC_MARK) :])
        except ValueError:
            return
        page_url = message.page.url if message.page is not None else self.target.url
        for server in (servers if isinstance(servers, list) else [])[:20] or [page_url]:
            entry = BlockedRequest(method="WEBRTC", url=_clip(str(server), 300), sender="page")
            if entry not in self.refused_schemes and len(self.refused_schemes) < 200:
                self.refused_schemes.append(entry)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        text = message.text
        if "ERR_BLOCKED_BY_CLIENT" in text:
            return  # our own guard refusing a write: listed in blocked_requests instead
        self._add_console(text)

    def _on_page_error(self, error: PlaywrightError) -> None:
        name = getattr(error, "name", "") or "Error"
        self._add_console(f"Uncaught {name}: {error.message}")

    def _add_console(self, text: str) -> None:
        if len(self.console) < MAX_CONSOLE_ERRORS:
            self.console.append(_clip(" ".join(text.split()), MAX_MESSAGE_CHARS))
        else:
            self.console_dropped += 1

    def _on_crash(self, _page: Page) -> None:
        self.crashed = True
        log.warning("browser_page_crashed", target=self.target.id)

    async def _on_dialog(self, dialog: Dialog) -> None:
        with contextlib.suppress(PlaywrightError):
            await dialog.dismiss()

    async def _on_new_page(self, page: Page) -> None:
        if page is self.page:
            return
        with contextlib.suppress(PlaywrightError):
            await page.close()

    # ----------------------------------------------------- captures and close

    async def _capture(self, failed: bool) -> dict[str, str]:
        store = self.settings.artifacts
        page = self.page
        if store is None or page is None or self.crashed or not self.runtime.connected:
            return {}
        budget = self.probe.capture_timeout
        wanted: list[tuple[str, Awaitable[Any]]] = [
            ("screenshot", page.screenshot(full_page=True, type="png", timeout=_ms(budget)))
        ]
        if failed:
            wanted.append(("html", page.content()))
        results = await asyncio.gather(
            *(_bounded(job, budget + 0.5) for _, job in wanted), return_exceptions=True
        )
        stored: dict[str, str] = {}
        for (kind, _), result in zip(wanted, results, strict=True):
            if isinstance(result, BaseException):
                log.warning(
                    "browser_capture_failed",
                    target=self.target.id,
                    kind=kind,
                    error=_first_line(str(result)) or type(result).__name__,
                )
                self.notes.append(f"{kind} not captured")
                continue
            data = result.encode("utf-8") if isinstance(result, str) else bytes(result)
            digest = await _store(store, data, kind, self.target.id)
            if digest is None:
                self.notes.append(f"{kind} not stored")
            else:
                stored[digest] = kind
        return stored

    async def _capture_warc(self, started: dt.datetime) -> dict[str, str]:
        """A WARC of what crossed the read-only proxy for this check (failures only): request
        and response records with the bytes as the proxy sent and received them."""
        store, session, failure = self.settings.artifacts, self.session, self.failure
        if store is None or session is None or failure is None or not session.exchanges:
            return {}
        capture = WarcCapture(
            target_id=self.target.id,
            vantage=self.settings.vantage,
            started_at=format_time(started),
            outcome=failure.outcome.value,
            error=failure.error,
        )
        exchanges = list(session.exchanges)
        environment = {**self.settings.environment, "user_agent": self.settings.user_agent}

        def build_and_store() -> str | None:
            data = build_warc(exchanges, capture, environment=environment)
            return None if data is None else store.put(data, "warc")

        try:
            digest = await asyncio.to_thread(build_and_store)
        except Exception as exc:  # a failing capture must not lose the observation
            log.exception("warc_capture_failed", target=self.target.id, error=str(exc))
            self.notes.append("warc not stored")
            return {}
        return {} if digest is None else {digest: "warc"}

    async def _close(self, context: BrowserContext) -> None:
        try:
            await asyncio.wait_for(context.close(), timeout=self.probe.close_timeout)
        except TimeoutError:
            log.warning("browser_context_close_hung", target=self.target.id)
            await self.runtime.kill(reason="a browser context did not close in time")
        except PlaywrightError:
            pass  # the browser already went away; the next check relaunches it

    # ------------------------------------------------------------ observation

    async def _conclude_drift(self) -> dict[str, str]:
        """Tell drift from failure for a failed step; keep a success's fingerprints."""
        failure, step = self.failure, self.failed_step
        failed = None
        if failure is not None and failure.outcome is Outcome.STEP_FAILED and step is not None:
            failed = (step.label, step.action)
        drift, self.drift_record, artifacts = await conclude(
            self.drift,
            success=failure is None,
            failed=failed,
            baseline=self.ctx.baseline,
            store=self.settings.artifacts,
        )
        if drift and failure is not None:
            self.failure = _Failure(
                Outcome.JOURNEY_DRIFT, _clip(f"journey drift (the page changed): {failure.error}")
            )
        return artifacts

    def _blocked(self) -> tuple[BlockedRequest, ...]:
        blocked = [*self.ctx.guard.blocked, *self.refused_schemes]
        if self.session is not None:  # what got past the page's routes and hit the wire
            blocked += self.session.blocked
        if len(blocked) > MAX_BLOCKED_LISTED:
            extra = len(blocked) - MAX_BLOCKED_LISTED
            blocked = [
                *blocked[:MAX_BLOCKED_LISTED],
                BlockedRequest(method="MORE", url=f"{extra} more blocked requests not listed"),
            ]
        return tuple(blocked)

    def _observation(
        self, started: dt.datetime, duration: float, artifacts: dict[str, str]
    ) -> Observation:
        console = list(self.console)
        if self.console_dropped:
            console.append(f"{self.console_dropped} more errors not listed")
        error = None
        if self.failure is not None:
            error = self.failure.error
            if self.notes:
                error = _clip(f"{error} [{'; '.join(self.notes)}]")
        environment = dict(self.settings.environment)
        environment.update(
            {
                "browser": f"chromium {self.runtime.version}" if self.runtime.version else None,
                "browser_executable": self.runtime.executable,
                "user_agent": self.settings.user_agent,
                "fresh_profile": True,
                "headless": True,
                # How the browser was kept read-only: its own network namespace ("root" or
                # "userns"), whose only way out is Vigie's GET/HEAD-only proxy.
                "browser_confinement": self.runtime.confinement,
            }
        )
        outcome = Outcome.OK if self.failure is None else self.failure.outcome
        observation = Observation(
            target_id=self.target.id,
            kind="browser",
            vantage=self.settings.vantage,
            started_at=format_time(started),
            duration_s=round(duration, 6),
            success=outcome is Outcome.OK,
            outcome=outcome,
            http_status=self.http_status,
            phases=self.phases,
            final_url=self.final_url,
            redirects=self.redirects,
            remote_ip=self.remote_ip,
            tls=self.tls,
            body_sha256=self.body_sha256,
            body_bytes=self.body_bytes,
            steps=tuple(self.steps),
            console_errors=tuple(console),
            blocked_requests=self._blocked(),
            artifacts=artifacts,
            error=error,
            environment=environment,
            timings=self.timings,
            drift=self.drift_record,
        )
        log.debug(
            "browser_check_done",
            target=self.target.id,
            outcome=str(outcome),
            duration_s=observation.duration_s,
            blocked=len(observation.blocked_requests),
        )
        return observation


def navigation_timings(entry: dict[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    """(timings, phases) in seconds from a PerformanceNavigationTiming entry (milliseconds)."""

    def get(name: str) -> float:
        value = entry.get(name)
        return float(value) if isinstance(value, int | float) else 0.0

    def seconds(value: float) -> float:
        return round(max(value, 0.0) / 1000.0, 6)

    timings: dict[str, float] = {}
    if get("responseStart") > 0:
        timings["ttfb"] = seconds(get("responseStart"))
    if get("domContentLoadedEventEnd") > 0:
        timings["dom_content_loaded"] = seconds(get("domContentLoadedEventEnd"))
    load = get("loadEventEnd") or get("loadEventStart")
    if load > 0:
        timings["load"] = seconds(load)
    phases: dict[str, float] = {}
    if get("requestStart") > 0:
        phases["resolve"] = seconds(get("domainLookupEnd") - get("domainLookupStart"))
        tls_start = get("secureConnectionStart")
        if tls_start > 0:
            phases["connect"] = seconds(tls_start - get("connectStart"))
            phases["tls"] = seconds(get("connectEnd") - tls_start)
        else:
            phases["connect"] = seconds(get("connectEnd") - get("connectStart"))
        phases["processing"] = seconds(get("responseStart") - get("requestStart"))
        phases["transfer"] = seconds(get("responseEnd") - get("responseStart"))
    return timings, phases


async def _document_body(response: Response) -> bytes | None:
    """The document's body, or None when it is larger than `MAX_BODY_BYTES`."""
    sizes = await response.request.sizes()
    if sizes["responseBodySize"] > MAX_BODY_BYTES:
        return None
    return await response.body()


async def _collect(task: asyncio.Future[T] | None, seconds: float = 2.0) -> T | None:
    """The result of a background task within `seconds`, or None (error, timeout, no task)."""
    if task is None:
        return None
    try:
        return await asyncio.wait_for(task, timeout=seconds)
    except (PlaywrightError, TimeoutError):
        return None
    finally:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: asyncio never warns about it


async def _bounded(awaitable: Awaitable[T], seconds: float) -> T:
    return await asyncio.wait_for(awaitable, timeout=max(seconds, 0.001))


async def _store(store: ArtifactStore, data: bytes, kind: str, target_id: str) -> str | None:
    try:
        return await asyncio.to_thread(store.put, data, kind)
    except Exception as exc:  # a failing store must not lose the observation
        log.exception("artifact_store_failed", target=target_id, kind=kind, error=str(exc))
        return None


def _ms(seconds: float) -> float:
    return max(seconds, 0.001) * 1000.0


def _first_line(text: str) -> str:
    text = text.strip()
    return text.splitlines()[0] if text else ""


def _clip(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
