"""RFC 3161 timestamps for checkpoints: ask a timestamp authority (TSA), check what it signed.

It never sends anything but a timestamp query to the one configured TSA URL (no redirects, no
proxies), and never returns or accepts a token it has not verified; stored bytes are never altered.

A stamp is stored as the DER TimeStampResp exactly as the TSA sent it (what `openssl ts -verify
-in` reads); every function here also accepts a bare TimeStampToken (`openssl ts -token_in`).

Why it is long: the RFC 3161 client and verifier read the tokens themselves (the strict library
refuses replies that some authorities send) next to the checks that use it.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import http.client
import re
import ssl
import time
import urllib.parse
from collections.abc import Sequence
from typing import NoReturn, Protocol

import structlog
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    TimeStampResponse,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from evidence.ledger.der import DerError as _MalformedError
from evidence.ledger.der import Tlv as _Tlv
from evidence.ledger.der import children as _children
from evidence.ledger.der import encode_tlv as _encode_tlv
from evidence.ledger.der import top_sequence as _top

__all__ = [
    "DEFAULT_USER_AGENT",
    "HttpTimestamper",
    "TimestampError",
    "TimestampFailure",
    "Timestamper",
    "TokenInfo",
    "certificates_pem",
    "load_certificates",
    "timestamp_token",
    "token_certificates",
    "token_info",
    "verify_token",
    "verify_token_signature",
]

log = structlog.get_logger("vigie.timestamp")

DEFAULT_USER_AGENT = "Vigie (RFC 3161 client)"
QUERY_CONTENT_TYPE = "application/timestamp-query"
REPLY_CONTENT_TYPES = ("application/timestamp-reply", "application/timestamp-response")
MAX_REPLY_BYTES = 1 << 20  # a reply is a few KiB; anything near this is not a timestamp

_OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
_OID_TST_INFO = "1.2.840.113549.1.9.16.1.4"
_OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
_OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
_OID_RSASSA_PSS = "1.2.840.113549.1.1.10"
_OID_MGF1 = "1.2.840.113549.1.1.8"

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "2.16.840.1.101.3.4.2.1": hashes.SHA256,
    "2.16.840.1.101.3.4.2.2": hashes.SHA384,
    "2.16.840.1.101.3.4.2.3": hashes.SHA512,
    "1.3.14.3.2.26": hashes.SHA1,  # only inside RSASSA-PSS parameters, where it is the default
}
_DIGESTS = {"2.16.840.1.101.3.4.2.1", "2.16.840.1.101.3.4.2.2", "2.16.840.1.101.3.4.2.3"}
_RSA_PKCS1: dict[str, type[hashes.HashAlgorithm] | None] = {
    "1.2.840.113549.1.1.1": None,  # rsaEncryption: the digest algorithm says which hash
    "1.2.840.113549.1.1.11": hashes.SHA256,
    "1.2.840.113549.1.1.12": hashes.SHA384,
    "1.2.840.113549.1.1.13": hashes.SHA512,
}
_ECDSA: dict[str, type[hashes.HashAlgorithm] | None] = {
    "1.2.840.10045.2.1": None,  # id-ecPublicKey: the digest algorithm says which hash
    "1.2.840.10045.4.3.2": hashes.SHA256,
    "1.2.840.10045.4.3.3": hashes.SHA384,
    "1.2.840.10045.4.3.4": hashes.SHA512,
}
_EDDSA = {"1.3.101.112", "1.3.101.113"}
_GRANTED_STATUS = b"\x30\x03\x02\x01\x00"  # PKIStatusInfo { status granted }


class TimestampFailure(enum.StrEnum):
    """Why a timestamp could not be obtained or does not verify (one value per cause)."""

    INVALID_INPUT = "invalid_input"  # our side: empty data, bad URL, unreadable certificate
    UNAVAILABLE = "unavailable"  # network error, timeout, HTTP error, oversized reply
    REJECTED = "rejected"  # the TSA answered with a status other than granted
    MALFORMED = "malformed"  # not a DER TimeStampResp / TimeStampToken
    IMPRINT_MISMATCH = "imprint_mismatch"  # the token is over other data
    NONCE_MISMATCH = "nonce_mismatch"  # the reply does not answer our request
    BAD_SIGNATURE = "bad_signature"  # the token's signature does not verify
    BAD_CERTIFICATE = "bad_certificate"  # signer certificate missing, expired, wrong purpose
    UNTRUSTED_CHAIN = "untrusted_chain"  # signer does not chain to the trusted certificates


class TimestampError(Exception):
    """A timestamp could not be obtained or verified; `reason` says which kind of failure."""

    def __init__(self, message: str, *, reason: TimestampFailure) -> None:
        super().__init__(message)
        self.reason = reason


class Timestamper(Protocol):
    """Something that timestamps bytes; the ledger only knows this."""

    def stamp(self, data: bytes) -> bytes:
        """Return the verified DER TimeStampResp over `data`, or raise TimestampError."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class TokenInfo:
    """What a timestamp token states (read without any verification)."""

    gen_time: dt.datetime  # aware, UTC
    serial_number: int
    policy: str  # dotted OID of the TSA policy (a qualified TSA names its ETSI policy here)
    hash_algorithm: str  # dotted OID of the message imprint hash
    imprint: bytes
    nonce: int | None
    tsa_name: str | None
    signer: str  # RFC 4514 subject of the signing certificate, "" when not embedded


# --------------------------------------------------------------------------------------------
# DER reading: evidence/ledger/der.py (shared with the bundle verifier's token checks).


def _oid(buf: bytes, item: _Tlv) -> str:
    if item.tag != 0x06 or item.body == item.end:
        raise _MalformedError("expected an OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    for byte in item.contents(buf):
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(arc) for arc in [first, arcs[0] - 40 * first, *arcs[1:]])


def _token_of(blob: bytes) -> tuple[bytes, bool]:
    """The TimeStampToken inside `blob` (a TimeStampResp or a bare token), and `is_response`."""
    top = _top(blob)
    parts = _children(blob, top)
    if parts and parts[0].tag == 0x06:  # ContentInfo: contentType first
        return blob, False
    if not parts or parts[0].tag != 0x30:
        raise _MalformedError("neither a TimeStampResp nor a TimeStampToken")
    if len(parts) < 2:
        raise _MalformedError("the reply carries no timestamp token")
    return parts[1].encoding(blob), True


@dataclasses.dataclass(frozen=True, slots=True)
class _SignedData:
    econtent: bytes  # the DER TSTInfo the signature covers (through messageDigest)
    certificates: list[bytes]  # DER, as embedded
    digest_oid: str
    signed_attrs: bytes  # re-tagged as SET OF, the bytes that were signed
    signature_alg: bytes  # the full AlgorithmIdentifier encoding
    signature_oid: str
    signature: bytes
    message_digest: bytes
    content_type: str


def _signed_data(token: bytes) -> _SignedData:
    info = _top(token)
    info_parts = _children(token, info)
    if len(info_parts) != 2 or _oid(token, info_parts[0]) != _OID_SIGNED_DATA:
        raise _MalformedError("the token is not CMS SignedData")
    wrapper = info_parts[1]
    inner = _children(token, wrapper)
    if wrapper.tag != 0xA0 or len(inner) != 1 or inner[0].tag != 0x30:
        raise _MalformedError("the token's SignedData is not where CMS puts it")
    fields = _children(token, inner[0])
    if len(fields) < 4:
        raise _MalformedError("the token's SignedData is incomplete")
    encap = _children(token, fields[2])
    if len(encap) != 2 or _oid(token, encap[0]) != _OID_TST_INFO or encap[1].tag != 0xA0:
        raise _MalformedError("the token does not carry a TSTInfo")
    octets = _children(token, encap[1])
    if len(octets) != 1 or octets[0].tag != 0x04:
        raise _MalformedError("the TSTInfo is not a DER OCTET STRING")
    certificates = [
        cert.encoding(token)
        for field in fields[3:-1]
        if field.tag == 0xA0
        for cert in _children(token, field)
        if cert.tag == 0x30
    ]
    signers = _children(token, fields[-1])
    if fields[-1].tag != 0x31 or len(signers) != 1:
        raise _MalformedError("the token must have exactly one SignerInfo")
    signer = _children(token, signers[0])
    if len(signer) < 6 or signer[3].tag != 0xA0:
        raise _MalformedError("the SignerInfo has no signed attributes")
    attrs = signer[3]
    digest_oid = _oid(token, _children(token, signer[2])[0])
    message_digest = b""
    content_type = ""
    for attr in _children(token, attrs):
        attr_parts = _children(token, attr)
        if len(attr_parts) != 2:
            raise _MalformedError("a signed attribute is malformed")
        values = _children(token, attr_parts[1])
        kind = _oid(token, attr_parts[0])
        if kind == _OID_MESSAGE_DIGEST and len(values) == 1 and values[0].tag == 0x04:
            message_digest = values[0].contents(token)
        elif kind == _OID_CONTENT_TYPE and len(values) == 1:
            content_type = _oid(token, values[0])
    if signer[5].tag != 0x04:
        raise _MalformedError("the SignerInfo's signature is not an OCTET STRING")
    return _SignedData(
        econtent=octets[0].contents(token),
        certificates=certificates,
        digest_oid=digest_oid,
        signed_attrs=b"\x31" + attrs.encoding(token)[1:],
        signature_alg=signer[4].encoding(token),
        signature_oid=_oid(token, _children(token, signer[4])[0]),
        signature=signer[5].contents(token),
        message_digest=message_digest,
        content_type=content_type,
    )


def _set_of_key(encoding: bytes, width: int) -> bytes:
    return encoding.ljust(width, b"\x00")


def _canonical_certificates(blob: bytes) -> bytes:
    """`blob` with its SignedData certificates in DER SET OF order (they are not signed).

    `openssl ts -reply` with a `certs =` chain writes them unsorted, which strict DER parsers
    refuse; sorting them changes no signed byte. Used for parsing only: stored bytes stay as sent.
    """
    top = _top(blob)
    path = [top]
    parts = _children(blob, top)
    if parts and parts[0].tag == 0x30:  # TimeStampResp -> its token
        if len(parts) < 2:
            return blob
        path.append(parts[1])
    info_parts = _children(blob, path[-1])
    if len(info_parts) != 2:
        return blob
    path.append(info_parts[1])  # [0] EXPLICIT
    signed = _children(blob, info_parts[1])
    if len(signed) != 1:
        return blob
    path.append(signed[0])  # SignedData
    certs_field = next((f for f in _children(blob, signed[0])[3:] if f.tag == 0xA0), None)
    if certs_field is None:
        return blob
    encodings = [cert.encoding(blob) for cert in _children(blob, certs_field)]
    width = max((len(e) for e in encodings), default=0)
    ordered: list[bytes] = sorted(encodings, key=lambda e: (_set_of_key(e, width), len(e)))
    rebuilt = _encode_tlv(0xA0, b"".join(ordered))
    replaced = certs_field
    for outer in reversed(path):
        rebuilt = _encode_tlv(
            outer.tag,
            blob[outer.body : replaced.start] + rebuilt + blob[replaced.end : outer.end],
        )
        replaced = outer
    return rebuilt


@dataclasses.dataclass(frozen=True, slots=True)
class _Parsed:
    response: TimeStampResponse
    token: bytes  # the bare TimeStampToken, as stored
    signed: _SignedData | None  # None when the reply carries no token (rejections)


def _parse(blob: bytes) -> _Parsed:
    try:
        token, is_response = _token_of(blob)
        wrapped = blob if is_response else _encode_tlv(0x30, _GRANTED_STATUS + token)
        try:
            response = decode_timestamp_response(wrapped)
        except ValueError:
            response = decode_timestamp_response(_canonical_certificates(wrapped))
        signed = _signed_data(token) if token else None
    except (_MalformedError, ValueError, IndexError) as exc:
        raise TimestampError(
            f"not a valid RFC 3161 timestamp (DER TimeStampResp or TimeStampToken): {exc}",
            reason=TimestampFailure.MALFORMED,
        ) from exc
    return _Parsed(response, token, signed)


def _parse_reply(blob: bytes) -> _Parsed:
    """Parse what a TSA sent, which may be a rejection without any token."""
    try:
        top = _top(blob)
        parts = _children(blob, top)
        has_token = len(parts) >= 2
        if parts and parts[0].tag == 0x30 and not has_token:
            response = decode_timestamp_response(blob)
            return _Parsed(response, b"", None)
    except (_MalformedError, ValueError) as exc:
        raise TimestampError(
            f"the TSA's reply is not a DER TimeStampResp (is the URL an RFC 3161 endpoint?): {exc}",
            reason=TimestampFailure.MALFORMED,
        ) from exc
    return _parse(blob)


# --------------------------------------------------------------------------------------------
# Certificates.


def load_certificates(blob: bytes) -> list[x509.Certificate]:
    """Every certificate in `blob`: one DER certificate or any number of PEM ones."""
    try:
        if b"-----BEGIN" in blob:
            certs = x509.load_pem_x509_certificates(blob)
        else:
            certs = [x509.load_der_x509_certificate(blob)]
    except ValueError as exc:
        raise TimestampError(
            f"cannot read a certificate (expected PEM or DER X.509): {exc}",
            reason=TimestampFailure.INVALID_INPUT,
        ) from exc
    return certs


def _load_all(blobs: Sequence[bytes]) -> list[x509.Certificate]:
    found: list[x509.Certificate] = []
    for blob in blobs:
        for cert in load_certificates(blob):
            if cert not in found:
                found.append(cert)
    return found


def certificates_pem(certificates: Sequence[bytes]) -> bytes:
    """DER certificates as one PEM bundle (what `openssl ts -verify -untrusted` reads)."""
    return b"".join(
        x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM) for der in certificates
    )


def _signer_certificate(
    parsed: _Parsed, extra: Sequence[x509.Certificate]
) -> tuple[x509.Certificate, bool]:
    """The certificate whose key signed the token, and whether the token embeds it."""
    infos = list(parsed.response.signed_data.signer_infos)
    if len(infos) != 1:
        raise TimestampError(
            f"the token has {len(infos)} signers; RFC 3161 requires exactly one",
            reason=TimestampFailure.MALFORMED,
        )
    info = infos[0]
    signed = parsed.signed
    embedded = (
        [x509.load_der_x509_certificate(der) for der in signed.certificates] if signed else []
    )
    for candidates, is_embedded in ((embedded, True), (list(extra), False)):
        for cert in candidates:
            if cert.issuer == info.issuer and cert.serial_number == info.serial_number:
                return cert, is_embedded
    raise TimestampError(
        "the token does not embed its TSA certificate and none of the given certificates "
        f"is the signer (issuer {info.issuer.rfc4514_string()}, serial {info.serial_number:x}); "
        "pass the TSA certificate",
        reason=TimestampFailure.BAD_CERTIFICATE,
    )


def token_certificates(token: bytes) -> list[bytes]:
    """The DER certificates embedded in a token (or TimeStampResp), the signer's first.

    These go into evidence bundles beside the token, so a verifier has the TSA certificate.
    """
    parsed = _parse(token)
    assert parsed.signed is not None
    ders = list(parsed.signed.certificates)
    try:
        signer, _ = _signer_certificate(parsed, [])
    except TimestampError:
        return ders
    signer_der = signer.public_bytes(Encoding.DER)
    return [signer_der, *(der for der in ders if der != signer_der)]


def timestamp_token(token: bytes) -> bytes:
    """The bare DER TimeStampToken inside a TimeStampResp (unchanged if already a token)."""
    return _parse(token).token


def token_info(token: bytes) -> TokenInfo:
    """What a token (or TimeStampResp) states, without verifying anything."""
    parsed = _parse(token)
    tst = parsed.response.tst_info
    try:
        signer = _signer_certificate(parsed, [])[0].subject.rfc4514_string()
    except TimestampError:
        signer = ""
    name = tst.name
    return TokenInfo(
        gen_time=_utc(tst.gen_time),
        serial_number=tst.serial_number,
        policy=tst.policy.dotted_string,
        hash_algorithm=tst.message_imprint.hash_algorithm.dotted_string,
        imprint=tst.message_imprint.message,
        nonce=tst.nonce,
        tsa_name=None if name is None else _general_name(name),
        signer=signer,
    )


def _general_name(name: x509.GeneralName) -> str:
    if isinstance(name, x509.DirectoryName):
        return name.value.rfc4514_string()
    return str(name.value)


def _utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


# --------------------------------------------------------------------------------------------
# Verification.


def _check_status(parsed: _Parsed) -> None:
    status = parsed.response.status
    if status != PKIStatus.GRANTED or parsed.signed is None:
        text = "; ".join(parsed.response.status_string) or "no reason given"
        try:
            label = PKIStatus(status).name.lower()
        except ValueError:
            label = str(status)
        raise TimestampError(
            f"the TSA did not grant the timestamp (status {label}: {text})",
            reason=TimestampFailure.REJECTED,
        )


def _check_imprint(parsed: _Parsed, data: bytes) -> None:
    imprint = parsed.response.tst_info.message_imprint
    oid = imprint.hash_algorithm.dotted_string
    if oid not in _DIGESTS:
        raise TimestampError(
            f"the token's message imprint uses an unsupported hash ({oid}); "
            "SHA-256, SHA-384 and SHA-512 are accepted",
            reason=TimestampFailure.IMPRINT_MISMATCH,
        )
    digest = hashes.Hash(_HASHES[oid]())
    digest.update(data)
    if digest.finalize() != imprint.message:
        raise TimestampError(
            "imprint mismatch: the token timestamps other data than the bytes given "
            f"(token imprint {imprint.message.hex()})",
            reason=TimestampFailure.IMPRINT_MISMATCH,
        )


def _check_nonce(parsed: _Parsed, nonce: int | None) -> None:
    if nonce is not None and parsed.response.tst_info.nonce != nonce:
        raise TimestampError(
            "nonce mismatch: the reply does not answer this request (replayed or mixed up)",
            reason=TimestampFailure.NONCE_MISMATCH,
        )


def _pss_padding(signed: _SignedData) -> tuple[padding.PSS, hashes.HashAlgorithm]:
    """RSASSA-PSS parameters (RFC 4055), defaults included."""
    buf = signed.signature_alg
    parts = _children(buf, _top(buf))
    hash_oid = "1.3.14.3.2.26"
    mgf_oid = "1.3.14.3.2.26"
    salt = 20
    if len(parts) > 1 and parts[1].tag == 0x30:
        for field in _children(buf, parts[1]):
            inner = _children(buf, field)
            if field.tag == 0xA0:
                hash_oid = _oid(buf, _children(buf, inner[0])[0])
            elif field.tag == 0xA1:
                mgf = _children(buf, inner[0])
                if _oid(buf, mgf[0]) != _OID_MGF1:
                    raise _MalformedError("RSASSA-PSS with a mask generation other than MGF1")
                mgf_oid = _oid(buf, _children(buf, mgf[1])[0])
            elif field.tag == 0xA2:
                salt = int.from_bytes(inner[0].contents(buf), "big")
    if hash_oid not in _HASHES or mgf_oid not in _HASHES:
        raise _MalformedError("RSASSA-PSS with an unknown hash")
    return padding.PSS(padding.MGF1(_HASHES[mgf_oid]()), salt), _HASHES[hash_oid]()


def _signature_oid(parsed: _Parsed) -> str:
    assert parsed.signed is not None
    return parsed.signed.signature_oid


def _check_signature(parsed: _Parsed, signer: x509.Certificate) -> None:
    """The CMS signature over the TSTInfo, checked with the signer's public key."""
    signed = parsed.signed
    assert signed is not None
    if signed.digest_oid not in _DIGESTS:
        raise TimestampError(
            f"the token is signed with an unsupported digest ({signed.digest_oid})",
            reason=TimestampFailure.BAD_SIGNATURE,
        )
    if signed.content_type != _OID_TST_INFO:
        raise TimestampError(
            "bad signature: the signed attributes do not declare a TSTInfo",
            reason=TimestampFailure.BAD_SIGNATURE,
        )
    digest_cls = _HASHES[signed.digest_oid]
    digest = hashes.Hash(digest_cls())
    digest.update(signed.econtent)
    if digest.finalize() != signed.message_digest:
        raise TimestampError(
            "bad signature: the TSTInfo (time, imprint, serial) was altered after signing",
            reason=TimestampFailure.BAD_SIGNATURE,
        )
    key = signer.public_key()
    alg_oid = _signature_oid(parsed)
    try:
        if isinstance(key, rsa.RSAPublicKey) and alg_oid in _RSA_PKCS1:
            chosen = _RSA_PKCS1[alg_oid] or digest_cls
            key.verify(signed.signature, signed.signed_attrs, padding.PKCS1v15(), chosen())
        elif isinstance(key, rsa.RSAPublicKey) and alg_oid == _OID_RSASSA_PSS:
            pss, pss_hash = _pss_padding(signed)
            key.verify(signed.signature, signed.signed_attrs, pss, pss_hash)
        elif isinstance(key, ec.EllipticCurvePublicKey) and alg_oid in _ECDSA:
            chosen = _ECDSA[alg_oid] or digest_cls
            key.verify(signed.signature, signed.signed_attrs, ec.ECDSA(chosen()))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey) and (
            alg_oid in _EDDSA
        ):
            key.verify(signed.signature, signed.signed_attrs)
        else:
            raise TimestampError(
                f"the token's signature algorithm {alg_oid} is not supported for a "
                f"{type(key).__name__.removeprefix('_')} key",
                reason=TimestampFailure.BAD_SIGNATURE,
            )
    except (InvalidSignature, UnsupportedAlgorithm, _MalformedError, ValueError) as exc:
        raise TimestampError(
            f"bad signature: the token's signature does not verify with the certificate of "
            f"{signer.subject.rfc4514_string()} ({type(exc).__name__})",
            reason=TimestampFailure.BAD_SIGNATURE,
        ) from exc


def _check_signer(parsed: _Parsed, signer: x509.Certificate) -> None:
    """The signing certificate is for timestamping and was valid when the token was made."""
    try:
        eku = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        eku = None
    if eku is None or not eku.critical or ExtendedKeyUsageOID.TIME_STAMPING not in eku.value:
        raise TimestampError(
            f"the signing certificate ({signer.subject.rfc4514_string()}) is not a TSA "
            "certificate (RFC 3161 requires a critical extendedKeyUsage timeStamping)",
            reason=TimestampFailure.BAD_CERTIFICATE,
        )
    made = _utc(parsed.response.tst_info.gen_time)
    if not signer.not_valid_before_utc <= made <= signer.not_valid_after_utc:
        raise TimestampError(
            f"the TSA certificate ({signer.subject.rfc4514_string()}) was not valid at the "
            f"token's time {made.isoformat()}",
            reason=TimestampFailure.BAD_CERTIFICATE,
        )


def _untrusted(signer: x509.Certificate, trusted: Sequence[x509.Certificate], why: str) -> NoReturn:
    names = ", ".join(cert.subject.rfc4514_string() for cert in trusted)
    raise TimestampError(
        f"untrusted chain: the TSA certificate ({signer.subject.rfc4514_string()}, issued by "
        f"{signer.issuer.rfc4514_string()}) does not chain to the trusted certificates "
        f"({names}): {why}",
        reason=TimestampFailure.UNTRUSTED_CHAIN,
    )


def _openssl_reason(exc: Exception) -> str:
    """The useful part of an OpenSSL error stack, as rfc3161-client reports it."""
    found = re.search(r'data: "(Verify error: [^"]+)"', str(exc))
    return found.group(1) if found else str(exc)


def _check_chain(
    parsed: _Parsed,
    signer: x509.Certificate,
    embedded: bool,
    trusted: Sequence[x509.Certificate],
) -> None:
    """The signature chains to one of `trusted` (checked by OpenSSL at the token's time)."""
    builder = VerifierBuilder()
    for cert in trusted:
        builder = builder.add_root_certificate(cert)
    if not embedded:
        builder = builder.tsa_certificate(signer)
    try:
        builder.build().verify(parsed.response, parsed.response.tst_info.message_imprint.message)
    except (VerificationError, ValueError) as exc:
        _untrusted(signer, trusted, _openssl_reason(exc))


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _check_chain_directly(
    parsed: _Parsed,
    signer: x509.Certificate,
    trusted: Sequence[x509.Certificate],
) -> None:
    """Path to a trusted certificate, by signatures and validity at the token's time.

    For RSASSA-PSS tokens only: OpenSSL's PKCS7 code under rfc3161-client cannot check those
    (the signature itself was already checked by _check_signature).
    """
    made = _utc(parsed.response.tst_info.gen_time)
    assert parsed.signed is not None
    pool = [x509.load_der_x509_certificate(der) for der in parsed.signed.certificates]
    pool += [cert for cert in trusted if cert not in pool]
    current = signer
    for _depth in range(8):
        if current in trusted:
            return
        issuer = next(
            (
                cert
                for cert in pool
                if cert.subject == current.issuer
                and cert != current
                and _is_ca(cert)
                and _issued_by(current, cert)
            ),
            None,
        )
        if issuer is None:
            _untrusted(
                signer, trusted, f"no trusted issuer found for {current.subject.rfc4514_string()}"
            )
        if not issuer.not_valid_before_utc <= made <= issuer.not_valid_after_utc:
            _untrusted(signer, trusted, f"{issuer.subject.rfc4514_string()} was not valid then")
        current = issuer
    _untrusted(signer, trusted, "the chain is longer than 8 certificates")


def _verify_parsed(
    parsed: _Parsed,
    data: bytes,
    *,
    trusted: Sequence[x509.Certificate] | None,
    extra: Sequence[x509.Certificate] = (),
    nonce: int | None = None,
) -> dt.datetime:
    _check_status(parsed)
    _check_imprint(parsed, data)
    _check_nonce(parsed, nonce)
    signer, embedded = _signer_certificate(parsed, extra)
    _check_signer(parsed, signer)
    _check_signature(parsed, signer)
    if trusted is not None and _signature_oid(parsed) == _OID_RSASSA_PSS:
        _check_chain_directly(parsed, signer, trusted)
    elif trusted is not None:
        _check_chain(parsed, signer, embedded, trusted)
    return _utc(parsed.response.tst_info.gen_time)


def verify_token(
    token: bytes,
    data: bytes,
    *,
    certificates: Sequence[bytes],
    nonce: int | None = None,
) -> dt.datetime:
    """Check that `token` timestamps `data` and chains to `certificates`; return its time (UTC).

    `token` is a DER TimeStampResp or TimeStampToken. `certificates` are the trusted ones (the
    TSA's root, plus intermediates and the TSA certificate when the token does not embed them),
    each DER or PEM (a PEM blob may hold several). Certificates are judged at the token's time.
    Raises TimestampError whose `reason` names what is wrong.
    """
    trusted = _load_all(certificates)
    if not trusted:
        raise TimestampError(
            "no trusted certificate given: pass the TSA's root certificate (PEM or DER)",
            reason=TimestampFailure.INVALID_INPUT,
        )
    return _verify_parsed(_parse(token), data, trusted=trusted, extra=trusted, nonce=nonce)


def verify_token_signature(
    token: bytes,
    data: bytes,
    *,
    certificates: Sequence[bytes] = (),
    nonce: int | None = None,
) -> dt.datetime:
    """Like verify_token, without a trust anchor: imprint and signature by the TSA certificate.

    Proves the token is intact and over `data`, not who the TSA is: use it when the TSA's root
    is not at hand, and say so. `certificates` may supply the TSA certificate if not embedded.
    """
    extra = _load_all(certificates)
    return _verify_parsed(_parse(token), data, trusted=None, extra=extra, nonce=nonce)


# --------------------------------------------------------------------------------------------
# The HTTP client.


def _redact(url: urllib.parse.SplitResult) -> str:
    """The URL without credentials, for logs and messages."""
    host = url.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{url.port}" if url.port else ""
    return urllib.parse.urlunsplit((url.scheme, host + port, url.path, url.query, ""))


class HttpTimestamper:
    """Gets RFC 3161 timestamps from one TSA over HTTP(S) and verifies them before returning.

    `stamp` blocks for at most `timeout` seconds in all (connect, send, wait, read): call it
    off the event loop. It POSTs only to `url`, follows no redirect and uses no proxy.
    With `ca_pem` (the TSA's root, PEM) the signer must chain to it; without it, only the
    signature by the embedded TSA certificate is checked (the chain is left to the verifier).
    Credentials in the URL (`https://user:pass@tsa.example/`) are sent as HTTP Basic auth.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        ca_pem: bytes | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
    ) -> None:
        parsed = urllib.parse.urlsplit(url)
        try:
            _port = parsed.port
        except ValueError as exc:
            raise TimestampError(
                f"bad TSA URL {url!r}: {exc}", reason=TimestampFailure.INVALID_INPUT
            ) from exc
        if parsed.scheme not in {"http", "https"} or not parsed.hostname:
            raise TimestampError(
                f"the TSA URL must be http:// or https:// with a host, got {_redact(parsed)!r}",
                reason=TimestampFailure.INVALID_INPUT,
            )
        if not timeout > 0:
            raise TimestampError(
                f"the TSA timeout must be positive, got {timeout}",
                reason=TimestampFailure.INVALID_INPUT,
            )
        self._url = parsed
        self.url = _redact(parsed)
        self.timeout = timeout
        self._user_agent = user_agent
        self._trusted = None if ca_pem is None else load_certificates(ca_pem)
        self._auth: str | None = None
        if parsed.username is not None:
            pair = f"{urllib.parse.unquote(parsed.username)}:"
            pair += urllib.parse.unquote(parsed.password or "")
            self._auth = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")

    def __repr__(self) -> str:
        return f"HttpTimestamper({self.url!r}, timeout={self.timeout})"

    def stamp(self, data: bytes) -> bytes:
        """Return the TSA's DER TimeStampResp over `data`, verified; raise TimestampError."""
        if not data:
            raise TimestampError(
                "refusing to timestamp empty data", reason=TimestampFailure.INVALID_INPUT
            )
        request = (
            TimestampRequestBuilder()
            .data(data)
            .hash_algorithm(HashAlgorithm.SHA256)
            .nonce(nonce=True)
            .cert_request(cert_request=True)
            .build()
        )
        try:
            reply = self._post(request.as_bytes())
            parsed = _parse_reply(reply)
            made = _verify_parsed(parsed, data, trusted=self._trusted, nonce=request.nonce)
            if not parsed.signed or not parsed.signed.certificates:
                raise TimestampError(  # noqa: TRY301 - one place logs every failure
                    "the TSA sent no certificate although the request asked for it",
                    reason=TimestampFailure.BAD_CERTIFICATE,
                )
        except TimestampError as exc:
            log.warning("tsa_stamp_failed", tsa=self.url, reason=exc.reason.value, error=str(exc))
            raise
        offset = (made - dt.datetime.now(dt.UTC)).total_seconds()
        log.info(
            "tsa_stamp_done",
            tsa=self.url,
            serial=parsed.response.tst_info.serial_number,
            gen_time=made.isoformat(),
            clock_offset_s=round(offset, 3),
            chain_checked=self._trusted is not None,
            reply_bytes=len(reply),
        )
        return reply

    def _post(self, body: bytes) -> bytes:
        deadline = time.monotonic() + self.timeout
        url = self._url
        host = url.hostname or ""
        connection: http.client.HTTPConnection
        if url.scheme == "https":
            connection = http.client.HTTPSConnection(
                host, url.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        else:
            connection = http.client.HTTPConnection(host, url.port, timeout=self.timeout)
        headers = {
            "Content-Type": QUERY_CONTENT_TYPE,
            "Accept": REPLY_CONTENT_TYPES[0],
            "User-Agent": self._user_agent,
            "Connection": "close",
        }
        if self._auth:
            headers["Authorization"] = self._auth
        target = url.path or "/"
        if url.query:
            target += "?" + url.query
        try:
            connection.request("POST", target, body=body, headers=headers)
            self._arm(connection, deadline)
            response = connection.getresponse()
            if response.status != 200:
                raise TimestampError(
                    f"the TSA at {self.url} answered HTTP {response.status} {response.reason}"
                    + (" (redirects are not followed)" if 300 <= response.status < 400 else ""),
                    reason=TimestampFailure.UNAVAILABLE,
                )
            content_type = (response.getheader("Content-Type") or "").split(";")[0].strip()
            if content_type.lower() not in REPLY_CONTENT_TYPES:
                log.warning("tsa_unexpected_content_type", tsa=self.url, content_type=content_type)
            chunks: list[bytes] = []
            size = 0
            while True:
                self._arm(connection, deadline)
                chunk = response.read1(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_REPLY_BYTES:
                    raise TimestampError(
                        f"the TSA at {self.url} sent more than {MAX_REPLY_BYTES} bytes; "
                        "a timestamp reply is a few KiB",
                        reason=TimestampFailure.UNAVAILABLE,
                    )
                chunks.append(chunk)
            return b"".join(chunks)
        except TimeoutError as exc:
            raise TimestampError(
                f"no complete answer from the TSA at {self.url} within {self.timeout:g} s",
                reason=TimestampFailure.UNAVAILABLE,
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise TimestampError(
                f"cannot reach the TSA at {self.url}: {type(exc).__name__}: {exc}",
                reason=TimestampFailure.UNAVAILABLE,
            ) from exc
        finally:
            connection.close()

    @staticmethod
    def _arm(connection: http.client.HTTPConnection, deadline: float) -> None:
        """Give the socket only the time left before the overall deadline."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        if connection.sock is not None:
            connection.sock.settimeout(remaining)
