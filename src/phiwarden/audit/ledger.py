"""Sealing events into the log: sequence numbers, chain links, Merkle frontier, search columns.

An append is split in two. `prepare` encodes an event — the OCSF object, its canonical JSON, the
search columns — with the four values that only the head decides left open: the time it is logged,
its sequence number (in the event's metadata and in the record), and the hash it is chained to.
That is most of the Python work of an append, and it needs no lock. Both stores then call `seal`
inside the transaction that holds the log's head, which fills those values in, so the numbering,
the chain and the tree are computed from the head that the same transaction then replaces: one
total order, no gaps, no forks.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from phiwarden.audit.canonical import GENESIS_HASH, LEAF_PREFIX, SLOT, canonical_pieces
from phiwarden.audit.event import AuditEvent, to_ms
from phiwarden.audit.merkle import CompletedNode, Frontier

# Interior nodes of 2**10 leaves and up are kept, so an inclusion proof reads at most a few thousand
# leaf hashes however long the log is.
NODE_CACHE_LEVEL = 10
# The value-hash index is keyed (epoch, HMAC prefix, seq) with epoch = seq >> VALUE_EPOCH_BITS. Keyed
# by HMAC alone, a batch's keys land on pages all over an index that grows with the log, and every
# commit rewrites most of them; within an epoch of 4096 events they touch a few dozen pages whatever
# the size of the log. A lookup probes each epoch once.
VALUE_EPOCH_BITS = 12


@dataclass(slots=True)
class Head:
    size: int
    last_hash: bytes
    frontier: Frontier

    @classmethod
    def empty(cls) -> Head:
        return cls(0, GENESIS_HASH, Frontier())


class Receipt(NamedTuple):
    """What an append returns: the event is durable at this position of the log.

    A named tuple: one is built per event inside the write transaction, at a third of the cost of
    a frozen dataclass.
    """

    sequence: int
    uid: str
    hash: str


# Column order of `Sealed.rows`, as both stores insert them.
EVENT_COLUMNS = (
    "seq", "time_ms", "uid", "actor", "tool", "destination", "action", "tier", "categories", "status",
    "operation", "record", "hash",
)  # fmt: skip


class Prepared(NamedTuple):
    """An event encoded for the log but not yet placed in it (see the module docstring)."""

    uid: str
    # The canonical record cut at metadata.logged_time, metadata.sequence, prev_hash and sequence.
    pieces: list[bytes]
    # EVENT_COLUMNS from time_ms to operation.
    columns: tuple[Any, ...]
    value_keys: tuple[int, ...]


@dataclass(slots=True)
class Sealed:
    """A batch ready to insert: event rows (EVENT_COLUMNS), value-hash index rows (epoch, key, seq),
    new tree nodes."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    value_keys: list[tuple[int, int, int]] = field(default_factory=list)
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
    """The first 64 bits of the HMAC as a signed integer (what SQLite and PostgreSQL store)."""
    key = int(hmac_hex[:16], 16)
    return key - (1 << 64) if key >> 63 else key


def columns_of(event: AuditEvent) -> tuple[Any, ...]:
    """The search columns of an event (EVENT_COLUMNS from time_ms to operation)."""
    classification = event.classification
    actor = event.actor
    return (
        to_ms(event.time),
        event.uid,
        actor.user_id,
        actor.client_tool,
        destination_of(event),
        event.decision.action,
        classification.tier,
        categories_column(classification.categories),
        event.status,
        event.operation,
    )


def prepare(event: AuditEvent) -> Prepared:
    ocsf = event.to_ocsf()
    metadata = ocsf["metadata"]
    metadata["logged_time"] = metadata["sequence"] = SLOT
    columns = columns_of(event)
    prefixes = sorted({h[:16] for hashes in event.classification.value_hashes.values() for h in hashes})
    # The record commits to what the store indexes it by (see canonical.py): verification compares
    # the store's search columns and value-hash index rows with this without parsing the event.
    pieces = canonical_pieces(
        {"columns": [*columns, prefixes], "event": ocsf, "prev_hash": SLOT, "sequence": SLOT}, 4
    )
    return Prepared(event.uid, pieces, columns, tuple(sorted({value_key(p) for p in prefixes})))


def seal(head: Head, events: Sequence[Prepared]) -> Sealed:
    """Number and chain `events` after `head`, which is advanced in place.

    The record is the prepared pieces joined with the canonical JSON of the values they leave open:
    integers in decimal and the previous hash as a string of lowercase hex, as `record_bytes` writes.
    """
    logged = b"%d" % int(time.time() * 1000)
    out = Sealed()
    rows, value_keys, receipts, nodes = out.rows, out.value_keys, out.receipts, out.nodes
    prev = head.last_hash
    link = b'"%s"' % prev.hex().encode()
    push, append_leaf = head.frontier.push, head.frontier.append
    seq = head.size
    # The hot loop of an append (it runs inside the write lock): locals only, and the tree's cached
    # nodes collected only at the leaves that complete one (every 2**NODE_CACHE_LEVEL leaves).
    node_mask = (1 << NODE_CACHE_LEVEL) - 1
    leaf_prefix = LEAF_PREFIX
    for event in events:
        seq += 1
        number = b"%d" % seq
        logged_at, in_metadata, chained_to, in_record, end = event.pieces
        record = b"".join((logged_at, logged, in_metadata, number, chained_to, link, in_record, number, end))
        hasher = leaf_prefix.copy()
        hasher.update(record)
        digest = hasher.digest()
        if seq & node_mask:
            push(digest)
        else:
            nodes.extend(append_leaf(digest, NODE_CACHE_LEVEL))
        if event.value_keys:
            epoch = seq >> VALUE_EPOCH_BITS
            value_keys.extend([(epoch, key, seq) for key in event.value_keys])
        rows.append((seq, *event.columns, record, digest))
        hex_digest = digest.hex()
        receipts.append(Receipt(seq, event.uid, hex_digest))
        link = b'"%s"' % hex_digest.encode()
        prev = digest
    head.size = seq
    head.last_hash = prev
    return out
