"""Export formats: JSON lines, OCSF JSON, CEF, RFC 5424 syslog and Splunk HEC.

- `jsonl`: the stored record plus its hash, as canonical JSON. Removing "hash" and re-encoding the
  object canonically gives back the exact bytes that were hashed, so a SIEM copy can be re-verified.
- `ocsf`: the OCSF API Activity object (class 6003), one per line.
- `cef`: ArcSight Common Event Format, header fields escaped for `|` and `\\`, extension values for
  `=`, `\\` and line breaks.
- `syslog`: RFC 5424 with structured data `[phiwarden@32473 …]` (32473 is the documentation PEN of
  RFC 5612) and the OCSF JSON (or a CEF line) as a UTF-8 message with BOM.
- `hec`: the Splunk HTTP Event Collector envelope around the OCSF object.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from phiwarden import __version__
from phiwarden.audit.canonical import canonical_json
from phiwarden.audit.event import enrich
from phiwarden.audit.store import StoredRecord
from phiwarden.policy.audit import SYSLOG_FACILITIES

FORMATS = ("jsonl", "ocsf", "cef", "syslog", "hec")
SD_ID = "phiwarden@32473"
_SYSLOG_SEVERITY = {"allow": 6, "mask": 5, "pseudonymize": 5, "route": 5, "hold": 4, "block": 4}
_CEF_SEVERITY = {"allow": 1, "mask": 3, "pseudonymize": 3, "route": 3, "hold": 5, "block": 7}


@dataclass(frozen=True, slots=True)
class Envelope:
    """Per-destination settings of the syslog and HEC formats."""

    facility: str = "authpriv"
    app_name: str = "phiwarden"
    hostname: str | None = None
    index: str | None = None
    sourcetype: str = "ocsf:api_activity"
    # What a syslog message carries: "ocsf" (JSON) or "cef".
    body: str = "ocsf"

    def host(self) -> str:
        return self.hostname or socket.gethostname() or "-"


@dataclass(frozen=True, slots=True)
class Exported:
    seq: int
    record: dict[str, Any]

    @classmethod
    def of(cls, stored: StoredRecord) -> Exported:
        data = json.loads(stored.record)
        data["hash"] = stored.hash.hex()
        return cls(stored.seq, data)

    @property
    def event(self) -> dict[str, Any]:
        """The OCSF object with captions (the stored record keeps enumeration ids only)."""
        return enrich(self.record["event"])


def render(stored: StoredRecord, fmt: str, envelope: Envelope = Envelope()) -> bytes:
    """One exported event, without a line terminator or transport framing."""
    item = Exported.of(stored)
    if fmt == "jsonl":
        return canonical_json(item.record)
    if fmt == "ocsf":
        return canonical_json(item.event)
    if fmt == "cef":
        return cef(item).encode("utf-8")
    if fmt == "syslog":
        return syslog_message(item, envelope)
    if fmt == "hec":
        return canonical_json(hec_event(item, envelope))
    raise ValueError(f"unknown export format {fmt!r}")


def _extra(event: Mapping[str, Any]) -> dict[str, Any]:
    extra: dict[str, Any] = event.get("unmapped", {}).get("phiwarden", {})
    return extra


def cef(item: Exported) -> str:
    event = item.event
    extra = _extra(event)
    action = str(extra.get("action", "allow"))
    operation = str(event.get("api", {}).get("operation", ""))
    header = [
        "CEF:0",
        "phiwarden",
        "phiwarden",
        __version__,
        f"audit:{action}",
        f"{operation} {action}".strip(),
        str(_CEF_SEVERITY.get(action, 1)),
    ]
    src = event.get("src_endpoint", {})
    dst = event.get("dst_endpoint", {})
    categories = event.get("data_classification", {}).get("discovery_details", [])
    policy = event.get("policy", {})
    pairs: list[tuple[str, object]] = [
        ("rt", event.get("time")),
        ("externalId", item.seq),
        ("suser", event.get("actor", {}).get("user", {}).get("uid")),
        ("requestClientApplication", event.get("actor", {}).get("app_name")),
        ("shost", src.get("hostname")),
        ("src", src.get("ip")),
        ("dhost", dst.get("hostname")),
        ("dst", dst.get("ip")),
        ("dpt", dst.get("port")),
        ("destinationServiceName", dst.get("name")),
        ("act", action),
        ("outcome", event.get("status")),
        ("reason", extra.get("reason")),
        ("cat", extra.get("tier")),
        ("cs1Label", "categories"),
        ("cs1", ",".join(f"{c['type']}:{c['count']}" for c in categories)),
        ("cs2Label", "policy"),
        ("cs2", f"{policy.get('uid')}@{policy.get('version')}"),
        ("cs3Label", "rule"),
        ("cs3", extra.get("rule")),
        ("cs4Label", "correlationId"),
        ("cs4", event.get("metadata", {}).get("correlation_uid")),
        ("cs5Label", "eventUid"),
        ("cs5", event.get("metadata", {}).get("uid")),
        ("cs6Label", "model"),
        ("cs6", event.get("ai_model", {}).get("name")),
        ("cn1Label", "latencyMs"),
        ("cn1", event.get("duration")),
        ("msg", event.get("message")),
    ]
    labels = {k for k, v in pairs if not k.endswith("Label") and v not in (None, "")}
    ext = " ".join(
        f"{key}={_cef_value(value)}"
        for key, value in pairs
        if value not in (None, "") and (not key.endswith("Label") or key[:-5] in labels)
    )
    return "|".join(_cef_header(part) for part in header) + "|" + ext


def _cef_header(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _cef_value(value: object) -> str:
    text = str(value)
    return (
        text.replace("\\", "\\\\")
        .replace("=", "\\=")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
    )


def syslog_message(item: Exported, envelope: Envelope, *, msgid: str = "AUDIT") -> bytes:
    event = item.event
    extra = _extra(event)
    action = str(extra.get("action", "allow"))
    params = {"seq": str(item.seq), "hash": str(item.record.get("hash", "")), "action": action}
    body = cef(item) if envelope.body == "cef" else canonical_json(event).decode("utf-8")
    return rfc5424(
        facility=envelope.facility,
        severity=_SYSLOG_SEVERITY.get(action, 6),
        timestamp_ms=int(event.get("time", 0)),
        hostname=envelope.host(),
        app_name=envelope.app_name,
        msgid=msgid,
        structured={SD_ID: params},
        message=body,
    )


def rfc5424(
    *,
    facility: str,
    severity: int,
    timestamp_ms: int,
    hostname: str,
    app_name: str,
    msgid: str,
    structured: Mapping[str, Mapping[str, str]],
    message: str,
) -> bytes:
    pri = SYSLOG_FACILITIES.index(facility) * 8 + severity
    moment = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    sd = (
        "".join(
            "[" + sd_id + "".join(f' {_sd_name(k)}="{_sd_value(v)}"' for k, v in params.items()) + "]"
            for sd_id, params in structured.items()
        )
        or "-"
    )
    header = (
        f"<{pri}>1 {stamp} {_field(hostname, 255)} {_field(app_name, 48)} {_field(str(os.getpid()), 128)} "
        f"{_field(msgid, 32)} {sd}"
    )
    return header.encode("ascii") + b" \xef\xbb\xbf" + message.encode("utf-8")


def _field(text: str, limit: int) -> str:
    """A header field: printable US-ASCII without spaces, at most `limit` long, or the NILVALUE."""
    cleaned = "".join(ch for ch in text if 33 <= ord(ch) <= 126)[:limit]
    return cleaned or "-"


def _sd_name(text: str) -> str:
    return "".join(ch for ch in text if 33 <= ord(ch) <= 126 and ch not in '= ]"')[:32] or "x"


def _sd_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def hec_event(item: Exported, envelope: Envelope) -> dict[str, Any]:
    event = item.event
    out: dict[str, Any] = {
        # HEC wants epoch seconds; a decimal string keeps milliseconds without floats in canonical JSON.
        "time": f"{int(event.get('time', 0)) / 1000:.3f}",
        "host": envelope.host(),
        "source": envelope.app_name,
        "sourcetype": envelope.sourcetype,
        "event": event,
    }
    if envelope.index:
        out["index"] = envelope.index
    return out
