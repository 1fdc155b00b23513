"""`phiwarden init`: tailored, idempotent, never clobbering what the user wrote."""

from __future__ import annotations

import datetime as dt
import json
import tomllib

from phiwarden.policy import load_policy
from tests.repo.conftest import SSN_LINE, Repo, run_cli

SCHEMA = "CREATE TABLE patients (id int, dob date);\nCREATE TABLE patient_visits (id int);\n"
ROUTES = 'app.get("/api/v1/patients/<id>")\ndef show(patient_id):\n    return db.q("SELECT * FROM patients WHERE id = %s", patient_id)\n'


def _setup(repo: Repo) -> None:
    repo.write("db/schema.sql", SCHEMA)
    repo.write("api/routes.py", ROUTES)
    repo.write("tests/fixtures/real_patient.py", SSN_LINE)
    repo.write("README.md", "# demo\n")
    repo.write(".gitignore", "node_modules/\n")
    repo.write("AGENTS.md", "# Agents\n\nOur own notes.\n")
    repo.write(".claude/settings.json", json.dumps({"model": "opus", "permissions": {"allow": ["Bash(ls)"]}}))


def test_init_writes_tailored_files_and_is_idempotent(repo: Repo) -> None:
    _setup(repo)
    first = run_cli(repo.root, "init")
    assert first.code == 0, first.err
    policy_text = (repo.root / "phiwarden.toml").read_text()
    assert "fingerprint_salt" in policy_text and "# [[destination]]" in policy_text
    tomllib.loads(policy_text)
    assert load_policy(repo.root / "phiwarden.toml").detection.fingerprint_salt != "phiwarden-default-salt"
    agents = (repo.root / "AGENTS.md").read_text()
    assert agents.startswith("# Agents\n\nOur own notes.\n")
    assert "`patients`" in agents and "`patient_visits`" in agents
    assert "/api/v1/patients/<id>" in agents
    assert "`tests/fixtures/real_patient.py`" in agents
    mdc = (repo.root / ".cursor/rules/phiwarden.mdc").read_text()
    assert mdc.startswith("---\ndescription:") and "alwaysApply: true" in mdc
    assert (repo.root / ".github/copilot-instructions.md").is_file() and (repo.root / "CLAUDE.md").is_file()
    gitignore = (repo.root / ".gitignore").read_text()
    assert gitignore.startswith("node_modules/\n") and "debug-dumps/" in gitignore
    assert "real_patient" not in gitignore  # restricted source stays versioned
    for name in (".cursorignore", ".aiderignore", ".codeiumignore", ".continueignore", ".aiexclude"):
        text = (repo.root / name).read_text()
        assert "/tests/fixtures/real_patient.py" in text and "*.patient-export.json" in text
    assert "!.env.example" not in (repo.root / ".aiexclude").read_text()
    settings = json.loads((repo.root / ".claude/settings.json").read_text())
    assert settings["model"] == "opus" and settings["permissions"]["allow"] == ["Bash(ls)"]
    assert "Read(./tests/fixtures/real_patient.py)" in settings["permissions"]["deny"]
    assert "Read(./.env)" in settings["permissions"]["deny"]

    snapshot = {p: p.read_bytes() for p in repo.root.rglob("*") if p.is_file() and ".git" not in p.parts}
    again = run_cli(repo.root, "init")
    assert again.code == 0 and "0 file(s) written" in again.out
    assert snapshot == {
        p: p.read_bytes() for p in repo.root.rglob("*") if p.is_file() and ".git" not in p.parts
    }
    assert run_cli(repo.root, "init", "--check").code == 0


def test_the_example_destination_loads_once_uncommented(repo: Repo) -> None:
    assert run_cli(repo.root, "init").code == 0
    path = repo.root / "phiwarden.toml"
    head, _, example = path.read_text().partition("# [[destination]]")
    entry = ["[[destination]]"]
    for line in example.splitlines()[1:]:
        if not line.startswith("# ") or "=" not in line:
            break
        entry.append(line[2:])
    path.write_text(head + "\n".join(entry) + "\n")
    (destination,) = load_policy(path).gateway.destinations
    assert destination.baa and destination.tiers == ("public", "internal")
    assert destination.review_by is not None and destination.review_by > dt.date.today()


def test_check_reports_missing_and_stale_and_keeps_user_edits(repo: Repo) -> None:
    _setup(repo)
    missing = run_cli(repo.root, "init", "--check")
    assert missing.code == 1 and "create" in missing.out
    assert not (repo.root / "CLAUDE.md").exists()  # --check writes nothing
    run_cli(repo.root, "init")
    with (repo.root / ".cursorignore").open("a") as handle:
        handle.write("my-own-entry/\n")
    repo.write("claims/export.py", 'log.info("claim %s", claim_id)\nq = "SELECT * FROM claims"\n')
    stale = run_cli(repo.root, "init", "--check")
    assert stale.code == 1 and "update" in stale.out and ".cursorignore" in stale.out
    assert run_cli(repo.root, "init").code == 0
    text = (repo.root / ".cursorignore").read_text()
    assert text.endswith("my-own-entry/\n") and "/claims/export.py" in text
    assert run_cli(repo.root, "init", "--check").code == 0


def test_invalid_claude_settings_is_a_clear_error(repo: Repo) -> None:
    repo.write(".claude/settings.json", "{not json")
    result = run_cli(repo.root, "init")
    assert result.code == 2 and "not valid JSON" in result.err
