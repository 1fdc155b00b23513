"""`verify`: recompute the log and hold it to every signed checkpoint, stored or witnessed.

What is checked, in order:
1. prune records: signed, contiguous from sequence 1, and their boundary frontier folds to the
   signed root at the boundary (the pruned range then counts as verified);
2. every remaining record: sequence numbers dense (deletion, insertion), SHA-256(0x00 || record)
   equal to the stored hash (modification), the record's embedded sequence and previous hash equal to
   its position and to its predecessor's hash (reordering, a modified predecessor);
3. the Merkle root and last hash at every checkpoint size: stored checkpoints, witness checkpoints and
   checkpoints given by the auditor, each with a valid signature of the log's key (rewrites,
   truncation below a checkpoint);
4. the head row against the records (deletion of the newest rows).

Large logs are verified in chunks of 2**16 records aligned on the Merkle tree, in parallel processes:
a chunk's subtree root and chain ends are all the main process needs to join them.
"""

from __future__ import annotations

import binascii
import os
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from hashlib import sha256
from multiprocessing import get_context
from typing import Any

from phiwarden.audit.canonical import GENESIS_HASH, LEAF_PREFIX
from phiwarden.audit.checkpoint import Checkpoint, SignedCheckpoint, StatementError, parse_checkpoint
from phiwarden.audit.errors import SinkError
from phiwarden.audit.keys import VerifyKey
from phiwarden.audit.merkle import HASH_SIZE, Frontier
from phiwarden.audit.store import AuditStore
from phiwarden.audit.witness import Witness

CHUNK_LEVEL = 16
CHUNK = 1 << CHUNK_LEVEL
_PREV = b',"prev_hash":"'
_SEQ = b'","sequence":'
# How a record chained to a previous hash (hex) at a sequence number ends (see `record_suffix`).
_TAIL = _PREV + b"%s" + _SEQ + b"%d}"


@dataclass(frozen=True, slots=True)
class Problem:
    seq: int | None
    kind: str
    message: str


@dataclass(slots=True)
class VerifyReport:
    log_id: str
    size: int = 0
    first_seq: int = 1
    events_checked: int = 0
    pruned: int = 0
    checkpoints_checked: int = 0
    witness_checkpoints: int = 0
    latest_checkpoint: int | None = None
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad(self) -> int | None:
        seqs = [p.seq for p in self.problems if p.seq is not None]
        return min(seqs) if seqs else None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "log_id": self.log_id,
            "size": self.size,
            "first_sequence": self.first_seq,
            "events_checked": self.events_checked,
            "pruned": self.pruned,
            "checkpoints_checked": self.checkpoints_checked,
            "witness_checkpoints": self.witness_checkpoints,
            "latest_checkpoint": self.latest_checkpoint,
            "first_bad_sequence": self.first_bad,
            "problems": [{"sequence": p.seq, "kind": p.kind, "message": p.message} for p in self.problems],
            "warnings": self.warnings,
        }


@dataclass(frozen=True, slots=True)
class _Task:
    url: str
    first: int
    last: int
    # The global frontier before `first`, for a chunk not aligned on CHUNK; None for aligned chunks,
    # whose frontier is local (they are one perfect subtree once complete).
    frontier: tuple[int, bytes] | None
    checkpoint_sizes: tuple[int, ...]


@dataclass(slots=True)
class _Result:
    first: int
    checked: int = 0
    first_prev: bytes | None = None
    last_hash: bytes = GENESIS_HASH
    frontier: tuple[int, bytes] = (0, b"")
    snapshots: dict[int, tuple[int, bytes]] = field(default_factory=dict)
    problem: Problem | None = None
    # Frontier and snapshots count from the chunk's first record (True) or from leaf 0 (False).
    local: bool = True


def verify_log(
    store: AuditStore,
    key: VerifyKey,
    *,
    witnesses: Sequence[Witness] = (),
    checkpoints: Iterable[SignedCheckpoint] = (),
    workers: int | None = None,
) -> VerifyReport:
    report = VerifyReport(log_id=store.log_id)
    head = store.head_row()
    report.size = head[0]

    # Signed expectations: tree size -> (where it comes from, checkpoint).
    expected: dict[int, list[tuple[str, Checkpoint]]] = {}

    def expect(signed: SignedCheckpoint, source: str) -> None:
        statement = signed.statement
        if not signed.verify(key):
            report.problems.append(
                Problem(
                    None, "signature", f"{source} checkpoint at size {statement.tree_size}: bad signature"
                )
            )
            return
        if statement.log_id != report.log_id:
            report.problems.append(
                Problem(
                    None,
                    "identity",
                    f"{source} checkpoint at size {statement.tree_size} is for log "
                    f"{statement.log_id}, the store is log {report.log_id}",
                )
            )
            return
        expected.setdefault(statement.tree_size, []).append((source, statement))

    for size, text, _ in store.checkpoint_rows():
        try:
            expect(parse_checkpoint(text), "stored")
        except StatementError as exc:
            report.problems.append(Problem(None, "signature", f"stored checkpoint row {size}: {exc}"))
    stored_sizes = sorted(expected)
    report.latest_checkpoint = stored_sizes[-1] if stored_sizes else None
    for signed in checkpoints:
        expect(signed, "given")
        report.witness_checkpoints += 1
    _read_witnesses(witnesses, key, report, expect)

    start, prev, frontier = _after_prunes(store, key, report, expected)
    if any(p.kind == "prune" for p in report.problems):
        return report
    report.first_seq = start
    last_seq = store.last_sequence()
    end = max(last_seq or 0, start - 1)
    sizes = sorted(s for s in expected if s >= start)
    results = _scan(store, start=start, end=end, frontier=frontier, sizes=sizes, workers=workers)

    verified_to = start - 1
    last_good_checkpoint = start - 1
    for result in results:
        if result.first_prev is not None and result.first_prev != prev:
            before = result.first - 1
            seq = before if before >= start else result.first
            report.problems.append(
                Problem(
                    seq,
                    "modified",
                    f"event {seq} differs from the event that event {result.first} "
                    "was chained to (modified, or replaced with its hash recomputed)",
                )
            )
            break
        base = frontier
        mismatch = None
        for size, snapshot in sorted(result.snapshots.items()):
            root = _join(base, snapshot, result.local).root()
            for source, statement in expected[size]:
                if statement.root_hash != root:
                    mismatch = (size, source)
                    break
            if mismatch:
                break
            report.checkpoints_checked += len(expected[size])
            last_good_checkpoint = size
        frontier = _join(base, result.frontier, result.local)
        if mismatch:
            size, source = mismatch
            report.problems.append(
                Problem(
                    last_good_checkpoint + 1,
                    "rewritten",
                    f"the events {last_good_checkpoint + 1}..{size} do not match the {source} checkpoint at "
                    f"size {size}: the log was rewritten in that range",
                )
            )
            break
        verified_to += result.checked
        prev = result.last_hash if result.checked else prev
        report.events_checked += result.checked
        if result.problem is not None:
            report.problems.append(result.problem)
            break

    if not report.problems:
        _check_end(
            report, head=head, verified_to=verified_to, prev=prev, frontier=frontier, expected=expected
        )
    if report.ok:
        unsealed = verified_to - (report.latest_checkpoint or 0)
        if unsealed > 0:
            report.warnings.append(
                f"{unsealed} newest event(s) are not covered by a checkpoint yet "
                "(run `phiwarden audit checkpoint`)"
            )
    return report


def _join(base: Frontier, state: tuple[int, bytes], local: bool) -> Frontier:
    """The global frontier after a chunk: a local one extends `base` subtree by subtree."""
    if not local:
        return Frontier.from_bytes(*state)
    joined = base.copy()
    for _, size, digest in Frontier.from_bytes(*state).pieces():
        joined.append(digest, level=size.bit_length() - 1)
    return joined


def _read_witnesses(
    witnesses: Sequence[Witness],
    key: VerifyKey,
    report: VerifyReport,
    expect: Any,
) -> None:
    readable = [w for w in witnesses if w.readable]
    if not readable:
        report.warnings.append(
            "no readable witness: truncation after the newest stored checkpoint, or a rewrite that also "
            "dropped the stored checkpoints, cannot be detected"
        )
    for witness in readable:
        try:
            read = witness.read()
        except SinkError as exc:
            report.problems.append(Problem(None, "witness", f"cannot read the witness: {exc}"))
            continue
        if read.unreadable:
            report.warnings.append(f"{witness.target}: {read.unreadable} entry(ies) could not be read")
        ours = [c for c in read.checkpoints if c.statement.key_id == key.id]
        mine = [c for c in ours if c.statement.log_id == report.log_id]
        if ours and not mine:
            report.problems.append(
                Problem(
                    None,
                    "identity",
                    f"{witness.target} holds checkpoints signed by this key for other "
                    f"log ids only, none for {report.log_id}: the store may have been replaced",
                )
            )
        for signed in mine:
            expect(signed, f"witness {witness.target}")
            report.witness_checkpoints += 1


def _after_prunes(
    store: AuditStore, key: VerifyKey, report: VerifyReport, expected: dict[int, list[tuple[str, Checkpoint]]]
) -> tuple[int, bytes, Frontier]:
    """Where record verification starts: after the last valid prune record, with its chain and tree state."""
    start, prev, frontier = 1, GENESIS_HASH, Frontier()
    for signed in store.prunes():
        record = signed.statement
        problem = None
        if not signed.verify(key):
            problem = "bad signature"
        elif record.log_id != report.log_id:
            problem = f"for another log ({record.log_id})"
        elif (
            record.first_sequence != start or record.count != record.last_sequence - record.first_sequence + 1
        ):
            problem = f"covers {record.first_sequence}..{record.last_sequence}, expected to start at {start}"
        else:
            try:
                candidate = Frontier(record.last_sequence, record.frontier)
            except ValueError as exc:
                problem = str(exc)
            else:
                if candidate.root() != record.boundary_root:
                    problem = "its frontier does not fold to its boundary root"
                elif any(
                    c.root_hash != record.boundary_root for _, c in expected.get(record.last_sequence, [])
                ):
                    problem = "its boundary root differs from the checkpoint at the boundary"
                else:
                    frontier = candidate
        if problem:
            report.problems.append(
                Problem(
                    start, "prune", f"prune record {record.first_sequence}..{record.last_sequence}: {problem}"
                )
            )
            return start, prev, frontier
        start, prev = record.last_sequence + 1, record.boundary_hash
        report.pruned += record.count
    return start, prev, frontier


def _check_end(
    report: VerifyReport,
    *,
    head: tuple[int, bytes, bytes],
    verified_to: int,
    prev: bytes,
    frontier: Frontier,
    expected: dict[int, list[tuple[str, Checkpoint]]],
) -> None:
    beyond = sorted(
        (size, source) for size, items in expected.items() if size > verified_to for source, _ in items
    )
    if beyond:
        size, source = beyond[-1]
        report.problems.append(
            Problem(
                verified_to + 1,
                "truncated",
                f"the {source} checkpoint covers {size} events but the log "
                f"ends at {verified_to}: events {verified_to + 1}..{size} were deleted",
            )
        )
        return
    size, last_hash, frontier_bytes = head
    if size > verified_to:
        report.problems.append(
            Problem(
                verified_to + 1,
                "truncated",
                f"the log head records {size} events but only {verified_to} are present: "
                "the newest were deleted",
            )
        )
    elif size < verified_to:
        report.problems.append(
            Problem(
                size + 1,
                "inserted",
                f"events {size + 1}..{verified_to} are beyond the log head ({size}): "
                "they were not appended through the log",
            )
        )
    elif last_hash != prev or frontier_bytes != frontier.to_bytes():
        report.problems.append(Problem(verified_to, "head", "the log head disagrees with the records"))


def _scan(
    store: AuditStore, *, start: int, end: int, frontier: Frontier, sizes: list[int], workers: int | None
) -> list[_Result]:
    if end < start:
        return []
    tasks: list[_Task] = []
    first = start
    while first <= end:
        # Chunks after the first start on a multiple of CHUNK, so each is one subtree of the Merkle tree.
        last = min(end, first - 1 - (first - 1) % CHUNK + CHUNK)
        inside = tuple(s for s in sizes if first <= s <= last)
        # The first chunk keeps the global frontier only when it does not start on the grid.
        state = (frontier.size, frontier.to_bytes()) if first == start and (first - 1) % CHUNK else None
        tasks.append(_Task(store.url, first, last, state, inside))
        first = last + 1
    count = workers if workers is not None else min(len(tasks), os.cpu_count() or 1)
    if count <= 1 or len(tasks) < 2:
        return [_scan_chunk(store, task) for task in tasks]
    # fork starts workers in milliseconds and needs no importable __main__; they open their own connection.
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    with ProcessPoolExecutor(max_workers=count, mp_context=get_context(method)) as pool:
        return list(pool.map(_scan_chunk_worker, tasks))


# A worker verifies several chunks: it opens the store once.
_WORKER_STORES: dict[str, AuditStore] = {}


def _scan_chunk_worker(task: _Task) -> _Result:
    from phiwarden.audit.log import open_store

    store = _WORKER_STORES.get(task.url)
    if store is None:
        store = _WORKER_STORES[task.url] = open_store(task.url, create=False)
    return _scan_chunk(store, task)


def _scan_chunk(store: AuditStore, task: _Task) -> _Result:
    result = _Result(task.first, local=task.frontier is None)
    leaf_prefix = LEAF_PREFIX
    hexlify = binascii.hexlify
    tail = _TAIL
    digests: list[bytes] = []
    keep = digests.append
    expected = task.first
    prev = b""
    # The hot loop: hashing and comparing only; the tree is built from the leaf hashes afterwards.
    for seq, stored_record, stored in store.rows(task.first, task.last):
        record = stored_record
        if type(record) is not bytes:
            # Text or numbers written over a record: hash what is there, it will not match. A stored
            # hash that is not bytes never equals a digest, so it is reported below.
            record = _as_bytes(record)
        if seq != expected:
            result.problem = Problem(expected, "missing", f"events {expected}..{seq - 1} are missing")
            break
        hasher = leaf_prefix.copy()
        hasher.update(record)
        digest = hasher.digest()
        if digest != stored:
            result.problem = Problem(seq, "modified", f"event {seq} does not match its hash")
            break
        if not prev or not record.endswith(tail % (prev, seq)):
            embedded_prev, embedded_seq = _chain_fields(record)
            if embedded_prev is None:
                result.problem = Problem(seq, "modified", f"event {seq} is not a well-formed record")
                break
            if embedded_seq != seq:
                result.problem = Problem(
                    seq, "reordered", f"the event at position {seq} was written as event {embedded_seq}"
                )
                break
            if prev:
                result.problem = Problem(
                    seq - 1,
                    "modified",
                    f"event {seq - 1} differs from the event that event {seq} was chained to "
                    "(modified, or replaced with its hash recomputed)",
                )
                break
            result.first_prev = embedded_prev
        keep(digest)
        prev = hexlify(digest)
        expected += 1
    else:
        if expected <= task.last:
            result.problem = Problem(expected, "missing", f"events {expected}..{task.last} are missing")
    result.checked = len(digests)
    result.last_hash = digests[-1] if digests else GENESIS_HASH
    sizes = sorted(s for s in task.checkpoint_sizes if s < task.first + len(digests))
    if task.frontier is None:
        levels = _levels(digests)
        for size in sizes:
            local = size - task.first + 1
            result.snapshots[size] = (local, _frontier_bytes(levels, local))
        result.frontier = (len(digests), _frontier_bytes(levels, len(digests)))
    else:
        # A chunk that does not start on the tree's grid (after a prune): extend the global frontier.
        frontier = Frontier.from_bytes(*task.frontier)
        push = frontier.push
        done = task.first
        for size in sizes:
            for digest in digests[done - task.first : size - task.first + 1]:
                push(digest)
            done = size + 1
            result.snapshots[size] = (frontier.size, frontier.to_bytes())
        for digest in digests[done - task.first :]:
            push(digest)
        result.frontier = (frontier.size, frontier.to_bytes())
    return result


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


def _chain_fields(record: bytes) -> tuple[bytes | None, int | None]:
    """The previous hash and sequence a record embeds (from its canonical tail), or None when malformed."""
    head, _, seq_text = record.rpartition(_SEQ)
    _, _, prev_hex = head.rpartition(_PREV)
    try:
        seq = int(seq_text.removesuffix(b"}"))
        prev = bytes.fromhex(prev_hex.decode("ascii"))
    except ValueError:
        return None, None
    return (prev if len(prev) == HASH_SIZE else None), seq
