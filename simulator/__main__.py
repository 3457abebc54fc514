"""``python -m simulator``: run the ANEF stand-in as a process and print its URLs as one JSON line.

For tests, benchmarks and ``vigie demo``: it listens where it is told and never connects out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence

import structlog

from simulator.faults import FaultError, parse_fault
from simulator.server import Simulator, SimulatorError

__all__ = ["main", "parse_fault_option"]


def parse_fault_option(text: str) -> tuple[str, str, str]:
    """``[site:|login:]PATH=FAULT`` into (host, path, fault); raise FaultError when malformed."""
    target, sep, fault = text.rpartition("=")
    if not sep or not target or not fault:
        raise FaultError(f"--fault {text!r}: expected PATH=FAULT, e.g. /=http_500 or *=slow:0.5")
    host = "*"
    for prefix in ("site:", "login:"):
        if target.startswith(prefix):
            host, target = prefix[:-1], target[len(prefix) :]
    parse_fault(fault)
    return host, target, fault


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulator",
        description=(
            "Local stand-in for ANEF with faults switched at run time. Prints one JSON line "
            "with its URLs on stdout, then serves until SIGTERM or SIGINT."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address of every listener")
    parser.add_argument("--port", type=int, default=0, help="site port (0: any free port)")
    parser.add_argument("--login-host", default=None, help="address of the login host")
    parser.add_argument("--login-port", type=int, default=0, help="login host port")
    parser.add_argument("--tls-port", type=int, default=0, help="HTTPS site port")
    parser.add_argument("--admin-port", type=int, default=0, help="admin API port")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="[site:|login:]PATH=FAULT",
        help="switch a fault on from the start (repeatable), e.g. /=http_500",
    )
    parser.add_argument(
        "--audit-file",
        default=None,
        help="append every write received to this file (default: $VIGIE_SIMULATOR_AUDIT)",
    )
    parser.add_argument("--no-audit", action="store_true", help="do not write an audit file")
    parser.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="event loop (auto: uvloop when installed, it costs less CPU per request)",
    )
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning"))
    return parser


def _configure_logging(level: str) -> None:
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer()
        if sys.stderr.isatty()
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


async def _run(args: argparse.Namespace, faults: list[tuple[str, str, str]]) -> int:
    simulator = Simulator(
        args.host,
        port=args.port,
        login_host=args.login_host,
        login_port=args.login_port,
        tls_port=args.tls_port,
        admin_port=args.admin_port,
        audit=not args.no_audit,
        audit_file=args.audit_file,
    )
    for host, path, fault in faults:
        simulator.set_fault(path, fault, host)
    try:
        await simulator.start()
    except SimulatorError as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        print(json.dumps({**simulator.urls(), "pid": os.getpid()}), flush=True)
        await stop.wait()
    finally:
        await simulator.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator until SIGTERM/SIGINT; exit 0, or 1 if it cannot listen, 2 on bad use."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        faults = [parse_fault_option(text) for text in args.fault]
    except FaultError as exc:
        parser.error(str(exc))
    _configure_logging(args.log_level)
    if args.loop in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if args.loop == "uvloop":
                parser.error("--loop uvloop: uvloop is not installed")
        else:
            return int(uvloop.run(_run(args, faults)))
    return asyncio.run(_run(args, faults))


if __name__ == "__main__":
    sys.exit(main())
