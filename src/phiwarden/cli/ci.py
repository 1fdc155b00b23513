"""`phiwarden ci`: the change-control gate for pull requests."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

DESCRIPTION = """\
The change-control gate for pull requests (SOC 2 CC8.1, PCI DSS 6.3). Scans the lines added since
the merge base with --base, recognises AI-assisted commits (Co-authored-by an AI agent, AI-Assisted:
and Generated-by: trailers, agent authors), classifies the files they touch, and enforces [repo] in
phiwarden.toml: human review for AI changes to restricted files, a path allowlist and a file limit
for AI changes.

Exit status: 0 every control passes, 1 a control fails, 2 usage, policy or git error.
"""

EXAMPLES = """\
examples:
  phiwarden ci --base origin/main
  phiwarden ci --base origin/main --format sarif -o phiwarden.sarif
  phiwarden ci --base "$BASE_SHA" --review-record approvals.json
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ci",
        help="change-control gate for pull requests (AI-assisted commits, review, PHI in added lines)",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--base", required=True, metavar="REF", help="the branch or commit the change merges into"
    )
    parser.add_argument("--head", default="HEAD", metavar="REF", help="the tip of the change (default: HEAD)")
    parser.add_argument("--format", choices=("text", "json", "sarif"), default="text")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE")
    parser.add_argument(
        "--policy", metavar="FILE", help="policy file (default: the repository's phiwarden.toml)"
    )
    parser.add_argument(
        "--review-record",
        action="append",
        default=[],
        metavar="FILE",
        help="approval record (JSON) produced by CI from the code host's reviews (repeatable)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from phiwarden.policy import PolicyError, find_policy, load_policy
    from phiwarden.repo import ci
    from phiwarden.repo.git import Git, GitError

    try:
        git = Git.discover()
        policy = load_policy(Path(args.policy) if args.policy else find_policy(git.root))
        result = ci.evaluate(
            git,
            policy,
            args.base,
            args.head,
            record_files=[Path(p) for p in args.review_record],
            jobs=os.cpu_count() or 1,
        )
    except (PolicyError, GitError) as exc:
        print(f"phiwarden ci: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        output = ci.to_json(result)
    elif args.format == "sarif":
        output = ci.to_sarif(result)
    else:
        output = ci.to_text(
            result, color=not args.output and sys.stdout.isatty() and "NO_COLOR" not in os.environ
        )
    if args.output:
        Path(args.output).write_text(output, encoding="utf-8")
        if args.format != "text":
            sys.stderr.write(ci.to_text(result))
    else:
        sys.stdout.write(output)
    return 1 if result.failed else 0
