"""PostgreSQL connections: a lost one (backend terminated, server restart, failover) fails the
operation in progress and the next one reconnects; an interrupted commit says its outcome is unknown;
no password reaches a message."""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest

from phiwarden.audit import AuditLog, AuditStoreError
from phiwarden.audit.log import open_store, public_key
from phiwarden.audit.verify import verify_log
from phiwarden.policy.audit import AuditSettings

from .conftest import PG_BASE, make_event


def _named(pg_url: str) -> tuple[str, str]:
    name = f"phiwarden_test_{uuid.uuid4().hex[:12]}"
    return f"{pg_url}&application_name={name}", name


def _terminate(name: str) -> None:
    with psycopg.connect(PG_BASE, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (name,)
        ).fetchall()
        assert killed, "no backend to terminate"
        # pg_terminate_backend only signals: wait until the backend is gone.
        deadline = time.monotonic() + 10
        while admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,)
        ).fetchone() != (0,):
            assert time.monotonic() < deadline
            time.sleep(0.02)


def test_the_log_reconnects_after_its_backend_is_terminated(pg_url: str) -> None:
    url, name = _named(pg_url)
    settings = AuditSettings(store=url, witnesses=(), checkpoint_every=3)
    with AuditLog.open(settings) as log:
        log.append(make_event(1))
        _terminate(name)
        # The operation that meets the dead connection fails (the caller refuses its request) …
        with pytest.raises(AuditStoreError, match="nothing was written"):
            log.append(make_event(2))
        # … and the next one runs on a new connection: the log does not stay broken.
        assert [log.append(make_event(i)).sequence for i in range(3, 7)] == [2, 3, 4, 5]
        _terminate(name)
        with pytest.raises(AuditStoreError):
            log.store.head()
        assert log.store.head().size == 5
    store = open_store(url)
    try:
        assert store.head().size == 5
        report = verify_log(store, public_key(settings), workers=1)
        assert report.ok, report.problems
    finally:
        store.close()


def test_a_commit_cut_off_by_a_lost_connection_reports_an_unknown_outcome(pg_url: str) -> None:
    url, name = _named(pg_url)
    store = open_store(url)
    try:
        with pytest.raises(AuditStoreError, match="may or may not have been applied"), store._write() as cur:
            cur.execute("INSERT INTO audit_cursors (name, seq) VALUES ('siem', 7)")
            _terminate(name)
        # Here the server rolled it back (the backend died before COMMIT arrived); the next
        # operation reconnects and sees that.
        assert store.cursor("siem") == 0
        store.set_cursor("siem", 8)
        assert store.cursor("siem") == 8
    finally:
        store.close()


def test_postgres_errors_show_no_password(pg_url: str) -> None:
    for url in (
        pg_url.replace("@", ":S3cretPw@", 1).replace(":5432", ":1"),
        pg_url.replace(":5432", ":1") + "&password=S3cretPw",
        pg_url.replace("@", ":S3cr%et@", 1),
    ):
        with pytest.raises(AuditStoreError) as info:
            open_store(url)
        assert "S3cr" not in str(info.value), info.value
