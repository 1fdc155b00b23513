"""`phiwarden scan` as users run it: exit codes, formats, stdin, errors, baselines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from phiwarden.cli import main

PHI = '{"mrn": "MRN-40981723", "first_name": "Marisol", "ssn": "518-42-7731"}\n'


def phiwarden(
    *args: str, stdin: bytes | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run the installed command in a fresh process, as a user or a CI job would."""
    return subprocess.run(
        [sys.executable, "-m", "phiwarden", *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("def f():\n    return 1\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "fixture.json").write_text(PHI)
    return tmp_path


def test_exit_codes(repo: Path) -> None:
    assert phiwarden("scan", str(repo / "src")).returncode == 0
    result = phiwarden("scan", str(repo))
    assert result.returncode == 1
    assert b"tests/fixture.json" in result.stdout
    assert b"518-42-7731" not in result.stdout + result.stderr
    assert phiwarden("scan", str(repo), "--format", "xml").returncode == 2
    assert phiwarden("scan", str(repo), "--min-confidence", "7").returncode == 2


def test_stdin_with_a_display_name() -> None:
    result = phiwarden("scan", "-", "--stdin-filename", "paste.json", "--format", "json", stdin=PHI.encode())
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert {f["path"] for f in document["findings"]} == {"paste.json"}
    assert [PHI[f["start"] : f["end"]] for f in document["findings"]] == [
        "MRN-40981723",
        "Marisol",
        "518-42-7731",
    ]


def test_min_confidence_threshold(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(repo), "-q", "--min-confidence", "1.0"]) == 0
    assert "0 finding(s)" in capsys.readouterr().out


def test_formats_and_output_file(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.sarif"
    assert main(["scan", str(repo), "-q", "--format", "sarif", "-o", str(out)]) == 1
    document = json.loads(out.read_text())
    assert document["version"] == "2.1.0"
    assert main(["scan", str(repo), "-q", "--format", "json", "-o", str(tmp_path / "r.json")]) == 1
    assert json.loads((tmp_path / "r.json").read_text())["summary"]["findings"] == 3


def test_policy_errors_exit_2_with_the_line(repo: Path) -> None:
    (repo / "phiwarden.toml").write_text("version = 1\n\n[scan]\nexclud = ['x']\n")
    result = phiwarden("scan", str(repo))
    assert result.returncode == 2
    assert b"phiwarden.toml:4: scan.exclud: unknown key; did you mean 'exclude'?" in result.stderr


def test_policy_found_in_the_scanned_repository(repo: Path) -> None:
    (repo / "phiwarden.toml").write_text('[scan]\nallow_paths = ["tests/**"]\n')
    assert phiwarden("scan", str(repo)).returncode == 0


def test_baseline_adoption_flow(repo: Path, tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    assert main(["scan", str(repo), "-q", "--baseline", str(baseline), "--update-baseline"]) == 0
    assert main(["scan", str(repo), "-q", "--baseline", str(baseline)]) == 0
    (repo / "src" / "new.py").write_text('patient_ssn = "402-11-9876"\n')
    assert main(["scan", str(repo), "-q", "--baseline", str(baseline)]) == 1
    assert main(["scan", str(repo), "-q", "--update-baseline"]) == 2


def test_include_exclude_and_jobs(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(repo), "-q", "--exclude", "tests/"]) == 0
    assert main(["scan", str(repo), "-q", "--include", "*.json", "-j", "2"]) == 1
    assert "1 of 1 file(s)" in capsys.readouterr().out


def test_progress_is_not_written_when_stderr_is_not_a_terminal(repo: Path) -> None:
    result = phiwarden("scan", str(repo))
    assert b"scanning" not in result.stderr


def test_help_explains_the_command() -> None:
    result = phiwarden("scan", "--help")
    assert result.returncode == 0
    for text in (b"Exit status", b"--format", b"--baseline", b"--min-confidence", b"examples:"):
        assert text in result.stdout
    assert phiwarden("--help").returncode == 0
    assert phiwarden().returncode == 2


def test_missing_path_is_reported_not_fatal(tmp_path: Path) -> None:
    result = phiwarden("scan", str(tmp_path / "nope.txt"), "--format", "json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["skipped"][0]["reason"] == "no such file or directory"


def test_scan_runs_are_recorded_when_the_policy_asks(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from phiwarden.audit import AuditLog
    from phiwarden.policy import load_policy

    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    (repo / "phiwarden.toml").write_text(
        f'[audit]\nstore = "{(tmp_path / "audit.db").as_posix()}"\nrecord_scans = true\n'
    )
    assert main(["scan", str(repo), "-q", "-o", str(tmp_path / "out.txt")]) == 1
    with AuditLog.open(load_policy(repo / "phiwarden.toml").audit) as log:
        assert log.store.head().size == 1
    # An audit trail that cannot be written fails the run (exit 2), it never passes silently.
    (repo / "phiwarden.toml").write_text(
        '[audit]\nstore = "postgresql://nobody@127.0.0.1:1/none"\nrecord_scans = true\n'
    )
    assert main(["scan", str(repo), "-q", "-o", str(tmp_path / "out.txt")]) == 2


def test_a_crash_is_not_reported_as_findings(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import phiwarden.scan.runner

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(phiwarden.scan.runner, "run", broken)
    monkeypatch.delenv("PHIWARDEN_DEBUG", raising=False)
    assert main(["scan", str(repo), "-q"]) == 2
    assert "internal error (RuntimeError)" in capsys.readouterr().err
