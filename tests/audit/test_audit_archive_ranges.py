"""Archives as a whole: gaps and overlaps between files, the store's prune records as the list of
what must be there, a prune interrupted before a larger one, and read commands on a pruned log."""

from __future__ import annotations

import io
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from phiwarden.audit import AuditLog, Classification, retention
from phiwarden.audit.archive import archive_files, archive_name, verify_archives
from phiwarden.audit.log import open_store, public_key, store_url
from phiwarden.audit.retention import RetentionError
from phiwarden.cli import main
from phiwarden.policy.audit import AuditSettings, SinkSettings

from .conftest import make_event
from .test_audit_archive import _pci, _prune

SSN = "518-42-7731"


def _policy(pci: AuditSettings, directory: Path) -> Path:
    policy = directory / "phiwarden.toml"
    policy.write_text(
        f'[audit]\nstore = "{pci.store}"\nwitnesses = []\nretention_days = 365\nonline_days = 90\n'
        f'archive_dir = "{pci.archive_dir}"\n',
        encoding="utf-8",
    )
    return policy


def _append(settings: AuditSettings, count: int, start: int, *, ssn_at: int | None = None) -> None:
    with AuditLog.open(settings) as log:
        digest = log.hash_value(SSN)
        log.append_batch(
            [
                make_event(i, classification=Classification("restricted", {"ssn": 1}, {"ssn": (digest,)}))
                if i == ssn_at
                else make_event(i)
                for i in range(start, start + count)
            ]
        )


@pytest.fixture
def three(settings: AuditSettings, tmp_path: Path) -> tuple[AuditSettings, Path]:
    """Events 1..30 archived in three files (1..10, 11..20, 21..30; the SSN in event 15), 31..35 in
    the store; (the PCI settings, the policy file saying so)."""
    pci = _pci(settings, tmp_path / "archive")
    for start in (0, 10, 20):
        _append(settings, 10, start, ssn_at=14)
        _prune(pci, 100)
    _append(settings, 5, 30)
    assert [p.name[-31:] for p in archive_files(tmp_path / "archive")] == [
        f"{first:012d}-{last:012d}.jsonl" for first, last in ((1, 10), (11, 20), (21, 30))
    ]
    return pci, _policy(pci, tmp_path)


def _without(archive: Path, tmp_path: Path, index: int) -> Path:
    copy = tmp_path / f"without-{index}"
    shutil.copytree(archive, copy)
    archive_files(copy)[index].unlink()
    return copy


def _verify_archive(*args: str) -> int:
    return main(["audit", "verify-archive", *args])


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (0, "events 1..10 were archived when they were pruned (the store's signed prune record says so)"),
        (1, "events 11..20 are missing: no archive file or signed expiry record holds them between"),
        (2, "events 21..30 were archived when they were pruned"),
    ],
    ids=["first", "middle", "last"],
)
def test_a_deleted_archive_file_fails_against_the_store(
    three: tuple[AuditSettings, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    index: int,
    message: str,
) -> None:
    _, policy = three
    assert _verify_archive(str(tmp_path / "archive"), "--policy", str(policy)) == 0
    assert "OK: 3 archive file(s), 30 events verified (sequence 1..30)" in capsys.readouterr().out
    assert _verify_archive(str(_without(tmp_path / "archive", tmp_path, index)), "--policy", str(policy)) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAILED") and message in out and out.count("\n  ") == 1


def test_offline_a_gap_between_files_fails_and_an_open_start_is_a_warning(
    three: tuple[AuditSettings, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pci, _ = three
    pub = tmp_path / "audit.pub"
    pub.write_bytes(public_key(pci).pem())
    elsewhere = tmp_path / "auditor"
    elsewhere.mkdir()
    (elsewhere / ".git").mkdir()  # where the search for a policy stops
    monkeypatch.chdir(elsewhere)
    archive = tmp_path / "archive"
    assert _verify_archive(str(_without(archive, tmp_path, 1)), "--public-key", str(pub)) == 1
    assert "events 11..20 are missing" in capsys.readouterr().out
    assert _verify_archive(str(_without(archive, tmp_path, 0)), "--public-key", str(pub)) == 0
    out = capsys.readouterr().out
    assert "checked on their own (the range before them, up to 10, is not among the files given)" in out
    assert "note: not compared with the store's prune records: no policy found here" in out
    # Only some files given: what the store archived and is not among them is a warning.
    middle = archive_files(archive)[1]
    assert _verify_archive(str(middle), "--public-key", str(pub), "--store", str(pci.store)) == 0
    out = capsys.readouterr().out
    assert "warning: events 1..10 were archived when they were pruned" in out
    assert "warning: events 21..30 were archived" in out


def test_a_file_that_fails_is_not_called_missing(
    three: tuple[AuditSettings, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, policy = three
    middle = archive_files(tmp_path / "archive")[1]
    lines = middle.read_text().splitlines()
    del lines[4]
    middle.write_text("\n".join(lines) + "\n")
    assert _verify_archive(str(tmp_path / "archive"), "--policy", str(policy)) == 1
    out = capsys.readouterr().out
    assert "event 15 where 14 belongs" in out
    assert f"events 21..30 checked on their own (the file before them, {middle.name}, failed)" in out
    assert "not among the files given" not in out and "missing" not in out


def test_a_renamed_file_fails(three: tuple[AuditSettings, Path], tmp_path: Path) -> None:
    pci, _ = three
    first = archive_files(tmp_path / "archive")[0]
    renamed = first.with_name(first.name.replace("000000000010.jsonl", "000000000011.jsonl"))
    first.rename(renamed)
    report = verify_archives([renamed], public_key(pci))
    assert report.problems == [f"{renamed}: its name says events 1..11, it holds 1..10"]


class _Killed(Exception):
    """A prune that stopped between writing its archive and changing the store."""


def _prune_killed_after_the_archive(pci: AuditSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    write: Callable[..., None] = retention._archive

    def crash(*args: object) -> None:
        write(*args)
        raise _Killed

    with monkeypatch.context() as patched:
        patched.setattr(retention, "_archive", crash)
        with pytest.raises(_Killed):
            _prune(pci, 100)


def test_an_interrupted_prune_is_finished_before_a_larger_one(
    settings: AuditSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The review's case: killed after writing 1..20; the re-run has 1..30 due."""
    pci = _pci(settings, tmp_path / "archive")
    policy = _policy(pci, tmp_path)
    _append(settings, 20, 0)
    _prune_killed_after_the_archive(pci, monkeypatch)
    [crashed] = archive_files(tmp_path / "archive")
    written = crashed.read_bytes()
    _append(settings, 10, 20)
    assert _verify_archive(str(tmp_path / "archive"), "--policy", str(policy)) == 0
    out = capsys.readouterr().out
    assert "events 1..20 are still in the store: a prune was interrupted after writing this archive" in out

    result = _prune(pci, 100, dry_run=True)
    assert (result.finished.first, result.finished.last) == (1, 20)  # type: ignore[attr-defined]
    assert (result.plan.first, result.plan.last) == (21, 30)  # type: ignore[attr-defined]
    later = time.time() + 100 * 86_400
    with monkeypatch.context() as patched:
        patched.setattr(time, "time", lambda: later)
        assert main(["audit", "prune", "--policy", str(policy)]) == 0
    assert capsys.readouterr().out == (
        "finished a prune interrupted after writing its archive: removed events 1..20 (20; the archive "
        f"in {tmp_path / 'archive'} kept as written)\n"
        f"removed events 21..30 (10; archived after 90 days, archived to {tmp_path / 'archive'})\n"
    )
    first, second = archive_files(tmp_path / "archive")
    assert first == crashed and first.read_bytes() == written
    assert second.name == archive_name(second.name[16:52], 21, 30)
    assert _verify_archive(str(tmp_path / "archive"), "--policy", str(policy)) == 0
    out = capsys.readouterr().out
    assert "OK: 2 archive file(s), 30 events verified (sequence 1..30)" in out and "warning" not in out
    assert "every range the store archived is there" in out


def test_an_archive_left_beside_a_larger_one_overlaps(
    settings: AuditSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What the re-run did before it finished interrupted prunes: 1..20 orphaned beside 1..30."""
    pci = _pci(settings, tmp_path / "archive")
    policy = _policy(pci, tmp_path)
    _append(settings, 20, 0)
    _prune_killed_after_the_archive(pci, monkeypatch)
    [crashed] = archive_files(tmp_path / "archive")
    aside = crashed.rename(tmp_path / crashed.name)
    _append(settings, 10, 20)
    _prune(pci, 100)
    aside.rename(crashed)
    assert _verify_archive(str(tmp_path / "archive"), "--policy", str(policy)) == 1
    out = capsys.readouterr().out
    assert "events 1..30 overlap" in out and "search and lookup --archive list them twice" in out
    assert f"{crashed}: events 1..20 are no range the store pruned (its prune records end at 30)" in out


def test_interrupted_archives_that_cannot_be_finished_are_refused_by_name(
    settings: AuditSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "archive"
    for start in (0, 10, 20):
        _append(settings, 10, start)  # checkpoints at 10, 20, 30
    store = open_store(store_url(settings))
    try:
        log_id = store.log_id
        store.set_cursor("siem", 20)
    finally:
        store.close()
    # A sink has 1..20: a prune killed before it was configured wrote 1..30.
    pci = _pci(settings, archive)
    _prune_killed_after_the_archive(pci, monkeypatch)
    [crashed] = archive_files(archive)
    behind = _pci(settings, archive, sinks=(SinkSettings(name="siem", url=f"file://{tmp_path / 's'}"),))
    with pytest.raises(
        RetentionError, match=r"holds events 1\.\.30, left by an interrupted prune, but only 1\.\.20"
    ):
        _prune(behind, 100)
    crashed.unlink()
    (archive / archive_name(log_id, 1, 15)).write_text("{}\n")
    with pytest.raises(RetentionError, match=r"the store has no checkpoint at 15") as info:
        _prune(pci, 100)
    assert archive_name(log_id, 1, 15) in str(info.value)
    (archive / archive_name(log_id, 1, 10)).write_text("{}\n")
    with pytest.raises(RetentionError, match=r"more than one archive holds events from 1 on"):
        _prune(pci, 100)


def test_lookup_and_search_say_what_was_pruned_and_where_it_is(
    three: tuple[AuditSettings, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pci, policy = three
    archive = tmp_path / "archive"
    monkeypatch.setattr("sys.stdin", io.StringIO(SSN))
    assert main(["audit", "lookup", "--value", "-", "--policy", str(policy)]) == 1
    out, err = capsys.readouterr()
    assert out == "not recorded in events 31..35, the events the store holds\n"
    assert err == (
        f"phiwarden audit: events 1..30 were pruned from the store, so not searched: 1..30 are in "
        f"archive files in {archive} (search them with --archive {archive})\n"
    )
    monkeypatch.setattr("sys.stdin", io.StringIO(SSN))
    assert main(["audit", "lookup", "--value", "-", "--policy", str(policy), "--format", "json"]) == 1
    found = json.loads(capsys.readouterr().out)
    assert found["found"] is False
    assert found["pruned"] == [{"first": 1, "last": 30, "where": "archived", "archive_dir": str(archive)}]
    monkeypatch.setattr("sys.stdin", io.StringIO(SSN))
    assert main(["audit", "lookup", "--value", "-", "--policy", str(policy), "--archive", str(archive)]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["#15"]

    assert main(["audit", "search", "--policy", str(policy), "--action", "route"]) == 1
    out, err = capsys.readouterr()
    assert out == "no events found\n" and "events 1..30 were pruned from the store" in err

    # The middle file deleted past retention, the last one lost: each range says so.
    middle, last = archive_files(archive)[1:]
    pub = public_key(pci)
    assert verify_archives([middle], pub).ok
    middle.unlink()
    (archive / middle.name.replace(".jsonl", ".expired.json")).write_text("{}")
    last.unlink()
    assert main(["audit", "search", "--policy", str(policy), "--actor", "dev1@example.org"]) == 0
    err = capsys.readouterr().err
    assert err == (
        f"phiwarden audit: events 1..30 were pruned from the store, so not searched: 1..10 are in "
        f"archive files in {archive}; 11..20 were archived, then deleted past retention_days (signed "
        f"records in {archive} say so); 21..30 were archived, but {archive} does not hold their files "
        f"(search them with --archive {archive})\n"
    )
    monkeypatch.setattr("sys.stdin", io.StringIO(SSN))
    assert main(["audit", "lookup", "--value", "-", "--policy", str(policy), "--archive", str(archive)]) == 1
    out, err = capsys.readouterr()
    assert out == "not recorded in the archive files\n"
    assert "events 11..20 were deleted past retention_days (signed records in" in err


def test_a_log_pruned_whole_verifies_without_a_backwards_range(
    settings: AuditSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pci = _pci(settings, tmp_path / "archive")
    _append(settings, 20, 0)
    _prune(pci, 100)
    policy = tmp_path / "plain.toml"
    policy.write_text(
        f'[audit]\nstore = "{pci.store}"\nwitnesses = {json.dumps(list(pci.witnesses or ()))}\n'
    )
    assert main(["audit", "verify", "--policy", str(policy)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "OK: the store holds no events, 20 pruned under signed records, 0 checkpoint(s) matched; "
    )
    assert "1 read from witnesses or given (those of pruned events included)" in out
    assert "1..20" not in out.splitlines()[0] and "21..20" not in out


def test_a_range_pruned_without_an_archive_needs_no_file(
    settings: AuditSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _append(settings, 10, 0)
    # No archive_dir yet: 1..10 deleted past retention_days.
    _prune(AuditSettings(store=settings.store, witnesses=settings.witnesses, retention_days=365), 400)
    pci = _pci(settings, tmp_path / "archive")
    _append(settings, 10, 10)
    _prune(pci, 100)
    assert _verify_archive(str(tmp_path / "archive"), "--policy", str(_policy(pci, tmp_path))) == 0
    out = capsys.readouterr().out
    assert "OK: 1 archive file(s), 10 events verified (sequence 11..20)" in out
    assert "every range the store archived is there" in out and "checked on their own" in out


def test_archives_of_another_log_are_not_held_to_this_store(
    three: tuple[AuditSettings, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pci, _ = three
    other = AuditSettings(store=f"sqlite:///{tmp_path / 'other' / 'audit.db'}", witnesses=())
    _append(other, 3, 0)
    pub = tmp_path / "audit.pub"
    pub.write_bytes(public_key(pci).pem())
    args = [str(tmp_path / "archive"), "--public-key", str(pub), "--store", str(other.store)]
    assert _verify_archive(*args) == 0
    out = capsys.readouterr().out
    assert "note: not compared with the store's prune records: the files are of log" in out


def test_a_range_pruned_without_an_archive_between_two_archives_is_no_gap(
    settings: AuditSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pci = _pci(settings, tmp_path / "archive")
    policy = _policy(pci, tmp_path)
    _append(settings, 10, 0)
    _prune(pci, 100)
    _append(settings, 10, 10)
    # archive_dir off for a while: 11..20 deleted past retention_days.
    _prune(AuditSettings(store=settings.store, witnesses=settings.witnesses, retention_days=365), 400)
    _append(settings, 10, 20)
    _prune(pci, 100)
    assert _verify_archive(str(tmp_path / "archive"), "--public-key", str(_public(pci, tmp_path))) == 1
    assert "events 11..20 are missing" in capsys.readouterr().out
    assert _verify_archive(str(tmp_path / "archive"), "--policy", str(policy)) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: 2 archive file(s), 20 events verified") and "missing" not in out


def _public(pci: AuditSettings, directory: Path) -> Path:
    pub = directory / "audit.pub"
    pub.write_bytes(public_key(pci).pem())
    return pub


def test_events_deleted_without_an_archive_are_not_called_archived() -> None:
    from phiwarden.audit.archive import PrunedRange
    from phiwarden.cli.audit import _pruned_text

    assert _pruned_text([PrunedRange(1, 30, "deleted", None)]) == (
        "events 1..30 were pruned from the store, so not searched: 1..30 were deleted past "
        "retention_days without an archive"
    )
    assert _pruned_text([PrunedRange(1, 30, "missing", None)]).endswith(
        "1..30 were archived (no archive_dir is configured here)"
    )
