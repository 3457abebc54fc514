"""Benchmark: CPU per HTTP GET of Vigie's own client against httpx and raw asyncio streams.

Why probes/httpclient.py is Vigie's own raw-bytes client and not httpx: this measures the
client's CPU alone, per request, on loopback. A local server in a separate process (its CPU not
counted) answers a small page; each client makes N sequential GETs on fresh connections (as a
probe does: no keep-alive), and the CPU time (user + system) of this process is divided by N.
Not a test: it prints figures and ratios. httpx is optional (`pip install httpx` to compare).

Usage: .venv/bin/python bench/client_cpu.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from probes.httpclient import HttpClient  # noqa: E402

BODY = b"<html><body>" + b"Vigie bench page " * 200 + b"</body></html>"


def _serve(sock: socket.socket) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readline() not in (b"\r\n", b"\n", b""):
                pass
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                + str(len(BODY)).encode()
                + b"\r\nConnection: close\r\n\r\n"
                + BODY
            )
            await writer.drain()
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, sock=sock, backlog=512)
        await server.serve_forever()

    asyncio.run(main())


async def _vigie(url: str, n: int) -> None:
    client = HttpClient("Vigie-bench/1.0")
    for _ in range(n):
        ex = client.exchange("GET", url)
        await client.fetch(ex)
        assert ex.status == 200


async def _raw_streams(url: str, n: int) -> None:
    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    for _ in range(n):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        data = await reader.read()
        assert data.startswith(b"HTTP/1.1 200")
        writer.close()


async def _httpx(url: str, n: int) -> None:
    import httpx

    limits = httpx.Limits(max_keepalive_connections=0)  # a fresh connection per probe
    async with httpx.AsyncClient(limits=limits) as client:
        for _ in range(n):
            response = await client.get(url)
            assert response.status_code == 200


def _cpu(run: Callable[[str, int], Awaitable[None]], url: str, n: int) -> float:
    """CPU seconds of this process per request."""
    asyncio.run(run(url, 50))  # warm up imports and caches
    start = time.process_time()
    asyncio.run(run(url, n))
    return (time.process_time() - start) / n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    server = multiprocessing.get_context("fork").Process(target=_serve, args=(sock,), daemon=True)
    server.start()
    try:
        results = {
            "vigie HttpClient": _cpu(_vigie, url, args.requests),
            "raw asyncio streams": _cpu(_raw_streams, url, args.requests),
        }
        try:
            import httpx  # noqa: F401
        except ImportError:
            print("httpx not installed: skipped")
        else:
            results["httpx AsyncClient (shared)"] = _cpu(_httpx, url, args.requests)
    finally:
        server.terminate()
    reference = results["vigie HttpClient"]
    print(f"CPU per GET on a fresh loopback connection ({args.requests} requests each):")
    for name, seconds in results.items():
        print(f"  {name:28s} {seconds * 1e3:6.3f} ms  ({seconds / reference:4.2f}x Vigie's)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
