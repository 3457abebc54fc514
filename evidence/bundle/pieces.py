"""Télérecours pièces from an evidence bundle: numbered PDF files and their bordereau.

An administrative court takes documents through Télérecours as PDF pièces listed in an
inventory (code de justice administrative, art. R. 414-3; arrêté du 12 mars 2013, art. 9), with
file names free of accents, dots and special characters, at most 80 characters (Télérecours
FAQ, « Verser des pièces »). A zip is not a pièce. This module reads only a bundle written by
`evidence.bundle.export_bundle` and writes, in a folder:

- ``Piece-01-Rapport-de-constat.pdf``: the bundle's ``report.pdf``, byte for byte;
- ``Piece-02-Observations-de-la-periode.pdf``: ``observations.csv`` as paginated tables, one
  row per check with its ledger number;
- ``Piece-03-Captures-d-ecran-des-echecs.pdf``: each failure screenshot, with its time (when
  the bundle holds any);
- ``Piece-0N-Instructions-de-verification.pdf``: ``LISEZMOI.txt`` (how to verify, with the
  vantage key's fingerprint);
- ``Bordereau-des-pieces.pdf``: the inventory: each pièce with its SHA-256, and the signed
  bundle they come from (file name, SHA-256, manifest), so that an opposing expert can check
  every pièce against it.

The same bundle always gives the same bytes (the PDFs are dated by the bundle's creation).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import io
import json
import re
import unicodedata
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.units import cm
from reportlab.lib.utils import ImageReader
from reportlab.platypus import (
    Flowable,
    Image,
    KeepTogether,
    LongTable,
    Paragraph,
    Spacer,
    TableStyle,
    XPreformatted,
)

from config.french import format_datetime_fr
from config.targets import CONTROL_PREFIX
from config.vocabulary import Outcome
from evidence.ledger.signing import NoteVerifier, key_fingerprint
from evidence.outages.tracker import cause_key, causes_text_fr
from evidence.report.render import document_styles, french_document, page_canvas

__all__ = ["MAX_NAME", "MAX_ROWS", "Piece", "PiecesError", "telerecours_name", "write_pieces"]

MAX_NAME = 80  # characters of a file name, extension included (Télérecours)
MAX_ROWS = 10_000  # observation rows in pièce 2 (~250 pages); beyond, failures only
MAX_CAPTURES = 200  # screenshots in the captures pièce
_MARGIN = 1.5 * cm
_PIECE_NAME = re.compile(r"(Piece-\d+-[A-Za-z0-9-]+|Bordereau-des-pieces)\.pdf")
_PAGE = re.compile(rb"/Type\s*/Page(?![a-z])")


class PiecesError(Exception):
    """The bundle cannot be turned into pièces (the message says why)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Piece:
    """One file written: its number (0: the bordereau), title, name, SHA-256 and pages."""

    number: int
    title: str
    path: Path
    sha256: str
    pages: int


def telerecours_name(title: str, number: int | None = None) -> str:
    """A file name Télérecours accepts: ``Piece-02-Observations-de-la-periode.pdf``.

    Accents dropped, every character but letters, digits and '-' made a '-', no dot but the
    extension's, at most `MAX_NAME` characters in all.
    """
    plain = unicodedata.normalize("NFKD", title)
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    plain = re.sub(r"[^A-Za-z0-9]+", "-", plain).strip("-")
    stem = f"Piece-{number:02d}-{plain}" if number is not None else plain
    stem = stem[: MAX_NAME - len(".pdf")].rstrip("-")
    return stem + ".pdf"


def _outcome_fr(outcome: str, status: str) -> str:
    if outcome == "ok":
        return "réussie"
    if outcome == Outcome.VANTAGE_OFFLINE:
        return "point d'observation hors ligne"
    key = cause_key(outcome, int(status) if status.isdigit() else None)
    return causes_text_fr({key: 1}).rsplit(" \N{MULTIPLICATION SIGN}", 1)[0]


class _Bundle:
    """The members of a bundle zip that the pièces use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with zipfile.ZipFile(path) as zf:
                self.names = set(zf.namelist())
                self.manifest_bytes = zf.read("manifest.json")
                self.report = zf.read("report.pdf")
                self.csv = zf.read("observations.csv").decode("utf-8-sig")
                self.lisezmoi = zf.read("LISEZMOI.txt").decode("utf-8")
                self.vkey = zf.read("proofs/vantage.vkey").decode("ascii").strip()
                self._artifacts = {
                    n: zf.read(n)
                    for n in self.names
                    if n.startswith("artifacts/") and n.endswith(".png")
                }
        except (OSError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
            raise PiecesError(f"{path}: not a Vigie evidence bundle ({exc})") from None
        self.manifest: dict[str, Any] = json.loads(self.manifest_bytes)
        self.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        self.created = dt.datetime.fromisoformat(self.manifest["created_at"])
        self.fingerprint = key_fingerprint(NoteVerifier.parse(self.vkey).raw)

    def rows(self) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(self.csv), delimiter=";"))

    def screenshot(self, sha: str) -> bytes | None:
        return self._artifacts.get(f"artifacts/{sha}.png")


def _render(
    story: list[Flowable], *, title: str, footer: str, created: dt.datetime, wide: bool = False
) -> tuple[bytes, int]:
    """A PDF (bytes, pages) with the report's fonts and page furniture; reproducible."""
    styles = document_styles()
    buffer = io.BytesIO()
    size = landscape(A4) if wide else A4
    doc = french_document(
        buffer, title=title, author="Vigie", top_margin=_MARGIN, pagesize=size, margin=_MARGIN
    )
    saved = rl_config.invariant
    rl_config.invariant = 1  # no random document id: the same bundle gives the same bytes
    try:
        doc.build(story, canvasmaker=page_canvas(styles, footer, created))
    finally:
        rl_config.invariant = saved
    return buffer.getvalue(), int(doc.page)


def _e(text: object) -> str:
    from xml.sax.saxutils import escape

    return escape(str(text))


def _observations(bundle: _Bundle, number: int) -> tuple[list[Flowable], str]:
    styles = document_styles()
    rows = bundle.rows()
    period = bundle.manifest.get("period") or {}
    shown = rows
    note = (
        f"Chaque ligne est une vérification, dans l'ordre du registre ({len(rows)} au total), "
        "telle qu'elle figure dans le fichier observations.csv de l'archive signée (colonne « N° » "
        ": numéro de l'entrée dans le registre, le même que dans observations.jsonl). Heures de "
        "Paris."
    )
    if len(rows) > MAX_ROWS:
        shown = [r for r in rows if r.get("succes") != "oui"][:MAX_ROWS]
        note += (
            f" La période compte {len(rows)} vérifications : pour rester lisible, cette pièce "
            f"n'en reprend que les {len(shown)} en échec ; toutes figurent dans "
            "observations.csv."
        )
    head = ["N°", "Service", "Date et heure (Paris)", "Résultat", "HTTP", "Durée (s)", "Détail"]
    cell = styles.cell
    data: list[list[Any]] = [[Paragraph(f"<b>{h}</b>", cell) for h in head]]
    data.extend(
        [
            row.get("seq", ""),
            Paragraph(_e(_service(row.get("cible", ""))), cell),
            row.get("date_paris", ""),
            Paragraph(_e(_outcome_fr(row.get("resultat", ""), row.get("statut_http", ""))), cell),
            row.get("statut_http", ""),
            _seconds(row.get("duree_s", "")),
            Paragraph(_e(_detail_fr(row)), cell),
        ]
        for row in shown
    )
    width = landscape(A4)[0] - 2 * _MARGIN
    fractions = (0.07, 0.15, 0.14, 0.17, 0.06, 0.08, 0.33)
    table = LongTable(data, colWidths=[width * f for f in fractions], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), styles.fonts.cell, 7),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.HexColor("#1f2933")),
                ("LINEBELOW", (0, 1), (-1, -1), 0.2, colors.HexColor("#cbd2d9")),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
            ]
        )
    )
    title = "Observations de la période"
    story: list[Flowable] = [
        Paragraph(f"Pièce n° {number} — {title}", styles.h1),
        Paragraph(
            _e(
                f"Point d'observation {bundle.manifest.get('vantage', '')} ; "
                + (
                    f"dossier de l'interruption {bundle.manifest['outage']}"
                    if bundle.manifest.get("outage")
                    else f"export demandé du {_when(period.get('from'))} au "
                    f"{_when(period.get('to'))}"
                )
                + " ; vérifications "
                f"enregistrées du {rows[0].get('date_paris', '?') if rows else '—'} au "
                f"{rows[-1].get('date_paris', '?') if rows else '—'} (heure de Paris)."
            ),
            styles.body,
        ),
        Paragraph(_e(note), styles.body),
        Spacer(1, 6),
        table,
    ]
    return story, title


_STEP = re.compile(r"step (\d+)/(\d+) '([^']*)'")


def _detail_fr(row: dict[str, str]) -> str:
    """What a judge reads of a check's error: a browser step by its number and name, never the
    selector the configuration gives it; an HTTP check's short message as recorded."""
    error = (row.get("erreur") or "").strip()
    if not error or row.get("succes") == "oui":
        return ""
    if row.get("resultat") == Outcome.VANTAGE_OFFLINE:
        return "tous les sites témoins en échec : connexion du point d'observation coupée"
    if row.get("type_sonde") == "browser":
        step = _STEP.search(error)
        if step is not None:
            name = re.sub(r"[-_]+", " ", step.group(3)).strip()
            return f"étape {step.group(1)} sur {step.group(2)} (« {name} ») non aboutie"
        return "parcours en navigateur interrompu (message technique dans observations.csv)"
    return error[:160]


def _seconds(text: str) -> str:
    """``0,000741`` -> ``0,001`` (milliseconds are enough to read; the CSV keeps the rest)."""
    try:
        return f"{float(text.replace(',', '.')):.3f}".replace(".", ",")
    except ValueError:
        return text


def _service(target_id: str) -> str:
    """A target id, or a control site's, said as such (controls test the vantage's network)."""
    if target_id.startswith(CONTROL_PREFIX):
        return f"site témoin ({target_id})"
    return target_id


def _when(text: str | None) -> str:
    if not text:
        return "?"
    return format_datetime_fr(dt.datetime.fromisoformat(text), seconds=True, zone=False)


def _failure_captures(bundle: _Bundle) -> list[tuple[dict[str, str], str]]:
    """(row, sha) of each screenshot of a failed check of the site, in ledger order."""
    found: list[tuple[dict[str, str], str]] = []
    seen: set[str] = set()
    for row in bundle.rows():
        if row.get("succes") == "oui" or row.get("resultat") == Outcome.VANTAGE_OFFLINE:
            continue
        for mark in (row.get("artefacts") or "").split():
            kind, _, sha = mark.partition(":")
            if kind == "screenshot" and sha not in seen and bundle.screenshot(sha) is not None:
                seen.add(sha)
                found.append((row, sha))
    return found[:MAX_CAPTURES]


def _captures(
    bundle: _Bundle, number: int, captures: Sequence[tuple[dict[str, str], str]]
) -> tuple[list[Flowable], str]:
    styles = document_styles()
    title = "Captures d'écran des échecs"
    story: list[Flowable] = [
        Paragraph(f"Pièce n° {number} — {title}", styles.h1),
        Paragraph(
            "Chaque image est la page telle que le navigateur de Vigie l'affichait au moment "
            "d'une vérification en échec, avec l'heure de cette vérification (heure de Paris). "
            "Le fichier d'origine se trouve dans l'archive signée sous le nom indiqué : son nom "
            "est son empreinte SHA-256, inscrite dans l'observation au registre. Les captures "
            "faites alors que la connexion du point d'observation était coupée ne sont pas des "
            "échecs du service et ne figurent pas ici.",
            styles.body,
        ),
    ]
    width = A4[0] - 2 * _MARGIN
    for row, sha in captures:
        data = bundle.screenshot(sha)
        assert data is not None
        try:
            size = ImageReader(io.BytesIO(data)).getSize()
        except Exception:  # noqa: BLE001 - a capture that is no image is said so, not fatal
            image: Flowable = Paragraph(
                "(ce fichier n'est pas une image lisible ; il est conservé tel quel dans "
                "l'archive)",
                styles.small,
            )
        else:
            scale = min(width / size[0], (A4[1] * 0.55) / size[1], 1.0)
            image = Image(io.BytesIO(data), width=size[0] * scale, height=size[1] * scale)
        caption = (
            f"<b>{_e(row.get('cible', ''))}</b> — vérification n° {_e(row.get('seq', ''))} du "
            f"{_e(row.get('date_paris', ''))} (heure de Paris) : "
            f"{_e(_outcome_fr(row.get('resultat', ''), row.get('statut_http', '')))}<br/>"
            f"<font name='{styles.fonts.mono}' size=6.5>artifacts/{sha}.png</font>"
        )
        story.append(KeepTogether([Spacer(1, 8), image, Paragraph(caption, styles.small)]))
    return story, title


def _instructions(bundle: _Bundle, number: int) -> tuple[list[Flowable], str]:
    styles = document_styles()
    title = "Instructions de vérification"
    story: list[Flowable] = [
        Paragraph(f"Pièce n° {number} — {title}", styles.h1),
        Paragraph(
            "Empreinte SHA-256 de la clé publique du point d'observation, à comparer avec celle "
            "obtenue par un autre canal (publication de l'opérateur, courrier, constat) :",
            styles.body,
        ),
        Paragraph(
            f"<font name='{styles.fonts.mono}'><b>{bundle.fingerprint}</b></font>", styles.body
        ),
        Spacer(1, 6),
        Paragraph(
            "Le texte ci-dessous est le fichier LISEZMOI.txt de l'archive signée, tel quel.",
            styles.body,
        ),
        XPreformatted(_e(bundle.lisezmoi), styles.mono),
    ]
    return story, title


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_pieces(bundle_path: Path, out_dir: Path) -> list[Piece]:
    """Write the pièces of `bundle_path` and their bordereau into `out_dir` (created).

    Returns the pièces, the bordereau last (number 0). Raises `PiecesError` when the bundle
    is not one, `OSError` when the folder cannot be written.
    """
    bundle = _Bundle(Path(bundle_path))
    out_dir = Path(out_dir)
    if out_dir.is_dir():
        older = sorted(p.name for p in out_dir.iterdir() if _PIECE_NAME.fullmatch(p.name))
        if older:  # stale pièces of another bundle must never sit beside these
            raise PiecesError(
                f"{out_dir} already holds pièces ({older[0]}…): choose an empty folder"
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    footer_base = f"Vigie — {bundle.manifest.get('vantage', '')} — archive {bundle.path.name}"
    builders: list[Callable[[int], tuple[bytes, int, str]]] = []

    def report(number: int) -> tuple[bytes, int, str]:
        del number  # the report is the bundle's, unchanged
        return bundle.report, len(_PAGE.findall(bundle.report)), "Rapport de constat"

    def rendered(
        make: Callable[[int], tuple[list[Flowable], str]], *, wide: bool = False
    ) -> Callable[[int], tuple[bytes, int, str]]:
        def build(number: int) -> tuple[bytes, int, str]:
            story, title = make(number)
            data, pages = _render(
                story,
                title=f"Pièce n° {number} — {title}",
                footer=f"{footer_base} — pièce n° {number}",
                created=bundle.created,
                wide=wide,
            )
            return data, pages, title

        return build

    builders.append(report)
    builders.append(rendered(lambda n: _observations(bundle, n), wide=True))
    captures = _failure_captures(bundle)
    if captures:
        builders.append(rendered(lambda n: _captures(bundle, n, captures)))
    builders.append(rendered(lambda n: _instructions(bundle, n)))
    pieces: list[Piece] = []
    for number, build in enumerate(builders, start=1):
        data, pages, title = build(number)
        path = out_dir / telerecours_name(title, number)
        path.write_bytes(data)
        pieces.append(Piece(number, title, path, _digest(data), pages))
    pieces.append(_bordereau(bundle, pieces, out_dir))
    return pieces


def _bordereau(bundle: _Bundle, pieces: Sequence[Piece], out_dir: Path) -> Piece:
    styles = document_styles()
    mono = styles.fonts.mono
    report_sha = (bundle.manifest.get("files") or {}).get("report.pdf", {}).get("sha256", "")
    rows: list[list[Any]] = [
        [
            Paragraph(f"<b>{h}</b>", styles.cell)
            for h in ("N°", "Pièce", "Fichier", "Pages", "SHA-256")
        ]
    ]
    small = f"<font name='{mono}' size=6>"
    rows.extend(
        [
            str(piece.number),
            Paragraph(_e(piece.title), styles.cell),
            Paragraph(f"<font name='{mono}' size=6.5>{_e(piece.path.name)}</font>", styles.cell),
            str(piece.pages),
            Paragraph(f"{small}{piece.sha256[:32]}<br/>{piece.sha256[32:]}</font>", styles.cell),
        ]
        for piece in pieces
    )
    width = A4[0] - 2 * _MARGIN
    table = LongTable(
        rows, colWidths=[width * f for f in (0.05, 0.2, 0.4, 0.07, 0.28)], repeatRows=1
    )
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), styles.fonts.cell, 7.5),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#cbd2d9")),
            ]
        )
    )
    manifest_sha = _digest(bundle.manifest_bytes)
    facts = [
        ("Archive signée", bundle.path.name),
        ("SHA-256 de l'archive", bundle.sha256),
        ("SHA-256 de manifest.json", manifest_sha),
        ("Point d'observation", str(bundle.manifest.get("vantage", ""))),
        ("Opérateur", str(bundle.manifest.get("operator") or "non renseigné")),
        ("Archive créée le", format_datetime_fr(bundle.created, seconds=True)),
        ("Empreinte de la clé (SHA-256)", bundle.fingerprint),
    ]
    story: list[Flowable] = [
        Paragraph("Bordereau des pièces", styles.title),
        Spacer(1, 8),
        Paragraph(
            "Pièces tirées d'une seule archive de preuves signée par le point d'observation "
            "Vigie désigné ci-dessous. L'archive elle-même (fichier zip) est tenue à la "
            "disposition de la juridiction et des parties : elle seule porte les signatures.",
            styles.body,
        ),
        Spacer(1, 4),
    ]
    for label, value in facts:
        story.append(
            Paragraph(
                f"<b>{_e(label)} :</b> <font name='{mono}' size=7.5>{_e(value)}</font>", styles.body
            )
        )
    story += [
        Spacer(1, 8),
        table,
        Spacer(1, 8),
        Paragraph("Comment rattacher chaque pièce à l'archive signée", styles.h2),
        Paragraph(
            "1. Vérifier l'archive (python3 verify.py dans l'archive décompressée, ou vigie "
            "verify), après avoir comparé l'empreinte de la clé ci-dessus à celle obtenue par un "
            "autre canal. 2. La pièce n° 1 est le fichier report.pdf de l'archive, octet pour "
            "octet : son SHA-256 est celui que manifest.json donne pour report.pdf "
            f"({report_sha[:16]}…). "
            "3. La pièce des observations reprend observations.csv, ligne par ligne, avec le "
            "numéro de chaque entrée du registre. 4. Chaque capture porte le nom de son fichier "
            "dans artifacts/, qui est son empreinte SHA-256. 5. Les instructions reprennent "
            "LISEZMOI.txt tel quel. 6. La commande « vigie export --bundle ARCHIVE --pieces "
            "DOSSIER », appliquée à la même archive, redonne les mêmes fichiers, octet pour "
            "octet (mêmes SHA-256).",
            styles.body,
        ),
    ]
    title = "Bordereau des pièces"
    data, pages = _render(
        story,
        title=title,
        footer=f"Vigie — {bundle.manifest.get('vantage', '')} — bordereau des pièces",
        created=bundle.created,
    )
    path = out_dir / telerecours_name(title)
    path.write_bytes(data)
    return Piece(0, title, path, _digest(data), pages)
