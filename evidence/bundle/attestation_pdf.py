"""The attestation d'observation as a one- or two-page French PDF, for a lawyer's file.

It draws only what `Attestation` holds: no outcome code, no page selector, no identity of the
person unless a reference was given, and it says what it does not prove.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Sequence
from xml.sax.saxutils import escape

from reportlab.lib.units import cm
from reportlab.platypus import Flowable, Image, KeepTogether, Paragraph, Spacer

from config.french import format_date_fr, format_datetime_fr
from evidence.bundle.attestation import Attestation, Capture, WindowFacts
from evidence.outages.availability import PARIS
from evidence.report.render import (
    _numbered_canvas,
    _Styles,
    document_styles,
    format_duration_fr,
    french_document,
)

__all__ = ["number_ranges", "render_attestation"]

MAX_LISTED = 60  # observation numbers listed in the PDF per window; all are in the JSON/bundle
_KINDS = {
    "screenshot": "capture d'écran",
    "html": "copie de la page reçue",
    "warc": "enregistrement de l'échange avec le site (format WARC)",
}


def _e(text: object) -> str:
    return escape(str(text))


def _time(moment: dt.datetime) -> str:
    """``9 h 05``, or ``9 h 05 min 30 s`` when the seconds matter."""
    local = moment.astimezone(PARIS)
    text = f"{local.hour} h {local.minute:02d}"
    return f"{text} min {local.second:02d} s" if local.second else text


def _moment(moment: dt.datetime) -> str:
    """``7 décembre 2026 à 9 h 05`` (seconds when they matter), Paris time, zone not named."""
    return f"{format_date_fr(moment.astimezone(PARIS).date())} à {_time(moment)}"


def _span(start: dt.datetime, end: dt.datetime) -> str:
    """``le 7 décembre 2026 de 9 h 05 à 9 h 40`` or ``du … au …`` across days."""
    if start.astimezone(PARIS).date() == end.astimezone(PARIS).date():
        return f"le {_moment(start)} à {_time(end)}".replace(" à ", " de ", 1)
    return f"du {_moment(start)} au {_moment(end)}"


def number_ranges(seqs: Sequence[int], limit: int = MAX_LISTED) -> str:
    """``120 à 125, 130, 140 à 141`` (at most `limit` numbers named, then how many more)."""
    parts: list[str] = []
    named = 0
    index = 0
    ordered = sorted(seqs)
    while index < len(ordered) and named < limit:
        first = last = ordered[index]
        while index + 1 < len(ordered) and ordered[index + 1] == last + 1:
            index += 1
            last = ordered[index]
        parts.append(f"{first}" if first == last else f"{first} à {last}")
        named += 1 if first == last else 2
        index += 1
    rest = len(ordered) - index
    text = ", ".join(parts)
    if rest > 0:
        text += f" et {rest} autres (liste complète dans l'archive)"
    return text


def _window_title(facts: WindowFacts, number: int) -> str:
    window = facts.window
    start, end = window.local_start, window.local_end
    if start.time() == end.time() == dt.time(0, 0):  # whole Paris days
        last = end.date() - dt.timedelta(days=1)
        if last == start.date():
            return f"Plage n° {number} : le {format_date_fr(last)}, toute la journée"
        return (
            f"Plage n° {number} : du {format_date_fr(start.date())} au "
            f"{format_date_fr(last)} inclus, journées entières (heure de Paris)"
        )
    return f"Plage n° {number} : {_span(window.start, window.end)} (heure de Paris)"


def _window_notes(facts: WindowFacts) -> list[str]:
    window = facts.window
    notes = []
    if window.clock_change:
        notes.append(
            "Cette plage traverse un changement d'heure légale : elle a duré "
            f"{format_duration_fr(window.real_seconds)} réelles, alors que les horloges "
            f"indiquent un écart de {format_duration_fr(window.wall_seconds)}."
        )
    notes.extend(
        f"L'heure {_e(text[11:16])} a existé deux fois cette nuit-là (retour à l'heure "
        "d'hiver) : la première, encore à l'heure d'été, a été retenue."
        for text in window.ambiguous
    )
    if facts.future_s >= facts.window.real_seconds:
        notes.append(
            "Cette plage est postérieure à l'établissement de ce document : rien ne pouvait "
            "encore y être observé."
        )
    elif facts.future_s > 0:
        notes.append(
            f"La fin de cette plage ({format_duration_fr(facts.future_s)}) est postérieure à "
            "l'établissement de ce document : seul ce qui la précède est rapporté."
        )
    return notes


def _target_story(
    facts: WindowFacts, s: _Styles, image: Callable[[Capture], Flowable | None]
) -> list[Flowable]:
    story: list[Flowable] = [Paragraph(f"<b>{_e(facts.target.name)}</b>", s.body)]
    lines: list[str] = []
    if facts.future_s >= facts.window.real_seconds:
        return story
    if facts.checks == 0:
        reason = next((x.reason for x in facts.silences if x.reason), "")
        lines.append(
            "Aucune vérification de ce service n'est enregistrée pendant cette plage"
            + (f" ({_e(reason)})" if reason else "")
            + ". Vigie ne peut donc rien en dire : ni que le service fonctionnait, ni qu'il "
            "était en panne."
        )
    else:
        vantages = ", ".join(f"« {_e(v)} »" for v in facts.vantages)
        checks = f"{facts.checks} vérification{'s' if facts.checks > 1 else ''}"
        lines.append(
            f"{checks} depuis le point d'observation {vantages} : "
            f"<b>{_count(facts.successes, 'réussie', 'réussies')}</b>, "
            f"<b>{_count(facts.failed, 'en échec', 'en échec')}</b>."
        )
        if facts.offline:
            lines.append(
                f"{facts.offline} autre(s) vérification(s) n'ont pas abouti parce que la connexion "
                "du point d'observation lui-même était coupée ; elles ne sont pas imputées au "
                "service."
            )
        for words, count in facts.failure_counts():
            lines.append(f"• {count} fois : {_e(words)}.")
    for silence in facts.silences:
        if facts.checks == 0:
            break
        why = f" ({_e(silence.reason)})" if silence.reason else ""
        lines.append(
            f"Aucune vérification de {_time(silence.start)} à {_time(silence.end)} "
            f"({format_duration_fr(silence.seconds)}){why} : sur cette durée, Vigie ne sait rien."
        )
    if facts.outages:
        for outage in facts.outages:
            label = "Panne confirmée" if outage.kind == "down" else "Lenteur confirmée"
            if outage.end is None:
                span = f"depuis le {_moment(outage.start)}, sans fin enregistrée à ce jour"
            else:
                duration = format_duration_fr((outage.end - outage.start).total_seconds())
                span = f"{_span(outage.start, outage.end)} ({duration})"
            review = (
                f" Vérification par une personne : {_e(outage.review.text_fr)}."
                if outage.review is not None
                else ""
            )
            lines.append(
                f"{label} de ce service {span}, qui chevauche cette plage "
                f"(référence <font name='{s.fonts.mono}'>{_e(outage.id)}</font>).{review}"
            )
    elif facts.checks:
        lines.append("Aucune panne confirmée de ce service ne chevauche cette plage.")
    if facts.seqs:
        lines.append(f"Numéros des observations au registre : {number_ranges(facts.seqs)}.")
    if facts.failures:
        failed = number_ranges([f.seq for f in facts.failures])
        lines.append(f"Dont en échec : {failed}.")
    story += [Paragraph(line, s.body) for line in lines]
    if facts.capture is not None:
        story += _capture_story(facts.capture, s, image)
    elif facts.failures:
        story.append(Paragraph("Aucun enregistrement d'échec n'a été conservé.", s.small))
    return story


def _capture_story(
    capture: Capture, s: _Styles, image: Callable[[Capture], Flowable | None]
) -> list[Flowable]:
    failure = capture.failure
    when = _moment(failure.at)
    if capture.offset_s < 0:
        where = f", {format_duration_fr(-capture.offset_s)} avant le début de la plage"
    elif capture.offset_s > 0:
        where = f", {format_duration_fr(capture.offset_s)} après la fin de la plage"
    else:
        where = ", pendant la plage"
    caption = (
        f"Échec le plus proche de la plage : observation n° {failure.seq}, le {when}{where}. "
        f"{_upper_first(_KINDS.get(capture.kind, capture.kind))} dans l'archive : "
        f"<font name='{s.fonts.mono}' size=6.5>artifacts/{_e(capture.sha256)}</font>"
    )
    story: list[Flowable] = []
    picture = image(capture) if capture.kind == "screenshot" else None
    if picture is not None:
        story.append(Spacer(1, 3))
        story.append(picture)
    story.append(Paragraph(caption, s.small))
    return story


def _count(n: int, one: str, many: str) -> str:
    return f"aucune {one}" if n == 0 else f"{n} {one if n == 1 else many}"


def _bundle_period(attestation: Attestation) -> str:
    """The period the bundle was exported for (as `attestation_cmd` asks for it)."""
    start = min(w.start for w in attestation.windows)
    end = min(max(w.end for w in attestation.windows), attestation.generated_at)
    text = _span(start, end)
    return f"la période {text}" if text.startswith("du ") else text


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _image_loader(read: Callable[[str], bytes | None]) -> Callable[[Capture], Flowable | None]:
    def load(capture: Capture) -> Flowable | None:
        data = read(capture.sha256)
        if not data:
            return None
        try:
            from PIL import Image as PILImage

            with PILImage.open(io.BytesIO(data)) as picture:
                width, height = picture.size
            scale = min(9 * cm / width, 5 * cm / height)
            return Image(io.BytesIO(data), width=width * scale, height=height * scale)
        except Exception:  # noqa: BLE001 - an unreadable capture must not stop the document
            return None

    return load


def render_attestation(
    attestation: Attestation, read_artifact: Callable[[str], bytes | None]
) -> bytes:
    """The attestation as PDF bytes (A4, French, fonts embedded, numbered pages)."""
    s = document_styles()
    fonts = s.fonts
    buffer = io.BytesIO()
    doc = french_document(
        buffer,
        title="Attestation d'observation",
        author=f"Vigie — {attestation.vantage}",
        top_margin=1.6 * cm,
    )
    operator = f" ({_e(attestation.operator)})" if attestation.operator else ""
    made = format_datetime_fr(attestation.generated_at)
    story: list[Flowable] = [Paragraph("Attestation d'observation", s.h1)]
    if attestation.reference:
        story.append(Paragraph(f"<b>Référence :</b> {_e(attestation.reference)}", s.body))
    names = sorted({f.target.name for f in attestation.facts})
    story.append(
        Paragraph(
            "Ce document rapporte ce que le logiciel de surveillance Vigie a observé du ou des "
            f"services suivants : {', '.join(f'« {_e(n)} »' for n in names)}, pendant les plages "
            "horaires indiquées, depuis le point d'observation "
            f"« {_e(attestation.vantage)} »{operator}. Vigie vérifie ces services à intervalles "
            "réguliers, en lecture seule (il consulte les pages sans rien y saisir ni envoyer) "
            "et inscrit chaque vérification dans un registre signé qu'on ne peut ni modifier "
            f"ni compléter après coup. Établi le {made}.",
            s.body,
        )
    )
    load = _image_loader(read_artifact)
    for number, window in enumerate(attestation.windows, start=1):
        facts = [f for f in attestation.facts if f.window is window]
        block: list[Flowable] = [Paragraph(_window_title(facts[0], number), s.h2)]
        block += [Paragraph(note, s.body) for note in _window_notes(facts[0])]
        for index, one in enumerate(facts):
            part = _target_story(one, s, load)
            if index == 0:  # the window's title never ends a page alone
                part = block + part
            story.append(KeepTogether(part))
            story.append(Spacer(1, 4))
    story.append(Paragraph("Ce que ce document ne prouve pas", s.h2))
    story.append(
        Paragraph(
            "Il ne prouve pas que la personne concernée a tenté d'utiliser le service pendant ces "
            "plages, ni ce qu'elle a vu sur son propre appareil : il rapporte seulement les "
            "vérifications automatiques de Vigie. Une vérification réussie ne garantit pas que "
            "le service fonctionnait pour chaque usager ; une période sans vérification ne dit "
            "rien, ni dans un sens ni dans l'autre.",
            s.body,
        )
    )
    story.append(Paragraph("Comment le vérifier", s.h2))
    if attestation.bundle_name:
        story.append(
            Paragraph(
                f"L'archive de preuves <b>{_e(attestation.bundle_name)}</b>, remise avec ce "
                "document, contient chaque observation citée (par son numéro), les "
                "enregistrements des échecs, et les preuves cryptographiques qui les rattachent "
                "au registre signé. Toute personne peut la vérifier hors ligne avec la commande "
                f"<font name='{fonts.mono}'>vigie verify {_e(attestation.bundle_name)}</font> "
                f"ou avec le programme <font name='{fonts.mono}'>verify.py</font> qu'elle "
                f"contient. Elle couvre {_bundle_period(attestation)} (heure de Paris), ce qui "
                "contient toutes les plages, pour les services cités. Empreinte SHA-256 de "
                "l'archive : "
                f"<font name='{fonts.mono}' size=7>{_e(attestation.bundle_sha256 or '')}</font>.",
                s.body,
            )
        )
    else:
        story.append(
            Paragraph(
                "Aucune archive de preuves n'accompagne ce document : aucune des plages n'a "
                "d'entrée au registre à exporter (plages à venir, ou antérieures au registre).",
                s.body,
            )
        )
    footer = f"Vigie — attestation d'observation — {attestation.vantage}"
    doc.build(story, canvasmaker=_numbered_canvas(fonts, footer))
    return buffer.getvalue()
