"""Walking, reading and skipping: nothing is dropped silently, nothing crashes."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from phiwarden.policy import Policy, parse_policy
from phiwarden.scan.files import Selection, Skipped, collect
from phiwarden.scan.reader import decode
from phiwarden.scan.runner import FileScanner, run

PHI = 'patient_ssn = "518-42-7731"\n'


def _tree(root: Path, files: Mapping[str, str | bytes]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def _walk(
    root: Path, *, include: Sequence[str] = (), exclude: Sequence[str] = (), gitignore: bool = True
) -> tuple[list[str], list[Skipped]]:
    skipped: list[Skipped] = []
    selection = Selection.build(include, exclude, gitignore)
    _, found = collect([root], selection, skipped)
    return [c.display for c in found], skipped


def test_gitignore_at_every_level(tmp_path: Path) -> None:
    (tmp_path / ".git" / "info").mkdir(parents=True)
    (tmp_path / ".git" / "info" / "exclude").write_text("secret-notes.txt\n")
    _tree(
        tmp_path,
        {
            ".gitignore": "*.log\nbuild/\n!keep.log\n",
            "a.py": "x",
            "app.log": "x",
            "keep.log": "x",
            "build/out.txt": "x",
            "secret-notes.txt": "x",
            "sub/.gitignore": "local.txt\n",
            "sub/local.txt": "x",
            "sub/other.txt": "x",
            "other/local.txt": "x",
        },
    )
    names, _ = _walk(tmp_path)
    assert names == [".gitignore", "a.py", "keep.log", "other/local.txt", "sub/.gitignore", "sub/other.txt"]
    everything, _ = _walk(tmp_path, gitignore=False)
    assert "app.log" in everything and "build/out.txt" in everything


def test_include_and_exclude_globs(tmp_path: Path) -> None:
    _tree(tmp_path, {"src/a.py": "x", "src/b.js": "x", "vendor/c.py": "x", "docs/d.md": "x"})
    names, _ = _walk(tmp_path, include=["*.py"], exclude=["vendor/"])
    assert names == ["src/a.py"]


def test_symlink_loops_and_broken_links_are_reported(tmp_path: Path) -> None:
    _tree(tmp_path, {"real/a.txt": PHI})
    (tmp_path / "real" / "loop").symlink_to(tmp_path / "real", target_is_directory=True)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "alias.txt").symlink_to(tmp_path / "real" / "a.txt")
    names, skipped = _walk(tmp_path)
    assert names == ["alias.txt", "real/a.txt"]
    reasons = {s.display: s.reason for s in skipped}
    assert reasons["dangling"] == "broken symbolic link"
    assert reasons["real/loop"] == "symbolic link to a directory (not followed)"


def test_special_files_are_skipped_with_a_reason(tmp_path: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "agent.sock"))
    try:
        _, skipped = _walk(tmp_path)
    finally:
        server.close()
    assert [(s.display, s.reason) for s in skipped] == [("agent.sock", "not a regular file")]


def test_missing_paths_are_reported(tmp_path: Path) -> None:
    skipped: list[Skipped] = []
    collect([tmp_path / "a.txt", tmp_path / "nope.txt"], Selection.build([], [], True), skipped)
    assert [s.reason for s in skipped] == ["no such file or directory", "no such file or directory"]


def test_unreadable_files_are_counted_not_fatal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(tmp_path, {"ok.txt": PHI, "locked.txt": PHI})
    original = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "locked.txt":
            raise PermissionError(13, "Permission denied")
        return original(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    skipped: list[Skipped] = []
    root, found = collect([tmp_path], Selection.build([], [], True), skipped)
    report = run(root, found, skipped, Policy())
    assert [(s.display, s.reason) for s in report.all_skipped()] == [
        ("locked.txt", "unreadable: Permission denied")
    ]
    assert len(report.findings) == 1


@pytest.mark.parametrize(
    ("data", "kind", "invalid"),
    [
        (b"plain text\n", "text", False),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200), "binary", False),
        (b"log line\n" * 50 + b"a stray \x00 NUL\n", "text", False),
        (b"caf\xe9 latin-1 bytes\n", "text", False),  # read as Windows-1252
        (b"caf\xc3\xa9 then a stray \xff\n", "text", True),
        ("ssn = 518-42-7731\n".encode("utf-16"), "text", False),
        (bytes(128) + b"DICM" + bytes(64), "dicom", False),
    ],
)
def test_decoding(data: bytes, kind: str, invalid: bool) -> None:
    decoded = decode(data)
    assert decoded.kind == kind
    assert decoded.invalid_utf8 is invalid


def test_invalid_utf8_is_scanned_and_noted() -> None:
    data = b'caf\xc3\xa9 \xfa\xfb\xfc garbage\nssn = "518-42-7731"\n'
    result = FileScanner(Policy()).scan_bytes(data, "bad.txt")
    assert result.skipped is None
    assert result.note is not None and "invalid UTF-8" in result.note
    assert [f.category for f in result.findings] == ["ssn"]
    # Offsets count each undecodable byte as one character.
    assert result.findings[0].start == len('café \xfa\xfb\xfc garbage\nssn = "')


def test_single_byte_exports_are_read_as_windows_1252() -> None:
    data = "Nachname;Vorname;Geburtsdatum\nMüller;Jürgen;14.03.1961\n".encode("cp1252")
    result = FileScanner(Policy()).scan_bytes(data, "export.csv")
    assert result.note == "decoded as windows-1252"
    text = data.decode("cp1252")
    assert {text[f.start : f.end] for f in result.findings} == {"Müller", "Jürgen", "14.03.1961"}


def test_utf16_files_are_decoded() -> None:
    result = FileScanner(Policy()).scan_bytes('patient_ssn = "518-42-7731"\n'.encode("utf-16"), "w.txt")
    assert [f.category for f in result.findings] == ["ssn"]
    assert result.note == "decoded as utf-16"


def test_binary_files_are_skipped_and_counted(tmp_path: Path) -> None:
    _tree(tmp_path, {"logo.png": b"\x89PNG\r\n\x1a\n" + bytes(500), "a.txt": PHI})
    skipped: list[Skipped] = []
    root, found = collect([tmp_path], Selection.build([], [], True), skipped)
    report = run(root, found, skipped, Policy())
    assert [(s.display, s.reason) for s in report.all_skipped()] == [("logo.png", "binary file")]


def test_size_limit_skips_with_a_reason(tmp_path: Path) -> None:
    _tree(tmp_path, {"big.csv": "x" * 5000, "small.txt": PHI})
    policy = parse_policy("[scan]\nmax_file_size = 1000\n")
    skipped: list[Skipped] = []
    root, found = collect([tmp_path], Selection.build([], [], True), skipped)
    report = run(root, found, skipped, policy)
    assert [(s.display, s.reason) for s in report.all_skipped()] == [
        ("big.csv", "larger than the 1000 byte limit")
    ]


def test_parallel_and_serial_scans_agree(tmp_path: Path) -> None:
    files = {f"dir{i % 7}/f{i}.py": (PHI if i % 3 == 0 else "x = 1\n") for i in range(120)}
    _tree(tmp_path, files)
    skipped: list[Skipped] = []
    root, found = collect([tmp_path], Selection.build([], [], True), skipped)
    serial = run(root, found, skipped, Policy(), jobs=1)
    parallel = run(root, found, skipped, Policy(), jobs=4)
    assert [f.to_dict() for f in serial.findings] == [f.to_dict() for f in parallel.findings]
    assert len(serial.findings) == 40


def test_allowed_paths_suppress_and_count(tmp_path: Path) -> None:
    _tree(tmp_path, {"tests/fixtures/synthetic/p.py": PHI, "src/p.py": PHI})
    policy = parse_policy('[scan]\nallow_paths = ["tests/fixtures/synthetic/**"]\n')
    skipped: list[Skipped] = []
    root, found = collect([tmp_path], Selection.build([], [], True), skipped)
    report = run(root, found, skipped, policy)
    assert [f.path for f in report.findings] == ["src/p.py"]
    assert sum(r.allowed for r in report.files) == 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    _, skipped = _walk(tmp_path)
    assert [(s.display, s.reason) for s in skipped] == [("pipe", "not a regular file")]


def test_fifty_megabyte_single_line_file(tmp_path: Path) -> None:
    line = ("x" * 4096 + " ") * (50 * 1024 * 1024 // 4097) + 'patient_ssn="518-42-7731"'
    (tmp_path / "dump.txt").write_text(line, encoding="utf-8")
    skipped: list[Skipped] = []
    root, found = collect([tmp_path], Selection.build([], [], True), skipped)
    report = run(root, found, skipped, Policy())
    assert [(f.category, f.line) for f in report.findings] == [("ssn", 1)]
    assert report.findings[0].column == len(line) - len('518-42-7731"') + 1


def test_deeply_nested_json_file(tmp_path: Path) -> None:
    (tmp_path / "deep.json").write_text("[" * 200_000 + '{"ssn": "518-42-7731"}' + "]" * 200_000)
    result = FileScanner(Policy()).scan_path(tmp_path / "deep.json", "deep.json")
    assert [f.category for f in result.findings] == ["ssn"]
