"""The content of the simulated ANEF: site pages, the hash-routed portal, the login host.

Every page is served locally; no page links or loads anything outside the simulator's own hosts.
Every HTML page tries four kinds of write on load (beacon, XHR PUT, fetch POST, form POST).
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
from importlib import resources
from typing import Final
from urllib.parse import quote

from simulator.faults import Fault, HostRole
from simulator.http11 import Response

__all__ = [
    "API_PATH",
    "AUTHENTICATE_PATH",
    "FRANCECONNECT_PATH",
    "HOME_PATH",
    "INFO_PATHS",
    "LOGIN_PATH",
    "LOGIN_SCRIPT_PATH",
    "PORTAL_PATH",
    "PORTAL_SCRIPT_PATH",
    "PORTAL_VERSIONS",
    "REGISTRATION_PATH",
    "WRITE_PATHS",
    "Links",
    "Pages",
]

HOME_PATH: Final = "/"
PORTAL_PATH: Final = "/particuliers/"
PORTAL_SCRIPT_PATH: Final = "/particuliers/main.js"
API_PATH: Final = "/api/usager/moi"
_REALM: Final = "/auth/realms/anef-usagers"
LOGIN_PATH: Final = f"{_REALM}/protocol/openid-connect/auth"
REGISTRATION_PATH: Final = f"{_REALM}/login-actions/registration"
AUTHENTICATE_PATH: Final = f"{_REALM}/login-actions/authenticate"
FRANCECONNECT_PATH: Final = f"{_REALM}/broker/franceconnect/login"
OPENID_CONFIG_PATH: Final = f"{_REALM}/.well-known/openid-configuration"
LOGIN_SCRIPT_PATH: Final = "/auth/resources/portail-anef/login.js"
# Where the pages' write attempts go (same host as the page). A read-only probe blocks them all.
WRITE_PATHS: Final = {
    "beacon": "/sim/write/beacon",
    "xhr": "/sim/write/xhr",
    "fetch": "/sim/write/fetch",
    "form": "/sim/write/form",
}
INFO_PATHS: Final = {
    "/informations/titres-de-sejour": (
        "Titres de séjour",
        (
            "Demander, renouveler ou modifier un titre de séjour en ligne : étudiants, "
            "passeports talent, salariés, visiteurs et membres de famille."
        ),
    ),
    "/informations/naturalisation": (
        "Naturalisation",
        "Déposer en ligne une demande d'accès à la nationalité française par décret.",
    ),
    "/informations/aide": (
        "Aide et contact",
        (
            "Le centre de contact citoyen répond aux questions des usagers étrangers sur les "
            "démarches en ligne."
        ),
    ),
}
# Versions of the portal and login screens: 2 is a redesign (renamed links, moved forms, a new
# layout) that serves normally; a journey written for version 1 no longer finds its way.
PORTAL_VERSIONS: Final = (1, 2)
_LOGIN_QUERY: Final = "client_id=anef-usagers&theme=portail-anef"
# A one-pixel transparent PNG, so browsers asking for /favicon.ico get an answer and log no error.
_FAVICON: Final = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)

_CSS: Final = """
:root{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#161616}
body{margin:0;background:#fff}
header.rf{border-bottom:1px solid #ddd;padding:1rem 2rem;display:flex;gap:2rem;align-items:center}
.rf-marianne{font-weight:700;text-transform:uppercase;line-height:1.1}
main{max-width:48rem;margin:0 auto;padding:2rem}
h1{font-size:2rem;margin:0 0 1rem}
a{color:#000091}
.btn,button{display:inline-block;background:#000091;color:#fff;padding:.6rem 1.2rem;
text-decoration:none;border:0;font-size:1rem;margin-top:1rem}
form label{display:block;margin-top:1rem}
form input{display:block;width:100%;max-width:24rem;padding:.5rem;margin-top:.25rem}
.franceconnect-button{display:inline-block;background:#000091;color:#fff;padding:.8rem 1.4rem;
text-decoration:none;font-weight:700}
.sim-spinner{display:flex;gap:.75rem;align-items:center;justify-content:center;padding:4rem}
.sim-spinner-wheel{width:1.5rem;height:1.5rem;border:3px solid #ddd;border-top-color:#000091;
border-radius:50%;animation:sim-spin 1s linear infinite}
@keyframes sim-spin{to{transform:rotate(360deg)}}
[hidden]{display:none!important}
app-root{display:block}
.kc-pending #kc-page{display:none}
body:not(.kc-pending) #kc-loading{display:none}
footer{border-top:1px solid #ddd;padding:1rem 2rem;font-size:.85rem;color:#555}
"""

_HEADER: Final = (
    '<header class="rf"><div class="rf-marianne">République<br>française</div>'
    "<div><strong>Administration numérique pour les étrangers en France</strong>"
    "<br><small>Ministère de l'Intérieur</small></div></header>"
)
_FOOTER: Final = (
    "<footer>Site simulé par Vigie pour des essais locaux. Aucune donnée n'est enregistrée."
    "</footer>"
)

# The four writes every HTML page attempts on load. Each failure is swallowed so the page
# still renders when a read-only probe blocks them. The form posts into a hidden frame, so
# the page itself never navigates away.
_WRITES: Final = f"""
<form id="sim-write-form" method="post" action="{WRITE_PATHS["form"]}" target="sim-write-sink"
 hidden><input type="hidden" name="vu" value="1"></form>
<iframe name="sim-write-sink" title="mesure d'audience" hidden></iframe>
<script>
(function () {{
  try {{
    var page = "page=" + encodeURIComponent(location.pathname);
    navigator.sendBeacon("{WRITE_PATHS["beacon"]}", page);
  }} catch (e) {{}}
  try {{
    var xhr = new XMLHttpRequest();
    xhr.open("PUT", "{WRITE_PATHS["xhr"]}");
    xhr.onerror = function () {{}};
    xhr.setRequestHeader("Content-Type", "application/json");
    xhr.send('{{"vu":true}}');
  }} catch (e) {{}}
  try {{
    fetch("{WRITE_PATHS["fetch"]}", {{method: "POST", body: "vu=1"}}).catch(function () {{}});
  }} catch (e) {{}}
  try {{ document.getElementById("sim-write-form").submit(); }} catch (e) {{}}
}})();
</script>"""


def _config_script(config: dict[str, object]) -> str:
    data = json.dumps(config, ensure_ascii=False, sort_keys=True).replace("</", "<\\/")
    return f'<script id="sim-config" type="application/json">{data}</script>'


def _document(title: str, body: str, *, body_class: str = "") -> bytes:
    klass = f' class="{body_class}"' if body_class else ""
    return (
        '<!doctype html>\n<html lang="fr"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body{klass}>{body}</body></html>\n"
    ).encode()


def _html(status: int, body: bytes, *extra: tuple[str, str]) -> Response:
    return Response(status, body, headers=(("Cache-Control", "no-store"), *extra))


def _json(status: int, data: object, *extra: tuple[str, str]) -> Response:
    body = json.dumps(data, ensure_ascii=False, sort_keys=True).encode()
    return Response(status, body, "application/json", (("Cache-Control", "no-store"), *extra))


@dataclasses.dataclass(frozen=True, slots=True)
class Links:
    """The origins of the simulator's hosts, for links that cross from one host to the other."""

    site_origin: str
    login_origin: str

    @property
    def portal_url(self) -> str:
        """The portal's home route."""
        return f"{self.site_origin}{PORTAL_PATH}#/"

    @property
    def login_url(self) -> str:
        """The login page, with the query ANEF's portal sends (redirect back to the portal)."""
        back = quote(f"{self.site_origin}{PORTAL_PATH}#", safe="")
        return (
            f"{self.login_origin}{LOGIN_PATH}?{_LOGIN_QUERY}&redirect_uri={back}"
            "&response_mode=fragment&response_type=code&scope=openid"
        )

    @property
    def registration_url(self) -> str:
        """The account-creation screen."""
        return f"{self.login_origin}{REGISTRATION_PATH}?client_id=anef-usagers&tab_id=simulateur"


class Pages:
    """Renders every page of both hosts; browser faults change the page, never its status."""

    def __init__(self, links: Links) -> None:
        self.links = links
        static = resources.files("simulator") / "static"
        self._main_js = (static / "main.js").read_bytes()
        self._login_js = (static / "login.js").read_bytes()
        self._home = self._render_home()
        self._info = {path: self._render_info(*text) for path, text in INFO_PATHS.items()}

    # -- site host ---------------------------------------------------------------------------

    def _render_home(self) -> bytes:
        items = "".join(
            f'<li><a href="{path}">{html.escape(title)}</a></li>'
            for path, (title, _) in INFO_PATHS.items()
        )
        body = (
            f"{_HEADER}<main><h1>Administration des étrangers en France</h1>"
            "<p>Bienvenue sur le site de l'administration numérique pour les étrangers en France "
            "(ANEF). Vous pouvez y effectuer vos démarches de titre de séjour, de naturalisation "
            "et de document de voyage, sans vous déplacer en préfecture.</p>"
            f'<p><a class="btn" href="{PORTAL_PATH}#/">Accéder à mon espace particulier</a></p>'
            f"<h2>Informations</h2><ul>{items}</ul></main>{_FOOTER}{_WRITES}"
        )
        return _document("Administration des étrangers en France", body)

    def _render_info(self, title: str, text: str) -> bytes:
        body = (
            f"{_HEADER}<main><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>"
            f'<p><a href="/">Retour à l\'accueil — Administration des étrangers en France</a></p>'
            f"</main>{_FOOTER}{_WRITES}"
        )
        return _document(f"{title} — Administration des étrangers en France", body)

    def _portal(self, fault: Fault | None, route_faults: dict[str, str], version: int) -> bytes:
        config: dict[str, object] = {
            "fault": fault.spec if fault is not None else None,
            "loginUrl": self.links.login_url,
            "routeFaults": route_faults,
            "version": version,
        }
        body = (
            '<div id="app-loading" class="sim-spinner" role="status" aria-live="polite">'
            '<span class="sim-spinner-wheel"></span> Chargement de l\'application…</div>'
            f"<app-root></app-root>{_config_script(config)}{_WRITES}"
            f'<script src="{PORTAL_SCRIPT_PATH}"></script>'
        )
        return _document("ANEF — Espace particuliers", body)

    # -- login host --------------------------------------------------------------------------

    def _login_document(self, title: str, content: str, fault: Fault | None) -> bytes:
        config: dict[str, object] = {"fault": fault.spec if fault is not None else None}
        body = (
            '<div id="kc-loading" class="sim-spinner" role="status" aria-live="polite">'
            '<span class="sim-spinner-wheel"></span> Chargement…</div>'
            f'<div id="kc-page">{_HEADER}<main id="kc-content">{content}</main>{_FOOTER}</div>'
            f"{_config_script(config)}{_WRITES}"
            f'<script src="{LOGIN_SCRIPT_PATH}"></script>'
        )
        return _document(title, body, body_class="kc-pending")

    def _login(self, fault: Fault | None, version: int) -> bytes:
        action = html.escape(f"{AUTHENTICATE_PATH}?session_code=simulateur&client_id=anef-usagers")
        if version == 2:
            return self._login_v2(fault, action)
        content = (
            "<h1>Connexion à votre espace</h1>"
            f'<form id="kc-form-login" method="post" action="{action}">'
            '<label for="username">Identifiant (adresse électronique)</label>'
            '<input id="username" name="username" type="text" autocomplete="username">'
            '<label for="password">Mot de passe</label>'
            '<input id="password" name="password" type="password" '
            'autocomplete="current-password">'
            '<button type="submit" id="kc-login" name="login">Connexion</button></form>'
            '<div id="kc-social-providers"><p>ou</p>'
            f'<a class="franceconnect-button" id="social-franceconnect" '
            f'href="{html.escape(FRANCECONNECT_PATH)}?client_id=anef-usagers">'
            "S'identifier avec FranceConnect</a></div>"
            f'<p id="kc-registration"><a href="{html.escape(self.links.registration_url)}">'
            "Première visite ? Créer votre compte</a></p>"
            f'<p><a href="{html.escape(self.links.portal_url)}">Retour au portail</a></p>'
        )
        return self._login_document("Connexion — ANEF", content, fault)

    def _login_v2(self, fault: Fault | None, action: str) -> bytes:
        """The redesigned login screen: FranceConnect first, the form moved into a section,
        the account-creation link renamed and moved into an aside."""
        content = (
            '<nav aria-label="fil d\'Ariane"><a href="'
            f'{html.escape(self.links.portal_url)}">Accueil</a> &gt; Connexion</nav>'
            "<h1>Accéder à mon espace étranger</h1>"
            '<section id="kc-v2-franceconnect"><h2>Avec FranceConnect</h2>'
            f'<a class="franceconnect-button" id="social-franceconnect" '
            f'href="{html.escape(FRANCECONNECT_PATH)}?client_id=anef-usagers">'
            "S'identifier avec FranceConnect</a></section>"
            '<section id="kc-v2-identifiants"><h2>Avec mes identifiants ANEF</h2>'
            f'<form id="kc-form-connexion" method="post" action="{action}">'
            '<label for="username">Adresse électronique</label>'
            '<input id="username" name="username" type="text" autocomplete="username">'
            '<label for="password">Mot de passe</label>'
            '<input id="password" name="password" type="password" '
            'autocomplete="current-password">'
            '<button type="submit" id="kc-login" name="login">Se connecter</button></form>'
            "</section>"
            f'<aside id="kc-v2-inscription"><h2>Nouvel usager</h2><p><a href="'
            f'{html.escape(self.links.registration_url)}">Ouvrir mon espace ANEF</a></p></aside>'
        )
        return self._login_document("Connexion — ANEF", content, fault)

    def _registration(self, fault: Fault | None, version: int = 1) -> bytes:
        if version == 2:
            return self._registration_v2(fault)
        email = (
            '<label for="email">Adresse électronique</label>'
            '<input id="email" name="email" type="email" autocomplete="email">'
        )
        if fault is not None and fault.name == "form_missing":
            email = ""
        action = html.escape(f"{REGISTRATION_PATH}?client_id=anef-usagers&tab_id=simulateur")
        content = (
            "<h1>Création de votre compte</h1>"
            f'<form id="kc-register-form" method="post" action="{action}">'
            '<label for="firstName">Prénom</label>'
            '<input id="firstName" name="firstName" type="text">'
            '<label for="lastName">Nom</label><input id="lastName" name="lastName" type="text">'
            f"{email}"
            '<label for="password">Mot de passe</label>'
            '<input id="password" name="password" type="password" autocomplete="new-password">'
            '<button type="submit">Créer mon compte</button></form>'
            f'<p><a href="{html.escape(self.links.login_url)}">« Retour à la connexion</a></p>'
        )
        return self._login_document("Création de compte — ANEF", content, fault)

    def _registration_v2(self, fault: Fault | None) -> bytes:
        """The redesigned account creation: the form moved into two fieldsets."""
        email = (
            '<label for="courriel">Courriel</label>'
            '<input id="courriel" name="courriel" type="email" autocomplete="email">'
        )
        if fault is not None and fault.name == "form_missing":
            email = ""
        action = html.escape(f"{REGISTRATION_PATH}?client_id=anef-usagers&tab_id=simulateur")
        content = (
            "<h1>Ouvrir mon espace ANEF</h1>"
            f'<section><form id="kc-inscription" method="post" action="{action}">'
            f"<fieldset><legend>Mon courriel</legend>{email}</fieldset>"
            '<fieldset><legend>Mon identité</legend><label for="firstName">Prénom</label>'
            '<input id="firstName" name="firstName" type="text">'
            '<label for="lastName">Nom</label><input id="lastName" name="lastName" type="text">'
            "</fieldset>"
            '<button type="submit">Continuer</button></form></section>'
            f'<p><a href="{html.escape(self.links.login_url)}">Retour</a></p>'
        )
        return self._login_document("Ouvrir mon espace — ANEF", content, fault)

    def _franceconnect(self) -> bytes:
        content = (
            "<h1>FranceConnect (simulé)</h1><p>Dans ce simulateur, FranceConnect n'est pas "
            "contacté : aucune connexion ne sort de la machine.</p>"
            f'<p><a href="{html.escape(self.links.login_url)}">« Retour à la connexion</a></p>'
        )
        return self._login_document("FranceConnect — ANEF", content, None)

    def _openid_configuration(self) -> dict[str, str]:
        base = f"{self.links.login_origin}{_REALM}"
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/protocol/openid-connect/auth",
            "token_endpoint": f"{base}/protocol/openid-connect/token",
            "userinfo_endpoint": f"{base}/protocol/openid-connect/userinfo",
        }

    # -- shared ------------------------------------------------------------------------------

    def not_found(self) -> Response:
        """404 in French."""
        body = _document(
            "Page introuvable",
            f"{_HEADER}<main><h1>Page introuvable</h1><p>La page demandée n'existe pas.</p>"
            f'<p><a href="/">Retour à l\'accueil</a></p></main>{_FOOTER}',
        )
        return _html(404, body)

    def method_not_allowed(self) -> Response:
        """405: the simulated site accepts writes on the wire (to count them) but refuses them."""
        body = _document(
            "Méthode non autorisée",
            f"{_HEADER}<main><h1>Méthode non autorisée</h1>"
            "<p>Ce site simulé n'accepte que les lectures (GET et HEAD).</p></main>",
        )
        return _html(405, body, ("Allow", "GET, HEAD"))

    def error_500(self) -> Response:
        """The ``http_500`` fault."""
        body = _document(
            "Erreur interne du serveur",
            "<h1>Erreur interne du serveur</h1><p>Une erreur inattendue est survenue.</p>",
        )
        return _html(500, body)

    def maintenance_503(self) -> Response:
        """The ``http_503_maintenance`` fault."""
        body = _document(
            "Site en maintenance",
            f"{_HEADER}<main><h1>Site en maintenance</h1><p>Le site est en cours de maintenance. "
            "Merci de réessayer plus tard.</p></main>",
        )
        return _html(503, body, ("Retry-After", "3600"))

    def wrong_content(self) -> Response:
        """The ``wrong_content`` fault: a 200 page with none of the expected text."""
        body = (
            "<!doctype html>\n<html><head><title>Page par défaut</title></head><body>"
            "<h1>Ça marche !</h1><p>Le serveur web fonctionne, mais aucun contenu n'est "
            "encore publié.</p></body></html>\n"
        ).encode()
        return _html(200, body)

    def redirect(self, location: str) -> Response:
        """A 302 to `location` (the ``redirect_loop`` fault)."""
        body = b"<!doctype html>\n<title>Redirection</title><p>Redirection.</p>\n"
        return _html(302, body, ("Location", location))

    def render(
        self,
        host: HostRole,
        path: str,
        fault: Fault | None = None,
        route_faults: dict[str, str] | None = None,
        version: int = 1,
    ) -> Response:
        """The answer to a GET of `path` on `host`, with a browser fault applied if any.

        `version` 2 serves the redesigned portal and login screens (see PORTAL_VERSIONS).
        """
        browser_fault = fault if fault is not None and fault.is_browser_fault else None
        if path == "/favicon.ico":
            return Response(200, _FAVICON, "image/png", (("Cache-Control", "max-age=3600"),))
        if path == "/robots.txt":
            return Response(200, b"User-agent: *\nDisallow:\n", "text/plain; charset=utf-8")
        if host == "site":
            if path == HOME_PATH:
                return _html(200, self._home)
            if path in self._info:
                return _html(200, self._info[path])
            if path == PORTAL_PATH:
                return _html(200, self._portal(browser_fault, route_faults or {}, version))
            if path == "/particuliers":
                return _html(301, b"", ("Location", PORTAL_PATH))
            if path == PORTAL_SCRIPT_PATH:
                return Response(200, self._main_js, "text/javascript; charset=utf-8")
            if path == API_PATH:
                return _json(
                    401,
                    {"status": 401, "error": "Unauthorized", "message": "Authentification requise"},
                    ("WWW-Authenticate", 'Bearer realm="anef-usagers"'),
                )
            return self.not_found()
        if path == LOGIN_PATH:
            return _html(200, self._login(browser_fault, version))
        if path == REGISTRATION_PATH:
            return _html(200, self._registration(browser_fault, version))
        if path == FRANCECONNECT_PATH:
            return _html(200, self._franceconnect())
        if path == LOGIN_SCRIPT_PATH:
            return Response(200, self._login_js, "text/javascript; charset=utf-8")
        if path == OPENID_CONFIG_PATH:
            return _json(200, self._openid_configuration())
        if path in ("/", "/auth", "/auth/"):
            return _html(302, b"", ("Location", self.links.login_url))
        return self.not_found()
