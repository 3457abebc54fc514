/* Portail « particuliers » simulé : une application à routes par fragment (#/...), façon Angular.
 * Tout est local : aucune ressource externe. Les pannes navigateur (js_error, slow_render,
 * maintenance, endless_spinner) viennent de la configuration injectée par le simulateur. */
(function () {
  "use strict";

  var configNode = document.getElementById("sim-config");
  var config = JSON.parse((configNode && configNode.textContent) || "{}");
  var root = document.querySelector("app-root");
  var loading = document.getElementById("app-loading");
  var pending = null;

  function esc(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function parseFault(spec) {
    if (!spec) {
      return { name: null, seconds: 0 };
    }
    var i = spec.indexOf(":");
    if (i < 0) {
      return { name: spec, seconds: 0 };
    }
    return { name: spec.slice(0, i), seconds: parseFloat(spec.slice(i + 1)) || 0 };
  }

  function header() {
    return (
      '<app-header><header class="rf"><div class="rf-marianne">République<br>française</div>' +
      '<div><a href="#/">Administration numérique pour les étrangers en France</a>' +
      "<br><small>Ministère de l'Intérieur</small></div></header></app-header>"
    );
  }

  var views = {
    "/": function () {
      return (
        header() +
        "<main><h1>Bienvenue sur votre espace étrangers en France</h1>" +
        "<p>Demandez ou renouvelez votre titre de séjour, suivez vos démarches et " +
        "consultez vos documents, en ligne.</p>" +
        '<p><a class="btn" id="login-link" href="' + esc(config.loginUrl) + '">Se connecter</a></p>' +
        '<nav><a href="#/demarches">Les démarches en ligne</a> · <a href="#/aide">Aide et contact</a></nav>' +
        "</main>"
      );
    },
    "/demarches": function () {
      return (
        header() +
        "<main><h1>Les démarches en ligne</h1><ul>" +
        "<li>Titre de séjour étudiant</li><li>Passeport talent</li>" +
        "<li>Renouvellement d'un titre de séjour</li><li>Naturalisation</li></ul>" +
        '<p><a href="#/">Retour à l\'accueil</a></p></main>'
      );
    },
    "/aide": function () {
      return (
        header() +
        "<main><h1>Aide et contact</h1><p>Le centre de contact citoyen répond à vos questions " +
        "sur les démarches en ligne.</p><p><a href=\"#/\">Retour à l'accueil</a></p></main>"
      );
    },
    "/connexion": function () {
      window.location.assign(config.loginUrl);
      return header() + "<main><h1>Redirection vers la page de connexion…</h1></main>";
    },
  };

  // Version 2 : la refonte. Le lien de connexion est renommé, la navigation passe dans
  // l'en-tête, l'accueil est découpé en sections.
  var viewsV2 = {
    "/": function () {
      return (
        '<app-header><header class="rf"><div class="rf-marianne">République<br>française</div>' +
        '<nav><a href="#/">Accueil</a> · <a href="#/demarches">Démarches</a> · ' +
        '<a href="#/aide">Nous contacter</a></nav></header></app-header>' +
        "<main><section><h1>Vos démarches d'étranger en France</h1>" +
        "<p>Titre de séjour, naturalisation, documents de voyage : tout se fait en ligne.</p>" +
        "</section><section><h2>Mon espace</h2>" +
        '<p><a class="btn" id="espace-link" href="' + esc(config.loginUrl) + '">Accéder à mon compte</a></p>' +
        "</section></main>"
      );
    },
  };

  function maintenanceView() {
    return (
      header() +
      "<main><h1>Site en maintenance</h1><p>Le service est momentanément indisponible. " +
      "Merci de réessayer plus tard.</p></main>"
    );
  }

  function notFoundView() {
    return header() + '<main><h1>Page introuvable</h1><p><a href="#/">Retour à l\'accueil</a></p></main>';
  }

  function showLoading() {
    root.innerHTML = "";
    root.removeAttribute("ng-version");
    loading.hidden = false;
  }

  function show(html) {
    root.innerHTML = html;
    root.setAttribute("ng-version", "17.3.0-simulateur");
    loading.hidden = true;
  }

  function render() {
    if (pending !== null) {
      clearTimeout(pending);
      pending = null;
    }
    var route = (window.location.hash.replace(/^#/, "") || "/").split("?")[0];
    var fault = parseFault((config.routeFaults || {})[route] || config.fault);
    if (fault.name === "js_error") {
      showLoading();
      throw new Error("simulated fault js_error: the application failed to start");
    }
    if (fault.name === "endless_spinner") {
      showLoading();
      return;
    }
    var pages = config.version === 2 ? Object.assign({}, views, viewsV2) : views;
    var view = fault.name === "maintenance" ? maintenanceView : pages[route] || notFoundView;
    if (fault.name === "slow_render") {
      showLoading();
      pending = setTimeout(function () {
        pending = null;
        show(view());
      }, fault.seconds * 1000);
      return;
    }
    show(view());
  }

  window.addEventListener("hashchange", render);
  render();
})();
