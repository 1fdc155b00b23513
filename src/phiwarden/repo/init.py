"""`phiwarden init`: the policy, AI rules files and ignore entries of a repository, idempotently.

Everything phiwarden writes into a file the user also edits sits between markers
(`# >>> phiwarden >>>` ... `# <<< phiwarden <<<`, or HTML comments in Markdown); text outside them is
never touched. JSON settings are merged key by key. `--check` reports what is missing or stale
without writing, for CI.

The rules are tailored to the repository: a scan names its PHI tables, patient and claims routes and
restricted files, so the agent reading the rules knows what they mean here.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from phiwarden.policy.model import Policy

HASH_MARKERS = ("# >>> phiwarden >>>", "# <<< phiwarden <<<")
HTML_MARKERS = ("<!-- >>> phiwarden >>> -->", "<!-- <<< phiwarden <<< -->")
RULES_FILES = ("AGENTS.md", "CLAUDE.md", ".github/copilot-instructions.md")
CURSOR_RULES = ".cursor/rules/phiwarden.mdc"
CLAUDE_SETTINGS = ".claude/settings.json"
POLICY_FILE = "phiwarden.toml"
CURSOR_FRONTMATTER = """---
description: PHI rules for this repository (written by phiwarden init)
globs:
alwaysApply: true
---
"""
MAX_LISTED = 40

# String literals that look like patient, member or claims routes.
_ROUTE = re.compile(
    r"""["'`](/[\w\-./{}<>:]{0,80}?(?:patients?|members?|claims?|encounters?|prescriptions?|diagnos[ie]s|"""
    r"""medical[-_]records?|charts?|beneficiar(?:y|ies)|subscribers?|fhir/[A-Z]\w+)"""
    r"""(?:[/?][\w\-./{}<>:]{0,80})?)["'`]"""
)
_TABLE = re.compile(
    r"""(?i)\b(?:create\s+table(?:\s+if\s+not\s+exists)?|alter\s+table|insert\s+into|delete\s+from|update|"""
    r"""from|join|references)\s+["'`\[]?(?:\w+\.)?(\w+)|__tablename__\s*=\s*["'](\w+)|"""
    r"""db_table\s*=\s*["'](\w+)|@Table\s*\(\s*name\s*=\s*"(\w+)"|create_table\s*\(?\s*[:"'](\w+)"""
)
_PHI_STEMS = (
    "patient", "claim", "diagnos", "prescription", "provider", "member", "encounter", "insurance",
    "medication", "allerg", "immuniz", "lab_result", "eligib", "beneficiar", "subscriber",
)  # fmt: skip


@dataclass(slots=True)
class Facts:
    """What a scan of the repository found, as the rules and ignore entries name it."""

    tables: list[str] = field(default_factory=list)
    routes: list[str] = field(default_factory=list)
    # path -> the first reason it is restricted
    restricted: dict[str, str] = field(default_factory=dict)

    def tailored(self) -> str:
        lines = []
        if self.tables:
            lines.append("- PHI tables (schemas and queries on them are restricted): " + _listed(self.tables))
        if self.routes:
            lines.append("- Patient and claims routes (never log their bodies): " + _listed(self.routes))
        if self.restricted:
            items = [f"`{path}` ({reason})" for path, reason in sorted(self.restricted.items())]
            lines.append(
                "- Restricted files (PHI or PHI-adjacent; do not read, paste or send): "
                + _listed(items, quote=False)
            )
        if not lines:
            lines.append(
                "- The last `phiwarden init` scan found no PHI tables, patient routes or restricted files."
            )
        lines.append(
            "- Never commit or read: `.env` files, `debug-dumps/`, `*.patient-export.json`, real-PHI "
            "fixture folders (`fixtures/real/`, `fixtures/phi/`)."
        )
        lines.append(
            "- Refresh this section with `phiwarden init`; CI checks it with `phiwarden init --check`."
        )
        return "\n".join(lines)


def _listed(items: Sequence[str], *, quote: bool = True) -> str:
    shown = ", ".join(f"`{i}`" if quote else i for i in items[:MAX_LISTED])
    more = len(items) - MAX_LISTED
    return shown + (f", and {more} more (`phiwarden scan . --show-tiers`)" if more > 0 else "") + "."


def managed_paths() -> list[str]:
    data = _workspace()
    return [
        POLICY_FILE, *RULES_FILES, CURSOR_RULES, CLAUDE_SETTINGS, ".gitignore",
        *(f["path"] for f in data["ignore_file"]),
    ]  # fmt: skip


def gather(root: Path, policy: Policy, *, jobs: int = 1) -> Facts:
    """Scan the work tree (not the files init writes) for restricted files, PHI tables and routes."""
    from phiwarden.scan.files import Selection, collect
    from phiwarden.scan.runner import run as run_scan

    own = set(managed_paths())
    selection = Selection.build(policy.scan.include, [*policy.scan.exclude, ".phiwarden/"], True)
    _, candidates = collect([root], selection, [])
    candidates = [c for c in candidates if c.display not in own]
    report = run_scan(root, candidates, [], policy, jobs=jobs)
    facts = Facts()
    tables: set[str] = set()
    routes: set[str] = set()
    known = _known_tables(policy)
    for result in report.files:
        if result.classification is None or result.classification.tier != "restricted":
            continue
        facts.restricted[result.path] = (result.classification.reasons or ("restricted",))[0]
        try:
            text = (root / result.path).read_text("utf-8", "replace")
        except OSError:
            continue
        for m in _TABLE.finditer(text):
            name = next(g for g in m.groups() if g).lower()
            if name in known or any(stem in name for stem in _PHI_STEMS):
                tables.add(name)
        routes.update(m.group(1) for m in _ROUTE.finditer(text))
    facts.tables = sorted(tables)
    facts.routes = sorted(routes)
    return facts


def _known_tables(policy: Policy) -> set[str]:
    text = resources.files("phiwarden.classify").joinpath("data", "signals.toml").read_text("utf-8")
    return {t.lower() for t in (*tomllib.loads(text)["tables"], *policy.classify.phi_tables)}


def _workspace() -> dict[str, Any]:
    text = resources.files("phiwarden.repo").joinpath("data", "workspace.toml").read_text("utf-8")
    return tomllib.loads(text)


def _template(name: str) -> str:
    return resources.files("phiwarden.repo").joinpath("templates", name).read_text("utf-8")


def replace_block(existing: str | None, body: str, markers: tuple[str, str]) -> str:
    """`existing` with the managed block set to `body` (appended when absent); the rest untouched."""
    begin, end = markers
    block = f"{begin}\n{body.rstrip()}\n{end}\n"
    if not existing:
        return block
    start = existing.find(begin)
    stop = existing.find(end, start + len(begin)) if start >= 0 else -1
    if start >= 0 and stop >= 0:
        after = stop + len(end)
        if existing[after : after + 1] == "\n":
            after += 1
        return existing[:start] + block + existing[after:]
    separator = "" if existing.endswith("\n\n") else ("\n" if existing.endswith("\n") else "\n\n")
    return existing + separator + block


Action = Literal["ok", "create", "update"]


@dataclass(frozen=True, slots=True)
class Planned:
    path: str
    action: Action
    content: str
    why: str = ""


def _plan_text(root: Path, path: str, render: Any, why_stale: str) -> Planned:
    target = root / path
    existing = target.read_text("utf-8") if target.is_file() else None
    content = render(existing)
    if existing is None:
        return Planned(path, "create", content, "missing")
    if content == existing:
        return Planned(path, "ok", content)
    return Planned(path, "update", content, why_stale)


def ignore_body(facts: Facts, *, negation: bool, restricted: bool) -> str:
    patterns = _workspace()["pattern"]
    lines = [
        "# Managed by `phiwarden init`: PHI-prone paths"
        + (" and restricted files" if restricted else "")
        + ".",
        "# Edit outside these markers; rerun `phiwarden init` to refresh.",
    ]
    lines += [p["glob"] for p in patterns if negation or not p.get("negation")]
    if restricted and facts.restricted:
        lines.append("# restricted files found by phiwarden (PHI or PHI-adjacent)")
        lines += ["/" + _escape_glob(path) for path in sorted(facts.restricted)]
    return "\n".join(lines)


def _escape_glob(path: str) -> str:
    return re.sub(r"([*?\[\]!#\\])", r"\\\1", path)


def claude_rules(facts: Facts) -> list[str]:
    rules = [rule for p in _workspace()["pattern"] for rule in p.get("claude", ())]
    rules += [f"Read(./{path})" for path in sorted(facts.restricted)]
    return rules


def _plan_claude(root: Path, facts: Facts) -> Planned:
    target = root / CLAUDE_SETTINGS
    data: dict[str, Any] = {}
    if target.is_file():
        try:
            loaded = json.loads(target.read_text("utf-8"))
        except ValueError as exc:
            raise InitError(f"{CLAUDE_SETTINGS} is not valid JSON ({exc}); fix it and rerun") from None
        if not isinstance(loaded, dict):
            raise InitError(f"{CLAUDE_SETTINGS} is not a JSON object; fix it and rerun")
        data = loaded
    permissions = data.setdefault("permissions", {})
    if not isinstance(permissions, dict):
        raise InitError(f'{CLAUDE_SETTINGS}: "permissions" is not an object')
    deny = permissions.setdefault("deny", [])
    if not isinstance(deny, list):
        raise InitError(f'{CLAUDE_SETTINGS}: "permissions.deny" is not a list')
    missing = [r for r in claude_rules(facts) if r not in deny]
    deny.extend(missing)
    content = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if not target.is_file():
        return Planned(CLAUDE_SETTINGS, "create", content, "missing")
    if not missing:
        return Planned(CLAUDE_SETTINGS, "ok", target.read_text("utf-8"))
    return Planned(CLAUDE_SETTINGS, "update", content, f"{len(missing)} deny rule(s) missing")


class InitError(ValueError):
    pass


def plan(root: Path, facts: Facts) -> list[Planned]:
    rules = _template("rules.md").replace("{tailored}", facts.tailored())
    plans: list[Planned] = []
    policy_path = root / POLICY_FILE
    if policy_path.is_file():
        plans.append(Planned(POLICY_FILE, "ok", policy_path.read_text("utf-8")))
    else:
        text = _template("phiwarden.toml").replace("{salt}", secrets.token_hex(16))
        text = text.replace("{policy_id}", re.sub(r"[^\w.-]", "-", root.resolve().name) or "default")
        # The example vendor review is due in a year, so uncommenting it does not fail `doctor` at once.
        text = text.replace("{review_by}", (dt.date.today() + dt.timedelta(days=365)).isoformat())
        plans.append(Planned(POLICY_FILE, "create", text, "missing"))
    for path in RULES_FILES:
        plans.append(
            _plan_text(root, path, lambda old: replace_block(old, rules, HTML_MARKERS), "PHI rules are stale")
        )

    def cursor(old: str | None) -> str:
        return replace_block(old or CURSOR_FRONTMATTER, rules, HTML_MARKERS)

    plans.append(_plan_text(root, CURSOR_RULES, cursor, "PHI rules are stale"))
    git_body = ignore_body(facts, negation=True, restricted=False)
    plans.append(
        _plan_text(
            root, ".gitignore", lambda old: replace_block(old, git_body, HASH_MARKERS), "entries are stale"
        )
    )
    for entry in _workspace()["ignore_file"]:
        body = ignore_body(facts, negation=entry.get("negation", True), restricted=True)
        plans.append(
            _plan_text(
                root,
                entry["path"],
                lambda old, b=body: replace_block(old, b, HASH_MARKERS),
                "entries are stale",
            )
        )
    plans.append(_plan_claude(root, facts))
    return plans


def apply(root: Path, plans: Iterable[Planned]) -> None:
    for item in plans:
        if item.action == "ok":
            continue
        target = root / item.path
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.phiwarden-tmp")
        temporary.write_text(item.content, encoding="utf-8")
        temporary.replace(target)
