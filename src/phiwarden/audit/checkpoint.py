"""Signed statements about the log: checkpoints (tree size, root, time) and prune records.

The signed message is the canonical JSON of the statement's body (see `canonical.py`); signatures are
Ed25519 and travel as base64. A statement names the key that signed it by key id (the first 16 hex
digits of SHA-256 of the raw public key) and the log it is about by log id.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from phiwarden.audit.canonical import canonical_json
from phiwarden.audit.errors import AuditError
from phiwarden.audit.keys import SigningKey, VerifyKey

CHECKPOINT_TYPE = "phiwarden.audit.checkpoint/v1"
PRUNE_TYPE = "phiwarden.audit.prune/v1"


class StatementError(AuditError):
    """A checkpoint or prune record that cannot be read."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    log_id: str
    tree_size: int
    root_hash: bytes
    # The chain hash of the last event, so a checkpoint pins the chain as well as the tree.
    last_hash: bytes
    time_ms: int
    key_id: str

    def body(self) -> dict[str, Any]:
        return {
            "type": CHECKPOINT_TYPE,
            "log_id": self.log_id,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "last_hash": self.last_hash.hex(),
            "time": self.time_ms,
            "key_id": self.key_id,
        }

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Checkpoint:
        _expect_type(body, CHECKPOINT_TYPE)
        try:
            return cls(
                log_id=str(body["log_id"]),
                tree_size=_int(body["tree_size"]),
                root_hash=bytes.fromhex(body["root_hash"]),
                last_hash=bytes.fromhex(body["last_hash"]),
                time_ms=_int(body["time"]),
                key_id=str(body["key_id"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StatementError(f"malformed checkpoint: {exc}") from None


@dataclass(frozen=True, slots=True)
class PruneRecord:
    """Events first_sequence..last_sequence were removed; what remains still verifies from here."""

    log_id: str
    first_sequence: int
    last_sequence: int
    count: int
    boundary_root: bytes
    boundary_hash: bytes
    # The Merkle frontier at last_sequence: with it, later events still extend the same tree.
    frontier: tuple[bytes, ...]
    time_ms: int
    key_id: str
    reason: str

    def body(self) -> dict[str, Any]:
        return {
            "type": PRUNE_TYPE,
            "log_id": self.log_id,
            "first_sequence": self.first_sequence,
            "last_sequence": self.last_sequence,
            "count": self.count,
            "boundary_root": self.boundary_root.hex(),
            "boundary_hash": self.boundary_hash.hex(),
            "frontier": [h.hex() for h in self.frontier],
            "time": self.time_ms,
            "key_id": self.key_id,
            "reason": self.reason,
        }

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> PruneRecord:
        _expect_type(body, PRUNE_TYPE)
        try:
            return cls(
                log_id=str(body["log_id"]),
                first_sequence=_int(body["first_sequence"]),
                last_sequence=_int(body["last_sequence"]),
                count=_int(body["count"]),
                boundary_root=bytes.fromhex(body["boundary_root"]),
                boundary_hash=bytes.fromhex(body["boundary_hash"]),
                frontier=tuple(bytes.fromhex(h) for h in body["frontier"]),
                time_ms=_int(body["time"]),
                key_id=str(body["key_id"]),
                reason=str(body["reason"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StatementError(f"malformed prune record: {exc}") from None


T = TypeVar("T", "Checkpoint", "PruneRecord")


@dataclass(frozen=True, slots=True)
class Signed(Generic[T]):
    statement: T
    signature: bytes

    def message(self) -> bytes:
        return canonical_json(self.statement.body())

    def verify(self, key: VerifyKey) -> bool:
        return self.statement.key_id == key.id and key.verify(self.signature, self.message())

    def to_json(self) -> dict[str, Any]:
        return {"statement": self.statement.body(), "signature": base64.b64encode(self.signature).decode()}

    def to_line(self) -> str:
        return canonical_json(self.to_json()).decode("utf-8")


SignedCheckpoint = Signed[Checkpoint]
SignedPrune = Signed[PruneRecord]


def sign(statement: T, key: SigningKey) -> Signed[T]:
    if statement.key_id != key.public.id:
        raise StatementError("the statement names another key than the one signing it")
    return Signed(statement, key.sign(canonical_json(statement.body())))


def parse_signed(data: Mapping[str, Any] | str) -> SignedCheckpoint | SignedPrune:
    """A signed statement from its JSON (object or text)."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise StatementError(f"not JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise StatementError("a signed statement is a JSON object")
    body = data.get("statement")
    if not isinstance(body, Mapping):
        raise StatementError("missing 'statement'")
    try:
        signature = base64.b64decode(str(data.get("signature", "")), validate=True)
    except (binascii.Error, ValueError):
        raise StatementError("the signature is not base64") from None
    if body.get("type") == PRUNE_TYPE:
        return Signed(PruneRecord.from_body(body), signature)
    return Signed(Checkpoint.from_body(body), signature)


def parse_checkpoint(data: Mapping[str, Any] | str) -> SignedCheckpoint:
    signed = parse_signed(data)
    if not isinstance(signed.statement, Checkpoint):
        raise StatementError("expected a checkpoint, got a prune record")
    return Signed(signed.statement, signed.signature)


def _expect_type(body: Mapping[str, Any], expected: str) -> None:
    if body.get("type") != expected:
        raise StatementError(f"expected a {expected!r} statement, got {body.get('type')!r}")


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value
