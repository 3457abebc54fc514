"""A local SMTP server for tests: accepts every message on loopback and keeps it for inspection.

It never relays anything anywhere and listens only on 127.0.0.1 (port chosen by the system).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import email
import email.policy
import socketserver
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage

from tests.background_server import BackgroundServer

__all__ = ["ReceivedMail", "SmtpSink"]

_MAX_LINE = 1_000_000


@dataclasses.dataclass(frozen=True)
class ReceivedMail:
    """One message as the sink received it."""

    mail_from: str
    rcpt_to: tuple[str, ...]
    message: EmailMessage
    auth: tuple[str, str] | None  # (username, password) given with AUTH, if any
    received_at: float  # time.monotonic() when the final "." arrived

    @property
    def subject(self) -> str:
        """The decoded Subject header."""
        return str(self.message.get("Subject", ""))

    def part(self, subtype: str) -> str:
        """The decoded body part of type text/`subtype` ("plain" or "html"), "\n" line ends."""
        for part in self.message.walk():
            if part.get_content_type() == f"text/{subtype}":
                content = part.get_content()
                return str(content).replace("\r\n", "\n")
        return ""

    @property
    def text(self) -> str:
        """The plain-text body."""
        return self.part("plain")

    @property
    def html(self) -> str:
        """The HTML body."""
        return self.part("html")


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def _reply(self, line: str) -> None:
        self.wfile.write(line.encode("ascii") + b"\r\n")
        self.wfile.flush()

    def _read(self) -> str | None:
        raw = self.rfile.readline(_MAX_LINE)
        if not raw:
            return None
        return raw.decode("utf-8", "replace").rstrip("\r\n")

    def handle(self) -> None:
        self._reply("220 vigie-test-sink ESMTP")
        mail_from = ""
        rcpt: list[str] = []
        auth: tuple[str, str] | None = None
        while (line := self._read()) is not None:
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                self._reply("250-vigie-test-sink")
                self._reply("250-AUTH PLAIN LOGIN")
                self._reply("250-8BITMIME")
                self._reply("250 SMTPUTF8")
            elif verb == "HELO":
                self._reply("250 vigie-test-sink")
            elif verb == "AUTH":
                auth = self._auth(arg)
                if auth is None:
                    return
            elif verb == "MAIL":
                mail_from = arg.split(":", 1)[1].strip().split(" ")[0].strip("<>")
                rcpt = []
                self._reply("250 OK")
            elif verb == "RCPT":
                rcpt.append(arg.split(":", 1)[1].strip().strip("<>"))
                self._reply("250 OK")
            elif verb == "DATA":
                self._reply("354 End data with <CR><LF>.<CR><LF>")
                data = self._data()
                message = email.message_from_bytes(data, policy=email.policy.default)
                assert isinstance(message, EmailMessage)
                self.server.sink.add(
                    ReceivedMail(mail_from, tuple(rcpt), message, auth, time.monotonic())
                )
                self._reply("250 OK: queued")
            elif verb in {"RSET", "NOOP"}:
                self._reply("250 OK")
            elif verb == "QUIT":
                self._reply("221 Bye")
                return
            else:
                self._reply("502 Command not implemented")

    def _auth(self, arg: str) -> tuple[str, str] | None:
        mechanism, _, initial = arg.partition(" ")
        try:
            if mechanism.upper() == "PLAIN":
                if not initial:
                    self._reply("334 ")
                    initial = self._read() or ""
                _, user, password = base64.b64decode(initial).decode().split("\0")
            elif mechanism.upper() == "LOGIN":
                self._reply("334 " + base64.b64encode(b"Username:").decode())
                user = base64.b64decode(self._read() or "").decode()
                self._reply("334 " + base64.b64encode(b"Password:").decode())
                password = base64.b64decode(self._read() or "").decode()
            else:
                self._reply("504 Unrecognized authentication type")
                return None
        except (ValueError, binascii.Error):
            self._reply("501 Malformed authentication")
            return None
        self._reply("235 Authentication successful")
        return (user, password)

    def _data(self) -> bytes:
        lines: list[bytes] = []
        while True:
            raw = self.rfile.readline(_MAX_LINE)
            if not raw or raw in {b".\r\n", b".\n"}:
                break
            if raw.startswith(b".."):
                raw = raw[1:]
            lines.append(raw)
        return b"".join(lines)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink
        super().__init__(("127.0.0.1", 0), _Handler)


class SmtpSink(BackgroundServer):
    """An SMTP server on 127.0.0.1 that keeps every message; use as a context manager."""

    def __init__(self) -> None:
        self._messages: list[ReceivedMail] = []
        self._cond = threading.Condition()
        super().__init__()

    def make_server(self) -> _Server:
        """The server bound to 127.0.0.1 on a free port."""
        return _Server(self)

    @property
    def port(self) -> int:
        """The TCP port the sink listens on."""
        assert self._server is not None, "use SmtpSink as a context manager"
        return int(self._server.server_address[1])

    @property
    def messages(self) -> list[ReceivedMail]:
        """Every message received so far, oldest first."""
        with self._cond:
            return list(self._messages)

    def add(self, mail: ReceivedMail) -> None:
        """Record `mail` and wake up waiters."""
        with self._cond:
            self._messages.append(mail)
            self._cond.notify_all()

    def clear(self) -> None:
        """Forget every message received so far."""
        with self._cond:
            self._messages.clear()

    def wait_for(self, predicate: Callable[[ReceivedMail], bool], timeout: float) -> ReceivedMail:
        """The first message matching `predicate`, waiting up to `timeout` seconds for it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for mail in self._messages:
                    with contextlib.suppress(Exception):
                        if predicate(mail):
                            return mail
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    subjects = [m.subject for m in self._messages]
                    raise TimeoutError(
                        f"no matching e-mail within {timeout:.0f} s; received: {subjects}"
                    )
                self._cond.wait(remaining)
