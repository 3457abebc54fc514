"""Review of an outage from its page: `/outages/<id>/review`, behind `evidence_auth`.

The only write the status server accepts: a person's signed review appended to Vigie's own
ledger (never anything sent to the monitored site). Every request needs the evidence password;
a POST also needs a form token this process issued for that outage (CSRF: a page of another
site cannot read it) and, when the browser sends one, an Origin equal to this server's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import secrets
import time
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from aiohttp import web

from config.vocabulary import REVIEW
from evidence.ledger.opening import open_signing
from evidence.ledger.reviews import MAX_TEXT, VERDICTS, ReviewError, review_body
from evidence.ledger.signing import SigningKeyError
from exporter.evidence_download import basic_auth_ok
from exporter.statuspage import html_page, service_tracker

if TYPE_CHECKING:
    from exporter.service import Service

__all__ = ["REVIEW_ROUTE", "ReviewForms", "add_review_routes"]

REVIEW_ROUTE = "outage-review"  # the route name the read-only middleware lets POST through
TOKEN_TTL = 3600.0  # seconds a form stays valid
_REASON_MAX = min(500, MAX_TEXT)  # characters of reason the form accepts (the CLI: MAX_TEXT)
_VERDICT_LABELS = {
    "confirmed": "Constatée et vérifiée : la panne est réelle",
    "dismissed": "Écartée : ce n'est pas une panne du site (ex. sélecteur obsolète)",
}


class ReviewForms:
    """The review form and its submission for one running service."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self._secret = secrets.token_bytes(32)  # form tokens die with the process

    # --- tokens ---------------------------------------------------------------------------

    def token(self, outage_id: str, now: float | None = None) -> str:
        """A form token for `outage_id`: issue time and an HMAC of it with this process' key."""
        issued = int(now if now is not None else time.time())
        return f"{issued}.{self._mac(outage_id, issued)}"

    def token_ok(self, outage_id: str, token: str, now: float | None = None) -> bool:
        """Whether `token` was issued here for `outage_id` less than TOKEN_TTL ago."""
        issued_text, _, mac = token.partition(".")
        if not issued_text.isdigit():
            return False
        issued = int(issued_text)
        age = (now if now is not None else time.time()) - issued
        return 0 <= age <= TOKEN_TTL and hmac.compare_digest(mac, self._mac(outage_id, issued))

    def _mac(self, outage_id: str, issued: int) -> str:
        data = f"vigie-review\n{outage_id}\n{issued}".encode()
        return hmac.new(self._secret, data, hashlib.sha256).hexdigest()

    # --- checks ---------------------------------------------------------------------------

    def _authorised(self, request: web.Request) -> None:
        auth = self.service.settings.evidence_auth
        if auth is None:
            raise web.HTTPForbidden(
                text="La vérification en ligne demande « evidence_auth » dans la configuration ; "
                "sinon, utilisez la commande : vigie review OUTAGE_ID --verdict ... --by ... "
                "--reason ...",
            )
        if not basic_auth_ok(request.headers.get("Authorization", ""), auth.user, auth.password):
            raise web.HTTPUnauthorized(
                text="Authentification requise pour vérifier une panne.",
                headers={"WWW-Authenticate": 'Basic realm="Vigie preuves", charset="UTF-8"'},
            )

    def _outage(self, request: web.Request) -> str:
        outage_id = request.match_info["outage_id"]
        tracker = service_tracker(self.service)
        if tracker is None or tracker.record(outage_id) is None:
            raise web.HTTPNotFound(text="Aucune panne ne porte cet identifiant.")
        return outage_id

    # --- handlers -------------------------------------------------------------------------

    async def form(self, request: web.Request) -> web.Response:
        """GET: the review form of one outage."""
        self._authorised(request)
        outage_id = self._outage(request)
        return _html(_form_page(outage_id, self.token(outage_id)))

    async def submit(self, request: web.Request) -> web.Response:
        """POST: check the token and origin, sign the review, append it, show the outage."""
        self._authorised(request)
        outage_id = self._outage(request)
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != request.host:
            raise web.HTTPForbidden(text="Formulaire envoyé depuis un autre site : refusé.")
        data = await request.post()
        token = str(data.get("jeton", ""))
        if not self.token_ok(outage_id, token):
            raise web.HTTPForbidden(
                text="Formulaire expiré ou falsifié : rechargez la page de vérification."
            )
        verdict, by, reason = (str(data.get(k, "")) for k in ("verdict", "par", "motif"))
        settings = self.service.settings
        if len(reason) > _REASON_MAX:
            error = f"le motif dépasse {_REASON_MAX} caractères"
            return _html(_form_page(outage_id, self.token(outage_id), error=error), status=400)
        tracker = service_tracker(self.service)
        record = tracker.record(outage_id) if tracker is not None else None
        if tracker is None or record is None:
            raise web.HTTPNotFound(text="Aucune panne ne porte cet identifiant.")
        try:
            signing = await asyncio.to_thread(open_signing, settings)
            body = review_body(
                signing.signer,
                outage_id=outage_id,
                target_id=record.target_id,
                verdict=verdict,
                by=by,
                reason=reason,
                at=_now(),
            )
        except (ReviewError, SigningKeyError) as exc:
            page = _form_page(outage_id, self.token(outage_id), error=str(exc))
            return _html(page, status=400)
        seq = await self.service.sink.append(REVIEW, body)
        tracker.add_review({**body, "seq": seq})
        raise web.HTTPSeeOther(f"/outages/{quote(outage_id)}")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _html(text: str, status: int = 200) -> web.Response:
    response = web.Response(text=text, status=status, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    )
    return response


def _form_page(outage_id: str, token: str, *, error: str | None = None) -> str:
    choices = "".join(
        f'<p><label><input type="radio" name="verdict" value="{v}" required> '
        f"{escape(_VERDICT_LABELS[v])}</label></p>"
        for v in VERDICTS
    )
    problem = f'<p class="ko" role="alert">{escape(error)}</p>' if error else ""
    action = f"/outages/{quote(outage_id)}/review"
    body = f"""<header><h1>Vérifier la panne {escape(outage_id)}</h1>
<p><a href="/outages/{quote(outage_id)}">Retour à la panne</a></p></header>
<main>
<p>Votre vérification est ajoutée au registre de preuves, signée par la clé du point
d'observation, avec votre nom et votre motif. Rien n'est modifié ni effacé : une panne écartée
reste dans l'historique, marquée « écartée ». Une vérification ultérieure remplace celle-ci dans
l'affichage ; les deux restent au registre.</p>
{problem}
<form method="post" action="{escape(action)}">
<fieldset><legend>Verdict</legend>{choices}</fieldset>
<p><label>Vérifiée par (nom et qualité)<br>
<input name="par" required maxlength="200" size="40"></label></p>
<p><label>Motif<br><textarea name="motif" required maxlength="{_REASON_MAX}" rows="4"
cols="60"></textarea></label></p>
<input type="hidden" name="jeton" value="{escape(token)}">
<p><button type="submit">Enregistrer la vérification</button></p>
</form>
</main>"""
    return html_page(f"Vigie — vérifier la panne {outage_id}", body)


def add_review_routes(app: web.Application, service: Service) -> None:
    """Add ``GET`` and ``POST /outages/{outage_id}/review`` to the status server."""
    forms = ReviewForms(service)
    app.router.add_get("/outages/{outage_id}/review", forms.form)
    app.router.add_post("/outages/{outage_id}/review", forms.submit, name=REVIEW_ROUTE)
