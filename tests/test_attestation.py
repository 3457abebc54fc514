"""`vigie attestation`: the figures of the windows a person gives, the PDF, the bundle beside it.

Synthetic ledgers (tests/bundle_fixture) check the honest wording of windows without data,
partly watched, across a clock change or in the future; a real `vigie run` against the
simulator checks that counts, outages and observation numbers match the ledger exactly and
that the bundle verifies with `vigie verify` and its own verify.py. Loopback only.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import tests.bundle_fixture as bundle_fixture
from config.settings import Settings
from config.vocabulary import Outcome
from evidence.bundle.attestation import (
    Window,
    WindowError,
    build_attestation,
    describe_failure,
    parse_window,
)
from evidence.bundle.with_settings import chosen_targets, write_attestation
from evidence.outages.availability import PARIS
from probes.browser_runtime import DEBIAN_CHROMIUM
from tests.bundle_fixture import BuiltLedger, build_ledger, standalone_verify
from tests.service_fixture import LedgerFollower, run_service
from tests.test_export_e2e import _config as export_config
from tests.test_export_e2e import _vigie

if TYPE_CHECKING:
    from tests.tsa_fixture import LocalTsa

REFERENCE = "dossier n° 2026-114"
REPO = Path(__file__).resolve().parent.parent
REGISTRATION = "/auth/realms/anef-usagers/login-actions/registration"
# Words that must never reach the person's file: outcome codes and page selectors.
CODES = [o.value for o in Outcome if o is not Outcome.OK]
SELECTORS = ["input[", "text=", "expect_visible", "css=", "#/"]


def pdf_text(path: Path) -> str:
    """The PDF's text as `pdftotext` reads it (lines joined, spaces collapsed)."""
    done = subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, timeout=60, check=True
    )
    return re.sub(r"\s+", " ", done.stdout)


def pdf_pages(path: Path) -> int:
    info = subprocess.run(
        ["pdfinfo", str(path)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    return int(re.search(r"Pages:\s+(\d+)", info)[1])  # type: ignore[index]


def assert_plain(text: str) -> None:
    """No outcome code and no selector in a text meant for a judge."""
    for word in CODES + SELECTORS:
        assert word not in text, word


class TestWindows:
    def test_forms(self) -> None:
        """A window is START/END in Paris time: an end time of the same day, a date-time, days."""
        w = parse_window("2026-11-03T09:00/11:30")
        assert w.local_start == dt.datetime(2026, 11, 3, 9, 0, tzinfo=PARIS)
        assert w.local_end == dt.datetime(2026, 11, 3, 11, 30, tzinfo=PARIS)
        w = parse_window("2026-11-03T22:00/2026-11-04T01:00")
        assert w.real_seconds == 3 * 3600
        w = parse_window("2026-11-03/2026-11-04")
        assert w.local_end == dt.datetime(2026, 11, 5, 0, 0, tzinfo=PARIS)

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("2026-11-03T09:00", "expected START/END"),
            ("2026-11-03T11:00/09:00", "the end must come after the start"),
            ("2026-11-03T09:00/25:00", "not a date-time"),
            ("2026-03-29T02:30/04:00", "does not exist in Paris"),
            ("2026-11-03T09:00+01:00/11:00", "expected START/END"),
            ("2026-01-01/2026-03-01", "31 days at most"),
        ],
    )
    def test_bad_windows(self, text: str, message: str) -> None:
        """A window that cannot be read says which one and why."""
        with pytest.raises(WindowError, match=re.escape(message)):
            parse_window(text)

    def test_clock_change(self) -> None:
        """Across the autumn change, 01:00 to 04:00 on the clock lasted four real hours."""
        w = parse_window("2026-10-25T01:00/04:00")
        assert w.clock_change
        assert w.real_seconds == 4 * 3600
        assert w.wall_seconds == 3 * 3600
        ambiguous = parse_window("2026-10-25T02:30/05:00")
        assert ambiguous.ambiguous == ("2026-10-25T02:30",)
        assert ambiguous.local_start.utcoffset() == dt.timedelta(hours=2)  # the first 02:30


class TestPlainWords:
    @pytest.mark.parametrize("outcome", CODES)
    def test_every_outcome_in_plain_words(self, outcome: str) -> None:
        """Each failure is told as what a person would have seen, never by its code."""
        words = describe_failure(
            {
                "outcome": outcome,
                "http_status": 503,
                "steps": [
                    {"name": "chargement", "ok": True},
                    {"name": "click text=Créer votre compte", "ok": True},
                    {"name": "expect_visible input[type=email]", "ok": False},
                ],
            },
            None,
        )
        assert words
        assert_plain(words)

    def test_journey_step(self) -> None:
        """A journey stopped at a step names the page and the step number, not the selector."""
        from evidence.bundle.attestation import TargetInfo

        target = TargetInfo(
            "creation", "ANEF — création de compte", "browser", "http://x/", 300, 60
        )
        words = describe_failure(
            {
                "outcome": "step_failed",
                "steps": [
                    {"name": "chargement", "ok": True},
                    {"name": "click text=Se connecter", "ok": True},
                    {"name": "expect_visible input[type=email]", "ok": False},
                ],
            },
            target,
        )
        assert words == (
            "la page « ANEF — création de compte » ne s'affichait pas en entier : "
            "le parcours s'arrêtait à l'étape 3 sur 3"
        )


# --- synthetic ledgers ------------------------------------------------------------------------


def _settings(built: BuiltLedger, directory: Path) -> Settings:
    key = built.save_key(directory / "vantage.key")
    return Settings.model_validate(
        {
            "vantage": {"name": built.signer.name, "operator": "Association de test"},
            "targets": [
                {
                    "id": t,
                    "name": f"ANEF — {t}",
                    "kind": "http",
                    "url": f"http://127.0.0.1/{t}",
                    "interval": "60s",
                }
                for t in built.targets
            ],
            "ledger": {"url": built.url, "artifacts": str(built.artifacts.root)},
            "signing": {"key": str(key)},
        }
    )


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[BuiltLedger, Settings]:
    """120 one-minute checks of two targets from 2026-11-23 10:00 Paris; the first is down
    from 10:40 to 10:50."""
    directory = tmp_path_factory.mktemp("attestation")
    built = build_ledger(f"sqlite:///{directory / 'l.db'}", directory)
    return built, _settings(built, directory)


def _entries(built: BuiltLedger) -> list[dict[str, Any]]:
    ledger = built.open()
    try:
        return [
            {**json.loads(row.body), "seq": row.seq, "type": row.type}
            for row in ledger.iter_rows(0)
        ]
    finally:
        ledger.close()


NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


class TestFigures:
    def _one(self, synthetic: Any, text: str, now: dt.datetime = NOW) -> Any:
        built, settings = synthetic
        ledger = built.open()
        try:
            return build_attestation(
                ledger,
                chosen_targets(settings, ["anef-accueil"], None),
                [parse_window(text)],
                vantage=settings.vantage.name,
                now=now,
            ).facts[0]
        finally:
            ledger.close()

    def test_counts_match_the_ledger(self, synthetic: Any) -> None:
        """Checks, failures and observation numbers are exactly the ledger's in the window."""
        facts = self._one(synthetic, "2026-11-23T10:30/11:00")
        window = parse_window("2026-11-23T10:30/11:00")
        expected = [
            e
            for e in _entries(synthetic[0])
            if e["type"] == "observation"
            and e["target_id"] == "anef-accueil"
            and window.start <= dt.datetime.fromisoformat(e["started_at"]) < window.end
        ]
        assert facts.checks == len(expected) == 30
        assert list(facts.seqs) == [e["seq"] for e in expected]
        assert [f.seq for f in facts.failures] == [e["seq"] for e in expected if not e["success"]]
        assert facts.failed == 10
        assert facts.vantages == ("paris-1",)
        assert [o.id for o in facts.outages] == synthetic[0].outage_ids
        assert facts.silences == ()
        assert facts.capture is not None
        assert facts.capture.failure.seq == facts.failures[0].seq
        assert facts.capture.kind == "screenshot"

    def test_window_without_data(self, synthetic: Any) -> None:
        """A day before monitoring began: no checks, and it says why rather than 'working'."""
        facts = self._one(synthetic, "2026-11-22T09:00/12:00")
        assert facts.checks == 0
        assert facts.outages == ()
        assert (
            facts.silences[0].reason == "la surveillance de ce service n'avait pas encore commencé"
        )

    def test_partly_watched(self, synthetic: Any) -> None:
        """A window starting before the first check names the unwatched part exactly."""
        facts = self._one(synthetic, "2026-11-23T09:50/10:20")
        (silence,) = facts.silences
        assert silence.start == dt.datetime(2026, 11, 23, 9, 50, tzinfo=PARIS)
        assert silence.end == dt.datetime(2026, 11, 23, 10, 0, tzinfo=PARIS)
        assert facts.checks == 20

    def test_vigie_stopped(self, tmp_path: Path) -> None:
        """A stretch when Vigie was not running (a `gap` entry) is named as such."""
        from evidence.ledger.backends import open_ledger

        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path, minutes=30)
        ledger = open_ledger(built.url, vantage="paris-1")
        try:  # as the service records it at its next start
            ledger.append(
                [
                    (
                        "gap",
                        {
                            "from": "2026-11-23T09:29:00Z",
                            "to": "2026-11-23T10:29:00Z",
                            "duration_s": 3600.0,
                            "reason": "not_running",
                        },
                    )
                ]
            )
        finally:
            ledger.close()
        settings = _settings(built, tmp_path)
        reader = built.open()
        try:
            (facts,) = build_attestation(
                reader,
                chosen_targets(settings, ["anef-accueil"], None),
                [parse_window("2026-11-23T10:20/11:00")],
                vantage="paris-1",
                now=NOW,
            ).facts
        finally:
            reader.close()
        (silence,) = facts.silences
        assert silence.reason == "Vigie était arrêté (interruption enregistrée dans le registre)"
        assert silence.start == dt.datetime(2026, 11, 23, 9, 29, tzinfo=dt.UTC)  # last check
        assert facts.checks == 10

    def test_future_window(self, synthetic: Any) -> None:
        """A window after the attestation's time reports nothing and counts its future part."""
        now = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)  # 11:00 in Paris
        facts = self._one(synthetic, "2026-11-23T10:30/12:00", now=now)
        assert facts.future_s == 3600
        assert facts.checks == 30
        later = self._one(synthetic, "2026-11-24T10:00/11:00", now=now)
        assert later.checks == 0
        assert later.future_s == later.window.real_seconds

    def test_clock_change_window(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Checks across the autumn change are counted on real time, both 02:xx hours included."""
        start = dt.datetime(2026, 10, 25, 0, 0, tzinfo=dt.UTC)  # 02:00 summer time
        monkeypatch.setattr(bundle_fixture, "BUILD_START", start)
        built = build_ledger(f"sqlite:///{tmp_path / 'l.db'}", tmp_path, outage_at=(200, 201))
        settings = _settings(built, tmp_path)
        window = parse_window("2026-10-25T01:30/04:00")  # 23:30 UTC to 03:00 UTC
        ledger = built.open()
        try:
            (facts, _) = build_attestation(
                ledger,
                chosen_targets(settings, [], "http"),
                [window],
                vantage="paris-1",
                now=NOW,
            ).facts
        finally:
            ledger.close()
        assert facts.checks == 120  # 00:00 to 02:00 UTC: the 02:xx hour twice
        first, last = facts.silences
        assert first.seconds == 1800
        assert last.seconds == 3660  # from the last check (01:59 UTC) to 03:00 UTC
        out = tmp_path / "dst.pdf"
        write_attestation(
            settings, chosen_targets(settings, ["anef-accueil"], None), [window], out, now=NOW
        )
        text = pdf_text(out)
        assert "changement d'heure" in text
        assert "3 h 30 min réelles" in text

    def test_pdf_wording(self, synthetic: Any, tmp_path: Path) -> None:
        """The PDF is 1-2 pages, plain French, says what it does not prove, no reference unless
        given; the reference never reaches the bundle."""
        settings = synthetic[1]
        targets = chosen_targets(settings, ["anef-accueil"], None)
        windows = [
            parse_window("2026-11-23T10:30/11:00"),
            parse_window("2026-11-23T09:50/10:20"),
            parse_window("2026-11-22/2026-11-22"),
            parse_window("2026-11-30T23:00/2026-12-01T03:00"),
        ]
        plain = tmp_path / "sans.pdf"
        write_attestation(settings, targets, windows, plain, now=NOW)
        text = pdf_text(plain)
        assert_plain(text)
        assert "2026-114" not in text
        assert "Référence" not in text
        assert "ne prouve pas que la personne concernée a tenté" in text
        assert "Aucune vérification de ce service n'est enregistrée" in text
        assert "Aucune vérification de 9 h 50 à 10 h 00 (10 min)" in text
        assert "Plage n° 3 : le 22 novembre 2026, toute la journée" in text
        assert "postérieure à l'établissement de ce document" in text
        assert "30 vérifications" in text
        assert "10 en échec" in text
        assert 1 <= pdf_pages(plain) <= 2
        named = tmp_path / "avec.pdf"
        write_attestation(settings, targets, windows, named, reference=REFERENCE, now=NOW)
        assert f"Référence : {REFERENCE}" in pdf_text(named)
        with zipfile.ZipFile(named.with_suffix(".zip")) as zf:
            for name in zf.namelist():
                assert b"2026-114" not in zf.read(name), name


# --- a real service, the real command ---------------------------------------------------------


def _config(sim: Any, state: Path) -> dict[str, Any]:
    return {
        **export_config(sim, state),
        "vantage": {"name": "att-paris", "operator": "Association de test"},
        "evidence_auth": {"user": "avocate", "password": "s3cret-de-test"},
    }


def _paris(moment: dt.datetime) -> str:
    return moment.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M:%S")


@pytest.mark.slow
class TestCommand:
    def test_real_outage(self, simulator_process: Any, tmp_path: Path) -> None:
        """A simulator fault at a known time: the attestation's figures are the ledger's, the
        PDF is plain, the bundle verifies with `vigie verify` and its verify.py."""
        state = tmp_path / "state"
        state.mkdir()
        follower = LedgerFollower(state / "ledger.db", target="accueil")
        with run_service(_config(simulator_process, state), state) as service:
            follower.wait(lambda e: e.get("success") is True, "first good check")
            fault_at = dt.datetime.now(dt.UTC)
            simulator_process.set_fault("/", "http_500", "site")
            try:
                follower.wait(lambda e: e.get("event") == "opened", "outage opened")
            finally:
                simulator_process.clear_faults()
            follower.wait(lambda e: e.get("event") == "closed", "outage closed")
            follower.wait(lambda e: e.get("success") is True, "a good check after")
            config = service.config_path
            self._status_page(service.url, follower.entries, tmp_path)
        follower.poll()  # every entry, up to the service's stop
        follower.close()
        entries = follower.entries
        start = fault_at.replace(microsecond=0) - dt.timedelta(seconds=2)
        end = dt.datetime.now(dt.UTC).replace(microsecond=0)
        window = Window("", start.astimezone(PARIS), end.astimezone(PARIS))
        text = f"{_paris(start)}/{_paris(end)}"
        tomorrow = (end + dt.timedelta(days=1)).astimezone(PARIS).strftime("%Y-%m-%d")
        yesterday = (start - dt.timedelta(days=1)).astimezone(PARIS).strftime("%Y-%m-%d")
        windows = [text, f"{tomorrow}T09:00/11:30", f"{yesterday}T09:00/11:30"]
        args = ["--config", str(config), "--target", "accueil"]
        for one in windows:
            args += ["--window", one]

        out = tmp_path / "attestation.pdf"
        done = _vigie("attestation", *args, "--reference", REFERENCE, "--out", str(out))
        assert done.returncode == 0, done.stdout + done.stderr
        done = _vigie("attestation", *args, "--format", "json")
        assert done.returncode == 0, done.stderr
        figures = json.loads(done.stdout)
        assert figures["reference"] is None
        first, future, empty = figures["windows"]

        seen = [
            e
            for e in entries
            if e["type"] == "observation"
            and window.start <= dt.datetime.fromisoformat(e["started_at"]) < window.end
        ]
        failed = [e for e in seen if not e["success"] and e["outcome"] != "vantage_offline"]
        outage_ids = {e["outage_id"] for e in entries if e["type"] == "outage"}
        assert first["checks"] == len(seen) > 0
        assert first["observation_seqs"] == [e["seq"] for e in seen]
        assert first["failure_seqs"] == [e["seq"] for e in failed]
        assert len(failed) >= 2
        assert {o["id"] for o in first["outages"]} == outage_ids
        assert first["vantages"] == ["att-paris"]
        assert first["capture"]["seq"] in first["failure_seqs"]
        assert future["checks"] == 0
        assert future["future_s"] > 0
        assert empty["checks"] == 0

        text_pdf = pdf_text(out)
        assert_plain(text_pdf)
        assert f"Référence : {REFERENCE}" in text_pdf
        assert f"{first['checks']} vérifications" in text_pdf
        assert "le serveur répondait par une erreur interne" in text_pdf
        assert 1 <= pdf_pages(out) <= 2

        bundle = out.with_suffix(".zip")
        done = _vigie("verify", str(bundle))
        assert done.returncode == 0, done.stdout + done.stderr
        folder = tmp_path / "unzipped"
        with zipfile.ZipFile(bundle) as zf:
            zf.extractall(folder)
            exported = {
                json.loads(line)["seq"] for line in zf.read("observations.jsonl").splitlines()
            }
            for name in zf.namelist():
                assert b"2026-114" not in zf.read(name), name
        assert set(first["observation_seqs"]) <= exported
        bare = standalone_verify(folder)
        assert bare.returncode == 0, bare.stdout + bare.stderr

    def _status_page(self, base: str, entries: list[dict[str, Any]], tmp_path: Path) -> None:
        """The outage's attestation link and the typed-window page, behind evidence_auth."""
        import base64
        import io

        from tests.test_opendata import fetch

        (outage_id,) = {e["outage_id"] for e in entries if e["type"] == "outage"}
        login = {"Authorization": "Basic " + base64.b64encode(b"avocate:s3cret-de-test").decode()}
        status, _, html = fetch(f"{base}/")
        assert f"/outages/{outage_id}/attestation.zip".encode() in html
        link = f"{base}/outages/{outage_id}/attestation.zip"
        assert fetch(link)[0] == 401
        assert fetch(f"{base}/attestation")[0] == 401
        status, headers, body = fetch(link, login)
        assert status == 200, body[:300]
        assert headers["Content-Type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(body)) as zf:
            assert sorted(zf.namelist()) == ["attestation.pdf", "attestation.zip"]
            zf.extractall(tmp_path / "web")
        text = pdf_text(tmp_path / "web" / "attestation.pdf")
        assert outage_id in text
        assert_plain(text)
        done = _vigie("verify", str(tmp_path / "web" / "attestation.zip"))
        assert done.returncode == 0, done.stdout + done.stderr
        status, _, page = fetch(f"{base}/attestation", login)
        assert status == 200
        assert b'<form method="get" action="/attestation.zip">' in page
        bad = f"{base}/attestation.zip?target=accueil&window=2026-03-29T02:30/04:00"
        status, _, answer = fetch(bad, login)
        assert status == 400
        assert "does not exist" in answer.decode()
        assert fetch(f"{base}/attestation.zip", login, method="POST")[0] == 405

    def test_bad_input(self, tmp_path: Path) -> None:
        """Bad windows, unknown targets and a wrong file name end with one line and exit 2."""
        pdf, zip_ = str(tmp_path / "a.pdf"), str(tmp_path / "a.zip")
        cases = [
            (["--target", "nope", "--window", "2026-11-03T09:00/11:30", "--out", pdf], "no target"),
            (["--kind", "http", "--window", "2026-03-29T02:30/04:00", "--out", pdf], "not exist"),
            (["--kind", "http", "--window", "2026-11-03T09:00/11:30", "--out", zip_], ".pdf"),
        ]
        for args, message in cases:
            done = _vigie("attestation", *args)
            assert done.returncode == 2, (args, done.stderr)
            assert message in done.stderr
            assert len(done.stderr.strip().splitlines()) == 1


class TestCapture:
    def test_screenshot_drawn(self, synthetic: Any, tmp_path: Path) -> None:
        """The screenshot of the failure nearest the window is drawn in the PDF."""
        import io

        from PIL import Image

        from evidence.bundle.attestation_pdf import render_attestation

        built, settings = synthetic
        picture = io.BytesIO()
        Image.new("RGB", (640, 400), "#b00020").save(picture, "PNG")
        ledger = built.open()
        try:
            attestation = build_attestation(
                ledger,
                chosen_targets(settings, ["anef-accueil"], None),
                [parse_window("2026-11-23T10:52/11:00")],  # just after the outage
                vantage="paris-1",
                now=NOW,
            )
        finally:
            ledger.close()
        (facts,) = attestation.facts
        assert facts.failed == 0
        assert facts.capture is not None
        assert facts.capture.offset_s == -180  # the last failure, 10:49, 3 min before
        out = tmp_path / "capture.pdf"
        out.write_bytes(render_attestation(attestation, lambda sha: picture.getvalue()))
        images = subprocess.run(
            ["pdfimages", "-list", str(out)], capture_output=True, text=True, check=True
        ).stdout
        assert len(images.strip().splitlines()) == 3  # two header lines, one image
        assert "3 min avant le début de la plage" in pdf_text(out)


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.skipif(not Path(DEBIAN_CHROMIUM).exists(), reason="Chromium is not installed")
class TestJourney:
    def test_account_creation_form_missing(self, simulator_process: Any, tmp_path: Path) -> None:
        """The shipped account-creation journey, its form removed by the simulator: the PDF says
        the page did not show in plain words, draws the screenshot, names no selector."""
        from config.settings import load_settings

        shipped = {t.id: t for t in load_settings(REPO / "vigie.yaml").targets}
        journey = shipped["anef-creation-compte"]
        state = tmp_path / "state"
        state.mkdir()
        config = export_config(simulator_process, state)
        config["targets"] = [
            {
                "id": journey.id,
                "name": journey.name,
                "kind": "browser",
                "url": simulator_process.urls["login_url"],
                "interval": "1s",
                "timeout": "8s",
                "steps": [
                    s.model_dump(exclude_none=True, exclude_defaults=True) for s in journey.steps
                ],
            }
        ]
        follower = LedgerFollower(state / "ledger.db", target=journey.id)
        with run_service(config, state) as service:
            follower.wait(lambda e: e.get("success") is True, "a good journey", timeout=90)
            start = dt.datetime.now(dt.UTC).replace(microsecond=0)
            simulator_process.set_fault(REGISTRATION, "form_missing", "login")
            try:
                follower.wait(lambda e: e.get("event") == "opened", "outage opened", timeout=90)
            finally:
                simulator_process.clear_faults()
            config_path = service.config_path
        follower.close()
        end = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=1)
        out = tmp_path / "creation.pdf"
        done = _vigie(
            "attestation",
            "--config",
            str(config_path),
            "--kind",
            "browser",
            "--window",
            f"{_paris(start)}/{_paris(end)}",
            "--out",
            str(out),
        )
        assert done.returncode == 0, done.stdout + done.stderr
        text = pdf_text(out)
        assert_plain(text)
        for step in journey.steps:
            for selector in (step.click, step.expect_visible):
                if selector:
                    assert selector not in text
        assert "la page « ANEF — création de compte » ne s'affichait pas en entier" in text
        assert "Capture d'écran dans l'archive" in text
        images = subprocess.run(
            ["pdfimages", "-list", str(out)], capture_output=True, text=True, check=True
        ).stdout
        assert len(images.strip().splitlines()) >= 3  # the screenshot is drawn
        done = _vigie("verify", str(out.with_suffix(".zip")))
        assert done.returncode == 0, done.stdout + done.stderr


class TestTimestamped:
    def test_bundle_is_stamped_like_vigie_export(
        self, synthetic: Any, tmp_path: Path, local_tsa: LocalTsa
    ) -> None:
        """A vantage configured with a TSA stamps the attestation's bundle as `vigie export` does
        (the first version signed it without the TSA and its root)."""
        from evidence.bundle.verify import verify_bundle

        built, settings = synthetic
        ca = tmp_path / "tsa-ca.pem"
        ca.write_bytes(local_tsa.ca_pem)
        signing = settings.signing.model_copy(update={"tsa_url": local_tsa.url, "tsa_ca": ca})
        stamped = settings.model_copy(update={"signing": signing})
        out = tmp_path / "stamped.pdf"
        write_attestation(
            stamped,
            chosen_targets(stamped, ["anef-accueil"], None),
            [parse_window("2026-11-23T10:30/11:00")],
            out,
            now=NOW,
        )
        bundle = out.with_suffix(".zip")
        with zipfile.ZipFile(bundle) as zf:
            names = set(zf.namelist())
        assert {"manifest.tsr", "proofs/tsa-ca.pem"} <= names
        assert verify_bundle(bundle, public_key=built.signer.verifier).ok
