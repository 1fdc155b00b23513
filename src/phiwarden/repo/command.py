"""`phiwarden scan --staged | --diff A..B | --since REF | --history`: scanning what git holds."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phiwarden.repo.git import Git, GitError

# Imported when used: a history scan starts reading git before the detectors load (see scan_git).
if TYPE_CHECKING:
    from phiwarden.policy.model import Policy
    from phiwarden.repo.history import Feed
    from phiwarden.scan.files import Selection
    from phiwarden.scan.runner import ScanReport


def is_git_mode(args: argparse.Namespace) -> bool:
    return bool(args.staged or args.diff or args.since or args.history)


def load(git: Git, args: argparse.Namespace) -> Policy:
    from phiwarden.policy import find_policy, load_policy
    from phiwarden.scan.runner import with_min_confidence

    path = Path(args.policy) if getattr(args, "policy", None) else find_policy(git.root)
    return with_min_confidence(load_policy(path), getattr(args, "min_confidence", None))


def pathspecs(git: Git, paths: list[str]) -> list[str]:
    """PATH arguments as pathspecs relative to the repository root."""
    out = []
    for raw in paths:
        resolved = Path(raw).resolve()
        try:
            out.append(resolved.relative_to(git.root.resolve()).as_posix() or ".")
        except ValueError:
            raise GitError(f"{raw} is outside the repository {git.root}") from None
    return out


def scan_git(args: argparse.Namespace) -> int:
    try:
        git = Git.discover(Path.cwd())
    except GitError as exc:
        print(f"phiwarden scan: {exc}", file=sys.stderr)
        return 2
    jobs = args.jobs or (os.cpu_count() or 1)
    feed = None
    if args.history and not args.paths:
        from phiwarden.repo.history import start

        # Started before the policy and the detectors load: listing and reading the history take
        # about as long, and use the other cores meanwhile.
        feed = start(git, jobs=jobs)
    try:
        return _scan_git(git, args, jobs, feed)
    finally:
        if feed is not None:
            feed.close()


def _scan_git(git: Git, args: argparse.Namespace, jobs: int, feed: Feed | None) -> int:
    from phiwarden.policy import PolicyError
    from phiwarden.scan import baseline as baseline_module
    from phiwarden.scan.files import Selection

    try:
        policy = load(git, args)
        selection = Selection.build(
            [*policy.scan.include, *args.include], [*policy.scan.exclude, *args.exclude], False
        )
        if feed is not None:
            feed.configure(policy, selection)  # the reader waits for this
        baseline = None
        baseline_path = _baseline_path(git, policy, args)
        if baseline_path is not None and not args.update_baseline:
            baseline = baseline_module.Baseline.load(baseline_path)
        if args.update_baseline and baseline_path is None:
            return _usage("--update-baseline needs --baseline FILE")
        specs = pathspecs(git, args.paths) if args.paths else []
        history = None
        if args.history:
            from phiwarden.repo.history import scan_history

            if specs:
                return _usage("--history scans whole commits; use --include/--exclude to narrow it")
            history = scan_history(git, policy, selection=selection, jobs=jobs, feed=feed)
            report = history.report
        else:
            report = changes_report(git, args, policy, selection, jobs=jobs, specs=specs)
    except (PolicyError, baseline_module.BaselineError) as exc:
        print(f"phiwarden: {exc}", file=sys.stderr)
        return 2
    except GitError as exc:
        print(f"phiwarden scan: {exc}", file=sys.stderr)
        return 2

    if args.update_baseline:
        assert baseline_path is not None
        count = baseline_module.write(baseline_path, report.files)
        print(f"phiwarden: recorded {count} finding(s) in {baseline_path}", file=sys.stderr)
        return 0
    if baseline is not None:
        baseline.apply(report.files)

    extra = history_fields(history) if history is not None else None
    output = render(report, args.format, extra=extra, color=_color(args), show_tiers=args.show_tiers)
    if history is not None and args.format == "json":
        document = json.loads(output)
        document["history"] = {
            "commits": history.commits,
            "blobs": history.blobs,
            "bytes": history.bytes,
            "seconds": round(history.seconds, 3),
            "notes": history.notes,
        }
        output = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if history is not None and args.format == "text":
        output += (
            f"history: {history.commits} commit(s), {history.blobs} blob(s), {history.bytes / 1e6:.1f} MB "
            f"in {history.seconds:.2f}s\n" + "".join(f"note: {n}\n" for n in history.notes)
        )
    if args.output:
        Path(args.output).write_text(output, encoding="utf-8")
    else:
        sys.stdout.write(output)
    return 1 if report.findings else 0


def changes_report(
    git: Git, args: argparse.Namespace, policy: Policy, selection: Selection, *, jobs: int, specs: list[str]
) -> ScanReport:
    from phiwarden.repo import diff
    from phiwarden.repo.scanning import scan_changes

    if args.staged:
        changes = diff.staged(git, specs)
    else:
        if args.diff:
            base, head, merge_base = diff.split_range(args.diff)
        else:
            base, head, merge_base = args.since, "HEAD", True
        if not git.has_commits():
            raise GitError("the repository has no commits yet: nothing to compare")
        changes = diff.between(git, base, head, merge_base=merge_base, paths=specs)
    return scan_changes(git, changes, policy, selection=selection, jobs=jobs)


def _baseline_path(git: Git, policy: Policy, args: argparse.Namespace) -> Path | None:
    if args.baseline:
        return Path(args.baseline)
    if policy.scan.baseline:
        return git.root / policy.scan.baseline
    return None


def history_fields(history: Any) -> list[dict[str, str]]:
    """Per finding, in report order: the commit, author and date that introduced it."""
    return [
        intro.to_dict()
        for result, intro in zip(history.report.files, history.introductions, strict=True)
        for _ in result.findings
    ]


def render(
    report: ScanReport,
    fmt: str,
    *,
    extra: list[dict[str, str]] | None = None,
    color: bool = False,
    show_tiers: bool = False,
) -> str:
    """The report in `fmt`; `extra` adds fields (commit, author, date) to each finding in order."""
    from phiwarden.report.formats import to_json, to_sarif, to_text

    if fmt == "json":
        if extra is None:
            return to_json(report)
        document = json.loads(to_json(report))
        for finding, fields in zip(document["findings"], extra, strict=True):
            finding.update(fields)
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if fmt == "sarif":
        if extra is None:
            return to_sarif(report)
        document = json.loads(to_sarif(report))
        for result, fields in zip(document["runs"][0]["results"], extra, strict=True):
            result.setdefault("properties", {}).update(fields)
            result["message"]["text"] += f" (introduced in {fields['commit'][:12]} by {fields['author']})"
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if extra is None:
        return to_text(report, color=color, show_tiers=show_tiers)
    return history_text(report, extra, color=color)


def history_text(report: ScanReport, extra: list[dict[str, str]], *, color: bool) -> str:
    bold, dim, red, reset = ("\033[1m", "\033[2m", "\033[31m", "\033[0m") if color else ("", "", "", "")
    lines: list[str] = []
    fields = iter(extra)
    for result in report.files:
        first = True
        for f in result.findings:
            where = next(fields)
            if first:
                lines.append(
                    f"{bold}{result.path}{reset}  {dim}introduced in {where['commit'][:12]} by "
                    f"{where['author']} <{where['author_email']}> on {where['date']}{reset}"
                )
                first = False
            lines.append(
                f"  {f.binary_tag or f'{f.line}:{f.column}':<9} {red}{f.category:<11}{reset} "
                f"{f.preview:<24} {dim}{f.rule} ({f.confidence:.2f}){reset}"
            )
    skipped = report.all_skipped()
    if skipped:
        lines.append("")
        lines.append(f"skipped {len(skipped)}:")
        lines.extend(f"  {s.display}: {s.reason}" for s in skipped[:50])
    findings = report.findings
    lines.append("")
    lines.append(f"{len(findings)} finding(s) introduced in the history")
    if findings:
        lines.append(
            "to fix: values in history stay readable until the history is rewritten (git filter-repo) "
            "and every clone replaced; rotate any credential found; record accepted ones with "
            "--update-baseline"
        )
    return "\n".join(lines) + "\n"


def _color(args: argparse.Namespace) -> bool:
    return not args.output and sys.stdout.isatty() and "NO_COLOR" not in os.environ


def _usage(message: str) -> int:
    print(f"phiwarden scan: error: {message}", file=sys.stderr)
    return 2
