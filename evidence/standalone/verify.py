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
 7. que chaque capture (artifacts/) a bien l'empreinte qui lui sert de nom.
Code de sortie : 0 si tout est correct, 1 au premier échec.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib
import json
import os
import sys
import zipfile
from typing import IO, Any

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:  # pragma: no cover - explained to the user
    print("ÉCHEC : le module Python « cryptography » est nécessaire : pip install cryptography")
    sys.exit(2)


class Echec(Exception):
    """Un contrôle a échoué (le message dit quel fichier et quelle entrée)."""


# --- Lecture du dossier (zip ou répertoire) ---------------------------------------------------


class Dossier:
    def __init__(self, chemin: str) -> None:
        self.zip: zipfile.ZipFile | None = None
        self.racine = chemin
        self.noms: list[str] = []
        if os.path.isfile(chemin):
            self.zip = zipfile.ZipFile(chemin)
            self.noms = [n for n in self.zip.namelist() if not n.endswith("/")]
        else:
            for base, _dirs, fichiers in os.walk(chemin):
                for f in fichiers:
                    nom = os.path.relpath(os.path.join(base, f), chemin).replace(os.sep, "/")
                    self.noms.append(nom)

    def ouvrir(self, nom: str) -> IO[bytes]:
        try:
            if self.zip is not None:
                return self.zip.open(nom)
            return open(os.path.join(self.racine, *nom.split("/")), "rb")
        except (KeyError, OSError):
            raise Echec("fichier absent : " + nom) from None

    def lire(self, nom: str) -> bytes:
        with self.ouvrir(nom) as f:
            try:
                return f.read()
            except zipfile.BadZipFile as exc:
                raise Echec("fichier " + nom + " : zip endommagé (" + str(exc) + ")") from None

    def existe(self, nom: str) -> bool:
        return nom in self.noms


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
            raise Echec("preuve mal formée : sous-arbre non aligné")
        self.taille += 1 << niveau
        while self.pile and self.pile[-1][0] == niveau:
            empreinte = h_noeud(self.pile.pop()[1], empreinte)
            niveau += 1
        self.pile.append((niveau, empreinte))

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
        raise Echec("preuve d'inclusion : indice hors de l'arbre")
    fn, sn, r = indice, taille - 1, feuille
    for p in chemin:
        if sn == 0:
            raise Echec("preuve d'inclusion trop longue")
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
        raise Echec("preuve d'inclusion trop courte")
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
            raise Echec("clé publique mal formée (attendu : nom+identifiant+base64)")
        self.nom, identifiant, b64 = morceaux
        try:
            brut = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise Echec("clé publique mal encodée (base64 invalide)") from None
        if len(brut) != 33 or brut[0] != 1:
            raise Echec("la clé publique n'est pas une clé Ed25519")
        self.brut = brut[1:]
        self.id = hashlib.sha256(self.nom.encode() + b"\n\x01" + self.brut).digest()[:4]
        if self.id.hex() != identifiant.lower():
            raise Echec("l'identifiant de la clé ne correspond pas à la clé")
        self.cle = Ed25519PublicKey.from_public_bytes(self.brut)

    def ouvrir_note(self, note: str) -> str:
        """Le texte d'une note signée par cette clé ; Echec sinon."""
        coupure = note.rfind("\n\n")
        if coupure < 0 or not note.endswith("\n"):
            raise Echec("note signée mal formée")
        texte, signatures = note[: coupure + 1], note[coupure + 2 :]
        for ligne in signatures.splitlines():
            if not ligne.startswith("\u2014 "):
                raise Echec("ligne de signature mal formée")
            nom, _, b64 = ligne[2:].rpartition(" ")
            try:
                blob = base64.b64decode(b64, validate=True)
            except (binascii.Error, ValueError):
                raise Echec("signature mal encodée (base64 invalide)") from None
            if nom == self.nom and blob[:4] == self.id:
                try:
                    self.cle.verify(blob[4:], texte.encode("utf-8"))
                except InvalidSignature:
                    raise Echec("signature invalide : note modifiée ou falsifiée") from None
                return texte
        raise Echec("la note ne porte pas de signature de la clé " + self.nom)


# --- Sortie -----------------------------------------------------------------------------------


def ok(message: str) -> None:
    print("OK     " + message)


def info(message: str) -> None:
    print("       " + message)


# --- Contrôles --------------------------------------------------------------------------------


def verifier_manifeste(dossier: Dossier, cle_donnee: str | None) -> tuple[dict[str, Any], Cle]:
    brut = dossier.lire("manifest.json")
    manifeste = json.loads(brut)
    cle = Cle(cle_donnee or manifeste["public_key"])
    if cle_donnee is None:
        info("clé publique prise dans le manifeste : comparez-la à celle publiée par l'opérateur")
        info("  " + manifeste["public_key"])
    elif cle_donnee.strip() != manifeste["public_key"]:
        raise Echec("manifest.json : signé par une autre clé que celle donnée")
    try:
        texte = cle.ouvrir_note(dossier.lire("manifest.sig").decode("utf-8"))
    except UnicodeDecodeError:
        raise Echec("manifest.sig : ce n'est pas du texte UTF-8 (modifié)") from None
    except Echec as exc:
        raise Echec("manifest.sig : " + str(exc)) from None
    attendu = manifeste["format"] + "\n" + hashlib.sha256(brut).hexdigest() + "\n"
    if texte != attendu:
        raise Echec("manifest.json : son empreinte ne correspond pas à la signature (modifié)")
    ok("manifeste signé par " + cle.nom + " (clé " + cle.id.hex() + ")")
    return manifeste, cle


def verifier_fichiers(dossier: Dossier, manifeste: dict[str, Any]) -> None:
    fichiers = manifeste["files"]
    for nom in sorted(fichiers):
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
            except zipfile.BadZipFile:
                raise Echec("fichier " + nom + " : modifié (zip endommagé)") from None
        if empreinte.hexdigest() != attendu["sha256"] or taille != attendu["size"]:
            raise Echec("fichier " + nom + " : modifié (empreinte SHA-256 différente)")
    en_trop = [
        n
        for n in dossier.noms
        if n not in fichiers and n not in ("manifest.json", "manifest.sig", "manifest.tsr")
    ]
    if en_trop:
        info("fichiers non couverts par le manifeste (ignorés) : " + ", ".join(en_trop))
    ok(str(len(fichiers)) + " fichiers intacts (SHA-256 et taille conformes au manifeste)")


def lire_points_de_controle(dossier: Dossier, cle: Cle) -> dict[int, bytes]:
    points = {}
    for ligne in dossier.lire("proofs/checkpoints.jsonl").splitlines():
        entree = json.loads(ligne)
        seq = entree["seq"]
        try:
            texte = cle.ouvrir_note(entree["note"])
        except Echec as exc:
            raise Echec(f"proofs/checkpoints.jsonl, point de contrôle {seq} : {exc}") from None
        origine, taille, racine = texte.split("\n")[:3]
        if origine != cle.nom or int(taille) != seq or entree["tree_size"] != seq:
            raise Echec("point de contrôle " + str(seq) + " : taille ou origine incohérente")
        if racine != entree["root_hash"]:
            raise Echec("point de contrôle " + str(seq) + " : racine incohérente avec sa note")
        note = "proofs/checkpoints/" + str(seq) + ".note"
        if dossier.existe(note) and dossier.lire(note).decode("utf-8") != entree["note"]:
            raise Echec(note + " : différent du point de contrôle signé")
        points[seq] = base64.b64decode(racine)
    ok(str(len(points)) + " points de contrôle signés par " + cle.nom)
    return points


def verifier_plage(dossier: Dossier, points: dict[int, bytes]) -> None:
    preuve = json.loads(dossier.lire("proofs/range.json"))
    debut, fin = preuve["start"], preuve["stop"]
    arbre = Arbre()
    gauche = decomposition(0, debut)
    if [(n["level"], n["index"]) for n in preuve["left"]] != gauche:
        raise Echec("proofs/range.json : sous-arbres de gauche mal formés")
    for n in preuve["left"]:
        arbre.ajouter(n["level"], base64.b64decode(n["hash"]))
    masquees = dossier.ouvrir("proofs/hidden-leaves.bin") if preuve["hidden"] else None
    verifies = set()
    seq = debut
    with dossier.ouvrir("observations.jsonl") as lignes:
        for numero, ligne in enumerate(lignes, 1):
            corps = ligne.rstrip(b"\n")
            entree = json.loads(corps)
            while seq < entree["seq"]:
                feuille = masquees.read(32) if masquees is not None else b""
                if len(feuille) != 32:
                    raise Echec("observations.jsonl : entrée " + str(seq) + " absente")
                arbre.ajouter(0, feuille)
                seq += 1
            if entree["seq"] != seq:
                raise Echec(
                    f"observations.jsonl ligne {numero} : entrée {entree['seq']} "
                    f"hors de sa place (attendu {seq})"
                )
            if seq in points:
                if arbre.racine() != points[seq]:
                    raise Echec(
                        f"entrées avant {seq} : l'arbre recalculé ne correspond pas "
                        f"au point de contrôle {seq}"
                    )
                verifies.add(seq)
            arbre.ajouter(0, h_feuille(corps))
            seq += 1
    while seq < fin:
        feuille = masquees.read(32) if masquees is not None else b""
        if len(feuille) != 32:
            raise Echec(f"proofs/hidden-leaves.bin : empreinte de l'entrée {seq} absente")
        arbre.ajouter(0, feuille)
        seq += 1
    if masquees is not None and masquees.read(1):
        raise Echec("proofs/hidden-leaves.bin : empreintes en trop")
    fermeture = preuve["closing"]
    if fermeture is not None:
        c = fermeture["seq"]
        if [(n["level"], n["index"]) for n in fermeture["right"]] != decomposition(fin, c):
            raise Echec("proofs/range.json : sous-arbres de droite mal formés")
        for n in fermeture["right"]:
            arbre.ajouter(n["level"], base64.b64decode(n["hash"]))
        if c not in points or arbre.racine() != points[c]:
            raise Echec(
                f"entrées {debut} à {fin - 1} : la racine recalculée ne correspond pas "
                f"au point de contrôle {c}"
            )
        verifies.add(c)
    if not verifies:
        raise Echec(f"aucun point de contrôle ne couvre les entrées {debut} à {fin - 1}")
    liste = ", ".join(str(s) for s in sorted(verifies))
    ok(f"entrées {debut} à {fin - 1} : racine recalculée = points de contrôle {liste}")
    if preuve["hidden"]:
        info(
            f"{preuve['hidden']} entrées d'autres cibles sont représentées par leur seule empreinte"
        )
    if fermeture is None:
        info("attention : aucun point de contrôle n'est postérieur à la dernière entrée")
    for c in preuve["consistency"]:
        chemin = [base64.b64decode(x) for x in c["proof"]]
        if not verifier_coherence(c["old"], c["new"], points[c["old"]], points[c["new"]], chemin):
            raise Echec(
                f"proofs/range.json : points de contrôle {c['old']} et {c['new']} incohérents"
            )
    ok(str(len(preuve["consistency"])) + " preuves de cohérence entre points de contrôle")


def verifier_inclusions(dossier: Dossier, points: dict[int, bytes]) -> None:
    preuves = [json.loads(x) for x in dossier.lire("proofs/inclusion.jsonl").splitlines()]
    with dossier.ouvrir("observations.jsonl") as lignes:
        for ligne, preuve in zip(lignes, preuves):
            corps = ligne.rstrip(b"\n")
            seq, taille = preuve["seq"], preuve["tree_size"]
            if json.loads(corps)["seq"] != seq or taille not in points:
                raise Echec(f"observations.jsonl : entrée {seq} sans preuve valable")
            chemin = [base64.b64decode(p) for p in preuve["path"]]
            if racine_par_inclusion(h_feuille(corps), seq, taille, chemin) != points[taille]:
                raise Echec(
                    f"observations.jsonl : entrée {seq} modifiée (preuve d'inclusion fausse)"
                )
    ok(str(len(preuves)) + " entrées prouvées incluses dans le registre signé")


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
        reponse = rfc3161_client.decode_timestamp_response(dossier.lire(nom))
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
        try:
            constructeur.build().verify_message(reponse, donnees)
        except Exception as exc:
            raise Echec(f"{nom} : jeton d'horodatage invalide pour {donnees_nom} ({exc})") from None
        date = reponse.tst_info.gen_time.isoformat()
        ok(f"{nom} : horodatage RFC 3161 valide du {date} sur {donnees_nom}")
    if rfc3161_client is None or racines is None:
        if rfc3161_client is None:
            raison = "module rfc3161-client absent"
        else:
            raison = "certificat racine de l'autorité absent"
        info(f"{len(jetons)} jetons d'horodatage RFC 3161 non vérifiés ici ({raison}).")
        info("Vérifiez-les avec OpenSSL, depuis le dossier décompressé, par exemple :")
        for nom in sorted(jetons):
            info(
                f"  openssl ts -verify -data {donnees_du_jeton(nom)} -in {nom}"
                " -CAfile proofs/tsa-ca.pem -untrusted proofs/tsa-certificates.pem"
            )
        info("(proofs/tsa-ca.pem : le certificat racine publié par l'autorité d'horodatage)")


def verifier_captures(dossier: Dossier, manifeste: dict[str, Any]) -> None:
    captures = [n for n in manifeste["files"] if n.startswith("artifacts/")]
    for nom in captures:
        attendu = nom.split("/", 1)[1].split(".", 1)[0]
        if hashlib.sha256(dossier.lire(nom)).hexdigest() != attendu:
            raise Echec(f"fichier {nom} : son contenu ne correspond pas à son nom (empreinte)")
    ok(str(len(captures)) + " captures (artifacts/) conformes à leur empreinte")


def main(arguments: list[str]) -> int:
    cle = None
    if "--cle" in arguments:
        i = arguments.index("--cle")
        cle = arguments[i + 1]
        if os.path.isfile(cle):
            with open(cle, encoding="utf-8") as f:
                cle = f.read().strip()
        del arguments[i : i + 2]
    chemin = arguments[0] if arguments else os.path.dirname(os.path.abspath(__file__))
    print("Vérification du dossier de preuves : " + chemin)
    try:
        dossier = Dossier(chemin)
        manifeste, cle_ok = verifier_manifeste(dossier, cle)
        verifier_fichiers(dossier, manifeste)
        points = lire_points_de_controle(dossier, cle_ok)
        if manifeste["mode"] == "outage":
            verifier_inclusions(dossier, points)
        else:
            verifier_plage(dossier, points)
        verifier_horodatages(dossier)
        verifier_captures(dossier, manifeste)
    except (Echec, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        message = str(exc) if isinstance(exc, Echec) else type(exc).__name__ + " : " + str(exc)
        print("ÉCHEC  " + message)
        print("RÉSULTAT : ÉCHEC — le dossier a été modifié ou est incomplet ; ne vous y fiez pas.")
        return 1
    print("RÉSULTAT : OK — le dossier est intact et ses entrées sont celles du registre signé.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
