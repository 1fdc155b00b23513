"""Sealing events into the log: sequence numbers, chain links, Merkle frontier, search columns.

Both stores call `seal` inside the transaction that holds the log's head, so the numbering, the chain
and the tree are computed from the head that the same transaction then replaces: one total order,
no gaps, no forks.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from phiwarden.audit.canonical import GENESIS_HASH, canonical_json, record_hash
from phiwarden.audit.event import AuditEvent
from phiwarden.audit.merkle import CompletedNode, Frontier

# Interior nodes of 2**10 leaves and up are kept, so an inclusion proof reads at most a few thousand
# leaf hashes however long the log is.
NODE_CACHE_LEVEL = 10


@dataclass(slots=True)
class Head:
    size: int
    last_hash: bytes
    frontier: Frontier

    @classmethod
    def empty(cls) -> Head:
        return cls(0, GENESIS_HASH, Frontier())


@dataclass(frozen=True, slots=True)
class Receipt:
    """What an append returns: the event is durable at this position of the log."""

    sequence: int
    uid: str
    hash: str


# Column order of `Sealed.rows`, as both stores insert them.
EVENT_COLUMNS = (
    "seq", "time_ms", "uid", "actor", "tool", "destination", "action", "tier", "categories", "status",
    "operation", "record", "hash",
)  # fmt: skip


@dataclass(slots=True)
class Sealed:
    """A batch ready to insert: event rows (EVENT_COLUMNS), value-hash index rows, new tree nodes."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    value_keys: list[tuple[int, int]] = field(default_factory=list)
    nodes: list[CompletedNode] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)


def destination_of(event: AuditEvent) -> str | None:
    endpoint = event.dst_endpoint
    if endpoint is None:
        return None
    return endpoint.name or endpoint.hostname or endpoint.ip


def categories_column(categories: Mapping[str, int]) -> str:
    """ ",name=1,ssn=2," — searchable with LIKE '%,ssn=%'."""
    return "," + "".join([f"{name}={categories[name]}," for name in sorted(categories)])


def value_key(hmac_hex: str) -> int:
    return int.from_bytes(bytes.fromhex(hmac_hex[:16]), "big", signed=True)


def seal(head: Head, events: Sequence[AuditEvent]) -> Sealed:
    """Number and chain `events` after `head`, which is advanced in place."""
    logged = int(time.time() * 1000)
    out = Sealed()
    rows, value_keys, receipts = out.rows, out.value_keys, out.receipts
    prev = head.last_hash
    append_leaf = head.frontier.append
    seq = head.size
    for event in events:
        seq += 1
        ocsf = event.to_ocsf(sequence=seq, logged_time_ms=logged)
        record = canonical_json({"event": ocsf, "prev_hash": prev.hex(), "sequence": seq}, validated=True)
        digest = record_hash(record)
        out.nodes.extend(append_leaf(digest, NODE_CACHE_LEVEL))
        classification = event.classification
        keys = {value_key(h) for hashes in classification.value_hashes.values() for h in hashes}
        value_keys.extend((key, seq) for key in sorted(keys))
        actor = event.actor
        rows.append(
            (seq, ocsf["time"], event.uid, actor.user_id, actor.client_tool, destination_of(event),
             event.decision.action, classification.tier, categories_column(classification.categories),
             event.status, event.operation, record, digest)
        )  # fmt: skip
        receipts.append(Receipt(seq, event.uid, digest.hex()))
        prev = digest
    head.size = seq
    head.last_hash = prev
    return out
