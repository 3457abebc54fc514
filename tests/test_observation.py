"""Observation: its dictionary form keeps every field, and canonical JSON is stable."""

from __future__ import annotations

import dataclasses

from config.vocabulary import Outcome
from probes.observation import BlockedRequest, Observation, StepResult, TLSInfo, canonical_json


def _full() -> Observation:
    return Observation(
        target_id="t",
        kind="browser",
        vantage="v",
        started_at="2026-11-23T13:27:18.123456Z",
        duration_s=1.5,
        success=False,
        outcome=Outcome.STEP_FAILED,
        http_status=200,
        phases={"connect": 0.1},
        final_url="http://127.0.0.1/",
        redirects=1,
        remote_ip="127.0.0.1",
        tls=TLSInfo("CN=ca", "CN=site", "2027-01-01T00:00:00Z", "ab" * 32, "TLSv1.3"),
        body_sha256="00" * 32,
        body_bytes=10,
        steps=(StepResult("load", 0.5, ok=True), StepResult("click", 1.0, ok=False, error="x")),
        console_errors=("boom",),
        blocked_requests=(BlockedRequest("POST", "http://127.0.0.1/w"),),
        artifacts={"11" * 32: "screenshot"},
        error="step click failed",
        environment={"os": "Linux", "local_ips": ["192.0.2.2"]},
        timings={"ttfb": 0.2},
        drift={"baseline": {"click": {"fingerprint": "22" * 32, "observation": 3}}},
        seq=7,
    )


class TestObservation:
    def test_to_dict_matches_asdict(self) -> None:
        """The hand-written dict form serialises like the generic dataclass conversion."""
        obs = _full()
        expected = dataclasses.asdict(obs)
        expected["outcome"] = "step_failed"
        for blocked in expected["blocked_requests"]:  # written only when known (see below)
            if blocked["sender"] is None:
                del blocked["sender"]
        assert canonical_json(obs.to_dict()) == canonical_json(expected)
        assert set(obs.to_dict()) == {f.name for f in dataclasses.fields(Observation)}

    def test_blocked_sender_only_when_known(self) -> None:
        """A blocked request's sender is written when known; an entry recorded before senders
        existed serialises (and so hashes) exactly as it did."""
        old = {"method": "POST", "url": "https://x/"}
        obs = dataclasses.replace(_full(), blocked_requests=(BlockedRequest(**old),))
        assert obs.to_dict()["blocked_requests"] == [old]
        known = BlockedRequest(method="POST", url="https://x/", sender="sharedworker")
        obs = dataclasses.replace(obs, blocked_requests=(known,))
        assert obs.to_dict()["blocked_requests"] == [{**old, "sender": "sharedworker"}]

    def test_empty_drift_is_not_serialised(self) -> None:
        """An observation without drift data serialises as before the field existed."""
        obs = dataclasses.replace(_full(), drift={})
        assert "drift" not in obs.to_dict()
        assert Observation.from_dict(obs.to_dict()) == obs

    def test_round_trip(self) -> None:
        """from_dict(to_dict()) gives back the same observation."""
        obs = _full()
        assert Observation.from_dict(obs.to_dict()) == obs

    def test_canonical_json(self) -> None:
        """Canonical JSON sorts keys, keeps UTF-8 and has no spaces."""
        assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()
