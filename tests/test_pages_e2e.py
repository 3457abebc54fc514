"""End to end: every link of the status page and of each outage page of a real `vigie run`.

The simulator has an outage; the pages are read as a person clicks through them, while the
outage goes on and after it closed. Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest

from tests.service_fixture import http_get, run_service
from tests.test_export_e2e import _config, _LedgerFollower, _observation, _outage

# The evidence downloads are built by exporter/evidence_routes.py (issue 17, item 1: its own
# end-to-end test); this walk covers the pages and the captures they link to.
DOWNLOAD = "/evidence.zip"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


def links(body: bytes) -> list[str]:
    parser = _Links()
    parser.feed(body.decode("utf-8"))
    return parser.hrefs


def walk(base: str) -> dict[str, int]:
    """Status of every local page and capture reachable from `/` in two clicks."""
    seen: dict[str, int] = {}
    status, body = http_get(base + "/")
    assert status == 200
    seen["/"] = status
    queue = [(href, 1) for href in links(body)]
    while queue:
        href, depth = queue.pop(0)
        if not href.startswith("/") or href in seen or href.endswith(DOWNLOAD):
            continue
        status, body = http_get(urljoin(base + "/", href))
        seen[href] = status
        page = href.startswith("/outages/") and "/captures/" not in href
        if depth < 2 and page and not href.endswith(".zip"):
            queue += [(h, depth + 1) for h in links(body)]
    return seen


def _captures_dated_as_in_ledger(html: str, database: Path) -> None:
    """Each capture on the outage page is dated with the start of the check that took it, as
    the ledger records it (Paris time), oldest first."""
    import json
    import re

    from config.french import paris_time_fr
    from evidence.ledger.backends import open_ledger

    taken = {}
    with open_ledger(f"sqlite:///{database}", readonly=True) as read:
        for row in read.iter_rows():
            if row.type == "observation":
                body = json.loads(row.body)
                for sha in body.get("artifacts") or {}:
                    taken.setdefault(sha, dt.datetime.fromisoformat(body["started_at"]))
    rows = re.findall(r"<tr>(.*?)</tr>", html, flags=re.DOTALL)
    dated = []
    for row in rows:
        found = re.search(r"/captures/([0-9a-f]{64})", row)
        if found is None:
            continue
        sha = found.group(1)
        assert paris_time_fr(taken[sha]) in row, (sha, row)
        dated.append(taken[sha])
    assert dated, html
    assert dated == sorted(dated)


@pytest.mark.slow
def test_every_link_answers_while_open_and_after(simulator_process: Any, tmp_path: Path) -> None:
    """Each link of the status page and of the outage pages answers 200, open and closed."""
    state = tmp_path / "state"
    state.mkdir()
    ledger = _LedgerFollower(state / "ledger.db")
    with run_service(_config(simulator_process, state), state) as service:
        base = service.url.rstrip("/")
        mark = ledger.wait(_observation(success=True), "first good check")
        simulator_process.set_fault("/", "http_500", "site")
        try:
            mark = ledger.wait(_outage("opened"), "the outage opening", after=mark)
            during = walk(base)
        finally:
            simulator_process.clear_faults()
        ledger.wait(_outage("closed"), "the outage closing", after=mark)
        after = walk(base)
        (page,) = [h for h in after if h.startswith("/outages/") and h.count("/") == 2]
        status, body = http_get(base + page)
    assert status == 200
    _captures_dated_as_in_ledger(body.decode(), state / "ledger.db")
    for seen in (during, after):
        assert set(seen.values()) == {200}, seen
        pages = [
            h
            for h in seen
            if h.startswith("/outages/") and "/captures/" not in h and not h.endswith(".zip")
        ]
        captures = [h for h in seen if "/captures/" in h]
        assert len(pages) == 1, seen  # the outage's own page
        assert captures, seen  # the failed checks' captures, each opened
    assert "/metrics" in after
