"""Real git repositories in temporary directories, and the phiwarden CLI run in-process."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from phiwarden.cli import main

# Synthetic values the detector reports (never real people).
SSN_LINE = 'ssn = "512-44-8391"\n'
MRN_LINE = 'patient_mrn = "MRN-00482913"\n'
SSN_VALUE = "512-44-8391"
MRN_VALUE = "MRN-00482913"


@dataclass
class Repo:
    root: Path

    def git(self, *args: str, env: dict[str, str] | None = None) -> str:
        out = subprocess.run(
            ["git", *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, **(env or {})},
        )
        return out.stdout

    def write(self, path: str, text: str | bytes) -> Path:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text, encoding="utf-8")
        return target

    def commit(self, message: str, *paths: str) -> str:
        self.git("add", *(paths or (".",)))
        self.git("commit", "-q", "--no-verify", "-m", message)
        return self.git("rev-parse", "HEAD").strip()


def make_repo(root: Path, *, name: str = "Dev One", email: str = "dev@example.com") -> Repo:
    root.mkdir(parents=True, exist_ok=True)
    repo = Repo(root)
    repo.git("init", "-q", "-b", "main")
    repo.git("config", "user.name", name)
    repo.git("config", "user.email", email)
    repo.git("config", "commit.gpgsign", "false")
    repo.git("config", "protocol.file.allow", "always")
    return repo


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return make_repo(tmp_path / "repo")


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_cli(cwd: Path, *argv: str) -> Result:
    """Run `phiwarden ARGV` in-process with `cwd` as the working directory."""
    out, err = io.StringIO(), io.StringIO()
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
    finally:
        os.chdir(previous)
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli() -> Iterator[object]:
    yield run_cli
