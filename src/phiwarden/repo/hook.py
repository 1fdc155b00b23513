"""The pre-commit hook: `phiwarden hook run` blocks a commit that adds PHI or secrets, showing masked
previews and how to fix or allow; `phiwarden hook install` writes a plain git hook that runs it.

The same entry point serves the pre-commit framework (`.pre-commit-hooks.yaml` at the repository
root) and plain git hooks, so both behave alike.
"""

from __future__ import annotations

import os
import shlex
import stat
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from phiwarden.policy.model import Policy
from phiwarden.repo.git import Git
from phiwarden.scan.runner import FileResult, FileScanner, ScanReport

MARKER = "# >>> phiwarden >>>"
END_MARKER = "# <<< phiwarden <<<"
HOOK_NAME = "pre-commit"


@dataclass(frozen=True, slots=True)
class HookState:
    path: Path
    kind: str  # "phiwarden", "pre-commit-framework", "other", "missing"
    runs_phiwarden: bool


def hook_path(git: Git) -> Path:
    return git.git_path(f"hooks/{HOOK_NAME}")


def state(git: Git) -> HookState:
    """What the repository's pre-commit hook is and whether phiwarden runs in it."""
    path = hook_path(git)
    config = git.root / ".pre-commit-config.yaml"
    in_framework = config.is_file() and "phiwarden" in config.read_text("utf-8", "replace")
    if not path.is_file():
        return HookState(path, "missing", False)
    text = path.read_text("utf-8", "replace")
    if MARKER in text:
        return HookState(path, "phiwarden", True)
    if "pre-commit" in text and ("pre_commit" in text or "pre-commit.com" in text):
        return HookState(path, "pre-commit-framework", in_framework)
    return HookState(path, "other", "phiwarden" in text)


def script(python: str) -> str:
    # The interpreter that ran `hook install` first (its environment has phiwarden), then PATH.
    quoted = shlex.quote(python)
    return f"""#!/bin/sh
{MARKER}
# Installed by `phiwarden hook install`: blocks commits that add PHI or secrets.
# Remove with `phiwarden hook uninstall`. Edits inside these markers are replaced on reinstall.
if [ -x {quoted} ]; then
    exec {quoted} -m phiwarden hook run "$@"
fi
exec phiwarden hook run "$@"
{END_MARKER}
"""


def install(git: Git, *, force: bool = False, python: str | None = None) -> str:
    """Write the hook; an existing hook that is not ours is kept unless `force` (then backed up)."""
    current = state(git)
    path = current.path
    if current.kind in ("other", "pre-commit-framework") and not force:
        hint = (
            "add phiwarden to .pre-commit-config.yaml instead (see README), or "
            if current.kind == "pre-commit-framework"
            else ""
        )
        raise FileExistsError(
            f"{path} exists and is not phiwarden's; {hint}rerun with --force to replace it "
            f"(it is kept as {path.name}.phiwarden-backup)"
        )
    if current.kind in ("other", "pre-commit-framework"):
        path.replace(path.with_name(f"{path.name}.phiwarden-backup"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script(python or sys.executable), encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return f"installed {path}"


def uninstall(git: Git) -> str:
    current = state(git)
    if current.kind != "phiwarden":
        return f"no phiwarden hook at {current.path}"
    current.path.unlink()
    backup = current.path.with_name(f"{current.path.name}.phiwarden-backup")
    if backup.exists():
        backup.replace(current.path)
        return f"removed the phiwarden hook and restored {current.path}"
    return f"removed {current.path}"


def scan_for_hook(git: Git, policy: Policy, files: Sequence[str], *, jobs: int = 1) -> ScanReport:
    """Lines the index adds; FILES named by the pre-commit framework that have no staged change
    (as with `pre-commit run --all-files`) are scanned whole from the work tree."""
    from phiwarden.repo import diff
    from phiwarden.repo.scanning import scan_changes
    from phiwarden.scan.files import Selection

    started = time.perf_counter()
    selection = Selection.build(policy.scan.include, policy.scan.exclude, False)
    changes = diff.staged(git, files)
    report = scan_changes(git, changes, policy, selection=selection, jobs=jobs)
    changed = {c.path for c in changes}
    whole = [f for f in files if f not in changed and selection.wanted(f) and (git.root / f).is_file()]
    if whole:
        scanner = FileScanner(policy)
        extra: list[FileResult] = [scanner.scan_path(git.root / f, f) for f in whole]
        report.files = sorted([*report.files, *extra], key=lambda r: r.path)
    report.elapsed = time.perf_counter() - started
    return report


def blocked_message(report: ScanReport, *, baseline: str | None, color: bool = False) -> str:
    bold, dim, red, reset = ("\033[1m", "\033[2m", "\033[31m", "\033[0m") if color else ("", "", "", "")
    findings = report.findings
    files = sum(1 for r in report.files if r.findings)
    categories = sorted({f.category for f in findings})
    lines = [
        f"{red}{bold}phiwarden: commit blocked{reset} — {len(findings)} finding(s) of PHI or secrets "
        f"in {files} staged file(s)",
        "",
    ]
    for result in report.files:
        for f in result.findings:
            where = f.binary_tag or f"{f.line}:{f.column}"
            lines.append(
                f"  {result.path}:{where}  {red}{f.category:<11}{reset} {f.preview:<24} "
                f"{dim}{f.rule} ({f.confidence:.2f}){reset}"
            )
    example = categories[0] if categories else "name"
    baseline_file = baseline or ".phiwarden-baseline.json"
    lines += [
        "",
        f"{bold}How to fix{reset}",
        "  - Replace real-looking values with synthetic ones (a generator such as Faker, or obviously fake",
        "    values like 000-00-0000), then `git add` the file again.",
        f"  - If a value is synthetic or accepted, allow it on its line:  # phiwarden: allow {example}",
        f"    or on the line before it:  # phiwarden: allow-next-line {example}",
        "  - To accept every current finding (an existing codebase adopting phiwarden):",
        f"      phiwarden scan --staged --baseline {baseline_file} --update-baseline",
        f'    and set `baseline = "{baseline_file}"` under [scan] in phiwarden.toml.',
        "  Previews above are masked; phiwarden never prints the values it finds.",
    ]
    return "\n".join(lines) + "\n"


def run(files: Sequence[str], *, policy_file: str | None = None, quiet: bool = False) -> int:
    from phiwarden.policy import PolicyError, find_policy, load_policy
    from phiwarden.repo.git import GitError
    from phiwarden.scan import baseline as baseline_module

    try:
        git = Git.discover(Path.cwd())
        policy = load_policy(Path(policy_file) if policy_file else find_policy(git.root))
        relative = [_relative(git, f) for f in files]
        report = scan_for_hook(git, policy, relative, jobs=os.cpu_count() or 1)
        if policy.scan.baseline:
            path = git.root / policy.scan.baseline
            if path.is_file():
                baseline_module.Baseline.load(path).apply(report.files)
    except (PolicyError, GitError, baseline_module.BaselineError) as exc:
        print(f"phiwarden hook: {exc}", file=sys.stderr)
        return 2
    if not report.findings:
        if not quiet:
            scanned = sum(1 for r in report.files if r.skipped is None)
            took = f"{scanned} file(s), {report.elapsed:.2f}s"
            print(f"phiwarden: no PHI or secrets in the staged changes ({took})")
        return 0
    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    sys.stdout.write(blocked_message(report, baseline=policy.scan.baseline, color=color))
    return 1


def _relative(git: Git, name: str) -> str:
    path = Path(name)
    if not path.is_absolute():
        path = Path.cwd() / path
    try:
        return path.resolve().relative_to(git.root.resolve()).as_posix()
    except ValueError:
        return name
