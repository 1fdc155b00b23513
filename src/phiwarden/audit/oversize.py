"""Events too large for a sink: a truncated form that still names them.

A UDP datagram holds at most 65,507 bytes, and receivers cap messages (rsyslog at 8 KB by default;
`max_message_bytes` of the sink). An event past its sink's limit is sent as a stub that keeps what
identifies and classifies it — sequence, `metadata.uid`, record hash, OCSF class, time, action,
tier — and says that it was truncated, from what size and why. The full event stays in the store
(`phiwarden audit export --from-seq N --to-seq N`); the stub's hash is the full record's, so the copy
in the SIEM is never mistaken for a verifiable one.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from phiwarden.audit.canonical import canonical_json
from phiwarden.audit.errors import SinkError
from phiwarden.audit.export import Envelope, render
from phiwarden.audit.store import StoredRecord

logger = logging.getLogger("phiwarden.audit.forward")

# Enumerations and numbers of bounded size: the stub is small whatever the event held.
_KEPT = (
    "class_uid", "category_uid", "activity_id", "type_uid", "time", "severity_id", "status_id",
    "action_id", "disposition_id",
)  # fmt: skip
_KEPT_METADATA = ("uid", "sequence", "version", "logged_time")
_KEPT_EXTRA = ("action", "tier")


def truncated(stored: StoredRecord, size: int, limit: int, why: str) -> StoredRecord:
    """The stub of an event whose message was `size` bytes, over `limit` (`why`: whose limit)."""
    record = json.loads(stored.record)
    event = record["event"]
    metadata = event.get("metadata", {})
    extra = event.get("unmapped", {}).get("phiwarden", {})
    stub = {key: event[key] for key in _KEPT if key in event}
    stub["metadata"] = {key: metadata[key] for key in _KEPT_METADATA if key in metadata}
    stub["message"] = (
        f"truncated by phiwarden: the event is {size} bytes, over {why} ({limit} bytes); "
        "the full event is in the audit store"
    )
    stub["unmapped"] = {
        "phiwarden": {
            **{key: extra[key] for key in _KEPT_EXTRA if key in extra},
            "truncated": {"reason": why, "bytes": size, "limit": limit},
        }
    }
    return StoredRecord(stored.seq, canonical_json({**record, "event": stub}), stored.hash)


@dataclass(slots=True)
class Renderer:
    """Renders records for one sink, truncating what the sink cannot carry (never dropping it)."""

    sink: str
    fmt: str
    envelope: Envelope
    # The smallest limit that applies, and whose it is; None: the sink takes any size.
    limit: int | None = None
    why: str = ""
    truncated: int = 0

    def __call__(self, stored: StoredRecord) -> bytes:
        message = render(stored, self.fmt, self.envelope)
        if self.limit is None or len(message) <= self.limit:
            return message
        stub = render(truncated(stored, len(message), self.limit, self.why), self.fmt, self.envelope)
        if len(stub) > self.limit:
            raise SinkError(
                f"sink {self.sink}: even the truncated form of event {stored.seq} is {len(stub)} bytes, "
                f"over {self.why} ({self.limit}); raise max_message_bytes"
            )
        logger.warning(
            "sink %s: event %d is %d bytes, over %s (%d bytes): sent in truncated form",
            self.sink,
            stored.seq,
            len(message),
            self.why,
            self.limit,
        )
        self.truncated += 1
        return stub
