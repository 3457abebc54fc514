"""WARC (ISO 28500:2017, WARC/1.1) captures of HTTP checks, built from the bytes on the wire.

It only serialises what the probe already received (request, status line, headers, body up to
the capture limit); it never fetches anything, never rewrites the captured bytes, and says so in
`WARC-Truncated` whenever the body it holds is not the whole body the server sent.
"""

from __future__ import annotations

import io
import platform
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders, StatusAndHeadersParser
from warcio.utils import Digester
from warcio.warcwriter import WARCWriter

from probes.httpclient import Exchange

__all__ = [
    "WARC_DIGEST",
    "WARC_VERSION",
    "WarcCapture",
    "build_warc",
    "exchanges_with_request",
]

WARC_VERSION = "1.1"
WARC_DIGEST = "sha256"  # digests as `sha256:<base32>`; `warcio check` verifies them
_HTTP_REQUEST = "application/http; msgtype=request"
_HTTP_RESPONSE = "application/http; msgtype=response"
_NO_BODY_STATUS = frozenset({204, 304})


class _Writer(WARCWriter):  # type: ignore[misc]  # warcio ships no type hints
    """warcio's writer with SHA-256 digests instead of SHA-1."""

    @staticmethod
    def _create_digester() -> Digester:
        return Digester(WARC_DIGEST)


class _RawHead(StatusAndHeaders):  # type: ignore[misc]
    """Parsed status line and headers that serialise back to the exact bytes received.

    warcio re-serialises parsed headers, which would normalise what the server sent; evidence
    must keep the server's bytes (case, order, spacing) as they were.
    """

    def __init__(self, raw: bytes) -> None:
        parsed = StatusAndHeadersParser(["HTTP/1.0", "HTTP/1.1"], verify=False).parse(
            io.BytesIO(raw)
        )
        super().__init__(parsed.statusline, parsed.headers, protocol=parsed.protocol)
        self._raw = raw
        self.headers_buff = raw

    def compute_headers_buffer(self, header_filter: Any = None) -> None:  # noqa: ARG002
        self.headers_buff = self._raw


class WarcCapture:
    """The facts of one check that go into its WARC header records."""

    __slots__ = ("error", "outcome", "software", "started_at", "target_id", "vantage")

    def __init__(
        self,
        *,
        target_id: str,
        vantage: str,
        started_at: str,
        outcome: str,
        error: str | None,
        software: str = "Vigie",
    ) -> None:
        self.target_id = target_id
        self.vantage = vantage
        self.started_at = started_at
        self.outcome = outcome
        self.error = error
        self.software = software


def exchanges_with_request(exchanges: Iterable[Exchange]) -> list[Exchange]:
    """The exchanges whose request left the probe (a DNS or connect failure sends nothing)."""
    return [ex for ex in exchanges if _request_sent(ex)]


def _request_sent(ex: Exchange) -> bool:
    return bool(ex.raw_head) or ex.first_byte_at is not None or ex.phases["processing"] > 0


def _truncation(ex: Exchange, outcome: str) -> str | None:
    """WARC-Truncated value for the response record of `ex` (None: the whole body is there)."""
    if ex.raw_body_truncated:
        return "length"  # longer than the capture limit
    if ex.body is not None:
        return None
    if ex.method == "HEAD" or ex.status in _NO_BODY_STATUS:
        return None
    if ex.complete:
        return "unspecified"  # body deliberately not read (a redirect's)
    return "time" if outcome == "timeout" else "disconnect"


def _warc_date(started_at: str) -> str:
    """An RFC 3339 UTC time with 'Z' (the observation's `started_at` already is one)."""
    return started_at if started_at.endswith("Z") else started_at.replace("+00:00", "Z")


def build_warc(
    exchanges: Sequence[Exchange],
    capture: WarcCapture,
    *,
    environment: Mapping[str, Any] | None = None,
) -> bytes | None:
    """A gzipped WARC of the exchanges of one check, or None when no request was sent.

    Records: one `warcinfo` (software, vantage, target, outcome and error), then for each
    exchange whose request left the probe a `request` record (its exact bytes) and, when an
    answer came, a `response` record (status line and headers as received, body as received
    up to the capture limit, chunk framing included) with `WARC-Concurrent-To` linking the pair.
    An answer that is not HTTP is kept as a `resource` record of its raw bytes.
    """
    sent = exchanges_with_request(exchanges)
    if not sent:
        return None
    out = io.BytesIO()
    writer = _Writer(out, gzip=True, warc_version=WARC_VERSION)
    date = _warc_date(capture.started_at)
    info: dict[str, str] = {
        "software": capture.software,
        "format": "WARC File Format 1.1",
        "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
        "description": "Capture of a failed read-only check (request and response as on the wire)",
        "vigie-target": capture.target_id,
        "vigie-vantage": capture.vantage,
        "vigie-outcome": capture.outcome,
        "vigie-started-at": capture.started_at,
        "operator-os": platform.platform(),
    }
    if capture.error:
        info["vigie-error"] = capture.error
    for key in ("user_agent", "proxy", "resolver", "local_ips"):
        value = (environment or {}).get(key)
        if value not in (None, "", [], ()):
            info[f"vigie-{key.replace('_', '-')}"] = (
                ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
            )
    info_record = writer.create_warcinfo_record(f"vigie-{capture.target_id}.warc.gz", info)
    info_record.rec_headers.replace_header("WARC-Date", date)
    info_id = info_record.rec_headers.get_header("WARC-Record-ID")
    writer.write_record(info_record)
    for ex in sent:
        _write_exchange(writer, ex, date=date, info_id=info_id, outcome=capture.outcome)
    return out.getvalue()


def _base_headers(ex: Exchange, record_type: str, date: str, info_id: str) -> dict[str, str]:
    headers = {
        "WARC-Type": record_type,
        "WARC-Record-ID": writer_id(),
        "WARC-Date": date,
        "WARC-Target-URI": ex.url,
        "WARC-Warcinfo-ID": info_id,
    }
    if ex.remote_ip:
        headers["WARC-IP-Address"] = ex.remote_ip
    return headers


def writer_id() -> str:
    """A fresh `<urn:uuid:...>` record id."""
    return str(StatusAndHeadersParser.make_warc_id())


def _record(
    record_type: str,
    warc_headers: dict[str, str],
    block: bytes,
    content_type: str,
    http_headers: StatusAndHeaders | None = None,
) -> ArcWarcRecord:
    headers = StatusAndHeaders("", list(warc_headers.items()), protocol=f"WARC/{WARC_VERSION}")
    record = ArcWarcRecord(
        "warc", record_type, headers, io.BytesIO(block), http_headers, content_type, len(block)
    )
    record.payload_length = len(block)
    return record


def _write_exchange(
    writer: _Writer, ex: Exchange, *, date: str, info_id: str, outcome: str
) -> None:
    response: ArcWarcRecord | None = None
    if ex.raw_head:
        headers = _base_headers(ex, "response", date, info_id)
        truncated = _truncation(ex, outcome)
        if truncated is not None:
            headers["WARC-Truncated"] = truncated
        try:
            head = _RawHead(ex.raw_head) if ex.status is not None else None
        except (ValueError, IndexError, UnicodeError):
            head = None
        if head is not None and ex.raw_head.endswith((b"\n\n", b"\r\n\r\n")):
            response = _record("response", headers, ex.raw_body, _HTTP_RESPONSE, head)
        else:  # not an HTTP answer: keep the bytes as they came
            headers["WARC-Type"] = "resource"
            block = ex.raw_head + ex.raw_body
            response = _record("resource", headers, block, "application/octet-stream")
    request_headers = _base_headers(ex, "request", date, info_id)
    if response is not None:
        request_headers["WARC-Concurrent-To"] = response.rec_headers.get_header("WARC-Record-ID")
        writer.write_record(response)
    request_head = _RawHead(ex.raw_request)
    writer.write_record(_record("request", request_headers, b"", _HTTP_REQUEST, request_head))
