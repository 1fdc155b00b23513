"""PCI-style archives: written atomically, finished after a crash, deleted past retention under a
signed record, verified offline with the public key, and searchable."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from phiwarden.audit import AuditLog, Classification
from phiwarden.audit.archive import archive_files, expired_files, verify_archives
from phiwarden.audit.checkpoint import parse_signed
from phiwarden.audit.keys import SigningKey
from phiwarden.audit.log import load_signing_key, open_store, public_key, store_url, witnesses
from phiwarden.audit.retention import RetentionError, prune
from phiwarden.audit.verify import verify_log
from phiwarden.cli import main
from phiwarden.policy.audit import AuditSettings

from .conftest import fill, make_event

DAY_MS = 86_400_000
SSN = "518-42-7731"


def _pci(settings: AuditSettings, archive: Path, **changes: object) -> AuditSettings:
    values: dict[str, object] = {
        "store": settings.store,
        "witnesses": settings.witnesses,
        "retention_days": 365,
        "online_days": 90,
        "archive_dir": str(archive),
    }
    values.update(changes)
    return AuditSettings(**values)  # type: ignore[arg-type]


def _prune(settings: AuditSettings, days_ahead: int, **options: bool) -> object:
    key = load_signing_key(settings, store_url(settings), create=False)
    store = open_store(store_url(settings))
    try:
        return prune(store, settings, key, now_ms=int(time.time() * 1000) + days_ahead * DAY_MS, **options)
    finally:
        store.close()


def _verify_store(settings: AuditSettings) -> None:
    store = open_store(store_url(settings))
    try:
        report = verify_log(store, public_key(settings), witnesses=witnesses(settings), workers=1)
    finally:
        store.close()
    assert report.ok, report.problems


_CRASHING_PRUNE = textwrap.dedent(
    """
    import os, sys, time
    import phiwarden.audit.retention as retention
    from phiwarden.audit.log import load_signing_key, open_store, store_url
    from phiwarden.policy.audit import AuditSettings

    settings = AuditSettings(store=sys.argv[1], retention_days=365, online_days=90, archive_dir=sys.argv[2],
                             witnesses=())
    write = retention._archive
    def crash(*args, **kwargs):
        write(*args, **kwargs)
        os._exit(137)  # killed between the archive and the store
    retention._archive = crash
    store = open_store(store_url(settings))
    retention.prune(store, settings, load_signing_key(settings, store_url(settings), create=False),
                    now_ms=int(time.time() * 1000) + 100 * 86_400_000)
    """
)


def test_a_prune_killed_after_writing_the_archive_is_finished_by_the_next(
    settings: AuditSettings, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    with AuditLog.open(settings) as log:
        fill(log, 25)
    root = Path(__file__).resolve().parents[2]
    crashed = subprocess.run(
        [sys.executable, "-c", _CRASHING_PRUNE, str(settings.store), str(archive)],
        env={**os.environ, "PYTHONPATH": str(root / "src")},
        cwd=root,
        capture_output=True,
        check=False,
    )
    assert crashed.returncode == 137, crashed.stderr.decode()
    [written] = archive_files(archive)
    before = written.read_bytes()
    assert not list(archive.glob("*.tmp-*"))
    pci = _pci(settings, archive)
    result = _prune(pci, 100)
    assert result.plan is not None and result.removed == 25  # type: ignore[attr-defined]
    assert written.read_bytes() == before  # accepted as it is, its prune record applied
    store = open_store(store_url(pci))
    try:
        assert store.first_sequence() is None and store.prunes()[-1].statement.last_sequence == 25
        assert store.prunes()[-1].to_line().encode() == before.splitlines()[-1]
    finally:
        store.close()
    _verify_store(pci)
    assert verify_archives([written], public_key(pci)).ok


def test_an_archive_that_does_not_match_the_store_is_refused(settings: AuditSettings, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    with AuditLog.open(settings) as log:
        fill(log, 25)
    pci = _pci(settings, archive)
    store = open_store(store_url(pci))
    try:
        log_id = store.log_id
    finally:
        store.close()
    archive.mkdir()
    stale = archive / f"phiwarden-audit-{log_id}-000000000001-000000000025.jsonl"
    stale.write_text('{"not": "an archived event"}\n')
    (archive / f"{stale.name}.tmp-4242").write_text("half")  # what a crash while writing left
    with pytest.raises(RetentionError, match=r"already exists but does not hold events 1\.\.25") as info:
        _prune(pci, 100)
    assert "move it aside" in str(info.value)
    stale.unlink()
    result = _prune(pci, 100)
    assert result.removed == 25  # type: ignore[attr-defined]
    assert not list(archive.glob("*.tmp-*"))


def test_archives_past_retention_are_deleted_under_a_signed_record(
    settings: AuditSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "archive"
    with AuditLog.open(settings) as log:
        fill(log, 25)
    pci = _pci(settings, archive)
    _prune(pci, 100)
    with AuditLog.open(settings) as log:
        fill(log, 15, 100)
    _prune(pci, 200)
    first, second = archive_files(archive)
    assert verify_archives([first, second], public_key(pci)).ok
    held = _pci(settings, archive, legal_hold=True)
    result = _prune(held, 400, dry_run=True)
    assert result.held and [e.archive for e in result.expired] == [first, second]  # type: ignore[attr-defined]
    with pytest.raises(RetentionError, match="legal hold"):
        _prune(held, 400)
    assert first.exists() and second.exists()

    result = _prune(pci, 400)
    assert len(result.expired) == 2  # type: ignore[attr-defined]
    assert not first.exists() and not second.exists()
    [gone_first, gone_second] = expired_files(archive)
    record = parse_signed(gone_first.read_text()).statement
    assert (record.first_sequence, record.last_sequence) == (1, 25)  # type: ignore[union-attr]
    assert "past retention_days = 365" in record.reason and "SHA-256" in record.reason  # type: ignore[union-attr]
    report = verify_archives([], public_key(pci), [gone_first, gone_second])
    assert report.ok and report.expired == 40
    _verify_store(pci)


def test_verify_search_and_lookup_in_archives_offline(
    settings: AuditSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    archive = tmp_path / "archive"
    with AuditLog.open(settings) as log:
        digest = log.hash_value(SSN)
        fill(log, 9)
        log.append(make_event(9, classification=Classification("restricted", {"ssn": 1}, {"ssn": (digest,)})))
        fill(log, 10, 10)
    pci = _pci(settings, archive)
    _prune(pci, 100)
    with AuditLog.open(settings) as log:
        fill(log, 20, 100)
    _prune(pci, 100)
    pub = tmp_path / "audit.pub"
    pub.write_bytes(public_key(pci).pem())
    policy = tmp_path / "phiwarden.toml"
    policy.write_text(f'[audit]\nstore = "{pci.store}"\nwitnesses = []\n')

    assert main(["audit", "verify-archive", str(archive), "--public-key", str(pub)]) == 0
    out = capsys.readouterr().out
    assert "OK: 2 archive file(s), 40 events verified (sequence 1..40)" in out and "warning" not in out
    later = archive_files(archive)[1]
    assert main(["audit", "verify-archive", str(later), "--public-key", str(pub)]) == 0
    assert "checked on their own" in capsys.readouterr().out

    assert main(["audit", "search", "--archive", str(archive), "--category", "ssn", "--limit", "1000"]) == 0
    every = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert main(["audit", "search", "--archive", str(archive), "--category", "ssn", "--limit", "2"]) == 0
    out, err = capsys.readouterr()
    assert [line.split()[0] for line in out.splitlines()] == every[-2:]
    assert f"showing the newest 2 of {len(every)} matches" in err
    monkeypatch.setattr("sys.stdin", io.StringIO(SSN))
    assert main(["audit", "lookup", "--value", "-", "--archive", str(archive), "--policy", str(policy)]) == 0
    assert capsys.readouterr().out.startswith("#10 ")
    monkeypatch.setenv("PHIWARDEN_AUDIT_HMAC_KEY", "ab" * 32)
    monkeypatch.setattr("sys.stdin", io.StringIO(SSN))
    assert main(["audit", "lookup", "--value", "-", "--archive", str(archive), "--policy", str(policy)]) == 2
    assert "hashed with HMAC key" in capsys.readouterr().err

    # One edited event fails the file; another key fails every signature.
    first = archive_files(archive)[0]
    lines = first.read_text().splitlines()
    record = json.loads(lines[3])
    record["event"]["actor"]["user"]["uid"] = "mallory@example.org"
    lines[3] = json.dumps(record)
    first.write_text("\n".join(lines) + "\n")
    assert main(["audit", "verify-archive", str(archive), "--public-key", str(pub), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["ok"] and "event 3 does not match its hash" in report["problems"][0]
    other = SigningKey.load(tmp_path / "other" / "k.key", create=True).public
    assert not verify_archives([later], other).ok
