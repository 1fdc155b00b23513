"""Retention: remove whole sealed segments past their time, leaving a signed record of the removal.

A segment is a range of sequence numbers closed by a checkpoint. `prune` picks the newest checkpoint
older than the retention period (and not beyond what every SIEM sink has acknowledged), verifies the
log, and replaces events 1..boundary with a prune record signed by the log key: range, count, chain
hash and Merkle root at the boundary, and the frontier from which later events still extend the tree.
With `online_days` shorter than `retention_days`, older segments are first written to `archive_dir`
as verifiable JSON lines (with the prune record), then removed from the store.
A legal hold stops all of it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from phiwarden.audit.checkpoint import PruneRecord, SignedCheckpoint, sign
from phiwarden.audit.errors import AuditError
from phiwarden.audit.export import render
from phiwarden.audit.keys import SigningKey
from phiwarden.audit.merkle import Frontier
from phiwarden.audit.proof import subtree_resolver
from phiwarden.audit.sinks import FileTransport
from phiwarden.audit.store import AuditStore
from phiwarden.audit.verify import verify_log
from phiwarden.policy.audit import AuditSettings

DAY_MS = 86_400_000


class RetentionError(AuditError):
    """Pruning refused: legal hold, a log that does not verify, or nothing sealed to prune."""


@dataclass(frozen=True, slots=True)
class PrunePlan:
    first: int
    last: int
    checkpoint: SignedCheckpoint
    # Where the segment goes before removal (None: removed, it is past retention).
    archive: Path | None
    reason: str

    @property
    def count(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True, slots=True)
class PruneResult:
    plan: PrunePlan | None
    removed: int = 0


def plan_prune(store: AuditStore, settings: AuditSettings, *, now_ms: int | None = None) -> PrunePlan | None:
    if settings.legal_hold:
        raise RetentionError("a legal hold is in force ([audit] legal_hold = true): nothing is pruned")
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    prunes = store.prunes()
    first = prunes[-1].statement.last_sequence + 1 if prunes else 1
    cutoff, archive, reason = (
        now - settings.retention_days * DAY_MS,
        None,
        f"retention {settings.retention_days} days",
    )
    if (
        settings.online_days is not None
        and settings.online_days < settings.retention_days
        and settings.archive_dir
    ):
        # Archived segments leave the store once they are no longer needed online; the archive's own
        # lifecycle (object lock, expiry) keeps them for the rest of retention_days.
        cutoff = now - settings.online_days * DAY_MS
        archive = settings.path(settings.archive_dir)
        reason = f"archived after {settings.online_days} days"
    # Events not yet acknowledged by a configured SIEM sink stay until they are.
    cursors = store.cursors()
    forwarded = min((cursors.get(s.name, 0) for s in settings.sinks), default=None)
    eligible = [
        c
        for c in store.checkpoints()
        if first <= c.statement.tree_size
        and c.statement.time_ms < cutoff
        and (forwarded is None or c.statement.tree_size <= forwarded)
    ]
    if eligible:
        return PrunePlan(first, eligible[-1].statement.tree_size, eligible[-1], archive, reason)
    return None


def prune(
    store: AuditStore,
    settings: AuditSettings,
    key: SigningKey,
    *,
    now_ms: int | None = None,
    dry_run: bool = False,
) -> PruneResult:
    plan = plan_prune(store, settings, now_ms=now_ms)
    if plan is None or dry_run:
        return PruneResult(plan)
    report = verify_log(store, key.public)
    if not report.ok:
        raise RetentionError(
            f"the log does not verify (first bad event {report.first_bad}); nothing is pruned until it does"
        )
    statement = plan.checkpoint.statement
    resolver = subtree_resolver(store)
    frontier = Frontier(
        statement.tree_size,
        [resolver(start, size) for start, size in _decomposition(statement.tree_size)],
    )
    if frontier.root() != statement.root_hash:
        raise RetentionError(f"the tree at {statement.tree_size} does not match its checkpoint; run verify")
    record = PruneRecord(
        log_id=statement.log_id,
        first_sequence=plan.first,
        last_sequence=plan.last,
        count=plan.count,
        boundary_root=statement.root_hash,
        boundary_hash=statement.last_hash,
        frontier=tuple(h for _, _, h in frontier.pieces()),
        time_ms=now_ms if now_ms is not None else int(time.time() * 1000),
        key_id=key.public.id,
        reason=plan.reason,
    )
    signed = sign(record, key)
    if plan.archive is not None:
        _archive(store, plan, plan.archive, signed.to_line())
    removed = store.apply_prune(signed)
    return PruneResult(plan, removed)


def _decomposition(size: int) -> list[tuple[int, int]]:
    """(start, size) of the perfect subtrees that make up the first `size` leaves."""
    out: list[tuple[int, int]] = []
    start = 0
    for bit in range(size.bit_length() - 1, -1, -1):
        if size >> bit & 1:
            out.append((start, 1 << bit))
            start += 1 << bit
    return out


def _archive(store: AuditStore, plan: PrunePlan, archive: Path, prune_line: str) -> None:
    target = archive / f"phiwarden-audit-{store.log_id}-{plan.first:012d}-{plan.last:012d}.jsonl"
    if target.exists():
        raise RetentionError(f"{target} already exists; not overwriting an archive")
    transport = FileTransport(str(target))
    batch: list[bytes] = []
    for stored in store.records(plan.first, plan.last):
        batch.append(render(stored, "jsonl"))
        if len(batch) >= 5000:
            transport.send(batch)
            batch = []
    batch.append(prune_line.encode("utf-8"))
    transport.send(batch)
