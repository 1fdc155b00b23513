"""Search, stats, lookup, prove and check-proof: exact filters, the newest matches first, and one-line
errors with exit 2 for bad times, names, files and keys."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import pytest

from phiwarden.audit import AuditLog, Classification, Endpoint
from phiwarden.audit.log import open_store, store_url
from phiwarden.audit.search import Filter, FilterError
from phiwarden.cli import main
from phiwarden.policy import parse_policy
from phiwarden.policy.audit import AuditSettings

from .conftest import make_event

SSN = "518-42-7731"


def _events() -> list:  # type: ignore[type-arg]
    events = [make_event(i) for i in range(12)]
    events[3] = make_event(3, classification=Classification("restricted", {"mrn_id": 1}))
    events[4] = make_event(4, classification=Classification("restricted", {"mrnxid": 1}))
    events[5] = make_event(5, dst_endpoint=Endpoint(hostname="api.openai.com"))
    return events


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "phiwarden.toml"
    path.write_text('[audit]\nstore = "audit/audit.db"\nwitnesses = []\ncheckpoint_every = 4\n')
    settings = parse_policy(path.read_text(), source=str(path)).audit
    with AuditLog.open(settings) as log:
        digest = log.hash_value(SSN)
        log.append_batch(_events())
        log.append(
            make_event(12, classification=Classification("restricted", {"ssn": 1}, {"ssn": (digest,)}))
        )
    return path


def run(policy: Path, *args: str) -> int:
    return main(["audit", *args, "--policy", str(policy)])


def _seqs(out: str) -> list[int]:
    return [event["metadata"]["sequence"] for event in json.loads(out)]


def test_filters_select_exactly_in_both_stores(settings: AuditSettings) -> None:
    with AuditLog.open(settings) as log:
        log.append_batch(_events())
    store = open_store(store_url(settings))
    try:
        assert [r.seq for r in store.search(Filter(category="mrn_id"))] == [4]
        assert [r.seq for r in store.search(Filter(destination="api.openai.com"))] == [6]
        assert [r.seq for r in store.search(Filter(destination="openai-zdr", limit=2))] == [10, 12]
        assert [r.seq for r in store.search(Filter(limit=3))] == [10, 11, 12]
        assert [r.seq for r in store.search(Filter(actor="dev1@example.org", limit=50))] == [2, 5, 8, 11]
        assert store.stats(Filter(action="block", limit=1).unlimited)["events"] == 4
    finally:
        store.close()


@pytest.mark.parametrize("name", ["SSN", "900-12-3456", "%", "ssn,"])
def test_a_category_filter_takes_category_names_only(name: str) -> None:
    with pytest.raises(FilterError) as info:
        Filter(category=name)
    assert name not in str(info.value).split(";")[-1]


def test_search_shows_the_newest_matches_and_says_when_it_cut(
    policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(policy, "search", "--limit", "3", "--format", "json") == 0
    out, err = capsys.readouterr()
    assert _seqs(out) == [11, 12, 13]
    assert "showing the newest 3 of 13 matches; --limit to see more" in err
    assert run(policy, "search", "--action", "block", "--format", "json") == 0
    out, err = capsys.readouterr()
    assert _seqs(out) == [3, 6, 9, 12] and err == ""


def test_destination_and_category_filters(policy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(policy, "search", "--destination", "api.openai.com", "--format", "json") == 0
    assert _seqs(capsys.readouterr().out) == [6]  # no name: matched by its host
    assert run(policy, "search", "--destination", "api.anthropic.com") == 1
    assert "its host only when it has no name" in capsys.readouterr().out
    assert run(policy, "search", "--category", "mrn_id", "--format", "json") == 0
    assert _seqs(capsys.readouterr().out) == [4]  # not mrnxid: "_" is no wildcard
    assert run(policy, "search", "--category", "s_n") == 1
    assert run(policy, "search", "--category", "900-12-3456") == 2
    err = capsys.readouterr().err
    assert "--category takes a category name" in err and "900-12-3456" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "--since", "99999999999d"], "argument --since: out of range"),
        (["stats", "--since", "1000000d"], "argument --since: out of range"),
        (["search", "--until", "9" * 5000 + "d"], "argument --until: not a time"),
        (["stats", "--until", "yesterday"], "argument --until: not a time"),
    ],
)
def test_times_that_overflow_or_do_not_parse_are_usage_errors(
    policy: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as info:
        run(policy, *args)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_stats_with_no_match_says_so(policy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(policy, "stats", "--actor", "nobody@example.org") == 1
    assert capsys.readouterr().out.strip() == "no events match"
    assert run(policy, "stats", "--tool", "Cursor") == 0
    assert "events: 6 (sequence 2..12)" in capsys.readouterr().out


def test_prove_a_sequence_that_does_not_exist(policy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(policy, "prove", "999") == 1
    assert "no event 999: the log holds events 1..13" in capsys.readouterr().err


def test_missing_files_and_directories_are_one_line_errors(
    policy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pub = tmp_path / "audit.pub"
    assert run(policy, "public-key", "-o", str(pub)) == 0
    cases = [
        (["prove", "7", "-o", str(tmp_path / "no" / "dir" / "proof.json")], "cannot write"),
        (["public-key", "-o", str(tmp_path / "no" / "dir" / "audit.pub")], "cannot write"),
        (["check-proof", str(tmp_path / "missing.json"), "--public-key", str(pub)], "cannot read"),
        (["search", "--archive", str(tmp_path / "no-archive")], "no such archive file or directory"),
    ]
    for args, message in cases:
        assert run(policy, *args) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "internal error" not in err


def test_lookup_under_another_hmac_key_is_refused_not_never_recorded(
    policy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(SSN))
    assert run(policy, "lookup", "--value", "-") == 0
    assert "#13" in capsys.readouterr().out
    monkeypatch.setenv("PHIWARDEN_AUDIT_HMAC_KEY", "ab" * 32)
    monkeypatch.setattr("sys.stdin", io.StringIO(SSN))
    assert run(policy, "lookup", "--value", "-") == 2
    captured = capsys.readouterr()
    assert "never recorded" not in captured.out
    assert "values were hashed with HMAC key" in captured.err and SSN not in captured.err


def test_prune_dry_run_under_legal_hold_reports_and_exits_0(
    policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = policy.read_text().replace("[audit]", "[audit]\nlegal_hold = true\nretention_days = 1")
    policy.write_text(text)
    settings = parse_policy(text, source=str(policy)).audit
    _age(settings)
    assert run(policy, "prune", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "would remove events 1..13" in out and "a legal hold is in force" in out
    assert run(policy, "prune") == 2
    assert "legal hold" in capsys.readouterr().err


def _age(settings: AuditSettings, days: int = 30) -> None:
    """Re-sign the stored checkpoints `days` earlier (what time passing would have done)."""
    from phiwarden.audit.checkpoint import sign
    from phiwarden.audit.log import load_signing_key

    key = load_signing_key(settings, store_url(settings), create=False)
    store = open_store(store_url(settings))
    try:
        aged = [
            sign(replace(c.statement, time_ms=c.statement.time_ms - days * 86_400_000), key)
            for c in store.checkpoints()
        ]
        with store._write() as cur:
            cur.execute("DELETE FROM audit_checkpoints")
        for signed in aged:
            store.add_checkpoint(signed)
    finally:
        store.close()
