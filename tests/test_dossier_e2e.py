"""End to end, as a lawyer meets it: `vigie run` against the simulator with faults, then every
link of the status page and of each outage page, every outage download (open and closed), and
the PDFs of a whole-period bundle and of an outage bundle read as text.

One service run (module fixture) serves every test here: an HTTP target and a browser journey
fail and recover (closed outages, failure screenshots), the probe's own network goes down (a
browser check recorded as vantage_offline, with its blank capture), and the HTTP target fails
again and stays down (an open outage) while the links are fetched. Everything stays on
127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import html.parser
import json
import re
import subprocess
import time
import urllib.parse
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from evidence.outages.availability import PARIS
from tests.bundle_fixture import standalone_verify, vigie_cli
from tests.service_fixture import LedgerFollower, ServiceProcess, http_get, run_service

pytestmark = [pytest.mark.slow, pytest.mark.browser]

_LOGIN_PATH = "/auth/realms/anef-usagers/protocol/openid-connect/auth"
_CONTROL_PATH = "/informations/aide"
_REGISTRATION_PATH = "/auth/realms/anef-usagers/login-actions/registration"


def pdf_text(path: Path) -> str:
    """The text of a PDF as `pdftotext` reads it (reading order, no layout)."""
    return subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"href", "src"} and value:
                self.hrefs.append(value)


def links_of(page: bytes) -> list[str]:
    """Every href/src of an HTML page, as written."""
    parser = _Links()
    parser.feed(page.decode("utf-8"))
    return parser.hrefs


def _config(urls: dict[str, str], state: Path) -> dict[str, Any]:
    site = urls["site_url"].rstrip("/")
    return {
        "vantage": {"name": "e2e-dossier", "operator": "Association de test"},
        "user_agent": "Vigie-test/0.1 (+http://localhost; tests)",
        "defaults": {"interval": "1s", "timeout": "8s"},
        "min_interval": "0.3s",
        "targets": [
            {
                "id": "accueil",
                "name": "Simulateur — accueil",
                "kind": "http",
                "url": site + "/",
                "interval": "0.5s",
                "expect": {"contains": "trangers"},
            },
            {
                "id": "creation-compte",
                "name": "Simulateur — création de compte",
                "kind": "browser",
                "url": urls["login_url"],
                "interval": "0.5s",
                "steps": [
                    {"name": "page-de-connexion", "expect_visible": "input[name=username]"},
                    {"name": "lien-creation", "click": "text=Créer votre compte"},
                    {"name": "formulaire", "expect_visible": "input[type=email]"},
                ],
            },
        ],
        "controls": [site + _CONTROL_PATH],
        "outages": {"confirm_after": 2, "recover_after": 2, "recheck": "0.3s"},
        "ledger": {
            "url": f"sqlite:///{state / 'ledger.db'}",
            "artifacts": str(state / "artifacts"),
            "checkpoint_interval": "2s",
        },
        "signing": {"key": str(state / "vantage.key")},
    }


@dataclasses.dataclass
class Run:
    """What the module's service run left: its state, config, entries and fetched pages."""

    state: Path
    config: Path
    entries: list[dict[str, Any]]
    pages: dict[str, tuple[int, bytes]]  # URL -> (status, body), every link followed
    downloads: dict[str, Path]  # outage id -> the downloaded bundle
    open_outage: str
    closed_outages: list[str]


def _is(kind: str, **fields: Any) -> Any:
    return lambda e: e.get("type") == kind and all(e.get(k) == v for k, v in fields.items())


def _wait(ledger: LedgerFollower, kind: str, what: str, **fields: Any) -> dict[str, Any]:
    """The first entry of `kind` with `fields` since the last one waited for (60 s at most)."""
    predicate = _is(kind, **fields)
    mark = getattr(ledger, "mark", 0)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ledger.poll()
        for index in range(mark, len(ledger.entries)):
            if predicate(ledger.entries[index]):
                return ledger.entries[index]
        time.sleep(0.05)
    raise AssertionError(f"no {what} in the ledger within 60 s")


def _mark(ledger: LedgerFollower) -> None:
    ledger.poll()
    ledger.mark = len(ledger.entries)  # type: ignore[attr-defined]


def _crawl(service: ServiceProcess, folder: Path) -> tuple[dict[str, Any], dict[str, Path]]:
    """Fetch the status page, every link on it and on each outage page (same origin)."""
    pages: dict[str, tuple[int, bytes]] = {}
    downloads: dict[str, Path] = {}
    folder.mkdir(parents=True, exist_ok=True)
    todo = [service.url + "/"]
    while todo:
        url = todo.pop(0)
        if url in pages:
            continue
        status, body = http_get(url, timeout=120)
        pages[url] = (status, body)
        path = urllib.parse.urlsplit(url).path
        if path.endswith("/evidence.zip"):
            outage_id = path.split("/")[2]
            target = folder / f"{outage_id}.zip"
            target.write_bytes(body)
            downloads[outage_id] = target
            continue
        page = path == "/" or re.fullmatch(r"/outages/[^/]+", path) is not None
        if status != 200 or not page or not body.lstrip()[:15].lower().startswith(b"<!doctype"):
            continue  # follow links of the status page and of outage pages only
        for href in links_of(body):
            absolute = urllib.parse.urljoin(url, href)
            if urllib.parse.urlsplit(absolute).netloc == urllib.parse.urlsplit(service.url).netloc:
                todo.append(absolute.split("#", 1)[0])
    return pages, downloads


@pytest.fixture(scope="module")
def run(simulator_process_shared: Any, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One real service run with closed outages, an offline vantage and an open outage."""
    sim = simulator_process_shared
    sim.clear_faults()
    state = tmp_path_factory.mktemp("dossier")
    ledger = LedgerFollower(state / "ledger.db")
    try:
        with run_service(_config(sim.urls, state), state) as service:
            _wait(ledger, "observation", "journey", target_id="creation-compte", success=True)
            # 1. both targets fail: closed outages with failure captures
            _mark(ledger)
            sim.set_fault("/", "http_500", "site")
            sim.set_fault(_REGISTRATION_PATH, "form_missing", "login")
            _wait(ledger, "outage", "http outage", event="opened", target_id="accueil")
            _wait(ledger, "outage", "outage", event="opened", target_id="creation-compte")
            sim.clear_faults()
            _wait(ledger, "outage", "http recovery", event="closed", target_id="accueil")
            _wait(ledger, "outage", "recovery", event="closed", target_id="creation-compte")
            # 2. the probe's own network is down: the journey and the control both fail
            _mark(ledger)
            sim.set_fault(_LOGIN_PATH, "reset", "login")
            sim.set_fault(_CONTROL_PATH, "reset", "site")
            for _ in range(2):  # two offline checks: an offline span of a second or more
                _wait(
                    ledger,
                    "observation",
                    "journey while offline",
                    target_id="creation-compte",
                    outcome="vantage_offline",
                )
                _mark(ledger)
            sim.clear_faults()
            _mark(ledger)
            _wait(ledger, "observation", "back", target_id="creation-compte", success=True)
            # 3. the home page fails again and stays down: an open outage
            _mark(ledger)
            sim.set_fault("/", "http_500", "site")
            opened = _wait(ledger, "outage", "open one", event="opened", target_id="accueil")
            pages, downloads = _crawl(service, state / "downloads-dir")
            sim.clear_faults()
            config = service.config_path
        ledger.poll()
        entries = list(ledger.entries)
    finally:
        ledger.close()
        sim.clear_faults()
    closed = [e["outage_id"] for e in entries if _is("outage", event="closed")(e)]
    return Run(state, config, entries, pages, downloads, opened["outage_id"], closed)


def _paris_day(text: str) -> str:
    """`5 décembre 2026` for an RFC 3339 time (the report's long date, Paris time)."""
    from config.french import format_datetime_fr

    moment = dt.datetime.fromisoformat(text)
    return format_datetime_fr(moment, zone=False).split(" à ")[0]


def _percentages(text: str) -> list[float]:
    return [
        float(m.replace(",", "."))
        for m in re.findall(r"(?<![\w%.])(\d+(?:,\d+)?)\s?%(?![0-9A-Fa-f]{2})", text)
    ]


def _shown_captures(text: str) -> list[str]:
    """The 32-hex prefixes of the captures the report shows (`artifacts/<sha>…`)."""
    return re.findall(r"artifacts/([0-9a-f]{32})…", text)


def _capture_checks(run: Run) -> dict[str, dict[str, Any]]:
    """Screenshot sha -> the observation that took it."""
    found: dict[str, dict[str, Any]] = {}
    for entry in run.entries:
        if entry["type"] == "observation":
            for sha, kind in (entry.get("artifacts") or {}).items():
                if kind == "screenshot":
                    found.setdefault(sha, entry)
    return found


class TestLinks:
    def test_every_link_of_status_and_outage_pages_answers_200(self, run: Run) -> None:
        """The status page, each outage page, and every link on them answer 200; each outage,
        open or closed, has a download among them."""
        bad = {url: status for url, (status, _) in run.pages.items() if status != 200}
        assert not bad, {u: run.pages[u][1][:300] for u in bad}
        outage_pages = [u for u in run.pages if re.search(r"/outages/[^/]+$", u)]
        assert len(outage_pages) >= 3
        assert set(run.downloads) == {run.open_outage, *run.closed_outages}

    def test_every_download_verifies(self, run: Run, tmp_path: Path) -> None:
        """Each downloaded bundle passes `vigie verify` and its own verify.py (cryptography
        only), and carries the outage it was asked for."""
        for outage_id, bundle in run.downloads.items():
            done = vigie_cli("verify", str(bundle))
            assert done.returncode == 0, done.stdout + done.stderr
            folder = tmp_path / outage_id
            with zipfile.ZipFile(bundle) as zf:
                zf.extractall(folder)
                manifest = json.loads(zf.read("manifest.json"))
            assert manifest["outage"] == outage_id
            bare = standalone_verify(folder)
            assert bare.returncode == 0, bare.stdout + bare.stderr
            assert "RÉSULTAT : OK" in bare.stdout


class TestOutageReport:
    def test_outage_pdf_dates_its_own_period(self, run: Run, tmp_path: Path) -> None:
        """The PDF of each downloaded outage is dated from the outage, never from 1970; its
        availability figures lie between 0 and 100 %."""
        for outage_id, bundle in run.downloads.items():
            with zipfile.ZipFile(bundle) as zf:
                zf.extract("report.pdf", tmp_path / outage_id)
            text = pdf_text(tmp_path / outage_id / "report.pdf")
            assert "1970" not in text, outage_id
            opened = next(
                e for e in run.entries if e.get("outage_id") == outage_id and e["type"] == "outage"
            )
            assert f"Période observée du {_paris_day(opened['started_at'])}" in " ".join(
                text.split()
            )
            assert not re.search(r"\b\d+\s?j\b", text), "a duration in days, for seconds of data"
            percentages = _percentages(text)
            assert percentages
            assert all(0 <= value <= 100 for value in percentages), percentages
            assert "heure inconnue" not in text
            assert "Ce dossier ne porte que sur une interruption" in " ".join(text.split())


@pytest.fixture(scope="module")
def whole(run: Run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`vigie export` of two Paris days from the first observation on, unzipped."""
    first = next(e for e in run.entries if e["type"] == "observation")
    day = dt.datetime.fromisoformat(first["started_at"]).astimezone(PARIS).date()
    folder = tmp_path_factory.mktemp("periode")
    out = folder / "constat-periode.zip"
    done = vigie_cli(
        "export",
        "--config",
        str(run.config),
        "--from",
        day.isoformat(),
        "--to",
        (day + dt.timedelta(days=1)).isoformat(),
        "--out",
        str(out),
        "--no-progress",
        "--pieces",
        str(folder / "pieces"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    with zipfile.ZipFile(out) as zf:
        zf.extractall(folder / "unzipped")
    return folder / "unzipped"


class TestWholePeriodReport:
    def test_period_is_that_of_the_data(self, run: Run, whole: Path) -> None:
        """Asked for two days, the report's period is the data's, and says what was asked."""
        text = " ".join(pdf_text(whole / "report.pdf").split())
        first = next(e for e in run.entries if e["type"] == "observation")
        assert f"Période observée du {_paris_day(first['started_at'])}" in text
        assert "Période demandée" in text
        percentages = _percentages(text)
        assert all(0 <= value <= 100 for value in percentages), percentages

    def test_captures_are_of_failures_with_their_time(self, run: Run, whole: Path) -> None:
        """Every capture shown is of a failed check of the site (not a success, not a check
        made while the probe's own network was down) and carries its time."""
        text = pdf_text(whole / "report.pdf")
        checks = _capture_checks(run)
        by_prefix = {sha[:32]: entry for sha, entry in checks.items()}
        shown = _shown_captures(text)
        assert shown, "no capture in the report"
        for prefix in shown:
            entry = by_prefix[prefix]
            assert entry["success"] is False, entry
            assert entry["outcome"] != "vantage_offline", entry
        assert "heure inconnue" not in text
        flat = " ".join(text.split())
        for prefix in shown:
            taken = dt.datetime.fromisoformat(by_prefix[prefix]["started_at"])
            assert (
                taken.astimezone(PARIS).strftime("%H h %M min %S s") in flat
                or taken.astimezone(PARIS).strftime("%H:%M:%S") in flat
            )
        offline = [e for e in checks.values() if e["outcome"] == "vantage_offline"]
        assert offline, "the run recorded no capture while offline"
        assert "connexion du point d'observation lui-même était coupée" in flat


# Raw selectors, as a configuration writes them: none may reach the judge.
_SELECTOR = re.compile(r"input\[|\w\[(?:name|type|id)=|text=|role=|:has-text|css=|xpath=")


def _url_cuts(text: str, url: str) -> list[list[tuple[str, str]]]:
    """Each place `url` appears wrapped over several lines: the (line so far, next line)
    pairs at its breaks."""
    lines = [line.strip() for line in text.splitlines()]
    found = []
    for index, line in enumerate(lines):
        if not line or len(line) >= len(url) or not url.startswith(line):
            continue
        joined, cuts = line, []
        for following in lines[index + 1 :]:
            if not following or not url.startswith(joined + following):
                break
            cuts.append((joined, following))
            joined += following
        if joined == url:
            found.append(cuts)
    return found


def _reports(run: Run, whole: Path, tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (unzipped folder, report text) for the whole period and every download."""
    found = {"periode": (whole, pdf_text(whole / "report.pdf"))}
    for outage_id, bundle in run.downloads.items():
        folder = tmp_path / outage_id
        with zipfile.ZipFile(bundle) as zf:
            zf.extractall(folder)
        found[outage_id] = (folder, pdf_text(folder / "report.pdf"))
    return found


class TestWhatTheJudgeReads:
    """Item 7 of issue 17, in every report: the whole period's and each outage's."""

    def test_plain_french(self, run: Run, whole: Path, tmp_path: Path) -> None:
        """No CSS selector, no "(s)", numbers with a decimal comma, the journey in words."""
        for name, (_, text) in _reports(run, whole, tmp_path).items():
            assert not _SELECTOR.search(text), (name, _SELECTOR.search(text))
            assert "(s)" not in text, name
            # 0.5 s written the English way
            assert not re.search(r"(?<![\d.])\d+\.\d+\s(?:s|secondes)\b", text), name
        flat = " ".join(pdf_text(whole / "report.pdf").split())
        assert "vérifier l'affichage du champ « username »" in flat
        assert "cliquer sur le texte « Créer votre compte »" in flat
        assert "vérifier l'affichage du champ d'adresse électronique" in flat

    def test_urls_break_only_between_parts(self, run: Run, whole: Path) -> None:
        """A long URL wraps after '/', '?', '&', '#' or '=', or before a '%' escape: never
        inside a word ("protocol/o" | "penid-connect" was printed)."""
        url = yaml.safe_load(run.config.read_text("utf-8"))["targets"][1]["url"]
        cuts = _url_cuts(pdf_text(whole / "report.pdf"), url)
        assert cuts, "the long URL is not in the report, or never wraps"
        for before, after in (cut for found in cuts for cut in found):
            assert before[-1] in "/?&#=" or after[0] == "%", (before, after)

    def test_names_its_file_and_dates_its_pdf(self, run: Run, whole: Path, tmp_path: Path) -> None:
        """The report names the zip by its real file name, and the PDF's creation date is the
        day of the export, not 1 January 2000."""
        reports = _reports(run, whole, tmp_path)
        assert "constat-periode.zip" in reports["periode"][1]
        for outage_id in run.downloads:
            assert f"vigie-preuves-{outage_id}.zip" in " ".join(reports[outage_id][1].split())
            lisezmoi = (reports[outage_id][0] / "LISEZMOI.txt").read_text("utf-8")
            assert f"vigie-preuves-{outage_id}.zip" in lisezmoi
            assert f"Export demandé      : l'interruption {outage_id}" in lisezmoi
        for name, (folder, _) in reports.items():
            assert "archive.zip" not in reports[name][1]
            info = subprocess.run(
                ["pdfinfo", str(folder / "report.pdf")],
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            ).stdout
            created = re.search(r"CreationDate:\s+(.*)", info)
            assert created is not None
            assert str(dt.datetime.now(dt.UTC).year) in created.group(1), created.group(1)

    def test_key_fingerprint_and_how_to_check_it(self, run: Run, whole: Path) -> None:
        """The report and LISEZMOI.txt give the key's fingerprint, say to compare it with one
        obtained by another route, and how to recompute it; the command they give does."""
        from evidence.ledger.signing import NoteVerifier, key_fingerprint

        vkey = (whole / "proofs" / "vantage.vkey").read_text("utf-8").strip()
        fingerprint = key_fingerprint(NoteVerifier.parse(vkey).raw)
        flat = " ".join(pdf_text(whole / "report.pdf").split())
        assert fingerprint in flat
        assert "par un autre canal" in flat
        assert "openssl pkey -pubin -in proofs/vantage.pub -outform DER | tail -c 32" in flat
        assert fingerprint in (whole / "LISEZMOI.txt").read_text("utf-8")
        computed = subprocess.run(
            "openssl pkey -pubin -in proofs/vantage.pub -outform DER | tail -c 32 | sha256sum",
            shell=True,
            cwd=whole,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.split()[0]
        assert computed.upper() == fingerprint.replace(" ", "")

    def test_unmonitored_time_is_dated(self, run: Run, whole: Path) -> None:
        """The time the probe's own network was down is listed with its dates and cause."""
        flat = " ".join(pdf_text(whole / "report.pdf").split())
        assert "Temps non surveillé, daté" in flat
        assert re.search(
            r"du \d\d/\d\d/\d{4} \d\d:\d\d:\d\d au \d\d/\d\d/\d{4} \d\d:\d\d:\d\d \([^)]*\) : "
            r"connexion du point d'observation coupée",
            flat,
        ), flat[:3000]


class TestPieces:
    """`vigie export … --pieces DIR`: Télérecours pièces and their bordereau."""

    def test_pieces_and_bordereau(self, run: Run, whole: Path, tmp_path: Path) -> None:
        """Numbered PDF pièces with names Télérecours takes; the bordereau lists each with its
        SHA-256 and names the signed bundle; each pièce matches the bundle; the same bundle
        gives the same pièces again."""
        folder = whole.parent / "pieces"
        files = sorted(p.name for p in folder.iterdir())
        assert files == [
            "Bordereau-des-pieces.pdf",
            "Piece-01-Rapport-de-constat.pdf",
            "Piece-02-Observations-de-la-periode.pdf",
            "Piece-03-Captures-d-ecran-des-echecs.pdf",
            "Piece-04-Instructions-de-verification.pdf",
        ]
        for name in files:
            assert re.fullmatch(r"[A-Za-z0-9-]+\.pdf", name), name
            assert len(name) <= 80
        digests = {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in files}
        bundle = whole.parent / "constat-periode.zip"
        bordereau = "".join(pdf_text(folder / "Bordereau-des-pieces.pdf").split())
        for name in files[1:]:
            assert digests[name] in bordereau, name
            assert name in bordereau
        assert hashlib.sha256(bundle.read_bytes()).hexdigest() in bordereau
        assert "constat-periode.zip" in bordereau
        for name in files:
            assert not _SELECTOR.search(pdf_text(folder / name)), name
        # pièce 1 is the signed report, byte for byte
        assert (folder / files[1]).read_bytes() == (whole / "report.pdf").read_bytes()
        # pièce 2: every failed check of the site, by its ledger number, with its result
        observations = " ".join(pdf_text(folder / files[2]).split())
        failed = [e for e in run.entries if e["type"] == "observation" and not e["success"]]
        for entry in failed:
            assert f" {entry['seq']} " in observations, entry["seq"]
        assert "erreur HTTP 500" in observations
        assert "site témoin" in observations
        # pièce 3: each failure capture with its time, none from the offline check
        captures = " ".join(pdf_text(folder / files[3]).split())
        checks = _capture_checks(run)
        for sha, entry in checks.items():
            shown = sha in captures.replace(" ", "")
            failure = not entry["success"] and entry["outcome"] != "vantage_offline"
            assert shown == failure, (sha, entry["outcome"])
            if shown:
                paris = dt.datetime.fromisoformat(entry["started_at"]).astimezone(PARIS)
                assert paris.strftime("%Y-%m-%d %H:%M:%S") in captures
        # pièce 4: the key's fingerprint, and how to check it
        from evidence.ledger.signing import NoteVerifier, key_fingerprint

        vkey = (whole / "proofs" / "vantage.vkey").read_text("utf-8").strip()
        instructions = " ".join(pdf_text(folder / files[4]).split())
        assert key_fingerprint(NoteVerifier.parse(vkey).raw) in instructions
        assert "autre canal" in instructions
        # the same bundle gives the same pièces (an expert can redo them)
        again = tmp_path / "again"
        done = vigie_cli("export", "--bundle", str(bundle), "--pieces", str(again))
        assert done.returncode == 0, done.stdout + done.stderr
        assert {n: hashlib.sha256((again / n).read_bytes()).hexdigest() for n in files} == digests
