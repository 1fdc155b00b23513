"""RFC 9162 Merkle trees: tree hashes, inclusion proofs (§2.1.3) and consistency proofs (§2.1.4).

Leaves are the canonical records of the log; leaf hash = SHA-256(0x00 || record) and interior node
= SHA-256(0x01 || left || right). The tree of n leaves splits at k, the largest power of two below n.

`Frontier` keeps the roots of the perfect subtrees that make up the first n leaves (one per set bit
of n), which is all an append-only writer or a streaming verifier needs to extend the tree and to know
its root at any size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from hashlib import sha256

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

# The hash of the perfect subtree of `size` leaves starting at leaf `start` (both as the tree sees them).
SubtreeHash = Callable[[int, int], bytes]


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly below n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves: the reference definition, for small trees and tests."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = split_point(n)
    return node_hash(root_of(leaf_hashes[:k]), root_of(leaf_hashes[k:]))


@dataclass(frozen=True, slots=True)
class CompletedNode:
    """A perfect subtree of 2**level leaves starting at leaf index * 2**level, finished by an append."""

    level: int
    index: int
    hash: bytes


class Frontier:
    """Roots of the perfect subtrees covering the first `size` leaves, largest (leftmost) first."""

    __slots__ = ("_hashes", "size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != size.bit_count():
            raise ValueError(
                f"a frontier of {size} leaves has {size.bit_count()} subtrees, not {len(hashes)}"
            )
        self.size = size
        self._hashes = list(hashes)

    @classmethod
    def from_bytes(cls, size: int, data: bytes) -> Frontier:
        if len(data) % HASH_SIZE:
            raise ValueError("frontier bytes are not a whole number of hashes")
        return cls(size, [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)])

    def to_bytes(self) -> bytes:
        return b"".join(self._hashes)

    def copy(self) -> Frontier:
        return Frontier(self.size, self._hashes)

    def pieces(self) -> list[tuple[int, int, bytes]]:
        """(start, size, hash) of each perfect subtree, left to right."""
        out: list[tuple[int, int, bytes]] = []
        start = 0
        for bit in range(self.size.bit_length() - 1, -1, -1):
            if self.size >> bit & 1:
                out.append((start, 1 << bit, self._hashes[len(out)]))
                start += 1 << bit
        return out

    def append(self, leaf: bytes, keep_level: int = 64, *, level: int = 0) -> list[CompletedNode]:
        """Add one leaf hash (or, with `level`, the root of a perfect subtree of 2**level leaves).

        Returns the perfect subtrees of at least 2**keep_level leaves this completed.
        """
        hashes = self._hashes
        size = self.size
        if size & ((1 << level) - 1):
            raise ValueError(f"a subtree of 2**{level} leaves cannot start at leaf {size}")
        current = leaf
        start_level = level
        completed: list[CompletedNode] = []
        # Each trailing set bit of `size` is a subtree of the same height as the one being carried.
        while size >> level & 1:
            current = node_hash(hashes.pop(), current)
            level += 1
            if level >= keep_level:
                completed.append(CompletedNode(level, size >> level, current))
        hashes.append(current)
        self.size = size + (1 << start_level)
        return completed

    def push(self, leaf: bytes) -> None:
        """`append` for the hot loop of verification: one leaf, no completed-node bookkeeping."""
        hashes = self._hashes
        size = self.size
        self.size = size + 1
        while size & 1:
            leaf = sha256(b"\x01" + hashes.pop() + leaf).digest()
            size >>= 1
        hashes.append(leaf)

    def root(self) -> bytes:
        if not self._hashes:
            return EMPTY_ROOT
        current = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            current = node_hash(left, current)
        return current


def inclusion_path(index: int, size: int, subtree: SubtreeHash) -> list[bytes]:
    """PATH(index, D[size]) of RFC 9162 §2.1.3.1, bottom-up, using `subtree` for sibling hashes."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    path: list[bytes] = []
    start, n, m = 0, size, index
    # Walk down from the root, collecting the sibling of each step; the RFC lists them leaf-first.
    while n > 1:
        k = split_point(n)
        if m < k:
            path.append(_range_hash(start + k, n - k, subtree))
            n = k
        else:
            path.append(_range_hash(start, k, subtree))
            start, n, m = start + k, n - k, m - k
    path.reverse()
    return path


def consistency_path(old_size: int, new_size: int, subtree: SubtreeHash) -> list[bytes]:
    """PROOF(old_size, D[new_size]) of RFC 9162 §2.1.4.1."""
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from {old_size} to {new_size}")
    path: list[bytes] = []
    start, n, m, complete = 0, new_size, old_size, True
    while m != n:
        k = split_point(n)
        if m <= k:
            path.append(_range_hash(start + k, n - k, subtree))
            n = k
        else:
            path.append(_range_hash(start, k, subtree))
            start, n, m, complete = start + k, n - k, m - k, False
    if not complete:
        path.append(_range_hash(start, m, subtree))
    path.reverse()
    return path


def _range_hash(start: int, size: int, subtree: SubtreeHash) -> bytes:
    """MTH of leaves [start, start+size), built from perfect subtrees (the right edge may be ragged)."""
    if size & (size - 1) == 0:
        return subtree(start, size)
    k = split_point(size)
    return node_hash(subtree(start, k), _range_hash(start + k, size - k, subtree))


def root_from_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes | None:
    """The root implied by an inclusion proof (RFC 9162 §2.1.3.2), or None when the proof is malformed."""
    if not 0 <= index < size:
        return None
    fn, sn = index, size - 1
    r = leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes], root: bytes) -> bool:
    return root_from_inclusion(index, size, leaf, path) == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, path: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2."""
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not path and old_root == new_root
    proof = list(path)
    if old_size & (old_size - 1) == 0:
        proof.insert(0, old_root)
    if not proof:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
