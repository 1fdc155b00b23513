"""`phiwarden doctor`: AI tools, MCP servers and repository controls, with a fix for each failure."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

DESCRIPTION = """\
Inspect the repository and the user's home: which AI coding tools are configured and where each
sends prompts (to a vendor directly, or through a phiwarden gateway), which MCP servers every known
client config starts (pinned: a new or changed server fails until approved), which restricted files
each tool could read, whether the pre-commit hook and CI gate are installed, and what the vendor
matrix says about each destination.

Exit status: 0 no control fails, 1 a control fails, 2 usage or policy error.
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="audit AI tools, MCP servers and repository controls (pass/fail with fixes)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", nargs="?", default=".", help="repository root (default: .)")
    parser.add_argument("--home", metavar="DIR", help="home directory to inspect (default: $HOME)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--approve-mcp",
        nargs="?",
        const="",
        metavar="NAME",
        help="record the current configuration of MCP server NAME (all servers without NAME) as approved",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from phiwarden.policy import Policy, PolicyError, load_policy
    from phiwarden.repo import doctor
    from phiwarden.repo.init import InitError

    root = Path(args.path).resolve()
    home = Path(args.home).resolve() if args.home else Path.home()
    if not root.is_dir():
        print(f"phiwarden doctor: {root} is not a directory", file=sys.stderr)
        return 2
    policy_error = None
    policy_path = root / "phiwarden.toml"
    try:
        policy = load_policy(policy_path if policy_path.is_file() else None)
    except PolicyError as exc:
        policy, policy_error = Policy(), str(exc)
    if args.approve_mcp is not None:
        servers = doctor.find_servers(root, home)
        try:
            chosen = doctor.approve(servers, root / policy.repo.mcp_pins, args.approve_mcp or None)
        except ValueError as exc:
            print(f"phiwarden doctor: {exc}", file=sys.stderr)
            return 2
        if not chosen:
            print(f"phiwarden doctor: no MCP server named {args.approve_mcp!r}", file=sys.stderr)
            return 2
        for server in chosen:
            print(f"approved {server.key}: {server.command or server.url} (pin {server.pin()[:16]})")
        return 0
    try:
        diagnosis = doctor.diagnose(
            root, home, os.environ, policy, policy_error=policy_error, jobs=os.cpu_count() or 1
        )
    except InitError as exc:
        print(f"phiwarden doctor: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        sys.stdout.write(json.dumps(diagnosis.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(
            doctor.to_text(diagnosis, color=sys.stdout.isatty() and "NO_COLOR" not in os.environ)
        )
    return 1 if diagnosis.failed else 0
