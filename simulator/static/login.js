/* Pages de connexion simulées (façon Keycloak) : le contenu est rendu par le serveur mais reste
 * masqué jusqu'à l'exécution de ce script, comme un thème de connexion moderne.
 * Les pannes navigateur viennent de la configuration injectée par le simulateur. */
(function () {
  "use strict";

  var configNode = document.getElementById("sim-config");
  var config = JSON.parse((configNode && configNode.textContent) || "{}");
  var spec = config.fault || "";
  var i = spec.indexOf(":");
  var name = i < 0 ? spec : spec.slice(0, i);
  var seconds = i < 0 ? 0 : parseFloat(spec.slice(i + 1)) || 0;

  function reveal() {
    document.body.classList.remove("kc-pending");
  }

  if (name === "js_error") {
    throw new Error("simulated fault js_error: the login page failed to start");
  }
  if (name === "endless_spinner") {
    return;
  }
  if (name === "maintenance") {
    var content = document.getElementById("kc-content");
    content.innerHTML =
      "<h1>Site en maintenance</h1><p>Le service est momentanément indisponible. " +
      "Merci de réessayer plus tard.</p>";
    reveal();
    return;
  }
  if (name === "slow_render") {
    setTimeout(reveal, seconds * 1000);
    return;
  }
  reveal();
})();
