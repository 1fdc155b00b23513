"""`phiwarden doctor`: what AI tools and MCP servers a repository and workstation use, where prompts
go, what the tools can read, and whether the repository's controls are in place.

Each control is pass, fail, warn or info, with the exact fix. MCP server configurations are pinned:
a server that appeared without approval, or whose command, arguments or environment changed since it
was approved (the CurXecute and MCPoison attacks), fails until `--approve-mcp` records it again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import pathspec

from phiwarden.policy.model import Policy

Status = Literal["pass", "fail", "warn", "info"]
PINS_FORMAT = "phiwarden-mcp-pins"


@dataclass(slots=True)
class Control:
    id: str
    title: str
    status: Status
    detail: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "fix": self.fix,
        }


@dataclass(slots=True)
class Destination:
    url: str
    source: str
    route: str  # "gateway", "local" or "vendor"
    matrix: dict[str, Any] | None = None


@dataclass(slots=True)
class Tool:
    id: str
    name: str
    found: list[str]
    destinations: list[Destination] = field(default_factory=list)
    exclusion: str = "none"
    note: str | None = None
    vendor: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "configured_by": self.found,
            "destinations": [
                {"url": d.url, "source": d.source, "route": d.route, "vendor_matrix": d.matrix}
                for d in self.destinations
            ],
            "exclusion": self.exclusion,
            **({"note": self.note} if self.note else {}),
        }


@dataclass(slots=True)
class McpServer:
    client: str
    config: str  # "repo:.cursor/mcp.json" or "home:.cursor/mcp.json"
    name: str
    command: str | None
    args: list[str]
    env: dict[str, str]
    url: str | None
    headers: dict[str, str]
    status: str = "unknown"  # approved, changed, unapproved

    @property
    def key(self) -> str:
        return f"{self.config}#{self.name}"

    def pin(self) -> str:
        """Hash of what the client will run: command, arguments, env names and a hash of each value."""

        def digest(value: str) -> str:
            return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()

        material = {
            "command": self.command,
            "args": self.args,
            "env": {k: digest(v) for k, v in sorted(self.env.items())},
            "url": self.url,
            "headers": {k: digest(v) for k, v in sorted(self.headers.items())},
        }
        return digest(json.dumps(material, sort_keys=True))

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "client": self.client,
            "config": self.config,
            "name": self.name,
            "command": self.command,
            "args": self.args,
            "env_names": sorted(self.env),
            "url": self.url,
            "status": self.status,
            "pin": self.pin(),
        }


@dataclass(slots=True)
class Diagnosis:
    root: Path
    home: Path
    tools: list[Tool]
    servers: list[McpServer]
    controls: list[Control]
    vendor_matrix: bool

    @property
    def failed(self) -> bool:
        return any(c.status == "fail" for c in self.controls)

    def to_dict(self) -> dict[str, Any]:
        counts = {s: sum(1 for c in self.controls if c.status == s) for s in ("pass", "fail", "warn", "info")}
        return {
            "tool": "phiwarden doctor",
            "repository": str(self.root),
            "home": str(self.home),
            "result": "fail" if self.failed else "pass",
            "counts": counts,
            "vendor_matrix": self.vendor_matrix,
            "tools": [t.to_dict() for t in self.tools],
            "mcp_servers": [s.to_dict() for s in self.servers],
            "controls": [c.to_dict() for c in self.controls],
        }


def _data() -> dict[str, Any]:
    return tomllib.loads(resources.files("phiwarden.repo").joinpath("data", "tools.toml").read_text("utf-8"))


def _resolve(path: str, root: Path, home: Path) -> tuple[Path, str]:
    if path.startswith("~/"):
        return home / path[2:], path
    return root / path, path


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None


def _read_yaml(path: Path) -> Any:
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML is a dependency
        return None
    try:
        return yaml.safe_load(path.read_text("utf-8"))
    except (OSError, yaml.YAMLError):
        return None


def _read_toml(path: Path) -> Any:
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None


# --- where prompts go -----------------------------------------------------------------------------


def _route(url: str, gateways: Sequence[str]) -> str:
    if any(url.startswith(g.rstrip("/")) for g in gateways) or "phiwarden" in url.lower():
        return "gateway"
    host = (urlparse(url).hostname or "").lower()
    if host in ("localhost", "::1") or host.startswith("127.") or host.endswith(".localhost"):
        return "local"
    return "vendor"


def _destinations(
    spec: Mapping[str, Any], root: Path, home: Path, env: Mapping[str, str]
) -> list[tuple[str, str]]:
    """(url, where it was set) for one tool, most specific first; the default when nothing is set."""
    found: list[tuple[str, str]] = []
    for name in spec.get("env", ()):
        if env.get(name):
            found.append((env[name], f"environment variable {name}"))
    for entry in spec.get("settings_env", ()):
        path, shown = _resolve(entry, root, home)
        data = _read_json(path) if path.is_file() else None
        if isinstance(data, dict) and isinstance(data.get("env"), dict):
            for name in spec.get("env", ()):
                value = data["env"].get(name)
                if isinstance(value, str) and value:
                    found.append((value, f"{shown} env.{name}"))
    for entry in spec.get("codex_config", ()):
        path, shown = _resolve(entry, root, home)
        data = _read_toml(path) if path.is_file() else None
        if isinstance(data, dict):
            provider = data.get("model_provider")
            providers = data.get("model_providers", {})
            if isinstance(provider, str) and isinstance(providers, dict):
                url = providers.get(provider, {}).get("base_url")
                if isinstance(url, str):
                    found.append((url, f"{shown} model_providers.{provider}.base_url"))
    for entry in spec.get("yaml_keys", ()):
        file, _, key = entry.partition(":")
        path, shown = _resolve(file, root, home)
        data = _read_yaml(path) if path.is_file() else None
        if isinstance(data, dict) and isinstance(data.get(key), str):
            found.append((data[key], f"{shown} {key}"))
    for entry in spec.get("continue_config", ()):
        path, shown = _resolve(entry, root, home)
        data = _read_yaml(path) if path.is_file() else None
        models = data.get("models") if isinstance(data, dict) else None
        for model in models if isinstance(models, list) else []:
            if isinstance(model, dict):
                base = model.get("apiBase") or _PROVIDER_URLS.get(str(model.get("provider", "")), "")
                if base:
                    found.append((str(base), f"{shown} model {model.get('name', model.get('model', '?'))}"))
    if not found:
        found.append((spec["default_url"], "default"))
    return found


_PROVIDER_URLS = {
    "anthropic": "https://api.anthropic.com",
    "openai": "https://api.openai.com/v1",
    "gemini": "https://generativelanguage.googleapis.com",
    "mistral": "https://api.mistral.ai",
    "ollama": "http://localhost:11434",
    "azure": "https://(your-resource).openai.azure.com",
    "bedrock": "https://bedrock-runtime.(region).amazonaws.com",
}


def _evidence(root: Path, marker: str, managed: set[str]) -> bool:
    """Whether `marker` shows the tool in use: files phiwarden init wrote do not count, unless the
    user added their own text around phiwarden's block."""
    from phiwarden.repo.init import CURSOR_FRONTMATTER, HASH_MARKERS, HTML_MARKERS

    path = root / marker
    if path.is_dir():
        return any(
            p.is_file() and p.relative_to(root).as_posix() not in managed for p in list(path.rglob("*"))[:200]
        )
    if not path.is_file():
        return False
    if marker not in managed:
        return True
    text = path.read_text("utf-8", "replace").replace(CURSOR_FRONTMATTER, "")
    for begin, end in (HASH_MARKERS, HTML_MARKERS):
        start, stop = text.find(begin), text.find(end)
        if 0 <= start < stop:
            text = text[:start] + text[stop + len(end) :]
    return bool(text.strip())


def find_tools(root: Path, home: Path, env: Mapping[str, str], policy: Policy) -> list[Tool]:
    from phiwarden.repo.init import managed_paths

    managed = set(managed_paths())
    tools = []
    for spec in _data()["tool"]:
        found = [m for m in spec.get("repo_markers", ()) if _evidence(root, m, managed)]
        found += [f"~/{m}" for m in spec.get("home_markers", ()) if (home / m).exists()]
        found += [f"${name}" for name in spec.get("env", ()) if env.get(name)]
        if not found:
            continue
        tool = Tool(
            spec["id"], spec["name"], found, exclusion=spec.get("exclusion", "none"), note=spec.get("note")
        )
        tool.vendor = spec.get("vendor", "")
        for url, source in _destinations(spec, root, home, env):
            tool.destinations.append(Destination(url, source, _route(url, policy.repo.gateway_urls)))
        tools.append(tool)
    return tools


# --- MCP servers ----------------------------------------------------------------------------------


def _servers_from(data: Any, key: str) -> list[tuple[str, dict[str, Any]]]:
    block = data.get(key) if isinstance(data, dict) else None
    if isinstance(block, dict):
        return [(str(n), s) for n, s in block.items() if isinstance(s, dict)]
    if isinstance(block, list):  # Continue: a list of servers with names
        return [(str(s.get("name", f"server-{i}")), s) for i, s in enumerate(block) if isinstance(s, dict)]
    return []


def _server(client: str, config: str, name: str, spec: Mapping[str, Any]) -> McpServer:
    def strings(value: Any) -> dict[str, str]:
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

    args = spec.get("args")
    return McpServer(
        client=client,
        config=config,
        name=name,
        command=str(spec["command"]) if spec.get("command") is not None else None,
        args=[str(a) for a in args] if isinstance(args, list) else [],
        env=strings(spec.get("env")),
        url=str(spec.get("url") or spec.get("serverUrl") or "") or None,
        headers=strings(spec.get("headers")),
    )


def find_servers(root: Path, home: Path) -> list[McpServer]:
    servers: list[McpServer] = []
    for spec in _data()["mcp"]:
        reader = {"json": _read_json, "yaml": _read_yaml, "toml": _read_toml}[spec.get("format", "json")]
        for scope in spec["scopes"]:
            base = root if scope == "repo" else home
            paths = sorted(base.glob(spec["glob"])) if "glob" in spec else [base / spec["path"]]
            for path in paths:
                if not path.is_file():
                    continue
                data = reader(path)
                shown = f"{scope}:{path.relative_to(base).as_posix()}"
                for name, server in _servers_from(data, spec["key"]):
                    servers.append(_server(spec["client"], shown, name, server))
                if spec.get("projects") and isinstance(data, dict):
                    project = (data.get("projects") or {}).get(str(root.resolve()))
                    for name, server in _servers_from(project, spec["key"]):
                        servers.append(_server(spec["client"], f"{shown}:project", name, server))
    return servers


def load_pins(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        return {}
    data = _read_json(path)
    if (
        not isinstance(data, dict)
        or data.get("format") != PINS_FORMAT
        or not isinstance(data.get("servers"), dict)
    ):
        raise ValueError(f'{path}: not a phiwarden MCP pin file (expected "format": "{PINS_FORMAT}")')
    return {str(k): v for k, v in data["servers"].items() if isinstance(v, dict)}


def approve(servers: Sequence[McpServer], pins_path: Path, name: str | None) -> list[McpServer]:
    """Record the current configuration of the servers named `name` (all when None)."""
    pins = load_pins(pins_path)
    chosen = [s for s in servers if name in (None, s.name, s.key)]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    for server in chosen:
        pins[server.key] = {
            "pin": server.pin(),
            "client": server.client,
            "command": server.command,
            "url": server.url,
            "approved_at": now,
        }
    document = {"format": PINS_FORMAT, "version": 1, "servers": dict(sorted(pins.items()))}
    pins_path.parent.mkdir(parents=True, exist_ok=True)
    pins_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return chosen


# --- restricted files each tool can read ----------------------------------------------------------


def _ignore_spec(path: Path) -> pathspec.GitIgnoreSpec | None:
    if not path.is_file():
        return None
    lines = path.read_text("utf-8", "replace").splitlines()
    if path.name == ".aiexclude" and not any(line.strip() and not line.startswith("#") for line in lines):
        lines = ["**/*"]  # an empty .aiexclude excludes everything below it
    return pathspec.GitIgnoreSpec.from_lines(lines)


def _claude_spec(root: Path, home: Path) -> pathspec.GitIgnoreSpec | None:
    patterns = []
    for path in (
        root / ".claude/settings.json",
        root / ".claude/settings.local.json",
        home / ".claude/settings.json",
    ):
        data = _read_json(path) if path.is_file() else None
        deny = data.get("permissions", {}).get("deny", []) if isinstance(data, dict) else []
        for rule in deny if isinstance(deny, list) else []:
            if isinstance(rule, str) and rule.startswith("Read(") and rule.endswith(")"):
                target = rule[5:-1]
                if target.startswith("./"):
                    patterns.append("/" + target[2:])
                elif not target.startswith(("/", "~")):
                    patterns.append(target)
    return pathspec.GitIgnoreSpec.from_lines(patterns) if patterns else None


def readable(tool: Tool, restricted: Sequence[str], root: Path, home: Path) -> list[str] | None:
    """Restricted files the tool may read; None when the repository cannot tell."""
    if tool.exclusion == "github-content-exclusion":
        return None
    if tool.exclusion == "none":
        return list(restricted)
    spec = (
        _claude_spec(root, home)
        if tool.exclusion == "claude-settings"
        else _ignore_spec(root / tool.exclusion)
    )
    if spec is None:
        return list(restricted)
    return [p for p in restricted if not spec.match_file(p)]


# --- the vendor matrix ----------------------------------------------------------------------------


def vendor_matrix(root: Path) -> list[dict[str, Any]] | None:
    """`[[destination]]` entries of phiwarden.toml, or None when the file has none."""
    data = _read_toml(root / "phiwarden.toml")
    entries = data.get("destination") if isinstance(data, dict) else None
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else None


def _match(
    destination: Destination, vendor: str, matrix: Sequence[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    for entry in matrix:
        base = str(entry.get("base_url", "")).rstrip("/")
        if base and destination.url.rstrip("/").startswith(base):
            return entry
    for entry in matrix:
        if vendor and str(entry.get("provider", "")).lower() == vendor and destination.source == "default":
            return entry
    return None


def _judge(entry: Mapping[str, Any], today: dt.date) -> list[str]:
    problems = []
    if entry.get("baa") is not True:
        problems.append("no BAA")
    if entry.get("zero_data_retention") is not True:
        problems.append("keeps prompts (no zero data retention)")
    if entry.get("trains_on_prompts") is not False:
        problems.append("may train on prompts")
    review = entry.get("review_by")
    if isinstance(review, dt.datetime):
        review = review.date()
    if isinstance(review, dt.date) and review < today:
        problems.append(f"review date {review.isoformat()} has passed")
    return problems


# --- the report -----------------------------------------------------------------------------------


def diagnose(
    root: Path,
    home: Path,
    env: Mapping[str, str],
    policy: Policy,
    *,
    policy_error: str | None = None,
    jobs: int = 1,
) -> Diagnosis:
    from phiwarden.repo import init
    from phiwarden.repo.git import Git, GitError
    from phiwarden.repo.hook import state

    controls: list[Control] = []
    policy_path = root / "phiwarden.toml"
    if policy_error:
        controls.append(Control("policy", "policy file", "fail", policy_error, "fix the line named above"))
    elif policy_path.is_file():
        controls.append(Control("policy", "policy file", "pass", "phiwarden.toml is valid"))
    else:
        controls.append(Control("policy", "policy file", "fail", "no phiwarden.toml", "phiwarden init"))

    facts = init.gather(root, policy, jobs=jobs)
    restricted = sorted(facts.restricted)
    plans = [p for p in init.plan(root, facts) if p.action != "ok" and p.path != init.POLICY_FILE]
    if plans:
        names = ", ".join(f"{p.path} ({p.why})" for p in plans)
        controls.append(
            Control(
                "workspace",
                "AI rules and ignore files",
                "fail",
                f"missing or stale: {names}",
                "phiwarden init",
            )
        )
    else:
        controls.append(Control("workspace", "AI rules and ignore files", "pass", "present and current"))

    try:
        git: Git | None = Git.discover(root)
    except GitError:
        git = None
    if git is None:
        controls.append(Control("hook", "pre-commit hook", "warn", "not a git repository", "git init"))
    else:
        hook = state(git)
        if hook.runs_phiwarden:
            controls.append(
                Control("hook", "pre-commit hook", "pass", f"phiwarden runs before each commit ({hook.kind})")
            )
        else:
            controls.append(
                Control(
                    "hook",
                    "pre-commit hook",
                    "fail",
                    f"{hook.path} does not run phiwarden ({hook.kind})",
                    "phiwarden hook install   (or add the phiwarden hook to .pre-commit-config.yaml)",
                )
            )
    gate = _ci_gate(root)
    controls.append(
        Control("ci", "CI gate", "pass", f"`phiwarden ci` runs in {gate}")
        if gate
        else Control(
            "ci",
            "CI gate",
            "fail",
            "no CI workflow runs `phiwarden ci`",
            "add the phiwarden action to .github/workflows "
            "(see README: uses: phiwarden/phiwarden@v0 with base)",
        )
    )

    tools = find_tools(root, home, env, policy)
    matrix = vendor_matrix(root)
    today = dt.date.today()
    for tool in tools:
        for destination in tool.destinations:
            control_id = f"destination:{tool.id}:{destination.url}"
            title = f"{tool.name} prompts -> {destination.url}"
            if destination.route in ("gateway", "local"):
                what = "a phiwarden gateway" if destination.route == "gateway" else "this machine"
                controls.append(Control(control_id, title, "pass", f"through {what} ({destination.source})"))
                continue
            if matrix is None:
                controls.append(
                    Control(
                        control_id,
                        title,
                        "warn",
                        f"direct to the vendor ({destination.source}); no vendor matrix to say "
                        "whether it has a "
                        "BAA, zero retention or trains on prompts",
                        "add [[destination]] entries to phiwarden.toml, "
                        "or route the tool through the gateway",
                    )
                )
                continue
            entry = _match(destination, tool.vendor, matrix)
            if entry is None:
                controls.append(
                    Control(
                        control_id,
                        title,
                        "fail",
                        f"direct to a destination missing from the vendor matrix ({destination.source})",
                        "route the tool through the phiwarden gateway, "
                        "or approve the destination in [[destination]]",
                    )
                )
                continue
            destination.matrix = {
                k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in entry.items()
            }
            problems = _judge(entry, today)
            summary = (
                f"vendor matrix {entry.get('id', '?')}: BAA {entry.get('baa')}, zero retention "
                f"{entry.get('zero_data_retention')}, trains on prompts {entry.get('trains_on_prompts')}, "
                f"tiers {entry.get('tiers', [])}"
            )
            if problems:
                controls.append(
                    Control(
                        control_id,
                        title,
                        "fail",
                        f"{summary}: {'; '.join(problems)}",
                        "route the tool through the phiwarden gateway",
                    )
                )
            else:
                controls.append(Control(control_id, title, "pass", summary))
        exposed = readable(tool, restricted, root, home)
        control_id, title = f"exclusion:{tool.id}", f"{tool.name} cannot read restricted files"
        if exposed is None:
            controls.append(
                Control(
                    control_id,
                    title,
                    "warn",
                    tool.note or "cannot be verified from the repository",
                    "exclude the restricted paths in the tool's organisation settings",
                )
            )
        elif exposed:
            fix = (
                "phiwarden init"
                if tool.exclusion not in ("none",)
                else "use this tool only through the phiwarden gateway"
            )
            controls.append(
                Control(
                    control_id,
                    title,
                    "fail",
                    f"{len(exposed)} restricted file(s) readable ({tool.exclusion}): "
                    + ", ".join(exposed[:10])
                    + (" …" if len(exposed) > 10 else ""),
                    fix,
                )
            )
        else:
            controls.append(
                Control(
                    control_id,
                    title,
                    "pass",
                    f"{len(restricted)} restricted file(s) excluded ({tool.exclusion})",
                )
            )
    if not tools:
        controls.append(Control("tools", "AI coding tools", "info", "no AI coding tool configuration found"))
    if matrix is None:
        controls.append(
            Control(
                "vendor-matrix",
                "vendor matrix",
                "info",
                "no vendor matrix ([[destination]] in phiwarden.toml)",
            )
        )

    servers = find_servers(root, home)
    pins_path = root / policy.repo.mcp_pins
    try:
        pins = load_pins(pins_path)
    except ValueError as exc:
        pins = {}
        controls.append(
            Control("mcp-pins", "MCP pin file", "fail", str(exc), f"remove {pins_path} and approve again")
        )
    for server in servers:
        pinned = pins.get(server.key)
        what = server.command + " " + " ".join(server.args) if server.command else (server.url or "?")
        control_id, title = (
            f"mcp:{server.key}",
            f"MCP server {server.name} ({server.client}, {server.config})",
        )
        if pinned is None:
            server.status = "unapproved"
            controls.append(
                Control(
                    control_id,
                    title,
                    "fail",
                    f"not approved: runs {what.strip()}",
                    f"review it, then: phiwarden doctor --approve-mcp {server.name}",
                )
            )
        elif pinned.get("pin") != server.pin():
            server.status = "changed"
            controls.append(
                Control(
                    control_id,
                    title,
                    "fail",
                    f"changed since it was approved on {pinned.get('approved_at', '?')}: "
                    f"now runs {what.strip()}",
                    f"review the change, then: phiwarden doctor --approve-mcp {server.name}",
                )
            )
        else:
            server.status = "approved"
            controls.append(
                Control(
                    control_id, title, "pass", f"approved {pinned.get('approved_at', '')}: {what.strip()}"
                )
            )
    return Diagnosis(root, home, tools, servers, controls, matrix is not None)


_CI_FILES = (
    ".gitlab-ci.yml",
    "Jenkinsfile",
    ".circleci/config.yml",
    "azure-pipelines.yml",
    "bitbucket-pipelines.yml",
)


def _ci_gate(root: Path) -> str | None:
    candidates = sorted((root / ".github" / "workflows").glob("*.y*ml")) + [root / f for f in _CI_FILES]
    for path in candidates:
        if not path.is_file():
            continue
        text = path.read_text("utf-8", "replace")
        if (
            "phiwarden ci" in text
            or "phiwarden/phiwarden@" in text
            or ("uses: ./" in text and "phiwarden" in text)
        ):
            return path.relative_to(root).as_posix()
    return None


def to_text(diagnosis: Diagnosis, *, color: bool = False) -> str:
    bold, dim, reset = ("\033[1m", "\033[2m", "\033[0m") if color else ("", "", "")
    marks = (
        {
            "pass": "\033[32mPASS\033[0m",
            "fail": "\033[31mFAIL\033[0m",
            "warn": "\033[33mWARN\033[0m",
            "info": "\033[2mINFO\033[0m",
        }
        if color
        else {s: s.upper() for s in ("pass", "fail", "warn", "info")}
    )
    lines = [f"{bold}phiwarden doctor{reset}: {diagnosis.root}  {dim}(home {diagnosis.home}){reset}", ""]
    lines.append(f"{bold}AI coding tools{reset}")
    for tool in diagnosis.tools:
        lines.append(f"  {tool.name}: configured by {', '.join(tool.found)}")
        for d in tool.destinations:
            lines.append(f"    prompts -> {d.url}  [{d.route}; {d.source}]")
    if not diagnosis.tools:
        lines.append("  none found")
    lines.append("")
    lines.append(f"{bold}MCP servers{reset}")
    for s in diagnosis.servers:
        what = (s.command or "") + (" " + " ".join(s.args) if s.args else "") if s.command else (s.url or "?")
        env = f"  env: {', '.join(sorted(s.env))}" if s.env else ""
        lines.append(f"  {s.name} ({s.client}, {s.config}): {what}{env}  [{s.status}]")
    if not diagnosis.servers:
        lines.append("  none configured")
    lines.append("")
    lines.append(f"{bold}Controls{reset}")
    for c in diagnosis.controls:
        lines.append(f"  {marks[c.status]} {c.title}: {c.detail}")
        if c.fix and c.status in ("fail", "warn"):
            lines.append(f"       fix: {c.fix}")
    counts = diagnosis.to_dict()["counts"]
    lines.append("")
    lines.append(
        f"result: {'FAIL' if diagnosis.failed else 'PASS'} ({counts['pass']} pass, {counts['fail']} fail, "
        f"{counts['warn']} warn, {counts['info']} info)"
    )
    return "\n".join(lines) + "\n"
