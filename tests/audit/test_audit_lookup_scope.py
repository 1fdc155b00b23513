"""`lookup` probes only the epochs of the events the store holds, so stray index rows cost nothing."""

from __future__ import annotations

import time

import pytest

from phiwarden.audit import AuditLog, Classification
from phiwarden.audit.ledger import VALUE_EPOCH_BITS, value_key
from phiwarden.policy.audit import AuditSettings

from .conftest import fill, make_event

SSN = "518-42-7731"


def _carrying(log: AuditLog, index: int, digest: str) -> None:
    log.append(make_event(index, classification=Classification("restricted", {"ssn": 1}, {"ssn": (digest,)})))


def test_a_stray_index_row_far_beyond_the_log_neither_hangs_nor_answers(
    settings: AuditSettings, request: pytest.FixtureRequest
) -> None:
    with AuditLog.open(settings) as log:
        digest = log.hash_value(SSN)
        fill(log, 4)
        _carrying(log, 4, digest)
        fill(log, 5, start=5)
        key = value_key(digest)
        raw = request.getfixturevalue("raw")  # the store exists now
        # The review's row: epoch 10^12 (sequence ~4*10^15); the old lookup probed every epoch up to it.
        raw("INSERT INTO audit_value_hashes (epoch, hmac_key, seq) VALUES (?, ?, ?)", (10**12, key, 7))
        raw("INSERT INTO audit_value_hashes (epoch, hmac_key, seq) VALUES (?, ?, ?)", (3, key, 3 << 12))
        began = time.monotonic()
        assert log.store.lookup(digest) == [5]
        assert time.monotonic() - began < 2


def test_a_row_inside_the_log_that_its_event_does_not_carry_is_not_an_answer(
    settings: AuditSettings, request: pytest.FixtureRequest
) -> None:
    with AuditLog.open(settings) as log:
        digest = log.hash_value(SSN)
        fill(log, 10)
        raw = request.getfixturevalue("raw")
        raw(
            "INSERT INTO audit_value_hashes (epoch, hmac_key, seq) VALUES (?, ?, ?)",
            (6 >> VALUE_EPOCH_BITS, value_key(digest), 6),
        )
        assert log.store.lookup(digest) == []


def test_an_empty_store_finds_nothing(settings: AuditSettings) -> None:
    with AuditLog.open(settings) as log:
        assert log.store.lookup(log.hash_value(SSN)) == []
