"""Failing stores fail loudly and leave nothing half-written; a killed writer loses nothing acknowledged."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from phiwarden.audit import AuditLog, AuditStoreError
from phiwarden.audit.log import open_store, public_key, store_url, witnesses
from phiwarden.audit.store_sqlite import SQLiteStore
from phiwarden.audit.verify import verify_log
from phiwarden.policy.audit import AuditSettings

from .conftest import fill, make_event


def test_full_disk_raises_and_writes_nothing(tmp_path: Path) -> None:
    settings = AuditSettings(store=f"sqlite:///{tmp_path / 'db' / 'audit.db'}", witnesses=())
    with AuditLog.open(settings) as log:
        fill(log, 5)
        assert isinstance(log.store, SQLiteStore)
        pages = log.store._conn.execute("PRAGMA page_count").fetchone()[0]
        log.store._conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(AuditStoreError, match="nothing was written"):
            log.append_batch([make_event(i) for i in range(5, 500)])
        assert log.store.head().size == 5
        log.store._conn.execute("PRAGMA max_page_count = 1073741823")
        assert log.append(make_event(9)).sequence == 6
    store = open_store(store_url(settings))
    try:
        assert verify_log(store, public_key(settings), workers=1).ok
    finally:
        store.close()


def test_unreachable_postgres_is_a_clear_error() -> None:
    with pytest.raises(AuditStoreError, match="cannot reach the audit store"):
        AuditLog.open(AuditSettings(store="postgresql://postgres:secret@127.0.0.1:1/test", witnesses=()))


def test_password_is_not_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(AuditStoreError) as info:
        AuditLog.open(AuditSettings(store="postgresql://postgres:hunter2@127.0.0.1:1/test", witnesses=()))
    assert "hunter2" not in str(info.value)


def test_unwritable_store_location_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(AuditStoreError):
        AuditLog.open(AuditSettings(store=f"sqlite:///{blocker / 'audit.db'}", witnesses=()))


_WRITER = textwrap.dedent(
    """
    import sys
    from phiwarden.audit import AuditLog
    from phiwarden.policy.audit import AuditSettings
    from tests.audit.conftest import make_event

    settings = AuditSettings(store=sys.argv[1], witnesses=(sys.argv[2],), checkpoint_every=7)
    log = AuditLog.open(settings)
    writer = int(sys.argv[3])
    i = 0
    while True:
        batch = [make_event(writer * 1_000_000 + i + k) for k in range(1 + i % 3)]
        for receipt in log.append_batch(batch):
            sys.stdout.write(receipt.uid + "\\n")
        sys.stdout.flush()
        i += len(batch)
    """
)


def test_kill_9_during_concurrent_appends_loses_nothing_acknowledged(settings: AuditSettings) -> None:
    AuditLog.open(settings).close()  # keys first, so the writers do not race to create them
    assert settings.witnesses is not None
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(settings.store), settings.witnesses[0], str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=root,
        )
        for n in range(4)
    ]
    outputs: list[list[bytes]] = [[] for _ in writers]
    readers = [
        threading.Thread(target=lambda p, out: out.extend(p.stdout), args=(proc, out))
        for proc, out in zip(writers, outputs, strict=True)
    ]
    for reader in readers:
        reader.start()
    # Kill once every writer is appending (starting four interpreters takes a while on a busy machine).
    deadline = time.monotonic() + 60
    while not all(len(out) >= 10 for out in outputs) and time.monotonic() < deadline:
        time.sleep(0.05)
    for proc in writers:
        os.kill(proc.pid, signal.SIGKILL)
    acknowledged: set[str] = set()
    for proc, reader, out in zip(writers, readers, outputs, strict=True):
        reader.join()
        assert proc.wait() == -signal.SIGKILL, proc.stderr.read().decode() if proc.stderr else ""
        acknowledged.update(text for line in out if len(text := line.decode().strip()) == 36)
    assert all(len(out) >= 10 for out in outputs), "a writer never got going"
    store = open_store(store_url(settings))
    try:
        report = verify_log(store, public_key(settings), witnesses=witnesses(settings), workers=1)
        assert report.ok, report.problems
        present = {json.loads(r.record)["event"]["metadata"]["uid"] for r in store.records()}
    finally:
        store.close()
    assert acknowledged <= present
    # The log takes appends again after the crash.
    with AuditLog.open(settings) as log:
        log.append(make_event(1))


def test_writers_take_turns_on_the_lock_file_and_time_out_behind_a_stuck_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fcntl

    db = tmp_path / "db" / "audit.db"
    settings = AuditSettings(store=f"sqlite:///{db}", witnesses=(), checkpoint_every=1000)
    monkeypatch.setattr("phiwarden.audit.store_sqlite.BUSY_TIMEOUT_MS", 200)
    with AuditLog.open(settings) as log:
        fill(log, 3)
        # Another writer holds the lock (a process stopped in the middle of its transaction).
        holder = os.open(f"{db}-writer", os.O_RDWR)
        fcntl.flock(holder, fcntl.LOCK_EX)
        try:
            with pytest.raises(AuditStoreError, match="another writer"):
                log.append(make_event(3))
        finally:
            fcntl.flock(holder, fcntl.LOCK_UN)
            os.close(holder)
        assert log.store.head().size == 3
        assert log.append(make_event(3)).sequence == 4
    store = open_store(store_url(settings))
    try:
        assert verify_log(store, public_key(settings), workers=1).ok
    finally:
        store.close()


def _hold_writer_lock(db: Path) -> int:
    import fcntl

    fd = os.open(f"{db}-writer", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


@pytest.mark.skipif(sys.platform == "win32", reason="flock")
def test_queued_writer_proceeds_when_the_lock_is_free(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    with AuditLog.open(AuditSettings(store=f"sqlite:///{db}", witnesses=())) as log:
        fill(log, 2)
        fd = _hold_writer_lock(db)  # another open file description: contends like another process
        threading.Timer(0.3, os.close, (fd,)).start()
        began = time.monotonic()
        assert log.append(make_event(7)).sequence == 3
        assert 0.25 <= time.monotonic() - began < 5
        # The queued writer released the lock: the next append takes it at once.
        began = time.monotonic()
        assert log.append(make_event(8)).sequence == 4
        assert time.monotonic() - began < 0.25


@pytest.mark.skipif(sys.platform == "win32", reason="flock")
def test_writer_lock_timeout_fails_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from phiwarden.audit import store_sqlite

    db = tmp_path / "audit.db"
    with AuditLog.open(AuditSettings(store=f"sqlite:///{db}", witnesses=())) as log:
        fill(log, 2)
        monkeypatch.setattr(store_sqlite, "BUSY_TIMEOUT_MS", 200)
        fd = _hold_writer_lock(db)
        try:
            with pytest.raises(AuditStoreError, match="another writer has held the store"):
                log.append(make_event(7))
        finally:
            os.close(fd)
        # The failed append left nothing behind: appends go on, nothing was half-written.
        assert log.append(make_event(8)).sequence == 3
