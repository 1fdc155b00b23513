"""Canonical encoding and the RFC 9162 tree, against reference definitions."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phiwarden.audit.canonical import CanonicalError, canonical_json, record_hash
from phiwarden.audit.merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_path,
    inclusion_path,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(st.characters(max_codepoint=127), max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_json)
def test_canonical_json_is_sorted_compact_utf8_json(value: Any) -> None:
    try:
        expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
            "utf-8"
        )
    except UnicodeEncodeError:
        with pytest.raises(CanonicalError):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


@pytest.mark.parametrize("value", [1.5, {"é": 1}, {1: 2}, 2**53, {"a": {1, 2}}, "\ud800"], ids=repr)
def test_values_outside_the_canonical_subset_are_refused(value: Any) -> None:
    with pytest.raises(CanonicalError):
        canonical_json(value)


def _leaves(n: int) -> list[bytes]:
    return [record_hash(str(i).encode()) for i in range(n)]


def test_rfc9162_hashes_use_domain_separation() -> None:
    assert root_of([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert record_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    left, right = b"L" * 32, b"R" * 32
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    leaves = _leaves(3)
    assert root_of(leaves) == node_hash(node_hash(leaves[0], leaves[1]), leaves[2])


def test_frontier_matches_the_tree_at_every_size_and_keeps_completed_nodes() -> None:
    leaves = _leaves(70)
    frontier = Frontier()
    kept = []
    for n, leaf in enumerate(leaves, start=1):
        kept.extend(frontier.append(leaf, keep_level=3))
        assert frontier.root() == root_of(leaves[:n])
        restored = Frontier.from_bytes(n, frontier.to_bytes())
        assert restored.root() == frontier.root()
    for node in kept:
        size = 1 << node.level
        assert node.hash == root_of(leaves[node.index * size : (node.index + 1) * size])
    assert {(n.level, n.index) for n in kept} >= {(3, 0), (4, 0), (6, 0), (3, 7)}


def test_frontier_accepts_whole_subtrees() -> None:
    leaves = _leaves(24)
    frontier = Frontier()
    frontier.append(root_of(leaves[:16]), level=4)
    frontier.append(root_of(leaves[16:24]), level=3)
    assert frontier.size == 24
    assert frontier.root() == root_of(leaves)
    with pytest.raises(ValueError):
        frontier.append(leaves[0], level=4)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 8, 13, 16, 33])
def test_inclusion_proofs_verify_for_every_leaf_and_fail_when_altered(size: int) -> None:
    leaves = _leaves(size)
    root = root_of(leaves)

    def subtree(start: int, n: int) -> bytes:
        return root_of(leaves[start : start + n])

    for index in range(size):
        path = inclusion_path(index, size, subtree)
        assert len(path) <= max(1, (size - 1).bit_length())
        assert verify_inclusion(index, size, leaves[index], path, root)
        assert not verify_inclusion(index, size, record_hash(b"other"), path, root)
        if path:
            assert not verify_inclusion(index, size, leaves[index], [*path[:-1], b"\0" * 32], root)
            assert not verify_inclusion(index, size, leaves[index], path[:-1], root)
        if size > 1:
            assert not verify_inclusion((index + 1) % size, size, leaves[index], path, root)


def test_consistency_proofs_between_all_sizes() -> None:
    leaves = _leaves(20)

    def subtree(start: int, n: int) -> bytes:
        return root_of(leaves[start : start + n])

    for new in range(1, 21):
        for old in range(1, new + 1):
            path = consistency_path(old, new, subtree)
            assert verify_consistency(old, new, root_of(leaves[:old]), root_of(leaves[:new]), path)
            if old < new:
                forked = [*leaves[: old - 1], record_hash(b"fork"), *leaves[old:new]]
                assert not verify_consistency(old, new, root_of(leaves[:old]), root_of(forked), path)
