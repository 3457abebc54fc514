"""Throwaway TLS material for the simulator's HTTPS listener, generated at start.

A test CA signs a good certificate (so a client trusting the CA sees TLS succeed) and the bad
ones the ``bad_tls`` fault presents. Keys live in a private temporary directory only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TlsMaterial", "ca_key_usage", "make_tls_material"]

_ONE_DAY = dt.timedelta(days=1)


def ca_key_usage(*, digital_signature: bool = True) -> x509.KeyUsage:
    """The key usage of a certificate authority: signs certificates and revocation lists."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(
                NameOID.ORGANIZATION_NAME, "Vigie simulator (throwaway, tests only)"
            ),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _leaf(
    names: list[str],
    *,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(_san(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


@dataclasses.dataclass(frozen=True, slots=True)
class TlsMaterial:
    """Server contexts for the HTTPS listener and the CA a client may trust."""

    ca_file: Path
    ca_pem: bytes
    good: ssl.SSLContext
    bad: dict[str, ssl.SSLContext]  # by bad_tls variant: self_signed, expired, hostname
    fingerprints: dict[str, str]  # SHA-256 hex of each certificate: "good" and each variant

    def context(self, variant: str | None) -> ssl.SSLContext:
        """The server context to use: the good one, or the one of a bad_tls variant."""
        return self.good if variant is None else self.bad[variant]


def _server_context(
    directory: Path, stem: str, cert: x509.Certificate, key: bytes
) -> ssl.SSLContext:
    cert_file = directory / f"{stem}.crt"
    key_file = directory / f"{stem}.key"
    cert_file.write_bytes(_cert_pem(cert))
    key_file.touch(mode=0o600)
    key_file.write_bytes(key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


def make_tls_material(directory: Path, host: str) -> TlsMaterial:
    """Generate a CA, a good certificate for `host` and loopback, and the bad_tls certificates."""
    now = dt.datetime.now(dt.UTC)
    names = list(dict.fromkeys(["localhost", "127.0.0.1", "::1", host]))
    ca_key = _key()
    ca_name = _name("Vigie simulator test CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _ONE_DAY)
        .not_valid_after(now + 30 * _ONE_DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            ca_key_usage(),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = _cert_pem(ca_cert)
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca_pem)

    leaf_key = _key()
    leaf_pem = _key_pem(leaf_key)
    start, end = now - _ONE_DAY, now + 30 * _ONE_DAY
    good = _leaf(
        names, key=leaf_key, issuer=ca_name, issuer_key=ca_key, not_before=start, not_after=end
    )
    self_key = _key()
    self_signed = _leaf(
        names,
        key=self_key,
        issuer=_name(names[0]),
        issuer_key=self_key,
        not_before=start,
        not_after=end,
    )
    expired = _leaf(
        names,
        key=leaf_key,
        issuer=ca_name,
        issuer_key=ca_key,
        not_before=now - 30 * _ONE_DAY,
        not_after=start,
    )
    wrong_host = _leaf(
        ["autre-site.invalid"],
        key=leaf_key,
        issuer=ca_name,
        issuer_key=ca_key,
        not_before=start,
        not_after=end,
    )
    return TlsMaterial(
        ca_file=ca_file,
        ca_pem=ca_pem,
        good=_server_context(directory, "good", good, leaf_pem),
        bad={
            "self_signed": _server_context(
                directory, "self-signed", self_signed, _key_pem(self_key)
            ),
            "expired": _server_context(directory, "expired", expired, leaf_pem),
            "hostname": _server_context(directory, "hostname", wrong_host, leaf_pem),
        },
        fingerprints={
            name: cert.fingerprint(hashes.SHA256()).hex()
            for name, cert in (
                ("good", good),
                ("self_signed", self_signed),
                ("expired", expired),
                ("hostname", wrong_host),
            )
        },
    )
