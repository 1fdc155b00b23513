"""Every attack on the stored log, on both stores: the exit status and where verify locates it.

The attacker can write the database (SQL behind the log's back, recomputing hashes with phiwarden's
own code) but holds neither the signing key nor the witness. `first_bad` is the smallest sequence not
proven intact; `first_bad_range` is set when only a checkpoint bounds the damage.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest

from phiwarden.audit import AuditLog, Classification
from phiwarden.audit.event import AuditEvent
from phiwarden.audit.ledger import Head, prepare, seal
from phiwarden.audit.log import open_store, public_key, store_url, witnesses
from phiwarden.audit.verify import VerifyReport, verify_log
from phiwarden.policy.audit import AuditSettings

from .conftest import Raw, make_event

N = 50


def _event(log: AuditLog, index: int) -> AuditEvent:
    digest = log.hash_value(f"518-42-{7000 + index}")
    return make_event(index, classification=Classification("restricted", {"ssn": 1}, {"ssn": (digest,)}))


@pytest.fixture
def log_settings(settings: AuditSettings) -> AuditSettings:
    """50 events with a value HMAC each, in batches of 5: checkpoints at 10, 20, 30, 40, 50."""
    with AuditLog.open(settings) as log:
        for start in range(0, N, 5):
            log.append_batch([_event(log, i) for i in range(start, start + 5)])
    return settings


def verify(settings: AuditSettings, *, witnessed: bool = True) -> VerifyReport:
    store = open_store(store_url(settings))
    try:
        return verify_log(
            store,
            public_key(settings),
            witnesses=witnesses(settings) if witnessed else (),
            workers=1,
            checkpoint_every=settings.checkpoint_every,
        )
    finally:
        store.close()


def _rows(settings: AuditSettings) -> list[tuple[int, bytes, bytes]]:
    store = open_store(store_url(settings))
    try:
        return [(r.seq, r.record, r.hash) for r in store.records()]
    finally:
        store.close()


def _events(rows: list[tuple[int, bytes, bytes]]) -> list[AuditEvent]:
    return [AuditEvent.from_ocsf(json.loads(record)["event"]) for _, record, _ in rows]


def _head(rows: list[tuple[int, bytes, bytes]]) -> Head:
    head = Head.empty()
    for _, _, digest in rows:
        head.frontier.append(digest)
        head.last_hash = digest
    head.size = len(rows)
    return head


def _fix_head(raw: Raw, settings: AuditSettings) -> None:
    head = _head(_rows(settings))
    raw(
        "UPDATE audit_head SET size = ?, last_hash = ?, frontier = ? WHERE id = 1",
        (head.size, head.last_hash, head.frontier.to_bytes()),
    )


def _reseal(raw: Raw, settings: AuditSettings, first: int, events: list[AuditEvent]) -> None:
    """Replace events first.. with `events`, chained after first-1 with the product's own sealing:
    records, hashes, search columns and value-index rows all consistent."""
    rows = _rows(settings)
    sealed = seal(_head([r for r in rows if r[0] < first]), [prepare(event) for event in events])
    raw("DELETE FROM audit_events WHERE seq >= ?", (first,))
    raw("DELETE FROM audit_value_hashes WHERE seq >= ?", (first,))
    raw("DELETE FROM audit_nodes", ())
    for row in sealed.rows:
        raw(f"INSERT INTO audit_events VALUES ({', '.join('?' * len(row))})", row)
    for key_row in sealed.value_keys:
        raw("INSERT INTO audit_value_hashes (epoch, hmac_key, seq) VALUES (?, ?, ?)", key_row)
    _fix_head(raw, settings)


def _record(settings: AuditSettings, seq: int) -> bytes:
    return next(record for s, record, _ in _rows(settings) if s == seq)


def test_the_untouched_log_verifies(log_settings: AuditSettings) -> None:
    report = verify(log_settings)
    assert report.ok and report.events_checked == N and report.latest_checkpoint == N
    assert report.first_bad is None and not report.warnings


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("actor", "someone-else@example.org"),
        ("action", "allow"),
        ("categories", ","),
        ("tool", "x"),
        ("destination", None),
        ("time_ms", 0),
        ("tier", "public"),
        ("status", "failure"),
        ("operation", "openai.chat"),
        ("uid", "forged-uid"),
    ],
)
def test_a_changed_search_column(log_settings: AuditSettings, raw: Raw, column: str, value: object) -> None:
    raw(f"UPDATE audit_events SET {column} = ? WHERE seq = 23", (value,))
    report = verify(log_settings)
    assert not report.ok and report.first_bad == 23 and report.first_bad_range is None
    assert report.problems[0].kind == "derived" and column in report.problems[0].message


def test_a_deleted_value_index_row(log_settings: AuditSettings, raw: Raw) -> None:
    raw("DELETE FROM audit_value_hashes WHERE seq = 23", ())
    report = verify(log_settings)
    assert report.first_bad == 23 and report.problems[0].kind == "value-index"
    assert "missing" in report.problems[0].message


def test_an_altered_value_index_row(log_settings: AuditSettings, raw: Raw) -> None:
    raw("UPDATE audit_value_hashes SET hmac_key = hmac_key + 1 WHERE seq = 23", ())
    report = verify(log_settings)
    assert report.first_bad == 23 and report.problems[0].kind == "value-index"


def test_extra_and_misfiled_value_index_rows(log_settings: AuditSettings, raw: Raw) -> None:
    raw("INSERT INTO audit_value_hashes (epoch, hmac_key, seq) VALUES (0, 12345, 31)", ())
    raw("INSERT INTO audit_value_hashes (epoch, hmac_key, seq) VALUES (7, 12345, 12)", ())
    report = verify(log_settings)
    assert report.first_bad == 12 and {p.seq for p in report.problems} == {12, 31}
    assert "another epoch" in report.problems[0].message


def test_a_modified_record(log_settings: AuditSettings, raw: Raw) -> None:
    raw(
        "UPDATE audit_events SET record = ? WHERE seq = 23",
        (_record(log_settings, 23).replace(b"dev", b"eve", 1),),
    )
    report = verify(log_settings)
    assert report.first_bad == 23 and report.first_bad_range is None
    assert report.problems[0].kind == "modified"


@pytest.mark.parametrize("seq", [20, 23, N])
def test_a_modified_record_with_its_hash_recomputed(log_settings: AuditSettings, raw: Raw, seq: int) -> None:
    record = _record(log_settings, seq).replace(b'"tier":"restricted"', b'"tier":"public"')
    raw(
        "UPDATE audit_events SET record = ?, hash = ?, tier = 'public' WHERE seq = ?",
        (record, hashlib.sha256(b"\x00" + record).digest(), seq),
    )
    report = verify(log_settings)
    # The next record's chain link gives the original hash back: the checkpoint then proves the rest.
    assert report.first_bad == seq and report.first_bad_range is None, report.problems


def test_a_run_rewritten_up_to_a_checkpoint_is_a_range(log_settings: AuditSettings, raw: Raw) -> None:
    """Events 15..20 edited and re-chained: only event 21's link and the checkpoint at 20 notice."""
    rows = _rows(log_settings)
    events = _events(rows)[14:20]
    events[0] = replace(events[0], correlation_id="edited")
    sealed = seal(_head(rows[:14]), [prepare(event) for event in events])
    for row in sealed.rows:
        raw("UPDATE audit_events SET record = ?, hash = ? WHERE seq = ?", (row[-2], row[-1], row[0]))
    report = verify(log_settings)
    assert report.first_bad == 11 and report.first_bad_range == (11, 20)
    assert report.pinpointed == 20
    assert report.summary() == "FAILED: first bad sequence in 11..20 (exact evidence first at event 20)"


def test_an_event_inserted_in_the_middle(log_settings: AuditSettings, raw: Raw) -> None:
    """A forged event at 23, chained to 22, and everything after it moved up by one."""
    raw("UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 23", ())
    raw("UPDATE audit_events SET seq = seq - 999 WHERE seq >= 1023", ())
    raw("UPDATE audit_value_hashes SET seq = seq + 1 WHERE seq >= 23", ())
    rows = _rows(log_settings)
    forged = replace(_events(rows)[21], uid="forged", correlation_id="forged")
    sealed = seal(_head(rows[:22]), [prepare(forged)])
    raw(f"INSERT INTO audit_events VALUES ({', '.join('?' * 13)})", sealed.rows[0])
    _fix_head(raw, log_settings)
    report = verify(log_settings)
    assert not report.ok and report.first_bad == 23 and report.first_bad_range is None


def test_reordered_events(log_settings: AuditSettings, raw: Raw) -> None:
    raw("UPDATE audit_events SET seq = -1 WHERE seq = 23", ())
    raw("UPDATE audit_events SET seq = 23 WHERE seq = 24", ())
    raw("UPDATE audit_events SET seq = 24 WHERE seq = -1", ())
    report = verify(log_settings)
    assert report.first_bad == 23 and report.problems[0].kind == "reordered"


def test_an_event_deleted_in_the_middle(log_settings: AuditSettings, raw: Raw) -> None:
    raw("DELETE FROM audit_events WHERE seq = 23", ())
    report = verify(log_settings)
    assert report.first_bad == 23 and report.problems[0].kind == "missing"


def test_an_event_deleted_and_the_rest_moved_down(log_settings: AuditSettings, raw: Raw) -> None:
    raw("DELETE FROM audit_events WHERE seq = 23", ())
    raw("UPDATE audit_events SET seq = seq - 1 WHERE seq > 23", ())
    _fix_head(raw, log_settings)
    report = verify(log_settings)
    assert report.first_bad == 23 and report.problems[0].kind == "reordered"


def test_the_tail_truncated(log_settings: AuditSettings, raw: Raw) -> None:
    raw("DELETE FROM audit_events WHERE seq > 45", ())
    report = verify(log_settings)
    # 41..45 are proven by nothing once 46..50 are gone; the head and the index rows say 46 went.
    assert report.first_bad_range == (41, 50) and report.pinpointed == 46
    assert report.summary() == "FAILED: first bad sequence in 41..50 (exact evidence first at event 46)"


def test_the_tail_truncated_with_the_head_fixed(log_settings: AuditSettings, raw: Raw) -> None:
    raw("DELETE FROM audit_events WHERE seq > 45", ())
    raw("DELETE FROM audit_value_hashes WHERE seq > 45", ())
    _fix_head(raw, log_settings)
    report = verify(log_settings)
    assert report.first_bad_range == (41, 50) and report.pinpointed is None
    assert report.problems[0].kind == "truncated"


def test_the_last_event_deleted_is_located_exactly(log_settings: AuditSettings, raw: Raw) -> None:
    raw("DELETE FROM audit_events WHERE seq = ?", (N,))
    raw("DELETE FROM audit_value_hashes WHERE seq = ?", (N,))
    _fix_head(raw, log_settings)
    report = verify(log_settings)
    # The checkpoint at 50 holds event 50's hash: with it the tree of 1..49 gives its root.
    assert report.first_bad == N and report.first_bad_range is None
    assert f"events {N}..{N} were deleted" in report.problems[0].message


def test_the_tail_truncated_at_a_checkpoint(log_settings: AuditSettings, raw: Raw) -> None:
    raw("DELETE FROM audit_events WHERE seq > 40", ())
    raw("DELETE FROM audit_value_hashes WHERE seq > 40", ())
    raw("DELETE FROM audit_checkpoints WHERE tree_size > 40", ())
    _fix_head(raw, log_settings)
    report = verify(log_settings)
    assert report.first_bad == 41 and report.first_bad_range is None
    assert {p.kind for p in report.problems} == {"truncated", "checkpoint-deleted"}
    assert verify(log_settings, witnessed=False).ok  # without a witness this truncation is invisible


def test_a_rewrite_that_drops_an_entry(log_settings: AuditSettings, raw: Raw) -> None:
    rows = _rows(log_settings)
    _reseal(raw, log_settings, 23, _events(rows)[23:])
    report = verify(log_settings, witnessed=False)
    # Only the checkpoints see it: each holds the hash of the event at its size, no longer there.
    assert report.first_bad_range == (21, 30) and report.pinpointed == 30
    assert report.problems[0].kind == "rewritten"
    assert report.summary() == "FAILED: first bad sequence in 21..30 (exact evidence first at event 30)"


@pytest.fixture
def log30(settings: AuditSettings) -> AuditSettings:
    """30 events: checkpoints at 10, 20, 30."""
    with AuditLog.open(settings) as log:
        for start in range(0, 30, 5):
            log.append_batch([_event(log, i) for i in range(start, start + 5)])
    return settings


def test_a_rewrite_that_ends_before_the_last_checkpoint_is_not_a_truncation(
    log30: AuditSettings, raw: Raw
) -> None:
    """23 dropped and the rest re-chained: 29 events against the checkpoint at 30."""
    _reseal(raw, log30, 23, _events(_rows(log30))[23:])
    report = verify(log30)
    assert report.first_bad_range == (21, 30) and report.pinpointed is None
    assert not any("30..30" in p.message for p in report.problems)
    assert report.summary() == "FAILED: first bad sequence in 21..30"


def test_a_rewrite_that_also_drops_the_stored_checkpoints(log_settings: AuditSettings, raw: Raw) -> None:
    _reseal(raw, log_settings, 23, _events(_rows(log_settings))[23:])
    raw("DELETE FROM audit_checkpoints", ())
    report = verify(log_settings)
    assert report.first_bad_range == (21, 30)
    assert {p.kind for p in report.problems} == {"rewritten", "replaced", "checkpoint-deleted"}
    unwitnessed = verify(log_settings, witnessed=False)
    assert unwitnessed.ok and unwitnessed.warnings  # the documented limit without a witness


def test_deleted_stored_checkpoints_are_tampering(log_settings: AuditSettings, raw: Raw) -> None:
    raw("DELETE FROM audit_checkpoints", ())
    report = verify(log_settings)
    assert not report.ok and report.first_bad is None
    assert [p.kind for p in report.problems] == ["checkpoint-deleted"]
    assert "size 10, 20, 30, 40, 50" in report.problems[0].message
    # The witness covers every event: no "not covered by a checkpoint" warning.
    assert not any("not covered" in w for w in report.warnings)
    assert "None" not in report.summary()


@pytest.mark.parametrize("state", ["missing", "empty"])
def test_a_witness_that_lost_its_checkpoints(
    log_settings: AuditSettings, witness_file: Path, raw: Raw, state: str
) -> None:
    _reseal(raw, log_settings, 23, _events(_rows(log_settings))[23:])
    raw("DELETE FROM audit_checkpoints", ())
    if state == "missing":
        witness_file.unlink()
    else:
        witness_file.write_text("")
    report = verify(log_settings)
    assert not report.ok and report.first_bad is None
    problem = next(p for p in report.problems if p.kind == "witness")
    assert witness_file.as_posix() in problem.message
    assert ("does not exist" if state == "missing" else "is empty") in problem.message
    assert "it holds 49 events and a checkpoint is sealed every 10" in problem.message


def test_a_missing_witness_of_a_log_not_sealed_yet_is_fine(
    settings: AuditSettings, witness_file: Path
) -> None:
    log = AuditLog.open(settings)
    log.append_batch([_event(log, i) for i in range(3)])
    log.store.close()  # no seal on close: the process died before its first checkpoint
    assert not witness_file.exists()
    report = verify(settings)
    assert report.ok and any("not covered" in w for w in report.warnings)


def test_deleted_stored_checkpoints_without_a_witness_are_a_warning(
    log_settings: AuditSettings, raw: Raw
) -> None:
    raw("DELETE FROM audit_checkpoints", ())
    report = verify(log_settings, witnessed=False)
    assert report.ok  # the documented limit: only a witness proves they existed
    assert any("holds no checkpoint, but holds 50 events" in w for w in report.warnings)


def _sqlite_only(settings: AuditSettings) -> None:
    if not store_url(settings).startswith("sqlite"):
        pytest.skip("PostgreSQL keeps each column's type: a key cannot be stored as bytes there")


@pytest.mark.parametrize("column", ["hmac_key", "seq", "epoch"])
def test_an_index_value_stored_as_bytes(log_settings: AuditSettings, raw: Raw, column: str) -> None:
    """SQLite keeps the BLOB of a key's digits: it prints as the key, but `lookup` never finds it."""
    _sqlite_only(log_settings)
    raw(f"UPDATE audit_value_hashes SET {column} = CAST({column} AS BLOB) WHERE seq = 23", ())
    report = verify(log_settings)
    assert not report.ok and report.first_bad == 23
    assert report.problems[0].kind == "value-index", report.problems


def test_every_index_key_stored_as_bytes(log_settings: AuditSettings, raw: Raw) -> None:
    _sqlite_only(log_settings)
    raw("UPDATE audit_value_hashes SET hmac_key = CAST(hmac_key AS BLOB)", ())
    for workers in (1, 2):
        store = open_store(store_url(log_settings))
        try:
            report = verify_log(
                store, public_key(log_settings), witnesses=witnesses(log_settings), workers=workers
            )
        finally:
            store.close()
        assert not report.ok and report.first_bad == 1


@pytest.mark.parametrize("column", ["action", "actor", "tool", "time_ms", "categories"])
def test_a_search_column_stored_as_bytes(log_settings: AuditSettings, raw: Raw, column: str) -> None:
    """A BLOB hides the event from search (it never equals the text) and verify names the event."""
    _sqlite_only(log_settings)
    raw(f"UPDATE audit_events SET {column} = CAST({column} AS BLOB) WHERE seq = 12", ())
    raw(f"UPDATE audit_events SET {column} = CAST({column} AS BLOB) WHERE seq = 40", ())
    report = verify(log_settings)
    assert not report.ok
    assert [(p.seq, p.kind) for p in report.problems] == [(12, "derived"), (40, "derived")]
    assert column.replace("time_ms", "time") in report.problems[0].message
