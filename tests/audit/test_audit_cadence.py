"""Writers sharing a store seal about once per `checkpoint_every` events between them, the interval
runs from the newest stored checkpoint whoever signed it, and a closing writer seals only its own
unsealed events."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from phiwarden.audit import AuditLog
from phiwarden.audit.log import open_store, public_key, store_url, witnesses
from phiwarden.audit.verify import verify_log
from phiwarden.policy.audit import AuditSettings

from .conftest import make_event

_WRITER = textwrap.dedent(
    """
    import sys
    from phiwarden.audit import AuditLog, AuditEvent, Actor, Decision, Classification
    from phiwarden.policy.audit import AuditSettings

    settings = AuditSettings(store=sys.argv[1], witnesses=(sys.argv[2],), checkpoint_every=10)
    with AuditLog.open(settings) as log:
        for _ in range(int(sys.argv[3])):
            log.append(AuditEvent(actor=Actor("ana@example.org"), operation="op",
                                  decision=Decision("allow", "p", "1"), classification=Classification("internal")))
    """
)


def test_processes_sharing_a_store_seal_once_per_checkpoint_every_events(settings: AuditSettings) -> None:
    # On PostgreSQL the checkpoint size read with the head came from the statement's snapshot: the
    # writers queued on the head's lock each sealed again, one event after the previous checkpoint.
    AuditLog.open(settings).close()  # keys first, so the writers do not race to create them
    assert settings.witnesses is not None
    writers, each = 6, 60
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(settings.store), settings.witnesses[0], str(each)],
            env=env,
            cwd=root,
            stderr=subprocess.PIPE,
        )
        for _ in range(writers)
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read().decode() if proc.stderr else ""
    store = open_store(store_url(settings))
    try:
        sizes = [c.statement.tree_size for c in store.checkpoints()]
        assert store.head().size == writers * each
        report = verify_log(store, public_key(settings), witnesses=witnesses(settings), workers=1)
    finally:
        store.close()
    assert report.ok, report.problems
    # One per 10 events of the log, plus at most one per writer closing with events not sealed yet.
    assert writers * each // 10 <= len(sizes) <= writers * each // 10 + writers, sizes
    assert sizes[-1] == writers * each


def test_the_interval_runs_from_the_newest_checkpoint_of_any_writer(
    settings: AuditSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1_000_000_000_000]
    monkeypatch.setattr("phiwarden.audit.log._now_ms", lambda: clock[0])
    slow = AuditSettings(
        store=settings.store,
        witnesses=settings.witnesses,
        checkpoint_every=1000,
        checkpoint_interval_seconds=60,
    )
    first, second = AuditLog.open(slow), AuditLog.open(slow)
    try:
        first.append(make_event(1))
        second.append(make_event(2))
        assert first.store.checkpoints() == []
        clock[0] += 61_000
        first.append(make_event(3))  # an idle minute: sealed
        assert [c.statement.tree_size for c in first.store.checkpoints()] == [3]
        second.append(make_event(4))  # its own clock says a minute too, but the log was just sealed
        assert [c.statement.tree_size for c in first.store.checkpoints()] == [3]
        clock[0] += 61_000
        second.append(make_event(5))
        assert [c.statement.tree_size for c in first.store.checkpoints()] == [3, 5]
        first.append(make_event(6))
    finally:
        second.close()  # its events are sealed: nothing to add
        sizes = [c.statement.tree_size for c in first.store.checkpoints()]
        first.close()  # event 6 is not: sealed on close
    assert sizes == [3, 5]
    store = open_store(store_url(settings))
    try:
        assert [c.statement.tree_size for c in store.checkpoints()] == [3, 5, 6]
    finally:
        store.close()
