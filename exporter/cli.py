"""The `vigie` command line: the composition root that builds settings, ledger, probes, service.

Bad input ends with one clear line and exit code 2; nothing already recorded is touched.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import structlog

from evidence.attestation_cmd import add_commands as add_attestation_commands
from evidence.commands import add_commands as add_evidence_commands
from evidence.export_cmd import add_commands as add_export_commands
from exporter.central import add_commands as add_central_commands
from exporter.central import run_handler
from exporter.clock import ClockWatch
from exporter.config import ConfigError, Settings, load_settings
from exporter.grafana import add_commands as add_dashboard_commands
from exporter.logs import configure_logging
from exporter.metrics import Metrics
from exporter.outage_recorder import OutageRecorder
from exporter.outages_cmd import add_commands as add_outage_commands
from exporter.scheduler import Scheduler
from exporter.server import build_app
from exporter.service import EvidenceSink, Service
from exporter.wiring import EvidenceError, open_evidence
from exporter.witnessing import start_witnessing
from probes.base import ProbeRegistry, ProbeSettings, default_factories
from probes.environment import collect_environment, vigie_version
from probes.observation import Observation

__all__ = ["build_parser", "main"]

log = structlog.get_logger("vigie")

EXIT_OK = 0
EXIT_FAILURE = 1


def run_async(coro_fn: Callable[[], Any]) -> Any:
    """Run `coro_fn()` on uvloop when available, else the default event loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(coro_fn())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro_fn())


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


def probe_settings(settings: Settings, artifacts: Any = None) -> ProbeSettings:
    """What every probe of this vantage shares."""
    return ProbeSettings(
        vantage=settings.vantage.name,
        user_agent=settings.user_agent,
        environment=collect_environment(
            settings.vantage.name, settings.vantage.operator, settings.user_agent
        ),
        artifacts=artifacts,
        browser_executable=str(settings.browser.executable)
        if settings.browser.executable
        else None,
        browser_max_concurrency=settings.browser.max_concurrency,
        browser_idle_close=settings.browser.idle_close,
    )


# --- vigie config check ----------------------------------------------------------------------


def cmd_config_check(args: argparse.Namespace) -> int:
    """Validate a configuration file without running anything."""
    settings = load_settings(args.file)
    kinds: dict[str, int] = {}
    for target in settings.targets:
        kinds[target.kind] = kinds.get(target.kind, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "none"
    print(
        f"{args.file}: OK — {len(settings.targets)} targets ({summary}), "
        f"{len(settings.controls)} controls, vantage {settings.vantage.name!r}"
    )
    return EXIT_OK


# --- vigie check -----------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    """Probe every target once and print the observations (nothing is recorded)."""
    settings = _settings(args)
    targets = [t for t in settings.targets if not args.target or t.id in args.target]
    unknown = set(args.target or ()) - {t.id for t in settings.targets}
    if unknown:
        raise ConfigError([f"--target: no target with id {min(unknown)!r}"])

    async def probe_all() -> list[Observation]:
        registry = ProbeRegistry(probe_settings(settings), default_factories())
        limit = asyncio.Semaphore(settings.max_concurrency)

        async def one(target: Any) -> Observation:
            from probes.base import ProbeContext

            async with limit:
                ctx = ProbeContext(target=target, timeout=settings.timeout_of(target))
                return await registry.check(ctx)

        try:
            return list(await asyncio.gather(*(one(t) for t in targets)))
        finally:
            await registry.aclose()

    observations: list[Observation] = run_async(probe_all)
    if args.format == "json":
        print(json.dumps([o.to_dict() for o in observations], ensure_ascii=False, indent=2))
    else:
        _print_table(observations)
    return EXIT_OK if all(o.success for o in observations) else EXIT_FAILURE


def _print_table(observations: Sequence[Observation]) -> None:
    rows = [("TARGET", "RESULT", "STATUS", "SECONDS", "DETAIL")]
    rows += [
        (
            o.target_id,
            str(o.outcome),
            str(o.http_status or "-"),
            f"{o.duration_s:.3f}",
            (o.error or "")[:70],
        )
        for o in observations
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4])


# --- vigie run -------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    """Run the monitoring service until SIGTERM or SIGINT."""
    settings = _settings(args)
    return int(run_async(lambda: serve(settings)))


async def serve(settings: Settings, *, ready: Callable[[str], None] | None = None) -> int:
    """Compose and run the service; returns the exit code."""
    from aiohttp import web

    metrics = Metrics(
        vantage=settings.vantage.name,
        version=vigie_version(),
        public_url=(settings.public_url or "").rstrip("/"),
    )
    try:
        evidence = await open_evidence(settings, metrics)
    except EvidenceError as exc:
        log.error("evidence_unavailable", error=str(exc))  # noqa: TRY400
        print(f"vigie: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    registry = ProbeRegistry(probe_settings(settings, evidence.artifacts), default_factories())
    sink: EvidenceSink = evidence.sink
    # Rebuild outage state from the ledger (an outage open before a restart stays open);
    # appends outage events a crash lost and the `gap` since the last entry.
    outages = await OutageRecorder.start(settings, sink, metrics, evidence.ledger)
    service = Service(settings, registry, metrics, sink, outages)

    runner = web.AppRunner(build_app(service), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.listen_host, settings.listen_port, shutdown_timeout=1.0)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        await evidence.aclose()
        log.error("listen_failed", listen=settings.listen, error=exc.strerror or str(exc))  # noqa: TRY400
        return EXIT_FAILURE

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)

    scheduler = Scheduler(
        settings.targets,
        service.check_target,
        interval_of=settings.interval_of,
        max_concurrency=settings.max_concurrency,
        min_interval=settings.min_interval,
    )
    url = f"http://{settings.listen}/"
    log.info(
        "started",
        vantage=settings.vantage.name,
        targets=len(settings.targets),
        controls=len(settings.controls),
        status_page=url,
        metrics=url + "metrics",
        ledger=evidence.description,
    )
    if ready is not None:
        ready(url)
    tasks = [
        asyncio.create_task(scheduler.run(), name="scheduler"),
        asyncio.create_task(service.watch_controls(stopping), name="controls"),
        asyncio.create_task(outages.run(stopping), name="outages"),
        # A wall-clock jump (against the monotonic clock) is recorded as a ledger entry.
        asyncio.create_task(
            ClockWatch().run(evidence.sink.append, metrics.clock_jumps, stopping), name="clock"
        ),
    ]
    checkpoints = evidence.background_tasks(settings.ledger.checkpoint_interval)
    witnessing = await start_witnessing(settings, evidence, metrics)  # docs/witnesses.md
    await stopping.wait()
    await witnessing.aclose()
    log.info("stopping")
    scheduler.stop()
    await asyncio.wait(tasks, timeout=6.0)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
    await registry.aclose()
    await evidence.aclose(checkpoints)
    await runner.cleanup()
    log.info("stopped")
    return EXIT_OK


# --- parser ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The `vigie` argument parser with every subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        type=Path,
        default=Path(os.environ["VIGIE_CONFIG"]) if os.environ.get("VIGIE_CONFIG") else None,
        metavar="FILE",
        help="configuration file (default: $VIGIE_CONFIG, else ./vigie.yaml, else the built-in "
        "ANEF defaults)",
    )
    parser = argparse.ArgumentParser(
        prog="vigie",
        description="Vigie: read-only monitoring of public online services, with evidence.",
    )
    parser.add_argument("--version", action="version", version=f"vigie {vigie_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", parents=[common], help="run the monitoring service")
    run.set_defaults(handler=cmd_run)

    check = sub.add_parser("check", parents=[common], help="probe every target once and print")
    check.add_argument("--format", choices=["table", "json"], default="table")
    check.add_argument("--target", action="append", metavar="ID", help="only this target")
    check.set_defaults(handler=cmd_check)

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="COMMAND")
    config_check = config_sub.add_parser("check", help="validate a configuration file")
    config_check.add_argument("file", type=Path, metavar="FILE")
    config_check.set_defaults(handler=cmd_config_check)

    demo = sub.add_parser("demo", parents=[common], help="run the simulator and the service")
    demo.add_argument("--fault-every", type=float, default=45.0, metavar="SECONDS")
    demo.add_argument("--listen", default="127.0.0.1:9188", metavar="HOST:PORT")
    demo.add_argument(
        "--duration", type=float, default=None, metavar="SECONDS", help="stop after this long"
    )
    demo.set_defaults(handler=_cmd_demo)

    add_evidence_commands(sub, load_settings)
    add_export_commands(sub, load_settings)
    add_dashboard_commands(sub, load_settings)
    add_outage_commands(sub, load_settings)
    add_central_commands(sub, load_settings)
    add_attestation_commands(sub, load_settings)
    return parser


def _cmd_demo(args: argparse.Namespace) -> int:
    from exporter.demo import cmd_demo

    return cmd_demo(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `vigie` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging()
    try:
        return run_handler(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
