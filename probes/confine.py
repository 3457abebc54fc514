"""Chromium's launcher: a network namespace whose only way out is Vigie's policy proxy.

Playwright starts this file (through a two-line shell script given as the browser's
``executable_path``) instead of Chromium. Before Chromium exists it:

1. moves itself into a new, empty network namespace (``unshare(CLONE_NEWNET)``; without root, in
   a new user namespace too, mapping only the current user);
2. brings the namespace's loopback up and checks it is the only interface: no route leads out,
   so a UDP datagram (WebRTC, STUN, QUIC) or a direct TCP connection has nowhere to go;
3. creates, inside the namespace, the listening sockets of the policy proxy (127.0.0.1, random
   ports) and hands them to Vigie over a Unix socket (SCM_RIGHTS). Vigie serves them from its
   own namespace: a connection accepted on them is the only path from the browser to a network;
4. execs Chromium with ``--proxy-server`` on the first of them. Playwright keeps driving it over
   its pipe (CDP over ``--remote-debugging-pipe``), which needs no network.

Any failure is sent to Vigie as one line and the launcher exits: Chromium never starts outside
its namespace. Standard library only, run with ``python -I -S`` (it must start fast).

Usage: confine.py SOCKET BROWSER PORTS -- [chromium arguments...]
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import fcntl
import os
import socket
import struct
import sys
from pathlib import Path

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
# Ports created in the namespace; Vigie assigns one per browser context (per check).
MAX_PORTS = 64


class ConfinementError(Exception):
    """The namespace could not be set up: Chromium must not start."""


def _unshare(flags: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(flags) != 0:
        errno = ctypes.get_errno()
        raise ConfinementError(f"unshare: {os.strerror(errno)} (errno {errno})")


def enter_namespace() -> str:
    """Move this process into a new network namespace; returns how ("root" or "userns").

    With CAP_SYS_ADMIN (root on a host), a network namespace alone; otherwise (an unprivileged
    user, or root in a container without CAP_SYS_ADMIN) a user namespace around it, where the
    kernel and the container runtime allow unprivileged user namespaces.
    """
    refused = ""
    if os.geteuid() == 0:
        try:
            _unshare(CLONE_NEWNET)
        except ConfinementError as exc:
            refused = f"network namespace: {exc}; "
        else:
            return "root"
    uid, gid = os.geteuid(), os.getegid()
    try:
        _unshare(CLONE_NEWUSER | CLONE_NEWNET)
    except ConfinementError as exc:
        raise ConfinementError(f"{refused}user + network namespace: {exc}") from None
    try:
        Path("/proc/self/setgroups").write_text("deny", encoding="ascii")
        Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1", encoding="ascii")
        Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1", encoding="ascii")
    except OSError as exc:
        raise ConfinementError(f"user namespace mapping: {exc}") from exc
    return "userns"


def loopback_only() -> None:
    """Bring `lo` up; fail unless it is the namespace's only interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags | IFF_UP))
    names = [name for _, name in socket.if_nameindex()]
    if names != ["lo"]:
        raise ConfinementError(f"the new namespace has other interfaces: {names}")


def listeners(count: int) -> list[socket.socket]:
    """`count` listening sockets on 127.0.0.1 (inside the namespace), random ports."""
    made = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        made.append(sock)
    return made


def _report(path: str, message: str, fds: list[int]) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as channel:
        channel.settimeout(30)
        channel.connect(path)
        data = message.encode("utf-8")
        if fds:
            channel.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        else:
            channel.sendall(data)


def main(argv: list[str]) -> int:  # noqa: RET503 - ends in execv when it succeeds
    if len(argv) < 4 or argv[3] != "--":
        print("usage: confine.py SOCKET BROWSER PORTS -- ARGS...", file=sys.stderr)
        return 2
    channel, browser, count = argv[0], argv[1], min(int(argv[2]), MAX_PORTS)
    args = [a for a in argv[4:] if a != "--no-proxy-server"]
    if not os.access(browser, os.X_OK):
        print(f"vigie: no such browser executable: {browser}", file=sys.stderr)
        with contextlib.suppress(OSError):
            _report(channel, f"missing {browser}", [])
        return 127
    try:
        mode = enter_namespace()
        loopback_only()
        socks = listeners(count)
    except (ConfinementError, OSError) as exc:
        print(f"vigie: browser confinement failed: {exc}", file=sys.stderr)
        with contextlib.suppress(OSError):
            _report(channel, f"error {exc}", [])
        return 3
    ports = [sock.getsockname()[1] for sock in socks]
    _report(channel, f"ok {mode} " + " ".join(map(str, ports)), [s.fileno() for s in socks])
    for sock in socks:
        sock.close()  # Vigie holds its own copies; the browser must not inherit them
    proxy = f"--proxy-server=http://127.0.0.1:{ports[0]}"
    # Replaces this process (same pid): Chromium inherits the namespace, nothing else.
    os.execv(browser, [browser, *args, proxy, "--proxy-bypass-list=<-loopback>"])  # noqa: S606


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
