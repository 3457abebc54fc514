"""Every HTTP fault of the simulator, probed by the real HTTP probe, gets the right outcome."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from config.targets import Expectation, Target
from config.vocabulary import Outcome
from probes.base import ProbeContext, ProbeSettings
from probes.http import HttpProbe
from probes.observation import Observation
from simulator import LOGIN_PATH, Simulator

SETTINGS = ProbeSettings(vantage="t", user_agent="Vigie-test/1 (+http://localhost)", environment={})
HOME = Expectation(status=(200,), contains="étrangers")


def probe(
    url: str,
    *,
    timeout: float = 5.0,
    expect: Expectation = HOME,
    ssl_context: ssl.SSLContext | None = None,
    method: str = "GET",
) -> Observation:
    """Check `url` once with the project's HTTP probe."""
    target = Target.model_validate(
        {"id": "cible", "kind": "http", "url": url, "expect": expect, "method": method}
    )

    async def run() -> Observation:
        http_probe = HttpProbe(SETTINGS, ssl_context=ssl_context)
        try:
            return await http_probe.check(ProbeContext(target=target, timeout=timeout))
        finally:
            await http_probe.aclose()

    return asyncio.run(run())


def trusting(simulator: Simulator) -> ssl.SSLContext:
    """A client context that trusts the simulator's throwaway CA (and nothing else)."""
    return ssl.create_default_context(cafile=str(simulator.tls_ca_file))


class TestHealthySite:
    """Without faults, every simulated target is a success."""

    def test_home_page_ok_with_phases(self, simulator: Simulator) -> None:
        """The home page is ok, with every HTTP phase measured and the body hashed."""
        obs = probe(simulator.site_url)
        assert obs.outcome is Outcome.OK, obs.error
        assert obs.http_status == 200
        assert set(obs.phases) >= {"resolve", "connect", "processing", "transfer"}
        assert obs.phases["connect"] > 0
        assert obs.phases["processing"] > 0
        assert obs.body_bytes is not None
        assert obs.body_bytes > 0
        assert obs.remote_ip == "127.0.0.1"

    def test_login_page_ok(self, simulator: Simulator) -> None:
        """The login page contains its username field."""
        obs = probe(simulator.login_url, expect=Expectation(contains="username"))
        assert obs.outcome is Outcome.OK, obs.error

    def test_back_end_401_is_alive(self, simulator: Simulator) -> None:
        """The back end's 401 is the expected answer of an alive back end."""
        obs = probe(simulator.api_url, expect=Expectation(status=(401, 403)))
        assert obs.outcome is Outcome.OK, obs.error
        assert obs.http_status == 401

    def test_https_ok_with_tls_facts(self, simulator: Simulator) -> None:
        """Over HTTPS with the CA trusted: ok, a TLS phase, and the certificate's facts."""
        obs = probe(simulator.tls_url, ssl_context=trusting(simulator))
        assert obs.outcome is Outcome.OK, obs.error
        assert obs.phases["tls"] > 0
        assert obs.tls is not None
        assert "Vigie simulator test CA" in obs.tls.issuer

    def test_head_ok(self, simulator: Simulator) -> None:
        """A HEAD check of the back end is ok and sends no write."""
        obs = probe(simulator.api_url, expect=Expectation(status=(401,)), method="HEAD")
        assert obs.outcome is Outcome.OK, obs.error
        assert simulator.counts.by_method() == {"HEAD": 1}


class TestFaultClassification:
    """Each fault switched on the simulator is classified as the outcome it should be."""

    def test_down_is_connect_error(self, simulator: Simulator) -> None:
        """A host that refuses connections is a connect_error."""
        simulator.set_fault("/", "down")
        obs = probe(simulator.site_url)
        assert obs.outcome is Outcome.CONNECT_ERROR, obs.error
        assert not obs.success

    @pytest.mark.parametrize(
        ("fault", "status"), [("http_500", 500), ("http_503_maintenance", 503)]
    )
    def test_error_status_is_http_status(
        self, simulator: Simulator, fault: str, status: int
    ) -> None:
        """5xx answers are http_status failures carrying the status code."""
        simulator.set_fault("/", fault)
        obs = probe(simulator.site_url)
        assert obs.outcome is Outcome.HTTP_STATUS, obs.error
        assert obs.http_status == status

    def test_back_end_500_is_http_status(self, simulator: Simulator) -> None:
        """A 500 where 401/403 is expected is a failing back end."""
        simulator.set_fault("/api/usager/moi", "http_500")
        obs = probe(simulator.api_url, expect=Expectation(status=(401, 403)))
        assert obs.outcome is Outcome.HTTP_STATUS, obs.error

    def test_slow_within_timeout_is_ok_and_measured(self, simulator: Simulator) -> None:
        """A 0.3 s delay before the first byte is ok, and shows in the processing phase."""
        simulator.set_fault("/", "slow:0.3")
        obs = probe(simulator.site_url, timeout=5.0)
        assert obs.outcome is Outcome.OK, obs.error
        assert obs.phases["processing"] >= 0.3
        assert obs.phases["processing"] < 0.3 + 0.5  # generous: the 2 ms goal is for bench/

    def test_slow_beyond_timeout_is_timeout(self, simulator: Simulator) -> None:
        """A first byte later than the check's timeout is a timeout."""
        simulator.set_fault("/", "slow:3")
        obs = probe(simulator.site_url, timeout=0.5)
        assert obs.outcome is Outcome.TIMEOUT, obs.error

    def test_hang_is_timeout(self, simulator: Simulator) -> None:
        """A server that accepts and never answers is a timeout."""
        simulator.set_fault("/", "hang")
        obs = probe(simulator.site_url, timeout=0.5)
        assert obs.outcome is Outcome.TIMEOUT, obs.error

    def test_reset_is_a_connection_failure(self, simulator: Simulator) -> None:
        """A TCP reset after the request is a connect_error or protocol_error, never ok."""
        simulator.set_fault("/", "reset")
        obs = probe(simulator.site_url)
        assert obs.outcome in {Outcome.CONNECT_ERROR, Outcome.PROTOCOL_ERROR}, obs.error
        assert obs.error

    def test_disconnect_is_protocol_error(self, simulator: Simulator) -> None:
        """A connection closed without an answer is a protocol_error or connect_error."""
        simulator.set_fault("/", "disconnect")
        obs = probe(simulator.site_url)
        assert obs.outcome in {Outcome.PROTOCOL_ERROR, Outcome.CONNECT_ERROR}, obs.error

    @pytest.mark.parametrize("fault", ["huge_body", "gzip_bomb"])
    def test_huge_body_is_too_large(self, simulator: Simulator, fault: str) -> None:
        """An endless body, or one inflating past 10 MiB, is too_large."""
        simulator.set_fault("/", fault)
        obs = probe(simulator.site_url, timeout=20.0)
        assert obs.outcome is Outcome.TOO_LARGE, obs.error

    def test_redirect_loop(self, simulator: Simulator) -> None:
        """Redirects that loop are a redirect_loop."""
        simulator.set_fault("/", "redirect_loop")
        obs = probe(simulator.site_url)
        assert obs.outcome is Outcome.REDIRECT_LOOP, obs.error

    def test_wrong_content_is_content_mismatch(self, simulator: Simulator) -> None:
        """A 200 without the expected text is a content_mismatch."""
        simulator.set_fault("/", "wrong_content")
        obs = probe(simulator.site_url)
        assert obs.outcome is Outcome.CONTENT_MISMATCH, obs.error
        assert obs.http_status == 200

    def test_login_wrong_content_is_content_mismatch(self, simulator: Simulator) -> None:
        """A login page without its username field is a content_mismatch."""
        simulator.set_fault(LOGIN_PATH, "wrong_content")
        obs = probe(simulator.login_url, expect=Expectation(contains="username"))
        assert obs.outcome is Outcome.CONTENT_MISMATCH, obs.error

    @pytest.mark.parametrize("fault", ["bad_tls", "bad_tls:expired", "bad_tls:hostname"])
    def test_bad_tls_is_tls_error(self, simulator: Simulator, fault: str) -> None:
        """A certificate that fails verification is a tls_error, even with the CA trusted."""
        simulator.set_fault("/", fault)
        obs = probe(simulator.tls_url, ssl_context=trusting(simulator))
        assert obs.outcome is Outcome.TLS_ERROR, obs.error

    def test_untrusted_certificate_is_tls_error(self, simulator: Simulator) -> None:
        """The throwaway certificate, for a client with the default trust store, is a tls_error."""
        obs = probe(simulator.tls_url)
        assert obs.outcome is Outcome.TLS_ERROR, obs.error

    def test_browser_faults_are_invisible_to_http(self, simulator: Simulator) -> None:
        """Browser-only faults leave the HTTP check ok: only a browser can see them."""
        simulator.set_fault(LOGIN_PATH, "js_error")
        obs = probe(simulator.login_url, expect=Expectation(contains="username"))
        assert obs.outcome is Outcome.OK, obs.error

    def test_probes_sent_no_write(self, simulator: Simulator) -> None:
        """Probing every fault sends only GET requests to the simulator."""
        for fault in ("http_500", "redirect_loop", "wrong_content", "slow:0.01"):
            simulator.set_fault("/", fault)
            probe(simulator.site_url)
        assert simulator.counts.total() > 0
        assert simulator.counts.writes == 0
        assert set(simulator.counts.by_method()) == {"GET"}
