"""Appending and verifying on both stores: durability contract, order, keys kept apart."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

import pytest

from phiwarden.audit import AuditKeyError, AuditLog, Classification, EventError, hash_value
from phiwarden.audit.event import AuditEvent
from phiwarden.audit.keys import HmacKey
from phiwarden.audit.ledger import VALUE_EPOCH_BITS
from phiwarden.audit.log import open_store, public_key, store_url, witnesses
from phiwarden.audit.verify import VerifyReport, verify_log
from phiwarden.policy.audit import AuditSettings

from .conftest import fill, make_event


def _verify(settings: AuditSettings) -> VerifyReport:
    store = open_store(store_url(settings))
    try:
        return verify_log(store, public_key(settings), witnesses=witnesses(settings), workers=1)
    finally:
        store.close()


def test_append_returns_dense_receipts_and_the_log_verifies(settings: AuditSettings) -> None:
    with AuditLog.open(settings) as log:
        first = log.append(make_event(0))
        rest = log.append_batch([make_event(i) for i in range(1, 25)])
        assert [r.sequence for r in [first, *rest]] == list(range(1, 26))
        assert log.store.head().size == 25
    report = _verify(settings)
    assert report.ok, report.problems
    assert report.events_checked == 25
    assert report.latest_checkpoint == 25 and report.witness_checkpoints == 1


def test_stored_record_is_an_ocsf_event_chained_to_its_predecessor(settings: AuditSettings) -> None:
    with AuditLog.open(settings) as log:
        receipts = log.append_batch([make_event(1), make_event(2)])
        stored = log.store.record(2)
    assert stored is not None
    data = json.loads(stored.record)
    assert data["sequence"] == 2 and data["prev_hash"] == receipts[0].hash
    event = data["event"]
    assert event["class_uid"] == 6003 and event["type_uid"] == 600301
    assert event["metadata"]["sequence"] == 2 and event["metadata"]["correlation_uid"] == "req-2"
    assert (
        event["actor"]["app_name"] == "Claude Code"
        and event["api"]["operation"] == "anthropic.messages.create"
    )
    assert AuditEvent.from_ocsf(event) == make_event(2, uid=event["metadata"]["uid"])


def test_event_round_trips_through_ocsf() -> None:
    event = make_event(5)
    assert AuditEvent.from_ocsf(event.to_ocsf(sequence=1)) == event


@pytest.mark.parametrize(
    "classification",
    [
        Classification("restricted", {"ssn": 1}, {"ssn": ("123-45-6789",)}),
        Classification("restricted", {"ssn": 1}, {"ssn": "a" * 64}),  # type: ignore[dict-item]
        Classification("restricted", {"SSN!": 1}),
        Classification("restricted", {"ssn": 1.5}),  # type: ignore[dict-item]
        Classification("restricted", {"ssn": 2**53 - 1, "mrn": 1}),  # the total overflows I-JSON
    ],
)
def test_events_that_could_carry_raw_values_are_refused(classification: Classification) -> None:
    with pytest.raises(EventError):
        make_event(1, classification=classification)


def test_the_hmac_key_does_not_show_its_secret() -> None:
    key = HmacKey(b"\x01" * 32)
    assert "x01" not in repr(key) and str(b"\x01" * 32) not in str(key)


def test_keys_are_created_private_and_apart_from_the_database(
    settings: AuditSettings, tmp_path: Path
) -> None:
    AuditLog.open(settings).close()
    keys = tmp_path / "xdg_config_home" / "phiwarden" / "keys"
    for name in ("audit-signing.key", "audit-hmac.key"):
        assert stat.S_IMODE((keys / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    store = open_store(store_url(settings))
    try:
        rows = [text for _, text, _ in store.checkpoint_rows()]
        assert store.meta("signing_key_id") and "PRIVATE" not in "".join(rows)
    finally:
        store.close()


def test_key_next_to_the_database_or_readable_by_others_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "db" / "audit.db"
    beside = AuditSettings(store=f"sqlite:///{db}", signing_key=str(db.parent / "signing.key"))
    with pytest.raises(AuditKeyError, match="same directory"):
        AuditLog.open(beside)
    AuditLog.open(AuditSettings(store=f"sqlite:///{db}")).close()
    key = tmp_path / "xdg_config_home" / "phiwarden" / "keys" / "audit-signing.key"
    key.chmod(0o644)
    with pytest.raises(AuditKeyError, match="chmod 600"):
        AuditLog.open(AuditSettings(store=f"sqlite:///{db}"))


def test_a_writer_with_another_key_is_refused(settings: AuditSettings, tmp_path: Path) -> None:
    AuditLog.open(settings).close()
    other = AuditSettings(store=settings.store, signing_key=str(tmp_path / "other" / "k.key"), witnesses=())
    with pytest.raises(AuditKeyError, match="signing key"):
        AuditLog.open(other)


def test_value_hashes_are_keyed_normalized_and_not_plain_sha256(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import hashlib

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PHIWARDEN_AUDIT_HMAC_KEY", "cd" * 32)
    first = hash_value("123-45-6789")
    assert first == hash_value("123 45 6789") == hash_value("123456789")
    assert first != hashlib.sha256(b"123456789").hexdigest()
    monkeypatch.setenv("PHIWARDEN_AUDIT_HMAC_KEY", "ab" * 32)
    assert hash_value("123-45-6789") != first


def test_concurrent_threads_share_one_log(settings: AuditSettings) -> None:
    with AuditLog.open(settings) as log:
        threads = [threading.Thread(target=fill, args=(log, 20, 100 * t)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert log.store.head().size == 80
    assert _verify(settings).ok


def test_several_writers_on_one_store_keep_one_order(settings: AuditSettings) -> None:
    logs = [AuditLog.open(settings) for _ in range(3)]
    try:
        threads = [threading.Thread(target=fill, args=(log, 15, 100 * n)) for n, log in enumerate(logs)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for log in logs:
            log.close()
    report = _verify(settings)
    assert report.ok and report.events_checked == 45


def test_writers_on_one_store_seal_once_per_checkpoint_every_events(settings: AuditSettings) -> None:
    # Each writer sees the others' events and the newest stored checkpoint in its own transaction,
    # so alternating writers seal every 10 events of the log, not every 10 of their own.
    logs = [AuditLog.open(settings) for _ in range(2)]
    try:
        for i in range(40):
            logs[i % 2].append(make_event(i))
        sizes = [c.statement.tree_size for c in logs[0].store.checkpoints()]
    finally:
        for log in logs:
            log.close()
    assert sizes == [10, 20, 30, 40]
    assert _verify(settings).ok


def test_checkpoints_sealed_by_appends_are_marked_published(settings: AuditSettings) -> None:
    with AuditLog.open(settings) as log:
        fill(log, 10)
        store = log.store
        # Stored with the batch that made it due; marked published by the next append (or close).
        assert [(size, published) for size, _, published in store.checkpoint_rows()] == [(10, False)]
        log.append(make_event(10))
        assert [(size, published) for size, _, published in store.checkpoint_rows()] == [(10, True)]
        fill(log, 9, start=11)
    store = open_store(store_url(settings))
    try:
        assert [(size, published) for size, _, published in store.checkpoint_rows()] == [
            (10, True),
            (20, True),
        ]
    finally:
        store.close()


def test_a_checkpoint_the_witness_refused_stays_unpublished(settings: AuditSettings, tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")
    failing = AuditSettings(
        store=settings.store, witnesses=(f"file://{blocked.as_posix()}/w.jsonl",), checkpoint_every=10
    )
    with AuditLog.open(failing) as log:
        fill(log, 10)
        fill(log, 2, start=10)
        assert [(size, published) for size, _, published in log.store.checkpoint_rows()] == [(10, False)]
    store = open_store(store_url(failing))
    try:
        assert [published for _, _, published in store.checkpoint_rows()] == [False, False]
    finally:
        store.close()


def test_lookup_finds_a_value_in_every_epoch_of_the_value_index(settings: AuditSettings) -> None:
    epoch = 1 << VALUE_EPOCH_BITS
    carried = {1, epoch - 1, epoch, 2 * epoch + 5, 3 * epoch + 1}
    with AuditLog.open(settings) as log:
        digest, other = log.hash_value("123-45-6789"), log.hash_value("987-65-4321")
        assert log.store.lookup(digest) == []
        others = [seq for seq in range(1, 3 * epoch + 10) if seq % 97 == 0]
        events = [
            make_event(
                seq,
                classification=Classification(
                    "restricted",
                    {"ssn": 1},
                    {"ssn": (digest,) if seq in carried else (other,) if seq in others else ()},
                ),
            )
            for seq in range(1, 3 * epoch + 10)
        ]
        for start in range(0, len(events), 1000):
            log.append_batch(events[start : start + 1000])
        assert log.store.lookup(digest) == sorted(carried)
        assert log.store.lookup(other) == others
        assert log.store.lookup(log.hash_value("000-00-0000")) == []


def test_value_hashes_are_hmac_sha256_of_the_normalized_value_from_any_thread() -> None:
    import hashlib
    import hmac
    from concurrent.futures import ThreadPoolExecutor

    from phiwarden.audit.keys import HmacKey, normalize_value

    key = HmacKey(bytes(range(32)))
    values = [f"{n:09d}" for n in range(2000)] + ["Ana Díaz", "ＡＢＣ", "", "  ", "123-45-6789"]

    def reference(value: str) -> str:
        return hmac.new(key.secret, normalize_value(value).encode(), hashlib.sha256).hexdigest()

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(key.hash_value, values)) == [reference(v) for v in values]
    assert key == HmacKey(bytes(range(32))) and key != HmacKey(bytes(32))
    assert "_keyed" not in repr(key)


def test_event_uids_are_time_ordered_uuid7() -> None:
    import uuid

    from phiwarden.audit.event import uuid7

    uids = [uuid7() for _ in range(2000)]
    for text in uids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert len(set(uids)) == len(uids)
    milliseconds = [int(text.replace("-", "")[:12], 16) for text in uids]
    assert milliseconds == sorted(milliseconds)


def test_a_new_sqlite_store_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    settings = AuditSettings(store=f"sqlite:///{tmp_path / 'new' / 'audit.db'}", witnesses=())
    with AuditLog.open(settings) as log:
        log.append(make_event(0))
        for name in ("audit.db", "audit.db-wal", "audit.db-shm"):
            assert stat.S_IMODE((tmp_path / "new" / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
