"""The `phiwarden` command: one subcommand per enforcement point.

Subcommand modules only declare their arguments at import; heavy imports happen when a command runs,
which keeps `phiwarden --help` and the pre-commit hook fast to start.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from phiwarden import __version__
from phiwarden.cli import audit, ci, doctor, gateway, hook, init, keys, scan

# Each module registers its subcommand: `register(subparsers)` sets `run` on its parser.
COMMANDS = (scan, hook, ci, init, doctor, audit, gateway, keys)

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="phiwarden",
        description=(
            "Find PHI and secrets before they reach AI tools, enforce the policy in phiwarden.toml, "
            "and keep a tamper-evident audit trail."
        ),
        epilog="Run `phiwarden COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"phiwarden {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(run(args))
    except KeyboardInterrupt:
        print("phiwarden: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:
        if os.environ.get("PHIWARDEN_DEBUG"):
            raise
        print(
            f"phiwarden: internal error ({type(exc).__name__}); nothing was decided. "
            "Set PHIWARDEN_DEBUG=1 for the traceback and report it.",
            file=sys.stderr,
        )
        return EXIT_USAGE
