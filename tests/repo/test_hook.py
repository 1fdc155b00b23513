"""The pre-commit hook: plain git hooks and the pre-commit framework, on real repositories."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.repo.conftest import SSN_LINE, SSN_VALUE, Repo, make_repo, run_cli

MAIN = Path(__file__).resolve().parents[2]


def _commit(repo: Repo, message: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        ["git", "commit", "-m", message], cwd=repo.root, capture_output=True, text=True, env=env, check=False
    )


def test_installed_hook_blocks_phi_and_passes_clean_changes(repo: Repo) -> None:
    assert run_cli(repo.root, "hook", "install").code == 0
    assert run_cli(repo.root, "hook", "status").code == 0
    repo.write("fixtures/patient.py", "# fixture\n" + SSN_LINE)
    repo.git("add", ".")
    blocked = _commit(repo, "add fixture")
    assert blocked.returncode != 0
    output = blocked.stdout + blocked.stderr
    assert "commit blocked" in output and "***-**-8391" in output
    assert "phiwarden: allow ssn" in output and "--update-baseline" in output
    assert SSN_VALUE not in output
    repo.write("fixtures/patient.py", '# fixture\nssn = "512-44-8391"  # phiwarden: allow ssn\n')
    repo.git("add", ".")
    assert _commit(repo, "synthetic, allowed").returncode == 0
    repo.write("app.py", "x = 1\n")
    repo.git("add", ".")
    assert _commit(repo, "clean").returncode == 0


def test_install_keeps_an_existing_hook_unless_forced(repo: Repo) -> None:
    hook = repo.root / ".git" / "hooks" / "pre-commit"
    hook.parent.mkdir(parents=True, exist_ok=True)
    hook.write_text("#!/bin/sh\necho mine\n")
    refused = run_cli(repo.root, "hook", "install")
    assert refused.code == 2 and "--force" in refused.err
    assert hook.read_text() == "#!/bin/sh\necho mine\n"
    assert run_cli(repo.root, "hook", "install", "--force").code == 0
    assert "phiwarden" in hook.read_text()
    assert (hook.parent / "pre-commit.phiwarden-backup").read_text() == "#!/bin/sh\necho mine\n"
    assert run_cli(repo.root, "hook", "install").code == 0  # reinstalling our own hook is fine
    assert run_cli(repo.root, "hook", "uninstall").code == 0
    assert hook.read_text() == "#!/bin/sh\necho mine\n"


def test_hook_run_scans_named_files_without_staged_changes_whole(repo: Repo) -> None:
    repo.write("old.py", SSN_LINE)
    repo.commit("committed before phiwarden")
    # `pre-commit run --all-files` passes files with no staged change: they are scanned whole.
    result = run_cli(repo.root, "hook", "run", "old.py")
    assert result.code == 1 and "old.py:1" in result.out


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_published_manifest_with_the_pre_commit_framework(tmp_path: Path) -> None:
    """`.pre-commit-hooks.yaml` as teams use it: a repo: URL at a commit, installed by pre-commit."""
    framework = Path(sys.executable).parent / "pre-commit"
    if not framework.exists():
        pytest.skip("pre-commit is not installed (pip install -e '.[dev]')")
    # This repository as the hook repository, at a commit (the working copy of the package files).
    hooks = make_repo(tmp_path / "hooks")
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        shutil.copy(MAIN / name, hooks.root / name)
    shutil.copytree(MAIN / "src", hooks.root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    rev = hooks.commit("hooks")
    project = make_repo(tmp_path / "project")
    project.write(
        ".pre-commit-config.yaml",
        f"repos:\n-   repo: file://{hooks.root}\n    rev: {rev}\n    hooks:\n    -   id: phiwarden\n",
    )
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache")}
    subprocess.run([str(framework), "install"], cwd=project.root, check=True, env=env, capture_output=True)
    project.write("fixtures/patient.py", "# fixture\n" + SSN_LINE)
    project.git("add", ".")
    blocked = subprocess.run(
        ["git", "commit", "-m", "phi"], cwd=project.root, capture_output=True, text=True, env=env, check=False
    )
    assert blocked.returncode != 0, blocked.stdout + blocked.stderr
    assert "commit blocked" in blocked.stdout + blocked.stderr
    assert SSN_VALUE not in blocked.stdout + blocked.stderr
    project.write("fixtures/patient.py", "# fixture\nssn = None\n")
    project.git("add", ".")
    clean = subprocess.run(
        ["git", "commit", "-m", "clean"],
        cwd=project.root,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "Passed" in clean.stdout + clean.stderr
