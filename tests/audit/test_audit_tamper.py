"""Each attack on the stored log is detected, with the first bad sequence number, on both stores.

The attacker has full write access to the database (SQL behind the log's back) but not to the
signing key or the witness file.
"""

from __future__ import annotations

import json

import pytest

from phiwarden.audit import AuditLog
from phiwarden.audit.event import AuditEvent
from phiwarden.audit.ledger import Head, prepare, seal
from phiwarden.audit.log import open_store, public_key, store_url, witnesses
from phiwarden.audit.verify import VerifyReport, verify_log
from phiwarden.policy.audit import AuditSettings

from .conftest import Raw, fill

N = 40


@pytest.fixture
def log_settings(settings: AuditSettings) -> AuditSettings:
    with AuditLog.open(settings) as log:
        for start in range(0, N, 5):
            fill(log, 5, start)
    return settings


def verify(settings: AuditSettings, *, witnessed: bool = True) -> VerifyReport:
    store = open_store(store_url(settings))
    try:
        return verify_log(
            store, public_key(settings), witnesses=witnesses(settings) if witnessed else (), workers=1
        )
    finally:
        store.close()


def _record(settings: AuditSettings, seq: int) -> bytes:
    store = open_store(store_url(settings))
    try:
        stored = store.record(seq)
        assert stored is not None
        return stored.record
    finally:
        store.close()


def _rows(settings: AuditSettings) -> list[tuple[int, bytes, bytes]]:
    store = open_store(store_url(settings))
    try:
        return [(r.seq, r.record, r.hash) for r in store.records()]
    finally:
        store.close()


def _head_of(rows: list[tuple[int, bytes, bytes]]) -> Head:
    head = Head.empty()
    for _, _, digest in rows:
        head.frontier.append(digest)
        head.last_hash = digest
    head.size = len(rows)
    return head


def _fix_head(raw: Raw, settings: AuditSettings) -> None:
    """Make the head row describe exactly the rows that are left."""
    head = _head_of(_rows(settings))
    raw(
        "UPDATE audit_head SET size = ?, last_hash = ?, frontier = ? WHERE id = 1",
        (head.size, head.last_hash, head.frontier.to_bytes()),
    )


def _rewrite(raw: Raw, settings: AuditSettings, drop: int) -> None:
    """Drop one event and re-seal everything after it: chain, hashes and head all recomputed."""
    rows = _rows(settings)
    head = _head_of([r for r in rows if r[0] < drop])
    events = [AuditEvent.from_ocsf(json.loads(record)["event"]) for seq, record, _ in rows if seq > drop]
    sealed = seal(head, [prepare(event) for event in events])
    raw("DELETE FROM audit_events WHERE seq >= ?", (drop,))
    raw("DELETE FROM audit_value_hashes WHERE seq >= ?", (drop,))
    raw("DELETE FROM audit_nodes", ())
    for row in sealed.rows:
        raw(f"INSERT INTO audit_events VALUES ({', '.join('?' * len(row))})", row)
    _fix_head(raw, settings)


def test_untouched_log_verifies(log_settings: AuditSettings) -> None:
    report = verify(log_settings)
    assert report.ok, report.problems
    assert report.events_checked == N and report.witness_checkpoints >= 4


def test_modified_event(log_settings: AuditSettings, raw: Raw) -> None:
    record = _record(log_settings, 17).replace(b"dev", b"eve", 1)
    raw("UPDATE audit_events SET record = ? WHERE seq = 17", (record,))
    report = verify(log_settings)
    assert not report.ok and report.first_bad == 17
    assert report.problems[0].kind == "modified"


def test_modified_event_with_recomputed_hash(log_settings: AuditSettings, raw: Raw) -> None:
    import hashlib

    record = _record(log_settings, 17).replace(b'"action":"mask"', b'"action":"allow"')
    assert record != _record(log_settings, 17)
    raw(
        "UPDATE audit_events SET record = ?, hash = ? WHERE seq = 17",
        (record, hashlib.sha256(b"\x00" + record).digest()),
    )
    report = verify(log_settings)
    assert report.first_bad == 17


def test_modified_last_event_with_recomputed_hash(log_settings: AuditSettings, raw: Raw) -> None:
    import hashlib

    record = _record(log_settings, N).replace(b"dev", b"eve", 1)
    digest = hashlib.sha256(b"\x00" + record).digest()
    raw("UPDATE audit_events SET record = ?, hash = ? WHERE seq = ?", (record, digest, N))
    raw("UPDATE audit_head SET last_hash = ? WHERE id = 1", (digest,))
    report = verify(log_settings)
    assert not report.ok and report.first_bad is not None and report.first_bad <= N


def test_deleted_event(log_settings: AuditSettings, raw: Raw) -> None:
    raw("DELETE FROM audit_events WHERE seq = 9", ())
    report = verify(log_settings)
    assert report.first_bad == 9 and report.problems[0].kind == "missing"


def test_deleted_last_event(log_settings: AuditSettings, raw: Raw) -> None:
    raw("DELETE FROM audit_events WHERE seq = ?", (N,))
    report = verify(log_settings)
    assert report.first_bad == N and report.problems[0].kind == "truncated"


def test_truncation_with_head_and_stored_checkpoints_fixed_is_caught_by_the_witness(
    log_settings: AuditSettings, raw: Raw
) -> None:
    raw("DELETE FROM audit_events WHERE seq > 30", ())
    raw("DELETE FROM audit_checkpoints WHERE tree_size > 30", ())
    _fix_head(raw, log_settings)
    report = verify(log_settings)
    assert not report.ok and report.first_bad == 31
    assert report.problems[0].kind == "truncated" and "witness" in report.problems[0].message
    assert verify(log_settings, witnessed=False).ok  # without a witness this truncation is invisible


def test_inserted_event_in_the_middle(log_settings: AuditSettings, raw: Raw) -> None:
    raw("UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 12", ())
    raw("UPDATE audit_events SET seq = seq - 999 WHERE seq >= 1012", ())
    forged = _record(log_settings, 11).replace(b"dev", b"eve", 1)
    import hashlib

    raw(
        "INSERT INTO audit_events SELECT 12, time_ms, 'forged', actor, tool, destination, action, tier, "
        "categories, status, operation, ?, ? FROM audit_events WHERE seq = 11",
        (forged, hashlib.sha256(b"\x00" + forged).digest()),
    )
    report = verify(log_settings)
    assert report.first_bad == 12


def test_event_appended_behind_the_log(log_settings: AuditSettings, raw: Raw) -> None:
    raw(
        "INSERT INTO audit_events SELECT seq + 1, time_ms, 'extra', actor, tool, destination, action, tier, "
        "categories, status, operation, record, hash FROM audit_events WHERE seq = ?",
        (N,),
    )
    report = verify(log_settings)
    assert report.first_bad == N + 1


def test_reordered_events(log_settings: AuditSettings, raw: Raw) -> None:
    raw("UPDATE audit_events SET seq = -1 WHERE seq = 20", ())
    raw("UPDATE audit_events SET seq = 20 WHERE seq = 21", ())
    raw("UPDATE audit_events SET seq = 21 WHERE seq = -1", ())
    report = verify(log_settings)
    assert report.first_bad == 20 and report.problems[0].kind == "reordered"


def test_rewrite_after_dropping_an_entry_is_caught_by_signed_checkpoints(
    log_settings: AuditSettings, raw: Raw
) -> None:
    _rewrite(raw, log_settings, drop=23)
    report = verify(log_settings, witnessed=False)
    assert not report.ok and report.problems[0].kind == "rewritten"
    assert report.first_bad is not None and 20 < report.first_bad <= 23


def test_rewrite_that_also_drops_the_stored_checkpoints_is_caught_by_the_witness(
    log_settings: AuditSettings, raw: Raw
) -> None:
    _rewrite(raw, log_settings, drop=23)
    raw("DELETE FROM audit_checkpoints", ())
    report = verify(log_settings)
    assert not report.ok
    assert {p.kind for p in report.problems} & {"rewritten", "truncated"}
    assert report.first_bad is not None and report.first_bad <= 23
    unwitnessed = verify(log_settings, witnessed=False)
    assert unwitnessed.ok and unwitnessed.warnings  # the documented limit without a witness


def test_forged_checkpoint_without_the_key(log_settings: AuditSettings, raw: Raw) -> None:
    raw(
        "UPDATE audit_checkpoints SET statement = replace(statement, '\"tree_size\":10', '\"tree_size\":9')",
        (),
    )
    report = verify(log_settings)
    assert any(p.kind == "signature" for p in report.problems)


def test_swapped_store_identity_is_caught_by_the_witness(log_settings: AuditSettings, raw: Raw) -> None:
    raw("UPDATE audit_meta SET value = 'another-log' WHERE key = 'log_id'", ())
    report = verify(log_settings)
    assert any(p.kind == "identity" for p in report.problems)
