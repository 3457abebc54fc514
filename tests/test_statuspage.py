"""The French status page: structure, accessibility basics, outage rows, escaping, outage page."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from config.french import paris_time_fr
from config.settings import MaintenanceWindow, OutageRules, Settings
from config.targets import Target
from config.vocabulary import Outcome
from evidence.ledger.artifacts import FileArtifactStore
from evidence.outages.tracker import OutageTracker
from exporter.metrics import Metrics
from exporter.server import build_app
from exporter.service import Service
from exporter.statuspage import (
    _STYLE,
    build_status_view,
    render_outage_by_id,
    render_outage_page,
    render_status_page,
    render_status_view,
)
from probes.base import ProbeRegistry, ProbeSettings
from probes.observation import Observation, format_time

T0 = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)  # 13:00 in Paris
RULES = OutageRules(confirm_after=3, recover_after=2, recheck=10.0)
SITE = Target(id="site", name="ANEF — accueil", kind="http", url="http://127.0.0.1/")
EVIL = Target(id="evil", name="<b>Évil</b> & Co", kind="http", url="http://127.0.0.1/e")


class Node:
    """An element of the parsed page."""

    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node] = []
        self.content: list[Node | str] = []  # text and elements, in document order

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.content)

    def find_all(self, tag: str, **attrs: str) -> list[Node]:
        found = []
        for child in self.children:
            if child.tag == tag and all(
                v in child.attrs.get(k, "").split() or child.attrs.get(k) == v
                for k, v in attrs.items()
            ):
                found.append(child)
            found.extend(child.find_all(tag, **attrs))
        return found


VOID = {"meta", "br", "link", "img", "input", "hr"}


class TreeParser(HTMLParser):
    """A minimal DOM built with html.parser; it fails on unbalanced tags."""

    def __init__(self) -> None:
        super().__init__()
        self.root = Node("#root", {}, None)
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(node)
        self.current.content.append(node)
        if tag not in VOID:
            self.current = node

    def handle_endtag(self, tag: str) -> None:
        assert self.current.tag == tag, f"</{tag}> closes <{self.current.tag}>"
        assert self.current.parent is not None
        self.current = self.current.parent

    def handle_data(self, data: str) -> None:
        self.current.content.append(data)


def parse(html: str) -> Node:
    parser = TreeParser()
    parser.feed(html)
    parser.close()
    assert parser.current is parser.root, "unclosed elements"
    return parser.root


def obs(target: str, at: float, outcome: Outcome, status: int | None = None) -> Observation:
    return Observation(
        target_id=target,
        kind="http",
        vantage="test",
        started_at=format_time(T0 + dt.timedelta(seconds=at)),
        duration_s=0.1,
        success=outcome is Outcome.OK,
        outcome=outcome,
        http_status=status,
    )


def history(maintenance: tuple[MaintenanceWindow, ...] = ()) -> OutageTracker:
    """One closed outage of `site` (HTTP 503), one open outage of `evil` (timeouts)."""
    tracker = OutageTracker(RULES, maintenance, [SITE, EVIL])
    seq = 0
    for i, outcome in enumerate([Outcome.OK] + [Outcome.HTTP_STATUS] * 3 + [Outcome.OK] * 2):
        tracker.observe(obs("site", i * 10, outcome, 503).with_seq(seq))
        seq += 1
    for i in range(4):
        tracker.observe(obs("evil", 100 + i * 10, Outcome.TIMEOUT).with_seq(seq))
        seq += 1
    return tracker


def page(tracker: OutageTracker, **kw: Any) -> Node:
    view = build_status_view(
        tracker, [SITE, EVIL], vantage="paris-1", now=T0 + dt.timedelta(minutes=5), **kw
    )
    return parse(render_status_view(view))


def contrast(foreground: str, background: str = "#ffffff") -> float:
    """WCAG contrast ratio of two #rrggbb colours."""

    def luminance(colour: str) -> float:
        rgb = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


class TestStructure:
    def test_french_document_with_headings(self) -> None:
        """The page is French, has one h1, the expected h2 sections and an h3 per target."""
        root = page(history())
        (html,) = root.find_all("html")
        assert html.attrs["lang"] == "fr"
        assert len(root.find_all("h1")) == 1
        h2 = [h.text for h in root.find_all("h2")]
        for title in ("État actuel", "Disponibilité", "Historique des pannes"):
            assert title in h2
        assert "Périodes non surveillées" in h2
        assert [h.text for h in root.find_all("h3")] == ["ANEF — accueil", "<b>Évil</b> & Co"]

    def test_no_javascript(self) -> None:
        """The page works without JavaScript: it contains none."""
        root = page(history())
        assert root.find_all("script") == []
        assert not any(
            k.startswith("on") for n in _all(root) for k in n.attrs
        )  # no inline handlers

    def test_untrusted_names_are_escaped(self) -> None:
        """A target name with markup is shown as text, never as HTML."""
        root = page(history())
        assert root.find_all("b") == []
        row_heads = [th.text for th in root.find_all("th", scope="row")]
        assert "<b>Évil</b> & Co" in row_heads


class TestCurrentState:
    def test_states_and_names(self) -> None:
        """Each target's row shows its name and its state in French, with the outage start."""
        root = page(history())
        table = root.find_all("table")[0]
        rows = {
            tr.find_all("th")[0].text: [td.text for td in tr.find_all("td")]
            for tr in table.find_all("tr")
            if tr.find_all("th", scope="row")
        }
        assert "Fonctionne" in rows["ANEF — accueil"][0]
        assert "En panne" in rows["<b>Évil</b> & Co"][0]
        assert rows["<b>Évil</b> & Co"][1] == "23/11/2026 13:01:40"  # Paris time
        assert "Pas de réponse dans le délai" in rows["<b>Évil</b> & Co"][3]

    def test_state_marks_are_hidden_from_screen_readers(self) -> None:
        """Symbols next to states are decorative; the words carry the meaning."""
        root = page(history())
        marks = [s for s in root.find_all("span") if s.attrs.get("aria-hidden") == "true"]
        assert marks
        assert all(m.text in {"✔", "✖", "!", "?", ""} for m in marks)

    def test_vantage_state(self) -> None:
        """The vantage's state is said in words, including since when it is offline."""
        tracker = history()
        online = " ".join(p.text for p in page(tracker).find_all("p"))
        assert "La connexion de la sonde" in online
        tracker.observe_vantage(online=False, at=T0 + dt.timedelta(minutes=2))
        offline = " ".join(p.text for p in page(tracker).find_all("p"))
        assert "est coupée depuis le 23/11/2026 13:02:00" in offline
        assert "ne sont pas imputés" in offline


class TestAvailabilityBars:
    def test_ninety_day_bar_with_text_alternatives(self) -> None:
        """Each target has a labelled 90-day bar whose cells carry a French text alternative."""
        root = page(history())
        bars = root.find_all("ol", **{"class": "bar"})
        assert len(bars) == 2
        for bar in bars:
            assert "90 jours" in bar.attrs["aria-label"]
            cells = bar.find_all("li")
            assert len(cells) == 90
            for cell in cells:
                (alt,) = cell.find_all("span", **{"class": "sr"})
                assert alt.text
                assert cell.attrs["title"] == alt.text
        today = bars[0].find_all("li")[-1]
        # Monitored from 13:00 Paris: 30 s down out of 5 min; the morning was not monitored.
        assert today.attrs["title"] == (
            "23/11/2026 : disponible 90,00\u202f%, panne 30 s, non surveillé 13 h 00 min"
        )
        assert bars[0].find_all("li")[0].attrs["title"].endswith("pas de mesure")

    def test_figures_for_three_periods(self) -> None:
        """Availability is given over 24 h, 7 days and 90 days."""
        root = page(history())
        figures = root.find_all("ul", **{"class": "avail"})[0]
        texts = [li.text for li in figures.find_all("li")]
        assert [t.split(" sur ")[1] for t in texts] == ["24 h", "7 jours", "90 jours"]
        assert all("%" in t for t in texts)

    def test_colours_have_enough_contrast(self) -> None:
        """Text colours reach 4.5:1 and bar colours 3:1 against the white background."""
        text = re.findall(r"\.(ok|ko|warn|na)\{color:(#[0-9a-f]{6})", _STYLE)
        bars = re.findall(r"\.d-(ok|minor|major|slow)\{background:(#[0-9a-f]{6})", _STYLE)
        assert len(text) == 4
        assert len(bars) == 4
        assert all(contrast(colour) >= 4.5 for _, colour in text)
        assert all(contrast(colour) >= 3.0 for _, colour in bars)


class TestOutageList:
    def _rows(self, root: Node) -> list[list[str]]:
        table = root.find_all("table")[1]
        return [
            [c.text for c in tr.children if c.tag in {"th", "td"}]
            for tr in table.find_all("tr")
            if tr.find_all("th", scope="row")
        ]

    def test_rows_newest_first_with_paris_times(self) -> None:
        """Outages list start and end in Paris time, duration, French cause, newest first."""
        root = page(history())
        rows = self._rows(root)
        assert len(rows) == 2
        evil, site = rows
        assert evil[:4] == ["<b>Évil</b> & Co", "Panne", "23/11/2026 13:01:40", "en cours"]
        assert site[:5] == [
            "ANEF — accueil",
            "Panne",
            "23/11/2026 13:00:10",
            "23/11/2026 13:00:40",
            "30 s",
        ]
        assert site[5].startswith("erreur HTTP 503")
        assert "délai dépassé" in evil[5]

    def test_rows_link_to_outage_pages(self) -> None:
        """Each outage links to /outages/<id> with a descriptive accessible name."""
        root = page(history())
        every = root.find_all("table")[1].find_all("a")
        links = [a for a in every if not a.attrs["href"].endswith("/attestation.zip")]
        assert [a.attrs["href"] for a in links] == [
            "/outages/evil-20261123T120140Z",
            "/outages/evil-20261123T120140Z/evidence.zip",
            "/outages/site-20261123T120010Z",
            "/outages/site-20261123T120010Z/evidence.zip",
        ]
        assert all("de la panne <b>Évil</b> & Co du 23/11/2026" in a.text for a in links[:2])
        # The README promises a « Télécharger le dossier de preuves » link on every outage.
        assert links[1].text.startswith("Télécharger le dossier de preuves")
        assert links[0].text.startswith("Voir la panne")
        attestations = [a for a in every if a not in links]
        assert [a.attrs["href"] for a in attestations] == [
            f"{h}/attestation.zip"
            for h in [
                "/outages/evil-20261123T120140Z",
                "/outages/site-20261123T120010Z",
            ]
        ]
        assert all("Attestation pour cette panne" in a.text for a in attestations)

    def test_maintenance_label_shown(self) -> None:
        """An outage inside an announced window shows the window's label in its row."""
        window = MaintenanceWindow.model_validate(
            {"every": "day", "from": "12:00", "to": "14:00", "label": "Mise à jour annoncée"}
        )
        root = page(history((window,)))
        rows = self._rows(root)
        assert {r[6] for r in rows} == {"Mise à jour annoncée"}
        lists = [li.text for li in root.find_all("li")]
        assert "tous les jours de 12:00 à 14:00 (Europe/Paris)" in lists

    def test_no_outage(self) -> None:
        """Without outages the section says so in a sentence."""
        tracker = OutageTracker(RULES, (), [SITE])
        tracker.observe(obs("site", 0, Outcome.OK).with_seq(0))
        view = build_status_view(tracker, [SITE], vantage="v", now=T0)
        assert "Aucune panne ni lenteur confirmée sur les 90 derniers jours" in render_status_view(
            view
        )

    def test_unmonitored_periods_listed(self) -> None:
        """Gaps appear in words with their duration."""
        tracker = history()
        tracker.add_gap({"from": format_time(T0), "to": format_time(T0 + dt.timedelta(hours=2))})
        text = " ".join(li.text for li in page(tracker).find_all("li"))
        assert "Vigie arrêtée du 23/11/2026 13:00:00 au 23/11/2026 15:00:00 (2 h 00 min)" in text


class TestOutagePage:
    def test_outage_page(self) -> None:
        """The outage page is French, titled, lists its facts and links to the evidence."""
        record = history().records()[0]
        root = parse(render_outage_page(record, target_name="ANEF — accueil", now=T0))
        assert root.find_all("html")[0].attrs["lang"] == "fr"
        (h1,) = root.find_all("h1")
        assert h1.text == "Panne — ANEF — accueil — 23/11/2026 13:00:10"
        facts = dict(
            zip(
                [d.text for d in root.find_all("dt")],
                [d.text for d in root.find_all("dd")],
                strict=True,
            )
        )
        assert facts["Fin"] == "23/11/2026 13:00:40 (heure de Paris)"
        assert facts["Vérifications en échec"] == "3"
        hrefs = [a.attrs["href"] for a in root.find_all("a")]
        assert "/outages/site-20261123T120010Z/evidence.zip" in hrefs


class TestServiceAdapter:
    def _service(self) -> Service:
        settings = Settings(targets=(SITE,), outages=RULES)
        registry = ProbeRegistry(
            ProbeSettings(vantage="v", user_agent="Vigie/test", environment={}), {}
        )

        class Sink:
            async def append(self, entry_type: str, body: Any) -> int:
                return 0

        return Service(settings, registry, Metrics(vantage="v", version="0"), Sink())

    def test_without_tracker_shows_last_checks(self) -> None:
        """A service without a tracker still renders, showing each target's last check."""
        service = self._service()
        service.status["site"].last = obs("site", 0, Outcome.HTTP_STATUS, 503)
        root = parse(render_status_page(service, now=T0))
        assert "Erreurs en cours de vérification" in root.find_all("table")[0].text

    def test_with_tracker(self) -> None:
        """A service carrying a tracker renders the tracker's history."""
        service = self._service()
        service.tracker = history()  # type: ignore[attr-defined]
        html = render_status_page(service, now=T0 + dt.timedelta(minutes=5))
        assert "/outages/site-20261123T120010Z" in html

    def test_footer_shows_key_fingerprint(self, tmp_path: Path) -> None:
        """The footer shows the fingerprint of the vantage's own key (the one its reports
        print), changes when the key does, and is absent (no error) without a key."""
        from evidence.ledger.signing import NoteVerifier, key_fingerprint, keygen

        service = self._service()
        key_path = tmp_path / "vantage.key"
        service.settings = service.settings.model_copy(
            update={"signing": service.settings.signing.model_copy(update={"key": key_path})}
        )
        assert "Empreinte" not in render_status_page(service, now=T0)  # no key yet
        key = keygen(key_path)
        footer = parse(render_status_page(service, now=T0)).find_all("footer")[0]
        expected = key_fingerprint(NoteVerifier("v", key.public_key()).raw)
        (code,) = [c for c in footer.find_all("code") if "fingerprint" in c.attrs.get("class", "")]
        assert code.text == expected
        assert "comparez-les" in footer.text
        key_path.unlink()  # the key replaced: the page follows
        keygen(key_path)
        assert expected not in render_status_page(service, now=T0)

    def test_outage_page_by_id(self) -> None:
        """An outage id of the service's recorder gives its page; an unknown id gives None."""
        service = self._service()

        class Recorder:
            tracker = history()

        service.outages = Recorder()  # type: ignore[attr-defined]
        html = render_outage_by_id(service, "site-20261123T120010Z", now=T0)
        assert html is not None
        assert "ANEF — accueil" in parse(html).find_all("h1")[0].text
        assert render_outage_by_id(service, "site-19991231T000000Z") is None


def _all(node: Node) -> list[Node]:
    out = []
    for child in node.children:
        out.append(child)
        out.extend(_all(child))
    return out


def text_of(html: str) -> str:
    """The page's visible text, spaces collapsed."""
    return " ".join(parse(html).text.split())


class TestWording:
    def test_no_parenthesised_plural(self) -> None:
        """French agreement everywhere: no "(s)" on the page nor on an outage page."""
        for confirm, recover in ((3, 2), (1, 1)):
            rules = OutageRules(confirm_after=confirm, recover_after=recover, recheck=10.0)
            tracker = OutageTracker(rules, (), [SITE])
            for i, outcome in enumerate([Outcome.HTTP_STATUS] * 3 + [Outcome.OK] * 2):
                tracker.observe(obs("site", i * 10, outcome, 503).with_seq(i))
            view = build_status_view(tracker, [SITE], vantage="v", now=T0)
            record = tracker.records()[0]
            for html in (
                render_status_view(view),
                render_outage_page(record, target_name="ANEF", now=T0),
            ):
                assert "(s)" not in html
        page_text = text_of(render_status_view(build_status_view(history(), [SITE], vantage="v")))
        assert "confirmée après 3 vérifications en échec consécutives" in page_text
        assert "close après 2 vérifications réussies consécutives" in page_text

    def test_single_check_rules_in_the_singular(self) -> None:
        """With confirm_after 1 the rule reads "1 vérification en échec", not a plural."""
        rules = OutageRules(confirm_after=1, recover_after=1, recheck=10.0)
        view = build_status_view(OutageTracker(rules, (), [SITE]), [SITE], vantage="v", now=T0)
        text = text_of(render_status_view(view))
        assert "confirmée après 1 vérification en échec ; elle est close après 1 " in text

    def test_ongoing_period_in_words(self) -> None:
        """A period still going on reads "depuis le … (en cours)", never "au en cours"."""
        tracker = history()
        tracker.observe_vantage(False, T0 + dt.timedelta(minutes=1))
        html = render_status_view(
            build_status_view(tracker, [SITE, EVIL], vantage="v", now=T0 + dt.timedelta(minutes=5))
        )
        text = text_of(html)
        assert "au en cours" not in text
        assert (
            "Connexion de la sonde coupée depuis le 23/11/2026 13:01:00 (en cours, 4 min)" in text
        )

    def test_offline_only_checks_are_not_not_checked(self) -> None:
        """Checks made only while the probe was offline: "Non vérifiable", beside their time."""
        tracker = OutageTracker(RULES, (), [SITE])
        tracker.observe(obs("site", 0, Outcome.VANTAGE_OFFLINE).with_seq(0))
        root = parse(render_status_view(build_status_view(tracker, [SITE], vantage="v", now=T0)))
        row = root.find_all("table")[0].find_all("tr")[1]
        assert "Pas encore vérifié" not in row.text
        assert "Non vérifiable : connexion de la sonde coupée" in row.text
        assert "23/11/2026 13:00:00" in row.text

    def test_never_checked(self) -> None:
        """A target never checked says so once, without a time nor a question mark."""
        tracker = OutageTracker(RULES, (), [SITE])
        root = parse(render_status_view(build_status_view(tracker, [SITE], vantage="v", now=T0)))
        cells = [c.text for c in root.find_all("table")[0].find_all("tr")[1].children]
        assert cells[1].strip() == "\N{EN DASH}\N{NO-BREAK SPACE}Pas encore vérifié"
        assert cells[3] == "pas encore"

    def test_legend_defines_every_colour(self) -> None:
        """Each colour of the bars is defined in words, short and major outages included."""
        legend = page(history()).find_all("ul", **{"class": "legend"})[0]
        text = " ".join(legend.text.split())
        assert "Panne courte : panne confirmée, mais service disponible au moins 99 %" in text
        assert "Panne importante : panne confirmée, service disponible moins de 99 %" in text
        assert "Pas de mesure : Vigie n'a pas observé le service ce jour-là" in text

    def test_causes_in_words(self) -> None:
        """Causes read "erreur HTTP 503 (3 vérifications)", not a multiplication sign."""
        rows = TestOutageList()._rows(page(history()))
        assert rows[1][5] == "erreur HTTP 503 (3 vérifications)"


def artifact_history() -> OutageTracker:
    """`site` down 3 checks with a screenshot and an HTML capture each, then back up."""
    tracker = OutageTracker(RULES, (), [SITE])
    for i in range(5):
        failed = i < 3
        o = obs("site", i * 10, Outcome.HTTP_STATUS if failed else Outcome.OK, 503)
        if failed:
            o = dataclasses.replace(
                o, artifacts={f"{i:x}" * 64: "screenshot", f"{i + 10:x}" * 64: "html"}
            )
        tracker.observe(o.with_seq(10 + 2 * i))
    return tracker


class TestOutagePageDetail:
    def test_confirmation_and_recovery_told_apart(self) -> None:
        """The checks that ended an outage are called its recovery, not its confirmation."""
        record = history().records()[0]
        text = text_of(render_outage_page(record, target_name="ANEF", now=T0))
        assert "Confirmée par les observations n° 1, n° 2, n° 3." in text
        assert "Rétablissement constaté par les observations n° 4, n° 5." in text

    def test_open_outage_has_no_recovery(self) -> None:
        """An outage still going on names its confirmation only."""
        record = history().records()[1]
        text = text_of(render_outage_page(record, target_name="Évil", now=T0))
        assert "Confirmée par les observations n° 6, n° 7, n° 8." in text
        assert "Rétablissement" not in text

    def test_captures_are_links_with_readable_names(self) -> None:
        """Each capture is a link that opens it, named by its kind; its hash is shown beside."""
        record = artifact_history().records()[0]
        root = parse(render_outage_page(record, target_name="ANEF", now=T0))
        links = {a.text: a.attrs["href"] for a in root.find_all("a")}
        base = f"/outages/{record.id}/captures/"
        assert links["Capture d'écran 1"] == base + "0" * 64
        assert links["Capture d'écran 3"] == base + "2" * 64
        assert links["Page HTML 2"] == base + "b" * 64
        text = text_of(render_outage_page(record, target_name="ANEF", now=T0))
        assert "6 fichiers enregistrés pendant la panne : 3 captures d'écran, 3 pages HTML." in text
        assert "1" * 64 in text  # the full SHA-256, to compare with the bundle's artifacts/
        assert links["Télécharger le dossier de preuves"].endswith("/evidence.zip")
        assert text.count("heure inconnue") == 6  # no time given: said, not invented

    def test_captures_dated_and_in_the_order_taken(self) -> None:
        """Each capture shows the time of the check that took it, oldest first."""
        record = artifact_history().records()[0]
        taken = {sha: T0 + dt.timedelta(seconds=int(sha[0], 16)) for sha in record.artifacts}
        taken["b" * 64] = T0 - dt.timedelta(minutes=1)  # earliest: listed first
        root = parse(render_outage_page(record, target_name="ANEF", now=T0, captured=taken))
        rows = root.find_all("tr")[1:]  # after the header
        hrefs = [a.attrs["href"] for r in rows for a in r.find_all("a")]
        assert hrefs[0].endswith("b" * 64)
        for row in rows:
            sha = row.find_all("a")[0].attrs["href"].rsplit("/", 1)[1]
            assert paris_time_fr(taken[sha]) in row.text
        assert "heure inconnue" not in root.text


class TestCaptureRoute:
    """`/outages/<id>/captures/<sha256>` serves the outage's own captures, and nothing else."""

    def _service(self, tmp_path: Path, **extra: Any) -> tuple[Service, str, bytes]:
        store = FileArtifactStore(tmp_path / "artifacts")
        png = b"\x89PNG\r\n\x1a\n" + b"capture"
        sha = store.put(png, "screenshot")
        other = store.put(b"<script>alert(1)</script>", "html")  # stored, named by no outage
        tracker = OutageTracker(RULES, (), [SITE])
        for i in range(3):
            o = obs("site", i * 10, Outcome.HTTP_STATUS, 503)
            tracker.observe(dataclasses.replace(o, artifacts={sha: "screenshot"}).with_seq(i))
        settings = Settings(
            targets=(SITE,),
            outages=RULES,
            ledger={"url": f"sqlite:///{tmp_path / 'l.db'}", "artifacts": tmp_path / "artifacts"},
            **extra,
        )
        registry = ProbeRegistry(
            ProbeSettings(vantage="v", user_agent="Vigie/test", environment={}), {}
        )

        class Recorder:
            pass

        recorder = Recorder()
        recorder.tracker = tracker  # type: ignore[attr-defined]
        service = Service(settings, registry, Metrics(vantage="v", version="0"), None, recorder)  # type: ignore[arg-type]
        outage = tracker.records()[0].id
        assert other != sha
        return service, f"/outages/{outage}/captures/", png

    @staticmethod
    def _get(
        service: Service, paths: list[str], **kw: Any
    ) -> list[tuple[int, dict[str, str], bytes]]:
        async def main() -> list[tuple[int, dict[str, str], bytes]]:
            async with TestClient(TestServer(build_app(service))) as client:
                out = []
                for path in paths:
                    response = await client.get(path, **kw)
                    out.append((response.status, dict(response.headers), await response.read()))
                return out

        return asyncio.run(main())

    def test_serves_the_screenshot_sandboxed(self, tmp_path: Path) -> None:
        """A screenshot of the outage comes back as PNG, sandboxed, byte for byte."""
        service, base, png = self._service(tmp_path)
        sha = hashlib.sha256(png).hexdigest()
        ((status, headers, body),) = self._get(service, [base + sha])
        assert (status, body) == (200, png)
        assert headers["Content-Type"] == "image/png"
        assert headers["Content-Security-Policy"].startswith("sandbox;")

    def test_refuses_what_the_outage_does_not_name(self, tmp_path: Path) -> None:
        """A stored file the outage does not name, a bad hash or an unknown outage: 404."""
        service, base, _ = self._service(tmp_path)
        other = hashlib.sha256(b"<script>alert(1)</script>").hexdigest()
        paths = [
            base + other,
            base + "../../etc/passwd",
            base + other.upper(),
            "/outages/site-19991231T000000Z/captures/" + other,
        ]
        assert [status for status, _, _ in self._get(service, paths)] == [404] * 4

    def test_same_password_as_evidence(self, tmp_path: Path) -> None:
        """With evidence_auth set, captures need the same credentials as the downloads."""
        auth = {"user": "asso", "password": "s3cret"}
        service, base, png = self._service(tmp_path, evidence_auth=auth)
        path = base + hashlib.sha256(png).hexdigest()
        ((status, headers, _),) = self._get(service, [path])
        assert status == 401
        assert headers["WWW-Authenticate"].startswith("Basic")

        def basic(user: str, password: str) -> dict[str, str]:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            return {"Authorization": f"Basic {token}"}

        assert self._get(service, [path], headers=basic("asso", "s3cret"))[0][0] == 200
        assert self._get(service, [path], headers=basic("asso", "x"))[0][0] == 401

    def test_unknown_outage_is_a_french_page(self, tmp_path: Path) -> None:
        """A mistyped outage link answers 404 with a French page leading back to the list."""
        service, _base, _ = self._service(tmp_path)
        ((status, headers, body),) = self._get(service, ["/outages/site-20261123T999999Z"])
        assert status == 404
        assert headers["Content-Type"].startswith("text/html")
        root = parse(body.decode())
        assert root.find_all("h1")[0].text == "Panne introuvable"
        assert [a.attrs["href"] for a in root.find_all("a") if a.text.startswith("Voir")] == ["/"]


class TestEmptyStates:
    def test_no_target_configured(self) -> None:
        """Without targets the page says so in a sentence instead of an empty table."""
        view = build_status_view(OutageTracker(RULES, (), []), [], vantage="v", now=T0)
        root = parse(render_status_view(view))
        assert not root.find_all("table")
        assert "Aucun service n'est surveillé" in text_of(render_status_view(view))
