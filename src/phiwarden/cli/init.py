"""`phiwarden init`: policy, AI rules files and ignore entries, idempotently."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

DESCRIPTION = """\
Write phiwarden.toml (commented defaults, a random fingerprint salt), AI rules files (AGENTS.md,
CLAUDE.md, .cursor/rules/phiwarden.mdc, .github/copilot-instructions.md) tailored to what a scan of
the repository finds, and ignore entries for PHI-prone paths and restricted files in .gitignore and
each AI tool's own exclusion file (.cursorignore, .aiexclude, .aiderignore, .codeiumignore,
.continueignore, Claude Code deny rules in .claude/settings.json).

Only blocks between phiwarden's markers are written; text around them is kept. Rerunning changes
nothing unless the repository changed. --check writes nothing and exits 1 when anything is missing
or stale (for CI).
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "init",
        help="write the policy, AI rules files and AI ignore entries (idempotent; --check for CI)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", nargs="?", default=".", help="repository root (default: .)")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 when anything is missing or stale"
    )
    parser.add_argument("--policy", metavar="FILE", help="policy to scan with (default: the repository's)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from phiwarden.policy import PolicyError, find_policy, load_policy
    from phiwarden.repo import init

    root = Path(args.path)
    if not root.is_dir():
        print(f"phiwarden init: {root} is not a directory", file=sys.stderr)
        return 2
    try:
        policy = load_policy(Path(args.policy) if args.policy else find_policy(root))
        facts = init.gather(root, policy, jobs=os.cpu_count() or 1)
        plans = init.plan(root, facts)
    except (PolicyError, init.InitError) as exc:
        print(f"phiwarden init: {exc}", file=sys.stderr)
        return 2
    pending = [p for p in plans if p.action != "ok"]
    for item in plans:
        if item.action == "ok":
            print(f"  ok      {item.path}")
        elif args.check:
            print(f"  {item.action:<7} {item.path}  ({item.why})")
        else:
            print(f"  {'created' if item.action == 'create' else 'updated':<7} {item.path}")
    found = (
        f"{len(facts.restricted)} restricted file(s), {len(facts.tables)} PHI table(s), "
        f"{len(facts.routes)} patient route(s)"
    )
    if args.check:
        if pending:
            print(f"phiwarden init --check: {len(pending)} file(s) missing or stale; run `phiwarden init`")
            return 1
        print(f"phiwarden init --check: up to date ({found})")
        return 0
    init.apply(root, pending)
    print(f"phiwarden init: {len(pending)} file(s) written ({found})")
    return 0
