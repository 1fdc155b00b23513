"""Verification of the records, chunk by chunk: what `verify` runs in parallel processes.

A chunk is 2**16 records aligned on the Merkle tree (the first one may start after a prune). For
each record: sequence numbers dense, SHA-256(0x00 || record) equal to the stored hash, the embedded
sequence number and previous hash equal to its position and to its predecessor's hash (the last
record's link is checked against the next chunk's first), the search columns equal to what the
record holds, and, for the chunk as a whole, the value-hash index rows equal to the record's HMACs.
A chunk returns its problems and its subtree (frontier snapshots at checkpoint sizes) over the stored
hashes, and over the hashes the records claim were sealed where those differ; joining them is all
the main process has to do.
"""

from __future__ import annotations

import binascii
import gc
import os
import struct
import sys
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from hashlib import sha256
from multiprocessing import get_context
from typing import Any

import orjson

from phiwarden.audit.canonical import GENESIS_HASH, LEAF_PREFIX
from phiwarden.audit.derived import SEARCH_COLUMNS, CategoryDetails, NotAnEvent, matches, search_columns
from phiwarden.audit.ledger import VALUE_EPOCH_BITS
from phiwarden.audit.merkle import HASH_SIZE, Frontier
from phiwarden.audit.store import AuditStore, open_existing
from phiwarden.audit.verify_report import DERIVED_KINDS, Found, Problem

CHUNK_LEVEL = 16
CHUNK = 1 << CHUNK_LEVEL
# Problems kept per chunk (the ones with the smallest sequence numbers); the rest are counted.
CHUNK_PROBLEMS = 20
_PREV = b',"prev_hash":"'
# A record that commits to its search columns opens with them (sorted keys: "columns" < "event").
_COLUMNS = b'{"columns":['
# Where the columns member ends: its list of index keys closes, then the member itself.
_COLUMNS_CLOSE = b'],"event":{'
_NO_COLUMNS = (None,) * len(SEARCH_COLUMNS)
_SEQ = b'","sequence":'
# How a record chained to a previous hash (hex) at a sequence number ends (see `record_suffix`).
_TAIL = _PREV + b"%s" + _SEQ + b"%d}"


@dataclass(frozen=True, slots=True)
class Task:
    url: str
    first: int
    last: int
    # The global frontier before `first`, for a chunk not aligned on CHUNK; None for aligned chunks,
    # whose frontier is local (they are one perfect subtree once complete).
    frontier: tuple[int, bytes] | None
    # The checkpoints inside the chunk: (tree size, the hash of the event at that size they hold).
    checkpoints: tuple[tuple[int, bytes], ...]
    # The events of the log (after prunes): value-index rows of other events are not this chunk's.
    low: int
    high: int
    # The hash record `first` must be chained to, for the first chunk (the genesis or prune boundary);
    # the others' first links are checked by the chunk before.
    prev: bytes | None


@dataclass(slots=True)
class ChunkResult:
    first: int
    rows: int = 0
    # Leaves from `first` on before the first gap: the tree stops there.
    leaves: int = 0
    # No row of first..last is missing.
    complete: bool = True
    # The hash of the last leaf's record.
    last_hash: bytes = GENESIS_HASH
    frontier: tuple[int, bytes] = (0, b"")
    snapshots: dict[int, tuple[int, bytes]] = field(default_factory=dict)
    # Snapshots and frontier of the leaves as the records claim they were sealed, when that differs.
    repaired: tuple[dict[int, tuple[int, bytes]], tuple[int, bytes]] | None = None
    problems: list[Problem] = field(default_factory=list)
    more: int = 0
    # Frontier and snapshots count from the chunk's first record (True) or from leaf 0 (False).
    local: bool = True


def scan(
    store: AuditStore,
    *,
    start: int,
    end: int,
    prev: bytes,
    frontier: Frontier,
    checkpoints: dict[int, bytes],
    workers: int | None,
) -> list[ChunkResult]:
    if end < start:
        return []
    tasks: list[Task] = []
    first = start
    while first <= end:
        # Chunks after the first start on a multiple of CHUNK, so each is one subtree of the Merkle tree.
        last = min(end, first - 1 - (first - 1) % CHUNK + CHUNK)
        inside = tuple((s, h) for s, h in sorted(checkpoints.items()) if first <= s <= last)
        # The first chunk keeps the global frontier only when it does not start on the grid.
        state = (frontier.size, frontier.to_bytes()) if first == start and (first - 1) % CHUNK else None
        tasks.append(
            Task(store.url, first, last, state, inside, start, end, prev if first == start else None)
        )
        first = last + 1
    count = workers if workers is not None else min(len(tasks), os.cpu_count() or 1)
    if count <= 1 or len(tasks) < 2:
        return [_scan_chunk(store, task) for task in tasks]
    # fork starts workers in milliseconds and needs no importable __main__; they open their own connection.
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    with ProcessPoolExecutor(max_workers=count, mp_context=get_context(method)) as pool:
        return list(pool.map(_scan_chunk_worker, tasks))


# A worker verifies several chunks: it opens the store once, read-only.
_WORKER_STORES: dict[str, AuditStore] = {}


def _scan_chunk_worker(task: Task) -> ChunkResult:
    store = _WORKER_STORES.get(task.url)
    if store is None:
        store = _WORKER_STORES[task.url] = open_existing(task.url, read_only=True)
    return _scan_chunk(store, task)


def _scan_chunk(store: AuditStore, task: Task) -> ChunkResult:
    """Verify records task.first..task.last, and the link of the next record to the last of them."""
    # The scan makes no reference cycles, but hundreds of thousands of objects (parsed records, the
    # index rows of the chunk): the cycle collector would walk them over and over, doubling its time.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _scan_records(store, task)
    finally:
        if collecting:
            gc.enable()


def _scan_records(store: AuditStore, task: Task) -> ChunkResult:
    result = ChunkResult(task.first, local=task.frontier is None)
    found = Found(CHUNK_PROBLEMS)
    # Positions with exact evidence about their record.
    pinned: set[int] = set()

    def note(problem: Problem) -> None:
        found.add(problem)
        if problem.exact and problem.kind not in DERIVED_KINDS and problem.seq is not None:
            pinned.add(problem.seq)

    leaf_prefix = LEAF_PREFIX
    columns_head, columns_close = _COLUMNS, _COLUMNS_CLOSE
    as_json = store.columns_as_json
    hexlify = binascii.hexlify
    loads = orjson.loads
    tail = _TAIL
    first, last = task.first, task.last
    digests: list[bytes] = []
    keep = digests.append
    # The value-index keys the records commit to (HMAC prefixes, hex, in each record's order) and
    # the events they belong to, compared with the index once the chunk is read.
    prefixes: list[str] = []
    owners: list[int] = []
    add_prefixes, add_owners = prefixes.extend, owners.extend
    details = CategoryDetails()
    # Events whose index rows are not compared: their record itself is wrong (reported as such).
    unchecked: set[int] = set()
    # What the records say the sealed leaves were where the stored ones differ: the hash a record
    # was chained to, and the hash of a record written for another position (see `_repaired`).
    claims: dict[int, list[bytes]] = {}
    gaps: list[tuple[int, int]] = []
    expected = first
    prev = b"" if task.prev is None else hexlify(task.prev)
    last_digest = GENESIS_HASH
    bad = False
    rows = 0
    # The hot loop: hashing, the chain, and the derived data recomputed from the record; the tree is
    # built from the leaf hashes afterwards.
    for row in store.rows(first, last + 1 if last < task.high else last):
        seq = row[0]
        record = row[1]
        if type(record) is not bytes:
            # Text or numbers written over a record: hash what is there, it will not match. A stored
            # hash that is not bytes never equals a digest, so it is reported below.
            record = _as_bytes(record)
        if seq > last:
            # The next chunk's first record: only whether it is chained to this chunk's last one.
            if seq == expected and prev and not record.endswith(tail % (prev, seq)):
                chain = _chain_fields(record)
                if chain is not None and chain[1] == seq:
                    claims.setdefault(last, []).append(chain[0])
                    if not bad:
                        note(_chain_problem(last, seq))
            break
        rows += 1
        if seq != expected:
            note(Problem(expected, "missing", _missing(expected, seq - 1)))
            gaps.append((expected, seq - 1))
            prev = b""
            expected = seq
        hasher = leaf_prefix.copy()
        hasher.update(record)
        digest = hasher.digest()
        after_bad, bad = bad, False
        leaf = digest
        if digest != row[2]:
            note(Problem(seq, "modified", f"event {seq} does not match its stored hash"))
            bad = True
            # The tree is built from the stored hashes: a checkpoint that matches them proves every
            # record whose hash matches too, so a changed record is located exactly, not as a range.
            stored = row[2]
            if type(stored) is bytes and len(stored) == HASH_SIZE:
                leaf = stored
        if not prev or not record.endswith(tail % (prev, seq)):
            chain = _chain_fields(record)
            if chain is None:
                note(Problem(seq, "malformed", f"event {seq} is not a well-formed record"))
                bad = True
            elif chain[1] != seq:
                note(
                    Problem(seq, "reordered", f"the event at position {seq} was written as event {chain[1]}")
                )
                bad = True
                claims.setdefault(chain[1], []).append(digest)
                claims.setdefault(chain[1] - 1, []).append(chain[0])
            elif seq == task.low:
                note(_unanchored(seq))
            elif prev:
                claims.setdefault(seq - 1, []).append(chain[0])
                if not after_bad:
                    note(_chain_problem(seq - 1, seq))
        if bad:
            unchecked.add(seq)
        elif record.startswith(columns_head):
            # The record commits to its search columns and index keys (see canonical.py). SQLite
            # gives the stored columns as the same JSON text, so they are compared as bytes; a
            # difference (or PostgreSQL, which gives the columns) is judged value by value.
            encoded = row[3] if as_json else None
            if encoded is not None and record.startswith(encoded, 11) and record[11 + len(encoded)] == 44:
                at = 12 + len(encoded)
                if record.startswith(b"[]", at):
                    keys = []
                else:
                    try:
                        keys = loads(record[at : record.index(columns_close, at)])
                    except ValueError:
                        keys = None
            else:
                stored = store.stored_columns(seq) if as_json else row[3:]
                keys, differs = _committed_columns(seq, record, stored)
                if differs is not None:
                    note(differs)
            if keys is None:
                note(Problem(seq, "malformed", f"event {seq} is not an audit event as phiwarden writes it"))
                unchecked.add(seq)
                bad = True
            else:
                add_prefixes(keys)
                add_owners([seq] * len(keys))
        else:
            # A record written before records committed to their columns: read the event.
            try:
                event = loads(record)["event"]
            except (ValueError, KeyError, TypeError):
                note(Problem(seq, "malformed", f"event {seq} is not an audit event as phiwarden writes it"))
                unchecked.add(seq)
                bad = True
            else:
                scanned = (*row[:3], *(store.stored_columns(seq) or _NO_COLUMNS)) if as_json else row
                if not matches(event, scanned, details):
                    differs = _derived_problem(seq, event, scanned[3:])
                    if differs is not None:
                        note(differs)
                keys = _hmac_prefixes(event)
                add_prefixes(keys)
                add_owners([seq] * len(keys))
        if not gaps:
            keep(leaf)
            last_digest = digest
        prev = hexlify(digest)
        expected += 1
    if expected <= last:
        note(Problem(expected, "missing", _missing(expected, last)))
        gaps.append((expected, last))
    result.rows = rows
    result.complete = not gaps
    for problem in _check_value_index(
        store, task, prefixes=prefixes, owners=owners, unchecked=unchecked, gaps=gaps
    ):
        note(problem)
    repaired = _repaired(digests, claims, first, task.checkpoints)
    for seq in sorted(repaired.keys() - pinned if repaired else ()):
        note(
            Problem(
                seq,
                "replaced",
                f"event {seq} is not the event that was sealed at {seq} (another record or a checkpoint "
                "holds another hash for it): edited with its hash recomputed, inserted or moved",
            )
        )
    found.trim()
    result.problems, result.more = found.items, found.more
    result.leaves = len(digests)
    result.last_hash = last_digest
    sizes = [s for s, _ in task.checkpoints if s < first + len(digests)]
    result.snapshots, result.frontier = _tree_state(task, digests, sizes)
    if repaired:
        leaves = digests.copy()
        for seq, digest in repaired.items():
            leaves[seq - first] = digest
        result.repaired = _tree_state(task, leaves, sizes)
    return result


def _committed_columns(
    seq: int, record: bytes, stored: tuple[Any, ...] | None
) -> tuple[list[str] | None, Problem | None]:
    """The index keys a record commits to, and what differs between its committed search columns
    and the `stored` ones (None when the row is gone); (None, None) when the member is malformed."""
    try:
        committed = orjson.loads(record[len(_COLUMNS) - 1 : record.index(_COLUMNS_CLOSE) + 1])
        keys = committed.pop()
    except (ValueError, AttributeError, IndexError):
        return None, None
    if type(keys) is not list:
        return None, None
    columns = tuple(committed)
    if stored is None or columns == tuple(stored):
        return keys, None
    return keys, _columns_problem(seq, columns, tuple(stored))


def _check_value_index(
    store: AuditStore,
    task: Task,
    *,
    prefixes: list[str],
    owners: list[int],
    unchecked: set[int],
    gaps: Sequence[tuple[int, int]],
) -> list[Problem]:
    """The chunk's value-hash index rows against the HMAC prefixes its records hold.

    The store lists the rows as keys and sequences in the records' order, which makes the common
    case two comparisons of lists; when they differ, the rows are compared as sets, which names the
    events whose rows differ.
    """
    first, last = task.first, task.last
    keys, sequences = store.value_index_in_order(first, last, task.low, task.high)
    if not unchecked:
        expected_keys = _signed_keys(prefixes)
        if (
            expected_keys is not None
            and sequences == ",".join(map(str, owners))
            and keys == ",".join(map(str, expected_keys))
        ):
            return []
    values = _index_rows(prefixes, owners)
    if unchecked:
        values = {row for row in values if row[2] not in unchecked}
    actual = set(store.value_index_rows(first, last, task.low, task.high))
    if unchecked:
        actual = {row for row in actual if row[2] not in unchecked}
    if actual == values:
        return []
    return index_problems(values, actual, low=task.low, high=task.high, gaps=gaps)


def _signed_keys(prefixes: list[str]) -> tuple[int, ...] | None:
    """`ledger.value_key` of every prefix, converted in one call; None if one is not 16 hex digits."""
    joined = "".join(prefixes)
    if len(joined) != 16 * len(prefixes):
        return None
    try:
        return struct.unpack(f">{len(prefixes)}q", bytes.fromhex(joined))
    except ValueError:
        return None


def _hmac_prefixes(event: dict[str, Any]) -> list[str]:
    """The value-index keys (HMAC prefixes, hex) an event's record implies, as `prepare` orders them."""
    try:
        hmacs = event["unmapped"]["phiwarden"].get("value_hmacs")
        return sorted({h[:16] for hashes in hmacs.values() for h in hashes}) if hmacs else []
    except (KeyError, TypeError, AttributeError):
        return []


def _index_rows(prefixes: list[str], owners: list[int]) -> set[tuple[int, int, int]]:
    """(epoch, key, seq) rows of the value-hash index for HMACs (their first 16 hex digits) of events.

    The key is `ledger.value_key`: the first 64 bits as a signed integer, here converted for the
    whole chunk in one call. An HMAC that is not hex (a record not written by phiwarden) is left out:
    its index rows, if any, are reported as not matching.
    """
    joined = "".join(prefixes)
    try:
        raw = bytes.fromhex(joined) if len(joined) == 16 * len(prefixes) else b""
        keys = struct.unpack(f">{len(prefixes)}q", raw) if len(raw) == 8 * len(prefixes) else None
    except ValueError:
        keys = None
    if keys is None:
        pairs = [
            (key, seq)
            for prefix, seq in zip(prefixes, owners, strict=True)
            if (key := _key(prefix)) is not None
        ]
        return {(seq >> VALUE_EPOCH_BITS, key, seq) for key, seq in pairs}
    return set(zip([seq >> VALUE_EPOCH_BITS for seq in owners], keys, owners, strict=True))


def _key(prefix: str) -> int | None:
    try:
        return struct.unpack(">q", bytes.fromhex(prefix))[0] if len(prefix) == 16 else None
    except (ValueError, struct.error):
        return None


def _repaired(
    digests: list[bytes],
    claims: dict[int, list[bytes]],
    first: int,
    checkpoints: Sequence[tuple[int, bytes]],
) -> dict[int, bytes]:
    """The leaves of this chunk that the records, or the checkpoints, say were sealed with another hash.

    A record embeds the hash of the event before it, one found at the wrong position says which
    position it was sealed at, and a checkpoint holds the hash of the event at its size. When a
    checkpoint does not match the stored leaves but matches them with these put back, every other
    leaf up to it is proven intact, and the claimed positions (all reported) are exactly what
    changed: an edited event whose hash was recomputed, an inserted or moved one. A position that
    some record vouches for as it is keeps its leaf, unless a signed checkpoint says otherwise.
    """
    out: dict[int, bytes] = {}
    end = first + len(digests)
    for seq, said in claims.items():
        if first <= seq < end and digests[seq - first] not in said:
            out[seq] = said[0]
    for seq, sealed in checkpoints:
        if first <= seq < end:
            if digests[seq - first] == sealed:
                out.pop(seq, None)
            else:
                out[seq] = sealed
    return out


def _tree_state(
    task: Task, leaves: list[bytes], sizes: list[int]
) -> tuple[dict[int, tuple[int, bytes]], tuple[int, bytes]]:
    """The frontier snapshot at each checkpoint size inside the chunk, and the frontier at its end."""
    snapshots: dict[int, tuple[int, bytes]] = {}
    first = task.first
    if task.frontier is None:
        levels = _levels(leaves)
        for size in sizes:
            local = size - first + 1
            snapshots[size] = (local, _frontier_bytes(levels, local))
        return snapshots, (len(leaves), _frontier_bytes(levels, len(leaves)))
    # A chunk that does not start on the tree's grid (after a prune): extend the global frontier.
    frontier = Frontier.from_bytes(*task.frontier)
    push = frontier.push
    done = first
    for size in sizes:
        for leaf in leaves[done - first : size - first + 1]:
            push(leaf)
        done = size + 1
        snapshots[size] = (frontier.size, frontier.to_bytes())
    for leaf in leaves[done - first :]:
        push(leaf)
    return snapshots, (frontier.size, frontier.to_bytes())


def _chain_problem(seq: int, successor: int) -> Problem:
    return Problem(
        seq,
        "chain",
        f"event {successor} was not chained to event {seq}: {seq} was modified (its hash recomputed) "
        f"or inserted, or {successor} was replaced",
    )


def _unanchored(start: int) -> Problem:
    anchor = "the start of the log" if start == 1 else f"the last pruned event ({start - 1})"
    return Problem(start, "chain", f"event {start} is not chained to {anchor}")


def index_problems(
    expected: set[tuple[int, int, int]],
    actual: set[tuple[int, int, int]],
    *,
    low: int,
    high: int,
    gaps: Sequence[tuple[int, int]] = (),
) -> list[Problem]:
    """Value-hash index rows (epoch, key, seq) that differ from what the records imply, per event.

    Events low..high are the log's; `gaps` are ranges of them that are missing.
    """
    missing = Counter(seq for _, _, seq in expected - actual)
    extra: Counter[int] = Counter()
    misfiled: Counter[int] = Counter()
    stray: Counter[int] = Counter()
    for epoch, _, seq in actual - expected:
        if not low <= seq <= high or any(a <= seq <= b for a, b in gaps):
            stray[seq] += 1
        elif epoch != seq >> VALUE_EPOCH_BITS:
            misfiled[seq] += 1
        else:
            extra[seq] += 1
    problems: list[Problem] = []
    for seq in sorted(missing.keys() | extra.keys() | misfiled.keys()):
        parts = [
            text
            for count, text in (
                (missing[seq], f"{missing[seq]} of its rows are missing"),
                (extra[seq], f"{extra[seq]} row(s) hold HMACs its record does not"),
                (misfiled[seq], f"{misfiled[seq]} row(s) are filed under another epoch"),
            )
            if count
        ]
        problems.append(
            Problem(
                seq,
                "value-index",
                f"event {seq}: its value-hash index rows differ from its record ({'; '.join(parts)}): "
                "lookup cannot be trusted for its values",
            )
        )
    for seq, count in sorted(stray.items()):
        if seq > high:
            # Rows left behind by events deleted from the end of the log.
            problems.append(
                Problem(
                    seq,
                    "truncated",
                    f"the value-hash index holds {count} row(s) of event {seq}, which is not in the log: "
                    "it was deleted",
                )
            )
        else:
            where = "which was pruned" if seq < low else "which is missing"
            problems.append(
                Problem(
                    None if seq < low else seq,
                    "value-index",
                    f"the value-hash index holds {count} row(s) of event {seq}, {where}",
                )
            )
    return problems


def _missing(first: int, last: int) -> str:
    return f"event {first} is missing" if first == last else f"events {first}..{last} are missing"


def _derived_problem(seq: int, event: dict[str, Any], stored: tuple[Any, ...]) -> Problem | None:
    """What differs between the stored search columns and the record's, or None when nothing does."""
    try:
        columns = search_columns(event)
    except NotAnEvent:
        return Problem(seq, "malformed", f"event {seq} is not an audit event as phiwarden writes it")
    return _columns_problem(seq, columns, stored)


def _columns_problem(seq: int, columns: tuple[Any, ...], stored: tuple[Any, ...]) -> Problem | None:
    """The stored search columns that differ from the record's, or None when none does."""
    if len(columns) != len(SEARCH_COLUMNS):
        return Problem(seq, "malformed", f"event {seq} is not an audit event as phiwarden writes it")
    # Names only: the stored values are whatever someone wrote there.
    changed = [
        name for name, ours, theirs in zip(SEARCH_COLUMNS, columns, stored, strict=True) if ours != theirs
    ]
    if not changed:
        return None
    return Problem(
        seq,
        "derived",
        f"event {seq}: the search column(s) {', '.join(changed)} differ from its record: "
        "search and stats cannot be trusted for it",
    )


def _levels(leaves: list[bytes]) -> list[list[bytes]]:
    """The perfect subtrees of a run of leaves starting on the grid: level l holds the roots of its
    whole 2**l-leaf blocks (an odd one left over waits for the next chunk's join)."""
    levels = [leaves]
    level = leaves
    while len(level) > 1:
        pairs = iter(level)
        level = [sha256(b"\x01" + left + right).digest() for left, right in zip(pairs, pairs, strict=False)]
        levels.append(level)
    return levels


def _frontier_bytes(levels: list[list[bytes]], size: int) -> bytes:
    """The frontier of the first `size` leaves, from `_levels` of at least that many."""
    pieces: list[bytes] = []
    start = 0
    for bit in range(size.bit_length() - 1, -1, -1):
        if size >> bit & 1:
            pieces.append(levels[bit][start >> bit])
            start += 1 << bit
    return b"".join(pieces)


def _as_bytes(value: object) -> bytes:
    return bytes(value) if isinstance(value, bytes | bytearray | memoryview) else str(value).encode()


def _chain_fields(record: bytes) -> tuple[bytes, int] | None:
    """The previous hash and sequence a record embeds (from its canonical tail), or None when malformed."""
    head, _, seq_text = record.rpartition(_SEQ)
    _, _, prev_hex = head.rpartition(_PREV)
    try:
        seq = int(seq_text.removesuffix(b"}"))
        prev = bytes.fromhex(prev_hex.decode("ascii"))
    except ValueError:
        return None
    return (prev, seq) if len(prev) == HASH_SIZE else None
