"""`phiwarden ci --base REF`: the change-control gate for pull requests (SOC 2 CC8.1, PCI DSS 6.3).

Controls, each a pass or a failure with the commit and path:
- no PHI or secrets in the lines the change adds;
- AI-assisted commits (trailers, co-authors, agent authors) that touch files of a review tier
  (restricted by default) carry recorded human review: a `Reviewed-by:` trailer from a listed
  reviewer, or an approval record file;
- AI-assisted commits change only allowlisted paths, and at most `ai_max_files` files each.
"""

from __future__ import annotations

import functools
import json
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pathspec

from phiwarden.classify import Tier
from phiwarden.policy.model import Policy
from phiwarden.policy.repo import RepoSettings
from phiwarden.repo.git import Git, GitError
from phiwarden.scan.runner import ScanReport

_TRAILER = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)[ \t]*:[ \t]*(.+?)[ \t]*$")
_IDENTITY = re.compile(r"^(?P<name>.*?)\s*<(?P<email>[^>]*)>\s*$")

RULES = {
    "phiwarden.ci.review-required": "AI-assisted change to a file of a review tier without human review",
    "phiwarden.ci.ai-path-not-allowed": "AI-assisted change outside the paths allowed for AI changes",
    "phiwarden.ci.ai-too-many-files": "AI-assisted commit changes more files than the policy allows",
}


CONTROLS = {
    "phiwarden.ci.review-required": "AI-assisted changes to review-tier files have recorded human review",
    "phiwarden.ci.ai-path-not-allowed": "AI-assisted changes stay inside [repo] ai_allowed_paths",
    "phiwarden.ci.ai-too-many-files": "AI-assisted commits change at most [repo] ai_max_files files",
}


@dataclass(frozen=True, slots=True)
class Agent:
    name: str
    names: frozenset[str]
    emails: tuple[str, ...]
    author_markers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Catalogue:
    trailers: frozenset[str]
    negative_values: frozenset[str]
    coauthor_trailers: frozenset[str]
    review_trailers: frozenset[str]
    body_markers: tuple[str, ...]
    agents: tuple[Agent, ...]

    def agent_of(self, name: str, email: str) -> str | None:
        lowered_name, lowered_email = name.strip().lower(), email.strip().lower()
        for agent in self.agents:
            if lowered_name in agent.names or any(e in lowered_email for e in agent.emails if lowered_email):
                return agent.name
            if any(marker in lowered_name for marker in agent.author_markers):
                return agent.name
        return None


_DEFAULT = RepoSettings()


@functools.lru_cache(maxsize=4)
def catalogue(settings: RepoSettings = _DEFAULT) -> Catalogue:
    text = resources.files("phiwarden.repo").joinpath("data", "agents.toml").read_text("utf-8")
    data = tomllib.loads(text)
    agents = [
        Agent(
            a["name"],
            frozenset(n.lower() for n in a.get("names", ())),
            tuple(e.lower() for e in a.get("emails", ())),
            tuple(m.lower() for m in a.get("author_markers", ())),
        )
        for a in data["agent"]
    ]
    if settings.ai_agents:
        agents.append(Agent("custom", frozenset(n.lower() for n in settings.ai_agents), (), ()))
    return Catalogue(
        trailers=frozenset(t.lower() for t in (*data["trailers"], *settings.ai_trailers)),
        negative_values=frozenset(v.lower() for v in data["negative_values"]),
        coauthor_trailers=frozenset(t.lower() for t in data["coauthor_trailers"]),
        review_trailers=frozenset(t.lower() for t in data["review_trailers"]),
        body_markers=tuple(m.lower() for m in data["body_markers"]),
        agents=tuple(agents),
    )


def trailers(message: str) -> list[tuple[str, str]]:
    """`(key, value)` trailers of the message's last paragraph."""
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", message.strip()) if p.strip()]
    if len(paragraphs) < 2:
        return []
    out = []
    for line in paragraphs[-1].splitlines():
        m = _TRAILER.match(line)
        if m is not None:
            out.append((m.group(1), m.group(2)))
    return out


def identity(value: str) -> tuple[str, str]:
    m = _IDENTITY.match(value)
    return (m.group("name"), m.group("email")) if m else (value.strip(), "")


@dataclass(slots=True)
class Commit:
    sha: str
    parents: list[str]
    author: str
    email: str
    subject: str
    ai_evidence: list[str] = field(default_factory=list)
    reviewers: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def ai(self) -> bool:
        return bool(self.ai_evidence)

    @property
    def merge(self) -> bool:
        return len(self.parents) > 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "commit": self.sha,
            "author": self.author,
            "author_email": self.email,
            "subject": self.subject,
            "merge": self.merge,
            "ai_assisted": self.ai,
            "ai_evidence": self.ai_evidence,
            "reviewed_by": self.reviewers,
            "files": len(self.files),
        }


def inspect(commit: Commit, message: str, known: Catalogue) -> None:
    """Fill in the AI evidence and the reviewers named in the message."""
    agent = known.agent_of(commit.author, commit.email)
    if agent:
        commit.ai_evidence.append(f"author is {agent}")
    lowered = message.lower()
    commit.ai_evidence += [f"message says {m!r}" for m in known.body_markers if m in lowered]
    for key, value in trailers(message):
        k = key.lower()
        if k in known.trailers and value.strip().lower() not in known.negative_values:
            commit.ai_evidence.append(f"{key}: {value}")
        elif k in known.coauthor_trailers:
            name, email = identity(value)
            agent = known.agent_of(name, email)
            if agent:
                commit.ai_evidence.append(f"{key}: {agent}")
        elif k in known.review_trailers:
            commit.reviewers.append(value)


def commits_in(git: Git, base: str, head: str, settings: RepoSettings) -> list[Commit]:
    known = catalogue(settings)
    out = git.run("log", "--format=%x01%H%x00%P%x00%an%x00%ae%x00%s%x00%B", f"{base}..{head}", "--")
    commits: dict[str, Commit] = {}
    order = []
    for chunk in out.split(b"\x01")[1:]:
        sha, parents, author, email, subject, body = chunk.decode("utf-8", "replace").split("\x00", 5)
        commit = Commit(sha, parents.split(), author, email, subject)
        inspect(commit, body, known)
        commits[sha] = commit
        order.append(sha)
    names = git.run("log", "--format=%x01%H", "--name-only", "-z", "-M", f"{base}..{head}", "--")
    for chunk in names.split(b"\x01")[1:]:
        parts = [p for p in chunk.split(b"\x00") if p.strip(b"\n")]
        if not parts:
            continue
        head_line, *files = parts
        sha, _, first = head_line.decode().partition("\n")
        paths = ([first] if first else []) + [
            f.decode("utf-8", "surrogateescape").lstrip("\n") for f in files
        ]
        if sha in commits:
            commits[sha].files = [p for p in paths if p]
    return [commits[s] for s in order]


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    commit: str
    path: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "commit": self.commit, "path": self.path, "message": self.message}


@dataclass(frozen=True, slots=True)
class Record:
    reviewer: str
    commits: tuple[str, ...]
    all_commits: bool


def load_records(paths: Iterable[Path], *, trusted: bool) -> list[Record]:
    """Approval records; `all_commits` is honoured only from files given on the command line
    (generated by CI from the code host's review state), never from files in the change itself."""
    records = []
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise GitError(f"{path}: not a readable approval record: {exc}") from None
        entries = (
            data
            if isinstance(data, list)
            else data.get("approvals", [data])
            if isinstance(data, dict)
            else []
        )
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("reviewer"), str):
                raise GitError(f'{path}: each approval needs a "reviewer" string')
            commits = entry.get("commits", [])
            if not isinstance(commits, list) or not all(isinstance(c, str) for c in commits):
                raise GitError(f'{path}: "commits" must be a list of commit ids')
            records.append(
                Record(entry["reviewer"], tuple(c.lower() for c in commits if len(c) >= 7),
                       trusted and entry.get("all_commits") is True)
            )  # fmt: skip
    return records


def _reviewer_ok(value: str, settings: RepoSettings, commit: Commit, known: Catalogue) -> bool:
    name, email = identity(value)
    if known.agent_of(name, email):
        return False  # an agent cannot be the human review of an agent's change
    if email and email.lower() == commit.email.lower():
        return False
    if not settings.reviewers:
        return True
    allowed = {r.lower() for r in settings.reviewers}
    return name.lower() in allowed or email.lower() in allowed


def reviewed(
    commit: Commit, settings: RepoSettings, records: Sequence[Record], known: Catalogue
) -> str | None:
    """The evidence of human review for `commit`, or None."""
    if settings.review_evidence in ("trailer", "any"):
        for value in commit.reviewers:
            if _reviewer_ok(value, settings, commit, known):
                return f"Reviewed-by: {identity(value)[0] or value}"
    if settings.review_evidence in ("record", "any"):
        for record in records:
            covers = record.all_commits or any(commit.sha.startswith(c) for c in record.commits)
            if covers and _reviewer_ok(record.reviewer, settings, commit, known):
                return f"approval record by {identity(record.reviewer)[0] or record.reviewer}"
    return None


@dataclass(slots=True)
class GateResult:
    base: str
    head: str
    report: ScanReport
    commits: list[Commit]
    violations: list[Violation]
    reviews: dict[str, str]
    tiers: dict[str, Tier]
    fail_on_findings: bool

    @property
    def failed(self) -> bool:
        return bool(self.violations) or (self.fail_on_findings and bool(self.report.findings))


def evaluate(
    git: Git, policy: Policy, base: str, head: str, *, record_files: Sequence[Path] = (), jobs: int = 1
) -> GateResult:
    from phiwarden.classify import classifier_for
    from phiwarden.repo import diff
    from phiwarden.repo.scanning import scan_changes
    from phiwarden.scan.files import Selection

    settings = policy.repo
    for ref in (base, head):
        if git.resolve(ref) is None:
            raise GitError(
                f"{ref!r} is not a commit here "
                "(in CI, fetch the full history: actions/checkout with fetch-depth: 0)"
            )
    selection = Selection.build(policy.scan.include, policy.scan.exclude, False)
    changes = diff.between(git, base, head, merge_base=True)
    report = scan_changes(git, changes, policy, selection=selection, jobs=jobs)
    tiers = {r.path: r.classification.tier for r in report.files if r.classification is not None}
    commits = commits_in(git, base, head, settings)
    known = catalogue(settings)
    record_dir = git.root / settings.review_records
    in_repo = sorted(record_dir.glob("*.json")) if record_dir.is_dir() else []
    records = [*load_records(in_repo, trusted=False), *load_records(record_files, trusted=True)]
    classifier = classifier_for(policy)
    allowed = (
        pathspec.GitIgnoreSpec.from_lines(settings.ai_allowed_paths) if settings.ai_allowed_paths else None
    )
    violations: list[Violation] = []
    reviews: dict[str, str] = {}
    for commit in commits:
        if not commit.ai or commit.merge:
            continue
        evidence = reviewed(commit, settings, records, known)
        if evidence:
            reviews[commit.sha] = evidence
        for path in commit.files:
            tier = tiers.get(path) or classifier.classify(None, path=path, findings=()).tier
            tiers.setdefault(path, tier)
            if tier in settings.review_tiers and evidence is None:
                violations.append(
                    Violation(
                        "phiwarden.ci.review-required", commit.sha, path,
                        f"AI-assisted commit {commit.sha[:12]} ({', '.join(commit.ai_evidence)}) changes "
                        f"{tier} file {path} without recorded human review: add a "
                        "`Reviewed-by: Name <email>` trailer from a listed reviewer or an approval "
                        f"record in {settings.review_records}/",
                    )
                )  # fmt: skip
            if allowed is not None and not allowed.match_file(path):
                violations.append(
                    Violation(
                        "phiwarden.ci.ai-path-not-allowed", commit.sha, path,
                        f"AI-assisted commit {commit.sha[:12]} changes {path}, "
                        "outside [repo] ai_allowed_paths",
                    )
                )  # fmt: skip
        if settings.ai_max_files and len(commit.files) > settings.ai_max_files:
            violations.append(
                Violation(
                    "phiwarden.ci.ai-too-many-files", commit.sha, None,
                    f"AI-assisted commit {commit.sha[:12]} changes {len(commit.files)} files; the policy "
                    f"allows {settings.ai_max_files} ([repo] ai_max_files): split it into reviewable steps",
                )
            )  # fmt: skip
    return GateResult(base, head, report, commits, violations, reviews, tiers, settings.fail_on_findings)


def to_json(result: GateResult) -> str:
    from phiwarden.report.formats import to_json as scan_json

    document = {
        "tool": "phiwarden ci",
        "base": result.base,
        "head": result.head,
        "result": "fail" if result.failed else "pass",
        "commits": [{**c.to_dict(), "review": result.reviews.get(c.sha)} for c in result.commits],
        "violations": [v.to_dict() for v in result.violations],
        "scan": json.loads(scan_json(result.report)),
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def to_sarif(result: GateResult) -> str:
    from phiwarden.report.formats import to_sarif as scan_sarif

    document = json.loads(scan_sarif(result.report))
    run = document["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    index = {}
    for rule_id in sorted({v.rule for v in result.violations}):
        index[rule_id] = len(rules)
        rules.append(
            {
                "id": rule_id,
                "name": rule_id.replace(".", "_"),
                "shortDescription": {"text": RULES[rule_id]},
                "fullDescription": {"text": RULES[rule_id]},
                "help": {"text": f"{RULES[rule_id]}. Configure in the [repo] section of phiwarden.toml."},
                "defaultConfiguration": {"level": "error"},
                "properties": {"tags": ["change-control", "ai"], "security-severity": "6.0"},
            }
        )
    for v in result.violations:
        location: dict[str, Any] = {
            "physicalLocation": {"artifactLocation": {"uri": v.path or ".", "uriBaseId": "%SRCROOT%"}}
        }
        run["results"].append(
            {
                "ruleId": v.rule,
                "ruleIndex": index[v.rule],
                "level": "error",
                "message": {"text": v.message},
                "locations": [location],
                "partialFingerprints": {"phiwarden/v1": f"{v.rule}:{v.commit}:{v.path or ''}"},
                "properties": {"commit": v.commit},
            }
        )
    run["automationDetails"] = {"id": "phiwarden/ci/"}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def to_text(result: GateResult, *, color: bool = False) -> str:
    from phiwarden.report.formats import to_text as scan_text

    bold, red, green, reset = ("\033[1m", "\033[31m", "\033[32m", "\033[0m") if color else ("", "", "", "")
    lines = [f"{bold}phiwarden ci{reset}: {result.base}...{result.head}", ""]
    ai = [c for c in result.commits if c.ai]
    lines.append(f"{len(result.commits)} commit(s), {len(ai)} AI-assisted")
    for c in ai:
        review = result.reviews.get(c.sha, "no recorded review")
        lines.append(f"  {c.sha[:12]} {c.subject[:60]}  [{'; '.join(c.ai_evidence)}] ({review})")
    lines.append("")
    findings = result.report.findings
    status = f"{red}FAIL{reset}" if findings and result.fail_on_findings else f"{green}PASS{reset}"
    lines.append(f"{status} no PHI or secrets in added lines ({len(findings)} finding(s))")
    if findings:
        lines += ["  " + line for line in scan_text(result.report).rstrip("\n").splitlines()]
    for rule_id, text in CONTROLS.items():
        hits = [v for v in result.violations if v.rule == rule_id]
        lines.append(f"{red + 'FAIL' + reset if hits else green + 'PASS' + reset} {text}")
        lines += [f"  {v.message}" for v in hits]
    lines.append("")
    lines.append(f"result: {red + 'FAIL' + reset if result.failed else green + 'PASS' + reset}")
    return "\n".join(lines) + "\n"
