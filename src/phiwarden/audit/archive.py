"""Archive files: the segments that `prune` moved out of the store (`online_days` < `retention_days`).

`phiwarden-audit-<log id>-<first>-<last>.jsonl` holds, one JSON object per line:

1. a header `{"archive": "phiwarden.audit.archive/v1", "log_id", "first_sequence", "last_sequence",
   "hmac_key_id", "signing_key_id"}` (files written before it existed start with the records);
2. events first..last as the `jsonl` export writes them (the stored record plus its "hash");
3. the signed prune record of the range, the one the store keeps.

A file is written to a temporary name and renamed, so it is complete or absent. `verify_archives`
checks it with the public key alone: each record's hash, dense sequence numbers, chain links, the
signed prune record (its boundary hash is the last record's, its frontier folds to its signed root),
and across consecutive files the chain and the Merkle frontier from one range to the next; events
missing between two files, or held by two, fail it. `compare_with_store` then holds the ranges to the
store's signed prune records, and `pruned_ranges` says where a store's pruned events are. When an
archive is past `retention_days`, prune replaces it with `<name>.expired.json`: a prune record of the
same range signed again, whose reason names the deleted file's SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

from phiwarden.audit.canonical import GENESIS_HASH, canonical_json, record_hash
from phiwarden.audit.checkpoint import PruneRecord, Signed, SignedPrune, StatementError, parse_signed
from phiwarden.audit.errors import AuditError, AuditKeyError
from phiwarden.audit.keys import VerifyKey
from phiwarden.audit.merkle import Frontier
from phiwarden.audit.search import Filter

ARCHIVE_TYPE = "phiwarden.audit.archive/v1"
PREFIX = "phiwarden-audit-"
EXPIRED_SUFFIX = ".expired.json"
# How the reason of a prune record that archived its range begins (see `archived_reason`).
ARCHIVED = "archived after"
_TAIL_BLOCK = 1 << 16


class ArchiveError(AuditError):
    """An archive file that cannot be read, or a directory that holds none."""


@dataclass(frozen=True, slots=True)
class ArchiveHeader:
    log_id: str
    first: int
    last: int
    hmac_key_id: str | None
    signing_key_id: str

    def to_line(self) -> bytes:
        return canonical_json(
            {
                "archive": ARCHIVE_TYPE,
                "log_id": self.log_id,
                "first_sequence": self.first,
                "last_sequence": self.last,
                "hmac_key_id": self.hmac_key_id,
                "signing_key_id": self.signing_key_id,
            }
        )


class ArchivedEvent(NamedTuple):
    seq: int
    # The canonical record (the bytes that were hashed), its stored hash, and the hash it is chained to.
    record: bytes
    hash: bytes
    prev_hash: str
    event: dict[str, Any]


def archive_name(log_id: str, first: int, last: int) -> str:
    return f"{PREFIX}{log_id}-{first:012d}-{last:012d}.jsonl"


def expired_name(archive: Path) -> Path:
    return archive.with_name(archive.name.removesuffix(".jsonl") + EXPIRED_SUFFIX)


def archive_files(path: Path, log_id: str | None = None) -> list[Path]:
    """The archive files at `path` (a file, or a directory's files of one log or all), by range."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ArchiveError(f"{path}: no such archive file or directory")
    pattern = f"{PREFIX}{log_id}-*.jsonl" if log_id else f"{PREFIX}*.jsonl"
    return sorted(path.glob(pattern), key=_range_key)


def expired_files(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"{PREFIX}*{EXPIRED_SUFFIX}"), key=_range_key) if directory.is_dir() else []


def archive_range(path: Path) -> tuple[int, int]:
    """(first, last) from the file's name; (0, 0) for a name that does not say."""
    parts = path.name.split(".")[0].rsplit("-", 2)
    try:
        return int(parts[1]), int(parts[2])
    except (IndexError, ValueError):
        return 0, 0


def _range_key(path: Path) -> tuple[int, str]:
    return archive_range(path)[0], path.name


@dataclass(slots=True)
class ArchiveFile:
    """One archive file read whole: header (if any), events, signed prune record."""

    path: Path
    header: ArchiveHeader | None = None
    prune: SignedPrune | None = None
    problems: list[str] = field(default_factory=list)


def read_events(path: Path, into: ArchiveFile | None = None) -> Iterator[ArchivedEvent]:
    """The events of an archive file in file order; header and prune record go to `into`."""
    target = into if into is not None else ArchiveFile(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ArchiveError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        pending: bytes | None = None
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            if pending is not None:
                yield _event(path, number - 1, pending)
            pending = line
            if number == 1 and line.startswith(b'{"archive":'):
                target.header = _header(path, line)
                pending = None
        if pending is None:
            raise ArchiveError(f"{path}: no events and no prune record")
        target.prune = _prune(path, pending)


def _header(path: Path, line: bytes) -> ArchiveHeader:
    try:
        data = json.loads(line)
        if data.get("archive") != ARCHIVE_TYPE:
            raise ArchiveError(f"{path}: unknown archive format {data.get('archive')!r}")
        return ArchiveHeader(
            log_id=str(data["log_id"]),
            first=int(data["first_sequence"]),
            last=int(data["last_sequence"]),
            hmac_key_id=data.get("hmac_key_id"),
            signing_key_id=str(data["signing_key_id"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ArchiveError(f"{path}: malformed archive header ({exc})") from None


def _event(path: Path, number: int, line: bytes) -> ArchivedEvent:
    try:
        data = json.loads(line)
        digest = bytes.fromhex(data.pop("hash"))
        return ArchivedEvent(
            int(data["sequence"]), canonical_json(data), digest, str(data["prev_hash"]), data["event"]
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ArchiveError(f"{path}, line {number}: not an archived event ({exc})") from None


def _prune(path: Path, line: bytes) -> SignedPrune:
    try:
        signed = parse_signed(line.decode("utf-8"))
    except (StatementError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"{path}: the last line is not a signed prune record ({exc})") from None
    if not isinstance(signed.statement, PruneRecord):
        raise ArchiveError(f"{path}: the last line is a checkpoint, not the signed prune record")
    return Signed(signed.statement, signed.signature)


def read_expired(path: Path) -> SignedPrune:
    try:
        signed = parse_signed(path.read_text(encoding="utf-8").strip())
    except (OSError, StatementError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"{path}: not a signed expiry record ({exc})") from None
    if not isinstance(signed.statement, PruneRecord):
        raise ArchiveError(f"{path}: not a signed expiry record")
    return Signed(signed.statement, signed.signature)


# -- verification --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Covered:
    """A range the files given account for: an archive file's events, or a signed expiry record's."""

    path: Path
    record: PruneRecord
    expired: bool


@dataclass(slots=True)
class ArchiveReport:
    files: int = 0
    events: int = 0
    expired: int = 0
    first: int | None = None
    last: int | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    covered: list[Covered] = field(default_factory=list)
    # What is already reported: ranges of files that failed (by their names), gaps between files.
    failed: list[tuple[int, int]] = field(default_factory=list)
    gaps: dict[tuple[int, int], str] = field(default_factory=dict)
    # Whether the ranges were held to the store's prune records (`compare_with_store`).
    compared: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "files": self.files,
            "events_checked": self.events,
            "expired_events": self.expired,
            "first_sequence": self.first,
            "last_sequence": self.last,
            "compared_with_store": self.compared,
            "problems": self.problems,
            "warnings": self.warnings,
        }


@dataclass(slots=True)
class _Chain:
    """Where the previous range ended: its last hash and Merkle frontier."""

    end: int = 0
    last_hash: bytes = GENESIS_HASH
    frontier: Frontier = field(default_factory=Frontier)


def verify_archives(paths: list[Path], key: VerifyKey, expired: list[Path] | None = None) -> ArchiveReport:
    """Check archive files offline with the public key; `expired` records stand for deleted ones.

    Each log's files must follow one another: a range missing between two of them, or held twice
    (an interrupted prune's archive beside the re-run's), is a problem."""
    report = ArchiveReport()
    given = {path.resolve(): (path, False) for path in paths}
    given.update({path.resolve(): (path, True) for path in expired or ()})
    logs: dict[str, list[tuple[int, int, str, Path, bool]]] = {}
    for path, is_expired in given.values():
        logs.setdefault(_log_of(path), []).append((*archive_range(path), path.name, path, is_expired))
    for items in logs.values():
        _verify_sequence(sorted(items), key, report)
    if not given:
        report.problems.append("no archive file to verify")
    return report


def _log_of(path: Path) -> str:
    return path.name.split(".")[0].removeprefix(PREFIX).rsplit("-", 2)[0]


def _verify_sequence(
    items: list[tuple[int, int, str, Path, bool]], key: VerifyKey, report: ArchiveReport
) -> None:
    """One log's files by range: each checked, and each against the ranges before it."""
    chain: _Chain | None = _Chain()
    reach, before = 0, None
    for first, last, _, path, is_expired in items:
        if before is not None and first <= reach:
            report.problems.append(
                f"{path}: events {first}..{last} overlap {before.name} (events up to {reach}): two files "
                "hold the same events, and search and lookup --archive list them twice (an archive an "
                "interrupted prune left beside the one its re-run wrote?)"
            )
        elif before is not None and first > reach + 1:
            gap = (
                f"events {reach + 1}..{first - 1} are missing: no archive file or signed expiry record "
                f"holds them between {before.name} and {path.name}"
            )
            report.gaps[(reach + 1, first - 1)] = gap
            report.problems.append(gap)
        elif before is None and first > 1:
            report.warnings.append(
                f"{path}: events {first}..{last} checked on their own (the range before them, up to "
                f"{first - 1}, is not among the files given)"
            )
        elif before is not None and chain is None:
            report.warnings.append(
                f"{path}: events {first}..{last} checked on their own (the file before them, "
                f"{before.name}, failed)"
            )
        linked = chain if chain is not None and chain.end == first - 1 else None
        covered = _check_expired(path, key, report) if is_expired else _check_file(path, key, linked, report)
        chain = None if covered is None else _after(covered.record)
        if covered is not None:
            report.covered.append(covered)
        else:
            report.failed.append((first, last))
        reach, before = max(reach, last), path


def _check_expired(path: Path, key: VerifyKey, report: ArchiveReport) -> Covered | None:
    try:
        signed = read_expired(path)
    except ArchiveError as exc:
        report.problems.append(str(exc))
        return None
    record = signed.statement
    if not signed.verify(key):
        report.problems.append(f"{path}: bad signature on the expiry record")
        return None
    report.expired += record.count
    _extend(report, record.first_sequence, record.last_sequence)
    return Covered(path, record, expired=True)


def _check_file(path: Path, key: VerifyKey, chain: _Chain | None, report: ArchiveReport) -> Covered | None:
    """Check one archive file; `chain` is the state the range before it ended with, if known."""
    report.files += 1
    content = ArchiveFile(path)
    problems: list[str] = []
    hashes: list[bytes] = []
    first: int | None = None
    expected_seq: int | None = None
    prev: bytes | None = None
    try:
        for item in read_events(path, content):
            if first is None:
                first = expected_seq = item.seq
                if chain is not None:
                    prev = chain.last_hash
                elif item.seq == 1:
                    prev = GENESIS_HASH
            if item.seq != expected_seq:
                problems.append(f"event {item.seq} where {expected_seq} belongs (deleted or inserted events)")
                break
            if record_hash(item.record) != item.hash:
                problems.append(f"event {item.seq} does not match its hash (modified)")
                break
            if prev is not None and item.prev_hash != prev.hex():
                problems.append(f"event {item.seq} is not chained to the event before it")
                break
            prev = item.hash
            hashes.append(item.hash)
            expected_seq = item.seq + 1
    except ArchiveError as exc:
        report.problems.append(str(exc))
        return None
    if problems:
        report.problems.extend(f"{path}: {p}" for p in problems)
        return None
    assert content.prune is not None  # read_events sets it or raises
    record = content.prune.statement
    last = first - 1 + len(hashes) if first is not None else record.first_sequence - 1
    named = archive_range(path)
    checks = [
        (content.prune.verify(key), "the prune record's signature does not verify with this public key"),
        (
            (record.first_sequence, record.last_sequence, record.count) == (first, last, len(hashes)),
            f"holds events {first}..{last} but its prune record covers "
            f"{record.first_sequence}..{record.last_sequence}",
        ),
        (bool(hashes) and record.boundary_hash == hashes[-1], "its last event is not the prune record's"),
        (_folds(record), "the prune record's frontier does not fold to its signed root"),
        (
            named in ((0, 0), (first, last)),
            f"its name says events {named[0]}..{named[1]}, it holds {first}..{last}",
        ),
    ]
    header = content.header
    if header is not None:
        checks.append(
            (
                (header.log_id, header.first, header.last) == (record.log_id, first, last),
                "its header does not match its events and prune record",
            )
        )
    failed = [message for ok, message in checks if not ok]
    if failed:
        report.problems.extend(f"{path}: {message}" for message in failed)
        return None
    if chain is not None:
        frontier = chain.frontier.copy()
        for digest in hashes:
            frontier.push(digest)
        if frontier.to_bytes() != b"".join(record.frontier):
            report.problems.append(f"{path}: its events do not extend the tree of the range before them")
            return None
    report.events += len(hashes)
    _extend(report, record.first_sequence, record.last_sequence)
    return Covered(path, record, expired=False)


def _folds(record: PruneRecord) -> bool:
    try:
        return Frontier(record.last_sequence, record.frontier).root() == record.boundary_root
    except ValueError:
        return False


def _after(record: PruneRecord) -> _Chain | None:
    try:
        return _Chain(
            record.last_sequence, record.boundary_hash, Frontier(record.last_sequence, record.frontier)
        )
    except ValueError:
        return None


def _extend(report: ArchiveReport, first: int, last: int) -> None:
    report.first = first if report.first is None else min(report.first, first)
    report.last = last if report.last is None else max(report.last, last)


def archived_reason(online_days: int) -> str:
    """The reason a prune record gives for a range that was archived before it left the store."""
    return f"{ARCHIVED} {online_days} days"


def compare_with_store(
    report: ArchiveReport, log_id: str, prunes: Sequence[SignedPrune], key: VerifyKey, *, complete: bool
) -> None:
    """Hold the verified ranges of log `log_id` to the store's signed prune records.

    Every range the store archived must be there, as its archive file or the signed expiry record of
    its deletion (a range pruned past retention without an archive needs neither, and is no gap
    between files): missing is a problem when `complete` (a directory was given), a warning when only
    some files were. A file
    of no pruned range is a problem, unless it starts where the store's prunes end: an archive a
    prune wrote before it was interrupted, which the next prune finishes.
    """
    report.compared = True
    mine = {
        (c.record.first_sequence, c.record.last_sequence): c
        for c in report.covered
        if c.record.log_id == log_id
    }
    pruned_to = 0
    deleted: list[tuple[int, int]] = []
    for signed in prunes:
        record = signed.statement
        pruned_to = record.last_sequence
        span = f"events {record.first_sequence}..{record.last_sequence}"
        if not signed.verify(key):
            report.problems.append(f"the store's prune record of {span} does not verify with this public key")
            continue
        if not record.reason.startswith(ARCHIVED):
            deleted.append((record.first_sequence, record.last_sequence))
        covered = mine.pop((record.first_sequence, record.last_sequence), None)
        if covered is not None:
            if (covered.record.boundary_root, covered.record.boundary_hash, covered.record.frontier) != (
                record.boundary_root,
                record.boundary_hash,
                record.frontier,
            ):
                report.problems.append(f"{covered.path}: its prune record of {span} is not the store's")
            continue
        reported = (record.first_sequence, record.last_sequence) in report.failed or any(
            low <= record.first_sequence and record.last_sequence <= high for low, high in report.gaps
        )
        if reported or not record.reason.startswith(ARCHIVED):
            continue
        missing = (
            f"{span} were archived when they were pruned (the store's signed prune record says so), but "
            "neither their archive file nor the signed record of its deletion is among the files given"
        )
        (report.problems if complete else report.warnings).append(missing)
    for (low, high), gap in report.gaps.items():
        if _tiled(low, high, [(a, b) for a, b in deleted if low <= a and b <= high]):
            report.problems.remove(gap)  # pruned past retention without an archive: nothing to hold
    for covered in mine.values():
        first, last = covered.record.first_sequence, covered.record.last_sequence
        if first == pruned_to + 1 and not covered.expired:
            report.warnings.append(
                f"{covered.path}: events {first}..{last} are still in the store: a prune was interrupted "
                "after writing this archive, and the next prune finishes it"
            )
        else:
            report.problems.append(
                f"{covered.path}: events {first}..{last} are no range the store pruned (its prune "
                f"records end at {pruned_to})"
            )


def _tiled(low: int, high: int, ranges: list[tuple[int, int]]) -> bool:
    """Whether `ranges` (in order) cover low..high exactly, one after the other."""
    ends = [low - 1, *(end for pair in ranges for end in pair), high + 1]
    return bool(ranges) and all(ends[i] + 1 == ends[i + 1] for i in range(0, len(ends), 2))


# -- search and lookup ------------------------------------------------------------------------------


def search_archives(paths: list[Path], query: Filter) -> tuple[list[ArchivedEvent], int]:
    """The newest `query.limit` matching events (all without a limit), oldest first, and how many match."""
    kept: deque[ArchivedEvent] = deque(maxlen=query.limit)
    total = 0
    for path in paths:
        for item in read_events(path):
            if query.matches(item.event):
                kept.append(item)
                total += 1
    return list(kept), total


def lookup_archives(paths: list[Path], digest: str, key_id: str) -> list[ArchivedEvent]:
    """Archived events that carried a value of this HMAC, computed with the key of id `key_id`."""
    found: list[ArchivedEvent] = []
    for path in paths:
        content = ArchiveFile(path)
        for item in read_events(path, content):
            hmacs = item.event.get("unmapped", {}).get("phiwarden", {}).get("value_hmacs", {})
            if any(digest in values for values in hmacs.values()):
                found.append(item)
        header = content.header
        if header is not None and header.hmac_key_id is not None and header.hmac_key_id != key_id:
            raise AuditKeyError(
                f"{path} holds values hashed with HMAC key {header.hmac_key_id}, but the key loaded "
                f"here is {key_id}: a lookup with it would find nothing. Use the log's HMAC key"
            )
    return found


# -- writing and expiry (for retention) --------------------------------------------------------------


def write_atomically(target: Path, lines: Iterator[bytes]) -> None:
    """Write `lines` to `target` through a temporary file renamed into place: complete or absent."""
    temporary = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with temporary.open("wb") as handle:
            for line in lines:
                handle.write(line + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(target)
        _sync_directory(target.parent)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise ArchiveError(f"cannot write {target}: {exc.strerror or exc}") from None


def _sync_directory(directory: Path) -> None:
    """Make a rename durable (POSIX; directories cannot be opened for fsync on Windows)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temporaries(target: Path) -> None:
    """Temporary files a crashed prune left for `target`."""
    for stale in target.parent.glob(f"{target.name}.tmp-*"):
        stale.unlink(missing_ok=True)


def newest_logged_ms(path: Path) -> int:
    """When the newest event of an archive was logged, read from the end of the file."""
    lines = _last_lines(path, 2)
    if len(lines) < 2:
        raise ArchiveError(f"{path}: no events")
    try:
        event = json.loads(lines[0])["event"]
        return int(event["metadata"].get("logged_time", event["time"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ArchiveError(f"{path}: the last event cannot be read ({exc})") from None


def _last_lines(path: Path, count: int) -> list[bytes]:
    try:
        with path.open("rb") as handle:
            end = handle.seek(0, os.SEEK_END)
            data = b""
            position = end
            while position > 0 and data.rstrip(b"\n").count(b"\n") < count:
                step = min(_TAIL_BLOCK, position)
                position -= step
                handle.seek(position)
                data = handle.read(step) + data
    except OSError as exc:
        raise ArchiveError(f"cannot read {path}: {exc.strerror or exc}") from None
    return [line for line in data.splitlines() if line.strip()][-count:]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise ArchiveError(f"cannot read {path}: {exc.strerror or exc}") from None
    return digest.hexdigest()


# -- where pruned events went ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrunedRange:
    """Consecutive pruned events that went the same way."""

    first: int
    last: int
    # "archived": the archive files are in `directory`; "expired": archived, then deleted past
    # retention under a signed record there; "deleted": pruned past retention without an archive;
    # "missing": archived, but `directory` (None: no archive_dir here) does not hold the files.
    kind: str
    directory: Path | None


def pruned_ranges(prunes: Sequence[SignedPrune], directory: Path | None, log_id: str) -> list[PrunedRange]:
    """Where the events of a store's prune records are now, consecutive ranges of one kind merged."""
    files: set[tuple[int, int]] = set()
    expired: set[tuple[int, int]] = set()
    if directory is not None and directory.is_dir():
        files = {archive_range(path) for path in archive_files(directory, log_id)}
        expired = {archive_range(path) for path in expired_files(directory) if _log_of(path) == log_id}
    out: list[PrunedRange] = []
    for signed in prunes:
        record = signed.statement
        span = (record.first_sequence, record.last_sequence)
        kind = (
            "archived"
            if span in files
            else "expired"
            if span in expired
            else "missing"
            if record.reason.startswith(ARCHIVED)
            else "deleted"
        )
        if out and out[-1].kind == kind and out[-1].last + 1 == record.first_sequence:
            out[-1] = replace(out[-1], last=record.last_sequence)
        else:
            out.append(PrunedRange(record.first_sequence, record.last_sequence, kind, directory))
    return out
