"""Inclusion and consistency proofs checked offline; retention with signed prune records and legal hold."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from phiwarden.audit import AuditLog, Classification
from phiwarden.audit.keys import VerifyKey
from phiwarden.audit.ledger import NODE_CACHE_LEVEL
from phiwarden.audit.log import load_signing_key, open_store, public_key, store_url, witnesses
from phiwarden.audit.proof import ProofError, check_proof, consistency_proof, inclusion_proof
from phiwarden.audit.retention import RetentionError, prune
from phiwarden.audit.verify import verify_log
from phiwarden.policy.audit import AuditSettings, SinkSettings

from .conftest import fill, make_event

DAY = 86_400_000


@pytest.fixture
def big(settings: AuditSettings) -> AuditSettings:
    """A log long enough to use cached interior nodes (more than 2**10 events)."""
    with AuditLog.open(settings) as log:
        for start in range(0, 2600, 650):
            fill(log, 650, start)
    return settings


def test_inclusion_proof_checks_offline_and_detects_alteration(big: AuditSettings) -> None:
    key = public_key(big)
    store = open_store(store_url(big))
    try:
        assert store.node(NODE_CACHE_LEVEL, 1) is not None
        proofs = {seq: inclusion_proof(store, seq) for seq in (1, 1024, 1025, 2047, 2600)}
    finally:
        store.close()
    for seq, proof in proofs.items():
        assert proof["tree_size"] == 2600 and len(proof["inclusion_path"]) <= 12
        result = check_proof(json.dumps(proof), VerifyKey.from_pem(key.pem()))
        assert result.ok, result.messages
        assert result.event is not None and result.event["metadata"]["sequence"] == seq
    forged = dict(proofs[1025], record=proofs[1025]["record"].replace("dev", "eve", 1))
    assert not check_proof(forged, key).ok
    moved = dict(proofs[1025], sequence=1026)
    assert not check_proof(moved, key).ok
    # The plain fields a reader of the file sees are held to what is signed too.
    for name, value in (
        ("log_id", "another-log"),
        ("leaf_index", 7),
        ("tree_size", 9999),
        ("leaf_hash", "00"),
    ):
        edited = check_proof(dict(proofs[1025], **{name: value}), key)
        assert not edited.ok and f"the proof's {name} field says" in " ".join(edited.messages)


def test_proof_with_another_key_fails(big: AuditSettings, tmp_path: Path) -> None:
    from phiwarden.audit.keys import SigningKey

    stranger = SigningKey.load(tmp_path / "stranger" / "k.key", create=True).public
    store = open_store(store_url(big))
    try:
        proof = inclusion_proof(store, 7)
    finally:
        store.close()
    assert not check_proof(proof, stranger).ok


def test_consistency_proof_between_checkpoints(big: AuditSettings) -> None:
    store = open_store(store_url(big))
    try:
        checkpoints = store.checkpoints()
        proof = consistency_proof(store, checkpoints[0], checkpoints[-1])
    finally:
        store.close()
    assert check_proof(proof, public_key(big)).ok
    tampered = dict(proof, consistency_path=proof["consistency_path"][::-1])
    assert not check_proof(tampered, public_key(big)).ok
    for name in ("old_size", "new_size"):
        assert not check_proof(dict(proof, **{name: proof[name] + 1}), public_key(big)).ok


def test_no_proof_before_a_checkpoint_covers_the_event(tmp_path: Path) -> None:
    settings = AuditSettings(
        store=f"sqlite:///{tmp_path / 'db' / 'a.db'}", witnesses=(), checkpoint_every=100
    )
    log = AuditLog.open(settings)
    fill(log, 3)
    with pytest.raises(ProofError, match="no checkpoint"):
        inclusion_proof(log.store, 2)
    log.close()  # closing seals the rest
    store = open_store(store_url(settings))
    try:
        assert check_proof(inclusion_proof(store, 2), public_key(settings)).ok
    finally:
        store.close()


def _age_checkpoints(settings: AuditSettings, days: int) -> None:
    """Pretend the log was written `days` ago: re-sign the checkpoints with older times."""
    from dataclasses import replace

    from phiwarden.audit.checkpoint import sign

    key = load_signing_key(settings, store_url(settings), create=False)
    store = open_store(store_url(settings))
    try:
        signed = [
            sign(replace(c.statement, time_ms=c.statement.time_ms - days * DAY), key)
            for c in store.checkpoints()
        ]
        with store._write() as cur:
            cur.execute("DELETE FROM audit_checkpoints")
        for item in signed:
            store.add_checkpoint(item)
    finally:
        store.close()


def test_prune_removes_whole_sealed_segments_and_verify_still_passes(big: AuditSettings) -> None:
    with AuditLog.open(big) as log:
        digest = log.hash_value("123-45-6789")
        fill(log, 9, 5000)  # a recent segment stays
        log.append(
            make_event(5009, classification=Classification("restricted", {"ssn": 1}, {"ssn": (digest,)}))
        )
    _age_checkpoints(big, 3000)
    with AuditLog.open(big) as log:
        fill(log, 4, 6000)
        log.append(
            make_event(6004, classification=Classification("restricted", {"ssn": 1}, {"ssn": (digest,)}))
        )
    settings = AuditSettings(store=big.store, witnesses=big.witnesses, retention_days=2196)
    key = load_signing_key(settings, store_url(settings), create=False)
    store = open_store(store_url(settings))
    try:
        result = prune(store, settings, key)
        assert result.plan is not None and result.removed == result.plan.count == 2610
        assert store.first_sequence() == 2611
        assert store.lookup(digest) == [2615]
        with store._read() as cur:
            cur.execute("SELECT COUNT(*) FROM audit_value_hashes")
            assert cur.fetchone()[0] == 1  # the pruned event's value-index entry went with it
        report = verify_log(store, key.public, witnesses=witnesses(settings), workers=1)
        assert report.ok, report.problems
        assert report.pruned == 2610 and report.events_checked == 5
        assert check_proof(inclusion_proof(store, 2612), key.public).ok
        with pytest.raises(ProofError):
            inclusion_proof(store, 5)
        assert prune(store, settings, key).plan is None
        # Forging a bigger prune range is caught: the record is signed.
        with store._write() as cur:
            cur.execute(store._sql("DELETE FROM audit_events WHERE seq = 2611"))
        assert verify_log(store, key.public, workers=1).first_bad == 2611
    finally:
        store.close()


def test_legal_hold_and_unforwarded_events_stop_pruning(big: AuditSettings) -> None:
    _age_checkpoints(big, 3000)
    key = load_signing_key(big, store_url(big), create=False)
    store = open_store(store_url(big))
    try:
        held = AuditSettings(store=big.store, legal_hold=True)
        with pytest.raises(RetentionError, match="legal hold"):
            prune(store, held, key)
        pending = AuditSettings(
            store=big.store, sinks=(SinkSettings(name="siem", url="syslog+udp://127.0.0.1:9"),)
        )
        assert prune(store, pending, key, dry_run=True).plan is None
        store.set_cursor("siem", 1300)
        plan = prune(store, pending, key, dry_run=True).plan
        assert plan is not None and plan.last <= 1300
        assert store.first_sequence() == 1  # dry run
    finally:
        store.close()


def test_pci_style_archive_keeps_segments_out_of_the_store(big: AuditSettings, tmp_path: Path) -> None:
    _age_checkpoints(big, 100)
    settings = AuditSettings(
        store=big.store, retention_days=365, online_days=90, archive_dir=str(tmp_path / "archive")
    )
    key = load_signing_key(settings, store_url(settings), create=False)
    store = open_store(store_url(settings))
    try:
        result = prune(store, settings, key, now_ms=int(time.time() * 1000))
    finally:
        store.close()
    assert result.plan is not None and result.plan.archive is not None
    files = list((tmp_path / "archive").glob("*.jsonl"))
    lines = files[0].read_text().splitlines()
    assert len(lines) == result.removed + 2 and "phiwarden.audit.prune/v1" in lines[-1]
    assert "phiwarden.audit.archive/v1" in lines[0]
