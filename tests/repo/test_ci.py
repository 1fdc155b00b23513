"""`phiwarden ci --base REF`: the change-control gate on real branches."""

from __future__ import annotations

import json

import pytest

from phiwarden.policy import PolicyError, parse_policy
from phiwarden.repo.ci import catalogue, trailers
from tests.repo.conftest import SSN_LINE, Repo, run_cli

CLAUDE = "Co-authored-by: Claude <noreply@anthropic.com>"


def _base(repo: Repo, policy: str = "") -> str:
    repo.write("phiwarden.toml", "version = 1\n" + policy)
    repo.write("app/util.py", "x = 1\n")
    base = repo.commit("init")
    repo.git("checkout", "-q", "-b", "pr")
    return base


def _ai_commit(repo: Repo, path: str, text: str, *trailer_lines: str) -> str:
    repo.write(path, text)
    message = "change\n\n" + "\n".join(trailer_lines or (CLAUDE,))
    repo.git("add", ".")
    repo.git("commit", "-q", "--no-verify", "-m", message)
    return repo.git("rev-parse", "HEAD").strip()


def test_ai_change_to_restricted_file_needs_review(repo: Repo) -> None:
    _base(repo)
    sha = _ai_commit(repo, "api/patients.py", 'q = "SELECT * FROM patients WHERE id = %s"\n')
    result = run_cli(repo.root, "ci", "--base", "main", "--format", "json")
    document = json.loads(result.out)
    assert result.code == 1 and document["result"] == "fail"
    assert document["commits"][0]["ai_assisted"] and "Claude" in document["commits"][0]["ai_evidence"][0]
    assert [(v["rule"], v["path"], v["commit"]) for v in document["violations"]] == [
        ("phiwarden.ci.review-required", "api/patients.py", sha)
    ]
    sarif = json.loads(run_cli(repo.root, "ci", "--base", "main", "--format", "sarif").out)
    results = sarif["runs"][0]["results"]
    assert results[0]["ruleId"] == "phiwarden.ci.review-required"
    assert results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "api/patients.py"


def test_reviewed_by_trailer_from_a_listed_reviewer(repo: Repo) -> None:
    _base(repo, '[repo]\nreviewers = ["alice@example.com"]\nreview_evidence = "trailer"\n')
    _ai_commit(
        repo,
        "api/patients.py",
        'q = "SELECT * FROM patients"\n',
        CLAUDE,
        "Reviewed-by: Mallory <m@example.com>",
    )
    assert run_cli(repo.root, "ci", "--base", "main").code == 1  # not a listed reviewer
    repo.git(
        "commit",
        "-q",
        "--amend",
        "--no-verify",
        "-m",
        f"change\n\n{CLAUDE}\nReviewed-by: Alice <alice@example.com>",
    )
    result = run_cli(repo.root, "ci", "--base", "main")
    assert result.code == 0, result.out
    assert "Reviewed-by: Alice" in result.out


def test_approval_record_files(repo: Repo, tmp_path: object) -> None:
    _base(repo, '[repo]\nreview_evidence = "record"\n')
    sha = _ai_commit(repo, "api/patients.py", 'q = "SELECT * FROM patients"\n')
    record = repo.root.parent / "approvals.json"
    record.write_text(
        json.dumps({"approvals": [{"reviewer": "Alice <alice@example.com>", "commits": [sha[:10]]}]})
    )
    assert run_cli(repo.root, "ci", "--base", "main", "--review-record", str(record)).code == 0
    # An agent cannot approve its own change.
    record.write_text(json.dumps([{"reviewer": "Claude <noreply@anthropic.com>", "all_commits": True}]))
    assert run_cli(repo.root, "ci", "--base", "main", "--review-record", str(record)).code == 1


def test_allowlist_file_limit_and_findings(repo: Repo) -> None:
    _base(repo, '[repo]\nai_allowed_paths = ["app/**"]\nai_max_files = 2\n')
    _ai_commit(repo, "app/util.py", "x = 2\n", "AI-Assisted: yes")
    assert run_cli(repo.root, "ci", "--base", "main").code == 0
    repo.write("app/a.py", "a = 1\n")
    repo.write("app/b.py", "b = 1\n")
    repo.write("scripts/c.py", "c = 1\n")
    repo.git("add", ".")
    repo.git("commit", "-q", "--no-verify", "-m", "many\n\nGenerated-by: Codex")
    document = json.loads(run_cli(repo.root, "ci", "--base", "main", "--format", "json").out)
    rules = sorted(v["rule"] for v in document["violations"])
    assert rules == ["phiwarden.ci.ai-path-not-allowed", "phiwarden.ci.ai-too-many-files"]
    # Human commits are not held to AI limits, but PHI in added lines fails every change.
    repo.git("reset", "-q", "--hard", "HEAD~1")
    repo.write("app/fixture.py", SSN_LINE)
    repo.commit("human fixture")
    result = run_cli(repo.root, "ci", "--base", "main", "--format", "json")
    document = json.loads(result.out)
    assert result.code == 1 and document["violations"] == []
    assert document["scan"]["findings"][0]["category"] == "ssn" and "512-44-8391" not in result.out


def test_agent_recognition_and_bad_refs(repo: Repo) -> None:
    known = catalogue()
    assert known.agent_of("Claude", "noreply@anthropic.com") == "Claude"
    assert known.agent_of("Copilot", "175728472+Copilot@users.noreply.github.com") == "GitHub Copilot"
    assert known.agent_of("Jane Doe (aider)", "jane@example.com") == "aider"
    assert known.agent_of("Devin Smith", "devin.smith@example.com") is None
    assert trailers("subject\n\nbody\n\nCo-authored-by: A <a@b>\nAI-Assisted: yes") == [
        ("Co-authored-by", "A <a@b>"),
        ("AI-Assisted", "yes"),
    ]
    _base(repo)
    assert run_cli(repo.root, "ci", "--base", "does-not-exist").code == 2


def test_repo_policy_errors_name_line_and_key() -> None:
    with pytest.raises(PolicyError, match=r"phiwarden.toml:3: repo.review_tiers\[0\]"):
        parse_policy('version = 1\n[repo]\nreview_tiers = ["secret"]\n')
    with pytest.raises(PolicyError, match=r":2: repo.ai_max_file: unknown key; did you mean 'ai_max_files'"):
        parse_policy("[repo]\nai_max_file = 3\n")
    settings = parse_policy('[repo]\nai_agents = ["acme-bot"]\nai_trailers = ["X-Bot"]\n').repo
    known = catalogue(settings)
    assert known.agent_of("acme-bot", "") == "custom" and "x-bot" in known.trailers
