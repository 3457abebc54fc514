"""Builds Vigie's three Grafana dashboards as plain dicts (classic JSON model, schema 41).

It only describes dashboards: it never talks to Grafana or Prometheus, and the JSON it writes
is byte-for-byte reproducible (a drift test compares it with the committed files).

Why it is long: every dashboard is declared here as data, panel by panel; one file generates all
the JSON under provisioning/, which `python -m dashboards --check` compares byte for byte.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "DASHBOARD_FILES",
    "FOLDER_TITLE",
    "FOLDER_UID",
    "PanelQuery",
    "all_dashboards",
    "check_directory",
    "panel_queries",
    "render",
    "write_directory",
]

Json = dict[str, Any]

SCHEMA_VERSION = 41
FOLDER_UID = "vigie"
FOLDER_TITLE = "Vigie"
OVERVIEW_UID = "vigie-overview"
SERVICE_UID = "vigie-service"
HEALTH_UID = "vigie-probe-health"
DASHBOARD_FILES = {
    OVERVIEW_UID: "vigie-overview.json",
    SERVICE_UID: "vigie-service.json",
    HEALTH_UID: "vigie-probe-health.json",
}
TAG = "vigie"
# Tags of the outage annotations pushed by `vigie dashboards push` (exporter/grafana.py).
OUTAGE_TAG = "vigie-panne"
TARGET_TAG_PREFIX = "cible:"

DS: Json = {"type": "prometheus", "uid": "${datasource}"}
GRAFANA_DS: Json = {"type": "grafana", "uid": "-- Grafana --"}

# Label filters every per-target query carries (Grafana substitutes the variables).
SEL = 'target=~"$target", vantage=~"$vantage"'
# Filters of the series that describe the probe itself (no `target` label).
PROBE_SEL = 'job=~"$job", vantage=~"$vantage"'

# 1 while a vantage's own network is up (its witness sites answer), 0 when it is cut off.
VANTAGE_ONLINE = 'min by (vantage) (vigie_vantage_online{vantage=~"$vantage"})'
# The probe's own incidents: counter of each kind and its French name in legends.
PROBE_INCIDENTS = (
    ("vigie_ledger_write_errors_total", "Écriture du registre"),
    ("vigie_tsa_failures_total", "Horodatage"),
    ("vigie_clock_jumps_total", "Horloge"),
)

# State code: the worst state wins when several vantages watch the same target.
STATE_CODES = (("up", 1), ("recovering", 2), ("degraded", 3), ("failing", 4), ("down", 5))
STATE_TEXT: Mapping[int, tuple[str, str]] = {
    0: ("Inconnu (pas encore de mesure)", "text"),
    1: ("En service", "green"),
    2: ("Rétabli, sous surveillance", "blue"),
    3: ("Ralenti", "yellow"),
    4: ("Échecs en cours (panne non confirmée)", "orange"),
    5: ("En panne", "red"),
}

PHASE_NAMES = {
    "resolve": "Recherche de l'adresse (DNS)",
    "connect": "Connexion au serveur",
    "tls": "Établissement du chiffrement (TLS)",
    "processing": "Attente de la réponse du serveur",
    "transfer": "Téléchargement de la page",
}

OUTCOME_NAMES = {
    "ok": "Réussi",
    "dns_error": "Adresse introuvable (DNS)",
    "connect_error": "Connexion impossible",
    "tls_error": "Erreur de chiffrement (TLS)",
    "timeout": "Pas de réponse dans le délai",
    "http_status": "Code de réponse inattendu",
    "content_mismatch": "Page inattendue (contenu)",
    "browser_error": "Erreur dans le navigateur",
    "step_failed": "Étape du parcours impossible",
    "too_large": "Réponse trop volumineuse",
    "vantage_offline": "Réseau de la sonde coupé (non compté)",
    "protocol_error": "Erreur de protocole",
    "redirect_loop": "Boucle de redirection",
    "blocked": "Action bloquée (lecture seule)",
}

OUTAGE_KIND_NAMES = {"down": "Panne", "degraded": "Ralentissement"}

AVAILABILITY_HELP = (
    "Part du temps pendant laquelle le dernier contrôle du service était réussi. "
    "Calcul : moyenne, sur la période, de l'indicateur « dernier contrôle réussi » "
    "(1 = oui, 0 = non) que Prometheus relève toutes les 15 secondes. "
    "Nous avons choisi ce calcul plutôt qu'un calcul fondé sur les seules pannes confirmées : "
    "il compte aussi les échecs brefs, trop courts pour ouvrir une panne, que les usagers "
    "subissent quand même ; il est donc plus sévère pour le service. "
    "Les moments où Vigie ou Prometheus ne fonctionnaient pas ne comptent ni comme disponibles "
    "ni comme indisponibles. Quand le réseau de la sonde elle-même est coupé, la dernière "
    "mesure connue du service est conservée. Les pannes confirmées sont comptées à part. "
    "Le rapport de preuves (vigie export) fait foi : il recalcule la disponibilité à partir "
    "du registre signé."
)


# --- small builders --------------------------------------------------------------------------


def _query(
    expr: str,
    legend: str = "",
    *,
    ref: str = "A",
    instant: bool = False,
    table: bool = False,
) -> Json:
    return {
        "datasource": DS,
        "editorMode": "code",
        "expr": expr,
        "format": "table" if table else "time_series",
        "instant": instant,
        "legendFormat": legend,
        "range": not instant,
        "refId": ref,
    }


def _thresholds(*steps: tuple[str, float | None]) -> Json:
    return {
        "mode": "absolute",
        "steps": [{"color": color, "value": value} for color, value in steps],
    }


def _value_map(values: Mapping[str, tuple[str, str]]) -> Json:
    return {
        "type": "value",
        "options": {
            key: {"color": color, "index": index, "text": text}
            for index, (key, (text, color)) in enumerate(values.items())
        },
    }


def _range_map(start: float, end: float, text: str, color: str, index: int) -> Json:
    return {
        "type": "range",
        "options": {
            "from": start,
            "to": end,
            "result": {"color": color, "index": index, "text": text},
        },
    }


def _state_mappings() -> list[Json]:
    return [_value_map({str(code): pair for code, pair in STATE_TEXT.items()})]


def _rename(names: Mapping[str, str]) -> list[Json]:
    return [
        {
            "matcher": {"id": "byName", "options": key},
            "properties": [{"id": "displayName", "value": value}],
        }
        for key, value in names.items()
    ]


def _with_name(expr: str) -> str:
    """Add the target's display name (`name` label) to every series of `expr`."""
    return (
        f"({expr})\n  * on (target) group_left (name)\n"
        f"  topk by (target) (1, max by (target, name) (vigie_target_info{{{SEL}}}))"
    )


def _state_code() -> str:
    parts = [f'vigie_target_state{{state="{s}", {SEL}}} * {code}' for s, code in STATE_CODES]
    parts.append(f'vigie_target_state{{state="unknown", {SEL}}} * 0')
    return "max by (target) (\n    " + "\n    or ".join(parts) + "\n  )"


def _incident_queries(window: str, *, instant: bool) -> list[Json]:
    """One query per kind of probe incident (refs A, B, C): how many happened over `window`."""
    return [
        _query(
            f"sum(increase({metric}{{{PROBE_SEL}}}[{window}]))",
            legend,
            ref=ref,
            instant=instant,
        )
        for ref, (metric, legend) in zip("ABC", PROBE_INCIDENTS, strict=True)
    ]


def _availability(window: str) -> str:
    return f"avg by (target) (avg_over_time(probe_success{{{SEL}}}[{window}]))"


def _service_link() -> list[Json]:
    return [
        {
            "targetBlank": False,
            "title": "Voir le détail de ce service",
            "url": f"/d/{SERVICE_UID}/?var-target=${{__field.labels.target}}"
            "&${datasource:queryparam}&${vantage:queryparam}&${__url_time_range}",
        }
    ]


@dataclasses.dataclass
class _Layout:
    """Places panels left to right on Grafana's 24-column grid, wrapping to new rows."""

    x: int = 0
    y: int = 0
    row_height: int = 0
    next_id: int = 1

    def place(self, width: int, height: int) -> Json:
        if self.x + width > 24:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        pos = {"h": height, "w": width, "x": self.x, "y": self.y}
        self.x += width
        self.row_height = max(self.row_height, height)
        return pos

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def row(self, title: str) -> Json:
        if self.x:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        panel = {
            "collapsed": False,
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
            "id": self.new_id(),
            "panels": [],
            "title": title,
            "type": "row",
        }
        self.y += 1
        return panel


def _panel(  # noqa: PLR0917 - what/title/help/size/queries read best in that order
    layout: _Layout,
    kind: str,
    title: str,
    description: str,
    size: tuple[int, int],
    targets: Sequence[Json],
    *,
    unit: str | None = None,
    decimals: int | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    thresholds: Json | None = None,
    mappings: Sequence[Json] = (),
    custom: Json | None = None,
    color: Json | None = None,
    overrides: Sequence[Json] = (),
    options: Json | None = None,
    links: Sequence[Json] = (),
    no_value: str | None = None,
    interval: str | None = None,
    transformations: Sequence[Json] = (),
) -> Json:
    defaults: Json = {}
    if color is not None:
        defaults["color"] = color
    if custom is not None:
        defaults["custom"] = custom
    if decimals is not None:
        defaults["decimals"] = decimals
    if links:
        defaults["links"] = list(links)
    defaults["mappings"] = list(mappings)
    if maximum is not None:
        defaults["max"] = maximum
    if minimum is not None:
        defaults["min"] = minimum
    if no_value is not None:
        defaults["noValue"] = no_value
    defaults["thresholds"] = thresholds or _thresholds(("green", None))
    if unit is not None:
        defaults["unit"] = unit
    panel: Json = {
        "datasource": DS,
        "description": description,
        "fieldConfig": {"defaults": defaults, "overrides": list(overrides)},
        "gridPos": layout.place(*size),
        "id": layout.new_id(),
    }
    if interval is not None:
        panel["interval"] = interval
    panel["options"] = options or {}
    panel["targets"] = list(targets)
    panel["title"] = title
    if transformations:
        panel["transformations"] = list(transformations)
    panel["type"] = kind
    return panel


def _stat_options(
    *, text_mode: str = "value_and_name", color_mode: str = "background", graph: bool = False
) -> Json:
    return {
        "colorMode": color_mode,
        "graphMode": "area" if graph else "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "percentChangeColorMode": "standard",
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "showPercentChange": False,
        "textMode": text_mode,
        "wideLayout": True,
    }


def _stat(
    layout: _Layout,
    title: str,
    description: str,
    size: tuple[int, int],
    targets: Sequence[Json],
    *,
    text_mode: str = "value_and_name",
    color_mode: str = "background",
    color: Json | None = None,
    thresholds: Json | None = None,
    unit: str | None = None,
    decimals: int | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    mappings: Sequence[Json] = (),
    links: Sequence[Json] = (),
    no_value: str | None = None,
) -> Json:
    """A stat panel of the last values, coloured by its thresholds unless `color` is given."""
    return _panel(
        layout,
        "stat",
        title,
        description,
        size,
        targets,
        unit=unit,
        decimals=decimals,
        minimum=minimum,
        maximum=maximum,
        thresholds=thresholds,
        mappings=mappings,
        color=color or {"mode": "thresholds"},
        options=_stat_options(text_mode=text_mode, color_mode=color_mode),
        links=links,
        no_value=no_value,
    )


def _age_stat(  # noqa: PLR0917 - one stat panel, its words and its limits
    layout: _Layout,
    title: str,
    description: str,
    metric: str,
    limits: tuple[float, float],
    no_value: str,
) -> Json:
    """A stat panel: how long ago the Unix time in `metric` was (orange, then red past limits)."""
    orange, red = limits
    return _stat(
        layout,
        title,
        description,
        (4, 5),
        [_query(f"time() - max({metric}{{{PROBE_SEL}}} > 0)", "Il y a", instant=True)],
        text_mode="value",
        unit="dtdurations",
        thresholds=_thresholds(("green", None), ("orange", orange), ("red", red)),
        no_value=no_value,
    )


def _series_options(*, legend: str = "list", sort: str = "desc") -> Json:
    return {
        "legend": {"calcs": [], "displayMode": legend, "placement": "bottom", "showLegend": True},
        "tooltip": {"hideZeros": False, "mode": "multi", "sort": sort},
    }


def _line(
    *,
    fill: int = 10,
    stacked: bool = False,
    bars: bool = False,
    points: bool = False,
    step: bool = False,
) -> Json:
    return {
        "axisBorderShow": False,
        "axisCenteredZero": False,
        "axisColorMode": "text",
        "axisLabel": "",
        "axisPlacement": "auto",
        "barAlignment": 0,
        "drawStyle": "bars" if bars else ("points" if points else "line"),
        "fillOpacity": fill,
        "gradientMode": "none",
        "hideFrom": {"legend": False, "tooltip": False, "viz": False},
        "insertNulls": False,
        "lineInterpolation": "stepAfter" if step else "linear",
        "lineWidth": 1,
        "pointSize": 5,
        "scaleDistribution": {"type": "linear"},
        "showPoints": "always" if points else "never",
        "spanNulls": False,
        "stacking": {"group": "A", "mode": "normal" if stacked else "none"},
        "thresholdsStyle": {"mode": "off"},
    }


def _timeline_options(*, show_value: str = "never") -> Json:
    return {
        "alignValue": "left",
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False},
        "mergeValues": True,
        "rowHeight": 0.9,
        "showValue": show_value,
        "tooltip": {"hideZeros": False, "mode": "single", "sort": "none"},
    }


def _timeline_custom() -> Json:
    return {
        "fillOpacity": 80,
        "hideFrom": {"legend": False, "tooltip": False, "viz": False},
        "insertNulls": False,
        "lineWidth": 0,
        "spanNulls": False,
    }


def _timeseries(
    layout: _Layout,
    title: str,
    description: str,
    size: tuple[int, int],
    targets: Sequence[Json],
    *,
    line: Json,
    unit: str | None = None,
    decimals: int | None = None,
    maximum: float | None = None,
    overrides: Sequence[Json] = (),
    interval: str | None = None,
    legend: str = "list",
) -> Json:
    """A time-series panel drawn from zero with `line` (see `_line`), one colour per series."""
    return _panel(
        layout,
        "timeseries",
        title,
        description,
        size,
        targets,
        unit=unit,
        decimals=decimals,
        minimum=0,
        maximum=maximum,
        custom=line,
        color={"mode": "palette-classic"},
        overrides=overrides,
        options=_series_options(legend=legend),
        interval=interval,
    )


def _timeline(
    layout: _Layout,
    title: str,
    description: str,
    size: tuple[int, int],
    targets: Sequence[Json],
    *,
    mappings: Sequence[Json],
    thresholds: Json,
    show_value: str = "never",
    links: Sequence[Json] = (),
) -> Json:
    """A state-timeline panel: one band per series, coloured by its value mappings."""
    return _panel(
        layout,
        "state-timeline",
        title,
        description,
        size,
        targets,
        mappings=mappings,
        thresholds=thresholds,
        color={"mode": "thresholds"},
        custom=_timeline_custom(),
        options=_timeline_options(show_value=show_value),
        links=links,
    )


def _text(layout: _Layout, title: str, content: str, size: tuple[int, int]) -> Json:
    return {
        "gridPos": layout.place(*size),
        "id": layout.new_id(),
        "options": {
            "code": {"language": "plaintext", "showLineNumbers": False, "showMiniMap": False},
            "content": content,
            "mode": "markdown",
        },
        "title": title,
        "type": "text",
    }


# --- variables, annotations, links -----------------------------------------------------------


def _datasource_variable() -> Json:
    return {
        "current": {},
        "description": "La base Prometheus qui reçoit les mesures de Vigie.",
        "hide": 0,
        "includeAll": False,
        "label": "Source des mesures",
        "multi": False,
        "name": "datasource",
        "options": [],
        "query": "prometheus",
        "refresh": 1,
        "regex": "",
        "type": "datasource",
    }


def _query_variable(
    name: str,
    label: str,
    query: str,
    description: str,
    *,
    multi: bool,
    all_value: str | None = ".*",
    hide: int = 0,
) -> Json:
    variable: Json = {
        "current": {"text": "All", "value": "$__all"} if multi else {},
        "datasource": DS,
        "definition": query,
        "description": description,
        "hide": hide,
        "includeAll": multi,
        "label": label,
        "multi": multi,
        "name": name,
        "options": [],
        "query": {
            "qryType": 1,
            "query": query,
            "refId": "PrometheusVariableQueryEditor-VariableQuery",
        },
        "refresh": 2,
        "regex": "",
        "sort": 1,
        "type": "query",
    }
    if multi and all_value is not None:
        variable["allValue"] = all_value
    return variable


def _templating(*, single_target: bool) -> Json:
    target = _query_variable(
        "target",
        "Service surveillé",
        "label_values(vigie_target_info, target)",
        "L'identifiant du service (la page ou le parcours) que Vigie contrôle.",
        multi=not single_target,
    )
    vantage = _query_variable(
        "vantage",
        "Point de mesure",
        "label_values(vigie_target_info, vantage)",
        "L'endroit d'où Vigie fait ses contrôles (une même association peut en avoir plusieurs).",
        multi=True,
    )
    job = _query_variable(
        "job",
        "Tâche Prometheus",
        "label_values(vigie_build_info, job)",
        "Le nom de la collecte Prometheus de Vigie (réglage technique).",
        multi=True,
        all_value=".+",
        hide=2,
    )
    return {"list": [_datasource_variable(), target, vantage, job]}


def _annotations(*, outages: bool, single_target: bool) -> Json:
    items: list[Json] = [
        {
            "builtIn": 1,
            "datasource": GRAFANA_DS,
            "enable": True,
            "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts",
            "type": "dashboard",
        }
    ]
    if outages:
        items += [
            {
                "datasource": DS,
                "enable": True,
                "expr": f"max by (target, kind) (vigie_outage_open{{{SEL}}}) == 1",
                "hide": False,
                "iconColor": "red",
                "name": "Pannes (mesures en direct)",
                "step": "60s",
                "tagKeys": "target,kind",
                "textFormat": "Panne confirmée en cours sur {{target}} ({{kind}})",
                "titleFormat": "Panne",
                "useValueForTime": False,
            },
            {
                "datasource": DS,
                "enable": True,
                "expr": f"max by (target) (vigie_maintenance{{{SEL}}}) == 1",
                "hide": False,
                "iconColor": "purple",
                "name": "Maintenances annoncées",
                "step": "60s",
                "tagKeys": "target",
                "textFormat": "Maintenance annoncée par l'administration sur {{target}}",
                "titleFormat": "Maintenance annoncée",
                "useValueForTime": False,
            },
            {
                "datasource": GRAFANA_DS,
                "enable": True,
                "hide": False,
                "iconColor": "dark-red",
                "name": "Pannes du registre de preuves",
                "target": {
                    "limit": 500,
                    "matchAny": False,
                    # A multi-valued $target cannot become one tag: filter only when single.
                    "tags": [OUTAGE_TAG, f"{TARGET_TAG_PREFIX}$target"]
                    if single_target
                    else [OUTAGE_TAG],
                    "type": "tags",
                },
            },
        ]
    return {"list": items}


def _links() -> list[Json]:
    return [
        {
            "asDropdown": False,
            "icon": "external link",
            "includeVars": True,
            "keepTime": True,
            "tags": [TAG],
            "targetBlank": False,
            "title": "Tableaux Vigie",
            "tooltip": "",
            "type": "dashboards",
            "url": "",
        }
    ]


def _dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[Json],
    *,
    single_target: bool = False,
    outage_annotations: bool = False,
    time_from: str = "now-24h",
) -> Json:
    return {
        "annotations": _annotations(outages=outage_annotations, single_target=single_target),
        "description": description,
        "editable": False,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": _links(),
        "panels": panels,
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "tags": [TAG],
        "templating": _templating(single_target=single_target),
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "timezone": "Europe/Paris",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "monday",
    }


# --- panels shared by the overview and the per-service dashboard -----------------------------


def _state_stat(layout: _Layout, size: tuple[int, int], *, text_mode: str) -> Json:
    return _stat(
        layout,
        "État actuel",
        "Ce que Vigie constate en ce moment pour chaque service. « En panne » : plusieurs "
        "contrôles de suite ont échoué, la panne est confirmée et enregistrée comme preuve. "
        "« Échecs en cours » : un ou deux contrôles ont échoué, Vigie vérifie avant de "
        "conclure. « Ralenti » : le service répond, mais trop lentement. « Rétabli, sous "
        "surveillance » : le service répond de nouveau, Vigie attend confirmation.",
        size,
        [_query(_with_name(_state_code()), "{{name}}", instant=True)],
        text_mode=text_mode,
        mappings=_state_mappings(),
        thresholds=_thresholds(("text", None)),
        links=_service_link(),
        no_value="Aucun service",
    )


def _availability_stat(
    layout: _Layout,
    window: str,
    label: str,
    size: tuple[int, int],
    *,
    text_mode: str,
    period: str | None = None,
    no_value: str | None = "Pas encore de mesure",
) -> Json:
    """Availability of each service over `window`, named `label` (`period` in the help text)."""
    return _stat(
        layout,
        f"Disponibilité — {label}",
        f"Disponibilité de chaque service sur {period or label}. {AVAILABILITY_HELP}",
        size,
        [_query(_with_name(_availability(window)), "{{name}}", instant=True)],
        text_mode=text_mode,
        color_mode="value",
        unit="percentunit",
        decimals=2,
        minimum=0,
        maximum=1,
        thresholds=_thresholds(("red", None), ("orange", 0.95), ("green", 0.99)),
        links=_service_link(),
        no_value=no_value,
    )


def _state_timeline(layout: _Layout, size: tuple[int, int]) -> Json:
    return _timeline(
        layout,
        "Historique de l'état",
        "L'état de chaque service au fil du temps : chaque bande de couleur montre quand le "
        "service fonctionnait (vert), était ralenti (jaune), avait des échecs non encore "
        "confirmés (orange) ou était en panne (rouge). Survolez une bande pour voir l'heure.",
        size,
        [_query(_with_name(_state_code()), "{{name}}")],
        mappings=_state_mappings(),
        thresholds=_thresholds(("text", None)),
        links=_service_link(),
    )


def _open_outages_table(layout: _Layout, size: tuple[int, int]) -> Json:
    expr = _with_name(
        f"(time() - max by (target, kind) (vigie_outage_started_timestamp_seconds{{{SEL}}}))\n"
        f"  and on (target, kind) (max by (target, kind) (vigie_outage_open{{{SEL}}}) == 1)"
    )
    return _panel(
        layout,
        "table",
        "Pannes en cours",
        "Les pannes confirmées qui ne sont pas terminées, avec leur durée jusqu'ici. Une panne "
        "commence au premier contrôle raté et se termine au premier contrôle réussi. Chaque "
        "panne a une page de preuves sur la page d'état de Vigie.",
        size,
        [_query(expr, "", instant=True, table=True)],
        unit="dtdurations",
        thresholds=_thresholds(("red", None)),
        custom={"align": "auto", "cellOptions": {"type": "auto"}, "inspect": False},
        overrides=[
            {
                "matcher": {"id": "byName", "options": "Nature"},
                "properties": [
                    {
                        "id": "mappings",
                        "value": [
                            _value_map(
                                {
                                    "down": (OUTAGE_KIND_NAMES["down"], "red"),
                                    "degraded": (OUTAGE_KIND_NAMES["degraded"], "yellow"),
                                }
                            )
                        ],
                    },
                    {"id": "custom.cellOptions", "value": {"type": "color-text"}},
                ],
            },
            {
                "matcher": {"id": "byName", "options": "Durée jusqu'ici"},
                "properties": [{"id": "custom.cellOptions", "value": {"type": "color-text"}}],
            },
        ],
        options={
            "cellHeight": "sm",
            "footer": {"countRows": False, "fields": "", "reducer": ["sum"], "show": False},
            "showHeader": True,
        },
        no_value="Aucune panne en cours",
        links=_service_link(),
        transformations=[
            {
                "id": "organize",
                "options": {
                    "excludeByName": {"Time": True, "target": True},
                    "indexByName": {"name": 0, "kind": 1, "Value": 2},
                    "renameByName": {
                        "Value": "Durée jusqu'ici",
                        "kind": "Nature",
                        "name": "Service",
                    },
                },
            }
        ],
    )


def _quantile(quantile: float) -> str:
    return (
        f"histogram_quantile({quantile}, sum by (target, le) "
        f"(rate(vigie_probe_duration_seconds_bucket{{{SEL}}}[$__rate_interval])))"
    )


def _response_time(layout: _Layout, size: tuple[int, int]) -> Json:
    return _timeseries(
        layout,
        "Temps de réponse (médian et lent)",
        "Combien de temps un contrôle complet prend. « Médian » : la moitié des contrôles ont "
        "été plus rapides. « Lent (95 %) » : 95 contrôles sur 100 ont été plus rapides, les 5 "
        "restants plus lents ; c'est ce que vivent les usagers les moins chanceux. Calculé sur "
        "des fenêtres d'au moins 10 minutes, à partir de toutes les mesures (pas seulement la "
        "dernière).",
        size,
        [
            _query(_with_name(_quantile(0.5)), "{{name}} — médian", ref="A"),
            _query(_with_name(_quantile(0.95)), "{{name}} — lent (95 %)", ref="B"),
        ],
        line=_line(),
        unit="s",
        legend="table",
        interval="10m",
    )


def _vantage_stat(layout: _Layout, size: tuple[int, int]) -> Json:
    return _stat(
        layout,
        "Réseau de la sonde",
        "Vigie vérifie en permanence des sites témoins indépendants (par exemple "
        "service-public.fr). S'ils sont tous injoignables en même temps, c'est la connexion de "
        "la sonde qui est coupée, pas le service surveillé : ces moments ne sont jamais comptés "
        "comme des pannes.",
        size,
        [_query(VANTAGE_ONLINE, "{{vantage}}", instant=True)],
        mappings=[
            _value_map(
                {
                    "1": ("Connecté", "green"),
                    "0": ("Coupé : mesures suspendues", "red"),
                }
            )
        ],
        thresholds=_thresholds(("red", None), ("green", 1)),
        no_value="Sonde muette",
    )


def _vantages_seeing_stat(layout: _Layout, size: tuple[int, int]) -> Json:
    """Per target in outage: how many vantages (with their own network up) see it down."""
    seen = (
        f'count by (target) ((max by (vantage, target) (vigie_outage_open{{kind="down", {SEL}}}) '
        "== 1) and on (vantage) (max by (vantage) (vigie_vantage_online) == 1))"
    )
    return _stat(
        layout,
        "Pannes en cours : vues depuis N points d'observation",
        "Pour chaque service en panne confirmée, le nombre de points d'observation (sondes "
        "installées sur des réseaux différents) qui voient la panne en ce moment. Une panne "
        "vue depuis au moins 2 points d'observation est corroborée : elle ne peut pas être "
        "attribuée à la connexion d'une seule sonde. Une sonde dont la connexion est coupée "
        "n'est pas comptée.",
        size,
        [_query(_with_name(seen), "{{name}}", instant=True)],
        decimals=0,
        thresholds=_thresholds(("orange", None), ("red", 2)),
        no_value="Aucune panne en cours",
        links=_service_link(),
    )


def _collection_stat(layout: _Layout, size: tuple[int, int]) -> Json:
    return _stat(
        layout,
        "Sonde joignable",
        "Prometheus, la base qui garde l'historique des mesures, arrive-t-il à lire les mesures "
        "de Vigie ? Si ce n'est pas le cas, les tableaux ne se mettent plus à jour : ce n'est "
        "pas une panne du service surveillé.",
        size,
        [_query(f"min by (vantage) (up{{{PROBE_SEL}}})", "{{vantage}}", instant=True)],
        mappings=[_value_map({"1": ("Oui", "green"), "0": ("Non", "red")})],
        thresholds=_thresholds(("red", None), ("green", 1)),
        no_value="Aucune sonde",
    )


def _outcomes_chart(
    layout: _Layout,
    title: str,
    description: str,
    size: tuple[int, int],
    selector: str,
    *,
    decimals: int | None = None,
    overrides: Sequence[Json] = (),
) -> Json:
    """Checks of `selector` per 5-minute bar, stacked by outcome (named in French)."""
    return _timeseries(
        layout,
        title,
        description,
        size,
        [
            _query(
                f"sum by (outcome) (increase(vigie_probes_total{{{selector}}}[$__interval]))",
                "{{outcome}}",
            )
        ],
        line=_line(fill=80, stacked=True, bars=True),
        unit="short",
        decimals=decimals,
        overrides=[*_rename(OUTCOME_NAMES), *overrides],
        interval="5m",
    )


# --- "Vigie — Vue d'ensemble" ----------------------------------------------------------------

_OVERVIEW_INTRO = """\
**Vigie contrôle automatiquement, jour et nuit, que les services en ligne de l'administration \
fonctionnent**, comme le ferait un usager (sans jamais rien envoyer ni créer de compte).

* **État actuel** : ce que Vigie constate maintenant. Cliquez sur un service pour son détail.
* **Disponibilité** : la part du temps où le service a fonctionné (100 % = jamais en panne).
* **Pannes** : une panne est *confirmée* après plusieurs contrôles ratés de suite ; chacune est \
enregistrée avec ses preuves (captures d'écran, horodatage signé) pour d'éventuels recours.

Les heures sont celles de Paris. Survolez le « i » d'un panneau pour savoir comment il est calculé.
"""


def overview() -> Json:
    """The association's front page: is it working now, how often did it fail, and when."""
    lay = _Layout()
    panels: list[Json] = [_text(lay, "Comment lire ce tableau de bord", _OVERVIEW_INTRO, (24, 5))]
    panels.append(lay.row("Maintenant"))
    panels.append(_state_stat(lay, (12, 6), text_mode="value_and_name"))
    panels.append(
        _stat(
            lay,
            "Pannes en cours",
            "Nombre de pannes confirmées qui ne sont pas terminées, tous services confondus. "
            "Leur liste est plus bas, dans « Pannes en cours ».",
            (4, 6),
            [
                _query(
                    f"count(max by (target, kind) (vigie_outage_open{{{SEL}}}) == 1) or vector(0)",
                    "Pannes en cours",
                    instant=True,
                )
            ],
            text_mode="value",
            thresholds=_thresholds(("green", None), ("red", 1)),
        )
    )
    panels.append(_vantage_stat(lay, (4, 6)))
    panels.append(_collection_stat(lay, (4, 6)))

    panels.append(lay.row("Disponibilité"))
    for window, label in (("24h", "24 heures"), ("7d", "7 jours"), ("30d", "30 jours")):
        panels.append(_availability_stat(lay, window, label, (8, 7), text_mode="value_and_name"))
    panels.append(
        _availability_stat(
            lay,
            "$__range",
            "période affichée",
            (8, 7),
            text_mode="value_and_name",
            period="la période choisie en haut à droite de la page",
            no_value=None,
        )
    )
    panels.append(
        _stat(
            lay,
            "Pannes confirmées — 30 jours",
            "Nombre de pannes confirmées ouvertes ces 30 derniers jours, par service (les "
            "ralentissements ne sont pas comptés ici).",
            (8, 7),
            [
                _query(
                    _with_name(
                        "round(sum by (target) "
                        f'(increase(vigie_outages_total{{kind="down", {SEL}}}[30d])))'
                    ),
                    "{{name}}",
                    instant=True,
                )
            ],
            color_mode="value",
            decimals=0,
            thresholds=_thresholds(("green", None), ("orange", 1), ("red", 5)),
            links=_service_link(),
        )
    )
    panels.append(
        _stat(
            lay,
            "Durée cumulée des pannes — 30 jours",
            "Temps total passé en panne confirmée ces 30 derniers jours, par service, du premier "
            "contrôle raté au premier contrôle réussi. Seules les pannes terminées sont comptées "
            "ici ; une panne en cours apparaît dans « Pannes en cours ».",
            (8, 7),
            [
                _query(
                    _with_name(
                        "sum by (target) "
                        f'(increase(vigie_outage_seconds_total{{kind="down", {SEL}}}[30d]))'
                    ),
                    "{{name}}",
                    instant=True,
                )
            ],
            color_mode="value",
            unit="dtdurations",
            thresholds=_thresholds(("green", None), ("orange", 60), ("red", 3600)),
            links=_service_link(),
        )
    )

    panels.append(lay.row("Pannes"))
    panels.append(_open_outages_table(lay, (24, 6)))
    panels.append(_vantages_seeing_stat(lay, (24, 5)))
    panels.append(_state_timeline(lay, (24, 9)))

    panels.append(lay.row("Temps de réponse"))
    panels.append(_response_time(lay, (24, 9)))
    return _dashboard(
        OVERVIEW_UID,
        "Vigie — Vue d'ensemble",
        "Les services surveillés par Vigie fonctionnent-ils ? Disponibilité, pannes en cours et "
        "passées, temps de réponse.",
        panels,
        outage_annotations=True,
    )


# --- "Vigie — Détail d'un service" -----------------------------------------------------------


def service_detail() -> Json:
    """One service in depth: where the time goes, what the server answered, each outage."""
    lay = _Layout()
    panels: list[Json] = []
    panels.append(lay.row("Maintenant"))
    panels.append(_state_stat(lay, (6, 5), text_mode="value"))
    for window, label in (("24h", "24 heures"), ("7d", "7 jours"), ("30d", "30 jours")):
        panels.append(_availability_stat(lay, window, label, (4, 5), text_mode="value"))
    panels.append(
        _stat(
            lay,
            "Certificat de sécurité",
            "Nombre de jours avant l'expiration du certificat de sécurité (le cadenas du "
            "navigateur) présenté par le site. Un certificat expiré empêche les usagers "
            "d'accéder au site.",
            (6, 5),
            [
                _query(
                    f"min(probe_ssl_earliest_cert_expiry{{{SEL}}} - time()) / 86400",
                    "Expire dans",
                    instant=True,
                )
            ],
            text_mode="value",
            color_mode="value",
            unit="d",
            decimals=0,
            thresholds=_thresholds(("red", None), ("orange", 7), ("green", 21)),
            no_value="Pas de certificat mesuré",
        )
    )

    panels.append(lay.row("Historique"))
    panels.append(_state_timeline(lay, (24, 5)))
    panels.append(
        _timeline(
            lay,
            "Code de réponse du serveur",
            "Le code que le serveur a renvoyé à chaque contrôle (pour les contrôles de page "
            "simples). 200 : tout va bien. 401/403 : accès refusé, normal pour une page qui "
            "demande d'être connecté. 500 et plus : erreur du serveur. « Pas de réponse » : le "
            "serveur n'a rien répondu (coupure, délai dépassé).",
            (24, 5),
            [_query(f"max by (target) (probe_http_status_code{{{SEL}}})", "Code de réponse")],
            mappings=[
                _value_map({"0": ("Pas de réponse", "red")}),
                _range_map(100, 399, "Réponse normale", "green", 1),
                _range_map(400, 499, "Refus ou page absente", "orange", 2),
                _range_map(500, 599, "Erreur du serveur", "red", 3),
            ],
            thresholds=_thresholds(("red", None), ("green", 100), ("orange", 400), ("red", 500)),
            show_value="auto",
        )
    )
    panels.append(_open_outages_table(lay, (24, 5)))

    panels.append(lay.row("Temps de réponse"))
    panels.append(
        _timeseries(
            lay,
            "Où passe le temps (dernier contrôle)",
            "Le temps de réponse découpé en étapes, empilées : trouver l'adresse du site, s'y "
            "connecter, établir le chiffrement, attendre que le serveur prépare la page, puis la "
            "télécharger. Si l'attente du serveur domine, c'est le site lui-même qui est lent.",
            (12, 9),
            [_query(f"max by (phase) (probe_http_duration_seconds{{{SEL}}})", "{{phase}}")],
            line=_line(fill=60, stacked=True, step=True),
            unit="s",
            overrides=_rename(PHASE_NAMES),
        )
    )
    panels.append(
        _timeseries(
            lay,
            "Durée des étapes du parcours (navigateur)",
            "Pour les parcours faits avec un vrai navigateur (par exemple ouvrir la page de "
            "connexion puis le formulaire de création de compte) : le temps pris par chaque "
            "étape lors du dernier contrôle.",
            (12, 9),
            [_query(f"max by (step) (vigie_browser_step_duration_seconds{{{SEL}}})", "{{step}}")],
            line=_line(step=True),
            unit="s",
        )
    )
    panels.append(_response_time(lay, (12, 9)))
    panels.append(
        _timeseries(
            lay,
            "Durée de chaque contrôle",
            "Le temps total du dernier contrôle, point par point, pour chaque point de mesure.",
            (12, 9),
            [_query(f"max by (vantage) (probe_duration_seconds{{{SEL}}})", "{{vantage}}")],
            line=_line(points=True),
            unit="s",
        )
    )

    panels.append(lay.row("Contrôles"))
    panels.append(
        _outcomes_chart(
            lay,
            "Résultats des contrôles",
            "Combien de contrôles ont été faits, et comment ils se sont terminés : réussis, ou "
            "la raison de l'échec. Les contrôles faits pendant une coupure du réseau de la sonde "
            "sont montrés à part et ne comptent pas contre le service.",
            (24, 8),
            SEL,
            decimals=0,
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "ok"},
                    "properties": [
                        {"id": "color", "value": {"fixedColor": "green", "mode": "fixed"}}
                    ],
                },
            ],
        )
    )
    return _dashboard(
        SERVICE_UID,
        "Vigie — Détail d'un service",
        "Un service en détail : état, disponibilité, codes de réponse, où passe le temps, étapes "
        "des parcours, certificat, et chaque panne (bandes rouges).",
        panels,
        single_target=True,
        outage_annotations=True,
        time_from="now-7d",
    )


# --- "Vigie — Santé de la sonde" -------------------------------------------------------------


def probe_health() -> Json:
    """Is Vigie itself working: evidence ledger, signatures, timestamps, errors, collection."""
    lay = _Layout()
    panels: list[Json] = []
    panels.append(lay.row("La sonde"))
    panels.append(_collection_stat(lay, (4, 5)))
    panels.append(_vantage_stat(lay, (4, 5)))
    panels.append(
        _stat(
            lay,
            "Version de Vigie",
            "La version du logiciel Vigie qui fait les mesures, par point de mesure.",
            (4, 5),
            [
                _query(
                    f"max by (version) (vigie_build_info{{{PROBE_SEL}}})",
                    "{{version}}",
                    instant=True,
                )
            ],
            text_mode="name",
            color_mode="none",
            color={"fixedColor": "text", "mode": "fixed"},
            no_value="Sonde muette",
        )
    )
    panels.append(
        _age_stat(
            lay,
            "Dernier point de contrôle signé",
            "Depuis combien de temps Vigie a scellé son registre de preuves pour la dernière "
            "fois (un « point de contrôle » signé qui empêche toute modification après coup). "
            "Normalement toutes les minutes ; au-delà d'une heure, il faut regarder la sonde.",
            "vigie_ledger_last_checkpoint_timestamp_seconds",
            (600, 3600),
            "Aucun point de contrôle",
        )
    )
    panels.append(
        _age_stat(
            lay,
            "Dernier horodatage par un tiers",
            "Depuis combien de temps une autorité d'horodatage indépendante (RFC 3161) a daté le "
            "registre de preuves, ce qui prouve qu'il existait déjà à cette date. Vide si aucune "
            "autorité n'est configurée (réglage « signing.tsa_url »).",
            "vigie_tsa_last_success_timestamp_seconds",
            (7200, 86400),
            "Pas d'horodatage (non configuré ?)",
        )
    )
    panels.append(
        _stat(
            lay,
            "Incidents de la sonde — 24 heures",
            "Erreurs d'écriture du registre de preuves, échecs d'horodatage et sauts de "
            "l'horloge de la machine sur les dernières 24 heures. Tout doit être à zéro ; sinon "
            "prévenez la personne qui administre la sonde.",
            (4, 5),
            _incident_queries("24h", instant=True),
            color_mode="value",
            decimals=0,
            thresholds=_thresholds(("green", None), ("red", 1)),
        )
    )

    panels.append(lay.row("Registre de preuves"))
    panels.append(
        _timeseries(
            lay,
            "Entrées ajoutées au registre",
            "Chaque contrôle, chaque début et fin de panne et chaque point de contrôle ajoute "
            "une entrée au registre de preuves. Une courbe à zéro alors que la sonde tourne "
            "signifie que plus rien n'est enregistré.",
            (12, 8),
            [
                _query(
                    f"sum by (vantage) (increase(vigie_ledger_entries_total{{{PROBE_SEL}}}"
                    "[$__interval]))",
                    "{{vantage}}",
                )
            ],
            line=_line(fill=40, bars=True),
            unit="short",
            interval="1m",
        )
    )
    panels.append(
        _timeseries(
            lay,
            "Erreurs de la sonde",
            "Erreurs d'écriture du registre, échecs d'horodatage et sauts d'horloge, au fil du "
            "temps.",
            (12, 8),
            _incident_queries("$__rate_interval", instant=False),
            line=_line(fill=20),
            unit="short",
        )
    )

    panels.append(lay.row("Contrôles"))
    panels.append(
        _outcomes_chart(
            lay,
            "Contrôles en échec, par cause",
            "Les contrôles qui ont échoué, tous services confondus, selon la raison. Beaucoup "
            "d'échecs « réseau de la sonde coupé » désignent un problème de la sonde, pas des "
            "services.",
            (12, 8),
            f'outcome!="ok", {SEL}',
        )
    )
    panels.append(
        _timeseries(
            lay,
            "Réseau de la sonde",
            "1 : la connexion de la sonde fonctionne. 0 : tous les sites témoins sont "
            "injoignables, les contrôles sont mis de côté.",
            (12, 8),
            [_query(VANTAGE_ONLINE, "{{vantage}}")],
            line=_line(step=True),
            decimals=0,
            maximum=1,
        )
    )

    panels.append(lay.row("Collecte par Prometheus"))
    panels.append(
        _timeseries(
            lay,
            "Lecture des mesures par Prometheus",
            "1 quand Prometheus arrive à lire les mesures de la sonde, 0 sinon ; et le temps que "
            "prend cette lecture. Réglage technique, utile à la personne qui administre Vigie.",
            (12, 8),
            [
                _query(
                    f"min by (instance) (up{{{PROBE_SEL}}})", "joignable — {{instance}}", ref="A"
                ),
                _query(
                    f"max by (instance) (scrape_duration_seconds{{{PROBE_SEL}}})",
                    "durée de lecture (s) — {{instance}}",
                    ref="B",
                ),
            ],
            line=_line(step=True),
        )
    )
    panels.append(
        _timeseries(
            lay,
            "Nombre de mesures lues",
            "Combien de séries de mesures Prometheus lit à chaque passage. Une chute brutale "
            "signifie que des services ont disparu de la configuration de Vigie.",
            (12, 8),
            [_query(f"max by (instance) (scrape_samples_scraped{{{PROBE_SEL}}})", "{{instance}}")],
            line=_line(),
            unit="short",
        )
    )
    return _dashboard(
        HEALTH_UID,
        "Vigie — Santé de la sonde",
        "Vigie fonctionne-t-il ? Registre de preuves, signatures, horodatage, erreurs et "
        "collecte des mesures.",
        panels,
    )


# --- output ----------------------------------------------------------------------------------


def all_dashboards() -> dict[str, Json]:
    """Every dashboard by uid, freshly built."""
    return {OVERVIEW_UID: overview(), SERVICE_UID: service_detail(), HEALTH_UID: probe_health()}


def render(dashboard: Mapping[str, Any]) -> str:
    """The dashboard's committed JSON text (stable: same input, same bytes)."""
    return json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n"


def write_directory(directory: Path) -> list[Path]:
    """Write every dashboard's JSON into `directory`; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for uid, dashboard in all_dashboards().items():
        path = directory / DASHBOARD_FILES[uid]
        path.write_text(render(dashboard), encoding="utf-8")
        written.append(path)
    return written


def check_directory(directory: Path) -> list[str]:
    """Names of the dashboard files in `directory` that are missing or differ from the code."""
    stale = []
    for uid, dashboard in all_dashboards().items():
        path = directory / DASHBOARD_FILES[uid]
        try:
            current = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            current = None
        if current != render(dashboard):
            stale.append(path.name)
    return stale


@dataclasses.dataclass(frozen=True)
class PanelQuery:
    """One PromQL query of a dashboard, as Grafana would send it."""

    dashboard: str
    panel: str
    ref: str
    expr: str
    instant: bool
    interval: str | None


def panel_queries(dashboard: Mapping[str, Any]) -> Iterator[PanelQuery]:
    """Every Prometheus query of `dashboard`: panel targets, then annotation queries."""
    title = str(dashboard["title"])
    for panel in _walk(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            if "expr" in target:
                yield PanelQuery(
                    title,
                    str(panel["title"]),
                    str(target["refId"]),
                    str(target["expr"]),
                    bool(target.get("instant")),
                    panel.get("interval"),
                )
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if "expr" in annotation:
            yield PanelQuery(
                title,
                f"annotation: {annotation['name']}",
                "A",
                str(annotation["expr"]),
                instant=False,
                interval=None,
            )


def _walk(panels: Sequence[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for panel in panels:
        yield panel
        yield from _walk(panel.get("panels", []))
