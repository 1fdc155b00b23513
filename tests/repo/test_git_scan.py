"""`phiwarden scan --staged / --diff / --since / --history` on real git repositories."""

from __future__ import annotations

import json
from pathlib import Path

from tests.repo.conftest import MRN_LINE, MRN_VALUE, SSN_LINE, SSN_VALUE, Repo, make_repo, run_cli


def _findings(text: str) -> list[dict[str, object]]:
    findings = json.loads(text)["findings"]
    assert isinstance(findings, list)
    return findings


def test_staged_reports_only_added_lines_with_new_line_numbers(repo: Repo) -> None:
    repo.write("app.py", "import os\n" + SSN_LINE + "x = 1\n")
    repo.commit("old value already committed")
    # Two lines inserted above the old value; the new value lands on line 5.
    repo.write("app.py", "import os\n# a\n# b\n" + SSN_LINE + MRN_LINE + "x = 1\n")
    repo.git("add", "app.py")
    result = run_cli(repo.root, "scan", "--staged", "--format", "json")
    assert result.code == 1
    findings = _findings(result.out)
    assert [(f["path"], f["category"], f["line"]) for f in findings] == [("app.py", "mrn", 5)]
    assert MRN_VALUE not in result.out and SSN_VALUE not in result.out


def test_staged_clean_change_passes_and_unstaged_changes_are_ignored(repo: Repo) -> None:
    repo.write("app.py", "x = 1\n")
    repo.commit("init")
    repo.write("app.py", "x = 2\n")
    repo.git("add", "app.py")
    repo.write("app.py", "x = 2\n" + SSN_LINE)  # not staged
    result = run_cli(repo.root, "scan", "--staged")
    assert result.code == 0, result.out


def test_empty_repository_staged_and_history(repo: Repo) -> None:
    assert run_cli(repo.root, "scan", "--staged").code == 0
    history = run_cli(repo.root, "scan", "--history", "--format", "json")
    assert history.code == 0 and _findings(history.out) == []
    repo.write("p.py", SSN_LINE)
    repo.git("add", "p.py")
    staged = run_cli(repo.root, "scan", "--staged", "--format", "json")
    assert staged.code == 1 and _findings(staged.out)[0]["line"] == 1
    assert run_cli(repo.root, "scan", "--since", "main").code == 2  # no commits: a clear usage error


def test_renames_binary_files_and_submodules(repo: Repo, tmp_path: Path) -> None:
    filler = "".join(f"v{i} = {i}\n" for i in range(20))
    repo.write("old.py", filler + SSN_LINE)
    repo.write("logo.bin", b"\x00\x01\x02PNG\x00\x00" * 50)
    repo.commit("init")
    sub = make_repo(tmp_path / "sub")
    sub.write("s.py", "y = 1\n")
    sub.commit("sub")
    repo.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub.root), "vendor/sub")
    repo.git("mv", "old.py", "new.py")
    repo.write("logo.bin", b"\x00\x03\x04PNG\x00\x00" * 50)
    repo.git("add", "-A")
    result = run_cli(repo.root, "scan", "--staged", "--format", "json")
    document = json.loads(result.out)
    assert result.code == 0, result.out  # a pure rename adds nothing
    skipped = {s["path"]: s["reason"] for s in document["skipped"]}
    assert "submodule" in skipped["vendor/sub"]
    assert skipped["logo.bin"] == "binary file"
    # A rename with an edit reports only the edited line.
    repo.commit("rename")
    repo.git("mv", "new.py", "renamed.py")
    repo.write("renamed.py", filler + SSN_LINE + MRN_LINE)
    repo.git("add", "-A")
    findings = _findings(run_cli(repo.root, "scan", "--staged", "--format", "json").out)
    assert [(f["path"], f["line"]) for f in findings] == [("renamed.py", 22)]


def test_diff_and_since_on_a_branch_and_a_detached_head(repo: Repo) -> None:
    repo.write("a.py", "x = 1\n")
    base = repo.commit("init")
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("a.py", "x = 1\n" + SSN_LINE)
    repo.commit("add value")
    repo.git("checkout", "-q", "main")
    repo.write("b.py", MRN_LINE)  # on main only: not part of the branch's change
    repo.commit("main moves on")
    repo.git("checkout", "-q", "--detach", "feature")
    since = _findings(run_cli(repo.root, "scan", "--since", "main", "--format", "json").out)
    assert [(f["path"], f["line"]) for f in since] == [("a.py", 2)]
    diff = run_cli(repo.root, "scan", "--diff", f"{base}..HEAD", "--format", "json")
    assert diff.code == 1 and [f["path"] for f in _findings(diff.out)] == ["a.py"]
    assert run_cli(repo.root, "scan", "--diff", "nope..HEAD").code == 2


def test_history_attributes_values_to_the_commit_that_introduced_them(repo: Repo) -> None:
    repo.write("a.py", "x = 1\n")
    repo.commit("init")
    repo.git("checkout", "-q", "-b", "feature")
    repo.git("config", "user.name", "Feature Author")
    repo.write("fixtures/p.py", "# fixture\n" + SSN_LINE)
    introduced = repo.commit("fixture with a value")
    repo.write("fixtures/p.py", "# fixture, edited\n" + SSN_LINE + "y = 2\n")
    repo.commit("edit around the value")
    repo.git("checkout", "-q", "main")
    repo.git("config", "user.name", "Dev One")
    repo.write("a.py", "x = 2\n")
    repo.commit("main")
    repo.git("merge", "-q", "--no-ff", "feature", "-m", "merge feature")
    repo.git("mv", "fixtures/p.py", "fixtures/q.py")
    repo.commit("rename")
    repo.git("checkout", "-q", "--detach", "HEAD~1")
    result = run_cli(repo.root, "scan", "--history", "--format", "json")
    assert result.code == 1
    findings = _findings(result.out)
    # Reported once, where it came in: not again for the edit, the merge or the rename.
    assert len(findings) == 1
    finding = findings[0]
    assert finding["commit"] == introduced
    assert finding["author"] == "Feature Author"
    assert finding["author_email"] == "dev@example.com"
    assert finding["path"] == "fixtures/p.py" and finding["line"] == 2
    assert str(finding["date"])[:4].isdigit()
    assert SSN_VALUE not in result.out
    sarif = json.loads(run_cli(repo.root, "scan", "--history", "--format", "sarif").out)
    assert sarif["runs"][0]["results"][0]["properties"]["commit"] == introduced
    text = run_cli(repo.root, "scan", "--history").out
    assert "introduced in" in text and introduced[:12] in text


def test_history_value_added_in_a_later_edit_keeps_its_line(repo: Repo) -> None:
    lines = [f"line_{i} = {i}\n" for i in range(40)]
    repo.write("big.py", "".join(lines))
    repo.commit("init")
    lines.insert(30, MRN_LINE)
    repo.write("big.py", "".join(lines))
    second = repo.commit("add value deep in the file")
    findings = _findings(run_cli(repo.root, "scan", "--history", "--format", "json").out)
    assert [(f["commit"], f["line"], f["category"]) for f in findings] == [(second, 31, "mrn")]
    text = (repo.root / "big.py").read_text()
    finding = findings[0]
    assert text[int(str(finding["start"])) : int(str(finding["end"]))] in MRN_LINE


def test_history_merge_conflict_resolution_is_attributed_to_the_merge(repo: Repo) -> None:
    repo.write("c.py", "a = 1\n")
    repo.commit("init")
    repo.git("checkout", "-q", "-b", "side")
    repo.write("c.py", "a = 2\n")
    repo.commit("side")
    repo.git("checkout", "-q", "main")
    repo.write("c.py", "a = 3\n")
    repo.commit("main")
    try:
        repo.git("merge", "-q", "side", "-m", "merge")
    except Exception:
        repo.write("c.py", "a = 4\n" + SSN_LINE)
        repo.git("add", "c.py")
        repo.git("commit", "-q", "--no-verify", "-m", "merge with resolution")
    merge = repo.git("rev-parse", "HEAD").strip()
    findings = _findings(run_cli(repo.root, "scan", "--history", "--format", "json").out)
    assert [f["commit"] for f in findings] == [merge]
