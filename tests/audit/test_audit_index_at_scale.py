"""The value-hash index over several epochs (4096 events each), against what each record commits to.

Every event's index rows are compared with the HMAC prefixes its own record holds, so an edit is
found however long ago it was made and whatever was appended since — including edits made while
an epoch was still open, and a rewritten unsealed tail (review round 2). Both stores.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from phiwarden.audit import Actor, AuditLog, Classification, ledger
from phiwarden.audit import log as log_module
from phiwarden.audit.canonical import SLOT, canonical_json, canonical_pieces, record_hash
from phiwarden.audit.event import AuditEvent
from phiwarden.audit.log import open_store, public_key, store_url, witnesses
from phiwarden.audit.store import AuditStore
from phiwarden.audit.verify import VerifyReport, verify_log
from phiwarden.policy.audit import AuditSettings

from .conftest import Raw, make_event

EPOCH = 4096
# Two whole epochs and part of a third; the batches cross both boundaries and some append alone.
SIZE = 2 * EPOCH + 300


def _event(log: AuditLog, i: int) -> AuditEvent:
    digest = log.hash_value(f"900-00-{i:04d}")
    return make_event(i, classification=Classification("restricted", {"ssn": 1}, {"ssn": (digest,)}))


def _append(settings: AuditSettings, start: int, end: int) -> None:
    with AuditLog.open(settings) as log:
        for low in range(start, end, 1000):
            log.append_batch([_event(log, i) for i in range(low, min(low + 1000, end))])


@pytest.fixture
def three_epochs(settings: AuditSettings) -> AuditSettings:
    settings = AuditSettings(store=settings.store, witnesses=settings.witnesses, checkpoint_every=1000)
    _append(settings, 0, EPOCH - 10)
    with AuditLog.open(settings) as log:
        for i in range(EPOCH - 10, EPOCH + 10):
            log.append(_event(log, i))
    _append(settings, EPOCH + 10, SIZE)
    return settings


def _store(settings: AuditSettings) -> AuditStore:
    return open_store(store_url(settings))


def _verify(settings: AuditSettings) -> VerifyReport:
    store = _store(settings)
    try:
        return verify_log(store, public_key(settings), witnesses=witnesses(settings), workers=1)
    finally:
        store.close()


def test_each_record_commits_to_its_index_keys(three_epochs: AuditSettings) -> None:
    store = _store(three_epochs)
    try:
        stored = store.record(EPOCH + 5)
        assert stored is not None
        body = json.loads(stored.record)
        (digest,) = body["event"]["unmapped"]["phiwarden"]["value_hmacs"]["ssn"]
        assert body["columns"][-1] == [digest[:16]]
    finally:
        store.close()
    assert _verify(three_epochs).ok


@pytest.mark.parametrize("target", [17, EPOCH + 5, SIZE - 3])
def test_a_deleted_index_row_is_named(three_epochs: AuditSettings, raw: Raw, target: int) -> None:
    raw("DELETE FROM audit_value_hashes WHERE seq = ?", (target,))
    report = _verify(three_epochs)
    assert [(p.seq, p.kind) for p in report.problems] == [(target, "value-index")]


def test_a_row_moved_to_another_event_is_named(three_epochs: AuditSettings, raw: Raw) -> None:
    # Lookup would now say event 21 carried event 20's value.
    raw("UPDATE audit_value_hashes SET seq = 21 WHERE seq = 20", ())
    report = _verify(three_epochs)
    assert [(p.seq, p.kind) for p in report.problems] == [(20, "value-index"), (21, "value-index")]


def test_an_edit_made_while_its_epoch_was_open_stays_found(
    settings: AuditSettings, request: pytest.FixtureRequest
) -> None:
    settings = AuditSettings(store=settings.store, witnesses=settings.witnesses, checkpoint_every=1000)
    _append(settings, 0, 6000)
    raw: Raw = request.getfixturevalue("raw")
    raw("DELETE FROM audit_value_hashes WHERE seq = 5001", ())
    _append(settings, 6000, 9000)
    report = _verify(settings)
    assert [(p.seq, p.kind) for p in report.problems] == [(5001, "value-index")]


def test_a_rewritten_unsealed_tail_does_not_hide_an_edit_of_sealed_events(
    three_epochs: AuditSettings, raw: Raw
) -> None:
    # An attacker deletes event 17's rows and rewrites a record after the last checkpoint (where a
    # later design kept a digest of the index): event 17's own record still says what it carried.
    raw("DELETE FROM audit_value_hashes WHERE seq = 17", ())
    store = _store(three_epochs)
    try:
        tail = store.record(SIZE)
    finally:
        store.close()
    assert tail is not None
    body = json.loads(tail.record)
    body["columns"][-1] = []
    forged = canonical_json(body)
    raw("UPDATE audit_events SET record = ?, hash = ? WHERE seq = ?", (forged, record_hash(forged), SIZE))
    raw("DELETE FROM audit_value_hashes WHERE seq = ?", (SIZE,))
    report = _verify(three_epochs)
    assert not report.ok and 17 in {p.seq for p in report.problems}


_PREPARE = ledger.prepare


def _legacy_prepare(event: AuditEvent) -> ledger.Prepared:
    """`prepare` as it was before records committed to their columns (logs written then)."""
    ocsf = event.to_ocsf()
    ocsf["metadata"]["logged_time"] = ocsf["metadata"]["sequence"] = SLOT
    pieces = canonical_pieces({"event": ocsf, "prev_hash": SLOT, "sequence": SLOT}, 4)
    return _PREPARE(event)._replace(pieces=pieces)


def test_records_written_before_committed_columns_verify_and_edits_are_found(
    settings: AuditSettings, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    with monkeypatch.context() as legacy:
        legacy.setattr(log_module, "prepare", _legacy_prepare)
        _append(settings, 0, 40)
    _append(settings, 40, 60)
    assert _verify(settings).ok
    raw: Raw = request.getfixturevalue("raw")
    raw("UPDATE audit_events SET actor = 'mallory@example.org' WHERE seq IN (7, 47)", ())
    raw("DELETE FROM audit_value_hashes WHERE seq IN (9, 49)", ())
    report = _verify(settings)
    assert [(p.seq, p.kind) for p in report.problems] == [
        (7, "derived"),
        (9, "value-index"),
        (47, "derived"),
        (49, "value-index"),
    ]


def test_columns_the_database_writes_as_other_json_are_compared_by_value(
    settings: AuditSettings, request: pytest.FixtureRequest
) -> None:
    # A tool name with a line break and a tab: SQLite's JSON escapes them otherwise than the record.
    with AuditLog.open(settings) as log:
        log.append_batch(
            [replace(make_event(i), actor=Actor("ana@example.org", client_tool="x\n\ty")) for i in range(5)]
        )
    assert _verify(settings).ok
    raw: Raw = request.getfixturevalue("raw")
    raw("UPDATE audit_events SET tool = 'x' WHERE seq = 3", ())
    assert [(p.seq, p.kind) for p in _verify(settings).problems] == [(3, "derived")]
