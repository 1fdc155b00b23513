"""The value-hash index, epoch by epoch: the first record of each epoch commits to the digest of the
previous epoch's index rows, and verification compares one digest per epoch instead of every row,
falling back to the rows (which names the events) wherever the digest does not hold. Both stores."""

from __future__ import annotations

import json

import pytest

from phiwarden.audit import AuditLog, Classification, verify_scan
from phiwarden.audit.canonical import canonical_json, record_hash
from phiwarden.audit.event import AuditEvent
from phiwarden.audit.ledger import lookup_index_digest
from phiwarden.audit.log import open_store, public_key, store_url, witnesses
from phiwarden.audit.store import AuditStore
from phiwarden.audit.verify import VerifyReport, verify_log
from phiwarden.policy.audit import AuditSettings

from .conftest import Raw, make_event

EPOCH = 4096
# Two whole epochs and part of a third; the batches cross both boundaries and one appends alone.
SIZE = 2 * EPOCH + 300


@pytest.fixture
def three_epochs(settings: AuditSettings) -> AuditSettings:
    settings = AuditSettings(store=settings.store, witnesses=settings.witnesses, checkpoint_every=1000)
    with AuditLog.open(settings) as log:

        def event(i: int) -> AuditEvent:
            digest = log.hash_value(f"900-00-{i:04d}")
            return make_event(i, classification=Classification("restricted", {"ssn": 1}, {"ssn": (digest,)}))

        log.append_batch([event(i) for i in range(EPOCH - 10)])
        for i in range(EPOCH - 10, EPOCH + 10):
            log.append(event(i))
        log.append_batch([event(i) for i in range(EPOCH + 10, SIZE)])
    return settings


def _store(settings: AuditSettings) -> AuditStore:
    return open_store(store_url(settings))


def _verify(settings: AuditSettings) -> VerifyReport:
    store = _store(settings)
    try:
        return verify_log(store, public_key(settings), witnesses=witnesses(settings), workers=1)
    finally:
        store.close()


def test_each_epochs_first_record_commits_to_the_previous_epochs_index(three_epochs: AuditSettings) -> None:
    store = _store(three_epochs)
    try:
        for epoch in (0, 1):
            opening = store.record((epoch + 1) * EPOCH)
            assert opening is not None
            member = json.loads(opening.record)["lookup_index"]
            assert member == {"epoch": epoch, "sha256": store.index_digest(epoch)}
        others = [store.record(seq) for seq in (1, EPOCH - 1, EPOCH + 1, 2 * EPOCH + 1)]
        assert all(r is not None and b"lookup_index" not in r.record for r in others)
    finally:
        store.close()


def test_the_digest_is_of_the_rows_in_key_order() -> None:
    assert lookup_index_digest(3, "-5,7", "12290,12289") != lookup_index_digest(3, "7,-5", "12289,12290")
    assert lookup_index_digest(3, None, None) == lookup_index_digest(3, "", "")


def test_whole_epochs_are_proven_by_their_digest_and_the_open_one_row_by_row(
    three_epochs: AuditSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[int, int]] = []
    row_by_row = verify_scan._expected_index_rows

    def spy(store: AuditStore, first: int, last: int, unchecked: set[int]) -> set[tuple[int, int, int]]:
        compared.append((first, last))
        return row_by_row(store, first, last, unchecked)

    monkeypatch.setattr(verify_scan, "_expected_index_rows", spy)
    report = _verify(three_epochs)
    assert report.ok, report.problems
    assert compared == [(2 * EPOCH, SIZE)]


@pytest.mark.parametrize("target", [17, EPOCH + 5])
def test_a_deleted_row_in_a_digested_epoch_is_named(
    three_epochs: AuditSettings, raw: Raw, target: int
) -> None:
    raw("DELETE FROM audit_value_hashes WHERE seq = ?", (target,))
    report = _verify(three_epochs)
    assert [(p.seq, p.kind) for p in report.problems] == [(target, "value-index")]


def test_a_row_moved_to_another_event_is_named(three_epochs: AuditSettings, raw: Raw) -> None:
    # Lookup would now say event 21 carried event 20's value.
    raw("UPDATE audit_value_hashes SET seq = 21 WHERE seq = 20", ())
    report = _verify(three_epochs)
    assert [(p.seq, p.kind) for p in report.problems] == [(20, "value-index"), (21, "value-index")]


def test_a_digest_rewritten_to_match_edited_rows_breaks_the_chain(
    three_epochs: AuditSettings, raw: Raw
) -> None:
    raw("DELETE FROM audit_value_hashes WHERE seq = 17", ())
    store = _store(three_epochs)
    try:
        opening = store.record(EPOCH)
        forged_digest = store.index_digest(0)
    finally:
        store.close()
    assert opening is not None
    body = json.loads(opening.record)
    body["lookup_index"]["sha256"] = forged_digest
    forged = canonical_json(body)
    raw("UPDATE audit_events SET record = ?, hash = ? WHERE seq = ?", (forged, record_hash(forged), EPOCH))
    report = _verify(three_epochs)
    assert not report.ok and report.first_bad == EPOCH
