"""Inclusion and consistency proofs that an auditor checks offline with only the public key.

An inclusion proof file holds the canonical record itself, its RFC 9162 audit path, and the signed
checkpoint it leads to. `check_proof` recomputes SHA-256(0x00 || record), folds the path to a root,
and checks that root and the checkpoint signature: nothing from the store is trusted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from phiwarden.audit.canonical import record_hash
from phiwarden.audit.checkpoint import SignedCheckpoint, StatementError, parse_checkpoint
from phiwarden.audit.errors import AuditError
from phiwarden.audit.keys import VerifyKey
from phiwarden.audit.ledger import NODE_CACHE_LEVEL
from phiwarden.audit.merkle import (
    Frontier,
    SubtreeHash,
    consistency_path,
    inclusion_path,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from phiwarden.audit.store import AuditStore

INCLUSION_TYPE = "phiwarden.audit.inclusion-proof/v1"
CONSISTENCY_TYPE = "phiwarden.audit.consistency-proof/v1"


class ProofError(AuditError):
    """A proof cannot be built (no checkpoint covers the event, pruned range, damaged tree data)."""


def subtree_resolver(store: AuditStore) -> SubtreeHash:
    """Hashes of perfect subtrees from cached nodes, the prune boundary frontier, or leaf hashes."""
    prunes = store.prunes()
    boundary = prunes[-1].statement.last_sequence if prunes else 0
    pieces = (
        {
            (start, size): digest
            for start, size, digest in Frontier(boundary, prunes[-1].statement.frontier).pieces()
        }
        if prunes
        else {}
    )
    block = 1 << NODE_CACHE_LEVEL

    def subtree(start: int, size: int) -> bytes:
        if (start, size) in pieces:
            return pieces[(start, size)]
        if size >= block:
            cached = store.node(size.bit_length() - 1, start // size)
            if cached is not None:
                return cached
        if start >= boundary and size <= block:
            leaves = store.leaf_hashes(start + 1, start + size)
            if len(leaves) != size:
                raise ProofError(f"leaves {start + 1}..{start + size} are not all in the store")
            return root_of(leaves)
        if start + size <= boundary and size == 1:
            raise ProofError(f"event {start + 1} was pruned")
        half = size // 2
        return node_hash(subtree(start, half), subtree(start + half, half))

    return subtree


def covering_checkpoint(store: AuditStore, seq: int) -> SignedCheckpoint:
    latest = store.latest_checkpoint()
    if latest is None or latest.statement.tree_size < seq:
        raise ProofError(f"no checkpoint covers event {seq} yet; run `phiwarden audit checkpoint` first")
    return latest


def inclusion_proof(
    store: AuditStore, seq: int, checkpoint: SignedCheckpoint | None = None
) -> dict[str, Any]:
    signed = checkpoint or covering_checkpoint(store, seq)
    size = signed.statement.tree_size
    stored = store.record(seq)
    if stored is None:
        raise ProofError(f"event {seq} is not in the store")
    leaf = record_hash(stored.record)
    path = inclusion_path(seq - 1, size, subtree_resolver(store))
    # A proof that does not check here would fail the auditor; refuse to hand it out.
    if not verify_inclusion(seq - 1, size, leaf, path, signed.statement.root_hash):
        raise ProofError(
            f"event {seq} does not lead to the root of checkpoint {size}: run `phiwarden audit verify`"
        )
    return {
        "type": INCLUSION_TYPE,
        "log_id": signed.statement.log_id,
        "sequence": seq,
        "leaf_index": seq - 1,
        "tree_size": size,
        "record": stored.record.decode("utf-8"),
        "leaf_hash": leaf.hex(),
        "inclusion_path": [h.hex() for h in path],
        "checkpoint": signed.to_json(),
    }


def consistency_proof(store: AuditStore, old: SignedCheckpoint, new: SignedCheckpoint) -> dict[str, Any]:
    old_size, new_size = old.statement.tree_size, new.statement.tree_size
    path = consistency_path(old_size, new_size, subtree_resolver(store))
    if not verify_consistency(old_size, new_size, old.statement.root_hash, new.statement.root_hash, path):
        raise ProofError(
            f"checkpoints {old_size} and {new_size} are not consistent: run `phiwarden audit verify`"
        )
    return {
        "type": CONSISTENCY_TYPE,
        "log_id": new.statement.log_id,
        "old_size": old_size,
        "new_size": new_size,
        "consistency_path": [h.hex() for h in path],
        "old_checkpoint": old.to_json(),
        "new_checkpoint": new.to_json(),
    }


@dataclass(slots=True)
class ProofCheck:
    ok: bool
    messages: list[str] = field(default_factory=list)
    event: dict[str, Any] | None = None


def check_proof(data: Mapping[str, Any] | str, key: VerifyKey) -> ProofCheck:
    """Check an inclusion or consistency proof offline."""
    try:
        proof = json.loads(data) if isinstance(data, str) else data
        if not isinstance(proof, Mapping):
            return ProofCheck(False, ["a proof is a JSON object"])
        if proof.get("type") == INCLUSION_TYPE:
            return _check_inclusion(proof, key)
        if proof.get("type") == CONSISTENCY_TYPE:
            return _check_consistency(proof, key)
        return ProofCheck(False, [f"unknown proof type {proof.get('type')!r}"])
    except (KeyError, TypeError, ValueError, StatementError) as exc:
        return ProofCheck(False, [f"malformed proof: {exc}"])


def _checkpoint_ok(signed: SignedCheckpoint, key: VerifyKey, messages: list[str]) -> bool:
    if signed.verify(key):
        messages.append(f"checkpoint at size {signed.statement.tree_size} is signed by key {key.id}")
        return True
    messages.append(f"the checkpoint signature does not verify with key {key.id}")
    return False


def _fields_agree(proof: Mapping[str, Any], derived: Mapping[str, Any], messages: list[str]) -> bool:
    """The proof's plain fields (for people reading the file) against what its signed checkpoints and
    record give: one edited in the file would be believed by a reader, though nothing checks it."""
    agree = True
    for name, value in derived.items():
        if name in proof and proof[name] != value:
            agree = False
            messages.append(
                f"the proof's {name} field says {proof[name]!r}, but what is signed gives {value!r}: "
                "the file was edited"
            )
    return agree


def _check_inclusion(proof: Mapping[str, Any], key: VerifyKey) -> ProofCheck:
    messages: list[str] = []
    signed = parse_checkpoint(proof["checkpoint"])
    record = str(proof["record"]).encode("utf-8")
    seq = int(proof["sequence"])
    parsed = json.loads(record)
    size = signed.statement.tree_size
    leaf = record_hash(record)
    path = [bytes.fromhex(h) for h in proof["inclusion_path"]]
    ok = _checkpoint_ok(signed, key, messages)
    derived = {"log_id": signed.statement.log_id, "leaf_index": seq - 1, "tree_size": size}
    ok &= _fields_agree(proof, {**derived, "leaf_hash": leaf.hex()}, messages)
    if parsed.get("sequence") != seq:
        ok = False
        messages.append(f"the record is event {parsed.get('sequence')}, not {seq}")
    if verify_inclusion(seq - 1, size, leaf, path, signed.statement.root_hash):
        messages.append(f"event {seq} is included in the log of {size} events ({len(path)} hashes)")
    else:
        ok = False
        messages.append(
            f"event {seq} does not lead to the checkpoint root: the record or the path was altered"
        )
    return ProofCheck(ok, messages, parsed.get("event"))


def _check_consistency(proof: Mapping[str, Any], key: VerifyKey) -> ProofCheck:
    messages: list[str] = []
    old = parse_checkpoint(proof["old_checkpoint"])
    new = parse_checkpoint(proof["new_checkpoint"])
    ok = _checkpoint_ok(old, key, messages) & _checkpoint_ok(new, key, messages)
    path = [bytes.fromhex(h) for h in proof["consistency_path"]]
    old_size, new_size = old.statement.tree_size, new.statement.tree_size
    ok &= _fields_agree(
        proof, {"log_id": new.statement.log_id, "old_size": old_size, "new_size": new_size}, messages
    )
    if old.statement.log_id != new.statement.log_id:
        ok = False
        messages.append("the two checkpoints are of different logs")
    if verify_consistency(old_size, new_size, old.statement.root_hash, new.statement.root_hash, path):
        messages.append(f"the log of {new_size} events extends the log of {old_size} events unchanged")
    else:
        ok = False
        messages.append(
            f"the log of {new_size} events does not extend the one of {old_size}: history was rewritten"
        )
    return ProofCheck(ok, messages)
