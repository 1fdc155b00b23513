"""`phiwarden audit …` end to end, the `[audit]` policy section, and scan recording."""

from __future__ import annotations

import io
import json
import signal
import sqlite3
from pathlib import Path

import pytest

from phiwarden.audit import AuditLog, Classification, record_scan_run
from phiwarden.cli import main
from phiwarden.policy import PolicyError, parse_policy

from .conftest import make_event

SSN = "123-45-6789"


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "phiwarden.toml"
    path.write_text(
        f"""
policy_id = "acme"
revision = "3"

[audit]
store = "audit/audit.db"
witnesses = ["file://{(tmp_path / "worm" / "witness.jsonl").as_posix()}"]
checkpoint_every = 4
record_scans = true

[[audit.sink]]
name = "archive"
url = "file://siem/events.jsonl"
format = "jsonl"
""",
        encoding="utf-8",
    )
    settings = parse_policy(path.read_text(), source=str(path)).audit
    with AuditLog.open(settings) as log:
        digest = log.hash_value(SSN)
        events = [make_event(i) for i in range(9)]
        events.append(
            make_event(9, classification=Classification("restricted", {"ssn": 1}, {"ssn": (digest,)}))
        )
        log.append_batch(events)
    return path


def run(policy: Path, *args: str) -> int:
    return main(["audit", *args, "--policy", str(policy)])


def test_verify_ok_then_fails_after_tampering(policy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(policy, "verify") == 0
    assert "OK: 10 events verified" in capsys.readouterr().out
    conn = sqlite3.connect(policy.parent / "audit" / "audit.db")
    conn.execute("DELETE FROM audit_events WHERE seq = 4")
    conn.commit()
    conn.close()
    assert run(policy, "verify", "--format", "json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["first_bad_sequence"] == 4 and not report["ok"]


def test_prove_and_check_proof_offline(
    policy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proof, pub = tmp_path / "proof.json", tmp_path / "audit.pub"
    assert run(policy, "prove", "7", "-o", str(proof)) == 0
    assert run(policy, "public-key", "-o", str(pub)) == 0
    assert main(["audit", "check-proof", str(proof), "--public-key", str(pub)]) == 0
    assert "event 7 is included" in capsys.readouterr().out
    data = json.loads(proof.read_text())
    data["record"] = data["record"].replace('"tier":"restricted"', '"tier":"public"')
    proof.write_text(json.dumps(data))
    assert main(["audit", "check-proof", str(proof), "--public-key", str(pub)]) == 1


def test_search_and_stats(policy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(policy, "search", "--tool", "Cursor", "--action", "block", "--format", "json") == 0
    found = json.loads(capsys.readouterr().out)
    assert [e["metadata"]["sequence"] for e in found] == [6]
    assert (
        run(policy, "search", "--category", "ssn", "--since", "2025-03-01T00:04:00Z", "--format", "json") == 0
    )
    assert {e["metadata"]["sequence"] for e in json.loads(capsys.readouterr().out)} == {6, 8, 10}
    assert run(policy, "search", "--actor", "nobody@example.org") == 1
    capsys.readouterr()
    assert run(policy, "stats", "--format", "json") == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["events"] == 10 and stats["by_action"] == {"allow": 4, "mask": 3, "block": 3}
    assert stats["values_by_category"] == {"name": 8, "ssn": 5}


def test_lookup_reads_the_value_from_stdin_only(
    policy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("123 45 6789\n"))
    assert run(policy, "lookup", "--value", "-", "--format", "json") == 0
    out = capsys.readouterr().out
    assert json.loads(out)["sequences"] == [10] and SSN not in out
    monkeypatch.setattr("sys.stdin", io.StringIO("987-65-4321"))
    assert run(policy, "lookup", "--value", "-") == 1
    assert run(policy, "lookup", "--value", SSN) == 2
    assert "stdin" in capsys.readouterr().err


def test_export_and_forward_to_a_file_sink(
    policy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out.cef"
    assert run(policy, "export", "--format", "cef", "--from-seq", "3", "-o", str(target)) == 0
    assert len(target.read_text().splitlines()) == 8
    handler = signal.getsignal(signal.SIGTERM)
    assert run(policy, "forward", "--once") == 0
    assert signal.getsignal(signal.SIGTERM) is handler  # forwarding's own handler is not left behind
    forwarded = (policy.parent / "siem" / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["sequence"] for line in forwarded] == list(range(1, 11))
    assert run(policy, "forward", "--once") == 0  # nothing new: nothing resent
    assert len((policy.parent / "siem" / "events.jsonl").read_text().splitlines()) == 10
    assert SSN not in "".join(forwarded)


def test_prune_respects_legal_hold(policy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(policy, "prune", "--dry-run") == 0
    assert "nothing to prune" in capsys.readouterr().out
    policy.write_text(
        policy.read_text().replace("record_scans = true", "record_scans = true\nlegal_hold = true")
    )
    assert run(policy, "prune") == 2
    assert "legal hold" in capsys.readouterr().err


def test_checkpoint_command_and_missing_key(
    policy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(policy, "checkpoint", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["statement"]["tree_size"] == 10
    assert main(["audit", "verify", "--policy", str(policy), "--public-key", str(tmp_path / "none.pub")]) == 2


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("[audit]\nretension_days = 3\n", 2, "did you mean 'retention_days'"),
        ('[audit]\nwitnesses = ["ftp://x"]\n', 2, "a witness is a URL"),
        ('[audit]\n\n[[audit.sink]]\nname = "s"\nurl = "https://splunk:8088"\n', 5, "token_env"),
        ("[audit]\nretention_days = 365\nonline_days = 90\n", 3, "archive_dir"),
    ],
)
def test_policy_errors_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(PolicyError, match=message) as info:
        parse_policy(text)
    assert info.value.line == line


def test_record_scan_run(policy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_ACTOR", "ci-bot")
    monkeypatch.setenv("GITHUB_RUN_ID", "4242")
    loaded = parse_policy(policy.read_text(), source=str(policy))
    summary = {"findings": 3, "files_scanned": 20, "files_with_findings": 2, "by_category": {"ssn": 3},
               "tiers": {"restricted": 1, "internal": 0, "public": 19}, "seconds": 1.25, "root": "repo"}  # fmt: skip
    record_scan_run(loaded, summary)
    with AuditLog.open(loaded.audit) as log:
        stored = log.store.record(11)
    assert stored is not None
    event = json.loads(stored.record)["event"]
    assert event["actor"]["user"]["uid"] == "ci-bot" and event["metadata"]["correlation_uid"] == "4242"
    assert event["unmapped"]["phiwarden"]["action"] == "block" and event["duration"] == 1250
    off = parse_policy(policy.read_text().replace("record_scans = true", ""), source=str(policy))
    record_scan_run(off, summary)
    with AuditLog.open(off.audit) as log:
        assert log.store.head().size == 11


def test_a_cursor_past_the_log_is_refused_reported_and_reset(
    policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An edited cursor would silence the SIEM and let prune remove what it never got."""
    conn = sqlite3.connect(policy.parent / "audit" / "audit.db")
    conn.execute("INSERT INTO audit_cursors (name, seq) VALUES ('archive', 1000000)")
    conn.commit()
    conn.close()
    capsys.readouterr()
    assert run(policy, "forward", "--once") == 2
    err = capsys.readouterr().err
    assert "cursor is at event 1000000, past the log's newest event 10" in err
    assert "--reset-cursor" in err
    assert not (policy.parent / "siem" / "events.jsonl").exists()
    assert run(policy, "prune", "--dry-run") == 2
    assert "past the log's newest event" in capsys.readouterr().err
    assert run(policy, "verify", "--format", "json") == 1
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert [p["kind"] for p in problems] == ["cursor"]
    assert run(policy, "forward", "--reset-cursor", "4") == 2  # which sink?
    assert "exactly one --sink" in capsys.readouterr().err
    assert run(policy, "forward", "--sink", "archive", "--reset-cursor", "11") == 2
    assert "numbered up to 10" in capsys.readouterr().err
    assert run(policy, "forward", "--sink", "archive", "--reset-cursor", "4") == 0
    assert run(policy, "forward", "--once") == 0
    forwarded = (policy.parent / "siem" / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["sequence"] for line in forwarded] == list(range(5, 11))
    assert run(policy, "verify") == 0
