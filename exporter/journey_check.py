"""`vigie check --journeys`: run each browser journey once and say what to fix when one fails.

It records nothing in the ledger (read only, for the baselines of the last successful runs);
captures go to the artifact store so the screenshot can be opened by its path.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from evidence.ledger.artifacts import FileArtifactStore
from evidence.ledger.entries import LedgerError
from evidence.ledger.opening import open_evidence
from probes.base import ProbeContext, ProbeRegistry, ProbeSettings
from probes.drift import FingerprintBook
from probes.kinds import default_factories

if TYPE_CHECKING:
    from config.settings import Settings
    from config.targets import Target
    from probes.observation import Observation

__all__ = ["diagnose", "load_baselines", "run_journey_check"]

log = structlog.get_logger("vigie.journeys")

_CHANGE_LABELS = {
    "links": "liens et boutons",
    "inputs": "champs",
    "forms": "formulaires",
    "landmarks": "structure (repères, titres)",
}


def load_baselines(settings: Settings, store: FileArtifactStore) -> tuple[FingerprintBook, str]:
    """The journeys' last successful fingerprints from the ledger, and a French note on them."""
    book = FingerprintBook(load=store.get)
    journeys = [t.id for t in settings.targets if t.kind == "browser"]
    try:
        ledger = open_evidence(settings).ledger
    except (LedgerError, OSError) as exc:
        return book, f"registre illisible ({exc}) : aucune référence pour comparer les pages"
    try:
        book.seed_from_ledger(ledger, journeys)
    finally:
        ledger.close()
    found = [t for t in journeys if book.baseline(t) is not None]
    return book, f"références (dernière réussite au registre) : {len(found)}/{len(journeys)}"


def diagnose(target: Target, obs: Observation, store: FileArtifactStore) -> dict[str, Any]:
    """What a person needs to fix a failed journey: verdict, step, selector, changes, capture."""
    result: dict[str, Any] = {
        "target": target.id,
        "name": target.display_name,
        "outcome": str(obs.outcome),
        "ok": obs.success,
    }
    if obs.success:
        return result
    failed = next((s for s in obs.steps if not s.ok), None)
    result["step"] = failed.name if failed else None
    step = next((s for s in target.steps if failed and s.label == failed.name), None)
    if step is not None:
        result["action"] = step.action
        result["selector"] = step.argument
    result["error"] = obs.error
    assessment = obs.drift.get("assessment") or {}
    if obs.outcome == "journey_drift":
        result["verdict"] = "drift"
    elif assessment and any("no fingerprint" in r for r in assessment.get("reasons", ())):
        result["verdict"] = "unknown"
    else:
        result["verdict"] = "failure"
    result["reasons"] = list(assessment.get("reasons") or ())
    result["changes"] = assessment.get("changes") or {}
    shots = [sha for sha, kind in obs.artifacts.items() if kind == "screenshot"]
    result["screenshot"] = str(store.path(shots[0])) if shots else None
    return result


_VERDICTS = {
    "drift": (
        "ressemble à un changement de la page (parcours à revoir) : la page s'affiche "
        "normalement mais sa structure a changé depuis la dernière réussite"
    ),
    "unknown": (
        "échec sur une page qui semble normale, mais aucune réussite antérieure n'est au "
        "registre pour comparer : vérifier la capture"
    ),
    "failure": "ressemble à une vraie panne du site (pas à un changement de la page)",
}


def _print_text(results: Sequence[dict[str, Any]], note: str) -> None:
    print(f"Parcours navigateur — {note}")
    for r in results:
        if r["ok"]:
            print(f"\nOK     {r['name']} ({r['target']})")
            continue
        print(f"\nÉCHEC  {r['name']} ({r['target']}) : {r['outcome']}")
        print(f"       {_VERDICTS[r['verdict']]}")
        if r.get("step"):
            selector = f" — {r.get('action')} : {r['selector']}" if r.get("selector") else ""
            print(f"       étape à regarder : {r['step']}{selector}")
        if r.get("error"):
            print(f"       erreur : {r['error']}")
        for key, change in r["changes"].items():
            label = _CHANGE_LABELS.get(key, key)
            if change.get("removed"):
                print(f"       {label} disparus : {', '.join(change['removed'])}")
            if change.get("added"):
                print(f"       {label} nouveaux : {', '.join(change['added'])}")
        if r["verdict"] != "drift" and r["reasons"]:
            print(f"       pourquoi : {'; '.join(r['reasons'])}")
        if r.get("screenshot"):
            print(f"       capture d'écran : {r['screenshot']}")


def run_journey_check(
    settings: Settings,
    targets: Sequence[Target],
    probe_settings: Callable[[Settings, Any], ProbeSettings],
    *,
    fmt: str = "table",
) -> int:
    """Run each browser journey of `targets` once; print a diagnosis; 0 if all succeed, else 1."""
    journeys = [t for t in targets if t.kind == "browser"]
    if not journeys:
        print("Aucun parcours navigateur (kind: browser) dans la configuration.")
        return 0
    store = FileArtifactStore(Path(settings.ledger.artifacts))
    book, note = load_baselines(settings, store)

    async def run_all() -> list[Observation]:
        registry = ProbeRegistry(probe_settings(settings, store), default_factories())
        try:
            out = []
            for target in journeys:  # one at a time: the diagnosis follows the order of the file
                ctx = ProbeContext(
                    target=target,
                    timeout=settings.timeout_of(target),
                    baseline=book.baseline(target.id),
                )
                out.append(await registry.check(ctx))
            return out
        finally:
            await registry.aclose()

    observations = asyncio.run(run_all())
    results = [diagnose(t, o, store) for t, o in zip(journeys, observations, strict=True)]
    if fmt == "json":
        print(json.dumps({"note": note, "journeys": results}, ensure_ascii=False, indent=2))
    else:
        _print_text(results, note)
    return 0 if all(r["ok"] for r in results) else 1
