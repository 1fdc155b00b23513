"""Scanning what a change adds: each new blob is scanned whole (detection needs the context around
a value: the CSV header, the JSON record, the surrounding fields) and only findings on added lines
are kept, with the line numbers of the new file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

from phiwarden.policy.model import Policy
from phiwarden.repo.diff import Change
from phiwarden.repo.git import SUBMODULE_NOTE, SYMLINK_MODE, BlobReader, Git
from phiwarden.scan.files import Selection, Skipped
from phiwarden.scan.runner import FileResult, FileScanner, ScanReport

# Below this much content, starting worker processes costs more than it saves (the hook's case).
PARALLEL_MIN_BYTES = 2_000_000


@dataclass(frozen=True, slots=True)
class Item:
    path: str
    data: bytes
    # Lines to keep findings on; None keeps all (a new file, a binary file).
    added: frozenset[int] | None


def keep_added(result: FileResult, added: frozenset[int] | None) -> FileResult:
    """Drop findings that lie wholly on lines the change did not add."""
    if added is None:
        return result
    result.findings = [
        f
        for f in result.findings
        if f.binary_tag or any(line in added for line in range(f.line, f.end_line + 1))
    ]
    return result


def _scan(scanner: FileScanner, item: Item) -> FileResult:
    return keep_added(scanner.scan_bytes(item.data, item.path), item.added)


# Each worker process keeps one scanner, built once from the policy sent to its initializer.
_workers: dict[str, FileScanner] = {}


def _init_worker(policy: Policy) -> None:
    _workers["scanner"] = FileScanner(policy)


def _scan_batch(items: list[Item]) -> list[FileResult]:
    scanner = _workers["scanner"]
    return [_scan(scanner, item) for item in items]


def scan_items(items: Sequence[Item], policy: Policy, *, jobs: int) -> list[FileResult]:
    if not items:
        return []  # nothing to scan: do not pay for compiling the detectors
    total = sum(len(i.data) for i in items)
    if jobs <= 1 or len(items) < 2 or total < PARALLEL_MIN_BYTES:
        scanner = FileScanner(policy)
        return [_scan(scanner, item) for item in items]
    # Imported here: a serial scan (most hook runs) does not pay for the process-pool machinery.
    import concurrent.futures
    import multiprocessing

    batches: list[list[Item]] = [[] for _ in range(jobs * 4)]
    # Largest first, round-robin: batches of similar weight.
    for index, item in enumerate(sorted(items, key=lambda i: -len(i.data))):
        batches[index % len(batches)].append(item)
    context = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    results: list[FileResult] = []
    with concurrent.futures.ProcessPoolExecutor(
        jobs, mp_context=context, initializer=_init_worker, initargs=(policy,)
    ) as pool:
        for batch in pool.map(_scan_batch, [b for b in batches if b]):
            results.extend(batch)
    return results


def scan_changes(
    git: Git,
    changes: Sequence[Change],
    policy: Policy,
    *,
    selection: Selection | None = None,
    jobs: int = 1,
) -> ScanReport:
    """Scan the lines `changes` add; the report is rooted at the repository."""
    started = time.perf_counter()
    skipped: list[Skipped] = []
    wanted: list[Change] = []
    for change in changes:
        if not change.adds_content:
            continue
        if selection is not None and not selection.wanted(change.path):
            continue
        if change.is_submodule:
            skipped.append(Skipped(change.path, SUBMODULE_NOTE))
        elif change.new_mode == SYMLINK_MODE:
            skipped.append(Skipped(change.path, "symbolic link (its target is not scanned)"))
        else:
            wanted.append(change)
    items: list[Item] = []
    limit = policy.scan.max_file_bytes
    if wanted:
        with BlobReader(git) as reader:
            contents = reader.read_many([c.new_oid for c in wanted], limit=limit)
            for change, (_, data, size) in zip(wanted, contents, strict=True):
                if data is None:
                    reason = (
                        f"larger than the {limit} byte limit" if size else "blob missing from the repository"
                    )
                    skipped.append(Skipped(change.path, reason))
                    continue
                items.append(Item(change.path, data, None if change.binary else change.added))
    results = sorted(scan_items(items, policy, jobs=jobs), key=lambda r: r.path)
    return ScanReport(
        str(git.root), results, skipped, time.perf_counter() - started, policy.detection.min_confidence
    )
