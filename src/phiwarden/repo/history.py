"""Scanning every commit reachable in a repository, each blob once, reporting where values came in.

    git log --all --raw (tree diffs only: cheap)  ->  the first commit that introduced each blob
    workers: git cat-file --batch  ->  new lines of the blob against its parent blob  ->  detection
    parent: findings in commit order, each value reported once per file (following renames)

A blob that modifies an earlier one is scanned only around the lines that are new in it (with the
file's first lines and a window of neighbours for context): the rest was scanned, and reported, in
the blob it came from. This is what keeps a history scan near the speed of `git log -p`.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import hmac
import itertools
import multiprocessing
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from phiwarden.detect.finding import Finding
from phiwarden.policy.model import Policy
from phiwarden.repo.diff import read_raw_record
from phiwarden.repo.git import SUBMODULE_MODE, SYMLINK_MODE, BlobReader, Git, GitError
from phiwarden.repo.scanning import SUBMODULE_NOTE
from phiwarden.scan.files import Selection, Skipped
from phiwarden.scan.reader import decode, is_dicom
from phiwarden.scan.runner import FileResult, FileScanner, ScanReport

# Context kept around new lines when a modified blob is scanned: lines on each side, and the
# file's first lines (CSV headers, the opening of a record).
CONTEXT_LINES = 6
HEAD_LINES = 3
_ZERO = "0" * 40


@dataclass(frozen=True, slots=True)
class Introduction:
    """Where a blob first appeared: the commit, its author and date, and the path."""

    oid: str
    path: str
    origin: str  # the path this file had when it was first added (renames followed)
    commit: str
    author: str
    email: str
    date: str
    parent_oid: str | None  # the blob it modified, if any

    def to_dict(self) -> dict[str, str]:
        return {"commit": self.commit, "author": self.author, "author_email": self.email, "date": self.date}


@dataclass(slots=True)
class HistoryResult:
    report: ScanReport
    # One per file of `report.files`: where its findings were introduced.
    introductions: list[Introduction]
    commits: int = 0
    blobs: int = 0
    bytes: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def _log(git: Git, revisions: Sequence[str]) -> Iterator[tuple[str, str, str, str, list[bytes]]]:
    """Commits oldest first (parents before children) with their raw tree changes."""
    output = git.run(
        "log", *revisions, "--reverse", "--topo-order", "--raw", "--no-abbrev", "-z", "-M",
        "--diff-merges=first-parent",
        "--format=%x01%H%x00%an%x00%ae%x00%aI", "--",
    )  # fmt: skip
    for chunk in output.split(b"\x01")[1:]:
        tokens = chunk.split(b"\x00")
        commit, author, email, date = (t.decode("utf-8", "replace") for t in tokens[:4])
        raw = tokens[4:]
        if raw and raw[0].startswith(b"\n"):
            raw[0] = raw[0][1:]
        yield commit, author, email, date, raw


def introductions(
    git: Git, revisions: Sequence[str], selection: Selection | None, skipped: list[Skipped]
) -> tuple[list[Introduction], int]:
    """The first introduction of every blob reachable from `revisions`, in commit order."""
    seen: set[str] = set()
    origin: dict[str, str] = {}
    found: list[Introduction] = []
    submodules: set[str] = set()
    commits = 0
    for commit, author, email, date, raw in _log(git, revisions):
        commits += 1
        index = 0
        while index < len(raw):
            header = raw[index]
            if not header.startswith(b":"):
                index += 1
                continue
            (old_mode, new_mode, old_oid, new_oid, kind, path, old_path), index = read_raw_record(raw, index)
            if kind == "D":
                continue
            if kind == "R" and old_path is not None:
                origin[path] = origin.get(old_path, old_path)
            if new_mode == SUBMODULE_MODE:
                if path not in submodules:
                    submodules.add(path)
                    skipped.append(Skipped(path, SUBMODULE_NOTE))
                continue
            if new_mode == SYMLINK_MODE or new_oid in seen:
                continue
            seen.add(new_oid)
            if selection is not None and not selection.wanted(path):
                continue
            parent = old_oid if old_oid != _ZERO and old_mode not in (SUBMODULE_MODE, SYMLINK_MODE) else None
            found.append(
                Introduction(new_oid, path, origin.get(path, path), commit, author, email, date, parent)
            )
    return found, commits


# --- the scanning side (runs in worker processes) ----------------------------------------------


@dataclass(slots=True)
class BlobScan:
    oid: str
    size: int
    result: FileResult | None
    # Keyed hashes of each finding's value (not path-bound), to report a value once.
    value_keys: list[str]


def _new_lines(data: bytes, parent: bytes) -> tuple[list[bytes], list[int]] | None:
    """The lines of `data` and the indexes of those not in `parent`; None when it should be whole."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:8192] or is_dicom(data):
        return None
    lines = data.split(b"\n")
    new = set(lines).difference(parent.split(b"\n"))
    new.discard(b"")
    return lines, ([i for i, line in enumerate(lines) if line in new] if new else [])


def _reduced(lines: list[bytes], added: list[int]) -> tuple[bytes, list[int]]:
    """The text to scan around `added` lines and, per line of it, the original line index."""
    keep: set[int] = set(range(min(HEAD_LINES, len(lines))))
    for index in added:
        keep.update(range(max(0, index - CONTEXT_LINES), min(len(lines), index + CONTEXT_LINES + 1)))
    order = sorted(keep)
    return b"\n".join(lines[i] for i in order), order


def _remap(finding: Finding, order: list[int], lines: list[bytes], data: bytes) -> Finding:
    line = order[finding.line - 1] + 1
    end_line = order[finding.end_line - 1] + 1
    starts = [0, *itertools.accumulate(len(x) + 1 for x in lines[: max(line, end_line)])]

    def char_offset(line_number: int, column: int) -> int:
        byte_start = starts[line_number - 1]
        prefix = data[:byte_start]
        base = byte_start if prefix.isascii() else len(prefix.decode("utf-8", "surrogateescape"))
        return base + column - 1

    return dataclasses.replace(
        finding,
        line=line,
        end_line=end_line,
        start=char_offset(line, finding.column),
        end=char_offset(end_line, finding.end_column),
    )


class _BlobScanner:
    def __init__(self, git: Git, policy: Policy) -> None:
        self.scanner = FileScanner(policy)
        self.reader = BlobReader(git)
        self.limit = policy.scan.max_file_bytes
        self.salt = policy.detection.fingerprint_salt.encode()

    def scan(self, tasks: list[tuple[str, str | None, str]]) -> list[BlobScan]:
        # One pipelined read for the batch (new blobs and the blobs they modify): a round trip
        # to git per blob would cost more than scanning it.
        wanted = list(dict.fromkeys(o for oid, parent, _ in tasks for o in (oid, parent) if o is not None))
        contents = {o: (data, size) for o, data, size in self.reader.read_many(wanted, limit=self.limit)}
        out = []
        for oid, parent, path in tasks:
            data, size = contents[oid]
            if data is None:
                reason = f"larger than the {self.limit} byte limit" if size else "blob missing"
                out.append(BlobScan(oid, size, FileResult(path, size, skipped=reason), []))
                continue
            parent_data = contents[parent][0] if parent is not None else None
            out.append(self._scan_one(oid, data, parent_data, path))
        return out

    def _scan_one(self, oid: str, data: bytes, parent_data: bytes | None, path: str) -> BlobScan:
        split = None
        if parent_data is not None:
            split = _new_lines(data, parent_data)
        if split is None:
            result = self.scanner.scan_bytes(data, path)
            return BlobScan(oid, len(data), result, self._keys(result.findings, decode(data).text))
        lines, added = split
        if not added:
            return BlobScan(oid, len(data), None, [])
        text, order = _reduced(lines, added)
        result = self.scanner.scan_bytes(text, path)
        wanted = set(added)
        kept = [
            f for f in result.findings if any(order[n - 1] in wanted for n in range(f.line, f.end_line + 1))
        ]
        keys = self._keys(kept, decode(text).text)
        result.findings = [_remap(f, order, lines, data) for f in kept]
        result.size = len(data)
        return BlobScan(oid, len(data), result, keys)

    def _keys(self, findings: list[Finding], text: str) -> list[str]:
        keys = []
        for f in findings:
            value = text[f.start : f.end] if not f.binary_tag else f"{f.binary_tag}:{f.fingerprint}"
            message = f"{f.category}\x00{value}".encode("utf-8", "surrogatepass")
            keys.append(hmac.new(self.salt, message, hashlib.sha256).hexdigest()[:32])
        return keys

    def close(self) -> None:
        self.reader.close()


# Each worker process keeps one scanner and one `git cat-file --batch`, started by its initializer.
_workers: dict[str, _BlobScanner] = {}


def _init_worker(root: str, policy: Policy) -> None:
    from pathlib import Path

    _workers["scanner"] = _BlobScanner(Git(Path(root)), policy)


def _scan_tasks(tasks: list[tuple[str, str | None, str]]) -> list[BlobScan]:
    return _workers["scanner"].scan(tasks)


def _batches(items: list[Introduction], size: int) -> Iterator[list[tuple[str, str | None, str]]]:
    for start in range(0, len(items), size):
        yield [(i.oid, i.parent_oid, i.path) for i in items[start : start + size]]


def scan_history(
    git: Git,
    policy: Policy,
    *,
    revisions: Sequence[str] = ("--all",),
    selection: Selection | None = None,
    jobs: int = 1,
) -> HistoryResult:
    started = time.perf_counter()
    skipped: list[Skipped] = []
    if not git.has_commits():
        report = ScanReport(str(git.root), [], [], 0.0, policy.detection.min_confidence)
        return HistoryResult(report, [], notes=["the repository has no commits yet"])
    try:
        found, commits = introductions(git, revisions, selection, skipped)
    except GitError as exc:
        raise GitError(f"cannot list the history: {exc}") from None
    scans: dict[str, BlobScan] = {}
    if jobs <= 1 or len(found) < 64:
        worker = _BlobScanner(git, policy)
        try:
            for tasks in _batches(found, 256):
                for scan in worker.scan(tasks):
                    scans[scan.oid] = scan
        finally:
            worker.close()
    else:
        context = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
        size = max(8, min(128, len(found) // (jobs * 16) or 8))
        with concurrent.futures.ProcessPoolExecutor(
            jobs, mp_context=context, initializer=_init_worker, initargs=(str(git.root), policy)
        ) as pool:
            for done in pool.map(_scan_tasks, _batches(found, size)):
                for scan in done:
                    scans[scan.oid] = scan
    files: list[FileResult] = []
    where: list[Introduction] = []
    reported: set[tuple[str, str]] = set()
    total = binary = 0
    for intro in found:
        scan = scans[intro.oid]
        total += scan.size
        result = scan.result
        if result is None:
            continue
        if result.skipped == "binary file":
            binary += 1
            continue
        if result.skipped is not None:
            skipped.append(Skipped(f"{intro.path}@{intro.commit[:12]}", result.skipped))
            continue
        kept = []
        for finding, key in zip(result.findings, scan.value_keys, strict=True):
            if (key, intro.origin) in reported:
                continue
            reported.add((key, intro.origin))
            kept.append(finding)
        if kept:
            result.findings = kept
            files.append(result)
            where.append(intro)
    elapsed = time.perf_counter() - started
    report = ScanReport(str(git.root), files, skipped, elapsed, policy.detection.min_confidence)
    notes = [f"{binary} binary blob(s) not scanned"] if binary else []
    return HistoryResult(report, where, commits, len(found), total, elapsed, notes)
