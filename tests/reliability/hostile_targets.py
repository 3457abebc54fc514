"""A zoo of misbehaving loopback servers (raw sockets) and bad TLS certificates, for the service.

Each case names the outcome a correct probe must record. Nothing here listens beyond loopback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import gzip
import ipaddress
import os
import ssl
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from simulator.tls import ca_key_usage
from tests.hostile import Client, Handler, HostileServer, respond

__all__ = [
    "BROWSER_PATHS",
    "HTTP_CASES",
    "HUGE_PAGE_BYTES",
    "HostileCase",
    "LocalCA",
    "browser_pages",
    "hostile_servers",
    "make_ca",
]

_HTML = (("Content-Type", "text/html; charset=utf-8"),)
_BOMB = gzip.compress(b"\0" * (64 << 20), compresslevel=9)  # 64 MiB of zeros in ~64 KiB


def _never_answer(client: Client) -> None:
    client.read_request()
    client.sleep(3600)


def _drip(client: Client) -> None:
    client.read_request()
    for byte in respond(body=b"<html>" + b"x" * 100, headers=_HTML):
        client.send(bytes([byte]))
        if not client.sleep(1.0):
            return


def _endless(client: Client) -> None:
    client.read_request()
    client.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n")
    chunk = b"<p>" + b"A" * 65533
    while not client.server.stopping.is_set():
        client.send(chunk)


def _redirect_loop(client: Client) -> None:
    client.read_request()
    client.send(respond("302 Found", headers=(("Location", "/loop"),)))


def _bad_status(client: Client) -> None:
    client.read_request()
    client.send(b"HTTP/1.1 two-hundred OK\r\nContent-Length: 0\r\n\r\n")


def _bad_headers(client: Client) -> None:
    client.read_request()
    client.send(b"HTTP/1.1 200 OK\r\nthis is not a header\r\n\x00\x01: \xff\r\n\r\n")


def _reset(client: Client) -> None:
    client.read_request()
    client.reset()


def _gzip_bomb(client: Client) -> None:
    client.read_request()
    headers = (*_HTML, ("Content-Encoding", "gzip"))
    client.send(respond(body=_BOMB, headers=headers))


def _garbage_html(client: Client) -> None:
    client.read_request()
    client.send(respond(body=os.urandom(200_000), headers=_HTML))


def _good(client: Client) -> None:
    client.read_request()
    client.send(respond(body=b"<html><body>Bienvenue</body></html>", headers=_HTML))


@dataclasses.dataclass(frozen=True)
class HostileCase:
    """One hostile server and the outcomes a correct probe may record for it."""

    id: str
    handler: Handler
    outcomes: frozenset[str]
    tls: str | None = None  # "expired", "self_signed", "wrong_host" (certificate served)
    words: str = ""  # a fragment the recorded error must contain (lower case)


HTTP_CASES: tuple[HostileCase, ...] = (
    HostileCase("never-answers", _never_answer, frozenset({"timeout"})),
    HostileCase("drip", _drip, frozenset({"timeout"})),
    HostileCase("endless-body", _endless, frozenset({"too_large"})),
    HostileCase("redirect-loop", _redirect_loop, frozenset({"redirect_loop"})),
    HostileCase("bad-status-line", _bad_status, frozenset({"protocol_error"})),
    HostileCase("bad-headers", _bad_headers, frozenset({"protocol_error"})),
    HostileCase("reset", _reset, frozenset({"connect_error", "protocol_error"})),
    HostileCase("gzip-bomb", _gzip_bomb, frozenset({"too_large"})),
    HostileCase("garbage-html", _garbage_html, frozenset({"content_mismatch"})),
    HostileCase("tls-expired", _good, frozenset({"tls_error"}), "expired", "expired"),
    HostileCase("tls-self-signed", _good, frozenset({"tls_error"}), "self_signed", "self"),
    HostileCase("tls-wrong-host", _good, frozenset({"tls_error"}), "wrong_host", "mismatch"),
)


# --- certificates ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LocalCA:
    """A throw-away CA (its PEM bundle for SSL_CERT_FILE) and server contexts per certificate."""

    bundle: Path
    contexts: dict[str, ssl.SSLContext]


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    san: x509.GeneralName | None,
    *,
    ca: bool = False,
    expired: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    start, end = (now - dt.timedelta(days=1), now + dt.timedelta(days=30))
    if expired:
        start, end = now - dt.timedelta(days=30), now - dt.timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            ca_key_usage(),
            critical=True,
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([san]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _context(
    directory: Path, label: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> ssl.SSLContext:
    cert_path, key_path = directory / f"{label}.crt", directory / f"{label}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context


def make_ca(directory: Path) -> LocalCA:
    """A CA trusted through SSL_CERT_FILE, and expired / wrong-host / self-signed servers."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("Vigie Reliability CA", ca_key, "Vigie Reliability CA", ca_key, None, ca=True)
    loopback = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    key = ec.generate_private_key(ec.SECP256R1())
    expired = _cert("expired", key, "Vigie Reliability CA", ca_key, loopback, expired=True)
    wrong = _cert("wrong", key, "Vigie Reliability CA", ca_key, x509.DNSName("other.invalid"))
    self_key = ec.generate_private_key(ec.SECP256R1())
    self_signed = _cert("self", self_key, "self", self_key, loopback)
    bundle = directory / "ca-bundle.pem"
    bundle.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return LocalCA(
        bundle=bundle,
        contexts={
            "expired": _context(directory, "expired", expired, key),
            "wrong_host": _context(directory, "wrong", wrong, key),
            "self_signed": _context(directory, "self", self_signed, self_key),
        },
    )


@contextlib.contextmanager
def hostile_servers(
    cases: tuple[HostileCase, ...], ca: LocalCA
) -> Iterator[dict[str, HostileServer]]:
    """Start one server per case; yields them by case id, stops them all at the end."""
    with contextlib.ExitStack() as stack:
        servers = {
            case.id: stack.enter_context(
                HostileServer(case.handler, tls=ca.contexts[case.tls] if case.tls else None)
            )
            for case in cases
        }
        yield servers


# --- browser pages -----------------------------------------------------------------------------

_PAGES: dict[str, bytes] = {
    "/js-loop": b"<html><body><p>chargement</p><script>for(;;){}</script></body></html>",
    "/alerts": b"<html><body><p>chargement</p><script>for(;;){alert('vigie');}</script>"
    b"</body></html>",
    "/popups": b"<html><body><p>chargement</p><script>setInterval(function(){"
    b"for(var i=0;i<20;i++){window.open('/popups','_blank');}},10);</script></body></html>",
}
HUGE_PAGE_BYTES = 200 << 20


def _path_of(request: bytes) -> str:
    parts = request.split(b" ", 2)
    return parts[1].decode("latin-1").split("?", 1)[0] if len(parts) >= 2 else "/"


def browser_pages(client: Client) -> None:
    """Serve the hostile browser pages by path (JS loop, alerts, download, pop-ups, 200 MB)."""
    path = _path_of(client.read_request())
    if path in _PAGES:
        client.send(respond(body=_PAGES[path], headers=_HTML))
    elif path == "/download":
        body = os.urandom(1 << 20)
        headers = (
            ("Content-Type", "application/octet-stream"),
            ("Content-Disposition", 'attachment; filename="facture.exe"'),
        )
        client.send(respond(body=body, headers=headers))
    elif path == "/huge":
        head = (*_HTML, ("Content-Length", str(HUGE_PAGE_BYTES)))
        client.send(respond(headers=head, length=False))
        chunk = b"<p>" + b"lorem ipsum " * 5000 + b"</p>\n"
        sent = 0
        while sent < HUGE_PAGE_BYTES and not client.server.stopping.is_set():
            piece = chunk[: HUGE_PAGE_BYTES - sent]
            client.send(piece)
            sent += len(piece)
    else:
        client.send(respond("404 Not Found", body=b"absent", headers=_HTML))


BROWSER_PATHS = ("/js-loop", "/alerts", "/download", "/popups", "/huge")
