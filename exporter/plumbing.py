"""What every `vigie` subcommand shares: its ``--config`` option and settings, the error
handler that turns a bad configuration into exit code 2, and the dates people type.

Used by the subcommands (`exporter/commands/`), the CLI and ``python -m exporter.central``;
it parses arguments and never touches evidence.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from config.settings import ConfigError, redact_secrets
from config.vocabulary import EXIT_USAGE, PARIS

if TYPE_CHECKING:
    from config.settings import Settings

__all__ = [
    "LoadSettings",
    "add_command",
    "command_settings",
    "paris_moment",
    "parse_date",
    "run_handler",
]


LoadSettings = Callable[[Path | None], "Settings"]


def add_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    load_settings: LoadSettings,
    *,
    parents: Sequence[argparse.ArgumentParser] = (),
    **kwargs: Any,
) -> argparse.ArgumentParser:
    """Add the subcommand `name` with ``--config`` and `load_settings` in its defaults.

    ``--config`` is left out when one of `parents` already carries it; `kwargs` go to
    ``add_parser`` (help, description).
    """
    parser = subparsers.add_parser(name, parents=list(parents), **kwargs)
    if not any("--config" in action.option_strings for p in parents for action in p._actions):
        parser.add_argument(
            "--config",
            type=Path,
            default=argparse.SUPPRESS,  # never hide a --config given before the command
            metavar="FILE",
            help="configuration file (default: ./vigie.yaml, else the built-in defaults)",
        )
    parser.set_defaults(load_settings=load_settings)
    return parser


def command_settings(args: argparse.Namespace) -> Settings:
    """The settings of a subcommand added by `add_command` (its ``--config``, if given)."""
    load: LoadSettings = args.load_settings
    return load(getattr(args, "config", None))


def paris_moment(text: str, *, end: bool = False) -> dt.datetime:
    """A date (``2026-11-23``: its Paris midnight; as `end`, the next one) or an ISO date-time.

    A date-time without an offset is Paris time. Raises ValueError; callers word the message.
    """
    if len(text) == 10:
        day = dt.date.fromisoformat(text)
        if end:
            day += dt.timedelta(days=1)
        return dt.datetime.combine(day, dt.time(), PARIS)
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=PARIS)


def parse_date(text: str, *, end: bool = False) -> dt.datetime:
    """A date (``2026-11-23``, Paris day; as `end`, the day after) or an ISO date-time."""
    try:
        return paris_moment(text, end=end)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date (YYYY-MM-DD) or a date-time (YYYY-MM-DDTHH:MM[+02:00])"
        ) from None


def run_handler(args: argparse.Namespace) -> int:
    """Run ``args.handler(args)``: its exit code, or 2 with one line per problem of a ConfigError.

    Shared by `vigie` and ``python -m exporter.central`` (which does not load the service).
    """
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        for line in exc.lines:
            print(f"vigie: error: {redact_secrets(line)}", file=sys.stderr)
        return EXIT_USAGE
