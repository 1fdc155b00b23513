"""`phiwarden hook`: the pre-commit hook (run, install, uninstall, status)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

DESCRIPTION = """\
The pre-commit hook. `hook run` scans the lines the index adds and blocks the commit (exit 1) when
they hold PHI or secrets, with masked previews and how to fix or allow each finding. `hook install`
writes .git/hooks/pre-commit to run it (an existing hook is kept unless --force). Teams using the
pre-commit framework add the `phiwarden` hook from this repository instead (see README).
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "hook",
        help="pre-commit hook: run, install, uninstall, status",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION")
    run = actions.add_parser("run", help="scan the staged changes (what the hook runs)")
    run.add_argument(
        "files", nargs="*", metavar="FILE", help="limit to these files (the pre-commit framework passes them)"
    )
    run.add_argument(
        "--policy", metavar="FILE", help="policy file (default: phiwarden.toml of the repository)"
    )
    run.add_argument("-q", "--quiet", action="store_true", help="print nothing when the commit is clean")
    run.set_defaults(run=_run)
    install = actions.add_parser("install", help="write .git/hooks/pre-commit")
    install.add_argument("--force", action="store_true", help="replace an existing hook (kept as a backup)")
    install.set_defaults(run=_install)
    uninstall = actions.add_parser("uninstall", help="remove the hook written by `hook install`")
    uninstall.set_defaults(run=_uninstall)
    status = actions.add_parser("status", help="say whether phiwarden runs before each commit")
    status.set_defaults(run=_status)
    parser.set_defaults(run=lambda args: (parser.print_help(sys.stderr), 2)[1])


def _run(args: argparse.Namespace) -> int:
    from phiwarden.repo.hook import run

    return run(args.files, policy_file=args.policy, quiet=args.quiet)


def _install(args: argparse.Namespace) -> int:
    from phiwarden.repo.git import Git, GitError
    from phiwarden.repo.hook import install

    try:
        print(install(Git.discover(), force=args.force))
    except (GitError, FileExistsError) as exc:
        print(f"phiwarden hook install: {exc}", file=sys.stderr)
        return 2
    return 0


def _uninstall(args: argparse.Namespace) -> int:
    from phiwarden.repo.git import Git, GitError
    from phiwarden.repo.hook import uninstall

    try:
        print(uninstall(Git.discover()))
    except GitError as exc:
        print(f"phiwarden hook uninstall: {exc}", file=sys.stderr)
        return 2
    return 0


def _status(args: argparse.Namespace) -> int:
    from phiwarden.repo.git import Git, GitError
    from phiwarden.repo.hook import state

    try:
        current = state(Git.discover())
    except GitError as exc:
        print(f"phiwarden hook status: {exc}", file=sys.stderr)
        return 2
    verdict = "runs" if current.runs_phiwarden else "does not run"
    print(f"{current.path}: {current.kind}; phiwarden {verdict} before commits")
    return 0 if current.runs_phiwarden else 1
