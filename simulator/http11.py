"""A minimal HTTP/1.1 server side on asyncio streams: read a request, write a response.

Small on purpose, so every fault (hang, reset, slow first byte, endless body) is in our hands;
it serves loopback tests and must never act as a client.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import functools
import http
import time
from collections.abc import Iterable
from typing import Final
from urllib.parse import unquote, urlsplit

__all__ = [
    "MAX_BODY",
    "MAX_HEAD",
    "BadRequestError",
    "Request",
    "Response",
    "http_date",
    "read_request",
    "response_head",
]

MAX_HEAD: Final = 64 * 1024
MAX_BODY: Final = 1024 * 1024
SERVER: Final = "vigie-simulator/1"


class BadRequestError(Exception):
    """The client sent something that is not a request we can read."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    """One request as read off the connection."""

    method: str
    target: str
    path: str
    query: str
    version: str
    headers: dict[str, str]
    body: bytes = b""

    @property
    def keep_alive(self) -> bool:
        """Whether the client lets the connection stay open after the answer."""
        tokens = {t.strip().lower() for t in self.headers.get("connection", "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


@dataclasses.dataclass(frozen=True, slots=True)
class Response:
    """A complete answer (status, headers, body)."""

    status: int
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()

    def encode(self, *, head_only: bool, keep_alive: bool) -> bytes:
        """The bytes on the wire; `head_only` for HEAD (same headers, no body)."""
        headers = [("Content-Type", self.content_type), ("Content-Length", str(len(self.body)))]
        headers.extend(self.headers)
        head = response_head(self.status, headers, keep_alive)
        return head if head_only else head + self.body


@functools.lru_cache(maxsize=2)
def _format_date(second: int) -> str:
    return email.utils.formatdate(second, usegmt=True)


def http_date() -> str:
    """The current time as an HTTP date, formatted at most once a second."""
    return _format_date(int(time.time()))


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def response_head(status: int, headers: Iterable[tuple[str, str]], keep_alive: bool) -> bytes:
    """Status line and headers, ending with the empty line."""
    lines = [
        f"HTTP/1.1 {status} {_reason(status)}",
        f"Date: {http_date()}",
        f"Server: {SERVER}",
    ]
    lines.extend(f"{name}: {value}" for name, value in headers)
    lines.append(f"Connection: {'keep-alive' if keep_alive else 'close'}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _read_line(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readuntil(b"\r\n")
    except asyncio.LimitOverrunError:
        raise BadRequestError(400, "chunk line too long") from None


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = await _read_line(reader)
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BadRequestError(400, "bad chunk size") from None
        if size == 0:
            # Trailers, up to the empty line.
            while (await _read_line(reader)) != b"\r\n":
                pass
            return bytes(body)
        if len(body) + size > MAX_BODY:
            raise BadRequestError(413, "request body too large")
        body += await reader.readexactly(size)
        await reader.readexactly(2)


async def read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None = None
) -> Request | None:
    """Read one request with its body; None when the client closed the connection cleanly."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise BadRequestError(400, "connection closed in the middle of a request") from None
    except asyncio.LimitOverrunError:
        raise BadRequestError(431, "request head too large") from None
    lines = raw.decode("latin-1").lstrip("\r\n").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequestError(400, f"malformed request line {lines[0][:80]!r}")
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequestError(400, f"malformed header line {line[:80]!r}")
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    split = urlsplit(target)
    path = unquote(split.path) or "/"
    body = b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        if writer is not None and headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = await _read_chunked(reader)
    elif "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise BadRequestError(400, "bad Content-Length") from None
        if length < 0:
            raise BadRequestError(400, "bad Content-Length")
        if length > MAX_BODY:
            raise BadRequestError(413, "request body too large")
        if writer is not None and length and headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = await reader.readexactly(length)
    # Methods are case-sensitive (RFC 9110): record them exactly as sent.
    return Request(method, target, path, split.query, version, headers, body)
