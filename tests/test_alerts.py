"""Alert rules and Alertmanager config, checked with the real promtool, amtool and Alertmanager.

Rules are unit-tested by promtool (alerts/tests/*.test.yml); routes by amtool; templates and
inhibitions by a real Alertmanager that mails a local SMTP sink and posts to a local webhook.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.vocabulary import Outcome
from tests.alerting_stack import (
    ALERTS_DIR,
    AMTOOL,
    PROMTOOL,
    RULE_FILES,
    Alertmanager,
    alert_payload,
    missing_binaries,
    render_alertmanager_config,
)
from tests.smtp_sink import ReceivedMail, SmtpSink
from tests.webhook_sink import WebhookSink

pytestmark = [
    pytest.mark.prometheus,
    pytest.mark.skipif(
        bool(missing_binaries("promtool", "amtool", "prometheus-alertmanager")),
        reason="needs promtool, amtool and prometheus-alertmanager (make deps-test)",
    ),
]

ROOT = ALERTS_DIR.parent
RUNBOOKS = ROOT / "docs" / "runbooks.md"
AM_CONFIGS = (ALERTS_DIR / "alertmanager.yml", ALERTS_DIR / "examples" / "alertmanager-chat.yml")
TEAMS = {"legal", "tech", "legal+tech"}
SEVERITIES = {"critical", "warning", "info"}
# Alerts that are never notified: they only inhibit others (routed to the "aucun" receiver).
INHIBITORS = {"VigieScrapeGap"}
OUTAGE_ALERTS = {"VigieTargetDown", "VigieCoreJourneyDown", "VigieTargetDegraded"}
REQUIRED_ALERTS = {
    "VigieTargetDown",
    "VigieCoreJourneyDown",
    "VigieTargetDegraded",
    "VigieVantageOffline",
    "VigieNotScraped",
    "VigieAbsent",
    "VigieProbeErrorsHigh",
    "VigieJourneyDrift",
    "VigieLedgerCheckpointStale",
    "VigieTSAFailing",
    "VigieLedgerWriteErrors",
    "VigieTargetCertificateExpiringSoon",
}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False, cwd=ROOT)


def _alert_rules() -> list[dict[str, Any]]:
    rules = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text("utf-8"))["groups"]:
            rules += [r for r in group["rules"] if "alert" in r]
    return rules


def _github_slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = unicodedata.normalize("NFC", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


class TestRuleFiles:
    def test_promtool_check_rules(self) -> None:
        """Every rule file passes `promtool check rules`."""
        result = _run(PROMTOOL, "check", "rules", *map(str, RULE_FILES))
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.count("SUCCESS") == len(RULE_FILES)

    def test_every_alert_the_issue_asks_for_exists(self) -> None:
        """Target down, core journey, degraded, vantage offline, not scraped... are all defined."""
        names = {r["alert"] for r in _alert_rules()}
        assert names >= REQUIRED_ALERTS

    def test_every_alert_has_severity_team_and_french_annotations(self) -> None:
        """Each notified alert has a severity, a team, a French summary/description, a runbook."""
        for rule in _alert_rules():
            name = rule["alert"]
            labels, annotations = rule["labels"], rule["annotations"]
            if name in INHIBITORS:
                assert labels["team"] == "none", name
                continue
            assert labels["team"] in TEAMS, name
            severities = set(re.findall(r"critical|warning|info", labels["severity"]))
            assert severities, name
            assert severities <= SEVERITIES, name
            for key in ("summary", "description", "runbook_url"):
                assert annotations.get(key), f"{name} has no {key}"
            french = annotations["description"]
            assert re.search(r"\b(le|la|les|des|du|de)\b", french), f"{name}: not French"

    def test_outage_alerts_carry_what_the_legal_team_needs(self) -> None:
        """Outage alerts name the target, its start and evidence link in summary/description."""
        for rule in _alert_rules():
            if rule["alert"] not in OUTAGE_ALERTS:
                continue
            annotations = rule["annotations"]
            assert "legal" in rule["labels"]["team"]
            assert "$labels.name" in annotations["summary"]
            assert "$debut" in annotations["summary"]
            for piece in ("$labels.name", "$debut", "$link", "vigie_outage_info"):
                assert piece in annotations["description"], (rule["alert"], piece)
            for key in ("debut", "debut_utc", "duree", "evidence_url", "paris_utc_offset"):
                assert annotations.get(key), (rule["alert"], key)

    def test_runbook_urls_point_at_existing_sections(self) -> None:
        """Every runbook_url is an anchor of a heading in docs/runbooks.md."""
        headings = re.findall(r"^#{2,3} (.+)$", RUNBOOKS.read_text("utf-8"), flags=re.MULTILINE)
        anchors = {_github_slug(h) for h in headings}
        for rule in _alert_rules():
            url = rule["annotations"]["runbook_url"]
            assert url.startswith(
                "https://github.com/vigie-observatoire/vigie/blob/main/docs/runbooks.md#"
            ), url
            assert url.rsplit("#", 1)[1] in anchors, f"{rule['alert']}: no section for {url}"

    def test_cause_text_covers_every_failure_outcome(self) -> None:
        """The French cause in outage alerts knows every failing outcome a probe can report."""
        text = (ALERTS_DIR / "outages.rules.yml").read_text("utf-8")
        # journey_drift never opens an outage: it has its own tech alert (VigieJourneyDrift).
        failing = {o.value for o in Outcome} - {"ok", "vantage_offline", "journey_drift"}
        missing = {o for o in failing if f'eq $o "{o}"' not in text}
        assert not missing, f"outcomes without a French cause: {sorted(missing)}"


class TestRuleUnitTests:
    @pytest.mark.parametrize(
        "test_file",
        sorted((ALERTS_DIR / "tests").glob("*.test.yml")),
        ids=lambda p: p.name,
    )
    def test_promtool_unit_tests_pass(self, test_file: Path) -> None:
        """The promtool unit-test file passes (alerts that must fire do, others do not)."""
        result = _run(PROMTOOL, "test", "rules", str(test_file))
        assert result.returncode == 0, result.stdout + result.stderr

    def test_unit_tests_cover_every_alert(self) -> None:
        """Every notified alert appears in at least one promtool unit test."""
        tests = "".join(p.read_text("utf-8") for p in (ALERTS_DIR / "tests").glob("*.test.yml"))
        untested = {r["alert"] for r in _alert_rules() if r["alert"] not in tests}
        assert not untested, f"alerts without a unit test: {sorted(untested)}"


class TestAlertmanagerConfig:
    @pytest.mark.parametrize("config", AM_CONFIGS, ids=lambda p: p.name)
    def test_amtool_check_config(self, config: Path) -> None:
        """The committed Alertmanager configs (and their templates) pass `amtool check-config`."""
        result = _run(AMTOOL, "check-config", str(config))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout

    @pytest.mark.parametrize(
        ("labels", "receivers"),
        [
            (["team=legal"], "juridique"),
            (["team=tech"], "tech"),
            (["team=legal+tech"], "juridique,tech"),
            (
                ["alertname=VigieTargetDown", "team=legal+tech", "maintenance=false"],
                "juridique,tech",
            ),
            (
                ["alertname=VigieTargetDown", "team=legal+tech", "maintenance=true"],
                "juridique-maintenance,tech",
            ),
            (
                ["alertname=VigieTargetDegraded", "team=legal", "maintenance=true"],
                "juridique-maintenance",
            ),
            (["alertname=VigieVantageOffline", "team=tech", "severity=warning"], "tech"),
            # Journey drift: the tech team only; the legal team is never paged for it.
            (["alertname=VigieJourneyDrift", "team=tech", "severity=warning"], "tech"),
            (["alertname=VigieScrapeGap", "team=none"], "aucun"),
            (["alertname=SomethingUnknown"], "tech"),
        ],
    )
    def test_routes(self, labels: list[str], receivers: str) -> None:
        """Labels reach the intended receivers: legal by e-mail, tech by webhook, both for both."""
        result = _run(
            AMTOOL,
            "config",
            "routes",
            "test",
            f"--config.file={ALERTS_DIR / 'alertmanager.yml'}",
            f"--verify.receivers={receivers}",
            *labels,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.strip() == receivers

    @pytest.mark.parametrize(
        ("labels", "receivers"),
        [
            (["team=tech", "severity=warning"], "tech-matrix"),
            (["team=tech", "severity=critical"], "tech-matrix,tech-slack"),
            (["team=legal+tech", "severity=critical"], "juridique,tech-matrix,tech-slack"),
        ],
    )
    def test_chat_example_routes(self, labels: list[str], receivers: str) -> None:
        """The chat example sends tech alerts to Matrix, critical ones to Slack as well."""
        config = ALERTS_DIR / "examples" / "alertmanager-chat.yml"
        result = _run(AMTOOL, "config", "routes", "test", f"--config.file={config}", *labels)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.strip() == receivers

    @pytest.mark.parametrize("config", AM_CONFIGS, ids=lambda p: p.name)
    def test_no_secret_in_the_repository(self, config: Path) -> None:
        """Passwords, tokens and secret hook URLs are read from files, never written inline."""
        data = yaml.safe_load(config.read_text("utf-8"))
        assert "smtp_auth_password" not in data["global"]
        assert data["global"]["smtp_auth_password_file"].startswith("/run/secrets/")
        for receiver in data["receivers"]:
            for email in receiver.get("email_configs", []):
                assert "auth_password" not in email
            for slack in receiver.get("slack_configs", []):
                assert "api_url" not in slack
                assert "api_url_file" in slack
            for hook in receiver.get("webhook_configs", []):
                auth = hook.get("http_config", {}).get("authorization", {})
                assert "credentials" not in auth


# --- A real Alertmanager, fed alerts as Prometheus renders them ---------------------------

SMTP_PASSWORD = "s3cret-from-a-file"


def _outage(
    target: str,
    name: str,
    *,
    alertname: str = "VigieTargetDown",
    team: str = "legal+tech",
    maintenance: str = "false",
    vantage: str = "paris-1",
    instance: str = "vigie:9188",
    debut: str = "23/11/2026 à 14:27:18 (heure de Paris)",
) -> tuple[dict[str, str], dict[str, str]]:
    """Labels and annotations of an outage alert, as alerts/outages.rules.yml renders them."""
    link = f"https://vigie.example.org/outages/{target}-1"
    labels = {
        "alertname": alertname,
        "severity": "info" if maintenance == "true" else "critical",
        "team": team,
        "job": "vigie",
        "instance": instance,
        "vantage": vantage,
        "target": target,
        "kind": "degraded" if alertname == "VigieTargetDegraded" else "down",
        "name": name,
        "maintenance": maintenance,
    }
    annotations = {
        "summary": f"{name} : en panne depuis le {debut}",
        "description": (
            f"Vigie a confirmé une panne de « {name} » ({target}) : le service est inaccessible "
            f"depuis le {debut}, d'après des vérifications consécutives en échec faites depuis "
            f"le point d'observation « {vantage} ». Preuves (observations, captures d'écran, "
            f"registre signé) : {link}"
        ),
        "debut": debut,
        "debut_utc": "2026-11-23T13:27:18Z",
        "duree": "12m 5s",
        "cause": "Erreur du serveur (code HTTP 503)",
        "evidence_url": link,
        "status_url": "https://vigie.example.org/",
        "paris_utc_offset": "+01:00",
        "runbook_url": "https://github.com/vigie-observatoire/vigie/blob/main/docs/runbooks.md#vigietargetdown",
    }
    return labels, annotations


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture(scope="class")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Alertmanager, SmtpSink, WebhookSink]]:
    """A real Alertmanager with the committed routes and templates, mailing a local sink."""
    workdir = tmp_path_factory.mktemp("alertmanager")
    secrets_dir = workdir / "secrets"
    with SmtpSink() as smtp, WebhookSink() as webhook:
        config = render_alertmanager_config(
            smtp_port=smtp.port,
            webhook_url=webhook.url,
            password_file=secrets_dir / "vigie_smtp_password",
        )
        # Started as docker compose does: the password comes from the environment (.env).
        with Alertmanager(
            workdir,
            config,
            secrets={"VIGIE_SMTP_PASSWORD": SMTP_PASSWORD},
            secrets_dir=secrets_dir,
        ) as am:
            yield am, smtp, webhook


def _for_target(target: str, status: str) -> Any:
    def match(mail: ReceivedMail) -> bool:
        return f"({target})" in mail.text and (
            ("Rétabli" in mail.subject) == (status == "resolved")
        )

    return match


class TestAlertmanagerDelivery:
    def test_legal_email_is_french_with_start_cause_and_evidence(
        self, stack: tuple[Alertmanager, SmtpSink, WebhookSink]
    ) -> None:
        """A firing outage reaches the legal team by e-mail, in French, with start and links."""
        am, smtp, _ = stack
        labels, annotations = _outage("anef-accueil", "ANEF — page d'accueil")
        am.post_alerts([alert_payload(labels, annotations, starts_at=_now())])
        mail = smtp.wait_for(_for_target("anef-accueil", "firing"), timeout=30)
        assert mail.subject == (
            "[Vigie] Panne confirmée : ANEF — page d'accueil — depuis le 23/11/2026 à 14:27:18 "
            "(heure de Paris)"
        )
        assert mail.rcpt_to == ("juristes@association.test",)
        assert mail.message["Content-Language"] == "fr"
        text = mail.text
        assert "Début de la panne    : 23/11/2026 à 14:27:18 (heure de Paris)" in text
        assert "Cause constatée      : Erreur du serveur (code HTTP 503)" in text
        assert "Preuves              : https://vigie.example.org/outages/anef-accueil-1" in text
        assert "Vigie a confirmé une panne de « ANEF — page d'accueil »" in text
        assert 'href="https://vigie.example.org/outages/anef-accueil-1"' in mail.html
        assert '<html lang="fr">' in mail.html

    def test_smtp_password_comes_from_the_environment_through_a_private_file(
        self, stack: tuple[Alertmanager, SmtpSink, WebhookSink]
    ) -> None:
        """VIGIE_SMTP_PASSWORD becomes a mode-600 file that Alertmanager uses to log in to SMTP."""
        am, smtp, _ = stack
        labels, annotations = _outage("anef-connexion", "ANEF — page de connexion")
        am.post_alerts([alert_payload(labels, annotations, starts_at=_now())])
        mail = smtp.wait_for(_for_target("anef-connexion", "firing"), timeout=30)
        assert mail.auth == ("vigie-test", SMTP_PASSWORD)
        assert am.secrets_dir is not None
        secret = am.secrets_dir / "vigie_smtp_password"
        assert secret.read_text("utf-8") == SMTP_PASSWORD
        assert secret.stat().st_mode & 0o077 == 0
        assert SMTP_PASSWORD not in am.log_text()

    def test_resolution_email_gives_duration_and_says_the_record_is_kept(
        self, stack: tuple[Alertmanager, SmtpSink, WebhookSink]
    ) -> None:
        """At the end of an outage the legal team gets « Rétabli », its duration, a reminder."""
        am, smtp, _ = stack
        labels, annotations = _outage("anef-api", "ANEF — service en ligne (API)")
        start = _now() - dt.timedelta(minutes=12)
        am.post_alerts([alert_payload(labels, annotations, starts_at=start)])
        smtp.wait_for(_for_target("anef-api", "firing"), timeout=30)
        end = _now().replace(microsecond=0)
        am.post_alerts([alert_payload(labels, annotations, starts_at=start, ends_at=end)])
        mail = smtp.wait_for(_for_target("anef-api", "resolved"), timeout=30)
        assert mail.subject == (
            "[Vigie] Rétabli : ANEF — service en ligne (API) — panne du 23/11/2026 à 14:27:18 "
            "(heure de Paris), durée environ 12m 5s"
        )
        text = mail.text
        assert "fonctionne de nouveau" in text
        assert "Durée de la panne         : environ 12m 5s" in text
        paris_end = (end + dt.timedelta(hours=1)).strftime("%d/%m/%Y à %H:%M:%S")
        assert f"Rétablissement constaté   : {paris_end} (heure de Paris)" in text
        assert "conservé dans le registre de preuves" in text
        assert "signée" in text
        assert "conservé dans le registre de preuves" in mail.html

    def test_outage_in_maintenance_is_sent_and_labelled(
        self, stack: tuple[Alertmanager, SmtpSink, WebhookSink]
    ) -> None:
        """An outage inside an announced window still reaches the legal team, marked as such."""
        am, smtp, _ = stack
        labels, annotations = _outage("anef-portail", "ANEF — portail", maintenance="true")
        am.post_alerts([alert_payload(labels, annotations, starts_at=_now())])
        mail = smtp.wait_for(_for_target("anef-portail", "firing"), timeout=30)
        assert mail.subject.startswith("[Vigie] Panne pendant une maintenance annoncée : ")
        assert "Maintenance annoncée : oui" in mail.text

    def test_tech_alert_goes_to_the_webhook_only(
        self, stack: tuple[Alertmanager, SmtpSink, WebhookSink]
    ) -> None:
        """A tech-only alert is posted to the webhook and never e-mailed to the legal team."""
        am, smtp, webhook = stack
        labels = {
            "alertname": "VigieLedgerWriteErrors",
            "severity": "critical",
            "team": "tech",
            "job": "vigie",
            "instance": "vigie-tech-only:9188",
            "vantage": "paris-1",
        }
        annotations = {"summary": "Vigie n'arrive plus à écrire", "description": "…"}
        am.post_alerts([alert_payload(labels, annotations, starts_at=_now())])
        call = webhook.wait_for(lambda c: "VigieLedgerWriteErrors" in c.alertnames, timeout=30)
        assert call.payload["receiver"] == "tech"
        assert call.status == "firing"
        # The e-mails of the other tests of this class arrived in the same time; none is this one.
        assert not [m for m in smtp.messages if "vigie-tech-only" in m.text]

    def test_legal_and_tech_alert_reaches_both(
        self, stack: tuple[Alertmanager, SmtpSink, WebhookSink]
    ) -> None:
        """A team="legal+tech" alert is both e-mailed and posted to the webhook."""
        am, smtp, webhook = stack
        labels, annotations = _outage("anef-both", "ANEF — les deux")
        am.post_alerts([alert_payload(labels, annotations, starts_at=_now())])
        smtp.wait_for(_for_target("anef-both", "firing"), timeout=30)
        call = webhook.wait_for(
            lambda c: any(a["labels"].get("target") == "anef-both" for a in c.payload["alerts"]),
            timeout=30,
        )
        assert call.payload["receiver"] == "tech"

    def test_vantage_offline_inhibits_outages_of_the_same_vantage_only(
        self, stack: tuple[Alertmanager, SmtpSink, WebhookSink]
    ) -> None:
        """While a vantage is offline its outage alerts are muted; another vantage's are not."""
        am, _, _ = stack
        offline = {
            "alertname": "VigieVantageOffline",
            "severity": "warning",
            "team": "tech",
            "job": "vigie",
            "instance": "lyon:9188",
            "vantage": "lyon-1",
        }
        same = _outage("inhib-same", "Même point", vantage="lyon-1", instance="lyon:9188")
        other = _outage("inhib-other", "Autre point", vantage="paris-1")
        am.post_alerts(
            [
                alert_payload(offline, {"summary": "hors ligne"}, starts_at=_now()),
                alert_payload(*same, starts_at=_now()),
                alert_payload(*other, starts_at=_now()),
            ]
        )
        states = _wait_states(am, {"inhib-same": "suppressed", "inhib-other": "active"})
        assert states["inhib-same"]["state"] == "suppressed"
        assert states["inhib-same"]["inhibitedBy"]
        assert states["inhib-other"]["state"] == "active"
        assert not states["inhib-other"]["inhibitedBy"]

    def test_scrape_gap_mutes_outage_alerts_of_that_instance(
        self, stack: tuple[Alertmanager, SmtpSink, WebhookSink]
    ) -> None:
        """While Prometheus cannot scrape a Vigie, its outage alerts are muted (no false end)."""
        am, _, _ = stack
        gap = {
            "alertname": "VigieScrapeGap",
            "severity": "none",
            "team": "none",
            "job": "vigie",
            "instance": "gap:9188",
            "vantage": "gap-1",
        }
        muted = _outage("gap-target", "Cible", vantage="gap-1", instance="gap:9188")
        am.post_alerts(
            [
                alert_payload(gap, {"summary": "collecte interrompue"}, starts_at=_now()),
                alert_payload(*muted, starts_at=_now()),
            ]
        )
        states = _wait_states(am, {"gap-target": "suppressed"})
        assert states["gap-target"]["state"] == "suppressed"


def _wait_states(am: Alertmanager, expected: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Alertmanager's status of the alerts of the `expected` targets, once each is in its
    expected state or after 20 s (the inhibitor learns of new alerts asynchronously, so an
    alert may show `active` for a moment before its inhibiting alert has been seen)."""
    deadline = time.monotonic() + 20
    states: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        states = {
            a["labels"]["target"]: a["status"]
            for a in am.alerts()
            if a["labels"].get("target") in expected
        }
        if set(states) == set(expected) and all(
            states[target]["state"] == state for target, state in expected.items()
        ):
            break
        time.sleep(0.2)
    if set(states) != set(expected):
        raise TimeoutError(f"Alertmanager did not list {sorted(expected)}: {states}")
    return states
