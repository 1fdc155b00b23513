"""The stored record, byte for byte: what every hash, signature and `verify` covers must not drift.

Logs written by earlier versions are verified by later ones, so a change to these bytes is a change
of format, never a side effect of making the encoder faster.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

from phiwarden.audit import (
    Actor,
    Approval,
    AuditEvent,
    AuditLog,
    Classification,
    Decision,
    Endpoint,
    Resource,
)
from phiwarden.audit.canonical import (
    GENESIS_HASH,
    SLOT,
    CanonicalError,
    canonical_pieces,
    record_bytes,
    record_hash,
    record_suffix,
)
from phiwarden.audit.ledger import EVENT_COLUMNS, Head, columns_of, prepare, seal
from phiwarden.audit.log import open_store, public_key, store_url, witnesses
from phiwarden.audit.merkle import Frontier
from phiwarden.audit.verify import VerifyReport, verify_log
from phiwarden.policy.audit import AuditSettings

from .conftest import Raw, make_event

PREV = bytes(range(32))
LOGGED_MS = 1740830400999

# Every field set, and text that JSON must escape (quotes, backslash, newline, NUL) or pass as UTF-8.
FULL = AuditEvent(
    actor=Actor("ana@example.org", "okta", "s-1", "Claude Code", "coder", "claude-sonnet-4"),
    operation="anthropic.messages.create",
    decision=Decision(
        "hold", "acme", "7", rule="restricted-to-cloud", reason='PHI "quoted" \\ 100% é 🩺\n\x00'
    ),
    classification=Classification(
        "restricted", {"ssn": 2, "name": 1}, {"ssn": ("a" * 64, "b" * 64), "name": ("c" * 64,)}
    ),
    src_endpoint=Endpoint(hostname="laptop-7", ip="10.1.2.3", port=51000),
    dst_endpoint=Endpoint(
        hostname="api.anthropic.com", port=443, name="anthropic-enterprise", service="messages"
    ),
    resources=(Resource("file", "src/a.py", "u1"), Resource("repo")),
    approval=Approval("lead@example.org", "approved", datetime(2025, 3, 1, 12, 0, 1, tzinfo=UTC)),
    status="failure",
    latency_ms=35,
    activity="create",
    correlation_id="req-1",
    message="held for review",
    time=datetime(2025, 3, 1, 12, 0, 0, 123000, tzinfo=UTC),
    uid="01956a2e-0000-7000-8000-000000000001",
)

FULL_RECORD = (
    b'{"event":{"action_id":1,"activity_id":1,"actor":{"app_name":"Claude Code","idp":{"name":"okta"},'
    b'"session":{"uid":"s-1"},"user":{"uid":"ana@example.org"}},"ai_agent":{"name":"coder"},'
    b'"ai_model":{"name":"claude-sonnet-4"},"api":{"operation":"anthropic.messages.create"},'
    b'"category_uid":6,"class_uid":6003,"data_classification":{"category_id":1,"confidentiality_id":6,'
    b'"discovery_details":[{"count":1,"type":"name"},{"count":2,"type":"ssn"}],"total":3},'
    b'"disposition_id":14,"dst_endpoint":{"hostname":"api.anthropic.com","name":"anthropic-enterprise",'
    b'"port":443,"svc_name":"messages"},"duration":35,"message":"held for review",'
    b'"metadata":{"correlation_uid":"req-1","logged_time":1740830400999,"sequence":7,'
    b'"uid":"01956a2e-0000-7000-8000-000000000001","version":"1.8.0"},"policy":{"uid":"acme","version":"7"},'
    b'"resources":[{"name":"src/a.py","type":"file","uid":"u1"},{"type":"repo"}],"severity_id":3,'
    b'"src_endpoint":{"hostname":"laptop-7","ip":"10.1.2.3","port":51000},"status_id":2,'
    b'"time":1740830400123,"type_uid":600301,"unmapped":{"phiwarden":{"action":"hold",'
    b'"approval":{"approver":"lead@example.org","decision":"approved","time":1740830401000},'
    b'"reason":"PHI \\"quoted\\" \\\\ 100% \xc3\xa9 \xf0\x9f\xa9\xba\\n\\u0000","rule":"restricted-to-cloud",'
    b'"tier":"restricted","value_hmacs":{"name":['
    b'"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"],"ssn":['
    b'"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",'
    b'"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"]}}}},'
    b'"prev_hash":"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",'
    b'"sequence":7}'
)


def test_the_record_of_an_event_is_fixed() -> None:
    assert record_bytes(FULL.to_ocsf(sequence=7, logged_time_ms=LOGGED_MS), PREV, 7) == FULL_RECORD


# Only what an event must have: absent fields are left out, never written as null.
MINIMAL = AuditEvent(
    actor=Actor("svc"),
    operation="scan",
    decision=Decision("allow", "p", "1"),
    classification=Classification("public"),
    time=datetime(2025, 3, 1, tzinfo=UTC),
    uid="01956a2e-0000-7000-8000-000000000002",
)

MINIMAL_RECORD = (
    b'{"event":{"action_id":1,"activity_id":99,"actor":{"user":{"uid":"svc"}},"api":{"operation":"scan"},'
    b'"category_uid":6,"class_uid":6003,"data_classification":{"category_id":0,"confidentiality_id":1,'
    b'"discovery_details":[],"total":0},"disposition_id":1,"metadata":{"logged_time":1740830400999,'
    b'"sequence":1,"uid":"01956a2e-0000-7000-8000-000000000002","version":"1.8.0"},'
    b'"policy":{"uid":"p","version":"1"},"severity_id":1,"src_endpoint":{},"status_id":1,'
    b'"time":1740787200000,"type_uid":600399,"unmapped":{"phiwarden":{"action":"allow","tier":"public"}}},'
    b'"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","sequence":1}'
)


def test_the_record_of_a_minimal_event_is_fixed() -> None:
    assert record_bytes(MINIMAL.to_ocsf(sequence=1, logged_time_ms=LOGGED_MS), bytes(32), 1) == MINIMAL_RECORD


def test_secrets_alone_are_classified_as_security_data() -> None:
    event = replace(MINIMAL, classification=Classification("internal", {"secret": 1}))
    assert event.to_ocsf()["data_classification"] == {
        "category_id": 6,
        "confidentiality_id": 2,
        "discovery_details": [{"type": "secret", "count": 1}],
        "total": 1,
    }


def _sealed_record(event: AuditEvent, head: Head, monkeypatch: pytest.MonkeyPatch) -> bytes:
    # Half a millisecond past LOGGED_MS, so float rounding cannot move the truncated milliseconds.
    monkeypatch.setattr(time, "time", lambda: (LOGGED_MS + 0.5) / 1000)
    sealed = seal(head, [prepare(event)])
    record: bytes = sealed.rows[0][EVENT_COLUMNS.index("record")]
    return record


# Records open with what the store indexes them by: the search columns, then the value-HMAC prefixes.
FULL_COLUMNS = (
    b'{"columns":[1740830400123,"01956a2e-0000-7000-8000-000000000001","ana@example.org","Claude Code",'
    b'"anthropic-enterprise","hold","restricted",",name=1,ssn=2,","failure","anthropic.messages.create",'
    b'["aaaaaaaaaaaaaaaa","bbbbbbbbbbbbbbbb","cccccccccccccccc"]],'
)
MINIMAL_COLUMNS = (
    b'{"columns":[1740787200000,"01956a2e-0000-7000-8000-000000000002","svc",null,null,"allow","public",",",'
    b'"success","scan",[]],'
)


def test_sealing_a_prepared_event_writes_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    head = Head(6, PREV, Frontier(6, [b"a" * 32, b"b" * 32]))
    assert _sealed_record(FULL, head, monkeypatch) == FULL_COLUMNS + FULL_RECORD[1:]
    assert _sealed_record(MINIMAL, Head.empty(), monkeypatch) == MINIMAL_COLUMNS + MINIMAL_RECORD[1:]


# Any text that is UTF-8 (an event with a lone surrogate is refused, see below), NUL and "%" included.
_text = st.text(st.characters(codec="utf-8"), max_size=12)


@examples(max_examples=200, deadline=None)
@given(
    user=_text.filter(bool),
    texts=st.lists(st.none() | _text, min_size=6, max_size=6),
    port=st.none() | st.integers(0, 65535),
    counts=st.dictionaries(st.sampled_from(["ssn", "name", "secret", "mrn"]), st.integers(0, 2**40)),
    size=st.integers(0, 2**40),
)
def test_prepare_then_seal_equals_the_reference_encoding(
    user: str, texts: list[str | None], port: int | None, counts: dict[str, int], size: int
) -> None:
    event = replace(
        FULL,
        actor=Actor(user, texts[0], texts[1], texts[2]),
        decision=Decision("mask", "acme", "7", rule=texts[3], reason=texts[4]),
        classification=Classification("internal", counts, dict.fromkeys(counts, ("d" * 64,))),
        src_endpoint=Endpoint(hostname=texts[5], port=port),
        message=texts[4],
        correlation_id=texts[0],
    )
    head = Head(size, PREV, Frontier(size, [bytes([n]) * 32 for n in range(size.bit_count())]))
    sealed = seal(head, [prepare(event)])
    record = sealed.rows[0][EVENT_COLUMNS.index("record")]
    logged = json.loads(record)["event"]["metadata"]["logged_time"]
    committed = [*columns_of(event), ["d" * 16] if counts else []]
    assert record == record_bytes(
        event.to_ocsf(sequence=size + 1, logged_time_ms=logged), PREV, size + 1, columns=committed
    )
    assert sealed.receipts[0].hash == record_hash(record).hex() == head.last_hash.hex()


def test_a_value_with_the_wrong_number_of_slots_is_refused() -> None:
    assert canonical_pieces({"b": SLOT, "a": [SLOT, "x"]}, 2) == [b'{"a":[', b',"x"],"b":', b"}"]
    with pytest.raises(CanonicalError, match="expected 1 slot"):
        canonical_pieces({"a": SLOT, "b": SLOT}, 1)


@pytest.fixture
def created(settings: AuditSettings) -> AuditSettings:
    """The store and keys exist (before `raw` connects to the database)."""
    AuditLog.open(settings).close()
    return settings


def test_a_batch_verifies_and_a_changed_row_in_it_is_found(created: AuditSettings, raw: Raw) -> None:
    settings = created
    with AuditLog.open(settings) as log:
        receipts = log.append_batch([FULL, MINIMAL, *(make_event(i) for i in range(30))])
        stored = [log.store.record(r.sequence) for r in receipts]
    assert [r.sequence for r in receipts] == list(range(1, 33))
    prev = GENESIS_HASH
    for receipt, row in zip(receipts, stored, strict=True):
        assert row is not None and row.hash.hex() == receipt.hash
        assert row.record.endswith(record_suffix(prev, receipt.sequence))
        prev = row.hash
    assert _verify(settings).ok
    assert stored[1] is not None
    raw("UPDATE audit_events SET record = ? WHERE seq = 2", (stored[1].record.replace(b"svc", b"eve"),))
    report = _verify(settings)
    assert not report.ok and report.first_bad == 2 and report.problems[0].kind == "modified"


def test_an_event_that_cannot_be_encoded_fails_its_batch_before_anything_is_written(
    settings: AuditSettings,
) -> None:
    unencodable = replace(MINIMAL, message="\ud800")
    with AuditLog.open(settings) as log:
        log.append(make_event(0))
        with pytest.raises(CanonicalError):
            log.append_batch([make_event(1), unencodable])
        assert log.store.head().size == 1
        assert log.append(make_event(2)).sequence == 2
    assert _verify(settings).ok


def _verify(settings: AuditSettings) -> VerifyReport:
    store = open_store(store_url(settings))
    try:
        return verify_log(store, public_key(settings), witnesses=witnesses(settings), workers=1)
    finally:
        store.close()
