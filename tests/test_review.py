"""Human review of outages: `vigie review` appends a signed entry; every reader shows it.

The ledger is built through the real ledger API (tests/bundle_fixture.py); the CLI runs
in-process; forged reviews (another key, an edited reason) are appended or written the way an
attacker would, and must be caught by `vigie verify` and by the stand-alone verify.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from config.settings import OutageRules
from evidence.bundle.model import ExportRequest
from evidence.ledger.backends import open_ledger
from evidence.ledger.reviews import Review, ReviewError, check_review, review_body
from evidence.ledger.signing import NoteSigner
from evidence.ledger.verify import verify_ledger
from evidence.outages.tracker import OutageTracker
from exporter.cli import main
from exporter.commands.review import record_review
from tests.bundle_fixture import BUILD_START, BuiltLedger, _checkpoint, build_ledger
from tests.postgres_fixture import bypass_sql

OUTAGE_PERIOD = ExportRequest(BUILD_START, BUILD_START + dt.timedelta(minutes=60))


@dataclasses.dataclass
class Reviewed:
    built: BuiltLedger
    config: Path
    path: Path

    @property
    def outage_id(self) -> str:
        return self.built.outage_ids[0]

    def cli(self, *args: str) -> int:
        try:
            return main([args[0], "--config", str(self.config), *args[1:]])
        finally:
            structlog.reset_defaults()  # the CLI bound logging to pytest's captured stderr

    def record(
        self, verdict: str, by: str, reason: str, signer: NoteSigner | None = None
    ) -> tuple[Review, list[dict[str, Any]]]:
        """Append a review through the ledger API; the review and every entry after it."""
        ledger = open_ledger(self.built.url, vantage="paris-1")
        try:
            review = record_review(
                ledger,
                signer or self.built.signer,
                self.outage_id,
                verdict=verdict,
                by=by,
                reason=reason,
            )
            return review, [json.loads(row.body) for row in ledger.iter_rows()]
        finally:
            ledger.close()

    def checkpoint(self) -> None:
        """What the service does after the review: sign the tree that now holds it."""
        ledger = open_ledger(self.built.url, vantage="paris-1")
        try:
            _checkpoint(ledger, self.built.signer, dt.datetime.now(dt.UTC), None)
        finally:
            ledger.close()


@pytest.fixture
def reviewed(tmp_path: Path) -> Reviewed:
    path = tmp_path / "ledger.db"
    built = build_ledger(f"sqlite:///{path}", tmp_path, minutes=60, outage_at=(20, 30))
    key = tmp_path / "vantage.key"
    pem = built.signer._key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key.write_bytes(pem)
    key.chmod(0o600)
    config = tmp_path / "vigie.yaml"
    settings: dict[str, Any] = {
        "vantage": {"name": "paris-1", "operator": "Association X"},
        "targets": [
            {"id": "anef-accueil", "kind": "http", "url": "http://127.0.0.1/", "core": True},
            {"id": "anef-connexion", "kind": "http", "url": "http://127.0.0.1/c"},
        ],
        "ledger": {"url": built.url, "artifacts": str(tmp_path / "artifacts")},
        "signing": {"key": str(key)},
    }
    config.write_text(yaml.safe_dump(settings, allow_unicode=True), "utf-8")
    return Reviewed(built, config, path)


def _outages_json(reviewed: Reviewed, capsys: pytest.CaptureFixture[str]) -> list[Any]:
    capsys.readouterr()
    assert reviewed.cli("outages", "--format", "json") == 0
    data: list[Any] = json.loads(capsys.readouterr().out)
    return data


class TestReviewCommand:
    def test_confirmed_review_is_signed_shown_and_verifies(
        self, reviewed: Reviewed, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`vigie review --verdict confirmed` appends a signed entry; JSON and verify show it."""
        before = _outages_json(reviewed, capsys)
        assert before[0]["review"]["state"] == "unreviewed"
        code = reviewed.cli(
            "review",
            reviewed.outage_id,
            "--verdict",
            "confirmed",
            "--by",
            "Maître Dupont",
            "--reason",
            "captures et erreurs HTTP 503 concordantes",
        )
        out = capsys.readouterr().out
        assert code == 0
        assert "constatée et vérifiée par Maître Dupont" in out
        [outage] = _outages_json(reviewed, capsys)
        review = outage["review"]
        assert review["state"] == "confirmed"
        assert review["by"] == "Maître Dupont"
        assert review["text"].startswith("constatée et vérifiée par Maître Dupont le ")
        assert len(review["reviews"]) == 1
        reviewed.checkpoint()
        report = verify_ledger(reviewed.path, public_key=reviewed.built.signer.verifier)
        assert report.ok, report.summary()
        assert report.reviews == 1
        assert reviewed.cli("verify", str(reviewed.path)) == 0
        assert "1 reviews" in capsys.readouterr().out

    def test_dismissed_outage_stays_in_the_history(
        self, reviewed: Reviewed, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Confirmed then dismissed: the outage is still listed, dismissed, both reviews kept."""
        for verdict, reason in (
            ("confirmed", "vu"),
            ("dismissed", "sélecteur obsolète, voir le ticket 12"),
        ):
            assert (
                reviewed.cli(
                    "review",
                    reviewed.outage_id,
                    "--verdict",
                    verdict,
                    "--by",
                    "A. Admin",
                    "--reason",
                    reason,
                )
                == 0
            )
        [outage] = _outages_json(reviewed, capsys)
        assert outage["id"] == reviewed.outage_id
        assert outage["review"]["state"] == "dismissed"
        assert outage["review"]["text"].startswith(
            "écartée : sélecteur obsolète, voir le ticket 12 (par A. Admin le "
        )
        assert [r["verdict"] for r in outage["review"]["reviews"]] == ["confirmed", "dismissed"]
        capsys.readouterr()
        assert reviewed.cli("outages") == 0
        assert "review: dismissed by A. Admin" in capsys.readouterr().out
        assert reviewed.cli("outages", "--format", "csv") == 0
        csv_text = capsys.readouterr().out
        assert csv_text.splitlines()[0].endswith(",review")
        assert "écartée : sélecteur obsolète, voir le ticket 12 (par A. Admin le " in csv_text

    def test_core_outage_is_pending_until_reviewed(
        self, reviewed: Reviewed, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With review_core, an unreviewed outage of a core target is exported as pending."""
        data = yaml.safe_load(reviewed.config.read_text("utf-8"))
        data["outages"] = {"review_core": True}
        reviewed.config.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
        [outage] = _outages_json(reviewed, capsys)
        assert outage["review"]["state"] == "pending"
        assert outage["review"]["text"] == "en attente de vérification"

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["nope-20261123T000000Z"], "no outage with id 'nope-20261123T000000Z'"),
            (["{id}", "--reason", "   "], "--reason must not be empty"),
        ],
    )
    def test_bad_input_is_exit_2_with_one_line(
        self,
        reviewed: Reviewed,
        capsys: pytest.CaptureFixture[str],
        args: list[str],
        message: str,
    ) -> None:
        """An unknown outage or an empty reason: exit 2, one error line, nothing appended."""
        size = reviewed.built.size
        argv = [a.replace("{id}", reviewed.outage_id) for a in args]
        if "--reason" not in argv:
            argv += ["--reason", "x"]
        code = reviewed.cli("review", *argv, "--verdict", "dismissed", "--by", "A")
        err = capsys.readouterr().err
        assert code == 2
        assert message in err
        lines = [line for line in err.splitlines() if not line.startswith("{")]  # not logs
        assert len(lines) == 1
        ledger = open_ledger(reviewed.built.url, readonly=True)
        try:
            assert ledger.size() == size
        finally:
            ledger.close()


class TestForgedReviews:
    def test_review_signed_with_another_key_is_caught(self, reviewed: Reviewed) -> None:
        """A review appended with another key fails `vigie verify`, even under a checkpoint."""
        intruder = NoteSigner("paris-1", Ed25519PrivateKey.generate())
        review, _ = reviewed.record("dismissed", "X", "faux", signer=intruder)
        reviewed.checkpoint()  # the vantage signs the tree without reading the entries
        for key in (reviewed.built.signer.verifier, None):  # given key, or the recorded one
            report = verify_ledger(reviewed.path, public_key=key)
            assert not report.ok
            assert report.first_bad_seq == review.seq
            assert "forged" in (report.problem or "")

    def test_edited_reason_is_caught(self, reviewed: Reviewed) -> None:
        """A reason edited in the database: the entry's bytes and its signature both say so."""
        review, entries = reviewed.record("confirmed", "Maître Dupont", "vu")
        body = dict(entries[review.seq or 0])  # the stored entry, with its seq and type
        reviewed.checkpoint()
        body["reason"] = "panne inventée"
        with pytest.raises(ReviewError, match="altered review"):
            check_review(body, reviewed.built.signer.verifier)
        edited = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        bypass_sql(
            reviewed.built.url,
            [("UPDATE ledger_entries SET body = ? WHERE seq = ?", [edited.encode(), review.seq])],
        )
        report = verify_ledger(reviewed.path, public_key=reviewed.built.signer.verifier)
        assert not report.ok
        assert report.first_bad_seq == review.seq

    def test_review_fields_are_what_the_note_signs(self) -> None:
        """Changing the verdict, the author or the target of a signed review breaks it."""
        signer = NoteSigner("paris-1", Ed25519PrivateKey.generate())
        body = review_body(
            signer,
            outage_id="o",
            target_id="t",
            verdict="confirmed",
            by="A",
            reason="r",
            at=dt.datetime(2026, 11, 23, tzinfo=dt.UTC),
        )
        assert check_review(body, signer.verifier).vkey() == signer.verifier.vkey()
        for field, value in (("verdict", "dismissed"), ("by", "B"), ("target_id", "u")):
            with pytest.raises(ReviewError):
                check_review({**body, field: value}, signer.verifier)


class TestReviewsInTheTracker:
    def test_rebuild_and_live_reviews_show_on_records(self, reviewed: Reviewed) -> None:
        """The tracker replays reviews at start-up; the same entry seen twice counts once."""
        review, entries = reviewed.record("dismissed", "A", "sélecteur obsolète")
        tracker = OutageTracker.rebuild(entries, OutageRules(), (), ())
        [record] = tracker.records()
        assert record.dismissed
        tracker.add_review(entries[review.seq or 0])
        assert len(tracker.records()[0].reviews) == 1

    def test_status_and_outage_pages_show_the_review(self, reviewed: Reviewed) -> None:
        """The status page's history and the outage page say who dismissed it and why."""
        from config.targets import Target
        from exporter.statuspage import build_status_view, render_outage_page, render_status_view

        _, entries = reviewed.record("dismissed", "A. Admin", "sélecteur obsolète")
        targets = [Target(id="anef-accueil", kind="http", url="http://127.0.0.1/")]
        tracker = OutageTracker.rebuild(entries, OutageRules(), (), targets)
        now = BUILD_START + dt.timedelta(days=1)
        page = render_status_view(build_status_view(tracker, targets, vantage="paris-1", now=now))
        assert "Vérification : écartée : sélecteur obsolète (par A. Admin le " in page
        [record] = tracker.records()
        detail = render_outage_page(record, target_name="Accueil", now=now)
        assert "<dt>Vérification</dt><dd>écartée : sélecteur obsolète (par A. Admin" in detail


@pytest.mark.slow
class TestReviewsInExports:
    def test_bundle_pdf_and_standalone_verify(
        self, reviewed: Reviewed, tmp_path: Path, bare_python: Path
    ) -> None:
        """The outage bundle carries the review: its PDF says so, verify.py checks it."""
        assert (
            reviewed.cli(
                "review",
                reviewed.outage_id,
                "--verdict",
                "dismissed",
                "--by",
                "A. Admin",
                "--reason",
                "sélecteur obsolète",
            )
            == 0
        )
        reviewed.checkpoint()
        out = tmp_path / "panne.zip"
        flat = _pdf_text(reviewed, out)
        with zipfile.ZipFile(out) as zf:
            assert b'"type":"review"' in zf.read("observations.jsonl")
        assert "écartée : sélecteur obsolète" in flat
        script = Path(__file__).parents[1] / "evidence/standalone/verify.py"
        result = subprocess.run(
            [str(bare_python), str(script), str(out)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "1 vérification(s) humaine(s) de panne" in result.stdout
        from evidence.bundle.verify import verify_bundle

        report = verify_bundle(out)
        assert report.ok, report.summary()

    def test_forged_review_in_a_bundle_is_caught(
        self, reviewed: Reviewed, tmp_path: Path, bare_python: Path
    ) -> None:
        """A review signed with another key fails `vigie verify` and verify.py on the bundle."""
        from evidence.bundle.verify import verify_bundle

        intruder = NoteSigner("paris-1", Ed25519PrivateKey.generate())
        review, _ = reviewed.record("dismissed", "X", "faux", signer=intruder)
        reviewed.checkpoint()
        out = tmp_path / "panne.zip"
        _pdf_text(reviewed, out)
        report = verify_bundle(out)
        assert not report.ok
        assert report.entry == review.seq
        assert "forged review" in (report.error or "")
        script = Path(__file__).parents[1] / "evidence/standalone/verify.py"
        result = subprocess.run(
            [str(bare_python), str(script), str(out)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 1
        assert "autre clé" in result.stdout


def _pdf_text(reviewed: Reviewed, out: Path, settings: Any = None) -> str:
    from evidence.bundle.export import export_bundle

    ledger = reviewed.built.open()
    try:
        export_bundle(
            ledger,
            out,
            dataclasses.replace(OUTAGE_PERIOD, outage_id=reviewed.outage_id),
            signer=reviewed.built.signer,
            artifacts_dir=reviewed.built.artifacts.root,
            progress=False,
            settings=settings,
        )
    finally:
        ledger.close()
    pdf = out.with_suffix(".pdf")
    with zipfile.ZipFile(out) as zf:
        pdf.write_bytes(zf.read("report.pdf"))
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    return " ".join(text.split())


class TestCoreReviewInExports:
    def test_unreviewed_core_outage_is_not_confirmed_in_the_pdf(
        self, reviewed: Reviewed, tmp_path: Path
    ) -> None:
        """With review_core, the PDF says a core outage awaits review until one confirms it."""
        from config.settings import load_settings

        data = yaml.safe_load(reviewed.config.read_text("utf-8"))
        data["outages"] = {"review_core": True}
        reviewed.config.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
        settings = load_settings(reviewed.config)
        before = _pdf_text(reviewed, tmp_path / "avant.zip", settings)
        assert "en attente de vérification par une personne : non confirmée" in before
        assert (
            reviewed.cli(
                "review",
                reviewed.outage_id,
                "--verdict",
                "confirmed",
                "--by",
                "B. Juriste",
                "--reason",
                "vu",
            )
            == 0
        )
        reviewed.checkpoint()
        after = _pdf_text(reviewed, tmp_path / "apres.zip", settings)
        assert "en attente de vérification" not in after
        assert "constatée et vérifiée par B. Juriste" in after


@pytest.fixture(scope="session")
def bare_python() -> Path:
    from tests.bundle_fixture import cryptography_only_python

    return cryptography_only_python()


class TestReviewFromTheOutagePage:
    """The outage page's form, on the real status server with the real ledger writer."""

    def test_form_needs_password_token_and_origin_then_appends_a_signed_review(
        self, reviewed: Reviewed
    ) -> None:
        """No password: 401; foreign Origin or no token (CSRF): 403; a good form: a review."""
        import asyncio
        import re

        from aiohttp import ClientSession, encode_basic_auth
        from aiohttp.test_utils import TestServer

        from config.settings import load_settings
        from exporter.metrics import Metrics
        from exporter.outage_recorder import OutageRecorder
        from exporter.server import build_app
        from exporter.service import Service
        from exporter.wiring import open_service_evidence
        from probes.base import ProbeRegistry, ProbeSettings

        data = yaml.safe_load(reviewed.config.read_text("utf-8"))
        data["evidence_auth"] = {"user": "juriste", "password": "mot-de-passe-long"}
        reviewed.config.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
        settings = load_settings(reviewed.config)
        auth = {"Authorization": encode_basic_auth("juriste", "mot-de-passe-long")}
        url_path = f"/outages/{reviewed.outage_id}/review"

        async def scenario() -> None:
            metrics = Metrics(vantage="paris-1", version="test")
            evidence = await open_service_evidence(settings, metrics)
            outages = await OutageRecorder.start(settings, evidence.sink, metrics, evidence.ledger)
            registry = ProbeRegistry(ProbeSettings("paris-1", "ua", {}), {})
            service = Service(settings, registry, metrics, evidence.sink, outages)
            try:
                async with TestServer(build_app(service)) as server, ClientSession() as client:
                    url = str(server.make_url(url_path))
                    async with client.get(url) as answer:
                        assert answer.status == 401
                    async with client.get(url, headers=auth) as answer:
                        assert answer.status == 200
                        form = await answer.text()
                    token = re.search(r'name="jeton" value="([^"]+)"', form)
                    assert token is not None
                    fields = {
                        "verdict": "dismissed",
                        "par": "Maître Dupont, avocate",
                        "motif": "sélecteur obsolète, voir le ticket 12",
                        "jeton": token.group(1),
                    }
                    foreign = {"Origin": "https://attaquant.example"}
                    async with client.post(url, data=fields, headers={**auth, **foreign}) as a:
                        assert a.status == 403
                    forged = {**fields, "jeton": "1.deadbeef"}
                    async with client.post(url, data=forged, headers=auth) as answer:
                        assert answer.status == 403
                    async with client.post(url, data=fields) as answer:
                        assert answer.status == 401
                    async with client.post(
                        url, data=fields, headers=auth, allow_redirects=False
                    ) as answer:
                        assert answer.status == 303
                        assert answer.headers["Location"] == f"/outages/{reviewed.outage_id}"
                    page_url = str(server.make_url(f"/outages/{reviewed.outage_id}"))
                    async with client.get(page_url) as answer:
                        page = await answer.text()
                    assert "écartée : sélecteur obsolète, voir le ticket 12" in page
                    async with client.put(url, data=fields, headers=auth) as answer:
                        assert answer.status == 405
            finally:
                await evidence.aclose()

        asyncio.run(scenario())
        report = verify_ledger(reviewed.path, public_key=reviewed.built.signer.verifier)
        assert report.ok, report.summary()
        assert report.reviews == 1


class TestReviewsOnCentral:
    def test_central_page_and_json_show_the_review(self, reviewed: Reviewed) -> None:
        """`vigie central` reads the review with the outage: page and /outages.json say so."""
        from exporter.central import Central, CentralConfig, render_central_page

        reviewed.record("confirmed", "Maître Dupont", "captures concordantes")
        config = CentralConfig.model_validate(
            {"vantages": [{"ledger": reviewed.built.url}], "refresh_seconds": 0}
        )
        central = Central(config)
        try:
            view = central.view()
        finally:
            central.close()
        html = render_central_page(view)
        assert "<em>constatée et vérifiée par Maître Dupont le " in html
        [outage] = view.to_dict()["outages"]
        assert outage["reviews"]["paris-1"]["state"] == "confirmed"


class TestReviewMetric:
    def test_review_of_an_open_outage_is_published_then_removed(self) -> None:
        """`vigie_outage_review_info` carries the latest review; it goes when the outage ends."""
        from exporter.metrics import Metrics

        metrics = Metrics(vantage="paris-1", version="test")
        metrics.set_outage_review("t", "down", ("t-1", "confirmed", "constatée"))
        metrics.set_outage_review("t", "down", ("t-1", "dismissed", "écartée : motif"))
        text = metrics.render().decode()
        assert 'state="dismissed"' in text
        assert 'text="écartée : motif"' in text
        assert 'state="confirmed"' not in text
        metrics.set_outage_review("t", "down", None)
        assert "vigie_outage_review_info{" not in metrics.render().decode()


class TestDismissedAvailability:
    def test_dismissed_outage_is_unmonitored_not_down(self, reviewed: Reviewed) -> None:
        """Dismissed, the outage's time leaves the down time for the unmonitored time; a later
        confirmation puts it back."""
        from config.targets import Target

        targets = [Target(id="anef-accueil", kind="http", url="http://127.0.0.1/")]
        day = (BUILD_START, BUILD_START + dt.timedelta(hours=1))

        def availability(entries: list[dict[str, Any]]) -> tuple[float, float]:
            tracker = OutageTracker.rebuild(entries, OutageRules(), (), targets)
            a = tracker.index.availability("anef-accueil", *day, day[1])
            return a.down_s, a.unmonitored_s

        _, entries = reviewed.record("confirmed", "A", "vu")
        assert availability(entries) == (600.0, 0.0)
        _, entries = reviewed.record("dismissed", "A", "sélecteur obsolète")
        assert availability(entries) == (0.0, 600.0)
        _, entries = reviewed.record("confirmed", "B", "finalement réelle")
        assert availability(entries) == (600.0, 0.0)


class TestReviewsInOpenData:
    def test_published_outage_carries_its_review(self, reviewed: Reviewed) -> None:
        """The open data's outage (CSV, JSON, datapackage) has a 'review' column, filled in."""
        from exporter.opendata import OUTAGE_FIELDS, record_outage

        _, entries = reviewed.record("dismissed", "A. Admin", "sélecteur obsolète")
        [record] = OutageTracker.rebuild(entries, OutageRules(), (), ()).records()
        published = record_outage(record, "Accueil", ["paris-1"])
        assert published.review.startswith("écartée : sélecteur obsolète (par A. Admin le ")
        assert OUTAGE_FIELDS[-1][0] == "review"


class TestReviewsInAttestations:
    def test_attestation_says_the_outage_was_dismissed(
        self, reviewed: Reviewed, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`vigie attestation` (JSON figures) carries the review of each outage it lists."""
        reviewed.record("dismissed", "A. Admin", "sélecteur obsolète")
        reviewed.checkpoint()
        capsys.readouterr()
        code = reviewed.cli(
            "attestation",
            "--target",
            "anef-accueil",
            "--window",
            "2026-11-23T10:00/11:00",
            "--format",
            "json",
        )
        out = capsys.readouterr().out
        assert code == 0, out
        assert "écartée : sélecteur obsolète (par A. Admin le " in out
