"""The audit event: one decision of an enforcement point, as an OCSF 1.x API Activity (class 6003).

Who (actor: user, identity provider, session, client tool, agent, model), when (`time`, UTC), from
where to where (`src_endpoint`, `dst_endpoint`), what (`api.operation`, `resources`), on which data
(`data_classification`: tier, categories with counts; HMACs of values, never the values), which
decision and why (`action`/`disposition`, `policy`, rule and reason), the approval when there was one,
and the outcome (`status`, `duration` in milliseconds).

OCSF names are used where the schema has them (the `security_control`, `data_classification` and
`ai_operation` profiles included); what OCSF has no attribute for sits under `unmapped.phiwarden`.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from phiwarden import __version__
from phiwarden.audit.errors import AuditError

OCSF_VERSION = "1.8.0"
CLASS_UID = 6003
CATEGORY_UID = 6

Action = Literal["allow", "mask", "pseudonymize", "route", "block", "hold"]
Tier = Literal["public", "internal", "restricted"]
Status = Literal["success", "failure", "unknown"]
Activity = Literal["create", "read", "update", "delete", "other"]
ApprovalDecision = Literal["approved", "denied"]

ACTIONS: tuple[Action, ...] = get_args(Action)
TIERS: tuple[Tier, ...] = get_args(Tier)
STATUSES: tuple[Status, ...] = get_args(Status)
ACTIVITIES: tuple[Activity, ...] = get_args(Activity)

_ACTIVITY_IDS: dict[Activity, int] = {"create": 1, "read": 2, "update": 3, "delete": 4, "other": 99}
_ACTIVITY_NAMES: dict[int, Activity] = {v: k for k, v in _ACTIVITY_IDS.items()}
_STATUS_IDS: dict[Status, int] = {"success": 1, "failure": 2, "unknown": 0}
_STATUS_NAMES: dict[int, Status] = {v: k for k, v in _STATUS_IDS.items()}
# security_control profile: action_id 1 Allowed / 2 Denied, and a disposition_id of the OCSF enum
# that conforms to it. A hold waits for approval: OCSF files Delayed (14) under Allowed, and the
# approval's outcome is recorded with the event.
_CONTROLS: dict[Action, tuple[int, int]] = {
    "allow": (1, 1),
    "mask": (1, 11),
    "pseudonymize": (1, 11),
    "route": (1, 7),
    "block": (2, 2),
    "hold": (1, 14),
}
_SEVERITIES: dict[Action, int] = {"allow": 1, "mask": 2, "pseudonymize": 2, "route": 2, "hold": 3, "block": 3}
# data_classification.confidentiality_id: 1 Not Confidential, 2 Confidential, 6 Restricted.
_CONFIDENTIALITY: dict[Tier, int] = {"public": 1, "internal": 2, "restricted": 6}

# Captions of the enumerations, added on export by `enrich` (the stored record keeps ids only).
_CAPTIONS: dict[str, dict[int, str]] = {
    "activity_id": {1: "Create", 2: "Read", 3: "Update", 4: "Delete", 99: "Other", 0: "Unknown"},
    "severity_id": {0: "Unknown", 1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"},
    "status_id": {0: "Unknown", 1: "Success", 2: "Failure", 99: "Other"},
    "action_id": {0: "Unknown", 1: "Allowed", 2: "Denied", 99: "Other"},
    "disposition_id": {1: "Allowed", 2: "Blocked", 7: "Custom Action", 11: "Corrected", 14: "Delayed"},
}
_CAPTION_NAMES = {
    "activity_id": "activity_name",
    "severity_id": "severity",
    "status_id": "status",
    "action_id": "action",
    "disposition_id": "disposition",
}
_DATA_CATEGORIES = {0: "Unknown", 1: "Personal", 6: "Security"}
_CONFIDENTIALITY_CAPTIONS = {1: "Not Confidential", 2: "Confidential", 6: "Restricted"}
MAX_COUNT = 2**53 - 1
_HMAC = re.compile(r"[0-9a-f]{64}")
_CATEGORY = re.compile(r"[a-z][a-z0-9_]{0,31}")


def uuid7() -> str:
    """A time-ordered UUID (RFC 9562 version 7): new events land at the end of the store's uid index."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76
    value = value & ~(0x3 << 62) | 0x2 << 62
    # str(uuid.UUID(int=value)) without building the object, which costs more than the rest.
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


class EventError(AuditError, ValueError):
    """An event that cannot be recorded as given (a bad category, a value where a hash belongs, …)."""


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: str
    identity_provider: str | None = None
    session_id: str | None = None
    # The client tool that sent the request: "Claude Code", "Cursor", "Continue", "aider", …
    client_tool: str | None = None
    agent: str | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True)
class Endpoint:
    hostname: str | None = None
    ip: str | None = None
    port: int | None = None
    # For a destination: the vendor-matrix name of the approved destination ("anthropic-enterprise").
    name: str | None = None
    service: str | None = None


@dataclass(frozen=True, slots=True)
class Resource:
    type: str
    name: str | None = None
    uid: str | None = None


@dataclass(frozen=True, slots=True)
class Classification:
    tier: Tier
    # Category -> number of values found ("ssn": 2).
    categories: Mapping[str, int] = field(default_factory=dict)
    # Category -> HMAC-SHA256 (hex) of each value, from `hash_value`; never the values.
    value_hashes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    policy_id: str
    policy_version: str
    rule: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Approval:
    approver: str
    decision: ApprovalDecision
    time: datetime


@dataclass(frozen=True, slots=True)
class AuditEvent:
    actor: Actor
    operation: str
    decision: Decision
    classification: Classification
    src_endpoint: Endpoint = field(default_factory=Endpoint)
    dst_endpoint: Endpoint | None = None
    resources: tuple[Resource, ...] = ()
    approval: Approval | None = None
    status: Status = "success"
    latency_ms: int | None = None
    activity: Activity = "other"
    correlation_id: str | None = None
    message: str | None = None
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    uid: str = field(default_factory=uuid7)

    def __post_init__(self) -> None:
        _validate(self)

    def to_ocsf(self, *, sequence: int | None = None, logged_time_ms: int | None = None) -> dict[str, Any]:
        """The OCSF API Activity object as stored: enumerations by id only (`enrich` adds captions).

        `sequence` and `logged_time_ms` are set by the store.
        """
        decision, actor, classification = self.decision, self.actor, self.classification
        action_id, disposition_id = _CONTROLS[decision.action]
        metadata: dict[str, Any] = {"version": OCSF_VERSION, "uid": self.uid}
        if self.correlation_id is not None:
            metadata["correlation_uid"] = self.correlation_id
        if sequence is not None:
            metadata["sequence"] = sequence
        if logged_time_ms is not None:
            metadata["logged_time"] = logged_time_ms
        activity_id = _ACTIVITY_IDS[self.activity]
        out: dict[str, Any] = {
            "activity_id": activity_id,
            "category_uid": CATEGORY_UID,
            "class_uid": CLASS_UID,
            "type_uid": CLASS_UID * 100 + activity_id,
            "severity_id": _SEVERITIES[decision.action],
            "time": to_ms(self.time),
            "metadata": metadata,
            "actor": _actor(actor),
            "api": {"operation": self.operation},
            "src_endpoint": _endpoint(self.src_endpoint),
            "status_id": _STATUS_IDS[self.status],
            "action_id": action_id,
            "disposition_id": disposition_id,
            "policy": {"uid": decision.policy_id, "version": decision.policy_version},
            "data_classification": _classification(classification),
        }
        if actor.agent:
            out["ai_agent"] = {"name": actor.agent}
        if actor.model:
            out["ai_model"] = {"name": actor.model}
        if self.dst_endpoint is not None:
            out["dst_endpoint"] = _endpoint(self.dst_endpoint)
        if self.resources:
            out["resources"] = [_resource(r) for r in self.resources]
        if self.latency_ms is not None:
            out["duration"] = self.latency_ms
        if self.message is not None:
            out["message"] = self.message
        extra: dict[str, Any] = {"tier": classification.tier, "action": decision.action}
        if decision.rule is not None:
            extra["rule"] = decision.rule
        if decision.reason is not None:
            extra["reason"] = decision.reason
        hashes = classification.value_hashes
        if hashes:
            extra["value_hmacs"] = {name: list(hashes[name]) for name in sorted(hashes)}
        if self.approval is not None:
            extra["approval"] = {
                "approver": self.approval.approver,
                "decision": self.approval.decision,
                "time": to_ms(self.approval.time),
            }
        out["unmapped"] = {"phiwarden": extra}
        return out

    @classmethod
    def from_ocsf(cls, data: Mapping[str, Any]) -> AuditEvent:
        """The event back from its OCSF object (times at millisecond precision)."""
        try:
            extra = data["unmapped"]["phiwarden"]
            actor = data["actor"]
            classification = data["data_classification"]
            approval = extra.get("approval")
            activity = _ACTIVITY_NAMES.get(data["activity_id"], "other")
            status = _STATUS_NAMES.get(data["status_id"], "unknown")
            return cls(
                actor=Actor(
                    user_id=actor["user"]["uid"],
                    identity_provider=actor.get("idp", {}).get("name"),
                    session_id=actor.get("session", {}).get("uid"),
                    client_tool=actor.get("app_name"),
                    agent=data.get("ai_agent", {}).get("name"),
                    model=data.get("ai_model", {}).get("name"),
                ),
                operation=data["api"]["operation"],
                decision=Decision(
                    action=extra["action"],
                    policy_id=data["policy"]["uid"],
                    policy_version=data["policy"]["version"],
                    rule=extra.get("rule"),
                    reason=extra.get("reason"),
                ),
                classification=Classification(
                    tier=extra["tier"],
                    categories={d["type"]: d["count"] for d in classification.get("discovery_details", [])},
                    value_hashes={k: tuple(v) for k, v in extra.get("value_hmacs", {}).items()},
                ),
                src_endpoint=_endpoint_from(data.get("src_endpoint", {})),
                dst_endpoint=_endpoint_from(data["dst_endpoint"]) if "dst_endpoint" in data else None,
                resources=tuple(
                    Resource(type=r["type"], name=r.get("name"), uid=r.get("uid"))
                    for r in data.get("resources", [])
                ),
                approval=None
                if approval is None
                else Approval(approval["approver"], approval["decision"], from_ms(approval["time"])),
                status=status,
                latency_ms=data.get("duration"),
                activity=activity,
                correlation_id=data["metadata"].get("correlation_uid"),
                message=data.get("message"),
                time=from_ms(data["time"]),
                uid=data["metadata"]["uid"],
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise EventError(f"not a phiwarden audit event: missing or malformed {exc}") from None


def to_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise EventError("times must be timezone-aware (UTC)")
    return int(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _put(target: dict[str, Any], key: str, value: object) -> None:
    if value is not None:
        target[key] = value


def _actor(actor: Actor) -> dict[str, Any]:
    out: dict[str, Any] = {"user": {"uid": actor.user_id}}
    if actor.identity_provider:
        out["idp"] = {"name": actor.identity_provider}
    if actor.session_id:
        out["session"] = {"uid": actor.session_id}
    _put(out, "app_name", actor.client_tool)
    return out


def _endpoint(endpoint: Endpoint) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if endpoint.hostname is not None:
        out["hostname"] = endpoint.hostname
    if endpoint.ip is not None:
        out["ip"] = endpoint.ip
    if endpoint.port is not None:
        out["port"] = endpoint.port
    if endpoint.name is not None:
        out["name"] = endpoint.name
    if endpoint.service is not None:
        out["svc_name"] = endpoint.service
    return out


def _endpoint_from(data: Mapping[str, Any]) -> Endpoint:
    return Endpoint(
        hostname=data.get("hostname"),
        ip=data.get("ip"),
        port=data.get("port"),
        name=data.get("name"),
        service=data.get("svc_name"),
    )


def _resource(resource: Resource) -> dict[str, Any]:
    out: dict[str, Any] = {"type": resource.type}
    _put(out, "name", resource.name)
    _put(out, "uid", resource.uid)
    return out


def _classification(classification: Classification) -> dict[str, Any]:
    categories = classification.categories
    names = sorted(categories)
    return {
        # Security data when secrets are all that was found (category names are unique).
        "category_id": (6 if names == ["secret"] else 1) if names else 0,
        "confidentiality_id": _CONFIDENTIALITY[classification.tier],
        "discovery_details": [{"type": name, "count": categories[name]} for name in names],
        "total": sum(categories.values()),
    }


def enrich(event: Mapping[str, Any]) -> dict[str, Any]:
    """The stored OCSF object with the captions of its enumerations and the product metadata."""
    out = dict(event)
    for id_key, name_key in _CAPTION_NAMES.items():
        if id_key in out:
            out[name_key] = _CAPTIONS[id_key].get(out[id_key], "Other")
    activity = out.get("activity_name", "Other")
    out.update(
        category_name="Application Activity",
        class_name="API Activity",
        type_name=f"API Activity: {activity}",
    )
    metadata = dict(out.get("metadata", {}))
    metadata.update(
        product={"name": "phiwarden", "vendor_name": "phiwarden", "version": __version__},
        profiles=["security_control", "data_classification", "ai_operation"],
        log_name="phiwarden-audit",
    )
    out["metadata"] = metadata
    if "data_classification" in out:
        data = dict(out["data_classification"])
        data["category"] = _DATA_CATEGORIES.get(data.get("category_id", 0), "Other")
        data["confidentiality"] = _CONFIDENTIALITY_CAPTIONS.get(data.get("confidentiality_id", 0), "Other")
        out["data_classification"] = data
    return out


def _validate(event: AuditEvent) -> None:
    # Messages name the field and say what is wrong with its value without quoting it: whatever was
    # passed where a category or a hash belongs may be the very value that must not be logged.
    for label, value, allowed in (
        ("decision.action", event.decision.action, ACTIONS),
        ("classification.tier", event.classification.tier, TIERS),
        ("status", event.status, STATUSES),
        ("activity", event.activity, ACTIVITIES),
        (
            "approval.decision",
            None if event.approval is None else event.approval.decision,
            get_args(ApprovalDecision),
        ),
    ):
        if value is not None and value not in allowed:
            raise EventError(f"{label} must be one of {', '.join(allowed)}; got {describe(value)}")
    if not event.actor.user_id or not event.operation:
        raise EventError("an event needs an actor user id and an operation")
    for label, number in (("latency_ms", event.latency_ms), ("src_endpoint.port", event.src_endpoint.port)):
        _check_int(label, number)
    if event.dst_endpoint is not None:
        _check_int("dst_endpoint.port", event.dst_endpoint.port)
    _check_strings(event)
    to_ms(event.time)
    for name, count in event.classification.categories.items():
        _check_category("classification.categories", name)
        _check_int(f"classification.categories[{name!r}]", count)
    # The stored total must be in range too, not only each count it adds up.
    _check_int("the total of classification.categories", sum(event.classification.categories.values()))
    for name, hashes in event.classification.value_hashes.items():
        _check_category("classification.value_hashes", name)
        for digest in hashes:
            # Anything but an HMAC here could be a raw value: refuse it rather than store PHI.
            if not isinstance(digest, str) or not _HMAC.fullmatch(digest):
                raise EventError(
                    f"classification.value_hashes[{name!r}] holds {describe(digest)}, not an HMAC-SHA256 "
                    "hex digest (use hash_value(); raw values are never recorded)"
                )


def is_category(name: object) -> bool:
    """A category name: a short lowercase identifier ("ssn", "mrn", "npi")."""
    return isinstance(name, str) and _CATEGORY.fullmatch(name) is not None


def _check_category(label: str, name: object) -> None:
    if not is_category(name):
        raise EventError(
            f"{label}: category names must be short identifiers (a lowercase letter, then up to 31 "
            f"lowercase letters, digits or underscores); got {describe(name)}"
        )


def describe(value: object) -> str:
    """What a rejected value looks like, without the value: its type, length and kinds of characters."""
    if isinstance(value, str):
        kinds = [
            kind
            for kind, present in (
                ("letters", any(ch.isalpha() for ch in value)),
                ("digits", any(ch.isdigit() for ch in value)),
                ("spaces", any(ch.isspace() for ch in value)),
                ("dashes", "-" in value),
                ("other symbols", any(not (ch.isalnum() or ch.isspace() or ch == "-") for ch in value)),
            )
            if present
        ]
        made_of = f" with {', '.join(kinds[:-1])} and {kinds[-1]}" if len(kinds) > 1 else ""
        made_of = made_of or (f" with {kinds[0]}" if kinds else "")
        size = f"{len(value)} character{'s' if len(value) > 1 else ''}"
        return f"{size}{made_of}" if value else "an empty value"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return (
            "a negative number"
            if value < 0
            else "a number above 2**53-1"
            if value > MAX_COUNT
            else "a number"
        )
    return f"a value of type {type(value).__name__}"


def _check_int(label: str, value: object) -> None:
    """Whole numbers only (floats have no single canonical spelling), within the I-JSON range."""
    if value is None:
        return
    if type(value) is not int or not 0 <= value <= MAX_COUNT:
        raise EventError(f"{label} must be a whole number between 0 and 2**53-1; got {describe(value)}")


def _check_strings(event: AuditEvent) -> None:
    """Every text field is a str: the event is encoded without a second type walk when sealed."""
    texts: list[tuple[str, object]] = [
        ("operation", event.operation), ("uid", event.uid), ("correlation_id", event.correlation_id),
        ("message", event.message), ("decision.policy_id", event.decision.policy_id),
        ("decision.policy_version", event.decision.policy_version), ("decision.rule", event.decision.rule),
        ("decision.reason", event.decision.reason),
        *((f"actor.{name}", getattr(event.actor, name)) for name in Actor.__slots__),
        *((f"src_endpoint.{name}", getattr(event.src_endpoint, name)) for name in _ENDPOINT_TEXTS),
    ]  # fmt: skip
    if event.dst_endpoint is not None:
        texts.extend((f"dst_endpoint.{name}", getattr(event.dst_endpoint, name)) for name in _ENDPOINT_TEXTS)
    for index, resource in enumerate(event.resources):
        texts.extend(
            (f"resources[{index}].{name}", getattr(resource, name)) for name in ("type", "name", "uid")
        )
    if event.approval is not None:
        texts.append(("approval.approver", event.approval.approver))
    for label, text in texts:
        if text is not None and type(text) is not str:
            raise EventError(f"{label} must be text; got {describe(text)}")


_ENDPOINT_TEXTS = ("hostname", "ip", "name", "service")
