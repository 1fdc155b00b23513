"""Sealing events into the log: sequence numbers, chain links, Merkle frontier, search columns.

Both stores call `seal` inside the transaction that holds the log's head, so the numbering, the chain
and the tree are computed from the head that the same transaction then replaces: one total order,
no gaps, no forks.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class SealedEvent:
    seq: int
    time_ms: int
    uid: str
    actor: str
    tool: str | None
    destination: str | None
    action: str
    tier: str
    categories: str
    status: str
    operation: str
    record: bytes
    hash: bytes
    # First 8 bytes of each value HMAC as a signed integer: a small index; lookups confirm the full HMAC.
    value_keys: tuple[int, ...]

    def receipt(self) -> Receipt:
        return Receipt(self.seq, self.uid, self.hash.hex())


def destination_of(event: AuditEvent) -> str | None:
    endpoint = event.dst_endpoint
    if endpoint is None:
        return None
    return endpoint.name or endpoint.hostname or endpoint.ip


def categories_column(categories: dict[str, int]) -> str:
    """ ",ssn=2,name=1," — searchable with LIKE '%,ssn=%'."""
    return "," + "".join(f"{name}={count}," for name, count in sorted(categories.items()))


def value_key(hmac_hex: str) -> int:
    return int.from_bytes(bytes.fromhex(hmac_hex[:16]), "big", signed=True)


def seal(head: Head, events: Sequence[AuditEvent]) -> tuple[list[SealedEvent], list[CompletedNode]]:
    """Number and chain `events` after `head`, which is advanced in place."""
    logged = int(time.time() * 1000)
    sealed: list[SealedEvent] = []
    nodes: list[CompletedNode] = []
    prev = head.last_hash
    frontier = head.frontier
    seq = head.size
    for event in events:
        seq += 1
        ocsf = event.to_ocsf(sequence=seq, logged_time_ms=logged)
        record = canonical_json({"event": ocsf, "prev_hash": prev.hex(), "sequence": seq}, validated=True)
        digest = record_hash(record)
        nodes.extend(frontier.append(digest, NODE_CACHE_LEVEL))
        keys = {value_key(h) for hashes in event.classification.value_hashes.values() for h in hashes}
        sealed.append(
            SealedEvent(
                seq=seq,
                time_ms=ocsf["time"],
                uid=event.uid,
                actor=event.actor.user_id,
                tool=event.actor.client_tool,
                destination=destination_of(event),
                action=event.decision.action,
                tier=event.classification.tier,
                categories=categories_column(dict(event.classification.categories)),
                status=event.status,
                operation=event.operation,
                record=record,
                hash=digest,
                value_keys=tuple(sorted(keys)),
            )
        )
        prev = digest
    head.size = seq
    head.last_hash = prev
    return sealed, nodes
