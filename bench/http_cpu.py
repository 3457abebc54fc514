"""Benchmark: CPU per HTTP probe of the Vigie service against blackbox_exporter, and timing error.

Everything runs on loopback (nginx, blackbox_exporter, Vigie, a delay server on free ports) and
stops by itself; it never probes another machine. Not a test: it prints figures and ratios.

Usage: .venv/bin/python bench/http_cpu.py [--targets 200] [--duration 20] [--service auto]

1. CPU: N targets x 1 s interval on a local nginx page, probed at the same time by the Vigie
   service (`vigie run --config FILE`, or an in-process stand-in) and by Debian's
   prometheus-blackbox-exporter driven at the same rate by a separate driver process (whose CPU
   is not counted). CPU of each measured process = utime + stime from /proc/PID/stat over the
   measurement window, divided by the probes it completed in that window.
2. Timing error: a local server waits 300 ms before the first response byte; error = measured
   `processing` phase - 0.300 s, over N probes, alone and with 200 probes/s of background load
   on the same event loop (goal: p99 <= 2 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
NGINX = "/usr/sbin/nginx"
BLACKBOX = "/usr/bin/prometheus-blackbox-exporter"
DELAY = 0.300
TIMING_CONCURRENCY = 5  # delayed probes in flight at once
PAGE_MARK = "Vigie bench page"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- small helpers ----------------------------------------------------------------------------


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of process `pid` (all its threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def wait_for(what: str, ready: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll `ready` until it is true; raise after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not become ready within {timeout:g} s")


def http_get(url: str, timeout: float = 5.0) -> str:
    """GET `url` (loopback only) and return the body as text."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return str(response.read().decode("utf-8", "replace"))


def stop(proc: subprocess.Popen[Any] | None, timeout: float = 10.0) -> None:
    """SIGTERM `proc`, then SIGKILL it if it has not exited within `timeout`."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def die_with_parent() -> None:
    """In a child, before exec: get SIGTERM if the benchmark dies (no orphan servers)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def popen(command: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """Start a helper process that dies with the benchmark."""
    return subprocess.Popen(command, preexec_fn=die_with_parent, **kwargs)  # noqa: PLW1509


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


# --- nginx --------------------------------------------------------------------------------------


def start_nginx(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    """nginx serving a ~12 KB page on a free loopback port; returns (process, page URL)."""
    prefix = tmp / "nginx"
    www = prefix / "www"
    www.mkdir(parents=True)
    words = " ".join(f"paragraphe {i} du site des étrangers en France" for i in range(250))
    (www / "index.html").write_text(
        f"<!doctype html><html lang=fr><head><meta charset=utf-8><title>{PAGE_MARK}</title>"
        f"</head><body><h1>{PAGE_MARK}</h1><p>{words}</p></body></html>\n",
        "utf-8",
    )
    for path in (tmp, prefix, www):
        path.chmod(0o755)  # nginx workers may run as nobody
    (www / "index.html").chmod(0o644)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  default_type text/html;
  client_body_temp_path {prefix}/tmp; proxy_temp_path {prefix}/tmp;
  fastcgi_temp_path {prefix}/tmp; uwsgi_temp_path {prefix}/tmp; scgi_temp_path {prefix}/tmp;
  server {{ listen 127.0.0.1:{port}; root {www}; }}
}}
"""
    )
    proc = popen(
        [NGINX, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=(prefix / "stderr.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}/"
    wait_for("nginx", lambda: PAGE_MARK in http_get(url), 15)
    return proc, url


# --- the Vigie service --------------------------------------------------------------------------


def write_vigie_config(tmp: Path, page_url: str, targets: int, listen_port: int) -> Path:
    """A service configuration: `targets` targets of the page, interval 1 s."""
    lines = [
        "vantage: {name: bench, operator: 'Vigie benchmark'}",
        "user_agent: 'Vigie-bench/1.0 (+https://example.invalid/vigie)'",
        "defaults: {interval: 1s, timeout: 5s}",
        "min_interval: 1s",
        f"max_concurrency: {max(64, targets)}",
        f"listen: '127.0.0.1:{listen_port}'",
        f"ledger: {{url: 'sqlite:///{tmp}/ledger.db', artifacts: '{tmp}/artifacts'}}",
        f"signing: {{key: '{tmp}/vantage.key'}}",
        "targets:",
    ]
    lines += [
        f"  - {{id: bench-{i:03d}, kind: http, url: '{page_url}', interval: 1s,"
        f" expect: {{status: [200], contains: '{PAGE_MARK}'}}}}"
        for i in range(targets)
    ]
    path = tmp / "vigie.yaml"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def vigie_command(config: Path, mode: str) -> list[str]:
    """The command of the measured Vigie service process (the one place to switch)."""
    vigie = VENV_BIN / "vigie"
    if mode == "auto":
        mode = "vigie" if vigie.exists() and _vigie_run_works(vigie) else "inprocess"
    if mode == "vigie":
        return [str(vigie), "run", "--config", str(config)]
    return [sys.executable, str(Path(__file__).resolve()), "_serve", str(config)]


def _vigie_run_works(vigie: Path) -> bool:
    result = subprocess.run(
        [str(vigie), "run", "--help"], capture_output=True, timeout=30, check=False
    )
    return result.returncode == 0


def probes_done(metrics_url: str) -> tuple[float, float]:
    """(all, ok) checks counted by `vigie_probes_total` on the service's /metrics."""
    total = ok = 0.0
    for line in http_get(metrics_url).splitlines():
        if line.startswith("vigie_probes_total{"):
            value = float(line.rsplit(" ", 1)[1])
            total += value
            if 'outcome="ok"' in line:
                ok += value
    return total, ok


def serve_inprocess(config: str) -> None:
    """Stand-in for `vigie run` until it exists: scheduler + HttpProbe + /metrics, on uvloop."""
    import uvloop
    from aiohttp import web
    from prometheus_client import CollectorRegistry, Counter, generate_latest

    from config.settings import load_settings
    from probes.base import ProbeContext, ProbeSettings
    from probes.environment import collect_environment
    from probes.http import HttpProbe

    settings = load_settings(Path(config))
    registry = CollectorRegistry()
    probes = Counter("vigie_probes", "checks", ["target", "outcome"], registry=registry)

    async def main() -> None:
        env = collect_environment(settings.vantage.name, settings.vantage.operator, "ua")
        probe = HttpProbe(
            ProbeSettings(
                vantage=settings.vantage.name, user_agent=settings.user_agent, environment=env
            )
        )
        app = web.Application()

        async def metrics(_request: web.Request) -> web.Response:
            return web.Response(body=generate_latest(registry), content_type="text/plain")

        app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, settings.listen_host, settings.listen_port).start()
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stopping.set)
        count = len(settings.targets)

        async def run_target(index: int) -> None:
            target = settings.targets[index]
            interval = settings.interval_of(target)
            next_at = loop.time() + interval * index / count
            while not stopping.is_set():
                await asyncio.sleep(max(0.0, next_at - loop.time()))
                obs = await probe.check(
                    ProbeContext(target=target, timeout=settings.timeout_of(target))
                )
                obs.to_json()  # the service serialises every observation for the ledger
                probes.labels(target=target.id, outcome=str(obs.outcome)).inc()
                next_at += interval

        tasks = [asyncio.create_task(run_target(i)) for i in range(count)]
        await stopping.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runner.cleanup()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


# --- blackbox_exporter --------------------------------------------------------------------------


def start_blackbox(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    """blackbox_exporter with an `http_2xx` module on a free loopback port."""
    conf = tmp / "blackbox.yml"
    conf.write_text(
        "modules:\n"
        "  http_2xx:\n"
        "    prober: http\n"
        "    timeout: 5s\n"
        "    http:\n"
        "      preferred_ip_protocol: ip4\n"
    )
    port = free_port()
    proc = popen(
        [
            BLACKBOX,
            f"--config.file={conf}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "blackbox.log").open("wb"),
    )
    base = f"http://127.0.0.1:{port}"
    wait_for("blackbox_exporter", lambda: "blackbox" in http_get(f"{base}/metrics"), 15)
    return proc, base


def drive_blackbox(base: str, target: str, rate: float, duration: float, out: str) -> None:
    """Send `rate` probe requests per second to blackbox for `duration` s; count completions."""
    import urllib.parse

    import aiohttp
    import uvloop

    url = f"{base}/probe?" + urllib.parse.urlencode({"target": target, "module": "http_2xx"})

    async def main() -> None:
        done = ok = dropped = 0
        outstanding = 0
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stopping.set)
        connector = aiohttp.TCPConnector(limit=500)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one() -> None:
                nonlocal done, ok, outstanding
                try:
                    async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
                        text = await resp.text()
                    done += 1
                    ok += "\nprobe_success 1" in text
                except (aiohttp.ClientError, TimeoutError):
                    pass
                finally:
                    outstanding -= 1

            def report() -> None:
                tmp = out + ".tmp"
                Path(tmp).write_text(json.dumps({"done": done, "ok": ok, "dropped": dropped}))
                Path(tmp).replace(out)

            start = loop.time()
            tasks: set[asyncio.Task[None]] = set()
            sent = 0
            last_report = 0.0
            while not stopping.is_set() and loop.time() - start < duration:
                due = int((loop.time() - start) * rate) + 1
                while sent < due:
                    sent += 1
                    if outstanding >= 400:
                        dropped += 1
                        continue
                    outstanding += 1
                    task = asyncio.create_task(one())
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                if loop.time() - last_report >= 0.1:
                    report()
                    last_report = loop.time()
                await asyncio.sleep(0.002)
            await asyncio.wait(tasks, timeout=10) if tasks else None
            report()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


def read_count(path: Path) -> dict[str, int]:
    """The driver's latest counts."""
    try:
        data: dict[str, int] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"done": 0, "ok": 0, "dropped": 0}
    return data


# --- timing error -------------------------------------------------------------------------------


class DelayServer:
    """Loopback server that waits 300 ms after the request before the first response byte."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> DelayServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stopping.set()
        self.sock.close()
        self.thread.join(2)

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _serve(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            received = time.perf_counter()
            time.sleep(DELAY)
            body = b"delayed page"
            head = (
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n"
                "X-Delay: {:.6f}\r\n\r\n"
            )
            actual = time.perf_counter() - received
            conn.sendall(head.format(len(body), actual).encode() + body)


def measure_timing(count: int, background_url: str | None, background_rate: float) -> None:
    """Probe the delay server `count` times; print the errors (seconds) as JSON.

    With `background_url`, the same event loop also probes that page at `background_rate`/s,
    as the service does at full load. A reference client (blocking sockets, the least a client
    can add) measures the same server just before, so machine noise can be told apart.
    """
    import uvloop

    from config.targets import Target
    from probes.base import ProbeContext, ProbeSettings
    from probes.http import HttpProbe

    async def main(port: int) -> list[tuple[float, float]]:
        probe = HttpProbe(
            ProbeSettings(vantage="bench", user_agent="Vigie-bench/1.0", environment={})
        )
        delayed = Target(id="delay", kind="http", url=f"http://127.0.0.1:{port}/")
        errors: list[tuple[float, float]] = []  # (vs 300 ms, vs the server's actual delay)
        stopping = asyncio.Event()

        async def background() -> None:
            if background_url is None or background_rate <= 0:
                return
            page = Target(id="page", kind="http", url=background_url)
            loop = asyncio.get_running_loop()
            tasks: set[asyncio.Task[Any]] = set()
            start = loop.time()
            sent = 0
            while not stopping.is_set():
                due = int((loop.time() - start) * background_rate) + 1
                while sent < due and len(tasks) < 400:
                    sent += 1
                    task = asyncio.create_task(probe.check(ProbeContext(target=page, timeout=5)))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                await asyncio.sleep(0.002)
            if tasks:
                await asyncio.wait(tasks, timeout=10)

        async def measured() -> None:
            sem = asyncio.Semaphore(TIMING_CONCURRENCY)

            async def one() -> None:
                async with sem:
                    result = await probe.run(ProbeContext(target=delayed, timeout=5))
                    obs = result.observation
                    if obs.success:
                        actual = float(result.exchanges[-1].headers["x-delay"])
                        processing = obs.phases["processing"]
                        errors.append((processing - DELAY, processing - actual))

            await asyncio.sleep(1.0 if background_url else 0.0)  # let the load settle
            await asyncio.gather(*(one() for _ in range(count)))
            stopping.set()

        await asyncio.gather(background(), measured())
        return errors

    server = popen(
        [sys.executable, str(Path(__file__).resolve()), "_delay"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        reference = reference_errors(port, count)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            errors = runner.run(main(port))
    finally:
        stop(server)
    print(json.dumps({"probe": errors, "reference": reference}))


def reference_errors(port: int, count: int) -> list[tuple[float, float]]:
    """Time-to-first-byte of the delay server with plain blocking sockets (the floor)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(_: int) -> tuple[float, float]:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sent = time.perf_counter()
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = sock.recv(4096)
            first = time.perf_counter() - sent
        actual = float(data.split(b"X-Delay: ", 1)[1].split(b"\r\n", 1)[0])
        return first - DELAY, first - actual

    with ThreadPoolExecutor(TIMING_CONCURRENCY) as pool:
        return list(pool.map(one, range(count)))


def serve_delay() -> None:
    """Run the delay server (its own process, so its threads never contend with the probe)."""
    with DelayServer() as server:
        print(server.port, flush=True)
        signal.sigtimedwait({signal.SIGTERM, signal.SIGINT}, 900)


Errors = list[tuple[float, float]]  # (vs 300 ms, vs the delay the server measured)


def timing_run(count: int, background_url: str | None, rate: float) -> dict[str, Errors]:
    """Run `measure_timing` in its own process (the uvloop event loop the service uses)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "_timing", str(count)]
    if background_url:
        cmd += [background_url, str(rate)]
    out = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, check=True, cwd=ROOT
    ).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return {key: [(a, b) for a, b in data[key]] for key in ("probe", "reference")}


def describe_errors(label: str, errors: Errors) -> str:
    """One table row: |error| p50/p99/max vs 300 ms, then p50/p99 vs the server's own pause."""
    if not errors:
        return f"  {label:34}no successful probe"
    nominal = [abs(a) * 1000 for a, _ in errors]
    own = [abs(b) * 1000 for _, b in errors]
    return (
        f"  {label:34}{percentile(nominal, 50):7.3f}{percentile(nominal, 99):8.3f}"
        f"{max(nominal):8.3f}{percentile(own, 50):10.3f}{percentile(own, 99):8.3f}"
        f"{len(errors):6d}"
    )


# --- the benchmark ------------------------------------------------------------------------------


@contextlib.contextmanager
def processes() -> Iterator[list[subprocess.Popen[Any]]]:
    """Every process started by the benchmark, stopped on the way out (last started first)."""
    started: list[subprocess.Popen[Any]] = []
    try:
        yield started
    finally:
        for proc in reversed(started):
            stop(proc)


def run_benchmark(args: argparse.Namespace) -> int:
    """The whole benchmark; returns the exit code."""
    for binary in (NGINX, BLACKBOX):
        if not Path(binary).exists():
            print(
                f"missing {binary}: run `make deps-test` (Debian packages nginx-light and "
                "prometheus-blackbox-exporter)",
                file=sys.stderr,
            )
            return 2
    tmp = Path(tempfile.mkdtemp(prefix="vigie-bench-"))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    try:
        with processes() as started:
            nginx, page_url = start_nginx(tmp)
            started.append(nginx)
            listen_port = free_port()
            config = write_vigie_config(tmp, page_url, args.targets, listen_port)
            from config.settings import load_settings

            load_settings(config)  # fail early, with the config's own error text
            command = vigie_command(config, args.service)
            mode = "vigie run" if command[1] == "run" else "in-process stand-in"
            vigie = popen(
                command,
                cwd=tmp,
                env=env,
                stdout=(tmp / "vigie.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
            started.append(vigie)
            metrics_url = f"http://127.0.0.1:{listen_port}/metrics"
            try:
                wait_for("the Vigie service", lambda: probes_done(metrics_url)[0] >= 0, 60)
            except RuntimeError:
                print((tmp / "vigie.log").read_text(errors="replace")[-3000:], file=sys.stderr)
                raise
            blackbox, blackbox_url = start_blackbox(tmp)
            started.append(blackbox)
            counts = tmp / "driver.json"
            driver = popen(
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "_drive",
                    blackbox_url,
                    page_url,
                    str(args.targets / 1.0),
                    str(args.warmup + args.duration + 30),
                    str(counts),
                ],
                cwd=ROOT,
                env=env,
            )
            started.append(driver)
            print(
                f"load: {args.targets} targets x 1 s on {page_url}; Vigie ({mode}) and "
                f"blackbox_exporter at {args.targets}/s each; warm-up {args.warmup:g} s, "
                f"window {args.duration:g} s"
            )
            time.sleep(args.warmup)
            v_cpu0, b_cpu0 = cpu_seconds(vigie.pid), cpu_seconds(blackbox.pid)
            v_done0, v_ok0 = probes_done(metrics_url)
            b0 = read_count(counts)
            t0 = time.monotonic()
            time.sleep(args.duration)
            v_cpu1, b_cpu1 = cpu_seconds(vigie.pid), cpu_seconds(blackbox.pid)
            v_done1, v_ok1 = probes_done(metrics_url)
            b1 = read_count(counts)
            window = time.monotonic() - t0

            for proc in (driver, blackbox, vigie):
                stop(proc)
            idle = timing_run(args.timing_n, None, 0)
            loaded = timing_run(args.timing_n, page_url, args.targets)

        v_probes, v_ok = v_done1 - v_done0, v_ok1 - v_ok0
        b_probes, b_ok = b1["done"] - b0["done"], b1["ok"] - b0["ok"]
        if v_probes <= 0 or b_probes <= 0:
            print("no probe completed in the window: see the logs in", tmp, file=sys.stderr)
            return 1
        v_ms = (v_cpu1 - v_cpu0) * 1000 / v_probes
        b_ms = (b_cpu1 - b_cpu0) * 1000 / b_probes
        print()
        print(f"{'':24}{'CPU ms/probe':>14}{'probes/s':>10}{'ok %':>8}")
        print(
            f"{'Vigie service':24}{v_ms:14.3f}{v_probes / window:10.1f}{100 * v_ok / v_probes:8.1f}"
        )
        print(
            f"{'blackbox_exporter':24}{b_ms:14.3f}{b_probes / window:10.1f}"
            f"{100 * b_ok / b_probes:8.1f}"
        )
        print(f"ratio Vigie / blackbox: {v_ms / b_ms:.2f}  (goal <= 1.0)")
        print(f"CPU clock resolution: 1/{CLK_TCK} s; window {window:.1f} s")
        print()
        print("timing error |processing - pause| in ms, server pausing 300 ms before the first")
        print("byte (goal: p99 <= 2 ms vs 300 ms); 'own' = vs the pause the server measured;")
        print("reference = blocking-socket client on the same server, just before (machine floor)")
        print(f"  {'':34}{'p50':>7}{'p99':>8}{'max':>8}{'own p50':>10}{'p99':>8}{'n':>6}")
        print(describe_errors("Vigie probe, idle loop", idle["probe"]))
        print(describe_errors("reference", idle["reference"]))
        print(describe_errors(f"Vigie probe, +{args.targets} probes/s on loop", loaded["probe"]))
        print(describe_errors("reference", loaded["reference"]))
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point (also the entry of the helper subprocesses, via hidden sub-commands)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_serve"]:
        serve_inprocess(argv[1])
        return 0
    if argv[:1] == ["_drive"]:
        drive_blackbox(argv[1], argv[2], float(argv[3]), float(argv[4]), argv[5])
        return 0
    if argv[:1] == ["_delay"]:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        serve_delay()
        return 0
    if argv[:1] == ["_timing"]:
        rest = argv[2:]
        measure_timing(int(argv[1]), rest[0] if rest else None, float(rest[1]) if rest else 0)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=200, help="targets at 1 s (probes/s)")
    parser.add_argument("--duration", type=float, default=20.0, help="measurement window (s)")
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds before measuring")
    parser.add_argument("--timing-n", type=int, default=100, help="probes of the 300 ms server")
    parser.add_argument(
        "--service",
        choices=("auto", "vigie", "inprocess"),
        default="auto",
        help="measure `vigie run` or the in-process stand-in (auto: vigie run when it works)",
    )
    return run_benchmark(parser.parse_args(argv))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
