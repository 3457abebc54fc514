"""The status page and an outage page as a phone and a laptop show them, in the real Chromium.

Each page is laid out at 390 px and 1280 px wide: nothing may stick out sideways (no column cut
off). Screenshots go to $VIGIE_SCREENSHOTS when set, for a person to look at.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config.settings import MaintenanceWindow, OutageRules
from config.targets import Target
from config.vocabulary import Outcome
from evidence.outages.tracker import OutageTracker
from exporter.central import (
    CentralView,
    Sighting,
    SourceState,
    group_sightings,
    render_central_page,
)
from exporter.statuspage import build_status_view, render_outage_page, render_status_view
from probes.browser_runtime import DEBIAN_CHROMIUM
from probes.observation import Observation, format_time

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(DEBIAN_CHROMIUM).exists(), reason="Chromium is not installed"),
]

T0 = dt.datetime(2026, 12, 7, 17, 0, tzinfo=dt.UTC)
RULES = OutageRules(confirm_after=3, recover_after=2, recheck=10.0)
TARGETS = [
    Target(
        id="anef-creation-compte",
        name="ANEF — création de compte (parcours complet jusqu'au formulaire d'inscription)",
        kind="http",
        url="http://127.0.0.1/a",
    ),
    Target(id="anef-accueil", name="ANEF — page d'accueil", kind="http", url="http://127.0.0.1/"),
    Target(id="anef-api", name="ANEF — API", kind="http", url="http://127.0.0.1/api"),
]
WIDTHS = (390, 1280)


def _obs(target: str, at: float, outcome: Outcome, seq: int, **kw: object) -> Observation:
    return Observation(
        target_id=target,
        kind="http",
        vantage="paris-1",
        started_at=format_time(T0 + dt.timedelta(seconds=at)),
        duration_s=0.2,
        success=outcome is Outcome.OK,
        outcome=outcome,
        http_status=503 if outcome is Outcome.HTTP_STATUS else None,
        **kw,  # type: ignore[arg-type]
    ).with_seq(seq)


def busy_tracker() -> OutageTracker:
    """Outages closed and open, in and out of maintenance, with captures; a gap; offline."""
    window = MaintenanceWindow.model_validate(
        {"every": "day", "from": "18:00", "to": "18:30", "label": "Maintenance annoncée par l'ANEF"}
    )
    tracker = OutageTracker(RULES, (window,), TARGETS)
    seq = 0
    for target, start, failures, outcome in (
        ("anef-accueil", 0, 4, Outcome.HTTP_STATUS),
        ("anef-creation-compte", 200, 6, Outcome.TIMEOUT),
        ("anef-api", 3700, 3, Outcome.CONNECT_ERROR),
    ):
        for i in range(failures):
            captures = {f"{seq:064x}": "screenshot", f"{seq + 10**6:064x}": "warc"}
            tracker.observe(_obs(target, start + i * 10, outcome, seq, artifacts=captures))
            seq += 1
        if target != "anef-creation-compte":  # that one stays down
            for i in range(2):
                tracker.observe(_obs(target, start + 100 + i * 10, Outcome.OK, seq))
                seq += 1
    tracker.add_gap({"from": format_time(T0 - dt.timedelta(hours=5)), "to": format_time(T0)})
    tracker.observe_vantage(False, T0 + dt.timedelta(hours=2))
    return tracker


def pages(tracker: OutageTracker) -> dict[str, str]:
    now = T0 + dt.timedelta(hours=2, minutes=5)
    view = build_status_view(
        tracker, TARGETS, vantage="paris-1", operator="Association d'aide aux étrangers", now=now
    )
    names = {t.id: t.display_name for t in TARGETS}
    out = {"status": render_status_view(view)}
    for record in tracker.records():
        closed = "closed" if not record.is_open else "open"
        out[f"outage-{closed}"] = render_outage_page(
            record, target_name=names[record.target_id], now=now
        )
    return out


def central_page(tracker: OutageTracker) -> str:
    """`vigie central`'s page: the same outages seen from two vantages, one source unreadable."""
    records = tracker.records()
    now = T0 + dt.timedelta(hours=2, minutes=5)
    sources = (
        SourceState(
            "postgresql://vigie_reader@db/paris", "registre", "paris-1", records, 40, None, now
        ),
        SourceState(
            "/srv/lyon-association-d-aide.zip",
            "archive de preuves",
            "lyon-1",
            records[:2],
            9,
            None,
            now,
        ),
        SourceState(
            "postgresql://vigie_reader@db/marseille",
            "registre",
            None,
            [],
            0,
            "connexion refusée",
            None,
        ),
    )
    sightings = [Sighting(src.vantage or "", r) for src in sources[:2] for r in src.outages]
    view = CentralView(
        title="Vigie — observation de l'ANEF depuis plusieurs villes",
        min_vantages=2,
        generated_at=now,
        sources=sources,
        outages=tuple(group_sightings(sightings)),
        names={t.id: t.display_name for t in TARGETS},
    )
    return render_central_page(view)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """The real Chromium, launched once for this module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=DEBIAN_CHROMIUM)
        try:
            yield browser
        finally:
            browser.close()


def test_no_sideways_overflow_on_phone_and_laptop(chromium: Any, tmp_path: Path) -> None:
    """At 390 and 1280 px no page is wider than the window, and every column is readable."""
    tracker = busy_tracker()
    html = {**pages(tracker), "central": central_page(tracker)}
    assert {"status", "outage-open", "outage-closed"} <= set(html)
    shots = []
    for width in WIDTHS:
        tab = chromium.new_page(viewport={"width": width, "height": 900})
        for name, document in html.items():
            tab.set_content(document)
            scroll, inner = tab.evaluate(
                "[document.documentElement.scrollWidth, window.innerWidth]"
            )
            assert scroll <= inner, f"{name} at {width} px: {scroll} > {inner}"
            # No cell is cut: every table cell lies inside the window.
            right = tab.evaluate(
                "Math.max(0, ...[...document.querySelectorAll('td,th')]"
                ".map(c => c.getBoundingClientRect().right))"
            )
            assert right <= inner, f"{name} at {width} px: a cell ends at {right}"
            shot = tmp_path / f"{name}-{width}.png"
            tab.screenshot(path=str(shot), full_page=True)
            shots.append(shot)
        tab.close()
    keep = os.environ.get("VIGIE_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for shot in shots:
            shutil.copy(shot, Path(keep) / shot.name)


def test_phone_layout_labels_each_value(chromium: Any) -> None:
    """On a phone each outage becomes a card whose values are preceded by their column name."""
    tab = chromium.new_page(viewport={"width": 390, "height": 900})
    tab.set_content(pages(busy_tracker())["status"])
    labels = tab.evaluate(
        "[...document.querySelectorAll('table.cards td')].map(td => "
        "[td.dataset.label, getComputedStyle(td, '::before').content])"
    )
    header_height = tab.evaluate(
        "document.querySelector('table.cards thead').getBoundingClientRect().height"
    )
    tab.close()
    assert labels
    assert all(before == f'"{label} : "' for label, before in labels), labels[:3]
    assert {label for label, _ in labels} >= {"Début", "Fin", "Détail et preuves"}
    assert header_height <= 1  # the column headers are left to screen readers
