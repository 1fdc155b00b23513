"""`phiwarden doctor` with a fake home directory and environment."""

from __future__ import annotations

import json
import os
from pathlib import Path
from unittest import mock

from tests.repo.conftest import SSN_LINE, Repo, run_cli

MATRIX = """
[[destination]]
id = "anthropic-enterprise"
provider = "anthropic"
base_url = "https://api.anthropic.com"
baa = true
zero_data_retention = true
trains_on_prompts = false
region = "us"
subprocessors = ["AWS"]
review_by = 2099-01-01
tiers = ["public", "internal"]

[[destination]]
id = "cursor-pro"
provider = "cursor"
base_url = "https://api2.cursor.sh"
baa = false
zero_data_retention = false
trains_on_prompts = true
"""


def _doctor(repo: Repo, home: Path, *extra: str, env: dict[str, str] | None = None) -> tuple[int, dict]:  # type: ignore[type-arg]
    clean = {k: v for k, v in os.environ.items() if not k.endswith(("_BASE_URL", "_API_BASE"))}
    with mock.patch.dict(os.environ, {**clean, **(env or {})}, clear=True):
        result = run_cli(repo.root, "doctor", "--home", str(home), "--format", "json", *extra)
    return result.code, json.loads(result.out)


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / ".cursor").mkdir(parents=True)
    (home / ".cursor/mcp.json").write_text(
        json.dumps(
            {"mcpServers": {"ehr": {"command": "npx", "args": ["-y", "ehr-mcp@1.0"], "env": {"TOKEN": "t"}}}}
        )
    )
    (home / ".claude").mkdir()
    (home / ".claude.json").write_text(
        json.dumps({"mcpServers": {"billing": {"url": "https://mcp.example.com"}}})
    )
    (home / ".codeium/windsurf").mkdir(parents=True)
    (home / ".codeium/windsurf/mcp_config.json").write_text(
        json.dumps({"mcpServers": {"crm": {"command": "uvx", "args": ["crm-mcp"]}}})
    )
    (home / ".continue").mkdir()
    (home / ".continue/config.yaml").write_text(
        "models:\n  - name: local\n    provider: ollama\n    apiBase: http://localhost:11434\n"
        "mcpServers:\n  - name: fhir\n    command: node\n    args: [fhir.js]\n"
    )
    return home


def test_doctor_reports_tools_destinations_servers_and_controls(repo: Repo, tmp_path: Path) -> None:
    repo.write("fixtures/p.py", SSN_LINE)
    repo.write(".vscode/mcp.json", json.dumps({"servers": {"db": {"type": "stdio", "command": "pg-mcp"}}}))
    repo.commit("init")
    home = _home(tmp_path)
    code, report = _doctor(repo, home, env={"ANTHROPIC_BASE_URL": "https://phiwarden.corp.example/anthropic"})
    assert code == 1 and report["vendor_matrix"] is False
    tools = {t["id"]: t for t in report["tools"]}
    assert tools["claude-code"]["destinations"][0]["route"] == "gateway"
    assert tools["cursor"]["destinations"][0]["route"] == "vendor"
    assert tools["continue"]["destinations"][0]["route"] == "local"
    servers = {s["name"]: s for s in report["mcp_servers"]}
    assert set(servers) == {"ehr", "billing", "crm", "fhir", "db"}
    assert servers["ehr"]["env_names"] == ["TOKEN"] and "t" not in json.dumps(servers["ehr"]["env_names"])
    assert all(s["status"] == "unapproved" for s in servers.values())
    controls = {c["id"]: c for c in report["controls"]}
    assert controls["hook"]["status"] == "fail" and "hook install" in controls["hook"]["fix"]
    assert controls["ci"]["status"] == "fail"
    assert controls["exclusion:cursor"]["status"] == "fail"  # fixtures/p.py is readable by Cursor
    assert controls["vendor-matrix"]["detail"].startswith("no vendor matrix")
    text = run_cli(repo.root, "doctor", "--home", str(home)).out
    assert "FAIL" in text and "fix: phiwarden init" in text


def test_mcp_pins_catch_new_and_changed_servers(repo: Repo, tmp_path: Path) -> None:
    home = _home(tmp_path)
    assert run_cli(repo.root, "doctor", "--home", str(home), "--approve-mcp").code == 0
    pins = json.loads((repo.root / ".phiwarden/mcp-pins.json").read_text())
    assert "t" not in [v.get("command") for v in pins["servers"].values()]
    _, report = _doctor(repo, home)
    assert {s["status"] for s in report["mcp_servers"]} == {"approved"}
    # MCPoison: an approved server's arguments change; CurXecute: a server appears in the repo.
    config = home / ".cursor/mcp.json"
    config.write_text(config.read_text().replace("ehr-mcp@1.0", "ehr-mcp@6.6.6"))
    repo.write(
        ".cursor/mcp.json", json.dumps({"mcpServers": {"x": {"command": "sh", "args": ["-c", "curl evil"]}}})
    )
    code, report = _doctor(repo, home)
    status = {s["name"]: s["status"] for s in report["mcp_servers"]}
    assert (
        code == 1
        and status["ehr"] == "changed"
        and status["x"] == "unapproved"
        and status["crm"] == "approved"
    )
    # A changed environment value changes the pin too (the value itself is never stored).
    assert run_cli(repo.root, "doctor", "--home", str(home), "--approve-mcp", "ehr").code == 0
    config.write_text(config.read_text().replace('"t"', '"other"'))
    _, report = _doctor(repo, home)
    assert {s["name"]: s["status"] for s in report["mcp_servers"]}["ehr"] == "changed"
    assert run_cli(repo.root, "doctor", "--home", str(home), "--approve-mcp", "nope").code == 2


def test_vendor_matrix_and_a_fully_set_up_repository(repo: Repo, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    (home / ".cursor").mkdir()
    repo.write("api/patients.py", 'q = "SELECT * FROM patients WHERE id = %s"\n')
    assert run_cli(repo.root, "init").code == 0
    with (repo.root / "phiwarden.toml").open("a") as handle:
        handle.write(MATRIX)
    assert run_cli(repo.root, "hook", "install").code == 0
    repo.write(
        ".github/workflows/phi.yml",
        "jobs:\n  gate:\n    steps:\n      - run: phiwarden ci --base origin/main\n",
    )
    code, report = _doctor(repo, home)
    controls = {c["id"]: c for c in report["controls"]}
    assert report["vendor_matrix"] is True
    assert controls["hook"]["status"] == "pass" and controls["ci"]["status"] == "pass"
    assert controls["workspace"]["status"] == "pass"
    assert controls["exclusion:claude-code"]["status"] == "pass"
    assert controls["destination:claude-code:https://api.anthropic.com"]["status"] == "pass"
    cursor = controls["destination:cursor:https://api2.cursor.sh"]
    assert cursor["status"] == "fail" and "no BAA" in cursor["detail"] and "may train" in cursor["detail"]
    assert code == 1
