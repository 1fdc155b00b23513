"""The canonical encoding that every hash and signature covers.

Canonical JSON here is RFC 8785 (JCS) restricted to what audit records hold: objects with ASCII keys,
arrays, strings, integers in the I-JSON range (|n| < 2**53), true, false and null; no floating-point
numbers. For that subset JCS and Python's `json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=False)` produce the same bytes: keys sorted by code point, no whitespace, strings escaped
only where JSON requires it (`"`, `\\`, control characters; \\b \\f \\n \\r \\t short forms, others as
lowercase \\u00xx), everything else as UTF-8. orjson with OPT_SORT_KEYS writes exactly these bytes and
does it ten times faster; the tests hold it to `json.dumps`.

The record that forms leaf n of the log (1-based sequence n) is

    canonical({"columns": C, "event": E, "prev_hash": hex(h[n-1]), "sequence": n})

where E is the OCSF event object, C what the store indexes the event by (`ledger.prepare`: its search
columns, then the first 16 hex digits of each value HMAC, sorted), so that verification compares the
store's search columns and value-hash index with what each record committed to without parsing E
(records written before C existed have none), and h[0] is 32 zero bytes. The hash h[n] =
SHA-256(0x00 || record) is both the chain link the next record embeds and the RFC 9162 Merkle leaf
hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

MAX_SAFE_INTEGER = 2**53 - 1
HASH_SIZE = 32
GENESIS_HASH = bytes(HASH_SIZE)
# SHA-256 already fed the leaf prefix: copying it and adding a record skips concatenating 0x00 to a
# kilobyte-long record in the hot loops.
LEAF_PREFIX = hashlib.sha256(b"\x00")
# A value filled in after encoding (see `canonical_pieces`). orjson copies a Fragment as it is and
# escapes every control character inside strings, so a raw NUL in its output can only be a slot.
SLOT = orjson.Fragment(b"\x00")


class CanonicalError(ValueError):
    """A value outside the canonical subset (a float, a non-ASCII key, an integer out of range, …)."""


def _check(value: Any, path: str) -> None:
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return
    if kind is int:
        if abs(value) > MAX_SAFE_INTEGER:
            raise CanonicalError(f"{path}: integer out of the I-JSON range")
        return
    if kind is list or kind is tuple:
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")
        return
    if kind is dict or isinstance(value, Mapping):
        for key, item in value.items():
            if type(key) is not str or not key.isascii():
                raise CanonicalError(f"{path}: keys must be ASCII strings, got {key!r}")
            _check(item, path + "." + key)
        return
    raise CanonicalError(f"{path}: {kind.__name__} is not allowed in canonical JSON")


def canonical_json(value: Any, *, validated: bool = False) -> bytes:
    """The canonical UTF-8 bytes of `value` (see the module docstring).

    `validated` skips the type walk for values built from already-validated parts (sealing events).
    """
    if not validated:
        _check(value, "$")
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:
        raise CanonicalError(f"not encodable as canonical JSON: {exc}") from None


def canonical_pieces(value: Any, slots: int) -> list[bytes]:
    """canonical_json(value) cut at the `slots` SLOT values it holds, in document order.

    Object members are sorted by key whatever their values, so joining the pieces with the canonical
    JSON of the values the slots stand for gives the canonical JSON of the filled-in value.
    `value` is built from already-validated parts, as for `canonical_json(validated=True)`.
    """
    pieces = canonical_json(value, validated=True).split(b"\x00")
    if len(pieces) != slots + 1:
        raise CanonicalError(f"expected {slots} slot(s), found {len(pieces) - 1}")
    return pieces


def record_bytes(
    event: Mapping[str, Any], prev_hash: bytes, sequence: int, *, columns: Sequence[Any] | None = None
) -> bytes:
    """The record of `event` at `sequence`; without `columns`, as records were written before them."""
    members: dict[str, Any] = {"event": event, "prev_hash": prev_hash.hex(), "sequence": sequence}
    if columns is not None:
        members["columns"] = list(columns)
    return canonical_json(members)


def record_suffix(prev_hash: bytes, sequence: int) -> bytes:
    """How a canonical record ends: sorted keys put the chain link and the sequence last.

    Verification compares this suffix instead of parsing every record.
    """
    return b',"prev_hash":"' + prev_hash.hex().encode() + b'","sequence":' + str(sequence).encode() + b"}"


def record_hash(record: bytes) -> bytes:
    """SHA-256(0x00 || record): the RFC 9162 leaf hash, and the chain hash of the record."""
    return hashlib.sha256(b"\x00" + record).digest()
