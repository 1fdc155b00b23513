"""Scanning every commit reachable in a repository, each blob once, reporting where values came in.

    reader:   git log --all --raw (tree diffs only: cheap)  ->  the first commit that introduced each blob
              git cat-file --batch, one stream  ->  a modified blob cut down to the lines around its new lines
    scanners: the parent process and `jobs - 1` forked workers  ->  detection
    parent:   findings in commit order, each value reported once per file (following renames)

A blob that modifies an earlier one is scanned only around the lines that are new in it (with the
file's first lines and a window of neighbours for context): the rest was scanned, and reported, in
the blob it came from. This is what keeps a history scan near the speed of `git log -p`.

With more than one job the reader is a process of its own, forked by `start` before the detectors
are imported and compiled: listing and reading the history overlap that fixed start-up, which takes
about as long as the rest of the scan. This module imports no detection code at load time for that
reason.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import gc
import multiprocessing
import os
import queue
import signal
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from phiwarden.repo.diff import read_raw_record
from phiwarden.repo.git import SUBMODULE_MODE, SUBMODULE_NOTE, SYMLINK_MODE, BlobReader, Git, GitError
from phiwarden.scan.reader import decode, is_dicom

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.context import BaseContext
    from multiprocessing.process import BaseProcess
    from multiprocessing.queues import Queue

    import pathspec

    from phiwarden.detect.finding import Finding
    from phiwarden.policy.model import Policy
    from phiwarden.scan.files import Selection, Skipped
    from phiwarden.scan.runner import FileResult, ScanReport

# Context kept around new lines when a modified blob is scanned: lines on each side, and the
# file's first lines (CSV headers, the opening of a record).
CONTEXT_LINES = 6
HEAD_LINES = 3
# Recent blobs the reader keeps, least recently used out first, as the parents of later versions:
# a parent is nearly always a recent version of the same file. One that is not kept is read again.
PARENT_CACHE_BYTES = 64 << 20
# Tasks go to the scanners in batches: big enough that queueing costs little, small enough that
# the scanners share the work evenly.
BATCH_TASKS = 64
BATCH_BYTES = 64 << 10
# Batches the reader may hold ahead of the scanners: room to read the history while they start up,
# with a bound on memory.
QUEUE_BATCHES = 128
# Batches waiting, once the reader is done, for which another scanner pays for its fork.
WORKER_BACKLOG = 8
# Until the policy is loaded the reader reads under this limit, and holds at most this many bytes
# of tasks; it looks for the policy's settings every segment of blobs.
PROVISIONAL_LIMIT = 16 << 20
HELD_BYTES = 32 << 20
SEGMENT_BLOBS = 512
_ZERO = "0" * 40
_NEWLINE = ord("\n")
# How long a process waits on another before checking that it is still alive.
_POLL_SECONDS = 0.5


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


# --- listing: which blobs came in where ---------------------------------------------------------


@dataclass(slots=True)
class Listing:
    """Every blob's first introduction in commit order, whatever the selection."""

    introductions: list[Introduction]
    commits: int
    submodules: list[str]  # paths of submodules met, in order (skipped with a note)
    empty: bool = False  # no commits yet


def _commits(output: bytes) -> Iterator[tuple[str, str, str, str, list[bytes]]]:
    """Each commit of `_log`'s output with its raw tree changes."""
    for chunk in output.split(b"\x01")[1:]:
        tokens = chunk.split(b"\x00")
        commit, author, email, date = (t.decode("utf-8", "replace") for t in tokens[:4])
        raw = tokens[4:]
        if raw and raw[0].startswith(b"\n"):
            raw[0] = raw[0][1:]
        yield commit, author, email, date, raw


def _log(git: Git, revisions: Sequence[str]) -> bytes | None:
    """Commits oldest first (parents before children) with their raw tree changes; None when there
    are no commits yet."""
    args = ("log", *revisions, "--reverse", "--topo-order", "--raw", "--no-abbrev", "-z", "-M",
            "--diff-merges=first-parent", "--format=%x01%H%x00%an%x00%ae%x00%aI", "--")  # fmt: skip
    try:
        log = git.spawn(*args)
        if not git.has_commits():  # asked while the log runs
            log.communicate()
            return None
        return git.collect(log, args)
    except GitError as exc:
        raise GitError(f"cannot list the history: {exc}") from None


def list_history(git: Git, revisions: Sequence[str]) -> Listing:
    """The first introduction of every blob reachable from `revisions`, in commit order."""
    output = _log(git, revisions)
    if output is None:
        return Listing([], 0, [], empty=True)
    seen: set[str] = set()
    origin: dict[str, str] = {}
    found: list[Introduction] = []
    submodules: dict[str, None] = {}  # in order
    commits = 0
    for commit, author, email, date, raw in _commits(output):
        commits += 1
        index = 0
        while index < len(raw):
            if not raw[index].startswith(b":"):
                index += 1
                continue
            record, index = read_raw_record(raw, index)
            old_mode, new_mode, old_oid, new_oid, kind, path, old_path = record
            if kind == "D":
                continue
            if kind == "R" and old_path is not None:
                origin[path] = origin.get(old_path, old_path)
            if new_mode == SUBMODULE_MODE:
                submodules.setdefault(path)
                continue
            if new_mode == SYMLINK_MODE or new_oid in seen:
                continue
            seen.add(new_oid)
            modified = old_oid != _ZERO and old_mode not in (SUBMODULE_MODE, SYMLINK_MODE)
            parent = old_oid if modified else None
            found.append(
                Introduction(new_oid, path, origin.get(path, path), commit, author, email, date, parent)
            )
    return Listing(found, commits, list(submodules))


# --- reading: blobs cut down to what is new in them ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Settings:
    """What reading needs from the policy and the command line."""

    limit: int  # bytes: larger blobs are not read
    selection: Selection | None

    def __reduce__(self) -> tuple[Any, ...]:
        # Compiled patterns do not pickle (RE2 sets): the selection travels as its pattern lines,
        # and one that selects everything as None (the reader need not import pattern matching).
        selection = self.selection
        if selection is None or selection.include is selection.exclude is None:
            return Settings, (self.limit, None)
        lines = (_lines(selection.include), _lines(selection.exclude), selection.respect_gitignore)
        return _settings, (self.limit, *lines)


def _lines(spec: pathspec.GitIgnoreSpec | None) -> list[str]:
    return [str(pattern.pattern) for pattern in spec.patterns] if spec is not None else []


def _settings(limit: int, include: list[str], exclude: list[str], respect_gitignore: bool) -> Settings:
    from phiwarden.scan.files import Selection

    return Settings(limit, Selection.build(include, exclude, respect_gitignore))


class Task(NamedTuple):
    """A blob for the scanners: whole, or the runs of lines around its new lines.

    Sent between processes as a plain tuple, with plain tuples inside: pickling named tuples
    costs several times more.
    """

    position: int  # of its introduction in the listing
    path: str
    size: int  # of the blob
    text: bytes
    # Per run of whole lines of the blob in `text`: its first line in the text, the same line in
    # the blob (both 0-based) and the character offset of its start in the blob. Empty when `text`
    # is the whole blob.
    spans: tuple[tuple[int, int, int], ...]
    added: tuple[int, ...]  # lines of `text` (0-based, in order) that are new in the blob


# Tasks as sent to the scanners (see `Task`).
Batch = list[tuple[Any, ...]]


class Read(NamedTuple):
    """One blob read: its task, or why there is none (a skip reason, or nothing new in it)."""

    position: int
    size: int
    skip: str | None
    task: Task | None


@dataclass(slots=True)
class Accounting:
    """The introductions read: how many, their bytes, and why some were not scanned (by position)."""

    blobs: int = 0
    bytes: int = 0
    skips: dict[int, str] = field(default_factory=dict)

    def count(self, read: Read) -> None:
        self.blobs += 1
        self.bytes += read.size
        if read.skip is not None:
            self.skips[read.position] = read.skip


def _whole(data: bytes) -> bool:
    """Blobs scanned whole, never cut into lines: UTF-16, binary, DICOM."""
    return data[:2] in (b"\xff\xfe", b"\xfe\xff") or data.find(b"\x00", 0, 8192) >= 0 or is_dicom(data)


def _common_prefix(a: bytes, b: bytes) -> int:
    # Bisection over slice comparisons: each is one memcmp, where a loop over bytes would run in
    # the interpreter.
    low, high = 0, min(len(a), len(b))
    if a[:high] == b[:high]:
        return high
    while high - low > 32:
        middle = (low + high) // 2
        if a[low:middle] == b[low:middle]:
            low = middle
        else:
            high = middle
    while a[low] == b[low]:
        low += 1
    return low


def _common_suffix(a: bytes, b: bytes, limit: int) -> int:
    """The length of the longest common suffix, at most `limit`."""
    low, high, end_a, end_b = 0, limit, len(a), len(b)
    if a[end_a - high :] == b[end_b - high :]:
        return high
    while high - low > 32:
        middle = (low + high) // 2
        if a[end_a - middle : end_a - low] == b[end_b - middle : end_b - low]:
            low = middle
        else:
            high = middle
    while a[end_a - low - 1] == b[end_b - low - 1]:
        low += 1
    return low


def _has_line(text: bytes, line: bytes) -> bool:
    """Is `line` a whole line of `text` (between newlines or the ends)?"""
    at = text.find(line)
    while at >= 0:
        end = at + len(line)
        if (at == 0 or text[at - 1] == _NEWLINE) and (end == len(text) or text[end] == _NEWLINE):
            return True
        at = text.find(line, at + 1)
    return False


def new_lines(data: bytes, parent: bytes) -> list[tuple[int, int]]:
    """The non-empty lines of `data` that are not lines of `parent`: (index, offset of its start).

    Only lines touching the bytes between the blobs' common prefix and common suffix can be new:
    any other line, with the newlines around it, has the same bytes in the parent. The few lines
    left are looked up in the parent as whole lines.
    """
    prefix = _common_prefix(data, parent)
    stop = len(data) - _common_suffix(data, parent, min(len(data), len(parent)) - prefix)
    start = data.rfind(b"\n", 0, prefix) + 1
    index = data.count(b"\n", 0, start)
    out = []
    while True:
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        if end > start and not _has_line(parent, data[start:end]):
            out.append((index, start))
        if end >= stop:  # the line holding the first byte of the common suffix was the last to check
            return out
        start, index = end + 1, index + 1


def _line_start(data: bytes, line: int, start: int, target: int) -> tuple[int, int]:
    """Line `target` and where it starts, from line `line` that starts at `start` (0-based); the
    last line and its start instead when `data` ends before `target`."""
    while line > target:
        start = data.rfind(b"\n", 0, start - 1) + 1
        line -= 1
    while line < target:
        newline = data.find(b"\n", start)
        if newline < 0:
            break
        start, line = newline + 1, line + 1
    return line, start


def cut(position: int, path: str, data: bytes, added: list[tuple[int, int]]) -> Task:
    """The task for `data` scanned around its `added` lines (from `new_lines`), with its first lines.

    Each run of lines kept is one slice of the blob: a window of neighbours around new lines,
    merged where windows meet, and the file's first lines.
    """
    # Per run: its first line and where it starts, its end (exclusive, may be past the last line)
    # and a line inside it to find that end from.
    runs = [[0, 0, HEAD_LINES, 0, 0]]
    for line, start in added:
        first, last = max(0, line - CONTEXT_LINES), line + CONTEXT_LINES + 1
        if first > runs[-1][2]:
            runs.append([first, _line_start(data, line, start, first)[1], last, line, start])
        elif last > runs[-1][2]:
            runs[-1][2:] = [last, line, start]
    ascii_blob = data.isascii()
    pieces: list[bytes] = []
    spans: list[tuple[int, int, int]] = []
    text_added: list[int] = []
    text_line = 0
    pending = iter(added)
    next_added = next(pending, None)
    for first, begin, wanted_end, line, start in runs:
        last, end = _line_start(data, line, start, wanted_end)
        if last < wanted_end:  # the run goes to the end of the blob
            last, end = last + 1, len(data) + 1
        char = begin if ascii_blob else len(data[:begin].decode("utf-8", "surrogateescape"))
        spans.append((text_line, first, char))
        pieces.append(data[begin : end - 1])
        while next_added is not None and next_added[0] < last:
            text_added.append(text_line + next_added[0] - first)
            next_added = next(pending, None)
        text_line += last - first
    return Task(position, path, len(data), b"\n".join(pieces), tuple(spans), tuple(text_added))


def wanted_by(selection: Selection | None) -> Callable[[str], bool]:
    """`selection.wanted`, remembered per path (a file has many versions)."""
    if selection is None:
        return lambda path: True
    verdicts: dict[str, bool] = {}

    def wanted(path: str) -> bool:
        verdict = verdicts.get(path)
        if verdict is None:
            verdict = verdicts[path] = selection.wanted(path)
        return verdict

    return wanted


class Reader:
    """Blobs through one `git cat-file --batch`, made into tasks against their parents."""

    def __init__(self, git: Git, limit: int) -> None:
        self.git = git
        self.limit = limit  # bytes: larger blobs are not read
        self.largest = 0  # the largest blob met so far, read or not, parents included
        self._parents: OrderedDict[str, bytes] = OrderedDict()
        self._cached = 0
        self._main: BlobReader | None = None
        self._side: BlobReader | None = None  # for parents not kept

    def read(self, introductions: Sequence[Introduction], positions: Sequence[int]) -> Iterator[Read]:
        """The blobs introduced at `positions` (in commit order), after those read before."""
        self._main = self._main or BlobReader(self.git)
        blobs = self._main.read_many([introductions[p].oid for p in positions], limit=self.limit)
        for position, (oid, data, size) in zip(positions, blobs, strict=True):
            self.largest = max(self.largest, size)
            if data is None:
                reason = f"larger than the {self.limit} byte limit" if size else "blob missing"
                yield Read(position, size, reason, None)
                continue
            task = self._task(position, introductions[position], data)
            self._keep(oid, data)
            yield Read(position, size, None, task)

    def _task(self, position: int, intro: Introduction, data: bytes) -> Task | None:
        parent = None if intro.parent_oid is None or _whole(data) else self._parent(intro.parent_oid)
        if parent is None:
            return Task(position, intro.path, len(data), data, (), ())
        added = new_lines(data, parent)
        return cut(position, intro.path, data, added) if added else None

    def _keep(self, oid: str, data: bytes) -> None:
        self._parents[oid] = data
        self._cached += len(data)
        while self._cached > PARENT_CACHE_BYTES:
            self._cached -= len(self._parents.popitem(last=False)[1])

    def _parent(self, oid: str) -> bytes | None:
        data = self._parents.get(oid)
        if data is not None:
            self._parents.move_to_end(oid)  # least recently used blobs go first
            return data
        self._side = self._side or BlobReader(self.git)
        _, data, size = next(self._side.read_many([oid], limit=self.limit))
        self.largest = max(self.largest, size)
        return data

    def close(self) -> None:
        for reader in (self._main, self._side):
            if reader is not None:
                reader.close()


@dataclass(slots=True)
class Summary:
    """What the report needs once every blob is read and scanned."""

    commits: int
    submodules: list[str]
    empty: bool
    accounting: Accounting
    # Only those of blobs skipped or with an outcome (`reported`), by position.
    introductions: dict[int, Introduction] = field(default_factory=dict)

    def reported(self, outcomes: dict[int, Outcome]) -> list[int]:
        """Positions of the blobs the report mentions, in commit order."""
        return sorted({*self.accounting.skips, *outcomes})


# --- scanning: detection on tasks, in whichever process holds the scanner -----------------------


class Outcome(NamedTuple):
    """What a task gave, when there is anything to report: findings in the blob's terms, or a skip."""

    position: int  # of the task's introduction
    result: FileResult
    # Keyed hashes of each finding's value (not path-bound), to report a value once.
    keys: list[str]


class Scanner:
    """Detection on tasks, with what the merge needs to report each value once."""

    def __init__(self, policy: Policy) -> None:
        from phiwarden.scan.runner import FileScanner

        self.files = FileScanner(policy)
        self.salt = policy.detection.fingerprint_salt.encode()

    def scan(self, task: Task) -> Outcome | None:
        decoded = decode(task.text)
        if decoded.kind == "text":
            # Most blobs have nothing to report: the engine alone says so, without classifying a
            # text whose result would be dropped. The few others are scanned again in full.
            found = self.files.engine.scan(decoded.text, path=task.path)
            if not any(_kept(task, f) for f in found):
                return None
        result = self.files.scan_bytes(task.text, task.path)
        result.findings = [f for f in result.findings if _kept(task, f)]
        if result.skipped is None and not result.findings:
            return None
        keys = self._keys(result.findings, decoded.text)
        if task.spans:
            starts = _line_starts(decoded.text)
            result.findings = [_remap(f, task, starts) for f in result.findings]
            result.size = task.size
        return Outcome(task.position, result, keys)

    def _keys(self, findings: list[Finding], text: str) -> list[str]:
        import hashlib
        import hmac

        keys = []
        for f in findings:
            value = text[f.start : f.end] if not f.binary_tag else f"{f.binary_tag}:{f.fingerprint}"
            message = f"{f.category}\x00{value}".encode("utf-8", "surrogatepass")
            keys.append(hmac.new(self.salt, message, hashlib.sha256).hexdigest()[:32])
        return keys


def _kept(task: Task, finding: Finding) -> bool:
    """Is `finding` reported: anywhere in a whole blob, on a new line of a cut one."""
    if not task.spans:
        return True
    return any(line - 1 in task.added for line in range(finding.line, finding.end_line + 1))


def _line_starts(text: str) -> list[int]:
    starts = [0]
    position = text.find("\n")
    while position >= 0:
        starts.append(position + 1)
        position = text.find("\n", position + 1)
    return starts


def _remap(finding: Finding, task: Task, starts: list[int]) -> Finding:
    """`finding` in a task's text, placed in the whole blob (lines, character offsets)."""
    first_lines = [span[0] for span in task.spans]

    def place(line: int, column: int) -> tuple[int, int]:
        text_line, blob_line, blob_char = task.spans[bisect.bisect_right(first_lines, line - 1) - 1]
        line_char = blob_char + starts[line - 1] - starts[text_line]
        return blob_line + line - text_line, line_char + column - 1

    line, start = place(finding.line, finding.column)
    end_line, end = place(finding.end_line, finding.end_column)
    return dataclasses.replace(finding, line=line, end_line=end_line, start=start, end=end)


# --- processes: the reader ahead of time, scanners side by side ---------------------------------


def _receive(connection: Connection, process: BaseProcess) -> Any:
    """The next message from `process`, raising what it raised; an error if it died silently."""
    while not connection.poll(_POLL_SECONDS):
        if not process.is_alive() and not connection.poll(_POLL_SECONDS):
            raise RuntimeError(f"{process.name} stopped unexpectedly (exit code {process.exitcode})")
    status, value = connection.recv()
    if status == "git":
        raise GitError(value)
    if status == "error":
        raise RuntimeError(f"{process.name} failed:\n{value}")
    return value


def _read(
    git: Git,
    revisions: Sequence[str],
    *,
    consumers: int,
    tasks: Queue[Batch | None],
    progress: _Progress,
    control: Connection,
) -> None:
    """The reader process: the listing, then tasks in batches, then the summary.

    The introductions themselves stay here but for those the parent asks for (blobs with findings
    or skipped): sending them all would cost the parent more than the rest of its wait.
    """
    _default_signals()
    try:
        _serve(git, revisions, consumers, tasks=tasks, progress=progress, control=control)
    except _Orphaned:
        # Nobody is left to tell, or to take what is still queued: exit without waiting for it.
        tasks.cancel_join_thread()


def _serve(
    git: Git,
    revisions: Sequence[str],
    consumers: int,
    *,
    tasks: Queue[Batch | None],
    progress: _Progress,
    control: Connection,
) -> None:
    orders = _Orders(control)
    batches = _Batches(tasks, progress)
    message: tuple[str, Any]
    listing: Listing | None = None
    try:
        listing = list_history(git, revisions)
        accounting = _send_tasks(git, listing, orders, batches)
        message = ("ok", Summary(listing.commits, listing.submodules, listing.empty, accounting))
    except _Orphaned:
        raise
    except BaseException as exc:
        message = _failure(exc)
    orders.wait()  # even after a failure: the parent sends the settings in any case
    for _ in range(consumers):
        _put(tasks, None, batches.parent)
    control.send(message)
    if listing is not None and message[0] == "ok":
        positions: list[int] = _recv(control, orders.parent)
        control.send(("ok", {p: listing.introductions[p] for p in positions}))


class _Orphaned(Exception):
    """The parent process is gone."""


# The reader waits on its parent with a timeout, and stops if it is gone: its own copies of the
# parent's ends of the channels (inherited by the fork) would hide that.


def _put(tasks: Queue[Batch | None], item: Batch | None, parent: int) -> None:
    while True:
        try:
            tasks.put(item, timeout=_POLL_SECONDS)
            return
        except queue.Full:
            if os.getppid() != parent:
                raise _Orphaned from None


def _recv(control: Connection, parent: int) -> Any:
    while not control.poll(_POLL_SECONDS):
        if os.getppid() != parent:
            raise _Orphaned
    return control.recv()


@contextlib.contextmanager
def _sigterm_held() -> Iterator[None]:
    """Around a fork: a SIGTERM that comes before the child has its default handler back waits."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _default_signals() -> None:
    """SIGTERM ends a child process (`Feed.close` relies on it), whatever handler the parent had
    installed: a fork inherits it, and one that only sets a flag would leave the child waiting."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


def _failure(exc: BaseException) -> tuple[str, str]:
    return ("git", str(exc)) if isinstance(exc, GitError) else ("error", traceback.format_exc())


class _Orders:
    """The settings from the parent, once it has loaded the policy."""

    def __init__(self, control: Connection) -> None:
        self.control = control
        self.parent = os.getppid()
        self.settings: Settings | None = None

    def poll(self) -> Settings | None:
        if self.settings is None and self.control.poll():
            self.settings = self.control.recv()
        return self.settings

    def wait(self) -> Settings:
        if self.settings is None:
            self.settings = _recv(self.control, self.parent)
        return self.settings


class _StartOver(Exception):
    """What was read before the settings came would have been read otherwise under them."""


class _Progress:
    """How far the reader is, shared with the parent: batches sent, and whether that is all."""

    def __init__(self, context: BaseContext) -> None:
        self._sent = context.RawValue("q", 0)
        self._done = context.RawValue("b", 0)

    @property
    def sent(self) -> int:
        return int(self._sent.value)

    @property
    def done(self) -> bool:
        return bool(self._done.value)

    def count(self) -> None:
        self._sent.value += 1

    def finish(self) -> None:
        self._done.value = 1


class _Batches:
    """Tasks for the scanners in batches, and the accounting of every blob read."""

    def __init__(self, tasks: Queue[Batch | None], progress: _Progress) -> None:
        self.tasks = tasks
        self.progress = progress
        self.parent = os.getppid()  # the scanning process, which takes the batches
        self.accounting = Accounting()
        self._batch: Batch = []
        self._bytes = 0

    def add(self, read: Read) -> None:
        self.accounting.count(read)
        if read.task is not None:
            self._batch.append(tuple(read.task))
            self._bytes += len(read.task.text)
            if len(self._batch) >= BATCH_TASKS or self._bytes >= BATCH_BYTES:
                self.flush()

    def flush(self) -> None:
        if self._batch:
            _put(self.tasks, self._batch, self.parent)
            self.progress.count()
            self._batch, self._bytes = [], 0


def _send_tasks(git: Git, listing: Listing, orders: _Orders, batches: _Batches) -> Accounting:
    """Read every wanted blob and send the tasks; start over if reading early went wrong."""
    while True:
        settings = orders.poll()
        reader = Reader(git, settings.limit if settings is not None else PROVISIONAL_LIMIT)
        try:
            return _send_all(reader, listing, orders, batches)
        except _StartOver:
            continue
        finally:
            reader.close()


def _send_all(reader: Reader, listing: Listing, orders: _Orders, batches: _Batches) -> Accounting:
    """Tasks for the wanted blobs, read a segment at a time.

    Until the settings come, every blob is read, under a provisional limit, and held back. They
    are kept if the settings would have read them alike (no blob met is over either limit), then
    filtered by the selection; otherwise reading starts over (`_StartOver`).
    """
    introductions = listing.introductions
    held: list[Read] = []
    held_bytes = 0
    wanted: Callable[[str], bool] | None = None
    for start in range(0, len(introductions) + SEGMENT_BLOBS, SEGMENT_BLOBS):
        last = start >= len(introductions)
        if wanted is None:
            waiting = last or reader.largest > reader.limit or held_bytes > HELD_BYTES
            settings = orders.wait() if waiting else orders.poll()
            if settings is not None:
                if reader.largest > min(reader.limit, settings.limit):
                    raise _StartOver
                reader.limit = settings.limit
                wanted = wanted_by(settings.selection)
                for read in held:
                    if wanted(introductions[read.position].path):
                        batches.add(read)
                held = []
        if last:
            break
        segment = range(start, min(len(introductions), start + SEGMENT_BLOBS))
        if wanted is None:
            for read in reader.read(introductions, segment):
                held.append(read)
                held_bytes += len(read.task.text) if read.task is not None else 0
        else:
            for read in reader.read(introductions, [p for p in segment if wanted(introductions[p].path)]):
                batches.add(read)
    batches.flush()
    batches.progress.finish()
    return batches.accounting


def _work(scanner: Scanner, feed: Feed, results: Connection, unused: Connection) -> None:
    """A scanning worker: tasks until the reader is done, then its outcomes in one message."""
    _default_signals()
    unused.close()  # the parent's end: closed here, a send to a dead parent fails instead of waiting
    parent = os.getppid()
    try:
        # Only the parent can ask after the reader; a worker whose parent is gone stops waiting.
        results.send(("ok", feed.consume(scanner, alive=lambda: os.getppid() == parent)))
    except BaseException:
        with contextlib.suppress(OSError):  # no parent left to tell
            results.send(("error", traceback.format_exc()))


class Feed:
    """The reader process, started ahead of the scan (`start`), and the scanners it feeds.

    For a process that ends after the scan (the command line): see `run`.
    """

    def __init__(self, git: Git, revisions: Sequence[str], jobs: int) -> None:
        self.started = time.perf_counter()
        self.jobs = jobs
        context = multiprocessing.get_context("fork")
        self._context = context
        self.tasks: Queue[Batch | None] = context.Queue(QUEUE_BATCHES)
        self.progress = _Progress(context)
        self.control, child = context.Pipe()
        self.process = context.Process(
            target=_read,
            args=(git, tuple(revisions)),
            kwargs={"consumers": jobs, "tasks": self.tasks, "progress": self.progress, "control": child},
            name="phiwarden history reader",
            daemon=True,
        )
        with _sigterm_held():
            self.process.start()
        child.close()
        self.workers: list[tuple[BaseProcess, Connection]] = []
        self._configured = False

    def next_batch(self, alive: Callable[[], bool]) -> Batch | None:
        while True:
            try:
                return self.tasks.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if alive():
                    continue
            try:  # the last batches may have reached the pipe just as their sender exited
                return self.tasks.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                raise RuntimeError(f"{self.process.name} stopped unexpectedly") from None

    def consume(
        self, scanner: Scanner, *, alive: Callable[[], bool], fork_workers: bool = False
    ) -> dict[int, Outcome]:
        """Scan batches until the reader says it is done; each outcome under its task's position."""
        outcomes: dict[int, Outcome] = {}
        batches = 0
        while (batch := self.next_batch(alive)) is not None:
            batches += 1
            if fork_workers and not self.workers and self._behind(batches):
                self._fork_workers(scanner)
            for raw in batch:
                task = Task._make(raw)
                outcome = scanner.scan(task)
                if outcome is not None:
                    outcomes[task.position] = outcome
        return outcomes

    def _behind(self, taken: int) -> bool:
        """Would more scanners pay for their start? Only when batches wait for them: while the
        reader is the slower side, a worker would only take the CPU it needs (and its fork costs
        the time to copy what it touches of the parent's memory)."""
        waiting = self.progress.sent - taken
        return waiting >= QUEUE_BATCHES // 2 or (self.progress.done and waiting >= WORKER_BACKLOG)

    def _fork_workers(self, scanner: Scanner) -> None:
        for number in range(self.jobs - 1):
            receiver, sender = self._context.Pipe(duplex=False)
            worker = self._context.Process(
                target=_work,
                args=(scanner, self, sender, receiver),
                name=f"phiwarden history scanner {number + 1}",
                daemon=True,
            )
            with _sigterm_held():
                worker.start()
            sender.close()
            self.workers.append((worker, receiver))

    def configure(self, policy: Policy, selection: Selection | None) -> None:
        """Tell the reader what to read: it waits for this, so call it once the policy is loaded."""
        if not self._configured:
            self.control.send(Settings(policy.scan.max_file_bytes, selection))
            self._configured = True

    def run(self, policy: Policy) -> tuple[Summary, dict[int, Outcome]]:
        """Scan what the reader sends; the detectors compile while it reads."""
        scanner = Scanner(policy)
        # The scanner and all imported so far live until the process ends: frozen, the collector
        # no longer walks them, a forked worker does not copy the pages it would touch doing so,
        # and exit does not take them apart (some 15 ms).
        gc.freeze()
        outcomes = self.consume(scanner, alive=self.process.is_alive, fork_workers=self.jobs > 1)
        for worker, receiver in self.workers:
            outcomes.update(_receive(receiver, worker))
            worker.join()
        summary: Summary = _receive(self.control, self.process)
        self.control.send(summary.reported(outcomes))
        summary.introductions = _receive(self.control, self.process)
        self.process.join()
        return summary, outcomes

    def close(self) -> None:
        """Stop whatever is still running (after an error); a no-op after `run`."""
        for process in [self.process, *(worker for worker, _ in self.workers)]:
            if process.is_alive():
                process.terminate()
            process.join()
        self.tasks.close()
        self.control.close()
        for _, receiver in self.workers:
            receiver.close()


def start(git: Git, *, jobs: int, revisions: Sequence[str] = ("--all",)) -> Feed | None:
    """Start reading the history now, for `scan_history(feed=...)`; None when it runs in-process."""
    if jobs <= 1 or not hasattr(os, "fork"):
        return None
    return Feed(git, revisions, jobs)


# --- the scan -----------------------------------------------------------------------------------


def scan_history(
    git: Git,
    policy: Policy,
    *,
    revisions: Sequence[str] = ("--all",),
    selection: Selection | None = None,
    jobs: int = 1,
    feed: Feed | None = None,
) -> HistoryResult:
    """Scan every blob introduced in `revisions`; `feed` is a reader `start`ed earlier, if any."""
    from phiwarden.scan.runner import ScanReport

    started = time.perf_counter() if feed is None else feed.started
    own = feed is None
    if own:
        feed = start(git, jobs=jobs, revisions=revisions)
    try:
        if feed is not None:
            feed.configure(policy, selection)
            summary, outcomes = feed.run(policy)
        else:
            settings = Settings(policy.scan.max_file_bytes, selection)
            summary, outcomes = _scan_here(git, policy, revisions, settings)
    finally:
        if own and feed is not None:
            feed.close()
    if summary.empty:
        report = ScanReport(str(git.root), [], [], 0.0, policy.detection.min_confidence)
        return HistoryResult(report, [], notes=["the repository has no commits yet"])
    files, where, skipped, binary = _merge(summary, outcomes)
    elapsed = time.perf_counter() - started
    report = ScanReport(str(git.root), files, skipped, elapsed, policy.detection.min_confidence)
    notes = [f"{binary} binary blob(s) not scanned"] if binary else []
    counted = summary.accounting
    return HistoryResult(report, where, summary.commits, counted.blobs, counted.bytes, elapsed, notes)


def _scan_here(
    git: Git, policy: Policy, revisions: Sequence[str], settings: Settings
) -> tuple[Summary, dict[int, Outcome]]:
    listing = list_history(git, revisions)
    wanted = wanted_by(settings.selection)
    positions = [p for p, intro in enumerate(listing.introductions) if wanted(intro.path)]
    scanner: Scanner | None = None  # compiled only if there is something to scan
    reader = Reader(git, settings.limit)
    accounting = Accounting()
    outcomes: dict[int, Outcome] = {}
    try:
        for read in reader.read(listing.introductions, positions):
            accounting.count(read)
            if read.task is None:
                continue
            scanner = scanner or Scanner(policy)
            outcome = scanner.scan(read.task)
            if outcome is not None:
                outcomes[read.position] = outcome
    finally:
        reader.close()
    summary = Summary(listing.commits, listing.submodules, listing.empty, accounting)
    summary.introductions = {p: listing.introductions[p] for p in summary.reported(outcomes)}
    return summary, outcomes


def _merge(
    summary: Summary, outcomes: dict[int, Outcome]
) -> tuple[list[FileResult], list[Introduction], list[Skipped], int]:
    """Findings in commit order, each value once per file; skipped blobs; the binary ones counted."""
    from phiwarden.scan.files import Skipped

    skipped = [Skipped(path, SUBMODULE_NOTE) for path in summary.submodules]
    files: list[FileResult] = []
    where: list[Introduction] = []
    reported: set[tuple[str, str]] = set()
    binary = 0
    for index in summary.reported(outcomes):
        intro = summary.introductions[index]
        outcome = outcomes.get(index)
        reason = summary.accounting.skips.get(index) or (
            outcome.result.skipped if outcome is not None else None
        )
        if reason == "binary file":
            binary += 1
            continue
        if reason is not None:
            skipped.append(Skipped(f"{intro.path}@{intro.commit[:12]}", reason))
            continue
        if outcome is None:
            continue
        result = outcome.result
        kept = []
        for finding, key in zip(result.findings, outcome.keys, strict=True):
            if (key, intro.origin) in reported:
                continue
            reported.add((key, intro.origin))
            kept.append(finding)
        if kept:
            result.findings = kept
            files.append(result)
            where.append(intro)
    return files, where, skipped, binary
