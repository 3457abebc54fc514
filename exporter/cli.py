"""The `vigie` command line: the composition root that builds settings, ledger, probes, service.

Bad input ends with one clear line and exit code 2; nothing already recorded is touched.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import structlog

from config.settings import DEFAULT_CONFIG_PATH, ConfigError, Settings, load_settings
from config.vocabulary import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Outcome
from exporter.allocator import return_large_blocks
from exporter.central import add_commands as add_central_commands
from exporter.clock import ClockWatch
from exporter.commands.attestation import add_commands as add_attestation_commands
from exporter.commands.evidence import add_commands as add_evidence_commands
from exporter.commands.export import add_commands as add_export_commands
from exporter.commands.outages import add_commands as add_outage_commands
from exporter.commands.review import add_commands as add_review_commands
from exporter.grafana import add_commands as add_dashboard_commands
from exporter.grafana import ledger_outages
from exporter.logs import configure_logging
from exporter.metrics import Metrics
from exporter.outage_recorder import OutageRecorder
from exporter.plumbing import run_handler
from exporter.scheduler import Scheduler
from exporter.server import build_app
from exporter.service import EvidenceSink, Service, check_once
from exporter.wiring import (
    EvidenceConfigError,
    EvidenceError,
    journey_fingerprints,
    open_service_evidence,
)
from exporter.witnessing import start_witnessing
from probes.base import BrowserOptions, ProbeRegistry, ProbeSettings
from probes.environment import collect_environment, vigie_version
from probes.kinds import default_factories
from probes.observation import Observation

__all__ = ["build_parser", "main"]

log = structlog.get_logger("vigie")

_SERVICES = frozenset({"run", "demo", "central"})  # long-running commands


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
        browser=BrowserOptions(
            executable=str(settings.browser.executable) if settings.browser.executable else None,
            max_concurrency=settings.browser.max_concurrency,
            idle_close=settings.browser.idle_close,
            restart_after=settings.browser.restart_after,
        ),
    )


# --- vigie config check ----------------------------------------------------------------------


def cmd_config_check(args: argparse.Namespace) -> int:
    """Validate a configuration file without running anything."""
    settings = load_settings(args.file)
    if args.file is None:  # what the other commands would use: ./vigie.yaml, else built-in
        builtin = "built-in defaults (no ./vigie.yaml here)"
        args.file = DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else builtin
    kinds: dict[str, int] = {}
    for target in settings.targets:
        kinds[target.kind] = kinds.get(target.kind, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "none"
    print(
        f"{args.file}: OK — {len(settings.targets)} targets ({summary}), "
        f"{len(settings.controls)} controls, vantage {settings.vantage.name!r}"
    )
    from evidence.bundle.dossier_checks import dossier_warnings

    for warning in dossier_warnings(settings):
        print(f"  warning: {warning}", file=sys.stderr)
    return EXIT_OK


# --- vigie check -----------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    """Probe every target once and print the observations (nothing is recorded)."""
    settings = _settings(args)
    targets = [t for t in settings.targets if not args.target or t.id in args.target]
    unknown = set(args.target or ()) - {t.id for t in settings.targets}
    if unknown:
        raise ConfigError([f"--target: no target with id {min(unknown)!r}"])
    if getattr(args, "journeys", False):
        from exporter.journey_check import run_journey_check

        return run_journey_check(settings, targets, probe_settings, fmt=args.format)

    async def probe_all() -> tuple[list[Observation], bool]:
        registry = ProbeRegistry(probe_settings(settings), default_factories())
        try:
            return await check_once(settings, registry, targets)
        finally:
            await registry.aclose()

    observations, online = run_async(probe_all)
    if args.format == "json":
        print(json.dumps([o.to_dict() for o in observations], ensure_ascii=False, indent=2))
    else:
        _print_table(observations)
    if not online or any(o.outcome is Outcome.VANTAGE_OFFLINE for o in observations):
        print(
            "vigie: la connexion de cette sonde semble coupée (aucun site de contrôle ne répond, "
            "ou son résolveur DNS échoue) : les échecs ne sont pas imputés aux cibles.",
            file=sys.stderr,
        )
    return EXIT_OK if all(o.success for o in observations) else EXIT_FAILED


def _print_table(observations: Sequence[Observation]) -> None:
    rows = [("TARGET", "RESULT", "STATUS", "SECONDS", "DETAIL")]
    rows += [
        (
            o.target_id,
            str(o.outcome),
            str(o.http_status or "-"),
            f"{o.duration_s:.3f}",
            o.error or "",
        )
        for o in observations
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    if sys.stdout.isatty():  # cut DETAIL at the terminal's width; never when piped
        room = max(20, shutil.get_terminal_size().columns - sum(widths) - 8)
        rows = [(*r[:4], r[4] if len(r[4]) <= room else r[4][: room - 1] + "…") for r in rows]
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
        evidence = await open_service_evidence(settings, metrics)
    except EvidenceError as exc:
        log.error("evidence_unavailable", error=str(exc))  # noqa: TRY400
        print(f"vigie: error: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, EvidenceConfigError) else EXIT_FAILED
    registry = ProbeRegistry(probe_settings(settings, evidence.artifacts), default_factories())
    sink: EvidenceSink = evidence.sink
    # Rebuild outage state from the ledger (an outage open before a restart stays open);
    # appends outage events a crash lost and the `gap` since the last entry.
    outages = await OutageRecorder.start(settings, sink, metrics, evidence.ledger)
    fingerprints = await journey_fingerprints(settings, evidence)
    service = Service(settings, registry, metrics, sink, outages, fingerprints=fingerprints)
    service.checkpointer = evidence.checkpointer  # a download may need one now

    runner = web.AppRunner(build_app(service), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.listen_host, settings.listen_port, shutdown_timeout=1.0)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        await evidence.aclose()
        log.error("listen_failed", listen=settings.listen, error=exc.strerror or str(exc))  # noqa: TRY400
        return EXIT_FAILED

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
    from evidence.bundle.dossier_checks import dossier_warnings
    from probes.environment import clock_sync_state

    for warning in dossier_warnings(settings, clock_sync_state):
        log.warning("dossier_incomplete", warning=warning)
    if ready is not None:
        ready(url)
    tasks = [
        asyncio.create_task(scheduler.run(), name="scheduler"),
        asyncio.create_task(service.watch_controls(stopping), name="controls"),
        asyncio.create_task(outages.run(stopping), name="outages"),
        # Reviews appended by `vigie review` while the service runs show at once.
        asyncio.create_task(outages.follow_reviews(evidence.ledger, stopping), name="reviews"),
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


class _Parser(argparse.ArgumentParser):
    """A usage error is one line on stderr, saying where the help is, and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


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
    parser = _Parser(
        prog="vigie",
        description="Vigie: read-only monitoring of public online services, with evidence.",
    )
    parser.add_argument("--version", action="version", version=f"vigie {vigie_version()}")
    # Every subcommand is a _Parser too (argparse builds them with the parent's class).
    sub: argparse._SubParsersAction[argparse.ArgumentParser] = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    run = sub.add_parser("run", parents=[common], help="run the monitoring service")
    run.set_defaults(handler=cmd_run)

    check = sub.add_parser("check", parents=[common], help="probe every target once and print")
    check.add_argument("--format", choices=["table", "json"], default="table")
    check.add_argument("--target", action="append", metavar="ID", help="only this target")
    check.add_argument(
        "--journeys",
        action="store_true",
        help="run each browser journey once; on failure say whether the page changed (drift), "
        "which step and selector to look at, and where the screenshot is",
    )
    check.set_defaults(handler=cmd_check)

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="COMMAND")
    config_check = config_sub.add_parser("check", help="validate a configuration file")
    config_check.add_argument(
        "file",
        type=Path,
        nargs="?",
        default=Path(os.environ["VIGIE_CONFIG"]) if os.environ.get("VIGIE_CONFIG") else None,
        metavar="FILE",
        help="default: $VIGIE_CONFIG, else ./vigie.yaml, else the built-in ANEF defaults",
    )
    config_check.set_defaults(handler=cmd_config_check)

    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="run the simulator and the service",
        description="Run a local simulator of the ANEF site and the service against it. With "
        "--config FILE, the demo keeps that file's settings (vantage, outage rules, maintenance "
        "windows, evidence password...) and uses the simulator's targets and controls, a "
        "temporary ledger and key, and --listen.",
    )
    demo.add_argument("--fault-every", type=float, default=45.0, metavar="SECONDS")
    demo.add_argument("--listen", default="127.0.0.1:9188", metavar="HOST:PORT")
    demo.add_argument(
        "--duration", type=float, default=None, metavar="SECONDS", help="stop after this long"
    )
    demo.set_defaults(handler=_cmd_demo)

    add_evidence_commands(sub, load_settings)
    add_export_commands(sub, load_settings)
    add_dashboard_commands(sub, load_settings, ledger_outages)
    add_outage_commands(sub, load_settings)
    add_review_commands(sub, load_settings)
    add_central_commands(sub, load_settings)
    add_attestation_commands(sub, load_settings)
    return parser


def _cmd_demo(args: argparse.Namespace) -> int:
    from exporter.demo import cmd_demo

    return cmd_demo(args, serve, run_async)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `vigie` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # The services log their life as events; a one-shot command speaks in its own lines and
    # logs only warnings and errors, so that a mistake reads as one line on stderr.
    configure_logging(level=logging.INFO if args.command in _SERVICES else logging.WARNING)
    if args.command in _SERVICES:
        return_large_blocks()  # a service must not keep its largest check's memory for good
    try:
        return run_handler(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
