"""Whose fault a failed check is, decided by `Service.classify` (unit level; the network cases
with a real resolver and real links are in tests/test_netpath_netns.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from config.settings import Settings
from config.vocabulary import Outcome
from exporter.metrics import Metrics
from exporter.service import Service
from probes.base import ProbeRegistry, ProbeSettings
from probes.observation import Observation


class _Sink:
    async def append(self, entry_type: str, body: Any) -> int:
        return 0


def _service() -> Service:
    settings = Settings.model_validate(
        {
            "targets": [
                {"id": "journey", "name": "J", "kind": "browser", "url": "https://anef.test/"}
            ],
            "controls": ["https://control.test/"],
        }
    )
    registry = ProbeRegistry(
        ProbeSettings(vantage="t", user_agent="Vigie-test/1.0", environment={}), {}
    )
    return Service(settings, registry, Metrics(vantage="t", version="t"), _Sink())


def _browser_dns_failure() -> Observation:
    return Observation(
        target_id="journey",
        kind="browser",
        vantage="t",
        started_at="2026-12-07T18:00:00.000000Z",
        duration_s=0.2,
        success=False,
        outcome=Outcome.DNS_ERROR,
        final_url="https://anef.test/",
        error="page.goto: net::ERR_NAME_NOT_RESOLVED at https://anef.test/",
    )


@pytest.mark.parametrize(
    ("names_resolve", "outcome"), [(False, "vantage_offline"), (True, "dns_error")]
)
def test_browser_dns_error_is_compared_with_the_controls_names(
    monkeypatch: pytest.MonkeyPatch, names_resolve: bool, outcome: str
) -> None:
    """A journey whose name does not resolve: the vantage's resolver when the controls' names
    fail too, the target's when they resolve (and the controls answer)."""
    service = _service()

    async def controls_resolve() -> bool:
        return names_resolve

    async def vantage_online() -> bool:
        return True

    monkeypatch.setattr(service, "controls_resolve", controls_resolve)
    monkeypatch.setattr(service, "vantage_online", vantage_online)
    obs = asyncio.run(service.classify(_browser_dns_failure()))
    assert obs.outcome.value == outcome
    dns = obs.environment["dns"]
    assert dns["host"] == "anef.test"
    assert dns["error"] == "ERR_NAME_NOT_RESOLVED"
    assert dns["verdict"] == ("target" if names_resolve else "resolver")
    assert isinstance(dns["resolvers"], list)


def test_control_check_not_reused_longer_than_the_interval_allows() -> None:
    """`interval: 1s` with the default `recheck: 10s`: a control check is reused for at most
    half a second, so the first failures of a network cut are not counted against the target."""
    seen: list[str] = []

    class _Probe:
        kind = "http"

        async def check(self, ctx: Any) -> Observation:
            seen.append(ctx.target.id)
            return Observation(
                target_id=ctx.target.id,
                kind="http",
                vantage="t",
                started_at="2026-12-07T18:00:00.000000Z",
                duration_s=0.01,
                success=False,
                outcome=Outcome.CONNECT_ERROR,
            )

        async def aclose(self) -> None:
            return None

    settings = Settings.model_validate(
        {
            "defaults": {"interval": "1s"},
            "targets": [{"id": "site", "name": "S", "kind": "http", "url": "http://127.0.0.1:9/"}],
            "controls": ["http://127.0.0.1:9/control"],
        }
    )
    registry = ProbeRegistry(
        ProbeSettings(vantage="t", user_agent="Vigie-test/1.0", environment={}),
        {"http": lambda _settings: _Probe()},
    )
    service = Service(settings, registry, Metrics(vantage="t", version="t"), _Sink())

    async def scenario() -> None:
        assert not await service.vantage_online()
        await asyncio.sleep(0.6)
        assert not await service.vantage_online()

    asyncio.run(scenario())
    assert seen == ["control-1", "control-1"]  # checked again, not reused for 5 s
