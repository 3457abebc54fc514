"""The whole alerting chain on loopback: simulator -> Vigie -> Prometheus -> Alertmanager -> sinks.

Real binaries (prometheus, prometheus-alertmanager), a local SMTP sink and webhook receiver;
intervals in seconds (interval 1 s, recheck 0.5 s, confirm_after 2) so a run takes ~30 s.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from simulator import SimulatorProcess
from tests.alerting_stack import AlertingStack, alerting_stack, missing_binaries
from tests.service_fixture import http_get
from tests.smtp_sink import ReceivedMail
from tests.webhook_sink import WebhookCall

pytestmark = [
    pytest.mark.prometheus,
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(missing_binaries("prometheus", "prometheus-alertmanager")),
        reason="needs prometheus and prometheus-alertmanager (make deps-test)",
    ),
]

PARIS = ZoneInfo("Europe/Paris")
WAIT_S = 60.0  # upper bound for any step; the benchmark measures the real latency


@pytest.fixture
def stack(simulator_process: SimulatorProcess, tmp_path: Path) -> Iterator[AlertingStack]:
    """The chain, started and ready (target probed up, scraped and evaluated)."""
    with alerting_stack(simulator_process, tmp_path) as chain:
        chain.wait_ready()
        yield chain


def _paris(timestamp: float) -> str:
    moment = dt.datetime.fromtimestamp(timestamp, PARIS)
    return moment.strftime("%d/%m/%Y à %H:%M:%S") + " (heure de Paris)"


def _legal(stack: AlertingStack, status: str) -> ReceivedMail:
    def match(mail: ReceivedMail) -> bool:
        resolved = mail.subject.startswith("[Vigie] Rétabli")
        return stack.target_name in mail.subject and resolved == (status == "resolved")

    try:
        return stack.smtp.wait_for(match, timeout=WAIT_S)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{stack.diagnostics()}") from None


def _webhook(stack: AlertingStack, alertname: str, status: str = "firing") -> WebhookCall:
    def match(call: WebhookCall) -> bool:
        return any(
            a["labels"].get("alertname") == alertname and a["status"] == status
            for a in call.payload["alerts"]
        )

    try:
        return stack.webhook.wait_for(match, timeout=WAIT_S)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{stack.diagnostics()}") from None


class TestLegalAlerts:
    def test_outage_emails_the_legal_team_in_french_then_its_end(
        self, stack: AlertingStack
    ) -> None:
        """A fault: French e-mail with outage start and evidence link; recovery: « Rétabli »."""
        stack.simulator.set_fault("/", "http_500", "site")
        firing = _legal(stack, "firing")
        start = stack.outage_start()
        assert start is not None, "Vigie exposes no open outage while the e-mail says there is one"
        debut = _paris(start)

        assert firing.subject == (
            f"[Vigie] Panne confirmée : {stack.target_name} — depuis le {debut}"
        )
        assert firing.rcpt_to == ("juristes@association.test",)
        text = firing.text
        assert f"Vigie a confirmé une panne de « {stack.target_name} » ({stack.target})" in text
        assert f"Début de la panne    : {debut}" in text
        links = re.findall(r"^  Preuves\s+: (\S+)$", text, flags=re.MULTILINE)
        assert len(links) == 1, text
        assert links[0].startswith(stack.public_base + "/outages"), (
            f"{links[0]}: links must start with Vigie's public_url ({stack.public_base}), "
            "which Vigie exports as the public_url label of vigie_build_info"
        )
        assert f'href="{links[0]}"' in firing.html.replace("&amp;", "&")
        status, page = http_get(links[0])
        assert status == 200, (
            f"the evidence link {links[0]} answers {status}: Vigie should export "
            "vigie_outage_info{target,kind,outage_id} for its open outages"
        )
        assert html.escape(stack.target_name).encode() in page
        # team="legal+tech": the tech side is told too, to check the probe.
        _webhook(stack, "VigieTargetDown")

        stack.simulator.clear_faults()
        resolved = _legal(stack, "resolved")
        assert resolved.subject.startswith(
            f"[Vigie] Rétabli : {stack.target_name} — panne du {debut}, durée environ "
        )
        text = resolved.text
        assert "fonctionne de nouveau" in text
        assert f"Début de la panne         : {debut}" in text
        assert re.search(r"Durée de la panne\s+: environ \d+(\.\d+)?s", text), text
        assert re.search(r"Rétablissement constaté\s+: \d\d/\d\d/\d{4} à ", text), text
        assert "conservé dans le registre de preuves" in text
        assert f"Preuves                   : {links[0]}" in text


class TestVantageOffline:
    def test_network_cut_tells_tech_and_not_legal(self, stack: AlertingStack) -> None:
        """Controls and target failing together: tech gets « vantage offline », legal nothing."""
        # `down` is host-wide in the simulator: controls and target all refuse connections,
        # as when the vantage's own network is cut.
        for path in ("/controle-1", "/controle-2", "/"):
            stack.simulator.set_fault(path, "down", "site")
        # Enough failed checks for an outage to be confirmed twice over, had they counted.
        needed = stack.timings.confirm_after + 2
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            seen = stack.prometheus.query(
                f'vigie_probes_total{{target="{stack.target}",outcome="vantage_offline"}}'
            )
            if seen and float(seen[0]["value"][1]) >= needed:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"Prometheus never saw {needed} vantage_offline checks")

        call = _webhook(stack, "VigieVantageOffline")
        assert call.payload["receiver"] == "tech"
        alert = next(
            a for a in call.payload["alerts"] if a["labels"]["alertname"] == "VigieVantageOffline"
        )
        assert alert["labels"]["vantage"] == "e2e-1"
        assert "hors ligne" in alert["annotations"]["summary"]

        # The vantage-offline alert left Prometheus after the evaluations that saw those checks,
        # and went through the same Alertmanager with the same group_wait: a legal alert caused
        # by them would have been delivered by now.
        assert stack.smtp.messages == []
        assert stack.service.sample("vigie_outage_open", target=stack.target, kind="down") == 0.0
        legal = [
            a
            for a in stack.alertmanager.alerts()
            if a["labels"].get("team", "").startswith("legal")
        ]
        assert legal == []
        assert stack.prometheus.query('ALERTS{team=~"legal.*"}') == []

        # Control: once the network is back and the target alone fails, the legal team is told.
        stack.simulator.clear_faults()
        stack.simulator.set_fault("/", "http_500", "site")
        _legal(stack, "firing")
