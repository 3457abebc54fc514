"""A browser journey's steps in plain French, for a judge: never a raw CSS or Playwright selector.

``input[name=username]`` becomes « le champ « username » », ``text=Créer votre compte`` « le
texte « Créer votre compte » », ``role=button[name="Valider"]`` « le bouton « Valider » ». A
selector this module cannot read is described by the step's name, or as « un élément de la
page », never shown as written (the configuration, cited in the methodology, keeps it).
"""

from __future__ import annotations

import re
from typing import Protocol

__all__ = ["describe_selector", "describe_step"]


class _Step(Protocol):
    @property
    def action(self) -> str: ...

    @property
    def argument(self) -> str: ...

    name: str | None


_INPUT_TYPES = {
    "email": "le champ d'adresse électronique",
    "password": "le champ de mot de passe",
    "search": "le champ de recherche",
    "tel": "le champ de numéro de téléphone",
    "date": "le champ de date",
    "checkbox": "la case à cocher",
    "radio": "le bouton d'option",
    "submit": "le bouton d'envoi",
    "file": "le champ d'envoi de fichier",
    "text": "le champ de saisie",
}
_ROLES = {
    "button": "le bouton",
    "link": "le lien",
    "heading": "le titre",
    "textbox": "le champ",
    "checkbox": "la case à cocher",
    "img": "l'image",
    "dialog": "la fenêtre",
    "form": "le formulaire",
    "navigation": "le menu",
    "tab": "l'onglet",
    "alert": "le message d'alerte",
}
_TAGS = {
    "h1": "le titre principal de la page",
    "h2": "un intertitre",
    "form": "le formulaire",
    "button": "un bouton",
    "a": "un lien",
    "img": "une image",
    "table": "un tableau",
    "input": "un champ de saisie",
    "select": "une liste de choix",
    "textarea": "une zone de texte",
    "main": "le contenu principal de la page",
    "nav": "le menu",
    "footer": "le pied de page",
    "header": "l'en-tête de la page",
    "iframe": "un cadre intégré",
}
_NAMED = {"input": "le champ", "button": "le bouton", "a": "le lien", "form": "le formulaire"}
_VERBS = {
    "goto": "ouvrir la page",
    "click": "cliquer sur",
    "wait_for": "attendre l'affichage de",
    "expect_visible": "vérifier l'affichage de",
}
_QUOTES = "\"'"
_ELEMENT = "l'élément"
_ATTRIBUTE = re.compile(r"^([a-z][a-z0-9]*)?\[([a-z-]+)\s*[*^$~|]?=\s*(.+?)\]$", re.IGNORECASE)
_HAS_TEXT = re.compile(r"^([a-z][a-z0-9]*)?:(?:has-text|text|text-is)\((.+)\)$", re.IGNORECASE)
_ROLE = re.compile(r"^role=([a-z]+)(?:\[name\s*=\s*(.+?)\])?$", re.IGNORECASE)


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in _QUOTES:
        return text[1:-1]
    return text


def _quoted(text: str) -> str:
    return f"« {text} »"


def _humanised(name: str) -> str:
    """``page-de-connexion`` -> ``page de connexion``."""
    return re.sub(r"[-_]+", " ", name).strip()


def describe_selector(selector: str, name: str | None = None) -> str:
    """What a selector designates, in French words (never the selector itself)."""
    text = selector.strip()
    for prefix in ("css=", "css:"):
        if text.lower().startswith(prefix):
            text = text[len(prefix) :].strip()
    lowered = text.lower()
    if lowered.startswith(("text=", "text:")):
        return "le texte " + _quoted(_unquote(text[5:]))
    if lowered.startswith(("label=", "placeholder=")):
        value = _unquote(text.split("=", 1)[1])
        return "le champ " + _quoted(value)
    if (match := _ROLE.match(text)) is not None:
        role = _ROLES.get(match.group(1).lower(), "l'élément")
        return role + (" " + _quoted(_unquote(match.group(2))) if match.group(2) else "")
    if (match := _HAS_TEXT.match(text)) is not None:
        tag = (match.group(1) or "").lower()
        base = _NAMED.get(tag, "l'élément")
        return f"{base} portant le texte {_quoted(_unquote(match.group(2)))}"
    if (match := _ATTRIBUTE.match(text)) is not None:
        tag = (match.group(1) or "").lower()
        attribute, value = match.group(2).lower(), _unquote(match.group(3))
        if attribute == "type" and tag in {"", "input"} and value.lower() in _INPUT_TYPES:
            return _INPUT_TYPES[value.lower()]
        if attribute in {"name", "id", "aria-label", "title", "placeholder", "alt"}:
            return f"{_NAMED.get(tag, _ELEMENT)} {_quoted(value)}"
    if re.fullmatch(r"#[A-Za-z][\w-]*", text):
        return "l'élément " + _quoted(_humanised(text[1:]))
    if lowered in _TAGS:
        return _TAGS[lowered]
    if name:
        return "l'élément " + _quoted(_humanised(name))
    return "un élément de la page désigné dans la configuration"


def describe_step(step: _Step) -> str:
    """One step of a journey as a French instruction a person could follow."""
    action, argument = step.action, step.argument
    if action == "goto":
        return f"ouvrir la page {argument}"
    if action == "expect_text":
        return f"vérifier que la page contient le texte {_quoted(argument)}"
    if action == "fail_if_text":
        return f"constater un échec si la page affiche le texte {_quoted(argument)}"
    if action == "expect_url":
        return f"vérifier que l'adresse de la page contient {_quoted(argument)}"
    verb = _VERBS.get(action, "vérifier")
    return _contract(f"{verb} {describe_selector(argument, step.name)}")


def _contract(text: str) -> str:
    """French contractions: « de le » -> « du », « de un » -> « d'un »..."""
    for loose, bound in ((" de le ", " du "), (" de les ", " des "), (" de un", " d'un")):
        text = text.replace(loose, bound)
    return text
