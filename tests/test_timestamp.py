"""Tests for evidence.timestamp: RFC 3161 stamps from a local `openssl ts` authority.

Every request goes to the loopback TSA of tests/tsa_fixture.py; results are cross-checked
with the real `openssl ts -verify`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import socket
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from rfc3161_client import HashAlgorithm, TimestampRequestBuilder, decode_timestamp_response
from rfc3161_client._rust import parse_timestamp_request

from evidence.ledger import timestamp
from evidence.ledger.timestamp import (
    HttpTimestamper,
    TimestampError,
    TimestampFailure,
    certificates_pem,
    timestamp_token,
    token_certificates,
    token_info,
    verify_token,
    verify_token_signature,
)
from tests.tsa_fixture import POLICY_OID, LocalTsa, local_tsa, make_ca

__all__ = ["local_tsa"]  # the fixture, imported so pytest finds it here

DATA = b'{"origin":"paris-1","root":"3q2+7w==","size":42}'
SHA256_OID = "2.16.840.1.101.3.4.2.1"


def _reason(excinfo: pytest.ExceptionInfo[TimestampError]) -> TimestampFailure:
    return excinfo.value.reason


def _der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def _flip(blob: bytes, index: int) -> bytes:
    changed = bytearray(blob)
    changed[index] ^= 0x01
    return bytes(changed)


def _query(data: bytes, *, cert_req: bool = True) -> bytes:
    return (
        TimestampRequestBuilder()
        .data(data)
        .hash_algorithm(HashAlgorithm.SHA256)
        .cert_request(cert_request=cert_req)
        .build()
        .as_bytes()
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _openssl_verify(
    work: Path, blob: bytes, data: bytes, ca_pem: bytes, *, token_in: bool = False
) -> subprocess.CompletedProcess[str]:
    (work / "stamp.der").write_bytes(blob)
    (work / "data.bin").write_bytes(data)
    (work / "root.pem").write_bytes(ca_pem)
    command = ["openssl", "ts", "-verify", "-in", str(work / "stamp.der")]
    command += ["-data", str(work / "data.bin"), "-CAfile", str(work / "root.pem")]
    if token_in:
        command.append("-token_in")
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


def _cms_token(
    work: Path, tsa: LocalTsa, cert_path: Path, key_path: Path, *, pss: bool = False
) -> bytes:
    """A token over DATA signed by `openssl cms` (not `openssl ts`) with the given key."""
    tst = timestamp._parse(tsa.reply(_query(DATA))).signed
    assert tst is not None
    (work / "tst.der").write_bytes(tst.econtent)
    command = ["openssl", "cms", "-sign", "-binary", "-nodetach", "-nosmimecap"]
    command += ["-econtent_type", "1.2.840.113549.1.9.16.1.4", "-md", "sha256"]
    command += ["-signer", str(cert_path), "-inkey", str(key_path)]
    if pss:
        command += ["-keyopt", "rsa_padding_mode:pss"]
    command += ["-in", str(work / "tst.der"), "-outform", "DER"]
    done = subprocess.run(command, capture_output=True, timeout=30, check=True)
    return done.stdout


@pytest.fixture(scope="module")
def reply(local_tsa: LocalTsa) -> bytes:
    """One verified reply over DATA."""
    return HttpTimestamper(local_tsa.url, ca_pem=local_tsa.ca_pem).stamp(DATA)


@pytest.fixture(scope="module")
def rsa_tsa(tmp_path_factory: pytest.TempPathFactory) -> LocalTsa:
    """An RSA authority, used without HTTP (its `reply` method)."""
    return LocalTsa(tmp_path_factory.mktemp("rsa-tsa"), key_type="rsa")


class TestHttpTimestamper:
    """HttpTimestamper: one POST to the configured TSA, a verified reply or a TimestampError."""

    def test_stamp_returns_a_reply_that_verifies(self, local_tsa: LocalTsa) -> None:
        """A stamp is a TimeStampResp over the data whose time is now, in UTC."""
        before = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=1)
        reply = HttpTimestamper(local_tsa.url, ca_pem=local_tsa.ca_pem).stamp(DATA)
        after = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
        made = verify_token(reply, DATA, certificates=[local_tsa.ca_pem])
        assert made.tzinfo == dt.UTC
        assert before <= made <= after
        assert reply == local_tsa.last_reply

    def test_sends_one_sha256_query_with_nonce_and_cert_request(self, local_tsa: LocalTsa) -> None:
        """The query is a POST of a DER TimeStampReq: SHA-256 imprint, nonce, certReq."""
        before = local_tsa.requests
        HttpTimestamper(local_tsa.url, user_agent="Vigie/test (+x)").stamp(DATA)
        assert local_tsa.requests == before + 1
        assert local_tsa.last_headers["content-type"] == "application/timestamp-query"
        assert local_tsa.last_headers["user-agent"] == "Vigie/test (+x)"
        assert local_tsa.last_query is not None
        query = parse_timestamp_request(local_tsa.last_query)
        assert query.message_imprint.hash_algorithm.dotted_string == SHA256_OID
        assert query.message_imprint.message == hashlib.sha256(DATA).digest()
        assert query.nonce is not None
        assert query.cert_req is True

    def test_each_stamp_has_its_own_nonce(self, local_tsa: LocalTsa) -> None:
        """Two stamps of the same data carry different nonces and serial numbers."""
        stamper = HttpTimestamper(local_tsa.url, ca_pem=local_tsa.ca_pem)
        first, second = token_info(stamper.stamp(DATA)), token_info(stamper.stamp(DATA))
        assert first.nonce != second.nonce
        assert first.serial_number != second.serial_number

    def test_unsorted_certificate_chain_is_accepted_and_kept_as_sent(
        self, local_tsa: LocalTsa
    ) -> None:
        """A reply whose SignedData lists its chain out of DER order is verified, stored as sent."""
        with local_tsa.failing("chain"):
            reply = HttpTimestamper(local_tsa.url, ca_pem=local_tsa.ca_pem).stamp(DATA)
        assert reply == local_tsa.last_reply
        with pytest.raises(ValueError, match="InvalidSetOrdering"):
            decode_timestamp_response(reply)  # the pitfall of DESIGN.md is real
        assert verify_token(reply, DATA, certificates=[local_tsa.ca_pem])
        assert len(token_certificates(reply)) == 2

    def test_without_ca_the_signature_is_still_checked(self, local_tsa: LocalTsa) -> None:
        """With no ca_pem, a stamp is returned after its imprint and signature are checked."""
        reply = HttpTimestamper(local_tsa.url).stamp(DATA)
        assert verify_token_signature(reply, DATA) == token_info(reply).gen_time

    def test_http_500_is_unavailable(self, local_tsa: LocalTsa) -> None:
        """An HTTP error from the TSA is reported as unavailable, naming the status."""
        with local_tsa.failing("http_500"), pytest.raises(TimestampError, match="HTTP 500") as exc:
            HttpTimestamper(local_tsa.url).stamp(DATA)
        assert _reason(exc) == TimestampFailure.UNAVAILABLE

    def test_garbage_reply_is_malformed(self, local_tsa: LocalTsa) -> None:
        """A 200 reply that is not DER is refused as malformed."""
        with local_tsa.failing("garbage"), pytest.raises(TimestampError) as exc:
            HttpTimestamper(local_tsa.url).stamp(DATA)
        assert _reason(exc) == TimestampFailure.MALFORMED

    def test_hanging_tsa_times_out(self, local_tsa: LocalTsa) -> None:
        """A TSA that never answers yields a TimestampError once the timeout has passed."""
        stamper = HttpTimestamper(local_tsa.url, timeout=0.5)
        with (
            local_tsa.failing("hang"),
            pytest.raises(TimestampError, match=r"within 0\.5 s") as exc,
        ):
            stamper.stamp(DATA)
        assert _reason(exc) == TimestampFailure.UNAVAILABLE

    def test_rejection_names_the_tsa_reason(self, local_tsa: LocalTsa) -> None:
        """A well-formed rejection is reported as rejected, with the TSA's own words."""
        with local_tsa.failing("reject"), pytest.raises(TimestampError, match="not supported") as e:
            HttpTimestamper(local_tsa.url).stamp(DATA)
        assert _reason(e) == TimestampFailure.REJECTED

    def test_replayed_reply_fails_on_nonce(self, local_tsa: LocalTsa) -> None:
        """An old reply over the same data does not answer a new request."""
        stamper = HttpTimestamper(local_tsa.url, ca_pem=local_tsa.ca_pem)
        stamper.stamp(DATA)
        with local_tsa.failing("replay"), pytest.raises(TimestampError) as exc:
            stamper.stamp(DATA)
        assert _reason(exc) == TimestampFailure.NONCE_MISMATCH

    def test_reply_over_other_data_fails_on_imprint(self, local_tsa: LocalTsa) -> None:
        """A reply timestamping other bytes than the ones sent is refused."""
        stamper = HttpTimestamper(local_tsa.url, ca_pem=local_tsa.ca_pem)
        stamper.stamp(b"an older checkpoint")
        with local_tsa.failing("replay"), pytest.raises(TimestampError, match="imprint") as exc:
            stamper.stamp(DATA)
        assert _reason(exc) == TimestampFailure.IMPRINT_MISMATCH

    def test_redirect_is_not_followed(self, local_tsa: LocalTsa) -> None:
        """A redirect is an error: the query goes to the configured URL and nowhere else."""
        before = local_tsa.requests
        with local_tsa.failing("redirect"), pytest.raises(TimestampError, match="302") as exc:
            HttpTimestamper(local_tsa.url).stamp(DATA)
        assert _reason(exc) == TimestampFailure.UNAVAILABLE
        assert local_tsa.requests == before + 1

    def test_oversized_reply_is_cut_off(self, local_tsa: LocalTsa) -> None:
        """A reply larger than any timestamp is refused without being read whole."""
        with local_tsa.failing("huge"), pytest.raises(TimestampError, match="more than") as exc:
            HttpTimestamper(local_tsa.url).stamp(DATA)
        assert _reason(exc) == TimestampFailure.UNAVAILABLE

    def test_unreachable_tsa_is_unavailable(self) -> None:
        """A refused connection is reported as unavailable, with the URL."""
        url = f"http://127.0.0.1:{_free_port()}/tsa"
        with pytest.raises(TimestampError, match="cannot reach") as exc:
            HttpTimestamper(url, timeout=2).stamp(DATA)
        assert _reason(exc) == TimestampFailure.UNAVAILABLE

    def test_unknown_host_is_unavailable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A name that does not resolve is reported as unavailable.

        The lookup fails locally: the system resolver is not on this machine and must not be
        asked.
        """

        def no_such_name(host: str, *args: object, **kwargs: object) -> list[object]:
            raise socket.gaierror(socket.EAI_NONAME, f"Name or service not known: {host}")

        monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
        with pytest.raises(TimestampError) as exc:
            HttpTimestamper("http://tsa.vigie.invalid/", timeout=2).stamp(DATA)
        assert _reason(exc) == TimestampFailure.UNAVAILABLE

    def test_tsa_outside_the_configured_root_is_untrusted(self, local_tsa: LocalTsa) -> None:
        """A reply signed by a TSA that does not chain to ca_pem is refused."""
        other = make_ca("Some Other Root")
        with pytest.raises(TimestampError, match="untrusted chain") as exc:
            HttpTimestamper(local_tsa.url, ca_pem=other.pem).stamp(DATA)
        assert _reason(exc) == TimestampFailure.UNTRUSTED_CHAIN

    def test_empty_data_is_refused_before_any_request(self, local_tsa: LocalTsa) -> None:
        """Empty data is an input error and sends nothing."""
        before = local_tsa.requests
        with pytest.raises(TimestampError) as exc:
            HttpTimestamper(local_tsa.url).stamp(b"")
        assert _reason(exc) == TimestampFailure.INVALID_INPUT
        assert local_tsa.requests == before

    @pytest.mark.parametrize(
        "url", ["ftp://tsa.example/", "tsa.example", "http://:80/", "http://h:x/"]
    )
    def test_bad_url_is_refused(self, url: str) -> None:
        """Only http(s) URLs with a host are accepted."""
        with pytest.raises(TimestampError) as exc:
            HttpTimestamper(url)
        assert _reason(exc) == TimestampFailure.INVALID_INPUT

    def test_bad_ca_pem_is_refused(self) -> None:
        """An unreadable CA certificate is an input error at construction."""
        with pytest.raises(TimestampError, match="certificate") as exc:
            HttpTimestamper("http://127.0.0.1:1/", ca_pem=b"-----BEGIN CERTIFICATE-----\nno\n")
        assert _reason(exc) == TimestampFailure.INVALID_INPUT

    def test_url_credentials_become_basic_auth_and_stay_secret(self, local_tsa: LocalTsa) -> None:
        """user:pass in the URL is sent as HTTP Basic auth and never shown."""
        url = local_tsa.url.replace("http://", "http://assoc:s%40cret@")
        stamper = HttpTimestamper(url)
        stamper.stamp(DATA)
        assert local_tsa.last_headers["authorization"] == "Basic YXNzb2M6c0BjcmV0"
        assert "cret" not in stamper.url
        assert "cret" not in repr(stamper)


class TestVerifyToken:
    """verify_token: imprint, signature and chain, each failure named."""

    def test_returns_the_tokens_time(self, local_tsa: LocalTsa, reply: bytes) -> None:
        """The result is the token's genTime, aware and in UTC."""
        made = verify_token(reply, DATA, certificates=[local_tsa.ca_pem])
        assert made == token_info(reply).gen_time
        assert made.utcoffset() == dt.timedelta(0)

    def test_accepts_der_certificates_and_bare_tokens(
        self, local_tsa: LocalTsa, reply: bytes
    ) -> None:
        """A bare TimeStampToken and a DER root verify like the full reply and a PEM root."""
        token = timestamp_token(reply)
        assert token != reply
        assert timestamp_token(token) == token
        made = verify_token(token, DATA, certificates=[_der(local_tsa.ca_pem)])
        assert made == verify_token(reply, DATA, certificates=[local_tsa.ca_pem])

    def test_other_data_is_an_imprint_mismatch(self, local_tsa: LocalTsa, reply: bytes) -> None:
        """A token checked against other bytes fails with imprint mismatch."""
        with pytest.raises(TimestampError, match="imprint mismatch") as exc:
            verify_token(reply, DATA + b" ", certificates=[local_tsa.ca_pem])
        assert _reason(exc) == TimestampFailure.IMPRINT_MISMATCH

    def test_another_ca_is_an_untrusted_chain(self, reply: bytes) -> None:
        """A token checked against an unrelated root fails with untrusted chain."""
        other = make_ca("Unrelated Root")
        with pytest.raises(TimestampError, match="Unrelated Root") as exc:
            verify_token(reply, DATA, certificates=[other.pem])
        assert _reason(exc) == TimestampFailure.UNTRUSTED_CHAIN

    def test_the_tsa_certificate_alone_is_not_a_trust_anchor(
        self, local_tsa: LocalTsa, reply: bytes
    ) -> None:
        """Trusting only the TSA's own certificate does not establish the chain."""
        with pytest.raises(TimestampError) as exc:
            verify_token(reply, DATA, certificates=[local_tsa.tsa_cert_pem])
        assert _reason(exc) == TimestampFailure.UNTRUSTED_CHAIN

    def test_altered_signature_is_a_bad_signature(self, local_tsa: LocalTsa, reply: bytes) -> None:
        """A changed byte in the signature is detected as a bad signature."""
        signed = timestamp._parse(reply).signed
        assert signed is not None
        at = reply.rindex(signed.signature) + len(signed.signature) // 2
        with pytest.raises(TimestampError, match="bad signature") as exc:
            verify_token(_flip(reply, at), DATA, certificates=[local_tsa.ca_pem])
        assert _reason(exc) == TimestampFailure.BAD_SIGNATURE

    def test_altered_time_is_a_bad_signature(self, local_tsa: LocalTsa, reply: bytes) -> None:
        """A changed genTime (the claim that matters) is detected as a bad signature."""
        stamp = token_info(reply).gen_time.strftime("%Y%m%d%H%M%S").encode()
        at = reply.index(stamp) + len(stamp) - 1  # last digit of the seconds
        with pytest.raises(TimestampError, match="altered") as exc:
            verify_token(_flip(reply, at), DATA, certificates=[local_tsa.ca_pem])
        assert _reason(exc) == TimestampFailure.BAD_SIGNATURE

    @pytest.mark.parametrize(
        "mangle",
        [
            lambda b: b[:-1],
            lambda b: b + b"\x00",
            lambda b: b[:40],
            lambda b: b"",
            lambda b: b"x" * 64,
        ],
        ids=["truncated", "trailing", "cut", "empty", "garbage"],
    )
    def test_damaged_bytes_are_malformed(
        self, local_tsa: LocalTsa, reply: bytes, mangle: object
    ) -> None:
        """Bytes that are not one whole DER structure are reported as malformed."""
        assert callable(mangle)
        with pytest.raises(TimestampError) as exc:
            verify_token(mangle(reply), DATA, certificates=[local_tsa.ca_pem])
        assert _reason(exc) == TimestampFailure.MALFORMED

    def test_signature_only_check_detects_tampering(self, reply: bytes) -> None:
        """Without a trust anchor, a changed time or signature byte is still caught."""
        assert verify_token_signature(reply, DATA) == token_info(reply).gen_time
        signed = timestamp._parse(reply).signed
        assert signed is not None
        stamp = token_info(reply).gen_time.strftime("%Y%m%d%H%M%S").encode()
        for at in (reply.rindex(signed.signature) + 9, reply.index(stamp) + len(stamp) - 1):
            with pytest.raises(TimestampError) as exc:
                verify_token_signature(_flip(reply, at), DATA)
            assert _reason(exc) == TimestampFailure.BAD_SIGNATURE

    def test_nonce_is_checked_when_given(self, local_tsa: LocalTsa, reply: bytes) -> None:
        """An expected nonce that differs from the token's fails with nonce mismatch."""
        nonce = token_info(reply).nonce
        assert nonce is not None
        assert verify_token(reply, DATA, certificates=[local_tsa.ca_pem], nonce=nonce)
        with pytest.raises(TimestampError) as exc:
            verify_token(reply, DATA, certificates=[local_tsa.ca_pem], nonce=nonce + 1)
        assert _reason(exc) == TimestampFailure.NONCE_MISMATCH

    def test_no_trusted_certificate_is_an_input_error(self, reply: bytes) -> None:
        """verify_token refuses to run without a trust anchor."""
        with pytest.raises(TimestampError, match="root certificate") as exc:
            verify_token(reply, DATA, certificates=[])
        assert _reason(exc) == TimestampFailure.INVALID_INPUT

    def test_token_without_certificates_needs_the_tsa_certificate(
        self, local_tsa: LocalTsa
    ) -> None:
        """A token that embeds no certificate verifies once the TSA certificate is supplied."""
        bare = local_tsa.reply(_query(DATA, cert_req=False))
        assert token_certificates(bare) == []
        with pytest.raises(TimestampError) as exc:
            verify_token(bare, DATA, certificates=[local_tsa.ca_pem])
        assert _reason(exc) == TimestampFailure.BAD_CERTIFICATE
        assert verify_token(bare, DATA, certificates=[local_tsa.ca_pem, local_tsa.tsa_cert_pem])

    def test_signer_without_timestamping_purpose_is_refused(
        self, local_tsa: LocalTsa, tmp_path: Path
    ) -> None:
        """A token signed by a certificate not meant for timestamping is a bad certificate."""
        cert, key = local_tsa.ca.issue_tsa("Code Signer", timestamping=False)
        (tmp_path / "signer.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (tmp_path / "signer.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        token = _cms_token(tmp_path, local_tsa, tmp_path / "signer.pem", tmp_path / "signer.key")
        with pytest.raises(TimestampError, match="timeStamping") as exc:
            verify_token(token, DATA, certificates=[local_tsa.ca_pem])
        assert _reason(exc) == TimestampFailure.BAD_CERTIFICATE


class TestOtherKeyTypes:
    """RSA authorities: PKCS#1 v1.5 through `openssl ts`, RSASSA-PSS through `openssl cms`."""

    def test_rsa_pkcs1_token_verifies(self, rsa_tsa: LocalTsa) -> None:
        """An RSA TSA's token verifies, and a changed byte in it does not."""
        reply = rsa_tsa.reply(_query(DATA))
        assert verify_token(reply, DATA, certificates=[rsa_tsa.ca_pem])
        signed = timestamp._parse(reply).signed
        assert signed is not None
        at = reply.rindex(signed.signature) + 7
        with pytest.raises(TimestampError) as exc:
            verify_token(_flip(reply, at), DATA, certificates=[rsa_tsa.ca_pem])
        assert _reason(exc) == TimestampFailure.BAD_SIGNATURE

    def test_rsa_pss_token_verifies(self, rsa_tsa: LocalTsa, tmp_path: Path) -> None:
        """A token signed with RSASSA-PSS verifies, chain included; altered, it does not."""
        token = _cms_token(tmp_path, rsa_tsa, rsa_tsa.cert_path, rsa_tsa.key_path, pss=True)
        assert timestamp._parse(token).signed is not None
        assert verify_token(token, DATA, certificates=[rsa_tsa.ca_pem])
        assert verify_token_signature(token, DATA)
        signed = timestamp._parse(token).signed
        assert signed is not None
        at = token.rindex(signed.signature) + 3
        with pytest.raises(TimestampError) as exc:
            verify_token(_flip(token, at), DATA, certificates=[rsa_tsa.ca_pem])
        assert _reason(exc) == TimestampFailure.BAD_SIGNATURE

    def test_rsa_pss_token_under_another_root_is_untrusted(
        self, rsa_tsa: LocalTsa, tmp_path: Path
    ) -> None:
        """The chain of an RSASSA-PSS token is checked too."""
        token = _cms_token(tmp_path, rsa_tsa, rsa_tsa.cert_path, rsa_tsa.key_path, pss=True)
        with pytest.raises(TimestampError) as exc:
            verify_token(token, DATA, certificates=[make_ca("Elsewhere").pem])
        assert _reason(exc) == TimestampFailure.UNTRUSTED_CHAIN


class TestTokenContents:
    """token_info, token_certificates, certificates_pem: what goes into evidence bundles."""

    def test_token_info_states_the_authority(self, local_tsa: LocalTsa) -> None:
        """token_info reads policy, imprint, hash and TSA names from the token."""
        info = token_info(HttpTimestamper(local_tsa.url).stamp(DATA))
        assert info.policy == POLICY_OID
        assert info.hash_algorithm == SHA256_OID
        assert info.imprint == hashlib.sha256(DATA).digest()
        assert info.tsa_name is not None
        assert "Vigie Test TSA" in info.tsa_name
        assert "Vigie Test TSA" in info.signer

    def test_signer_certificate_comes_first(self, local_tsa: LocalTsa) -> None:
        """The embedded TSA certificate is extracted, before any chain certificate."""
        assert token_certificates(HttpTimestamper(local_tsa.url).stamp(DATA)) == [
            _der(local_tsa.tsa_cert_pem)
        ]
        with local_tsa.failing("chain"):
            chained = HttpTimestamper(local_tsa.url).stamp(DATA)
        assert token_certificates(chained) == [_der(local_tsa.tsa_cert_pem), _der(local_tsa.ca_pem)]

    def test_extracted_certificates_verify_the_token(self, local_tsa: LocalTsa) -> None:
        """The PEM of the extracted certificates plus the root is enough to verify."""
        bare = local_tsa.reply(_query(DATA, cert_req=False))
        full = HttpTimestamper(local_tsa.url).stamp(DATA)
        pem = certificates_pem(token_certificates(full))
        assert pem.startswith(b"-----BEGIN CERTIFICATE-----")
        assert verify_token(bare, DATA, certificates=[local_tsa.ca_pem, pem])


class TestOpensslCrossCheck:
    """Stamps verify with the real `openssl ts -verify`, and openssl's stamps verify here."""

    def test_openssl_verifies_the_reply(self, local_tsa: LocalTsa, tmp_path: Path) -> None:
        """`openssl ts -verify -in REPLY -data FILE -CAfile ROOT` says OK."""
        reply = HttpTimestamper(local_tsa.url, ca_pem=local_tsa.ca_pem).stamp(DATA)
        done = _openssl_verify(tmp_path, reply, DATA, local_tsa.ca_pem)
        assert done.returncode == 0, done.stderr
        assert "Verification: OK" in done.stdout

    def test_openssl_verifies_the_bare_token(self, local_tsa: LocalTsa, tmp_path: Path) -> None:
        """`openssl ts -verify -token_in` accepts the extracted TimeStampToken."""
        token = timestamp_token(HttpTimestamper(local_tsa.url).stamp(DATA))
        done = _openssl_verify(tmp_path, token, DATA, local_tsa.ca_pem, token_in=True)
        assert "Verification: OK" in done.stdout, done.stderr

    def test_openssl_also_rejects_other_data(self, local_tsa: LocalTsa, tmp_path: Path) -> None:
        """The cross-check can fail: openssl refuses the reply for other data."""
        reply = HttpTimestamper(local_tsa.url).stamp(DATA)
        done = _openssl_verify(tmp_path, reply, b"other", local_tsa.ca_pem)
        assert done.returncode != 0
        assert "Verification: FAILED" in done.stdout

    def test_openssl_query_reply_verifies_here(self, local_tsa: LocalTsa, tmp_path: Path) -> None:
        """A query built by `openssl ts -query` gets a reply that verify_token accepts."""
        (tmp_path / "data.bin").write_bytes(DATA)
        query = subprocess.run(
            ["openssl", "ts", "-query", "-data", str(tmp_path / "data.bin"), "-sha512", "-cert"],
            capture_output=True,
            timeout=30,
            check=True,
        ).stdout
        reply = local_tsa.reply(query)
        assert token_info(reply).hash_algorithm == "2.16.840.1.101.3.4.2.3"
        assert verify_token(reply, DATA, certificates=[local_tsa.ca_pem])
