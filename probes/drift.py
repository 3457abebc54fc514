"""Page drift: tell a stale journey (the site changed its page) from a failure of the site.

It only reads the page (structure, sizes, requests seen) and never turns a failure into drift
without evidence: a baseline from a successful run, a page that served normally, a changed shape.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import structlog

from probes.observation import canonical_json

if TYPE_CHECKING:
    from playwright.async_api import Page, Request, Response

    from probes.base import ArtifactStore
    from probes.observation import Observation

__all__ = [
    "DRIFT_ACTIONS",
    "ERROR_TEXTS",
    "FINGERPRINT_KIND",
    "DriftWatch",
    "FingerprintBook",
    "JourneyBaseline",
    "StepBaseline",
    "conclude",
    "structure_changes",
]

log = structlog.get_logger("vigie.drift")

FINGERPRINT_KIND = "json"  # artifact kind of a stored page fingerprint
# Steps whose failure may mean "the page changed" (an element or a text not found). A failed
# `goto`, `expect_url` or `fail_if_text` says something about the site, never about the journey.
DRIFT_ACTIONS = frozenset({"click", "expect_visible", "expect_text", "wait_for"})
# Text a site shows when it is in trouble; found on a failed page (and not on the baseline),
# it rules drift out.
ERROR_TEXTS = (
    "maintenance",
    "indisponible",
    "erreur interne",
    "réessayer plus tard",
    "reessayer plus tard",
    "service unavailable",
    "internal server error",
    "bad gateway",
    "gateway time-out",
    "gateway timeout",
    "temporarily unavailable",
    "erreur 500",
    "erreur 502",
    "erreur 503",
    "erreur 504",
)
# A failed page "of normal size" has at least this share of the baseline's visible text and
# visible elements: a blank page, a spinner or a half-rendered application fails this.
MIN_SIZE_RATIO = 0.5
SNAPSHOT_TIMEOUT = 2.0  # seconds for one fingerprint (success or failure)
MAX_ITEMS = 200  # per category in a fingerprint
MAX_LISTED_CHANGES = 20  # per category and direction in a drift assessment
MAX_TEXT = 80

# The page's shape: landmarks (with the text of top headings), forms (id and action path),
# visible inputs (type and name), and the visible text of links and buttons. Sizes count
# visible text and visible elements. Read-only: it never changes the page.
# Cost, measured on the simulator's login page (Chromium headless, 2 shared cores, 50 runs,
# 2026-12-07): median 4.9 ms per fingerprint against 1.8 ms for a trivial `evaluate` round trip
# in the same run (ratio 2.7): about 15 ms for a three-step journey that takes 0.5-1 s.
_FINGERPRINT_JS = """([patterns, maxItems, maxText]) => {
  const clip = (s) => { s = (s || '').replace(/\\s+/g, ' ').trim(); return s.slice(0, maxText); };
  const shown = (el) => {
    if (!el.getClientRects().length) return false;
    const style = getComputedStyle(el);
    return style.visibility !== 'hidden' && style.display !== 'none';
  };
  const list = (selector, describe) => {
    const out = [];
    for (const el of document.querySelectorAll(selector)) {
      if (out.length >= maxItems) break;
      if (!shown(el)) continue;
      const d = describe(el);
      if (d) out.push(d);
    }
    return out.sort();
  };
  const landmarks = list(
    'header, nav, main, footer, aside, section, form, h1, h2, [role=banner], ' +
    '[role=navigation], [role=main], [role=contentinfo], [role=search], [role=dialog]',
    (el) => {
      const tag = el.tagName.toLowerCase();
      const role = el.getAttribute('role');
      let d = role ? tag + '[role=' + role + ']' : tag;
      if (tag === 'h1' || tag === 'h2') d += ':' + clip(el.innerText);
      return d;
    });
  const forms = list('form', (el) => {
    let action = el.getAttribute('action') || '';
    try { action = new URL(action, location.href).pathname; } catch (e) { action = ''; }
    return 'form' + (el.id ? '#' + el.id : '') + ' ' + action;
  });
  const inputs = list('input, select, textarea', (el) => {
    const type = (el.getAttribute('type') || el.tagName.toLowerCase()).toLowerCase();
    if (type === 'hidden') return '';
    const name = el.getAttribute('name') || el.id || '';
    return el.tagName.toLowerCase() + '[type=' + type + ']' + (name ? '[name=' + name + ']' : '');
  });
  const links = [...new Set(list(
    'a[href], button, [role=button], [role=link], input[type=submit], input[type=button]',
    (el) => clip(el.innerText || el.value || el.getAttribute('aria-label') || ''),
  ))].sort();
  const body = document.body;
  const text = body ? body.innerText || '' : '';
  let elements = 0;
  if (body) for (const el of body.querySelectorAll('*')) if (el.getClientRects().length) elements++;
  const lower = text.toLowerCase();
  const errors = {};  // how many times each error text shows
  for (const p of patterns) {
    const n = lower.split(p).length - 1;
    if (n) errors[p] = n;
  }
  return {landmarks, forms, inputs, links, text_chars: text.length, elements, errors,
          title: clip(document.title), url: location.href};
}"""


def _round2(value: int) -> int:
    """`value` to two significant digits (sizes vary a little between runs of the same page)."""
    if value < 100:
        return value
    scale: int = 10 ** (len(str(value)) - 2)
    return (value + scale // 2) // scale * scale


def _structure(fingerprint: Mapping[str, Any]) -> dict[str, list[str]]:
    return {
        key: [str(v) for v in fingerprint.get(key) or ()]
        for key in ("landmarks", "forms", "inputs", "links")
    }


def structure_changes(
    baseline: Mapping[str, Any], current: Mapping[str, Any]
) -> dict[str, dict[str, list[str]]]:
    """What differs in shape between two fingerprints: per category, items removed and added."""
    before, after = _structure(baseline), _structure(current)
    changes: dict[str, dict[str, list[str]]] = {}
    for key, old in before.items():
        new = after[key]
        removed = sorted(set(old) - set(new))
        added = sorted(set(new) - set(old))
        if removed or added or sorted(old) != sorted(new):
            changes[key] = {
                "removed": removed[:MAX_LISTED_CHANGES],
                "added": added[:MAX_LISTED_CHANGES],
            }
    return changes


@dataclasses.dataclass(frozen=True, slots=True)
class StepBaseline:
    """The fingerprint a step's page had in the last successful run of its journey."""

    sha256: str  # name of the fingerprint artifact
    seq: int | None  # ledger seq of the successful observation that recorded it

    def to_dict(self) -> dict[str, Any]:
        """As recorded in an observation.

        The ledger seq is under "observation", never a nested "seq": readers find an entry's
        own "seq" by its key in the canonical bytes, and "drift" sorts before "seq".
        """
        return {"fingerprint": self.sha256, "observation": self.seq}


@dataclasses.dataclass(frozen=True, slots=True)
class JourneyBaseline:
    """The last successful run of one journey: its steps' fingerprints and how to read them."""

    steps: Mapping[str, StepBaseline]
    load: Callable[[str], bytes | None] = dataclasses.field(
        default=lambda _sha: None, compare=False
    )

    def fingerprint(self, step: str) -> dict[str, Any] | None:
        """The baseline fingerprint of `step` (None: no baseline or unreadable)."""
        found = self.steps.get(step)
        if found is None:
            return None
        try:
            data = self.load(found.sha256)
        except Exception as exc:  # noqa: BLE001 - a missing baseline only means "cannot tell"
            log.warning("drift_baseline_unreadable", sha256=found.sha256, error=str(exc))
            return None
        if data is None:
            return None
        try:
            value = json.loads(data)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


class DriftWatch:
    """Watches one journey's page: the requests of its own scripts, documents, fingerprints."""

    def __init__(self, page: Page) -> None:
        self._page = page
        self.document_status: int | None = None
        self.document_url: str | None = None
        self.script_failures: list[str] = []
        self._pending_scripts: dict[Request, str] = {}
        self.page_errors = 0
        self.fingerprints: dict[str, dict[str, Any]] = {}  # step name -> fingerprint
        self.assessment: dict[str, Any] | None = None
        page.on("request", self._on_request)
        page.on("requestfinished", self._on_finished)
        page.on("requestfailed", self._on_failed)
        page.on("response", self._on_response)
        page.on("pageerror", self._on_page_error)

    # --- events -------------------------------------------------------------------------

    def _own(self, url: str) -> bool:
        document = self.document_url or self._page.url
        a, b = urlsplit(url), urlsplit(document)
        return (a.scheme, a.netloc) == (b.scheme, b.netloc)

    def _on_request(self, request: Request) -> None:
        if request.resource_type == "script" and self._own(request.url):
            self._pending_scripts[request] = request.url

    def _on_finished(self, request: Request) -> None:
        self._pending_scripts.pop(request, None)

    def _on_failed(self, request: Request) -> None:
        url = self._pending_scripts.pop(request, None)
        if url is not None:
            failure = request.failure or "failed"
            self.script_failures.append(f"{url} ({failure})"[:300])

    def _on_response(self, response: Response) -> None:
        request = response.request
        if request.resource_type == "document" and response.frame == self._page.main_frame:
            self.document_status = response.status
            self.document_url = response.url
        elif (
            request.resource_type == "script" and response.status >= 400 and self._own(response.url)
        ):
            self.script_failures.append(f"{response.url} (HTTP {response.status})"[:300])

    def _on_page_error(self, _error: Exception) -> None:
        self.page_errors += 1

    # --- fingerprints -------------------------------------------------------------------

    async def _fingerprint(self) -> dict[str, Any] | None:
        try:
            async with asyncio.timeout(SNAPSHOT_TIMEOUT):
                raw = await self._page.evaluate(
                    _FINGERPRINT_JS, [list(ERROR_TEXTS), MAX_ITEMS, MAX_TEXT]
                )
        except Exception as exc:  # noqa: BLE001 - a page that cannot be read is not drift
            log.debug("drift_fingerprint_failed", error=str(exc)[:200])
            return None
        if not isinstance(raw, dict):
            return None
        fingerprint: dict[str, Any] = dict(_structure(raw))
        counts = raw.get("errors")
        fingerprint["errors"] = (
            {str(k): int(v) for k, v in counts.items()} if isinstance(counts, dict) else {}
        )
        fingerprint["text_chars"] = _round2(int(raw.get("text_chars") or 0))
        fingerprint["elements"] = _round2(int(raw.get("elements") or 0))
        fingerprint["page_errors"] = self.page_errors
        return fingerprint

    async def snapshot(self, step: str) -> None:
        """Fingerprint the page `step` acted on (called when the step succeeded)."""
        fingerprint = await self._fingerprint()
        if fingerprint is not None:
            self.fingerprints[step] = fingerprint

    async def store(self, store: ArtifactStore | None) -> dict[str, str]:
        """Store each step's fingerprint as an artifact; step name -> artifact digest."""
        out: dict[str, str] = {}
        for step, fingerprint in self.fingerprints.items():
            data = canonical_json(fingerprint)
            if store is None:
                out[step] = hashlib.sha256(data).hexdigest()
                continue
            try:
                out[step] = await asyncio.to_thread(store.put, data, FINGERPRINT_KIND)
            except Exception as exc:  # noqa: BLE001 - a failing store must not lose the check
                log.warning("drift_fingerprint_not_stored", step=step, error=str(exc)[:200])
        return out

    async def assess(
        self, step: str, action: str, baseline: JourneyBaseline | None
    ) -> tuple[bool, dict[str, Any], dict[str, Any] | None]:
        """Whether the failure of `step` is drift, with the evidence; and the page's fingerprint.

        Drift needs all of: a drift-prone step, a baseline for it, a document answered 2xx,
        no error text new since the baseline, a page of normal size, no failed or pending
        request of the site's own scripts, no new uncaught script error, and a page whose
        shape differs from the baseline with something new in it (not only losses).
        """
        reasons: list[str] = []
        evidence: dict[str, Any] = {"step": step, "action": action}
        current = await self._fingerprint() if action in DRIFT_ACTIONS else None
        old = baseline.fingerprint(step) if baseline is not None else None
        if action not in DRIFT_ACTIONS:
            reasons.append(f"a failed {action} step says nothing about the page's shape")
        if old is None:
            reasons.append("no fingerprint of this step from a successful run to compare with")
        else:
            assert baseline is not None
            evidence["baseline"] = baseline.steps[step].to_dict()
        status = self.document_status
        evidence["http_status"] = status
        if status is None or not 200 <= status < 300:
            reasons.append(f"the page's document answered HTTP {status}")
        pending = sorted(set(self._pending_scripts.values()))
        evidence["script_failures"] = list(self.script_failures[:10])
        evidence["scripts_pending"] = pending[:10]
        if self.script_failures:
            reasons.append("a script of the site failed to load")
        if pending:
            reasons.append("a script of the site never finished loading")
        if current is None:
            if action in DRIFT_ACTIONS:
                reasons.append("the page could not be read")
        else:
            evidence["text_chars"] = current["text_chars"]
            evidence["elements"] = current["elements"]
            evidence["page_errors"] = current["page_errors"]
            errors = _new_error_texts(current.get("errors"), (old or {}).get("errors"))
            evidence["error_texts"] = sorted(errors)
            if errors:
                reasons.append(f"the page shows error text: {', '.join(sorted(errors))}")
            if old is not None:
                evidence["baseline_text_chars"] = old.get("text_chars")
                evidence["baseline_elements"] = old.get("elements")
                for key, label in (("text_chars", "visible text"), ("elements", "elements")):
                    before = int(old.get(key) or 0)
                    if before and int(current[key]) < MIN_SIZE_RATIO * before:
                        reasons.append(
                            f"the page is much smaller than usual ({label}: "
                            f"{current[key]} against {before})"
                        )
                if int(current["page_errors"]) > int(old.get("page_errors") or 0):
                    reasons.append("the page raised an uncaught script error")
                changes = structure_changes(old, current)
                evidence["changes"] = changes
                if not changes:
                    reasons.append("the page has the same shape as in the last successful run")
                elif not any(c["added"] for c in changes.values()):
                    # A redesign puts something in place of what it moves or renames; a page
                    # that only lost elements (a form field, a link) is broken, not redesigned.
                    reasons.append("the page only lost elements, nothing new took their place")
        evidence["reasons"] = reasons
        drift = not reasons
        evidence["verdict"] = "journey_drift" if drift else "failure"
        self.assessment = evidence
        return drift, evidence, current


def _counts(value: Any) -> dict[str, int]:
    if isinstance(value, dict):
        return {str(k): int(v) for k, v in value.items()}
    return dict.fromkeys((str(v) for v in value or ()), 1)  # a list: each text once


def _new_error_texts(current: Any, baseline: Any) -> list[str]:
    """Error texts shown more often than on the baseline (a footer's "maintenance" is not new)."""
    before = _counts(baseline)
    return sorted(k for k, n in _counts(current).items() if n > before.get(k, 0))


class FingerprintBook:
    """The last successful fingerprints of every journey, kept across restarts via the ledger.

    A successful browser observation records ``drift.fingerprints`` (step -> artifact digest);
    a failed one records the ``drift.baseline`` it was compared with, so the latest observation
    of a journey always says which baseline is current.
    """

    def __init__(self, load: Callable[[str], bytes | None] = lambda _sha: None) -> None:
        self._load = load
        self._baselines: dict[str, dict[str, StepBaseline]] = {}

    def baseline(self, target_id: str) -> JourneyBaseline | None:
        """The baseline of `target_id`'s journey (None when no success was seen)."""
        steps = self._baselines.get(target_id)
        return None if not steps else JourneyBaseline(dict(steps), self._load)

    def note(self, obs: Observation | Mapping[str, Any]) -> None:
        """Account a recorded observation (carrying its seq): successes renew the baseline."""
        if isinstance(obs, Mapping):
            target_id, drift, seq = str(obs["target_id"]), obs.get("drift") or {}, obs.get("seq")
            success = bool(obs.get("success"))
        else:
            target_id, drift, seq, success = obs.target_id, obs.drift, obs.seq, obs.success
        fingerprints = drift.get("fingerprints")
        if success and isinstance(fingerprints, Mapping) and fingerprints:
            self._baselines[target_id] = {
                str(step): StepBaseline(str(sha), seq) for step, sha in fingerprints.items()
            }
            return
        carried = drift.get("baseline")
        if not success and isinstance(carried, Mapping) and target_id not in self._baselines:
            self._baselines[target_id] = _steps_of(carried)

    def seed(self, entries: Iterable[Mapping[str, Any]], targets: Iterable[str]) -> None:
        """Account decoded observation entries given newest first, until each target has one.

        Per target, the newest browser observation that says something decides: a success
        (its fingerprints, or none when it predates them), or a failure carrying the baseline
        it was compared with; older failures without drift data are passed over.
        """
        wanted = set(targets)
        for entry in entries:
            if not wanted:
                return
            target_id = str(entry.get("target_id"))
            if target_id not in wanted or entry.get("kind") != "browser":
                continue
            drift = entry.get("drift") or {}
            if entry.get("success"):
                self.note(entry)
            elif isinstance(drift.get("baseline"), Mapping):
                self._baselines[target_id] = _steps_of(drift["baseline"])
            else:
                continue
            wanted.discard(target_id)

    def seed_from_ledger(
        self, ledger: Any, targets: Iterable[str], *, max_entries: int = 200_000
    ) -> None:
        """Seed from the newest observations of `targets` in `ledger` (read backwards)."""
        wanted = list(targets)
        markers = [f'"target_id":"{t}"'.encode() for t in wanted]

        def newest_first() -> Iterable[dict[str, Any]]:
            size = ledger.size()
            for seq in range(size - 1, max(-1, size - 1 - max_entries), -1):
                data = ledger.get(seq)
                if b'"kind":"browser"' not in data or not any(m in data for m in markers):
                    continue
                entry: dict[str, Any] = json.loads(data)
                if entry.get("type") == "observation":
                    entry.setdefault("seq", seq)
                    yield entry

        if wanted:
            self.seed(newest_first(), wanted)


def _steps_of(carried: Mapping[str, Any]) -> dict[str, StepBaseline]:
    out: dict[str, StepBaseline] = {}
    for step, value in carried.items():
        if isinstance(value, Mapping) and isinstance(value.get("fingerprint"), str):
            seq = value.get("observation")
            out[str(step)] = StepBaseline(
                str(value["fingerprint"]), seq if isinstance(seq, int) else None
            )
    return out


async def conclude(
    watch: DriftWatch | None,
    *,
    success: bool,
    failed: tuple[str, str] | None,
    baseline: JourneyBaseline | None,
    store: ArtifactStore | None,
) -> tuple[bool, dict[str, Any], dict[str, str]]:
    """After a journey: (is drift, the observation's ``drift`` field, artifacts to add).

    A success stores its fingerprints (the next baseline). A failure carries the baseline it
    was compared with; `failed` names the (step, action) that failed with ``step_failed``, the
    only failure that is assessed for drift.
    """
    record: dict[str, Any] = {}
    if watch is None:
        return False, record, {}
    if success:
        fingerprints = await watch.store(store)
        if fingerprints:
            record["fingerprints"] = fingerprints
        return False, record, {}
    if baseline is not None and baseline.steps:
        record["baseline"] = {step: b.to_dict() for step, b in sorted(baseline.steps.items())}
    if failed is None:
        return False, record, {}
    step, action = failed
    drift, evidence, current = await watch.assess(step, action, baseline)
    artifacts: dict[str, str] = {}
    compared = "baseline" in evidence and store is not None
    if current is not None:
        watch.fingerprints = {step: current}
        stored = await watch.store(store)
        if step in stored:
            evidence["fingerprint"] = stored[step]
            if compared:  # both sides of the comparison travel with the observation
                artifacts[stored[step]] = FINGERPRINT_KIND
    if compared:
        artifacts[str(evidence["baseline"]["fingerprint"])] = FINGERPRINT_KIND
    record["assessment"] = evidence
    return drift, record, artifacts
