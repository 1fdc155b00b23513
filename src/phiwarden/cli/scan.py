"""`phiwarden scan`: files, directories or standard input."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

DESCRIPTION = """\
Scan files, directories or standard input (-) for PHI (the 18 HIPAA Safe Harbor identifiers) and
secrets, and classify each file as public, internal or restricted.

Exit status: 0 nothing at or above the confidence threshold, 1 findings, 2 usage or policy error.
Reports never contain the values found: previews are masked and fingerprints are keyed hashes.
"""

EXAMPLES = """\
examples:
  phiwarden scan .                          scan the repository (honours .gitignore)
  phiwarden scan src tests --format sarif -o phiwarden.sarif
  git show HEAD:fixtures/p.json | phiwarden scan - --stdin-filename fixtures/p.json
  phiwarden scan . --update-baseline --baseline .phiwarden-baseline.json
  phiwarden scan . --baseline .phiwarden-baseline.json   fail only on new findings
  phiwarden scan --staged                   what the next commit adds (the pre-commit hook)
  phiwarden scan --diff main..HEAD --format sarif -o phiwarden.sarif
  phiwarden scan --since origin/main        what this branch adds
  phiwarden scan --history --format json    every value ever committed, with commit and author
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "scan",
        help="find PHI and secrets in files, directories or stdin",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "paths", nargs="*", metavar="PATH", help="files or directories (default: .); - reads stdin"
    )
    parser.add_argument(
        "--format", choices=("text", "json", "sarif"), default="text", help="report format (default: text)"
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE instead of stdout")
    parser.add_argument(
        "--policy",
        metavar="FILE",
        help="policy file (default: phiwarden.toml found in the scanned repository)",
    )
    parser.add_argument(
        "--min-confidence",
        type=_confidence,
        metavar="0..1",
        help="report findings at or above this confidence (default: the policy's, 0.6)",
    )
    parser.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="GLOB",
        help="only scan paths matching GLOB (repeatable)",
    )
    parser.add_argument(
        "--exclude", action="append", default=[], metavar="GLOB", help="skip paths matching GLOB (repeatable)"
    )
    parser.add_argument(
        "--no-gitignore", action="store_true", help="also scan files that .gitignore excludes"
    )
    parser.add_argument(
        "-j", "--jobs", type=_jobs, default=0, metavar="N", help="parallel processes (default: one per core)"
    )
    parser.add_argument("--baseline", metavar="FILE", help="do not report findings recorded in FILE")
    parser.add_argument(
        "--update-baseline",
        action="store_true",
        help="record all current findings in the --baseline file and exit 0",
    )
    parser.add_argument("--stdin-filename", metavar="NAME", help="path to report for text read from stdin")
    parser.add_argument(
        "--show-tiers",
        action="store_true",
        help="text report: list every file with its tier, not only files with findings",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    git = parser.add_argument_group("git (scan what a repository holds instead of files on disk)")
    modes = git.add_mutually_exclusive_group()
    modes.add_argument(
        "--staged", action="store_true", help="only lines added in the index (what `git commit` would record)"
    )
    modes.add_argument(
        "--diff", metavar="A..B", help="lines added from A to B (A...B: from their merge base; A: A to HEAD)"
    )
    modes.add_argument("--since", metavar="REF", help="lines added on HEAD since it forked from REF")
    modes.add_argument(
        "--history",
        action="store_true",
        help="every commit reachable from any ref, each blob once; reports where each value came in",
    )
    parser.set_defaults(run=run)


def _confidence(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 (one per core) or more")
    return value


class _ProgressLine:
    """A one-line progress display on a terminal, refreshed at most ten times a second."""

    def __init__(self) -> None:
        self._last = 0.0
        self._shown = False

    def __call__(self, done: int, total: int, scanned: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        self._shown = True
        sys.stderr.write(f"\rscanning {done}/{total} files, {scanned / 1e6:.1f} MB ")
        sys.stderr.flush()

    def close(self) -> None:
        if self._shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    if args.staged or args.diff or args.since or args.history:
        from phiwarden.repo.command import scan_git

        return scan_git(args)
    from phiwarden.policy import PolicyError, find_policy, load_policy
    from phiwarden.report.formats import to_json, to_sarif, to_text
    from phiwarden.scan import baseline as baseline_module
    from phiwarden.scan.files import Selection, Skipped, collect
    from phiwarden.scan.runner import FileScanner, ScanReport, with_min_confidence
    from phiwarden.scan.runner import run as run_scan

    paths = [Path(p) for p in (args.paths or ["."])]
    reading_stdin = any(str(p) == "-" for p in paths)
    if reading_stdin and len(paths) > 1:
        return _usage("'-' (stdin) cannot be combined with other paths")
    if args.update_baseline and not args.baseline:
        return _usage("--update-baseline needs --baseline FILE")
    try:
        if args.policy:
            policy_path: Path | None = Path(args.policy)
        else:
            policy_path = find_policy(Path.cwd() if reading_stdin else paths[0])
        policy = with_min_confidence(load_policy(policy_path), args.min_confidence)
        baseline = None
        if args.baseline and not args.update_baseline:
            baseline = baseline_module.Baseline.load(Path(args.baseline))
    except (PolicyError, baseline_module.BaselineError) as exc:
        print(f"phiwarden: {exc}", file=sys.stderr)
        return 2

    if reading_stdin:
        display = args.stdin_filename or "-"
        started = time.perf_counter()
        result = FileScanner(policy).scan_bytes(sys.stdin.buffer.read(), display)
        report = ScanReport(".", [result], [], time.perf_counter() - started, policy.detection.min_confidence)
    else:
        skipped: list[Skipped] = []
        selection = Selection.build(
            [*policy.scan.include, *args.include],
            [*policy.scan.exclude, *args.exclude],
            policy.scan.respect_gitignore and not args.no_gitignore,
        )
        root, candidates = collect(paths, selection, skipped)
        candidates = _without_own_outputs(candidates, args)
        jobs = args.jobs or (os.cpu_count() or 1)
        progress = _ProgressLine() if sys.stderr.isatty() and not args.quiet else None
        try:
            report = run_scan(root, candidates, skipped, policy, jobs=jobs, progress=progress)
        finally:
            if progress is not None:
                progress.close()

    if args.update_baseline:
        count = baseline_module.write(Path(args.baseline), report.files)
        print(f"phiwarden: recorded {count} finding(s) in {args.baseline}", file=sys.stderr)
        return 0
    if baseline is not None:
        baseline.apply(report.files)

    if args.format == "json":
        output = to_json(report)
    elif args.format == "sarif":
        output = to_sarif(report)
    else:
        color = not args.output and sys.stdout.isatty() and "NO_COLOR" not in os.environ
        output = to_text(report, show_tiers=args.show_tiers, color=color)
    if args.output:
        Path(args.output).write_text(output, encoding="utf-8")
    else:
        sys.stdout.write(output)
    if policy.audit.record_scans:
        status = _record(policy, report)
        if status:
            return status
    return 1 if report.findings else 0


def _record(policy: Any, report: Any) -> int:
    """Record the run in the audit trail (`[audit] record_scans`); a failure fails the scan."""
    from phiwarden.audit import AuditError, record_scan_run
    from phiwarden.report.summary import summarize

    try:
        record_scan_run(policy, {**summarize(report), "root": report.root})
    except AuditError as exc:
        print(f"phiwarden: the scan ran but could not be recorded in the audit trail: {exc}", file=sys.stderr)
        return 2
    return 0


def _without_own_outputs(candidates: list[Any], args: argparse.Namespace) -> list[Any]:
    """Never scan the report or baseline this run writes (they would be read half-written)."""
    own = [Path(p) for p in (args.output, args.baseline) if p]
    names = {p.name for p in own}
    if not names:
        return candidates
    resolved = {p.resolve() for p in own}
    # Resolving every path costs a system call per directory level; only same-named files can match.
    return [c for c in candidates if c.path.name not in names or c.path.resolve() not in resolved]


def _usage(message: str) -> int:
    print(f"phiwarden scan: error: {message}", file=sys.stderr)
    return 2
