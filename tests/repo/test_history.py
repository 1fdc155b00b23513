"""`scan --history` with a reader process, cut blobs and parallel scanners gives what a serial scan gives."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import multiprocessing.connection
import multiprocessing.queues
import signal
import subprocess
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from phiwarden.policy import Policy
from phiwarden.repo import history
from phiwarden.repo.command import load
from phiwarden.repo.git import Git, GitError
from phiwarden.scan.files import Selection
from phiwarden.scan.reader import decode
from tests.repo.conftest import MRN_LINE, SSN_LINE, Repo, make_repo, run_cli

LIMIT = 2048
FIXTURE = '{"patient": {"name": "Maria Gonzalez", "ssn": "512-44-8391", "mrn": "MRN-00482913"}}\n'


def _filler(prefix: str, count: int) -> list[str]:
    return [f"{prefix}_{i} = compute({i})\n" for i in range(count)]


def _dicom() -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.2")
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.PatientName = "Okonkwo^Marisol"
    dataset.PatientID = "MRN40981723"
    dataset.preamble = bytes(128)
    out = BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _history_repo(tmp_path: Path) -> tuple[Repo, Path]:
    """A history with each case the scan handles: a rename with edits, a merge, binary, DICOM,
    UTF-16, invalid UTF-8, CRLF, non-ASCII text before a value, a value on the first line and on
    a last line without a newline, a blob over the size limit and one whose parent is, moved
    lines, a submodule, a symbolic link, an excluded folder, and enough files for many batches."""
    repo = make_repo(tmp_path / "repo")
    app = _filler("app", 30)
    notes = ["# Zoë's café notes — naïve résumé\n", *(f"ligne {i}: déjà vu ✓\n" for i in range(12))]
    repo.write("app.py", "".join(app))
    repo.write("docs/notes.md", "".join(notes))
    repo.write("data/utf16.txt", ("x = 1\n" + SSN_LINE).encode("utf-16"))
    repo.write("bin/logo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    repo.write("scans/ct.dcm", _dicom())
    repo.write("big.txt", "".join(_filler("big", 200)))
    repo.write("grow.txt", "".join(_filler("grow", 200)))
    repo.write("vendor/lib.py", SSN_LINE)
    repo.write("crlf.txt", "".join(f"row {i}\r\n" for i in range(10)))
    repo.write("latin.txt", b"caf\xe9 = 1\n" * 5)
    for index in range(12):
        repo.write(f"pkg/mod_{index}.py", "".join(_filler(f"m{index}", 20)))
    (repo.root / "link").symlink_to("app.py")
    repo.commit("initial import")

    app.insert(15, MRN_LINE)
    repo.write("app.py", "".join(app))
    repo.write("docs/notes.md", "".join([*notes, SSN_LINE]))
    repo.write("crlf.txt", "".join(f"row {i}\r\n" for i in range(10)) + 'ssn = "512-44-8391"\r\n')
    repo.write("latin.txt", b"caf\xe9 = 1\n" * 5 + MRN_LINE.encode())
    repo.write("grow.txt", "".join(_filler("grow", 5)) + SSN_LINE)  # its parent is over the limit
    repo.write("tail.txt", "first\n" + MRN_LINE.rstrip("\n"))
    repo.commit("values mid-file, after non-ASCII text, on CRLF lines")

    repo.git("checkout", "-q", "-b", "feature")
    repo.git("mv", "app.py", "service.py")
    repo.write("service.py", "".join([SSN_LINE.replace("ssn", "ssn_first"), *app[1:]]))
    repo.write("fixtures/p.json", FIXTURE)
    for index in range(12):
        repo.write(f"pkg/mod_{index}.py", "".join([*_filler(f"m{index}", 20), f"tail_{index} = 1\n"]))
    repo.commit("a rename with an edit on the first line, a fixture, small edits")
    repo.git("checkout", "-q", "main")
    repo.write("tail.txt", "first, edited\n" + MRN_LINE.rstrip("\n"))
    repo.commit("main moves on")
    repo.git("merge", "-q", "--no-ff", "feature", "-m", "merge feature")

    moved = (repo.root / "docs/notes.md").read_text(encoding="utf-8").splitlines(keepends=True)
    repo.write("docs/notes.md", "".join(reversed(moved)))  # moved lines are not new
    repo.write("big.txt", "".join(_filler("big", 201)))
    sub = make_repo(tmp_path / "sub")
    sub.write("s.py", "y = 1\n")
    sub.commit("sub")
    repo.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub.root), "vendor/sub")
    repo.commit("moved lines, the big file again, a submodule")

    policy = tmp_path / "policy.toml"
    policy.write_text(f"[scan]\nmax_file_size = {LIMIT}\nexclude = ['vendor/**']\n", encoding="utf-8")
    return repo, policy


def _report(repo: Repo, policy: Path, jobs: int) -> dict[str, Any]:
    result = run_cli(
        repo.root, "scan", "--history", "--format", "json", "-j", str(jobs), "--policy", str(policy)
    )
    assert result.code == 1, result.err
    document: dict[str, Any] = json.loads(result.out)
    document["summary"].pop("seconds")
    document["history"].pop("seconds")
    return document


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of one task and a queue of one batch: many batches, a worker forked at the first."""
    monkeypatch.setattr(history, "BATCH_TASKS", 1)
    monkeypatch.setattr(history, "QUEUE_BATCHES", 1)


@pytest.mark.usefixtures("small_batches")
def test_parallel_history_scan_matches_the_serial_one(tmp_path: Path) -> None:
    repo, policy = _history_repo(tmp_path)
    serial = _report(repo, policy, 1)
    assert _report(repo, policy, 2) == serial
    assert _report(repo, policy, 3) == serial
    assert multiprocessing.active_children() == []


@pytest.mark.usefixtures("small_batches")
def test_history_reports_each_value_where_it_came_in(tmp_path: Path) -> None:
    repo, policy = _history_repo(tmp_path)
    document = _report(repo, policy, 2)
    by_path: dict[str, list[dict[str, Any]]] = {}
    for finding in document["findings"]:
        by_path.setdefault(finding["path"], []).append(finding)
    for path, findings in by_path.items():
        for finding in findings:
            if finding.get("binary_tag"):
                continue
            # Offsets and lines point into the blob of the commit that introduced the value.
            blob = subprocess.run(
                ["git", "show", f"{finding['commit']}:{path}"], cwd=repo.root, capture_output=True, check=True
            ).stdout
            text = decode(blob).text
            value = text[finding["start"] : finding["end"]]
            line = text.split("\n")[finding["line"] - 1]
            assert value and line[finding["column"] - 1 :].startswith(value), (path, finding)
    assert {"vendor/lib.py", "big.txt", "bin/logo.png"}.isdisjoint(by_path)
    assert {"app.py", "crlf.txt", "latin.txt", "grow.txt", "tail.txt", "data/utf16.txt"} <= set(by_path)
    assert {"scans/ct.dcm", "fixtures/p.json", "service.py"} <= set(by_path)
    assert [f["line"] for f in by_path["docs/notes.md"]] == [14]  # not again once moved
    assert [f["line"] for f in by_path["service.py"]] == [1]
    skipped = {s["path"].split("@")[0]: s["reason"] for s in document["skipped"]}
    assert skipped["big.txt"] == f"larger than the {LIMIT} byte limit"
    assert "submodule" in skipped["vendor/sub"]
    assert document["history"]["notes"] == ["1 binary blob(s) not scanned"]


def _scan(repo: Repo, policy: Path, feed: history.Feed | None, jobs: int) -> list[tuple[Any, ...]]:
    git = Git(repo.root)
    loaded = load(git, argparse.Namespace(policy=str(policy), min_confidence=None))
    selection = Selection.build(loaded.scan.include, loaded.scan.exclude, False)
    result = history.scan_history(git, loaded, selection=selection, jobs=jobs, feed=feed)
    return [
        (f.to_dict(), where.commit)
        for file, where in zip(result.report.files, result.introductions, strict=True)
        for f in file.findings
    ]


@pytest.mark.usefixtures("small_batches")
def test_a_worker_and_parents_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo, policy = _history_repo(tmp_path)
    serial = _scan(repo, policy, None, 1)
    monkeypatch.setattr(history, "PARENT_CACHE_BYTES", 0)  # every parent read again from git
    feed = history.start(Git(repo.root), jobs=2)
    assert feed is not None
    try:
        assert _scan(repo, policy, feed, 2) == serial
    finally:
        feed.close()
    assert len(feed.workers) == 1
    assert multiprocessing.active_children() == []


class _LateOrders(history._Orders):
    """Settings seen only after `polls` looks: the reader reads before them."""

    def __init__(self, control: multiprocessing.connection.Connection, polls: int) -> None:
        super().__init__(control)
        self.polls = polls

    def poll(self) -> history.Settings | None:
        if self.polls > 0:
            self.polls -= 1
            return None
        return super().poll()


@pytest.mark.parametrize(
    ("provisional", "held"),
    [(16 << 20, 32 << 20), (1000, 32 << 20), (16 << 20, 1)],
    ids=["read-ahead", "waits-at-a-large-blob", "waits-when-holding-enough"],
)
def test_reading_before_the_settings_is_kept_or_done_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, provisional: int, held: int
) -> None:
    monkeypatch.setattr(history, "SEGMENT_BLOBS", 4)
    monkeypatch.setattr(history, "PROVISIONAL_LIMIT", provisional)
    monkeypatch.setattr(history, "HELD_BYTES", held)
    repo, _ = _history_repo(tmp_path)
    git = Git(repo.root)
    listing = history.list_history(git, ("--all",))
    context = multiprocessing.get_context("fork")

    def send(settings: history.Settings, polls: int) -> tuple[history.Accounting, list[Any]]:
        tasks: multiprocessing.queues.Queue[history.Batch | None] = context.Queue()
        progress = history._Progress(context)
        receiver, sender = context.Pipe()
        sender.send(settings)
        batches = history._Batches(tasks, progress)
        accounting = history._send_tasks(git, listing, _LateOrders(receiver, polls), batches)
        assert progress.done
        sent = [task for _ in range(progress.sent) for task in tasks.get(timeout=10) or []]
        tasks.close()
        tasks.join_thread()
        return accounting, sent

    selection = Selection.build([], ["vendor/**"], False)
    # Below the size of a blob read early: reading starts over; above every blob: kept.
    for limit in (LIMIT, 1 << 20):
        at_once = send(history.Settings(limit, selection), 0)
        assert (limit == LIMIT) == bool(at_once[0].skips)
        for polls in (1, 3, 1000):
            assert send(history.Settings(limit, selection), polls) == at_once


def test_the_reader_stops_waiting_when_its_parent_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history, "_POLL_SECONDS", 0.01)
    context = multiprocessing.get_context("fork")
    full: multiprocessing.queues.Queue[history.Batch | None] = context.Queue(1)
    full.put(None)
    receiver, _sender = context.Pipe()
    gone = -1  # not this process's parent
    with pytest.raises(history._Orphaned):
        history._put(full, [], gone)
    with pytest.raises(history._Orphaned):
        history._recv(receiver, gone)
    assert full.get(timeout=5) is None
    full.close()
    full.join_thread()


def test_listing_errors_are_reported_whichever_process_lists(repo: Repo) -> None:
    repo.write("a.py", "x = 1\n")
    repo.commit("init")
    for jobs in (1, 2):
        with pytest.raises(GitError, match="cannot list the history"):
            history.scan_history(Git(repo.root), Policy(), revisions=("--no-such-option",), jobs=jobs)
    assert multiprocessing.active_children() == []


@pytest.fixture(params=["default", "ignored"])
def sigterm(request: pytest.FixtureRequest) -> Iterator[str]:
    """SIGTERM as the process had it: an embedding program (or a command run earlier in the same
    process) may have installed a handler that does not exit; a forked child inherits it."""
    if request.param == "default":
        yield request.param
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        yield request.param
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.usefixtures("sigterm")
def test_a_policy_error_stops_the_reader(repo: Repo, tmp_path: Path) -> None:
    repo.write("a.py", SSN_LINE)
    repo.commit("init")
    bad = tmp_path / "bad.toml"
    bad.write_text("[scan]\nmax_file_size = 'lots'\n", encoding="utf-8")
    result = run_cli(repo.root, "scan", "--history", "-j", "2", "--policy", str(bad))
    assert result.code == 2 and "max_file_size" in result.err
    assert multiprocessing.active_children() == []


def _check_cut(old: bytes, new: bytes) -> None:
    """`new_lines` and `cut` against a line-by-line reference (what the history scan did before)."""
    lines = new.split(b"\n")
    expected = [i for i, line in enumerate(lines) if line and line not in set(old.split(b"\n"))]
    found = history.new_lines(new, old)
    assert [index for index, _ in found] == expected
    for index, start in found:  # each line's offset
        assert new[start : start + len(lines[index])] == lines[index] and new[start - 1 : start] in (
            b"",
            b"\n",
        )
    if not expected:
        return
    task = history.cut(7, "f.txt", new, found)
    kept = set(range(min(history.HEAD_LINES, len(lines))))
    for index in expected:
        kept.update(range(max(0, index - history.CONTEXT_LINES), index + history.CONTEXT_LINES + 1))
    order = sorted(kept & set(range(len(lines))))
    assert task.text == b"\n".join(lines[i] for i in order)
    assert [order[i] for i in task.added] == expected
    text_lines = task.text.split(b"\n")
    for text_line, blob_line, blob_char in task.spans:
        assert order[text_line] == blob_line
        assert blob_char == len("\n".join(line.decode() for line in lines[:blob_line])) + (blob_line > 0)
        assert text_lines[text_line] == lines[blob_line]


def test_a_new_line_anywhere_in_a_file() -> None:
    body = [f"línea {i}" for i in range(24)]
    for newline in (b"", b"\n"):
        old = "\n".join(body).encode() + newline
        for at in range(len(body) + 1):
            _check_cut(old, "\n".join([*body[:at], "ssn = 1", *body[at:]]).encode() + newline)
            _check_cut(old, "\n".join([*body[:at], "ssn = 1", *body[at + 1 :]]).encode() + newline)


_LINES = st.lists(st.sampled_from(["", "a", "b", "é", "ssn = 1", "  x", "a b", "\r"]), max_size=30)
_EDITS = st.lists(st.tuples(st.integers(0, 40), st.sampled_from(["", "c", "é", "a"])), max_size=6)


@settings(max_examples=300, deadline=None)
@given(parent=_LINES, edits=_EDITS, keep=st.integers(0, 40), newline=st.booleans())
def test_cut_blobs_match_a_line_by_line_reference(
    parent: list[str], edits: list[tuple[int, str]], keep: int, newline: bool
) -> None:
    child = list(parent)
    for at, line in edits:  # a line inserted, or one deleted
        if line and at <= len(child):
            child.insert(at, line)
        elif child:
            del child[at % len(child)]
    child = child[: max(keep, len(child) - 3)]
    old = "\n".join(parent).encode()
    new = ("\n".join(child) + ("\n" if newline else "")).encode()
    if new != old:
        _check_cut(old, new)
