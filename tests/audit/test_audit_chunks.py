"""Verification in several chunks (and processes) agrees with one pass: same checks, same first bad event."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from phiwarden.audit import AuditLog, verify_scan
from phiwarden.audit.log import open_store, public_key, store_url, witnesses
from phiwarden.audit.verify import VerifyReport, verify_log
from phiwarden.policy.audit import AuditSettings

from .conftest import fill

N = 203


@pytest.fixture
def log_settings(tmp_path: Path) -> AuditSettings:
    settings = AuditSettings(
        store=f"sqlite:///{tmp_path / 'audit.db'}",
        witnesses=(f"file://{tmp_path / 'witness.jsonl'}",),
        checkpoint_every=7,
    )
    with AuditLog.open(settings) as log:
        for start in range(0, N, 7):
            fill(log, min(7, N - start), start)
    return settings


def _verify(settings: AuditSettings, workers: int) -> VerifyReport:
    store = open_store(store_url(settings))
    try:
        return verify_log(store, public_key(settings), witnesses=witnesses(settings), workers=workers)
    finally:
        store.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_chunks_verify_like_one_pass(
    log_settings: AuditSettings, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    whole = _verify(log_settings, 1)
    assert whole.ok and whole.events_checked == N
    monkeypatch.setattr(verify_scan, "CHUNK", 16)
    chunked = _verify(log_settings, workers)
    assert chunked.ok, chunked.problems
    assert chunked.events_checked == N
    assert chunked.checkpoints_checked == whole.checkpoints_checked > N // 7


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("seq", [1, 16, 17, 77, 160, N])
def test_chunks_find_the_first_modified_event(
    log_settings: AuditSettings, monkeypatch: pytest.MonkeyPatch, workers: int, seq: int
) -> None:
    path = str(log_settings.store).removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        (record,) = conn.execute("SELECT record FROM audit_events WHERE seq = ?", (seq,)).fetchone()
        conn.execute(
            "UPDATE audit_events SET record = ? WHERE seq = ?", (record.replace(b"okta", b"otka"), seq)
        )
    monkeypatch.setattr(verify_scan, "CHUNK", 16)
    report = _verify(log_settings, workers)
    assert not report.ok
    assert report.first_bad == seq
