"""DNS-rebinding defence for Vigie's HTTP endpoints: answer only the host names we were given.

A web page the operator visits can point a name it controls at 127.0.0.1 and then read the
local endpoint from the browser (the browser sends ``Host: attacker.example``). Requests whose
``Host`` is not one of ours get ``421 Misdirected Request`` and nothing else.

Ours: the listen address (when it is a wildcard, any IP literal and ``localhost``, which a
rebinding page cannot send), the host of ``public_url``, and the configured ``allowed_hosts``
(``*`` turns the check off, for a reverse proxy that rewrites ``Host`` itself).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware

__all__ = ["HostAllowList", "host_middleware"]

_WILDCARDS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 - names, not a bind
_LOCALHOST = frozenset({"localhost", "localhost."})


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _host_of(header: str) -> str:
    """The host part of a ``Host`` header, lower-case, without port or IPv6 brackets."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    if header.count(":") == 1:
        return header.split(":", 1)[0]
    return header  # no port, or a bare IPv6 literal (invalid, compared as is)


class HostAllowList:
    """The host names (and IP literals) one endpoint answers to."""

    def __init__(
        self, listen_host: str, public_url: str | None = None, allowed: Iterable[str] = ()
    ) -> None:
        listen_host = listen_host.strip("[]").lower()
        self.any_host = "*" in allowed
        self.any_ip = listen_host in _WILDCARDS
        names = {a.strip().strip("[]").lower().rstrip(".") for a in allowed if a != "*"}
        names.add(listen_host)
        if self.any_ip or listen_host in {"127.0.0.1", "::1", "localhost"}:
            names |= _LOCALHOST | {"127.0.0.1", "::1"}
        if public_url:
            public = (urlsplit(public_url).hostname or "").lower()
            if public:
                names.add(public)
        self.names = frozenset(n for n in names if n)

    def allows(self, header: str | None) -> bool:
        """Whether a request with this ``Host`` header is for us."""
        if self.any_host:
            return True
        if not header:
            return False  # HTTP/1.1 requires Host; aiohttp fills none in
        host = _host_of(header)
        if host.rstrip(".") in self.names or host in self.names:
            return True
        return self.any_ip and _is_ip(host)


_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def host_middleware(allow: HostAllowList) -> Middleware:
    """An aiohttp middleware answering 421 to a request for a host not in `allow`."""

    @web.middleware
    async def check_host(request: web.Request, handler: _Handler) -> web.StreamResponse:
        if not allow.allows(request.headers.get("Host")):
            raise web.HTTPMisdirectedRequest(
                text="421 Requête mal dirigée : ce service ne répond pas à ce nom d'hôte. "
                "Ajoutez-le à « allowed_hosts » dans la configuration si c'est voulu.\n"
            )
        return await handler(request)

    return check_host
