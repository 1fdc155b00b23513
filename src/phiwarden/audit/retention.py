"""Retention: remove whole sealed segments past their time, leaving a signed record of the removal.

A segment is a range of sequence numbers closed by a checkpoint. `prune` picks the newest checkpoint
older than the retention period (and not beyond what every SIEM sink has acknowledged), verifies the
log, and replaces events 1..boundary with a prune record signed by the log key: range, count, chain
hash and Merkle root at the boundary, and the frontier from which later events still extend the tree.
With `online_days` shorter than `retention_days`, older segments are first written to `archive_dir`
(see `archive.py`), then removed from the store; archives whose newest event is past
`retention_days` are deleted, each leaving a prune record of its range signed again.
A legal hold stops all of it (a dry run still says what would go).

A prune that died between writing an archive and changing the store is finished by the next one,
first and on its own when more has become due since: the archive already there is used when it
holds exactly the events of its range, under a prune record of that range and boundary signed by
this key; then the rest is pruned. Anything else refuses and names the file.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path

from phiwarden.audit.archive import (
    ArchiveError,
    ArchiveFile,
    ArchiveHeader,
    archive_files,
    archive_name,
    archive_range,
    archived_reason,
    expired_name,
    file_sha256,
    newest_logged_ms,
    read_events,
    remove_stale_temporaries,
    write_atomically,
)
from phiwarden.audit.checkpoint import PruneRecord, SignedCheckpoint, SignedPrune, sign
from phiwarden.audit.errors import AuditError, AuditStoreError
from phiwarden.audit.export import render
from phiwarden.audit.forward import cursor_past_the_log, newest_sequence
from phiwarden.audit.keys import SigningKey
from phiwarden.audit.merkle import Frontier
from phiwarden.audit.proof import subtree_resolver
from phiwarden.audit.store import AuditStore, StoredRecord
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
class Expiry:
    """An archive file past `retention_days`."""

    archive: Path
    newest_ms: int


@dataclass(frozen=True, slots=True)
class PruneResult:
    plan: PrunePlan | None
    removed: int = 0
    expired: tuple[Expiry, ...] = ()
    # A dry run under a legal hold: this is what would go without it.
    held: bool = False
    # The range of an interrupted prune, finished (from its archive) before `plan`.
    finished: PrunePlan | None = None


HOLD = "a legal hold is in force ([audit] legal_hold = true): nothing is pruned"


def plan_prune(store: AuditStore, settings: AuditSettings, *, now_ms: int | None = None) -> PrunePlan | None:
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
        # Archived segments leave the store once they are no longer needed online; the archive keeps
        # them for the rest of retention_days (then `plan_expiry` picks them).
        cutoff = now - settings.online_days * DAY_MS
        archive = settings.path(settings.archive_dir)
        reason = archived_reason(settings.online_days)
    # Events not yet acknowledged by a configured SIEM sink stay until they are.
    cursors = store.cursors()
    newest = newest_sequence(store)
    for sink in settings.sinks:
        if cursors.get(sink.name, 0) > newest:
            # The cursor says the SIEM has events it cannot have: it is no evidence of delivery.
            raise AuditStoreError(cursor_past_the_log(sink.name, cursors[sink.name], newest))
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


def plan_expiry(store: AuditStore, settings: AuditSettings, *, now_ms: int | None = None) -> list[Expiry]:
    """This log's archive files whose newest event is older than `retention_days`."""
    if not settings.archive_dir:
        return []
    directory = settings.path(settings.archive_dir)
    if not directory.is_dir():
        return []
    cutoff = (now_ms if now_ms is not None else int(time.time() * 1000)) - settings.retention_days * DAY_MS
    prunes = store.prunes()
    pruned_to = prunes[-1].statement.last_sequence if prunes else 0
    expired = []
    for path in archive_files(directory, store.log_id):
        # Only ranges gone from the store: an archive an interrupted prune left is the next prune's.
        if archive_range(path)[1] > pruned_to:
            continue
        newest = newest_logged_ms(path)
        if newest < cutoff:
            expired.append(Expiry(path, newest))
    return expired


def prune(
    store: AuditStore,
    settings: AuditSettings,
    key: SigningKey,
    *,
    now_ms: int | None = None,
    dry_run: bool = False,
) -> PruneResult:
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    finished, plan = _interrupted(store, plan_prune(store, settings, now_ms=now))
    expired = tuple(plan_expiry(store, settings, now_ms=now))
    if settings.legal_hold:
        if dry_run:
            return PruneResult(plan, expired=expired, held=True, finished=finished)
        raise RetentionError(HOLD)
    if dry_run:
        return PruneResult(plan, expired=expired, finished=finished)
    steps = [step for step in (finished, plan) if step is not None]
    if steps:
        report = verify_log(store, key.public)
        if not report.ok:
            raise RetentionError(
                f"the log does not verify (first bad event {report.first_bad}); "
                "nothing is pruned until it does"
            )
    removed = sum(_prune_store(store, key, step, now) for step in steps)
    for expiry in expired:
        _expire(expiry, settings, key, now)
    return PruneResult(plan, removed, expired, finished=finished)


def _interrupted(store: AuditStore, plan: PrunePlan | None) -> tuple[PrunePlan | None, PrunePlan | None]:
    """(the range of an archive an interrupted prune left, to finish first; the rest of `plan`).

    That archive starts where `plan` does; one that ends where `plan` ends is `plan`'s own (see
    `_finished_archive`). Its range must end at a stored checkpoint within `plan`."""
    if plan is None or plan.archive is None or not plan.archive.is_dir():
        return None, plan
    left = [
        path for path in archive_files(plan.archive, store.log_id) if archive_range(path)[0] == plan.first
    ]
    if not left:
        return None, plan
    if len(left) > 1:
        raise RetentionError(
            f"more than one archive holds events from {plan.first} on ({', '.join(str(p) for p in left)}); "
            "an interrupted prune left one of them: keep the one `verify-archive` accepts, move the "
            "others aside, and prune again"
        )
    [path] = left
    last = archive_range(path)[1]
    if last == plan.last:
        return None, plan
    left_by = f"{path} holds events {plan.first}..{last}, left by an interrupted prune"
    if last > plan.last:
        raise RetentionError(
            f"{left_by}, but only {plan.first}..{plan.last} are due now: nothing is pruned past what is "
            "due; prune again once it is, or move the file aside"
        )
    checkpoint = next((c for c in store.checkpoints() if c.statement.tree_size == last), None)
    if checkpoint is None:
        raise RetentionError(
            f"{left_by}, but the store has no checkpoint at {last}: check it, move it aside, and prune again"
        )
    return (
        PrunePlan(plan.first, last, checkpoint, plan.archive, plan.reason),
        PrunePlan(last + 1, plan.last, plan.checkpoint, plan.archive, plan.reason),
    )


def _prune_store(store: AuditStore, key: SigningKey, plan: PrunePlan, now_ms: int) -> int:
    target = (
        None if plan.archive is None else plan.archive / archive_name(store.log_id, plan.first, plan.last)
    )
    if target is not None and target.exists():
        signed = _finished_archive(store, plan, target, key)
    else:
        signed = sign(_record(store, plan, key, now_ms), key)
        if target is not None:
            _archive(store, plan, target, signed, key)
    return store.apply_prune(signed)


def _record(store: AuditStore, plan: PrunePlan, key: SigningKey, now_ms: int) -> PruneRecord:
    statement = plan.checkpoint.statement
    resolver = subtree_resolver(store)
    frontier = Frontier(
        statement.tree_size,
        [resolver(start, size) for start, size in _decomposition(statement.tree_size)],
    )
    if frontier.root() != statement.root_hash:
        raise RetentionError(f"the tree at {statement.tree_size} does not match its checkpoint; run verify")
    return PruneRecord(
        log_id=statement.log_id,
        first_sequence=plan.first,
        last_sequence=plan.last,
        count=plan.count,
        boundary_root=statement.root_hash,
        boundary_hash=statement.last_hash,
        frontier=tuple(h for _, _, h in frontier.pieces()),
        time_ms=now_ms,
        key_id=key.public.id,
        reason=plan.reason,
    )


def _decomposition(size: int) -> list[tuple[int, int]]:
    """(start, size) of the perfect subtrees that make up the first `size` leaves."""
    out: list[tuple[int, int]] = []
    start = 0
    for bit in range(size.bit_length() - 1, -1, -1):
        if size >> bit & 1:
            out.append((start, 1 << bit))
            start += 1 << bit
    return out


def _archive(store: AuditStore, plan: PrunePlan, target: Path, signed: SignedPrune, key: SigningKey) -> None:
    header = ArchiveHeader(
        log_id=store.log_id,
        first=plan.first,
        last=plan.last,
        hmac_key_id=store.meta("hmac_key_id"),
        signing_key_id=key.public.id,
    )
    remove_stale_temporaries(target)
    lines = (
        header.to_line(),
        *(render(stored, "jsonl") for stored in store.records(plan.first, plan.last)),
        signed.to_line().encode("utf-8"),
    )
    write_atomically(target, iter(lines))


def _finished_archive(store: AuditStore, plan: PrunePlan, target: Path, key: SigningKey) -> SignedPrune:
    """The prune record of an archive an interrupted prune wrote, once it proves to hold this range."""
    content = ArchiveFile(target)
    problem = None
    with closing(_records(store, plan.first, plan.last)) as stored:
        try:
            for archived in read_events(target, content):
                mine = next(stored, None)
                if mine is None or (archived.seq, archived.record, archived.hash) != (
                    mine.seq,
                    mine.record,
                    mine.hash,
                ):
                    problem = f"event {archived.seq} differs from the store's"
                    break
            else:
                if next(stored, None) is not None:
                    problem = "it ends before the range does"
        except ArchiveError as exc:
            problem = str(exc)
    signed = content.prune
    statement = plan.checkpoint.statement
    if problem is None and (
        signed is None
        or not signed.verify(key.public)
        or (signed.statement.first_sequence, signed.statement.last_sequence) != (plan.first, plan.last)
        or signed.statement.boundary_root != statement.root_hash
        or signed.statement.boundary_hash != statement.last_hash
    ):
        problem = "its prune record is not this range's, signed by this key"
    if problem is not None or signed is None:
        raise RetentionError(
            f"{target} already exists but does not hold events {plan.first}..{plan.last} as the store "
            f"has them ({problem}); not overwriting an archive: check it, move it aside, and prune again"
        )
    return signed


def _records(store: AuditStore, first: int, last: int) -> Generator[StoredRecord, None, None]:
    # A generator of our own can be closed when left early, which lets the store's cursor go.
    yield from store.records(first, last)


def _expire(expiry: Expiry, settings: AuditSettings, key: SigningKey, now_ms: int) -> None:
    """Delete an archive past retention, leaving its prune record signed again beside it."""
    content = ArchiveFile(expiry.archive)
    try:
        for _ in read_events(expiry.archive, content):
            pass
    except ArchiveError as exc:
        raise RetentionError(f"not deleting {expiry.archive}: {exc}") from None
    if content.prune is None or not content.prune.verify(key.public):
        raise RetentionError(
            f"not deleting {expiry.archive}: its prune record does not verify with the log's key"
        )
    record = replace(
        content.prune.statement,
        time_ms=now_ms,
        key_id=key.public.id,
        reason=(
            f"archive {expiry.archive.name} (SHA-256 {file_sha256(expiry.archive)}) deleted: "
            f"past retention_days = {settings.retention_days}"
        ),
    )
    write_atomically(expired_name(expiry.archive), iter([sign(record, key).to_line().encode("utf-8")]))
    expiry.archive.unlink()
