"""Open data of `vigie central`: outages merged across vantages, and the monthly availability
table per vantage and merged (`/availability-monthly.csv`; definitions in docs/open-data.md).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from evidence.outages.availability import PARIS, period_bounds
from evidence.outages.watched import merged_period
from exporter.opendata import (
    MONTHLY_FIELDS,
    MonthRow,
    OpenData,
    OpenOutage,
    base_url,
    monthly_rows,
)

if TYPE_CHECKING:
    from aiohttp import web

    from config.settings import OpenDataSettings
    from evidence.outages.availability import AvailabilityIndex
    from exporter.central import CentralView

__all__ = ["CENTRAL_MONTHLY_FIELDS", "central_monthly_rows", "central_open_data"]

# `vigie central`: one row per vantage and one merged row ("*") per target and month.
CENTRAL_MONTHLY_FIELDS: tuple[tuple[str, str, str], ...] = (
    *MONTHLY_FIELDS[:3],
    ("vantage", "string", "Point d'observation ; « * » : tous ensemble (ligne fusionnée)"),
    (
        "monitored_s",
        "number",
        "Secondes observées ; ligne « * » : par au moins un point d'observation",
    ),
    (
        "corroborable_s",
        "number",
        (
            "Ligne « * » : secondes observées par assez de points d'observation à la fois pour "
            "corroborer une panne"
        ),
    ),
    (
        "down_s",
        "number",
        (
            "Secondes de panne confirmée ; ligne « * » : seulement la panne corroborée, vue au "
            "même moment par assez de points d'observation, chacun sur son réseau"
        ),
    ),
    (
        "uncorroborated_down_s",
        "number",
        (
            "Ligne « * » : secondes de panne vue par trop peu de points d'observation pour être "
            "corroborée (ni disponible ni en panne certaine)"
        ),
    ),
    ("degraded_s", "number", "Secondes de lenteur confirmée ; ligne « * » : corroborée"),
    MONTHLY_FIELDS[6],
    (
        "availability",
        "number",
        (
            "Part du temps observé sans panne (0 à 1) ; ligne « * » : sans panne corroborée, "
            "borne haute ; vide sans mesure"
        ),
    ),
    (
        "availability_low",
        "number",
        "Ligne « * » : part du temps observé sans panne d'aucun point d'observation, borne basse",
    ),
)


def central_monthly_rows(
    indexes: Mapping[str, tuple[AvailabilityIndex, dt.datetime]],
    targets: Mapping[str, str],
    min_vantages: int,
) -> list[MonthRow]:
    """Central's monthly table: each vantage's rows (as its own service counts them, up to
    its newest entry read) and, per target and month, one row merged across vantages ("*")."""
    rows: list[MonthRow] = []
    for vantage, (index, until) in indexes.items():
        rows.extend(
            dataclasses.replace(row, vantage=vantage) for row in monthly_rows(index, targets, until)
        )
    for target_id, name in targets.items():
        firsts = [
            (index.timelines[target_id].first_seen, until)
            for index, until in indexes.values()
            if target_id in index.timelines and index.timelines[target_id].first_seen is not None
        ]
        if not firsts:
            continue
        first = dt.datetime.fromtimestamp(min(f for f, _ in firsts if f is not None), dt.UTC)
        latest = max(until for _, until in firsts)
        for lo, hi in period_bounds(first, latest, "month"):
            month = lo.astimezone(PARIS).replace(day=1, hour=0, minute=0, second=0)
            seen = merged_period(indexes, target_id, month, hi, min_vantages)
            rows.append(
                MonthRow(
                    month=month.strftime("%Y-%m"),
                    target_id=target_id,
                    target_name=name,
                    vantage="*",
                    monitored_s=seen.monitored_s,
                    down_s=seen.down_s,
                    degraded_s=seen.degraded_s,
                    unmonitored_s=seen.unmonitored_s,
                    availability=seen.ratio,
                    corroborable_s=seen.corroborable_s,
                    uncorroborated_down_s=seen.uncorroborated_down_s,
                    availability_low=seen.ratio_low,
                )
            )
    rows.sort(key=lambda r: (r.month, r.target_id, r.vantage))
    return rows


def central_open_data(
    view: CentralView,
    request: web.Request,
    licence: OpenDataSettings,
    public_urls: Mapping[str, str] | None = None,
    monthly: Sequence[MonthRow] | None = None,
) -> OpenData:
    """The open data of `vigie central`: outages merged across vantages, and the `monthly`
    table of `central_monthly_rows` (from the vantages' ledgers; bundles are not counted;
    None: no ledger is configured, the table is not published).

    `public_urls`: vantage name -> its service's public address, for links to each vantage's
    evidence bundle of the outage."""
    from collections import Counter
    from urllib.parse import quote

    services = {k: v.rstrip("/") for k, v in (public_urls or {}).items()}

    from evidence.outages.tracker import causes_text_fr

    outages = []
    for group in sorted(view.outages, key=lambda g: (g.start, g.target_id)):
        causes: Counter[str] = Counter()
        for sighting in group.sightings:
            causes.update(sighting.record.causes)
        maintenance = next(
            (s.record.maintenance for s in group.sightings if s.record.maintenance), ""
        )
        outages.append(
            OpenOutage(
                id=f"{group.target_id}-{group.start.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}",
                target_id=group.target_id,
                target_name=view.names.get(group.target_id, group.target_id),
                kind="down",
                start=group.start,
                end=group.end,
                failed_checks=sum(s.record.failed_checks for s in group.sightings),
                causes=causes_text_fr(causes),
                maintenance=maintenance or "",
                vantages=group.vantages,
                evidence_path="",
                page_path="/",
                references=tuple(f"{s.vantage} : {s.record.id}" for s in group.sightings),
                review=" ; ".join(
                    f"{s.vantage} : {s.record.review.text_fr}"
                    for s in group.sightings
                    if s.record.review is not None
                ),
                evidence_urls=tuple(
                    f"{services[s.vantage]}/outages/{quote(s.record.id, safe='')}/evidence.zip"
                    for s in group.sightings
                    if s.vantage in services
                ),
            )
        )
    targets = dict(view.names)
    for outage in outages:
        targets.setdefault(outage.target_id, outage.target_id)
    return OpenData(
        title=view.title,
        publisher=view.title,
        source="central",
        base_url=base_url(request),
        generated_at=view.generated_at.replace(microsecond=0),
        licence=licence,
        outages=tuple(outages),
        targets=targets,
        monthly=None if monthly is None else tuple(monthly),
        monthly_fields=CENTRAL_MONTHLY_FIELDS,
        monthly_description=(
            "Une ligne par point d'observation (ses propres chiffres, comptés comme par son "
            "service, jusqu'à sa dernière entrée lue) et une ligne « * » par service et par mois, "
            "fusionnée : temps observé par au moins un point d'observation ; panne corroborée "
            f"quand au moins {view.min_vantages} points d'observation, chacun sur son réseau, "
            "étaient au même moment dans une panne qu'ils ont confirmée ; la panne vue de moins "
            "de points d'observation est publiée à part (uncorroborated_down_s). La "
            "disponibilité se situe entre availability_low et availability. Le temps que "
            "personne n'observait n'est compté ni disponible ni en panne."
        ),
    )
