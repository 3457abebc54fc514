"""The French status page: structure, accessibility basics, outage rows, escaping, outage page."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser
from typing import Any

from evidence.outages import OutageTracker
from exporter.config import MaintenanceWindow, OutageRules, Settings
from exporter.metrics import Metrics
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
from probes.observation import Observation, Outcome, format_time
from probes.targets import Target

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
            "/outages/site-20261123T120010Z",
        ]
        assert all("Détail de la panne" in a.text for a in links)
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
        assert "Aucune panne confirmée" in render_status_view(view)

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
