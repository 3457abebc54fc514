"""The HTTP(S) probe: one read-only GET/HEAD check of a target, described as an Observation.

Every request (redirects included) asks the read-only guard first; a check never raises for a
failure of the target, never reuses a connection, and never outlives its deadline.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
from time import perf_counter
from typing import Any
from urllib.parse import urljoin

import structlog

from config.targets import Target
from config.vocabulary import Outcome
from probes.base import ProbeContext, ProbeSettings
from probes.environment import resolvers
from probes.guard import WriteBlockedError
from probes.httpclient import (
    PHASES,
    Exchange,
    FetchError,
    HttpClient,
    Limits,
    Resolver,
    body_text_contains,
)
from probes.observation import Observation, TLSInfo, format_time, utc_now
from probes.warc import WarcCapture, build_warc

__all__ = ["HttpCheckResult", "HttpProbe"]

log = structlog.get_logger("vigie.probes.http")

_REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
_ERROR_MAX = 199
_PHASE_TEXT = {
    "resolve": "resolving the host name",
    "connect": "connecting",
    "tls": "during the TLS handshake",
    "processing": "waiting for the first response byte",
    "transfer": "reading the response",
}


@dataclasses.dataclass(frozen=True, slots=True)
class HttpCheckResult:
    """A check's observation plus every exchange behind it (raw bytes kept for captures)."""

    observation: Observation
    exchanges: tuple[Exchange, ...]


class HttpProbe:
    """Checks `http` targets: status, expected text, redirects, TLS facts and phase timings.

    Outcomes: ``dns_error`` (name does not resolve), ``connect_error`` (refused, unreachable,
    or reset/closed before any response byte), ``tls_error`` (handshake or certificate refused;
    the refused certificate is still recorded), ``timeout`` (the overall deadline, covering DNS
    to the last body byte and every redirect), ``http_status``, ``content_mismatch``,
    ``too_large`` (head > 64 KiB or > 100 headers, body > 10 MiB decoded or > 16 MiB on the
    wire), ``protocol_error`` (malformed answer, unsupported encoding, or a body cut short by a
    reset or close after the response began), ``redirect_loop`` (more than `max_redirects`),
    ``blocked`` (the read-only guard refused a request). An unexpected status wins over a
    failure while reading its body: a 503 whose body never ends is reported as ``http_status``.
    """

    kind = "http"

    def __init__(
        self,
        settings: ProbeSettings,
        *,
        ssl_context: ssl.SSLContext | None = None,
        limits: Limits | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self._settings = settings
        self._environment = dict(settings.environment)
        self._client = HttpClient(
            settings.user_agent, ssl_context=ssl_context, limits=limits, resolver=resolver
        )

    async def check(self, ctx: ProbeContext) -> Observation:
        """Probe `ctx.target` once within `ctx.timeout`; never raises for the target's failure."""
        return (await self.run(ctx)).observation

    async def aclose(self) -> None:
        """Nothing to release: connections never outlive a check."""

    async def run(self, ctx: ProbeContext) -> HttpCheckResult:
        """Like `check`, also returning the exchanges (raw status line, headers, body)."""
        target = ctx.target
        started_at = format_time(utc_now())
        start = perf_counter()
        exchanges: list[Exchange] = []
        redirects = 0
        outcome = Outcome.OK
        error: str | None = None
        refused: Exchange | None = None
        try:
            async with asyncio.timeout(ctx.timeout):
                redirects = await self._follow(ctx, exchanges)
        except TimeoutError:
            outcome, error = self._timed_out(target, ctx.timeout, exchanges)
        except FetchError as exc:
            outcome, error = exc.outcome, str(exc)
            if exc.outcome is Outcome.REDIRECT_LOOP:
                redirects = target.max_redirects
            last = exchanges[-1] if exchanges else None
            if last is not None:
                last.end()
                if _unexpected_final_status(target, last):
                    outcome, error = Outcome.HTTP_STATUS, f"{_status_text(target, last)}; {error}"
                elif last.tls_verify_failed:
                    refused = last
        except WriteBlockedError as exc:
            outcome, error = Outcome.BLOCKED, str(exc)
        else:
            outcome, error = _judge(target, exchanges[-1])
        duration = perf_counter() - start
        if refused is not None:  # after the clock stopped: evidence, not part of the check
            await self._record_refused_certificate(refused, ctx.timeout - duration)
        observation = self._observation(
            ctx,
            started_at=started_at,
            duration=duration,
            outcome=outcome,
            error=error,
            exchanges=exchanges,
            redirects=redirects,
        )
        if outcome is not Outcome.OK and self._settings.artifacts is not None:
            observation = await self._capture_warc(observation, exchanges)
        return HttpCheckResult(observation, tuple(exchanges))

    async def _capture_warc(
        self, observation: Observation, exchanges: list[Exchange]
    ) -> Observation:
        """Store a WARC of a failed check's exchanges and name it in the observation."""
        store = self._settings.artifacts
        assert store is not None
        capture = WarcCapture(
            target_id=observation.target_id,
            vantage=observation.vantage,
            started_at=observation.started_at,
            outcome=observation.outcome.value,
            error=observation.error,
        )

        def build_and_store() -> str | None:
            data = build_warc(exchanges, capture, environment=self._environment)
            return None if data is None else store.put(data, "warc")

        try:
            digest = await asyncio.to_thread(build_and_store)
        except Exception as exc:  # a failing capture must not lose the observation
            if isinstance(exc, OSError) or isinstance(exc.__cause__, OSError):
                # Disk full or unwritable store: expected, said in one line, no traceback.
                log.error(  # noqa: TRY400
                    "warc_capture_failed", target=observation.target_id, error=str(exc)
                )
            else:
                log.exception("warc_capture_failed", target=observation.target_id, error=str(exc))
            return observation
        if digest is None:
            return observation
        return dataclasses.replace(observation, artifacts={**observation.artifacts, digest: "warc"})

    async def _follow(self, ctx: ProbeContext, exchanges: list[Exchange]) -> int:
        """Run the request and its redirects; return how many redirects were followed."""
        target = ctx.target
        method, url = target.method, target.url
        redirects = 0

        def skip_body(ex: Exchange) -> bool:
            return _is_redirect(target, ex)

        while True:
            ctx.guard.admit(method, url)
            ex = self._client.exchange(method, url)
            exchanges.append(ex)
            await self._client.fetch(ex, skip_body)
            if not _is_redirect(target, ex):
                return redirects
            location = urljoin(url, ex.location or "")
            if redirects >= target.max_redirects:
                raise FetchError(
                    Outcome.REDIRECT_LOOP,
                    f"more than {target.max_redirects} redirects (next: {location[:80]})",
                )
            if not location.lower().startswith(("http://", "https://")):
                raise FetchError(
                    Outcome.PROTOCOL_ERROR, f"redirect to a non-http(s) URL: {location[:80]!r}"
                )
            redirects += 1
            if ex.status == 303 and method != "HEAD":
                method = "GET"
            url = location

    @staticmethod
    def _timed_out(
        target: Target, timeout: float, exchanges: list[Exchange]
    ) -> tuple[Outcome, str]:
        if not exchanges:
            return Outcome.TIMEOUT, f"no answer within {timeout:g} s"
        last = exchanges[-1]
        phase = last.phase
        if phase == "processing" and last.first_byte_at is not None:
            phase = "transfer"
        last.end()
        if phase == "resolve":
            last.dns_error = "timeout"  # the resolver did not answer within the deadline
        where = _PHASE_TEXT.get(phase or "", "")
        message = f"no complete answer within {timeout:g} s" + (
            f" (timed out {where})" if where else ""
        )
        if _unexpected_final_status(target, last):
            return Outcome.HTTP_STATUS, f"{_status_text(target, last)}; {message}"
        return Outcome.TIMEOUT, message

    async def _record_refused_certificate(self, ex: Exchange, remaining: float) -> None:
        """Keep the facts of a certificate that failed verification (evidence of why)."""
        if remaining <= 0.05:
            return
        try:
            async with asyncio.timeout(min(remaining, 5.0)):
                ex.tls = await self._client.peek_certificate(ex)
        except TimeoutError:
            return

    def _observation(
        self,
        ctx: ProbeContext,
        *,
        started_at: str,
        duration: float,
        outcome: Outcome,
        error: str | None,
        exchanges: list[Exchange],
        redirects: int,
    ) -> Observation:
        target = ctx.target
        phases = dict.fromkeys(PHASES, 0.0)
        tls: TLSInfo | None = None
        for ex in exchanges:
            for name, value in ex.phases.items():
                phases[name] += value
            tls = ex.tls or tls
        last = exchanges[-1] if exchanges else None
        environment: dict[str, Any] = dict(self._environment)
        environment["resolved_ips"] = list(exchanges[0].resolved_ips) if exchanges else []
        environment["fresh_connection"] = True
        # Happy Eyeballs: per request, which address answered, which were tried, how each failed
        environment["connections"] = [
            {
                "host": ex.host,
                "answered": ex.remote_ip,
                "attempts": [a.to_dict() for a in ex.attempts],
            }
            for ex in exchanges
            if ex.attempts or ex.remote_ip is not None
        ]
        if last is not None and last.dns_error is not None:
            # the lookup failed or was cut by the deadline: say which resolver was asked
            environment["dns"] = {
                "host": last.host,
                "error": last.dns_error,
                "resolvers": resolvers(),
            }
        body = last.body if last is not None else None
        return Observation(
            target_id=target.id,
            kind=self.kind,
            vantage=self._settings.vantage,
            started_at=started_at,
            duration_s=round(duration, 6),
            success=outcome is Outcome.OK,
            outcome=outcome,
            http_status=last.status if last is not None else None,
            phases={name: round(value, 6) for name, value in phases.items()},
            final_url=last.url if last is not None else target.url,
            redirects=redirects,
            remote_ip=last.remote_ip if last is not None else None,
            tls=tls,
            body_sha256=last.body_sha256 if last is not None else None,
            body_bytes=len(body) if body is not None else None,
            blocked_requests=ctx.guard.blocked,
            error=_one_line(error),
            environment=environment,
        )


def _is_redirect(target: Target, ex: Exchange) -> bool:
    return (
        ex.status in _REDIRECT_STATUS
        and ex.location is not None
        and ex.status not in target.expect.status
    )


def _unexpected_final_status(target: Target, ex: Exchange) -> bool:
    return (
        ex.status is not None
        and ex.status not in target.expect.status
        and not _is_redirect(target, ex)
    )


def _status_text(target: Target, ex: Exchange) -> str:
    expected = ", ".join(str(code) for code in target.expect.status)
    reason = f" {ex.reason}" if ex.reason else ""
    return f"HTTP {ex.status}{reason} (expected {expected})"


def _judge(target: Target, ex: Exchange) -> tuple[Outcome, str | None]:
    """Outcome of a complete final response: status first, then expected/forbidden text."""
    if ex.status not in target.expect.status:
        return Outcome.HTTP_STATUS, _status_text(target, ex)
    expect = target.expect
    body = ex.body if ex.body is not None else b""
    if expect.contains is not None and not body_text_contains(
        body, ex.content_type, expect.contains
    ):
        what = (
            "HEAD response has no body to search for"
            if ex.method == "HEAD"
            else "body does not contain"
        )
        return Outcome.CONTENT_MISMATCH, f"{what} {expect.contains[:80]!r}"
    if expect.not_contains is not None and body_text_contains(
        body, ex.content_type, expect.not_contains
    ):
        return Outcome.CONTENT_MISMATCH, f"body contains {expect.not_contains[:80]!r}"
    return Outcome.OK, None


def _one_line(text: str | None) -> str | None:
    if text is None:
        return None
    line = " ".join(text.split())
    if len(line) > _ERROR_MAX:
        line = line[: _ERROR_MAX - 3] + "..."
    return line
