#!/usr/bin/env python3
"""Vérificateur autonome d'un dossier de preuves Vigie (Python 3.9+ et `cryptography` seulement).

Il ne fait que lire : il ne modifie aucun fichier et ne se connecte à rien. Il est écrit
indépendamment du logiciel Vigie (aucun import de Vigie), pour qu'un tiers puisse le relire.

Usage :
    python3 verify.py                  (depuis le dossier décompressé)
    python3 verify.py dossier.zip      (directement sur le fichier zip)
    python3 verify.py --cle CLE        (CLE : la clé publique du point d'observation publiée
                                        par son opérateur, « nom+identifiant+base64 »)

Ce qui est vérifié (RFC 9162, C2SP signed-note/tlog-checkpoint, RFC 3161) :
 1. la signature Ed25519 du manifeste par la clé du point d'observation ;
 2. l'empreinte SHA-256 et la taille de chaque fichier listé dans le manifeste ;
 3. la signature de chaque point de contrôle (checkpoint) ;
 4. que les entrées (observations.jsonl, plus les empreintes des entrées masquées) recalculent
    exactement la racine de l'arbre de Merkle signée par chaque point de contrôle ;
 5. les preuves de cohérence entre points de contrôle ;
 6. les jetons d'horodatage RFC 3161 (si le module `rfc3161-client` est installé ; sinon la
    commande `openssl ts -verify` à lancer est affichée) ;
 7. que chaque capture (artifacts/) a bien l'empreinte qui lui sert de nom ;
 8. que chaque vérification humaine d'une panne (entrée « review ») est signée par la clé du
    point d'observation et que ses champs (verdict, auteur, motif) n'ont pas été modifiés.
Code de sortie : 0 si tout est correct, 1 au premier échec, 2 pour une erreur d'usage
(chemin inexistant, option inconnue). `python3 verify.py --help` affiche l'aide.

Depuis un programme : `verifier_dossier(chemin, cle)` fait les mêmes contrôles sans rien
afficher et rend un `Resultat` (contrôles réussis, remarques, premier échec avec son fichier
et son entrée). Chaque échec et chaque avertissement porte un code stable et les valeurs que
cite son message (`Echec.code`, `Echec.valeurs`, `Resultat.avertissements`) : `vigie verify`
est ce même vérificateur, qui les dit en anglais.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextvars
import csv
import hashlib
import importlib
import io
import json
import os
import re
import sys
import zipfile
import zlib
from collections.abc import Sequence
from typing import IO, Any, NoReturn

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:  # pragma: no cover - explained to the user
    print("ÉCHEC : le module Python « cryptography » est nécessaire : pip install cryptography")
    sys.exit(2)


FORMAT = "vigie-bundle/1"
SIGNATURES = ("manifest.json", "manifest.sig", "manifest.tsr")
# Fichiers que le système ajoute parfois à un dossier décompressé (jamais dans le zip).
FICHIERS_SYSTEME = (".DS_Store", "Thumbs.db", "desktop.ini")


class Echec(Exception):
    """Un contrôle a échoué : le message, le fichier en cause et, s'il y a lieu, l'entrée.

    `code` : le nom stable de l'échec (« file_hash_mismatch »...) et `valeurs` : les valeurs
    que son message cite, pour un programme qui l'affiche autrement (Vigie le traduit en
    anglais pour `vigie verify`) ; une valeur peut être l'échec qui l'a causé."""

    def __init__(
        self,
        message: str,
        fichier: str | None = None,
        entree: int | None = None,
        plage: tuple[int, int] | None = None,
        *,
        code: str,
        valeurs: dict[str, Any] | None = None,
    ):
        self.message = message
        self.fichier = fichier
        self.entree = entree
        self.plage = plage  # [début, fin) des entrées qu'une racine différente met en cause
        self.code = code
        # une cause est gardée en copie sans trace d'appels (aucun fichier du dossier ouvert)
        self.valeurs = {
            k: v.copie() if isinstance(v, Echec) else v for k, v in (valeurs or {}).items()
        }
        lieu = ""
        if fichier is not None:
            lieu = fichier + (", entrée " + str(entree) if entree is not None else "") + " : "
        super().__init__(lieu + message)

    @classmethod
    def avec_detail(
        cls, texte: str, exc: BaseException, fichier: str | None = None, *, code: str
    ) -> Echec:
        """« texte (détail) » : un fichier qui ne se lit pas, le détail de l'erreur cité."""
        return cls(texte + " (" + str(exc) + ")", fichier, code=code, valeurs={"detail": str(exc)})

    def copie(self) -> Echec:
        """Le même échec, sans trace d'appels."""
        return Echec(
            self.message,
            self.fichier,
            self.entree,
            self.plage,
            code=self.code,
            valeurs=self.valeurs,
        )


# --- Lecture du dossier (zip ou répertoire) ---------------------------------------------------

ZIP_ABIME = (zipfile.BadZipFile, zlib.error, EOFError)


class Dossier:
    def __init__(self, chemin: str) -> None:
        self.zip: zipfile.ZipFile | None = None
        self.racine = chemin
        self.noms: list[str] = []
        self.doublons: list[str] = []  # noms présents deux fois dans le zip
        self.dossiers_pleins: list[
            str
        ] = []  # entrées « dossier/ » du zip qui contiennent des octets
        if os.path.isfile(chemin):
            self.zip = zipfile.ZipFile(chemin)
            for membre in self.zip.infolist():
                nom = membre.filename
                if nom.endswith("/"):
                    if membre.file_size:
                        self.dossiers_pleins.append(nom)
                    continue
                if nom in self.noms:
                    self.doublons.append(nom)
                else:
                    self.noms.append(nom)
        else:
            for base, dossiers, fichiers in os.walk(chemin):
                dossiers[:] = [d for d in dossiers if d != "__pycache__"]
                for f in fichiers:
                    nom = os.path.relpath(os.path.join(base, f), chemin).replace(os.sep, "/")
                    self.noms.append(nom)

    def systeme(self, nom: str) -> bool:
        """Un fichier que le système d'exploitation ajoute à un dossier (pas dans un zip)."""
        court = nom.rsplit("/", 1)[-1]
        return self.zip is None and (court in FICHIERS_SYSTEME or court.startswith("._"))

    def ouvrir(self, nom: str) -> IO[bytes]:
        if nom not in self.noms:
            raise Echec("absent du dossier", nom, code="missing_file")
        try:
            if self.zip is not None:
                return self.zip.open(nom)
            return open(os.path.join(self.racine, *nom.split("/")), "rb")
        except (KeyError, OSError, *ZIP_ABIME) as exc:
            raise Echec.avec_detail("illisible", exc, nom, code="file_unreadable") from None

    def lire(self, nom: str) -> bytes:
        with self.ouvrir(nom) as f:
            try:
                return f.read()
            except ZIP_ABIME as exc:
                raise Echec.avec_detail(
                    "zip endommagé", exc, nom, code="zip_damaged_member"
                ) from None

    def existe(self, nom: str) -> bool:
        return nom in self.noms

    def fermer(self) -> None:
        if self.zip is not None:
            self.zip.close()


class LectureEmpreinte:
    """Un fichier lu une seule fois : son empreinte SHA-256 et sa taille sont calculées au fil
    de la lecture, pour être comparées au manifeste après les contrôles de l'arbre."""

    def __init__(self, dossier: Dossier, nom: str) -> None:
        self.nom = nom
        self.flux = dossier.ouvrir(nom)
        self.empreinte = hashlib.sha256()
        self.taille = 0

    def read(self, taille: int = -1) -> bytes:
        try:
            bloc = self.flux.read(taille)
        except ZIP_ABIME as exc:
            raise Echec.avec_detail(
                "zip endommagé", exc, self.nom, code="zip_damaged_member"
            ) from None
        self.empreinte.update(bloc)
        self.taille += len(bloc)
        return bloc

    def lignes(self) -> Any:
        """Les lignes (sans leur fin de ligne), lues par blocs."""
        reste = b""
        while True:
            bloc = self.read(1 << 20)
            if not bloc:
                break
            morceaux = (reste + bloc).split(b"\n")
            reste = morceaux.pop()
            yield from morceaux
        if reste:
            yield reste

    def conforme(self, attendu: dict[str, Any]) -> bool:
        """Lit la fin du fichier ; vrai si empreinte et taille sont celles du manifeste."""
        while self.read(1 << 20):
            pass
        self.flux.close()
        return bool(
            self.empreinte.hexdigest() == attendu["sha256"] and self.taille == attendu["size"]
        )


# --- Arbre de Merkle (RFC 9162 §2.1) ----------------------------------------------------------


def h_feuille(donnees: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + donnees).digest()


def h_noeud(gauche: bytes, droite: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + gauche + droite).digest()


class Arbre:
    """L'arbre réduit à ses sous-arbres complets, de gauche à droite : [(niveau, empreinte)]."""

    def __init__(self) -> None:
        self.taille = 0
        self.pile: list[tuple[int, bytes]] = []

    def ajouter(self, niveau: int, empreinte: bytes) -> None:
        if self.taille % (1 << niveau):
            raise Echec(
                "preuve mal formée : sous-arbre non aligné", code="proof_subtree_misaligned"
            )
        self.taille += 1 << niveau
        while self.pile and self.pile[-1][0] == niveau:
            empreinte = h_noeud(self.pile.pop()[1], empreinte)
            niveau += 1
        self.pile.append((niveau, empreinte))

    def ajouter_feuilles(self, feuilles: list[bytes]) -> None:
        """Des feuilles à la suite, comme autant d'`ajouter(0, f)` : chaque sous-arbre complet
        et aligné est calculé couche par couche avant d'être empilé (feuille par feuille, la
        pile coûtait le tiers du temps d'un dossier d'une seule cible)."""
        i = 0
        while i < len(feuilles):
            niveau = 0
            while not self.taille % (2 << niveau) and (2 << niveau) <= len(feuilles) - i:
                niveau += 1
            couche = feuilles[i : i + (1 << niveau)]
            while len(couche) > 1:
                couche = [h_noeud(couche[j], couche[j + 1]) for j in range(0, len(couche), 2)]
            self.ajouter(niveau, couche[0])
            i += 1 << niveau

    def racine(self) -> bytes:
        if not self.pile:
            return hashlib.sha256(b"").digest()
        acc = self.pile[-1][1]
        for _niveau, empreinte in reversed(self.pile[:-1]):
            acc = h_noeud(empreinte, acc)
        return acc


def decomposition(debut: int, fin: int) -> list[tuple[int, int]]:
    """[debut, fin) en sous-arbres complets alignés (niveau, indice), de gauche à droite."""
    parties = []
    pos = debut
    while pos < fin:
        niveau = 0
        while pos % (1 << (niveau + 1)) == 0 and pos + (1 << (niveau + 1)) <= fin:
            niveau += 1
        parties.append((niveau, pos >> niveau))
        pos += 1 << niveau
    return parties


def racine_par_inclusion(feuille: bytes, indice: int, taille: int, chemin: list[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2."""
    if not 0 <= indice < taille:
        raise Echec("preuve d'inclusion : indice hors de l'arbre", code="inclusion_index_outside")
    fn, sn, r = indice, taille - 1, feuille
    for p in chemin:
        if sn == 0:
            raise Echec("preuve d'inclusion trop longue", code="inclusion_proof_too_long")
        if fn & 1 or fn == sn:
            r = h_noeud(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = h_noeud(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Echec("preuve d'inclusion trop courte", code="inclusion_proof_too_short")
    return r


def verifier_coherence(
    m: int, n: int, racine_m: bytes, racine_n: bytes, preuve: list[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2 : l'arbre de taille n prolonge celui de taille m."""
    if m == n:
        return racine_m == racine_n and not preuve
    if m == 0 or m > n or not preuve:
        return m == 0
    chemin = list(preuve)
    if m & (m - 1) == 0:
        chemin.insert(0, racine_m)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = chemin[0]
    for c in chemin[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = h_noeud(c, fr)
            sr = h_noeud(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = h_noeud(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == racine_m and sr == racine_n


# --- Notes signées (C2SP signed-note), clé Ed25519 --------------------------------------------


class Cle:
    def __init__(self, chaine: str) -> None:
        morceaux = chaine.strip().split("+", 2)
        if len(morceaux) != 3:
            raise Echec(
                "clé publique mal formée (attendu : nom+identifiant+base64)", code="key_malformed"
            )
        self.nom, identifiant, b64 = morceaux
        try:
            brut = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise Echec(
                "clé publique mal encodée (base64 invalide)", code="key_bad_base64"
            ) from None
        if len(brut) != 33 or brut[0] != 1:
            raise Echec("la clé publique n'est pas une clé Ed25519", code="key_not_ed25519")
        self.brut = brut[1:]
        self.id = hashlib.sha256(self.nom.encode() + b"\n\x01" + self.brut).digest()[:4]
        if self.id.hex() != identifiant.lower():
            raise Echec(
                "l'identifiant de la clé ne correspond pas à la clé", code="key_id_mismatch"
            )
        self.cle = Ed25519PublicKey.from_public_bytes(self.brut)
        self.chaine = self.nom + "+" + identifiant.lower() + "+" + b64

    def ouvrir_note(self, note: str) -> str:
        """Le texte d'une note signée par cette clé ; Echec sinon."""
        coupure = note.rfind("\n\n")
        if coupure < 0 or not note.endswith("\n"):
            raise Echec("note signée mal formée", code="note_malformed")
        texte, signatures = note[: coupure + 1], note[coupure + 2 :]
        for ligne in signatures.splitlines():
            if not ligne.startswith("\u2014 "):
                raise Echec("ligne de signature mal formée", code="note_signature_line_malformed")
            nom, _, b64 = ligne[2:].rpartition(" ")
            try:
                blob = base64.b64decode(b64, validate=True)
            except (binascii.Error, ValueError):
                raise Echec(
                    "signature mal encodée (base64 invalide)", code="note_signature_bad_base64"
                ) from None
            if base64.b64encode(blob).decode("ascii") != b64:
                # les bits de remplissage du dernier caractère ne sont pas signés
                raise Echec(
                    "signature mal encodée (base64 non canonique : modifiée)",
                    code="note_signature_not_canonical",
                )
            if nom == self.nom and blob[:4] == self.id:
                try:
                    self.cle.verify(blob[4:], texte.encode("utf-8"))
                except InvalidSignature:
                    raise Echec(
                        "signature invalide : note modifiée ou falsifiée",
                        code="note_signature_invalid",
                    ) from None
                return texte
        raise Echec(
            "la note ne porte pas de signature de la clé " + self.nom,
            code="note_unsigned_by_key",
            valeurs={"cle": self.nom},
        )


# --- Sortie -----------------------------------------------------------------------------------


class Resultat:
    """Ce qu'une vérification a établi, pour un programme qui appelle `verifier_dossier` :
    les contrôles réussis (les lignes « OK »), les remarques (avertissements et explications,
    les lignes en retrait) et le premier échec (`echec.message`, `echec.fichier`,
    `echec.entree`), ou `None` si le dossier est intact.

    `comptes` : ce qui a été vérifié, par contrôle réussi (« fichiers », « points_de_controle »,
    « entrees » montrées, « masquees », « preuves_tlog », « horodatages » vérifiés ici,
    « captures », « revues ») ; `complets` : les cibles dont l'historique est prouvé complet ;
    `temoins` : les témoins dont la contresignature est valide ; `avertissements` : le code et
    les valeurs de chaque remarque qui est un avertissement (comme pour `Echec`)."""

    def __init__(self, chemin: str, afficher: bool = False) -> None:
        self.chemin = chemin
        self.afficher = afficher  # écrire aussi chaque ligne, comme `python3 verify.py`
        self.reussis: list[str] = []
        self.remarques: list[str] = []
        self.echec: Echec | None = None
        self.comptes: dict[str, int] = {}
        self.complets: list[str] = []
        self.temoins: list[str] = []
        self.avertissements: list[tuple[str, dict[str, Any]]] = []

    @property
    def ok(self) -> bool:
        return self.echec is None


# La vérification en cours dans ce fil d'exécution (None : hors de `verifier_dossier`).
_EN_COURS: contextvars.ContextVar[Resultat | None] = contextvars.ContextVar(
    "vigie_verification_en_cours", default=None
)


def compter(nom: str, nombre: int) -> None:
    """Ajoute `nombre` au compte `nom` de la vérification en cours (voir `Resultat`)."""
    resultat = _EN_COURS.get()
    if resultat is not None:
        resultat.comptes[nom] = resultat.comptes.get(nom, 0) + nombre


def ok(message: str) -> None:
    resultat = _EN_COURS.get()
    if resultat is not None:
        resultat.reussis.append(message)
    if resultat is None or resultat.afficher:
        print("OK     " + message)


def info(message: str, code: str | None = None, valeurs: dict[str, Any] | None = None) -> None:
    """Une remarque ; avec un `code`, un avertissement (voir `Resultat.avertissements`)."""
    resultat = _EN_COURS.get()
    if resultat is not None:
        resultat.remarques.append(message)
        if code is not None:
            resultat.avertissements.append((code, dict(valeurs or {})))
    if resultat is None or resultat.afficher:
        print("       " + message)


# --- Contrôles --------------------------------------------------------------------------------


def verifier_membres(dossier: Dossier) -> None:
    """Chaque nom une seule fois dans le zip : un outil de décompression pourrait montrer la
    seconde copie d'un fichier alors que c'est la première qui a été vérifiée (ou l'inverse)."""
    if dossier.doublons:
        raise Echec(
            "présent deux fois dans le zip (fichier ajouté)",
            dossier.doublons[0],
            code="member_twice",
        )
    if dossier.dossiers_pleins:
        raise Echec(
            "entrée de dossier qui contient des données",
            dossier.dossiers_pleins[0],
            code="folder_with_data",
        )


def entier(valeur: Any) -> int:
    """Un entier JSON (TypeError sinon)."""
    if isinstance(valeur, bool) or not isinstance(valeur, int):
        raise TypeError("un entier est attendu, pas " + repr(valeur)[:40])
    return valeur


_DECODEUR = json.JSONDecoder()
# Le numéro d'une entrée telle que le registre l'écrit (JSON compact, clés triées).
SEQ_RAPIDE = re.compile(rb'"seq":([0-9]+)[,}]')


def objet_json(brut: bytes) -> dict[str, Any]:
    """Un objet JSON (ValueError ou TypeError sinon).

    Le texte UTF-8 est décodé directement (sans la détection d'encodage de `json.loads`, qui
    coûtait 40 % du temps de lecture d'une entrée) ; le moindre doute passe par `json.loads`,
    le verdict est donc le même."""
    try:
        valeur = _DECODEUR.decode(brut.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError comprise
        valeur = json.loads(brut)
    if not isinstance(valeur, dict):
        raise TypeError("ce n'est pas un objet JSON")
    return valeur


def hachage(texte: Any) -> bytes:
    """Une empreinte SHA-256 en base64 (ValueError ou TypeError sinon)."""
    if not isinstance(texte, str):
        raise TypeError("une empreinte est un texte base64")
    valeur = base64.b64decode(texte, validate=True)
    if len(valeur) != 32:
        raise ValueError("une empreinte SHA-256 fait 32 octets")
    return valeur


def verifier_manifeste(dossier: Dossier, cle_donnee: str | None) -> tuple[dict[str, Any], Cle]:
    brut = dossier.lire("manifest.json")
    try:
        manifeste = objet_json(brut)
    except (ValueError, TypeError) as exc:
        raise Echec.avec_detail(
            "illisible", exc, "manifest.json", code="manifest_unreadable"
        ) from None
    inscrite = manifeste.get("public_key")
    if cle_donnee is not None:
        try:
            cle = Cle(cle_donnee)
        except Echec as exc:
            raise Echec(
                "clé donnée avec --cle : " + str(exc),
                code="given_key_invalid",
                valeurs={"cause": exc},
            ) from None
        if not isinstance(inscrite, str) or cle_donnee.strip() != inscrite.strip():
            raise Echec(
                "nomme une autre clé (" + str(inscrite) + ") que la clé du point "
                "d'observation donnée (" + cle_donnee.strip() + ")",
                "manifest.json",
                code="manifest_other_key",
                valeurs={"inscrite": str(inscrite), "donnee": cle_donnee.strip()},
            )
    else:
        try:
            cle = Cle(str(inscrite))
        except Echec as exc:
            raise Echec(
                "clé publique illisible : " + str(exc),
                "manifest.json",
                code="manifest_key_unreadable",
                valeurs={"cause": exc},
            ) from None
        info(
            "clé publique prise dans le manifeste : comparez-la à celle publiée par l'opérateur",
            "key_from_manifest",
            {"cle": str(inscrite)},
        )
        info("  " + str(inscrite))
    if manifeste.get("format") != FORMAT:
        raise Echec(
            "format inconnu : " + repr(manifeste.get("format")),
            "manifest.json",
            code="manifest_unknown_format",
            valeurs={"format": repr(manifeste.get("format"))},
        )
    try:
        texte = cle.ouvrir_note(dossier.lire("manifest.sig").decode("utf-8"))
    except UnicodeDecodeError:
        raise Echec(
            "ce n'est pas du texte UTF-8 (modifié)", "manifest.sig", code="manifest_sig_not_utf8"
        ) from None
    except Echec as exc:
        if exc.fichier is not None:
            raise
        raise Echec(
            "non signé par la clé du point d'observation "
            + cle.nom
            + " ("
            + cle.id.hex()
            + ") : "
            + str(exc),
            "manifest.sig",
            code="manifest_not_signed",
            valeurs={"cle": cle.nom, "id": cle.id.hex(), "cause": exc},
        ) from None
    if texte != FORMAT + "\n" + hashlib.sha256(brut).hexdigest() + "\n":
        raise Echec(
            "son empreinte ne correspond pas à la signature (modifié)",
            "manifest.json",
            code="manifest_hash_mismatch",
        )
    fichiers = manifeste.get("files")
    if not isinstance(fichiers, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("sha256"), str) and type(v.get("size")) is int
        for v in fichiers.values()
    ):
        raise Echec(
            "liste des fichiers mal formée", "manifest.json", code="manifest_files_malformed"
        )
    if manifeste.get("mode") not in ("range", "outage"):
        raise Echec(
            "mode inconnu : " + repr(manifeste.get("mode")),
            "manifest.json",
            code="manifest_unknown_mode",
            valeurs={"mode": repr(manifeste.get("mode"))},
        )
    for nom in ("observations.jsonl", "proofs/checkpoints.jsonl"):
        if nom not in fichiers:
            raise Echec("absent du manifeste signé", nom, code="not_in_manifest")
    ok("manifeste signé par " + cle.nom + " (clé " + cle.id.hex() + ")")
    declare = manifeste.get("timestamp")
    if isinstance(declare, dict) and declare.get("token") is not None:
        if not dossier.existe("manifest.tsr"):
            raise Echec(
                "absent alors que le manifeste signé déclare ce jeton",
                "manifest.tsr",
                code="manifest_token_missing",
            )
    elif isinstance(declare, dict):
        info(
            "attention : le manifeste signé déclare que l'autorité d'horodatage a échoué à "
            "l'export (" + str(declare.get("error")) + ") ; les horodatages des points de "
            "contrôle restent vérifiés",
            "timestamp_failed_at_export",
            {"tsa": str(manifeste.get("tsa")), "erreur": str(declare.get("error"))},
        )
    elif manifeste.get("tsa") and not dossier.existe("manifest.tsr"):
        info(
            "attention : le manifeste nomme une autorité d'horodatage mais manifest.tsr est "
            "absent (pas d'horodatage du manifeste à l'export, ou jeton retiré) ; les "
            "horodatages des points de contrôle restent vérifiés",
            "manifest_token_absent",
            {"tsa": str(manifeste.get("tsa"))},
        )
    return manifeste, cle


def lus_en_flux(manifeste: dict[str, Any]) -> tuple[str, ...]:
    """Les fichiers dont l'empreinte est vérifiée pendant le contrôle de l'arbre (pour nommer
    l'entrée fautive) plutôt qu'avec les autres."""
    if manifeste["mode"] == "outage":
        return ("observations.jsonl",)
    return ("observations.jsonl", "proofs/hidden-leaves.bin")


def verifier_fichiers(dossier: Dossier, manifeste: dict[str, Any]) -> None:
    fichiers = manifeste["files"]
    differes = lus_en_flux(manifeste)
    for nom in sorted(fichiers):
        if nom in differes:
            if not dossier.existe(nom):
                raise Echec("absent du dossier", nom, code="missing_file")
            continue
        attendu = fichiers[nom]
        empreinte = hashlib.sha256()
        taille = 0
        with dossier.ouvrir(nom) as f:
            try:
                while True:
                    bloc = f.read(1 << 20)
                    if not bloc:
                        break
                    empreinte.update(bloc)
                    taille += len(bloc)
            except ZIP_ABIME:
                raise Echec("modifié (zip endommagé)", nom, code="file_damaged") from None
        if empreinte.hexdigest() != attendu["sha256"] or taille != attendu["size"]:
            raise Echec("modifié (empreinte SHA-256 différente)", nom, code="file_hash_mismatch")
    en_trop = sorted(
        n
        for n in dossier.noms
        if n not in fichiers and n not in SIGNATURES and not dossier.systeme(n)
    )
    # Dans un zip, tout fichier en trop est un ajout. Dans un dossier décompressé, seuls ceux
    # d'artifacts/ et de proofs/ passeraient pour des preuves ; les autres (le zip lui-même,
    # d'autres fichiers du dossier où l'on a décompressé) sont signalés sans faire échouer.
    ajouts = [
        n for n in en_trop if dossier.zip is not None or n.startswith(("artifacts/", "proofs/"))
    ]
    if ajouts:
        raise Echec("absent du manifeste signé (fichier ajouté)", ajouts[0], code="file_added")
    if en_trop:
        info(
            "attention : fichiers hors du dossier de preuves (non vérifiés) : "
            + ", ".join(en_trop),
            "files_outside_bundle",
            {"noms": ", ".join(en_trop)},
        )
    compter("fichiers", len(fichiers))
    ok(
        str(len(fichiers)) + " fichiers intacts (SHA-256 et taille conformes au manifeste ; "
        "les entrées sont vérifiées plus bas, avec les preuves)"
    )


def lire_points_de_controle(dossier: Dossier, cle: Cle) -> dict[int, bytes]:
    nom = "proofs/checkpoints.jsonl"
    points = {}
    for numero, ligne in enumerate(dossier.lire(nom).splitlines(), 1):
        seq = None
        try:
            entree = objet_json(ligne)
            seq = entier(entree["seq"])
            note = entree["note"]
            taille, racine_b64 = entree["tree_size"], entree["root_hash"]
        except (ValueError, KeyError, TypeError) as exc:
            raise Echec(
                "ligne " + str(numero) + " illisible (" + str(exc) + ")",
                nom,
                seq,
                code="checkpoint_line_unreadable",
                valeurs={"ligne": numero, "detail": str(exc)},
            ) from None
        try:
            texte = cle.ouvrir_note(note)
        except Echec as exc:
            raise Echec(
                "point de contrôle non signé par la clé du point d'observation "
                + cle.nom
                + " : "
                + str(exc),
                nom,
                seq,
                code="checkpoint_not_signed",
                valeurs={"cle": cle.nom, "cause": exc},
            ) from None
        morceaux = texte.split("\n")
        if len(morceaux) < 4 or morceaux[0] != cle.nom or morceaux[1] != str(seq) or taille != seq:
            raise Echec(
                "point de contrôle : taille ou origine incohérente",
                nom,
                seq,
                code="checkpoint_size_mismatch",
            )
        if morceaux[2] != racine_b64:
            raise Echec(
                "point de contrôle : racine incohérente avec sa note",
                nom,
                seq,
                code="checkpoint_root_mismatch",
            )
        fichier_note = "proofs/checkpoints/" + str(seq) + ".note"
        if dossier.existe(fichier_note) and dossier.lire(fichier_note) != note.encode("utf-8"):
            raise Echec(
                "différent du point de contrôle signé", fichier_note, code="checkpoint_note_differs"
            )
        try:
            points[seq] = hachage(morceaux[2])
        except ValueError as exc:
            raise Echec(
                "racine illisible (" + str(exc) + ")",
                nom,
                seq,
                code="checkpoint_root_unreadable",
                valeurs={"detail": str(exc)},
            ) from None
    compter("points_de_controle", len(points))
    ok(str(len(points)) + " points de contrôle signés par " + cle.nom)
    return points


def controle_en_flux(
    dossier: Dossier, manifeste: dict[str, Any], controle: Any, *args: Any
) -> None:
    """Lance `controle` sur les fichiers lus en flux ; en cas d'échec, un fichier dont
    l'empreinte diffère du manifeste est nommé en premier, avec l'entrée en cause."""
    flux: dict[str, LectureEmpreinte | None] = dict.fromkeys(lus_en_flux(manifeste))

    def ouvrir(nom: str) -> LectureEmpreinte:
        lecture = flux[nom] = LectureEmpreinte(dossier, nom)
        return lecture

    def conformes(signe: Echec | None) -> None:
        """`signe` : l'échec des preuves, s'il y en a un (le premier signe de la modification)."""
        for nom, lecture in flux.items():
            if lecture is not None and not lecture.conforme(manifeste["files"][nom]):
                if signe is None:
                    raise Echec(
                        "modifié (empreinte SHA-256 différente)", nom, code="file_hash_mismatch"
                    )
                raise Echec(
                    "modifié (empreinte SHA-256 différente ; " + signe.message + ")",
                    nom,
                    signe.entree,
                    code="file_hash_mismatch_first_sign",
                    valeurs={"cause": signe},
                )

    try:
        controle(ouvrir, *args)
    except Echec as exc:
        conformes(exc)
        raise
    conformes(None)


def cellules_csv(entree: dict[str, Any]) -> dict[str, str]:
    """Ce que observations.csv montre d'une observation, écrit comme l'export l'écrit."""
    debut = str(entree.get("started_at") or "")
    captures = entree.get("artifacts") or {}
    statut = entree.get("http_status")
    erreur = str(entree.get("error") or "").replace("\r", " ").replace("\n", " ")[:300]
    cellules = {
        "cible": str(entree.get("target_id") or ""),
        "type_sonde": str(entree.get("kind") or ""),
        "succes": "oui" if entree.get("success") is True else "non",
        "resultat": str(entree.get("outcome") or ""),
        "statut_http": "" if statut is None else str(statut),
        "ip_distante": str(entree.get("remote_ip") or ""),
        "url_finale": str(entree.get("final_url") or ""),
        "erreur": erreur,
        "artefacts": " ".join(k + ":" + h for h, k in sorted(captures.items())),
    }
    if debut.endswith("Z"):
        cellules["date_utc"] = debut[:10] + " " + debut[11:19]
    return cellules


def localiser(dossier: Dossier, echec: Echec) -> Echec:
    """Une racine différente met en cause un point de contrôle, pas l'entrée : la trouver.

    observations.csv est garanti par le manifeste signé ; la première entrée de la plage
    dont la ligne contredit sa ligne du CSV est celle qui a été modifiée. Une modification
    que le CSV ne montre pas (environnement, événement de panne, entrées échangées) reste
    signalée au point de contrôle qui l'a révélée.
    """
    assert echec.plage is not None
    debut, fin = echec.plage
    trouvee: tuple[int, str, str | None] | None = None
    try:
        texte = dossier.lire("observations.csv").decode("utf-8-sig")
        lignes_csv = {r["seq"]: r for r in csv.DictReader(io.StringIO(texte), delimiter=";")}
        with dossier.ouvrir("observations.jsonl") as flux:
            for ligne in flux:
                entree = json.loads(ligne)
                seq = entree.get("seq")
                if not isinstance(seq, int) or not debut <= seq < fin:
                    continue
                ligne_csv = lignes_csv.get(str(seq))
                if entree.get("type") != "observation" or ligne_csv is None:
                    continue
                for colonne, valeur in cellules_csv(entree).items():
                    if ligne_csv.get(colonne) != valeur:
                        trouvee = (seq, colonne, ligne_csv.get(colonne))
                        break
                duree = float(ligne_csv["duree_s"].replace(",", "."))
                if trouvee is None and abs(duree - float(entree["duration_s"])) > 1e-6:
                    trouvee = (seq, "duree_s", ligne_csv["duree_s"])
                if trouvee is not None:
                    break
    except (Echec, ValueError, KeyError, TypeError, OSError, *ZIP_ABIME):
        trouvee = None
    if trouvee is None:  # une modification que le CSV ne montre pas : le point de contrôle
        return echec
    seq, colonne, dans_csv = trouvee
    return Echec(
        "sa colonne « "
        + colonne
        + " » diffère de observations.csv ("
        + repr(dans_csv)
        + ") ; "
        + echec.message,
        "observations.jsonl",
        seq,
        code="entry_differs_from_csv",
        valeurs={"seq": seq, "colonne": colonne, "csv": repr(dans_csv), "cause": echec},
    )


class ArbrePlage:
    """L'arbre de Merkle reconstruit sur la plage : chaque racine signée qu'il atteint est
    comparée dès qu'il en a la taille."""

    def __init__(self, points: dict[int, bytes], debut: int, fin: int) -> None:
        self.arbre = Arbre()
        self.points = points
        self.debut = debut
        self.seq = debut
        self.fin = fin
        self.verifies: list[int] = []
        self.masquees: LectureEmpreinte | None = None
        self.nb_masquees = 0
        self.attente: list[bytes] = []  # feuilles pas encore ajoutées à l'arbre

    def vider(self) -> None:
        """Ajoute à l'arbre les feuilles en attente."""
        if self.attente:
            self.arbre.ajouter_feuilles(self.attente)
            self.attente = []

    def borne(self) -> None:
        self.vider()
        if self.seq in self.points and self.arbre.taille == self.seq:
            if self.arbre.racine() != self.points[self.seq]:
                debut = self.verifies[-1] if self.verifies else self.debut
                raise Echec(
                    "les entrées de "
                    + str(debut)
                    + " à "
                    + str(self.seq - 1)
                    + " ne recalculent pas la racine du point de contrôle "
                    + str(self.seq),
                    "observations.jsonl",
                    self.seq,
                    (debut, self.seq),
                    code="range_root_mismatch",
                    valeurs={"debut": debut, "fin": self.seq - 1, "point": self.seq},
                )
            if self.seq not in self.verifies:
                self.verifies.append(self.seq)

    def feuille(self, empreinte: bytes) -> None:
        """La feuille suivante ; les racines signées sont comparées aux tailles qu'elles
        signent, les feuilles entre deux attendent (par paquets de 4 096 au plus)."""
        if self.seq in self.points or len(self.attente) >= 4096:
            self.borne()
        self.attente.append(empreinte)
        self.seq += 1

    def masquees_jusqua(self, seq: int) -> None:
        """Les entrées masquées jusqu'à `seq` : leurs empreintes, lues par paquets (une lecture
        par empreinte coûtait un tiers du temps d'un dossier d'une seule cible)."""
        while self.seq < seq:
            nombre = min(seq - self.seq, 1 << 15)
            paquet = self.masquees.read(32 * nombre) if self.masquees is not None else b""
            for debut in range(0, len(paquet) - 31, 32):
                self.nb_masquees += 1
                self.feuille(paquet[debut : debut + 32])
            if len(paquet) != 32 * nombre:
                if self.masquees is None:  # dossier de toutes les entrées : une ligne manque
                    raise Echec(
                        "entrée " + str(self.seq) + " absente",
                        "observations.jsonl",
                        self.seq,
                        code="entry_missing",
                        valeurs={"seq": self.seq},
                    )
                raise Echec(
                    "empreinte de l'entrée masquée " + str(self.seq) + " absente",
                    "proofs/hidden-leaves.bin",
                    self.seq,
                    code="hidden_leaf_missing",
                    valeurs={"seq": self.seq},
                )


def verifier_plage(dossier: Dossier, points: dict[int, bytes], manifeste: dict[str, Any]) -> None:
    nom = "proofs/range.json"
    try:
        preuve = json.loads(dossier.lire(nom))
        debut, fin, masquees = int(preuve["start"]), int(preuve["stop"]), int(preuve["hidden"])
        gauche = [(int(n["level"]), int(n["index"]), hachage(n["hash"])) for n in preuve["left"]]
        fermeture = preuve["closing"]
        c, droite = -1, []  # type: int, list[tuple[int, int, bytes]]
        if fermeture is not None:
            c = int(fermeture["seq"])
            droite = [
                (int(n["level"]), int(n["index"]), hachage(n["hash"])) for n in fermeture["right"]
            ]
        coherences = [
            (int(x["old"]), int(x["new"]), [hachage(h) for h in x["proof"]])
            for x in preuve["consistency"]
        ]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise Echec(
            "mal formé (" + type(exc).__name__ + " : " + str(exc) + ")",
            nom,
            code="range_proof_malformed",
            valeurs={"type": type(exc).__name__, "detail": str(exc)},
        ) from None
    if not 0 <= debut <= fin or masquees < 0:
        raise Echec("plage d'entrées invalide", nom, code="range_invalid")
    if [(n, i) for n, i, _ in gauche] != decomposition(0, debut):
        raise Echec("sous-arbres de gauche mal formés", nom, code="range_left_malformed")

    def parcours(exact: bool) -> tuple[ArbrePlage, Historique]:
        """Les entrées contre les racines signées. Le parcours rapide lit le numéro de chaque
        entrée sans analyser tout son JSON (celui-ci prenait la moitié du temps) : les octets
        sont de toute façon garantis par les racines. À la moindre anomalie, le parcours exact
        reprend tout et nomme le fichier et l'entrée en cause. Mesuré (bench/export.py,
        52 647 entrées, le meilleur de 5) : 0,79 s en parcours exact, 0,40 s en parcours
        rapide ; l'ancien vérificateur de Vigie, 0,46 s."""
        cibles = [str(c).encode("utf-8") for c in manifeste.get("targets") or []]
        couvert = fin  # sans point de contrôle final, la fin n'est couverte par aucune racine
        if fermeture is None:
            couvert = max((p for p in points if debut < p <= fin), default=debut)
        arbre = ArbrePlage(points, debut, fin)
        histoire = Historique(manifeste.get("targets") or [], debut, fin)
        for niveau, _i, empreinte in gauche:
            arbre.arbre.ajouter(niveau, empreinte)

        def controle(ouvrir: Any) -> None:
            if dossier.existe("proofs/hidden-leaves.bin") or masquees:
                arbre.masquees = ouvrir("proofs/hidden-leaves.bin")
            lignes = ouvrir("observations.jsonl")
            for numero, corps in enumerate(lignes.lignes(), 1):
                ici = "ligne " + str(numero) + " : "
                rapide = None if exact else SEQ_RAPIDE.search(corps)
                if rapide is not None:
                    seq = int(rapide.group(1))
                    # lues en entier : les entrées qu'aucune racine signée ne couvre, et celles
                    # qui peuvent être des cibles (ou des pannes), pour leur historique
                    if seq >= couvert or (
                        histoire.cibles
                        and (
                            b"\\" in corps
                            or b"first_seq" in corps
                            or any(c in corps for c in cibles)
                        )
                    ):
                        rapide = None
                if rapide is None:
                    try:
                        entree = objet_json(corps)
                        seq = entier(entree["seq"])
                    except (ValueError, KeyError, TypeError):
                        raise Echec(
                            ici + "ce n'est pas une entrée",
                            "observations.jsonl",
                            arbre.seq,
                            code="line_not_entry",
                            valeurs={"ligne": numero},
                        ) from None
                    histoire.ligne(entree)
                if seq >= fin:
                    raise Echec(
                        ici + "entrée " + str(seq) + " après la fin de la plage (" + str(fin) + ")",
                        "observations.jsonl",
                        arbre.seq,
                        code="entry_past_range",
                        valeurs={"ligne": numero, "seq": seq, "fin": fin},
                    )
                arbre.masquees_jusqua(seq)
                if seq != arbre.seq:
                    raise Echec(
                        ici
                        + "entrée "
                        + str(seq)
                        + " hors de sa place (attendu "
                        + str(arbre.seq)
                        + ")",
                        "observations.jsonl",
                        arbre.seq,
                        code="entry_out_of_place",
                        valeurs={"ligne": numero, "seq": seq, "attendu": arbre.seq},
                    )
                arbre.feuille(h_feuille(corps))
            arbre.masquees_jusqua(fin)
            arbre.borne()
            if arbre.masquees is not None and arbre.masquees.read(1):
                raise Echec(
                    "empreintes en trop",
                    "proofs/hidden-leaves.bin",
                    fin,
                    code="hidden_leaves_extra",
                )
            if arbre.nb_masquees != masquees:
                raise Echec(
                    str(masquees)
                    + " entrées masquées annoncées, "
                    + str(arbre.nb_masquees)
                    + " dans la plage",
                    nom,
                    code="hidden_count_mismatch",
                    valeurs={"annoncees": masquees, "trouvees": arbre.nb_masquees},
                )
            if fermeture is not None:
                if [(n, i) for n, i, _ in droite] != decomposition(fin, c):
                    raise Echec(
                        "sous-arbres de droite mal formés", nom, code="range_right_malformed"
                    )
                for niveau, _i, empreinte in droite:
                    arbre.arbre.ajouter(niveau, empreinte)
                if c not in points or arbre.arbre.racine() != points[c]:
                    premiere = arbre.verifies[-1] if arbre.verifies else debut
                    raise Echec(
                        "les entrées "
                        + str(premiere)
                        + " à "
                        + str(fin - 1)
                        + " ne mènent pas à la "
                        "racine du point de contrôle " + str(c),
                        "observations.jsonl",
                        c,
                        (premiere, fin),
                        code="range_closing_mismatch",
                        valeurs={"debut": premiere, "fin": fin - 1, "point": c},
                    )
                if c not in arbre.verifies:
                    arbre.verifies.append(c)

        def controle_localise(ouvrir: Any) -> None:
            try:
                controle(ouvrir)
            except Echec as exc:
                if exc.plage is None:
                    raise
                raise localiser(dossier, exc) from None

        controle_en_flux(dossier, manifeste, controle_localise if exact else controle)
        return arbre, histoire

    try:
        arbre, histoire = parcours(exact=False)
    except Exception:
        arbre, histoire = parcours(exact=True)
    if not arbre.verifies:
        raise Echec(
            "aucun point de contrôle ne couvre les entrées " + str(debut) + " à " + str(fin - 1),
            "proofs/checkpoints.jsonl",
            code="range_uncovered",
            valeurs={"debut": debut, "fin": fin - 1},
        )
    liste = ", ".join(str(s) for s in sorted(arbre.verifies))
    compter("entrees", fin - debut - masquees)
    compter("masquees", masquees)
    ok(
        "entrées " + str(debut) + " à " + str(fin - 1) + " : racine recalculée = points de "
        "contrôle " + liste + " ; fichiers lus conformes au manifeste"
    )
    if masquees:
        info(str(masquees) + " entrées d'autres cibles sont représentées par leur seule empreinte")
    if fermeture is None:
        info(
            "attention : aucun point de contrôle n'est postérieur à la dernière entrée",
            "no_closing_checkpoint",
        )
    for ancien, nouveau, chemin in coherences:
        if (
            ancien not in points
            or nouveau not in points
            or not verifier_coherence(ancien, nouveau, points[ancien], points[nouveau], chemin)
        ):
            raise Echec(
                "points de contrôle " + str(ancien) + " et " + str(nouveau) + " incohérents",
                nom,
                code="checkpoints_inconsistent",
                valeurs={"ancien": ancien, "nouveau": nouveau},
            )
    ok(str(len(coherences)) + " preuves de cohérence entre points de contrôle")
    if histoire.cibles:
        histoire.verifier(dossier, points, c if fermeture is not None else None)


def verifier_inclusions(
    dossier: Dossier, points: dict[int, bytes], manifeste: dict[str, Any]
) -> dict[int, bytes]:
    nom = "proofs/inclusion.jsonl"
    preuves = dossier.lire(nom).splitlines()
    compte = [0]
    bornes = manifeste.get("range") or {}
    cibles = [str(o.get("target_id")) for o in manifeste.get("outages") or []]
    histoire = Historique(cibles, entier(bornes.get("start", 0)), entier(bornes.get("stop", 0)))
    ancre: list[int | None] = [None]

    def controle(ouvrir: Any) -> None:
        lignes = list(ouvrir("observations.jsonl").lignes())
        precedente = -1
        for numero in range(1, max(len(lignes), len(preuves)) + 1):
            ici = "ligne " + str(numero) + " : "
            if numero > len(preuves):
                raise Echec(
                    ici + "entrée sans preuve d'inclusion",
                    "observations.jsonl",
                    precedente + 1,
                    code="entry_without_proof",
                    valeurs={"ligne": numero},
                )
            try:
                preuve = objet_json(preuves[numero - 1])
                seq, taille = entier(preuve["seq"]), entier(preuve["tree_size"])
                chemin = [hachage(p) for p in preuve["path"]]
            except (ValueError, KeyError, TypeError, binascii.Error) as exc:
                raise Echec(
                    ici + "preuve illisible (" + str(exc) + ")",
                    nom,
                    code="inclusion_proof_unreadable",
                    valeurs={"ligne": numero, "detail": str(exc)},
                ) from None
            if seq <= precedente:
                raise Echec(
                    ici + "preuves dans le désordre",
                    nom,
                    seq,
                    code="inclusion_proofs_out_of_order",
                    valeurs={"ligne": numero},
                )
            precedente = seq
            if taille not in points:
                raise Echec(
                    ici
                    + "preuve pour un arbre de taille "
                    + str(taille)
                    + " qu'aucun point de contrôle ne signe",
                    nom,
                    seq,
                    code="inclusion_tree_unsigned",
                    valeurs={"ligne": numero, "seq": seq, "taille": taille},
                )
            if numero > len(lignes):
                raise Echec(
                    "entrée absente (sa preuve est la " + ici[:-3] + " de " + nom + ")",
                    "observations.jsonl",
                    seq,
                    code="inclusion_entry_missing",
                    valeurs={"ligne": numero, "seq": seq},
                )
            corps = lignes[numero - 1]
            try:
                entree = objet_json(corps)
                lue: int | None = entier(entree["seq"])
            except (ValueError, KeyError, TypeError):
                entree, lue = {}, None
            if lue != seq:
                raise Echec(
                    ici + "entrée " + str(lue) + " à la place de l'entrée " + str(seq),
                    "observations.jsonl",
                    seq,
                    code="inclusion_entry_mismatch",
                    valeurs={"ligne": numero, "lue": lue, "seq": seq},
                )
            if racine_par_inclusion(h_feuille(corps), seq, taille, chemin) != points[taille]:
                raise Echec(
                    "modifiée (preuve d'inclusion fausse)",
                    "observations.jsonl",
                    seq,
                    code="entry_changed",
                    valeurs={"seq": seq},
                )
            histoire.ligne(entree)
            histoire.corps[seq] = corps
            histoire.fin = max(histoire.fin, seq + 1)
            ancre[0] = taille
        compte[0] = len(lignes)

    controle_en_flux(dossier, manifeste, controle)
    compter("entrees", compte[0])
    ok(str(compte[0]) + " entrées prouvées incluses dans le registre signé")
    histoire.verifier(dossier, points, ancre[0])
    return histoire.corps


def verifier_preuves_tlog(dossier: Dossier, cle: Cle, corps: dict[int, bytes]) -> None:
    """Chaque preuve proofs/tlog/<seq>.tlog-proof (format C2SP tlog-proof) prouve son entrée :
    en-tête, index, chemin d'inclusion, puis le point de contrôle signé, tel quel."""
    noms = sorted(n for n in dossier.noms if n.startswith("proofs/tlog/"))
    for nom in noms:
        base = nom.rsplit("/", 1)[1][: -len(".tlog-proof")]
        seq = int(base) if base.isdigit() else -1
        try:
            texte = dossier.lire(nom).decode("utf-8")
        except UnicodeDecodeError:
            raise Echec(
                "preuve tlog-proof illisible", nom, seq, code="tlog_proof_unreadable"
            ) from None
        chemin, note = lire_preuve_tlog(texte, seq, nom)
        if seq not in corps:
            raise Echec(
                "preuve d'une entrée que le dossier ne montre pas",
                nom,
                seq,
                code="tlog_proof_not_shown",
            )
        morceaux = cle.ouvrir_note(note).split("\n")
        if morceaux[0] != cle.nom or not morceaux[1].isdigit():
            raise Echec(
                "point de contrôle d'un autre journal", nom, seq, code="tlog_proof_other_log"
            )
        try:
            racine = hachage(morceaux[2])
        except ValueError:
            raise Echec("racine illisible", nom, seq, code="tlog_root_unreadable") from None
        taille = int(morceaux[1])
        if racine_par_inclusion(h_feuille(corps[seq]), seq, taille, chemin) != racine:
            raise Echec("preuve tlog-proof fausse", nom, seq, code="tlog_proof_false")
    if noms:
        compter("preuves_tlog", len(noms))
        ok(str(len(noms)) + " preuves au format standard C2SP tlog-proof vérifiées")


def lire_preuve_tlog(texte: str, seq: int, nom: str) -> tuple[list[bytes], str]:
    """Le chemin d'inclusion et le point de contrôle d'une preuve tlog-proof de l'entrée seq."""
    tete, _, note = texte.partition("\n\n")
    lignes = tete.split("\n")
    if lignes[0] != "c2sp.org/tlog-proof@v1" or len(lignes) < 2:
        raise Echec("ce n'est pas une preuve tlog-proof", nom, seq, code="tlog_proof_not_tlog")
    if lignes[1].startswith("extra "):
        del lignes[1]
    if len(lignes) < 2 or lignes[1] != "index " + str(seq):
        raise Echec(
            "l'index ne correspond pas à l'entrée " + str(seq),
            nom,
            seq,
            code="tlog_proof_index_mismatch",
            valeurs={"seq": seq},
        )
    try:
        return [hachage(ligne) for ligne in lignes[2:]], note
    except ValueError:
        raise Echec(
            "ligne de preuve illisible", nom, seq, code="tlog_proof_line_unreadable"
        ) from None


# --- Historiques complets : la chaîne des entrées de chaque cible (evidence/chain.py) -------------


def tetes_de_chaine(note: str) -> dict[str, int] | None:
    """Les têtes de chaîne (dernière entrée de chaque cible) nommées par un point de contrôle ;
    None s'il n'en nomme pas (registre antérieur au format 1.1)."""
    lignes = note.split("\n\n", 1)[0].split("\n")
    taille = int(lignes[1]) if len(lignes) > 1 and lignes[1].isdigit() else -1
    for ligne in lignes[3:]:
        mots = ligne.split(" ")
        if mots[0] != "vigie-heads/1":
            continue
        tetes: dict[str, int] = {}
        for mot in mots[1:]:  # cible=distance en arrière depuis la taille de l'arbre
            cible, _, recul = mot.partition("=")
            if not cible or not recul.isdigit() or cible in tetes or not 1 <= int(recul) <= taille:
                raise Echec(
                    "ligne de têtes de chaîne mal formée",
                    "proofs/checkpoints.jsonl",
                    code="chain_heads_malformed",
                )
            tetes[cible] = taille - int(recul)
        return tetes
    return None


class Historique:
    """Les entrées montrées de chaque cible : seq -> précédente (False : entrée écrite avant
    la chaîne, None : première de la chaîne)."""

    def __init__(self, cibles: list[str], debut: int, fin: int) -> None:
        self.cibles = [str(c) for c in cibles]
        self.debut = debut
        self.fin = fin
        self.vues: dict[str, dict[int, Any]] = {}
        self.corps: dict[int, bytes] = {}  # entrées montrées (dossier de panne), par seq

    def ligne(self, entree: dict[str, Any]) -> None:
        premiere = entree.get("first_seq")
        if type(premiere) is int:  # un événement de panne : où commencent ses observations
            self.debut = min(self.debut, premiere)
        cible = entree.get("target_id")
        if cible in self.cibles and type(entree.get("seq")) is int:
            self.vues.setdefault(cible, {})[entree["seq"]] = entree.get("target_prev", False)

    def verifier(self, dossier: Dossier, points: dict[int, bytes], taille: int | None) -> None:
        notes = {}
        for ligne in dossier.lire("proofs/checkpoints.jsonl").splitlines():
            point = objet_json(ligne)
            notes[entier(point["tree_size"])] = str(point["note"])
        if taille is None or taille not in notes:
            info(
                "attention : aucun point de contrôle après ces entrées ; l'historique complet "
                "des cibles ne peut pas encore être prouvé",
                "completeness_unproved",
            )
            return
        tetes = tetes_de_chaine(notes[taille])
        if tetes is None:
            info(
                "attention : le point de contrôle " + str(taille) + " ne nomme pas de têtes de "
                "chaîne (registre antérieur) ; l'historique complet n'est pas prouvé",
                "no_chain_heads",
                {"point": taille},
            )
            return
        apres: dict[str, dict[int, Any]] = {}
        nom = "proofs/chain.jsonl"
        brut = dossier.lire(nom) if dossier.existe(nom) else b""
        for numero, ligne in enumerate(brut.splitlines(), 1):
            try:
                donnee = objet_json(ligne)
                seq, arbre = entier(donnee["seq"]), entier(donnee["tree_size"])
                chemin = [hachage(p) for p in donnee["path"]]
                corps = str(donnee["entry"]).encode("utf-8")
                entree = objet_json(corps)
            except (ValueError, KeyError, TypeError, binascii.Error) as exc:
                raise Echec(
                    "ligne " + str(numero) + " illisible (" + str(exc) + ")",
                    nom,
                    code="chain_line_unreadable",
                    valeurs={"ligne": numero, "detail": str(exc)},
                ) from None
            if arbre != taille or not self.fin <= seq < taille:
                raise Echec(
                    "entrée " + str(seq) + " hors de la suite de la plage",
                    nom,
                    seq,
                    code="chain_entry_outside",
                    valeurs={"seq": seq},
                )
            if racine_par_inclusion(h_feuille(corps), seq, taille, chemin) != points[taille]:
                raise Echec(
                    "modifiée (preuve d'inclusion fausse)",
                    nom,
                    seq,
                    code="chain_entry_changed",
                    valeurs={"seq": seq},
                )
            if entree.get("target_id") in self.cibles and entree.get("seq") == seq:
                apres.setdefault(entree["target_id"], {})[seq] = entree.get("target_prev", False)
        for cible in self.cibles:
            vues, suite = self.vues.get(cible, {}), apres.get(cible, {})
            cle_cible = hashlib.sha256(b"vigie-target:" + cible.encode("utf-8")).hexdigest()[:12]
            suivre_chaine(cible, tetes.get(cle_cible), self.debut, vues, suite)
            resultat = _EN_COURS.get()
            if resultat is not None:
                resultat.complets.append(cible)
            ok("historique complet de " + cible + " : aucune de ses entrées ne manque")


def suivre_chaine(
    cible: str,
    maillon: int | None,
    debut: int,
    vues: dict[int, Any],
    suite: dict[int, Any],
) -> set[int]:
    """Suit la chaîne des entrées de `cible` depuis sa tête `maillon` jusqu'à la première
    entrée avant `debut` ; rend les entrées rencontrées. `vues` / `suite` : seq -> entrée
    précédente (False : écrite avant la chaîne, None : première de la chaîne) des entrées de
    la cible que le dossier montre, dans sa plage et après elle (proofs/chain.jsonl). Échec si
    la chaîne mène à une entrée absente, ou si une entrée montrée n'est pas sur la chaîne."""
    rencontrees: set[int] = set()
    while maillon is not None and maillon >= debut:
        if maillon in vues:
            precedente = vues[maillon]
        elif maillon in suite:
            precedente = suite[maillon]
        else:
            raise Echec(
                "entrée de la cible " + cible + " absente du dossier (la chaîne de ses "
                "entrées, ancrée dans un point de contrôle signé, y mène)",
                "observations.jsonl",
                maillon,
                code="chain_entry_missing",
                valeurs={"cible": cible, "seq": maillon},
            )
        rencontrees.add(maillon)
        if precedente is False:
            break
        if precedente is not None and (type(precedente) is not int or precedente >= maillon):
            raise Echec(
                "entrée précédente invalide",
                "observations.jsonl",
                maillon,
                code="chain_previous_invalid",
                valeurs={"seq": maillon},
            )
        maillon = precedente
    for vue in sorted(vues):
        if vue not in rencontrees and vues[vue] is not False:
            raise Echec(
                "montrée comme entrée de " + cible + " mais absente de sa chaîne",
                "observations.jsonl",
                vue,
                code="chain_entry_not_in_chain",
                valeurs={"cible": cible, "seq": vue},
            )
    return rencontrees


# --- Jetons RFC 3161 : les octets qu'aucune signature ne couvre ----------------------------------


def der(tampon: bytes, pos: int, fin: int) -> tuple[int, int, int, int]:
    """(étiquette, début, début du contenu, fin) de l'élément DER à la position `pos`."""
    if pos + 2 > fin:
        raise ValueError("DER tronqué")
    etiquette, premier = tampon[pos], tampon[pos + 1]
    contenu, longueur = pos + 2, premier
    if premier & 0x80:
        nombre = premier & 0x7F
        if not 0 < nombre <= 4 or contenu + nombre > fin:
            raise ValueError("longueur DER invalide")
        longueur = int.from_bytes(tampon[contenu : contenu + nombre], "big")
        contenu += nombre
    if contenu + longueur > fin:
        raise ValueError("valeur DER qui déborde")
    return etiquette, pos, contenu, contenu + longueur


def enfants(tampon: bytes, element: tuple[int, int, int, int]) -> list[tuple[int, int, int, int]]:
    liste = []
    pos = element[2]
    while pos < element[3]:
        liste.append(der(tampon, pos, element[3]))
        pos = liste[-1][3]
    return liste


def contenu(tampon: bytes, element: tuple[int, int, int, int]) -> bytes:
    return tampon[element[2] : element[3]]


def oid(texte: str) -> bytes:
    """Le contenu DER d'un identifiant d'objet écrit « 1.2.840... »."""
    arcs = [int(a) for a in texte.split(".")]
    sortie = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        morceaux = [arc & 0x7F]
        reste = arc >> 7
        while reste:
            morceaux.append(0x80 | (reste & 0x7F))
            reste >>= 7
        sortie += bytes(reversed(morceaux))
    return bytes(sortie)


EMPREINTES = {
    oid("1.3.14.3.2.26"): "sha1",
    oid("2.16.840.1.101.3.4.2.4"): "sha224",
    oid("2.16.840.1.101.3.4.2.1"): "sha256",
    oid("2.16.840.1.101.3.4.2.2"): "sha384",
    oid("2.16.840.1.101.3.4.2.3"): "sha512",
}
# algorithme de signature -> (type de clé, empreinte, ou None si elle est ailleurs)
SIGNATURES_CMS = {
    oid("1.2.840.10045.4.3.1"): ("ec", "sha224"),
    oid("1.2.840.10045.4.3.2"): ("ec", "sha256"),
    oid("1.2.840.10045.4.3.3"): ("ec", "sha384"),
    oid("1.2.840.10045.4.3.4"): ("ec", "sha512"),
    oid("1.2.840.10045.2.1"): ("ec", None),
    oid("1.2.840.113549.1.1.1"): ("rsa", None),
    oid("1.2.840.113549.1.1.5"): ("rsa", "sha1"),
    oid("1.2.840.113549.1.1.10"): ("rsa", None),
    oid("1.2.840.113549.1.1.11"): ("rsa", "sha256"),
    oid("1.2.840.113549.1.1.12"): ("rsa", "sha384"),
    oid("1.2.840.113549.1.1.13"): ("rsa", "sha512"),
    oid("1.2.840.113549.1.1.14"): ("rsa", "sha224"),
    oid("1.3.101.112"): ("ed25519", None),
}


def type_de_cle(certificat: Any) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    cle = certificat.public_key()
    if isinstance(cle, ec.EllipticCurvePublicKey):
        return "ec"
    if isinstance(cle, rsa.RSAPublicKey):
        return "rsa"
    if isinstance(cle, ed25519.Ed25519PublicKey):
        return "ed25519"
    return "?"


def controler_enveloppe(jeton: bytes) -> None:
    """Les parties d'un jeton RFC 3161 qu'aucune signature ne couvre doivent avoir leur seule
    valeur valable (RFC 3161 §2.4.2, RFC 5652 §5) : statut « accordé » simple, SignedData en
    version 3, un seul SignerInfo dont la version correspond à l'identifiant du signataire, un
    algorithme de signature cohérent avec l'empreinte et la clé du certificat signataire.
    ValueError sinon. (Les vérificateurs usuels ignorent ces octets ; les modifier doit se voir.)"""
    from cryptography import x509

    haut = der(jeton, 0, len(jeton))
    if haut[0] != 0x30 or haut[3] != len(jeton):
        raise ValueError("ce n'est pas une SEQUENCE DER")
    parties = enfants(jeton, haut)
    if parties and parties[0][0] == 0x30:  # TimeStampResp : statut, puis jeton
        statut = [(e[0], contenu(jeton, e)) for e in enfants(jeton, parties[0])]
        if len(parties) != 2 or statut != [(0x02, b"\x00")]:
            raise ValueError("statut de la réponse autre que « accordé »")
        parties = enfants(jeton, parties[1])
    if len(parties) != 2 or parties[1][0] != 0xA0:
        raise ValueError("ce n'est pas un ContentInfo CMS")
    dedans = enfants(jeton, parties[1])
    if len(dedans) != 1 or dedans[0][0] != 0x30:
        raise ValueError("pas de SignedData")
    champs = enfants(jeton, dedans[0])
    if len(champs) < 4 or (champs[0][0], contenu(jeton, champs[0])) != (0x02, b"\x03"):
        raise ValueError("version de SignedData différente de 3")
    signataires = enfants(jeton, champs[-1])
    if champs[-1][0] != 0x31 or len(signataires) != 1:
        raise ValueError("il faut exactement un SignerInfo")
    info = enfants(jeton, signataires[0])
    if len(info) < 6 or info[0][0] != 0x02:
        raise ValueError("SignerInfo incomplet")
    if (contenu(jeton, info[0]), info[1][0]) not in ((b"\x01", 0x30), (b"\x03", 0x80)):
        raise ValueError("version du SignerInfo incohérente avec l'identifiant du signataire")
    empreinte = EMPREINTES.get(contenu(jeton, enfants(jeton, info[2])[0]))
    algorithme = SIGNATURES_CMS.get(contenu(jeton, enfants(jeton, info[4])[0]))
    if empreinte is None or algorithme is None:
        raise ValueError("algorithme d'empreinte ou de signature inconnu")
    if algorithme[1] is not None and algorithme[1] != empreinte:
        raise ValueError("algorithme de signature incohérent avec l'empreinte")
    if info[1][0] != 0x30:
        return  # signataire désigné par l'identifiant de sa clé
    emetteur, serie = enfants(jeton, info[1])[:2]
    for champ in champs[3:-1]:
        if champ[0] != 0xA0:
            continue
        for element in enfants(jeton, champ):
            certificat = x509.load_der_x509_certificate(jeton[element[1] : element[3]])
            if (
                certificat.issuer.public_bytes() == jeton[emetteur[1] : emetteur[3]]
                and certificat.serial_number
                == int.from_bytes(contenu(jeton, serie), "big", signed=True)
                and type_de_cle(certificat) != algorithme[0]
            ):
                raise ValueError("algorithme de signature incohérent avec la clé du signataire")


def donnees_du_jeton(nom: str) -> str:
    """Le fichier horodaté par le jeton `nom` (le manifeste ou la note d'un point de contrôle)."""
    if nom == "manifest.tsr":
        return "manifest.json"
    return "proofs/checkpoints/" + nom.rsplit("/", 1)[1][: -len(".tsr")] + ".note"


def verifier_horodatages(dossier: Dossier) -> None:
    jetons = [n for n in dossier.noms if n.startswith("proofs/timestamps/") and n.endswith(".tsr")]
    if dossier.existe("manifest.tsr"):
        jetons.append("manifest.tsr")
    if not jetons:
        info("aucun horodatage RFC 3161 dans ce dossier")
        return
    racines = dossier.lire("proofs/tsa-ca.pem") if dossier.existe("proofs/tsa-ca.pem") else None
    from cryptography import x509

    try:
        rfc3161_client: Any = importlib.import_module("rfc3161_client")
    except ImportError:
        rfc3161_client = None
    for nom in sorted(jetons):
        donnees_nom = donnees_du_jeton(nom)
        if rfc3161_client is None or racines is None:
            continue
        donnees = dossier.lire(donnees_nom)
        jeton = dossier.lire(nom)
        try:
            controler_enveloppe(jeton)
        except Exception as exc:  # un certificat abîmé peut échouer de bien des façons
            raise Echec.avec_detail(
                "jeton d'horodatage modifié", exc, nom, code="timestamp_token_altered"
            ) from None
        try:
            reponse = rfc3161_client.decode_timestamp_response(jeton)
            constructeur = rfc3161_client.VerifierBuilder()
            for certificat in x509.load_pem_x509_certificates(racines):
                constructeur = constructeur.add_root_certificate(certificat)
            if dossier.existe("proofs/tsa-certificates.pem"):
                chaine = dossier.lire("proofs/tsa-certificates.pem")
                for certificat in x509.load_pem_x509_certificates(chaine):
                    if certificat.subject != certificat.issuer:
                        try:
                            constructeur = constructeur.tsa_certificate(certificat)
                        except ValueError:
                            constructeur = constructeur.add_intermediate_certificate(certificat)
            constructeur.build().verify_message(reponse, donnees)
        except Exception as exc:
            raise Echec(
                "jeton d'horodatage invalide pour " + donnees_nom + " (" + str(exc) + ")",
                nom,
                code="timestamp_token_invalid",
                valeurs={"donnees": donnees_nom, "detail": str(exc)},
            ) from None
        date = reponse.tst_info.gen_time.isoformat()
        compter("horodatages", 1)
        ok(nom + " : horodatage RFC 3161 valide du " + date + " sur " + donnees_nom)
    if rfc3161_client is None or racines is None:
        if rfc3161_client is None:
            raison = "module rfc3161-client absent"
        else:
            raison = "certificat racine de l'autorité absent"
        info(str(len(jetons)) + " jetons d'horodatage RFC 3161 non vérifiés ici (" + raison + ").")
        info("Vérifiez-les avec OpenSSL, depuis le dossier décompressé, par exemple :")
        for nom in sorted(jetons):
            info(
                "  openssl ts -verify -data "
                + donnees_du_jeton(nom)
                + " -in "
                + nom
                + " -CAfile proofs/tsa-ca.pem -untrusted proofs/tsa-certificates.pem"
            )
        info("(proofs/tsa-ca.pem : le certificat racine publié par l'autorité d'horodatage)")


REVUE_CHAMPS = ("at", "by", "outage_id", "reason", "target_id", "verdict")


def lignes_marquees(flux: IO[bytes], marque: bytes) -> Any:
    """Les lignes (sans fin de ligne) qui contiennent `marque`, lues par blocs : seuls les
    blocs où elle paraît sont découpés en lignes (ligne à ligne, la lecture d'un an d'entrées
    prenait cinq fois plus de temps)."""
    reste = b""
    while True:
        bloc = flux.read(1 << 20)
        if not bloc:
            break
        donnees = reste + bloc
        coupure = donnees.rfind(b"\n") + 1
        complet, reste = donnees[:coupure], donnees[coupure:]
        if marque in complet:
            yield from (ligne for ligne in complet.split(b"\n") if marque in ligne)
    if marque in reste:
        yield reste


def verifier_revues(dossier: Dossier, cle: Cle) -> None:
    """Chaque entrée « review » : sa note signée par la clé du point d'observation couvre
    exactement ses champs (un motif ou un verdict modifié, une autre clé : échec)."""
    nom = "observations.jsonl"
    if not dossier.existe(nom):
        return
    nombre = 0
    with dossier.ouvrir(nom) as flux:
        for ligne in lignes_marquees(flux, b'"type":"review"'):
            entree = objet_json(ligne)
            if entree.get("type") != "review":
                continue
            seq = entree.get("seq")
            seq = seq if isinstance(seq, int) else None
            if entree.get("verdict") not in ("confirmed", "dismissed") or not all(
                isinstance(entree.get(k), str) for k in (*REVUE_CHAMPS, "note", "key")
            ):
                raise Echec("vérification de panne mal formée", nom, seq, code="review_malformed")
            if entree["key"] != cle.chaine:
                raise Echec(
                    "vérification de panne signée par une autre clé que celle du point "
                    "d'observation : falsifiée",
                    nom,
                    seq,
                    code="review_other_key",
                )
            try:
                texte = cle.ouvrir_note(entree["note"])
            except Echec as exc:
                raise Echec(
                    "vérification de panne : " + exc.message,
                    nom,
                    seq,
                    code="review_signature",
                    valeurs={"cause": exc},
                ) from None
            champs = {k: entree[k] for k in REVUE_CHAMPS}
            attendu = (
                "vigie-review\n"
                + json.dumps(champs, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
                + "\n"
            )
            if texte != attendu:
                raise Echec(
                    "vérification de panne modifiée après signature (verdict, auteur ou motif)",
                    nom,
                    seq,
                    code="review_changed",
                )
            nombre += 1
    if nombre:
        compter("revues", nombre)
        ok(
            str(nombre)
            + " vérification(s) humaine(s) de panne, signée(s) par le point d'observation"
        )


def verifier_captures(dossier: Dossier, manifeste: dict[str, Any]) -> None:
    captures = [n for n in manifeste["files"] if n.startswith("artifacts/")]
    for nom in captures:
        attendu = nom.split("/", 1)[1].split(".", 1)[0]
        if hashlib.sha256(dossier.lire(nom)).hexdigest() != attendu:
            raise Echec(
                "son contenu ne correspond pas à son nom (empreinte)",
                nom,
                code="artifact_hash_mismatch",
            )
    compter("captures", len(captures))
    ok(str(len(captures)) + " captures (artifacts/) conformes à leur empreinte")


def contresignature_valide(
    texte: str, temoin: str, identifiant: bytes, publique: bytes, corps: str
) -> bool:
    """Une ligne « — nom base64(id ‖ instant ‖ signature) » de cosignature/v1 sur `corps`."""
    signe, _, b64 = texte[len("\u2014 ") :].rpartition(" ")
    try:
        blob = base64.b64decode(b64, validate=True)
    except ValueError:
        return False
    if not texte.startswith("\u2014 ") or signe != temoin or blob[:4] != identifiant:
        return False
    if len(blob) != 76:
        return False
    instant = int.from_bytes(blob[4:12], "big")
    message = ("cosignature/v1\ntime " + str(instant) + "\n" + corps).encode("utf-8")
    try:
        Ed25519PublicKey.from_public_bytes(publique).verify(blob[12:], message)
    except InvalidSignature:
        return False
    return True


def verifier_cosignatures(dossier: Dossier, temoins: list[str], quorum: int) -> None:
    """Les contresignatures des témoins (C2SP tlog-cosignature) du point de contrôle qui couvre
    les entrées, selon la politique donnée : les clés des témoins et combien doivent l'avoir
    contresigné (--temoin CLE, répétable ; --quorum N)."""
    nom = "proofs/cosignatures.jsonl"
    if not temoins and dossier.existe("proofs/witnesses.txt"):
        temoins = dossier.lire("proofs/witnesses.txt").decode("utf-8", "replace").split()
        if temoins:
            info(
                "attention : clés des témoins prises dans le dossier lui-même ; donnez-les "
                "d'une source indépendante avec --temoin",
                "witness_keys_from_bundle",
            )
    notes = {}
    for ligne in dossier.lire("proofs/checkpoints.jsonl").splitlines():
        point = objet_json(ligne)
        notes[entier(point["tree_size"])] = str(point["note"])
    cles = {}
    for temoin in temoins:
        morceaux = temoin.split("+", 2)
        try:
            brut = base64.b64decode(morceaux[2], validate=True)
        except (IndexError, ValueError):
            raise Echec(
                "clé de témoin illisible : " + temoin,
                code="witness_key_unreadable",
                valeurs={"temoin": temoin},
            ) from None
        identifiant = hashlib.sha256(morceaux[0].encode() + b"\n\x04" + brut[1:]).digest()[:4]
        if len(brut) != 33 or brut[:1] != b"\x04" or identifiant.hex() != morceaux[1].lower():
            raise Echec(
                "clé de témoin invalide (type 0x04 attendu) : " + temoin,
                code="witness_key_invalid",
                valeurs={"temoin": temoin},
            )
        cles[morceaux[0]] = (identifiant, brut[1:])
    vus: list[str] = []
    brut_cos = dossier.lire(nom) if dossier.existe(nom) else b""
    for ligne in brut_cos.splitlines():
        if not ligne.strip():
            continue
        try:
            donnee = objet_json(ligne)
            taille, temoin = entier(donnee["tree_size"]), str(donnee["witness"])
            texte = str(donnee["cosignature"]).rstrip("\n")
        except (ValueError, KeyError, TypeError) as exc:
            raise Echec.avec_detail(
                "ligne illisible", exc, nom, code="cosignature_line_unreadable"
            ) from None
        if temoin not in cles:
            continue
        if taille not in notes:
            raise Echec(
                "contresignature d'un point de contrôle absent du dossier",
                nom,
                code="cosignature_unknown_checkpoint",
            )
        corps = notes[taille][: notes[taille].rfind("\n\n") + 1]
        identifiant, publique = cles[temoin]
        if not contresignature_valide(texte, temoin, identifiant, publique, corps):
            raise Echec(
                "contresignature de " + temoin + " invalide",
                nom,
                taille,
                code="cosignature_invalid",
                valeurs={"temoin": temoin},
            )
        if temoin not in vus:
            vus.append(temoin)
    resultat = _EN_COURS.get()
    if resultat is not None:
        resultat.temoins = list(vus)
    if vus:
        ok("point de contrôle contresigné par " + str(len(vus)) + " témoin(s) : " + ", ".join(vus))
    if len(vus) < quorum:
        raise Echec(
            "contresigné par "
            + str(len(vus))
            + " des témoins donnés, "
            + str(quorum)
            + " exigés : le point de contrôle n'a pas été vu par eux",
            nom if brut_cos else "proofs/checkpoints.jsonl",
            code="quorum_not_met",
            valeurs={"vus": len(vus), "quorum": quorum},
        )


# --- Point d'entrée pour un programme -----------------------------------------------------------


def verifier_dossier(
    chemin: str,
    cle: str | None = None,
    temoins: Sequence[str] = (),
    quorum: int = 0,
    afficher: bool = False,
) -> Resultat:
    """Tous les contrôles sur le dossier `chemin` (zip ou dossier décompressé), sans rien
    écrire (sauf `afficher`) : le résultat dit ce qui a été vérifié et le premier échec.

    `cle` : la clé publique du point d'observation (« nom+identifiant+base64 »), obtenue
    ailleurs que dans le dossier ; `temoins` et `quorum` : les témoins exigés. Une erreur
    inattendue (dossier abîmé) devient un échec, jamais une exception."""
    resultat = Resultat(chemin, afficher)
    jeton = _EN_COURS.set(resultat)
    dossier: Dossier | None = None
    try:
        dossier = Dossier(chemin)
        verifier_membres(dossier)
        manifeste, cle_ok = verifier_manifeste(dossier, cle)
        verifier_fichiers(dossier, manifeste)
        points = lire_points_de_controle(dossier, cle_ok)
        if manifeste["mode"] == "outage":
            corps = verifier_inclusions(dossier, points, manifeste)
            verifier_preuves_tlog(dossier, cle_ok, corps)
        else:
            verifier_plage(dossier, points, manifeste)
        verifier_cosignatures(dossier, list(temoins), quorum)
        verifier_horodatages(dossier)
        verifier_captures(dossier, manifeste)
        verifier_revues(dossier, cle_ok)
    except Echec as exc:
        # Une copie sans trace d'appels : le résultat ne garde aucun fichier du dossier ouvert.
        resultat.echec = exc.copie()
    except Exception as exc:  # un dossier abîmé ne doit jamais finir en trace d'appels
        resultat.echec = Echec(
            type(exc).__name__ + " : " + str(exc),
            code="zip_damaged" if isinstance(exc, ZIP_ABIME) else "unexpected_error",
            valeurs={"type": type(exc).__name__, "detail": str(exc)},
        )
    finally:
        _EN_COURS.reset(jeton)
        if dossier is not None:
            dossier.fermer()
    return resultat


# --- Ligne de commande ------------------------------------------------------------------------


class _Arguments(argparse.ArgumentParser):
    """Les arguments de la ligne de commande ; une erreur d'usage sort avec le code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, self.prog + " : erreur d'usage : " + message + " (aide : --help)\n")


def lire_arguments(arguments: list[str]) -> argparse.Namespace:
    parseur = _Arguments(
        prog="verify.py",
        usage="python3 verify.py [DOSSIER] [--cle CLE] [--temoin CLE ...] [--quorum N]",
        description="Vérifie un dossier de preuves Vigie (le zip, ou le dossier décompressé) "
        "sans rien modifier ni se connecter à rien. Code de sortie : 0 si tout est correct, "
        "1 si le dossier a été modifié ou est incomplet, 2 pour une erreur d'usage.",
        add_help=False,
    )
    parseur.add_argument(
        "dossier",
        nargs="?",
        metavar="DOSSIER",
        help="le fichier zip ou le dossier décompressé (par défaut : le dossier de ce fichier)",
    )
    parseur.add_argument(
        "--cle",
        metavar="CLE",
        help="la clé publique du point d'observation publiée par son opérateur "
        "(« nom+identifiant+base64 »), ou un fichier qui la contient",
    )
    parseur.add_argument(
        "--temoin",
        metavar="CLE",
        action="append",
        default=[],
        help="la clé publique d'un témoin (C2SP tlog-cosignature), obtenue auprès de lui ; "
        "répétable",
    )
    parseur.add_argument(
        "--quorum",
        metavar="N",
        type=int,
        default=0,
        help="combien des témoins donnés doivent avoir contresigné (0 par défaut)",
    )
    parseur.add_argument("-h", "--help", action="help", help="affiche cette aide")
    return parseur.parse_args(arguments)


def main(arguments: list[str]) -> int:
    options = lire_arguments(list(arguments))
    cle = options.cle
    temoins: list[str] = list(options.temoin)
    quorum: int = options.quorum
    if cle is not None and os.path.isfile(cle):
        with open(cle, encoding="utf-8") as f:
            cle = f.read().strip()
    chemin = options.dossier or os.path.dirname(os.path.abspath(__file__))
    if not os.path.exists(chemin):
        print(
            "verify.py : erreur d'usage : " + chemin + " n'existe pas ; donnez le fichier zip du "
            "dossier de preuves ou le dossier décompressé",
            file=sys.stderr,
        )
        return 2
    print("Vérification du dossier de preuves : " + chemin)
    resultat = verifier_dossier(chemin, cle, temoins, quorum, afficher=True)
    if resultat.echec is not None:
        print("ÉCHEC  " + str(resultat.echec))
        print("RÉSULTAT : ÉCHEC — le dossier a été modifié ou est incomplet ; ne vous y fiez pas.")
        return 1
    print("RÉSULTAT : OK — le dossier est intact et ses entrées sont celles du registre signé.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
