"""The tamper-evident audit trail (HIPAA 45 CFR 164.312(b) audit controls).

Enforcement points record each decision before acting on it, and fail closed if they cannot:

    from phiwarden.audit import AuditLog, AuditEvent, Actor, Decision, Classification, AuditError

    log = AuditLog.open(policy.audit)
    digest = log.hash_value(ssn)                   # keyed HMAC; raw values are never recorded
    log.append(AuditEvent(
        actor=Actor("ana@example.org", identity_provider="okta", client_tool="Claude Code"),
        operation="anthropic.messages.create",
        decision=Decision("mask", policy.policy_id, policy.revision, rule="restricted-to-cloud"),
        classification=Classification("restricted", {"ssn": 1}, {"ssn": (digest,)}),
        dst_endpoint=Endpoint(hostname="api.anthropic.com", name="anthropic-enterprise"),
    ))                                             # raises AuditError -> refuse the request

Events are OCSF API Activity (6003) records in a hash chain that is also an RFC 9162 Merkle tree;
checkpoints are signed with Ed25519 and published to witnesses outside the store.
"""

from phiwarden.audit.errors import AuditConfigError, AuditError, AuditKeyError, AuditStoreError, SinkError
from phiwarden.audit.event import (
    Actor,
    Approval,
    AuditEvent,
    Classification,
    Decision,
    Endpoint,
    EventError,
    Resource,
)
from phiwarden.audit.ledger import Receipt
from phiwarden.audit.log import AuditLog, hash_value
from phiwarden.audit.scan_record import record_scan_run

__all__ = [
    "Actor",
    "Approval",
    "AuditConfigError",
    "AuditError",
    "AuditEvent",
    "AuditKeyError",
    "AuditLog",
    "AuditStoreError",
    "Classification",
    "Decision",
    "Endpoint",
    "EventError",
    "Receipt",
    "Resource",
    "SinkError",
    "hash_value",
    "record_scan_run",
]
