"""Running a scan over many files: reading, detecting, classifying, in parallel, with a report.

Work is split across processes (`jobs`); each process compiles the policy once. Results come back
in path order whatever the order of completion, so reports are reproducible.
"""

from __future__ import annotations

import dataclasses
import io
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from phiwarden.classify import Classification, classifier_for
from phiwarden.detect.engine import engine_for
from phiwarden.detect.finding import Finding, fingerprint, mask
from phiwarden.policy.model import Policy
from phiwarden.scan import dicom
from phiwarden.scan.files import Candidate, Skipped
from phiwarden.scan.reader import decode


@dataclass(slots=True)
class FileResult:
    path: str
    size: int = 0
    findings: list[Finding] = field(default_factory=list)
    classification: Classification | None = None
    skipped: str | None = None
    note: str | None = None
    # Findings present but not reported: in an allowed path, or already in the baseline.
    allowed: int = 0
    baselined: int = 0


@dataclass(slots=True)
class ScanReport:
    root: str
    files: list[FileResult]
    skipped: list[Skipped]
    elapsed: float
    min_confidence: float

    @property
    def findings(self) -> list[Finding]:
        return [f for result in self.files for f in result.findings]

    @property
    def bytes_scanned(self) -> int:
        return sum(r.size for r in self.files if r.skipped is None)

    def all_skipped(self) -> list[Skipped]:
        return [*self.skipped, *(Skipped(r.path, r.skipped) for r in self.files if r.skipped is not None)]


class FileScanner:
    """Reads and scans one file at a time under one policy."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.engine = engine_for(policy)
        self.classifier = classifier_for(policy)
        self.salt = policy.detection.fingerprint_salt.encode()
        self.allowed = (
            pathspec.GitIgnoreSpec.from_lines(policy.scan.allow_paths) if policy.scan.allow_paths else None
        )

    def scan_path(self, path: Path, display: str) -> FileResult:
        try:
            size = path.stat().st_size
            if size > self.policy.scan.max_file_bytes:
                return FileResult(
                    display, size, skipped=f"larger than the {self.policy.scan.max_file_bytes} byte limit"
                )
            data = path.read_bytes()
        except OSError as exc:
            return FileResult(display, skipped=f"unreadable: {exc.strerror or exc}")
        return self.scan_bytes(data, display, path)

    def scan_bytes(self, data: bytes, display: str, path: Path | None = None) -> FileResult:
        decoded = decode(data)
        if decoded.kind == "binary":
            return FileResult(display, len(data), skipped="binary file")
        if decoded.kind == "dicom":
            return self._scan_dicom(data, display, path)
        # Bytes that decoded as strict UTF-8 are the text's encoding: no need to encode it again.
        encoded = data if decoded.encoding == "utf-8" and not decoded.invalid_utf8 else None
        findings = self.engine.scan(decoded.text, path=display, encoded=encoded)
        result = FileResult(display, len(data))
        if decoded.invalid_utf8:
            result.note = "invalid UTF-8 bytes were read as escapes (one character each)"
        elif decoded.encoding != "utf-8":
            result.note = f"decoded as {decoded.encoding}"
        self._finish(
            result,
            findings,
            encoded if encoded is not None else decoded.text.encode("utf-8", "surrogatepass"),
        )
        return result

    def _scan_dicom(self, data: bytes, display: str, path: Path | None) -> FileResult:
        try:
            values = list(dicom.read_header(path if path is not None else io.BytesIO(data)))
        except dicom.DicomError as exc:
            return FileResult(display, len(data), skipped=str(exc))
        findings = [
            Finding(
                path=display,
                start=v.start,
                end=v.end,
                line=1,
                column=v.start + 1,
                end_line=1,
                end_column=v.end + 1,
                category=v.category,
                rule=f"dicom.{v.category}",
                confidence=0.9,
                preview=mask(v.category, v.value),
                fingerprint=fingerprint(self.salt, v.category, display, v.value),
                binary_tag=v.tag,
            )
            for v in values
        ]
        result = FileResult(display, len(data), note="DICOM header read (pixel data not scanned)")
        self._finish(result, findings, None)
        return result

    def _finish(self, result: FileResult, findings: list[Finding], data: bytes | None) -> None:
        result.classification = self.classifier.classify(data, path=result.path, findings=findings)
        if self.allowed is not None and self.allowed.match_file(result.path):
            result.allowed = len(findings)
            findings = []
        result.findings = findings


# Each worker process keeps its own scanner; the policy arrives once, through the initializer.
_WORKER: dict[str, FileScanner] = {}


def _init_worker(policy: Policy) -> None:
    # A forked worker already holds the parent's warmed scanner; a spawned one builds its own.
    if "scanner" not in _WORKER:
        _WORKER["scanner"] = FileScanner(policy)


def _scan_chunk(items: list[tuple[str, str]]) -> list[FileResult]:
    scanner = _WORKER["scanner"]
    return [scanner.scan_path(Path(path), display) for path, display in items]


def _chunks(items: Sequence[Candidate], size: int) -> Iterator[list[tuple[str, str]]]:
    for start in range(0, len(items), size):
        yield [(str(c.path), c.display) for c in items[start : start + size]]


Progress = Callable[[int, int, int], None]
_WARM_UP_FILES = 64


def scan_files(
    candidates: Sequence[Candidate],
    policy: Policy,
    *,
    jobs: int = 1,
    progress: Progress | None = None,
) -> list[FileResult]:
    """Scan `candidates`; results in path order. `progress(done, total, bytes)` is called as work ends."""
    total = len(candidates)
    results: list[FileResult] = []
    scanned_bytes = 0
    if jobs <= 1 or total < 2 * jobs:
        scanner = FileScanner(policy)
        for done, candidate in enumerate(candidates, start=1):
            result = scanner.scan_path(candidate.path, candidate.display)
            results.append(result)
            scanned_bytes += result.size
            if progress is not None:
                progress(done, total, scanned_bytes)
        return results
    # The parent scans the first files itself: the compiled patterns and the automata they build
    # while reading are then inherited by every forked worker instead of being rebuilt in each.
    scanner = FileScanner(policy)
    warm = min(total // 4, _WARM_UP_FILES)
    for candidate in candidates[:warm]:
        result = scanner.scan_path(candidate.path, candidate.display)
        results.append(result)
        scanned_bytes += result.size
    if progress is not None:
        progress(len(results), total, scanned_bytes)
    rest = candidates[warm:]
    # Imported here: a serial scan does not pay for the process-pool machinery at start-up.
    import concurrent.futures
    import multiprocessing

    chunk = max(1, min(64, len(rest) // (jobs * 8)))
    fork = hasattr(os, "fork")
    context = multiprocessing.get_context("fork" if fork else "spawn")
    if fork:
        _WORKER["scanner"] = scanner
    try:
        with concurrent.futures.ProcessPoolExecutor(
            jobs, mp_context=context, initializer=_init_worker, initargs=(policy,)
        ) as pool:
            futures = [pool.submit(_scan_chunk, items) for items in _chunks(rest, chunk)]
            for future in concurrent.futures.as_completed(futures):
                batch = future.result()
                results.extend(batch)
                scanned_bytes += sum(r.size for r in batch)
                if progress is not None:
                    progress(len(results), total, scanned_bytes)
    finally:
        _WORKER.pop("scanner", None)
    results.sort(key=lambda r: r.path)
    return results


def with_min_confidence(policy: Policy, min_confidence: float | None) -> Policy:
    if min_confidence is None:
        return policy
    return dataclasses.replace(
        policy, detection=dataclasses.replace(policy.detection, min_confidence=min_confidence)
    )


def run(
    root: Path,
    candidates: Sequence[Candidate],
    skipped: Iterable[Skipped],
    policy: Policy,
    *,
    jobs: int = 1,
    progress: Progress | None = None,
) -> ScanReport:
    started = time.perf_counter()
    files = scan_files(candidates, policy, jobs=jobs, progress=progress)
    return ScanReport(
        str(root), files, list(skipped), time.perf_counter() - started, policy.detection.min_confidence
    )
