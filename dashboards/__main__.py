"""`python -m dashboards [--check] [DIR]`: regenerate the dashboards' JSON, or check for drift.

It writes only the dashboard JSON files of DIR (default: this package's folder).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from dashboards.build import check_directory, write_directory

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or with --check, compare) the dashboards; exit 1 when --check finds drift."""
    parser = argparse.ArgumentParser(
        prog="python -m dashboards", description="Generate Vigie's Grafana dashboards."
    )
    parser.add_argument(
        "directory",
        nargs="?",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="where the JSON files go (default: the dashboards/ folder)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="change nothing; exit 1 if a committed file differs from the generated one",
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = check_directory(args.directory)
        for name in stale:
            print(
                f"{args.directory / name}: differs from dashboards/build.py; "
                "run `make dashboards` and commit the result",
                file=sys.stderr,
            )
        return 1 if stale else 0
    for path in write_directory(args.directory):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
