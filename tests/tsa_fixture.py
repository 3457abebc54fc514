"""A local RFC 3161 timestamp authority for tests: throwaway CA, `openssl ts -reply`, HTTP.

It listens on 127.0.0.1 only, never on another address, and its keys live in a temporary
directory; it is for tests and demos, never a real timestamp service.

Use the session fixture `local_tsa` (import it into a test module or a conftest), or
`LocalTsa.start(directory)` directly; `python tests/tsa_fixture.py` serves one until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import http.server
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from simulator.tls import ca_key_usage

__all__ = ["MODES", "LocalTsa", "Mode", "TestCa", "local_tsa", "make_ca"]

Mode = Literal["ok", "chain", "http_500", "garbage", "hang", "reject", "replay", "redirect", "huge"]
MODES: tuple[Mode, ...] = (
    "ok",  # a normal reply, embedding only the signing certificate
    "chain",  # `certs =` in the config: root + TSA certificate, unsorted (real TSAs do this)
    "http_500",  # HTTP 500, no body
    "garbage",  # HTTP 200 with bytes that are not a TimeStampResp
    "hang",  # accept the request, never answer (until the server closes, at most 60 s)
    "reject",  # a well-formed rejection (status rejection, no token)
    "replay",  # send the previous good reply again (nonce and maybe imprint do not match)
    "redirect",  # HTTP 302 to another path on the same server
    "huge",  # HTTP 200 with 2 MiB of zeros
)
KeyType = Literal["ec", "rsa"]
POLICY_OID = "1.3.6.1.4.1.99999.3161.1"  # a private-arc policy: the test TSA's own

_TSA_CONFIG = """\
[ tsa ]
default_tsa = tsa_config1

[ tsa_config1 ]
serial = {serial}
crypto_device = builtin
signer_digest = sha256
default_policy = {policy}
digests = {digests}
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
{certs}"""


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Vigie tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _new_key(key_type: KeyType) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclasses.dataclass(frozen=True)
class TestCa:
    """A throwaway certificate authority (self-signed root)."""

    __test__ = False  # not a test class, despite the name

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

    @property
    def pem(self) -> bytes:
        """The root certificate, PEM."""
        return _pem(self.certificate)

    def issue_tsa(
        self, common_name: str, *, key_type: KeyType = "ec", timestamping: bool = True
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey]:
        """A TSA signing certificate (extendedKeyUsage critical timeStamping) and its key."""
        key = _new_key(key_type)
        now = dt.datetime.now(dt.UTC)
        usage = [
            ExtendedKeyUsageOID.TIME_STAMPING if timestamping else ExtendedKeyUsageOID.CODE_SIGNING
        ]
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=True,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage(usage), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        return cert, key


def make_ca(common_name: str = "Vigie Test Root CA", *, key_type: KeyType = "ec") -> TestCa:
    """A new self-signed root CA, valid from yesterday for ten years."""
    key = _new_key(key_type)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            ca_key_usage(digital_signature=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return TestCa(cert, key)


class LocalTsa:
    """An RFC 3161 authority on 127.0.0.1: every POST body goes through `openssl ts -reply`.

    Attributes: `url`, `ca_pem` (root, PEM), `tsa_cert_pem` (signing certificate, PEM),
    `ca_path`, `cert_path`, `key_path`, `directory`, `ca` (TestCa, to issue more certificates),
    `requests` (POSTs received), `last_query`, `last_headers` (lower-case names),
    `last_reply` (body of the last 200), `mode` (one of MODES; `failing(mode)` sets it for a
    `with` block and restores "ok").
    """

    def __init__(self, directory: Path, *, key_type: KeyType = "ec") -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.ca = make_ca(key_type=key_type)
        cert, key = self.ca.issue_tsa("Vigie Test TSA", key_type=key_type)
        self.tsa_certificate = cert
        self.ca_pem = self.ca.pem
        self.tsa_cert_pem = _pem(cert)
        self.key_path = directory / "tsa.key"
        self.key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self.key_path.chmod(0o600)
        self.cert_path = directory / "tsa.pem"
        self.cert_path.write_bytes(self.tsa_cert_pem)
        self.ca_path = directory / "ca.pem"
        self.ca_path.write_bytes(self.ca_pem)
        chain_path = directory / "chain.pem"
        chain_path.write_bytes(self.ca_pem + self.tsa_cert_pem)
        (directory / "serial").write_text("01\n")
        self._configs: dict[str, Path] = {}
        for label, digests, certs in (
            ("ok", "sha256, sha384, sha512", ""),
            ("chain", "sha256, sha384, sha512", f"certs = {chain_path}\n"),
            ("reject", "sha512", ""),  # a SHA-256 query is refused: "unsupported algorithm"
        ):
            path = directory / f"tsa-{label}.cnf"
            path.write_text(
                _TSA_CONFIG.format(
                    serial=directory / "serial", policy=POLICY_OID, digests=digests, certs=certs
                )
            )
            self._configs[label] = path
        self.mode: Mode = "ok"
        self.requests = 0
        self.last_query: bytes | None = None
        self.last_headers: dict[str, str] = {}
        self.last_reply: bytes | None = None
        self._last_good: bytes | None = None
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    @classmethod
    def start(cls, directory: Path, *, key_type: KeyType = "ec") -> LocalTsa:
        """Build the authority in `directory` and serve it on a free loopback port."""
        tsa = cls(directory, key_type=key_type)
        tsa._serve()
        return tsa

    def reply(self, query: bytes, *, config: str = "ok") -> bytes:
        """The DER TimeStampResp `openssl ts -reply` makes for a DER TimeStampReq."""
        with self._lock, tempfile.TemporaryDirectory(dir=self.directory) as work:
            query_path = Path(work) / "query.tsq"
            reply_path = Path(work) / "reply.tsr"
            query_path.write_bytes(query)
            command = ["openssl", "ts", "-reply", "-config", str(self._configs[config])]
            command += ["-section", "tsa_config1", "-queryfile", str(query_path)]
            command += ["-inkey", str(self.key_path), "-signer", str(self.cert_path)]
            command += ["-out", str(reply_path)]
            done = subprocess.run(command, capture_output=True, timeout=30, check=False)
            if done.returncode != 0 or not reply_path.exists():
                raise RuntimeError(
                    f"openssl ts -reply failed: {done.stderr.decode(errors='replace')}"
                )
            return reply_path.read_bytes()

    @contextlib.contextmanager
    def failing(self, mode: Mode) -> Iterator[LocalTsa]:
        """Serve in `mode` inside the block, then back to "ok" (hanging requests released)."""
        self.mode = mode
        try:
            yield self
        finally:
            self.mode = "ok"
            self._release.set()
            self._release = threading.Event()

    def close(self) -> None:
        """Stop serving and release any hanging request."""
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _serve(self) -> None:
        tsa = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with tsa._lock:
                    tsa.requests += 1
                    tsa.last_query = body
                    tsa.last_headers = {k.lower(): v for k, v in self.headers.items()}
                mode = tsa.mode
                if mode == "hang":
                    tsa._release.wait(60)
                    self.close_connection = True
                    return
                if mode == "http_500":
                    self._send(500, b"", "text/plain")
                elif mode == "garbage":
                    self._send(
                        200, b"this is not a timestamp reply\n", "application/timestamp-reply"
                    )
                elif mode == "huge":
                    self._send(200, bytes(2 << 20), "application/timestamp-reply")
                elif mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", "/elsewhere")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif mode == "replay" and tsa._last_good is not None:
                    self._send(200, tsa._last_good, "application/timestamp-reply")
                else:
                    config = mode if mode in {"chain", "reject"} else "ok"
                    try:
                        reply = tsa.reply(body, config=config)
                    except RuntimeError:
                        self._send(400, b"bad timestamp query\n", "text/plain")
                        return
                    if config == "ok":
                        tsa._last_good = reply
                    self._send(200, reply, "application/timestamp-reply")

            def do_GET(self) -> None:
                self._send(405, b"POST a timestamp query\n", "text/plain")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                tsa.last_reply = body if status == 200 else None
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the client may have given up
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}/tsa"
        self._thread = threading.Thread(target=server.serve_forever, name="local-tsa", daemon=True)
        self._thread.start()


@pytest.fixture(scope="session")
def local_tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTsa]:
    """A running local TSA shared by the session; tests that change its mode use `failing`."""
    tsa = LocalTsa.start(tmp_path_factory.mktemp("tsa"))
    try:
        yield tsa
    finally:
        tsa.close()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as scratch:
        authority = LocalTsa.start(Path(scratch))
        print(f"RFC 3161 test TSA at {authority.url}\nroot certificate: {authority.ca_path}")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            authority.close()
