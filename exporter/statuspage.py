"""The French status page at `/`: server-rendered HTML, readable without JavaScript.

It shows what the service knows; it never changes state and never embeds untrusted markup.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from probes.observation import Observation, Outcome

if TYPE_CHECKING:
    from exporter.service import Service

__all__ = ["OUTCOME_LABELS", "paris_time", "render_status_page"]

PARIS = ZoneInfo("Europe/Paris")

OUTCOME_LABELS = {
    Outcome.OK: "Fonctionne",
    Outcome.DNS_ERROR: "Nom de domaine introuvable",
    Outcome.CONNECT_ERROR: "Connexion impossible",
    Outcome.TLS_ERROR: "Certificat de sécurité invalide",
    Outcome.TIMEOUT: "Pas de réponse dans le délai",
    Outcome.HTTP_STATUS: "Erreur du serveur",
    Outcome.CONTENT_MISMATCH: "Page incorrecte",
    Outcome.BROWSER_ERROR: "Erreur du navigateur",
    Outcome.STEP_FAILED: "Parcours interrompu",
    Outcome.TOO_LARGE: "Réponse trop volumineuse",
    Outcome.VANTAGE_OFFLINE: "Sonde hors ligne (non imputable au service)",
    Outcome.PROTOCOL_ERROR: "Réponse invalide",
    Outcome.REDIRECT_LOOP: "Boucle de redirections",
    Outcome.BLOCKED: "Requête bloquée (lecture seule)",
}

_STYLE = """
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;color:#1a1a1a;
background:#fff;line-height:1.5}
h1{font-size:1.6rem}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #ccc;vertical-align:top}
.ok{color:#0a6b2d;font-weight:bold}.ko{color:#b00020;font-weight:bold}.na{color:#555}
footer{margin-top:2rem;font-size:.9rem;color:#444}
"""


def paris_time(moment: dt.datetime | str) -> str:
    """A moment shown as users read it: ``23/11/2026 14:27:18`` in Paris time."""
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    return moment.astimezone(PARIS).strftime("%d/%m/%Y %H:%M:%S")


def _state_cell(last: Observation | None) -> str:
    if last is None:
        return '<td class="na">Pas encore vérifié</td>'
    label = escape(OUTCOME_LABELS.get(last.outcome, str(last.outcome)))
    css = "ok" if last.success else ("na" if last.outcome is Outcome.VANTAGE_OFFLINE else "ko")
    mark = "✔" if last.success else "✖"
    return f'<td class="{css}"><span aria-hidden="true">{mark}</span> {label}</td>'


def render_status_page(service: Service) -> str:
    """The whole status page as an HTML document."""
    settings = service.settings
    rows = []
    for status in service.status.values():
        target, last = status.target, status.last
        when = paris_time(last.started_at) if last else "—"
        detail = escape(last.error or "") if last and not last.success else ""
        rows.append(
            f'<tr><th scope="row">{escape(target.display_name)}</th>{_state_cell(last)}'
            f"<td>{when}</td><td>{detail}</td></tr>"
        )
    online = service.vantage_is_online
    vantage_text = (
        "La sonde fonctionne normalement."
        if online
        else "La connexion de la sonde est coupée : les échecs actuels ne sont pas imputés "
        "aux services surveillés."
    )
    operator = escape(settings.vantage.operator) if settings.vantage.operator else "non renseigné"
    return f"""<!DOCTYPE html>
<html lang="fr">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Vigie — état des services</title><style>{_STYLE}</style></head>
<body>
<header><h1>Vigie — état des services surveillés</h1>
<p>Point d'observation <strong>{escape(settings.vantage.name)}</strong>
(opéré par {operator}). {escape(vantage_text)}</p></header>
<main>
<h2>État actuel</h2>
<table>
<caption class="na">Dernière vérification de chaque service (heure de Paris)</caption>
<thead><tr><th scope="col">Service</th><th scope="col">État</th>
<th scope="col">Dernière vérification</th><th scope="col">Détail</th></tr></thead>
<tbody>
{"".join(rows)}
</tbody></table>
</main>
<footer><p>Vigie observe en lecture seule : aucune démarche n'est effectuée, aucun compte
n'est créé. Chaque observation est conservée dans un registre signé et infalsifiable.
<a href="/metrics">Métriques Prometheus</a>.</p></footer>
</body></html>
"""
