"""`verify`: recompute the log and hold it to every signed checkpoint, stored or witnessed.

What is checked:
1. prune records: signed, contiguous from sequence 1, and their boundary frontier folds to the
   signed root at the boundary (the pruned range then counts as verified);
2. every remaining record (`verify_scan`, in parallel chunks): sequence numbers dense, the stored
   hash, the embedded sequence number and chain link, and the derived data — search columns and
   value-hash index rows — against what the record holds;
3. the Merkle root at every checkpoint size: stored checkpoints, witness checkpoints and checkpoints
   given by the auditor, each with a valid signature of the log's key (rewrites, truncation). A
   witness that cannot be read leaves verification incomplete; one that holds no checkpoint of a
   log that has been sealed, or holds checkpoints the store no longer has, is a failure;
4. the head row against the records (deletion of the newest rows).

Where the records locate a change exactly (a record that does not match its stored hash, one written
for another position, a missing one, a broken chain link), that is the first bad sequence. A signed
checkpoint that no longer matches, after a matching one at a, proves only that something in a+1..b
changed — unless it matches once the leaves the records claim were sealed (the hash a successor was
chained to, the position a moved record was written for) are put back: then every other event up to
it is proven intact and the claimed ones are exactly what changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from phiwarden.audit.canonical import GENESIS_HASH
from phiwarden.audit.checkpoint import (
    Checkpoint,
    SignedCheckpoint,
    SignedPrune,
    StatementError,
    parse_checkpoint,
)
from phiwarden.audit.errors import SinkError
from phiwarden.audit.keys import VerifyKey
from phiwarden.audit.ledger import VALUE_EPOCH_BITS
from phiwarden.audit.merkle import Frontier
from phiwarden.audit.store import AuditStore
from phiwarden.audit.verify_report import DERIVED_KINDS, Found, Problem, VerifyReport, order
from phiwarden.audit.verify_scan import index_problems, scan
from phiwarden.audit.witness import Witness

__all__ = ["Problem", "VerifyReport", "verify_log"]

# Problems listed in the report (the ones with the smallest sequence numbers); the rest are counted.
REPORT_PROBLEMS = 50
# Index rows read outside the log's epochs (all of them are reported).
STRAY_INDEX_ROWS = 1000

# (where a checkpoint comes from, the statement)
Expected = dict[int, list[tuple[str, Checkpoint]]]


def verify_log(
    store: AuditStore,
    key: VerifyKey,
    *,
    witnesses: Sequence[Witness] = (),
    checkpoints: Iterable[SignedCheckpoint] = (),
    workers: int | None = None,
    checkpoint_every: int | None = None,
) -> VerifyReport:
    """Verify the log. `checkpoint_every` (the writers' setting) tells a log that must have been
    sealed: a readable witness without any checkpoint of it is then a failure."""
    report = VerifyReport(log_id=store.log_id)
    found = Found(REPORT_PROBLEMS)
    head = store.head_row()
    report.size = head[0]
    last_seq = store.last_sequence()

    expected: Expected = {}

    def expect(signed: SignedCheckpoint, source: str) -> bool:
        statement = signed.statement
        if not signed.verify(key):
            found.add(
                Problem(
                    None, "signature", f"{source} checkpoint at size {statement.tree_size}: bad signature"
                )
            )
            return False
        if statement.log_id != report.log_id:
            found.add(
                Problem(
                    None,
                    "identity",
                    f"{source} checkpoint at size {statement.tree_size} is for log "
                    f"{statement.log_id}, the store is log {report.log_id}",
                )
            )
            return False
        expected.setdefault(statement.tree_size, []).append((source, statement))
        return True

    stored_rows = store.checkpoint_rows()
    for size, text, _ in stored_rows:
        try:
            expect(parse_checkpoint(text), "stored")
        except StatementError as exc:
            found.add(Problem(None, "signature", f"stored checkpoint row {size}: {exc}"))
    stored_sizes = {size for size, _, _ in stored_rows}
    held: list[tuple[str, set[int]]] = []
    given = {c.statement.tree_size for c in checkpoints if expect(c, "given")}
    report.witness_checkpoints += len(given)
    held.append(("the given checkpoints hold", given))
    prunes = store.prunes()
    sealed = _sealed_because(
        stored=len(stored_rows),
        prunes=len(prunes),
        events=max(report.size, last_seq or 0),
        checkpoint_every=checkpoint_every,
    )
    _read_witnesses(witnesses, key=key, report=report, found=found, expect=expect, sealed=sealed, held=held)
    if not stored_rows and sealed is not None and not any(sizes for _, sizes in held):
        report.warnings.append(
            f"the store holds no checkpoint, but {sealed.removeprefix('it ')}: its checkpoints may have "
            "been deleted, and only a witness could tell"
        )
    for source, held_sizes in held:
        deleted = sorted(held_sizes - stored_sizes)
        if deleted:
            found.add(
                Problem(
                    None,
                    "checkpoint-deleted",
                    f"{source} {len(deleted)} checkpoint(s) of this log that the store does not "
                    f"(size {_listed(deleted)}): stored checkpoints were deleted (a checkpoint is "
                    "published only once stored, and prune keeps them)",
                )
            )

    start, prev, frontier = _after_prunes(prunes, key, report, found, expected)
    if any(p.kind == "prune" for p in found.items):
        return _finish(report, found)
    report.first_seq = start
    end = max(last_seq or 0, start - 1)
    held_hashes = {size: items[0][1].last_hash for size, items in expected.items() if start <= size <= end}
    results = scan(
        store, start=start, end=end, prev=prev, frontier=frontier, checkpoints=held_hashes, workers=workers
    )

    # Join the chunks' trees up to the first gap: the stored leaves, and the leaves as the records
    # claim they were sealed (the same unless something was edited, inserted or moved).
    tree, repaired, tree_end, tree_prev, intact = frontier, frontier, start - 1, prev, True
    roots: dict[int, tuple[bytes, bytes]] = {}
    for result in results:
        report.events_checked += result.rows
        for problem in result.problems:
            found.add(problem)
        found.more += result.more
        if not intact:
            continue
        claimed_snapshots, claimed_frontier = result.repaired or (result.snapshots, result.frontier)
        for size, snapshot in sorted(result.snapshots.items()):
            roots[size] = (
                _join(tree, snapshot, result.local).root(),
                _join(repaired, claimed_snapshots[size], result.local).root(),
            )
        tree = _join(tree, result.frontier, result.local)
        repaired = _join(repaired, claimed_frontier, result.local)
        if result.leaves:
            tree_end, tree_prev = result.first + result.leaves - 1, result.last_hash
        intact = result.complete
    for problem in index_problems(
        set(),
        set(store.value_index_outside(start >> VALUE_EPOCH_BITS, end >> VALUE_EPOCH_BITS, STRAY_INDEX_ROWS))
        if end >= start
        else set(store.value_index_outside(1, 0, STRAY_INDEX_ROWS)),
        low=start,
        high=end,
    ):
        found.add(problem)

    newest = max(end, report.size)
    for name, cursor in sorted(store.cursors().items()):
        if cursor > newest:
            found.add(
                Problem(
                    None,
                    "cursor",
                    f"the forwarding cursor of sink {name!r} is at event {cursor}, past the newest "
                    f"event {newest}: it was edited, and forwarding from it would send the SIEM nothing",
                )
            )
    matched = _hold_to_checkpoints(
        report, found, expected, roots, start=start, tree=tree, tree_end=tree_end, intact=intact
    )
    # With evidence against the records already, a head that disagrees with them adds nothing.
    settled = any(p.seq is not None and p.kind not in DERIVED_KINDS for p in found.items)
    _check_head(
        found,
        head,
        end=end,
        tree=tree,
        tree_end=tree_end,
        tree_prev=tree_prev,
        intact=intact and not settled,
        matched=matched,
    )
    if matched >= start:
        report.latest_checkpoint = matched
    if not found.items:
        unsealed = tree_end - max(matched, start - 1)
        if unsealed > 0:
            report.warnings.append(
                f"{unsealed} newest event(s) are not covered by a checkpoint yet "
                "(run `phiwarden audit checkpoint`)"
            )
    return _finish(report, found)


def _finish(report: VerifyReport, found: Found) -> VerifyReport:
    found.trim()
    report.problems = sorted(found.items, key=order)
    report.omitted = found.more
    return report


def _listed(sizes: Sequence[int]) -> str:
    shown = ", ".join(str(s) for s in sizes[:5])
    return shown + (f", … ({len(sizes)} in all)" if len(sizes) > 5 else "")


def _sealed_because(*, stored: int, prunes: int, events: int, checkpoint_every: int | None) -> str | None:
    """Why the log must have a checkpoint at its witnesses by now, or None."""
    if stored:
        return f"the store holds {stored} checkpoint(s)"
    if prunes:
        return "it has been pruned under signed records"
    if checkpoint_every and events >= checkpoint_every:
        return f"it holds {events} events and a checkpoint is sealed every {checkpoint_every}"
    return None


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
    *,
    key: VerifyKey,
    report: VerifyReport,
    found: Found,
    expect: Callable[[SignedCheckpoint, str], bool],
    sealed: str | None,
    held: list[tuple[str, set[int]]],
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
            report.incomplete.append(str(exc))
            continue
        if read.unreadable:
            report.warnings.append(f"{witness.target}: {read.unreadable} entry(ies) could not be read")
        ours = [c for c in read.checkpoints if c.statement.key_id == key.id]
        mine = [c for c in ours if c.statement.log_id == report.log_id]
        if ours and not mine:
            found.add(
                Problem(
                    None,
                    "identity",
                    f"{witness.target} holds checkpoints signed by this key for other "
                    f"log ids only, none for {report.log_id}: the store may have been replaced",
                )
            )
            continue
        if not mine and sealed is not None:
            state = "does not exist" if read.missing else "is empty" if not read.checkpoints else "holds none"
            found.add(
                Problem(
                    None,
                    "witness",
                    f"the witness {witness.target} holds no checkpoint of this log ({state}), but the "
                    f"log has been sealed ({sealed}): the witness copy was deleted, emptied or "
                    "replaced — or never received one (`phiwarden audit checkpoint` publishes the "
                    "latest)",
                )
            )
        accepted = {c.statement.tree_size for c in mine if expect(c, f"witness {witness.target}")}
        report.witness_checkpoints += len(accepted)
        held.append((f"the witness {witness.target} holds", accepted))


def _after_prunes(
    prunes: Sequence[SignedPrune], key: VerifyKey, report: VerifyReport, found: Found, expected: Expected
) -> tuple[int, bytes, Frontier]:
    """Where record verification starts: after the last valid prune record, with its chain and tree state."""
    start, prev, frontier = 1, GENESIS_HASH, Frontier()
    for signed in prunes:
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
            found.add(
                Problem(
                    start, "prune", f"prune record {record.first_sequence}..{record.last_sequence}: {problem}"
                )
            )
            return start, prev, frontier
        start, prev = record.last_sequence + 1, record.boundary_hash
        report.pruned += record.count
    return start, prev, frontier


def _hold_to_checkpoints(
    report: VerifyReport,
    found: Found,
    expected: Expected,
    roots: dict[int, tuple[bytes, bytes]],
    *,
    start: int,
    tree: Frontier,
    tree_end: int,
    intact: bool,
) -> int:
    """Compare the log with each checkpoint from the oldest on; returns the newest size that matched.

    The first that does not match bounds the damage: something after the previous matching one
    changed. One that matches the leaves as the records claim they were sealed proves every leaf
    but the claimed ones, which are reported. A checkpoint beyond the end of the log is a truncation,
    exactly located only when the log up to its end is proven intact.
    """
    matched = start - 1
    for size in sorted(s for s in expected if s >= start):
        items = expected[size]
        root = roots.get(size)
        since = f" (the checkpoint at {matched} matches)" if matched >= start else ""
        if root is not None:
            source = next((source for source, c in items if c.root_hash not in root), None)
            if source is None:
                report.checkpoints_checked += len(items)
                matched = size
                continue
            found.add(
                Problem(
                    matched + 1,
                    "rewritten",
                    f"events {matched + 1}..{size} do not match the {source} checkpoint at size {size}"
                    f"{since}: something in that range was changed, inserted or deleted",
                    last=size,
                )
            )
            return matched
        if not intact or size <= tree_end:
            # A gap (reported with its sequence numbers) ends the tree: later sizes cannot be checked.
            return matched
        source, statement = items[0]
        newest = max(expected)
        extended = tree.copy()
        extended.append(statement.last_hash)
        if size == tree_end + 1 and all(c.root_hash == extended.root() for _, c in items):
            found.add(
                Problem(
                    size,
                    "truncated",
                    f"events {size}..{newest} were deleted: the {source} checkpoint at {size} matches "
                    f"the log plus the hash of its last event, and the log ends at {tree_end}",
                )
            )
        elif matched == tree_end:
            found.add(
                Problem(
                    tree_end + 1,
                    "truncated",
                    f"events {tree_end + 1}..{newest} were deleted: the log ends at {tree_end}"
                    f"{since}, the {source} checkpoint at {size} covers {size} events",
                )
            )
        else:
            found.add(
                Problem(
                    matched + 1,
                    "truncated",
                    f"the {source} checkpoint at {size} covers {size} events but the log ends at "
                    f"{tree_end}{since}: the newest events were deleted, or events in "
                    f"{matched + 1}..{tree_end} were changed",
                    last=size,
                )
            )
        return matched
    return matched


def _check_head(
    found: Found,
    head: tuple[int, bytes, bytes],
    *,
    end: int,
    tree: Frontier,
    tree_end: int,
    tree_prev: bytes,
    intact: bool,
    matched: int,
) -> None:
    """The head row against the records; `matched` is the newest checkpoint that the log matched."""
    size, last_hash, frontier_bytes = head
    if size > end:
        found.add(
            Problem(
                end + 1,
                "truncated",
                f"the log head records {size} events but the log ends at {end}: "
                f"events {end + 1}..{size} are missing",
            )
        )
    elif size < end:
        found.add(
            Problem(
                size + 1,
                "inserted",
                f"events {size + 1}..{end} are beyond the log head ({size}): "
                "they were not appended through the log",
            )
        )
    elif intact and tree_end == end:
        if last_hash != tree_prev:
            found.add(
                Problem(
                    end,
                    "head",
                    f"the log head's last hash is not the hash of event {end}: event {end} was "
                    "replaced, or the head was altered",
                )
            )
            return
        if frontier_bytes == tree.to_bytes():
            return
        try:
            stored = Frontier.from_bytes(size, frontier_bytes).pieces()
        except ValueError:
            found.add(Problem(None, "head", "the log head's Merkle frontier is damaged"))
            return
        for (first, count, digest), (_, _, ours) in zip(stored, tree.pieces(), strict=True):
            if digest == ours:
                continue
            if first + count <= matched:
                found.add(
                    Problem(
                        None,
                        "head",
                        f"the log head's Merkle frontier disagrees with events {first + 1}..{first + count}, "
                        f"which the checkpoint at {matched} proves intact: the head was altered",
                    )
                )
            else:
                found.add(
                    Problem(
                        max(first, matched) + 1,
                        "head",
                        f"the log head's Merkle frontier disagrees with events {first + 1}.."
                        f"{first + count}: some of them were changed, or the head was altered",
                        last=first + count,
                    )
                )
            return
