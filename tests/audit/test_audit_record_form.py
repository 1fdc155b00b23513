"""The stored record, byte for byte: what every hash, signature and `verify` covers must not drift.

Logs written by earlier versions are verified by later ones, so a change to these bytes is a change
of format, never a side effect of making the encoder faster.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from phiwarden.audit import Actor, Approval, AuditEvent, Classification, Decision, Endpoint, Resource
from phiwarden.audit.canonical import record_bytes

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
    b'{"event":{"action_id":2,"activity_id":1,"actor":{"app_name":"Claude Code","idp":{"name":"okta"},'
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
