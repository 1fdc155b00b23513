"""Which files a scan reads: walking directories with `.gitignore`, include and exclude globs.

Directory symlinks are not followed (no loops, no escaping the tree); a file that cannot be listed
or read is reported as skipped with its reason, never dropped silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pathspec

# Never worth reading: version-control internals.
_ALWAYS_SKIPPED_DIRS = frozenset({".git", ".hg", ".svn"})


@dataclass(frozen=True, slots=True)
class Candidate:
    """A file to scan: where it is and how to name it in reports."""

    path: Path
    display: str


@dataclass(frozen=True, slots=True)
class Skipped:
    display: str
    reason: str


@dataclass(frozen=True, slots=True)
class Selection:
    include: pathspec.GitIgnoreSpec | None
    exclude: pathspec.GitIgnoreSpec | None
    respect_gitignore: bool

    @classmethod
    def build(cls, include: Iterable[str], exclude: Iterable[str], respect_gitignore: bool) -> Selection:
        include, exclude = list(include), list(exclude)
        return cls(
            pathspec.GitIgnoreSpec.from_lines(include) if include else None,
            pathspec.GitIgnoreSpec.from_lines(exclude) if exclude else None,
            respect_gitignore,
        )

    def wanted(self, relative: str) -> bool:
        if self.exclude is not None and self.exclude.match_file(relative):
            return False
        return self.include is None or self.include.match_file(relative)


class _Ignores:
    """The `.gitignore` files met on the way down, each applying to its own directory."""

    def __init__(self) -> None:
        self._specs: list[tuple[str, pathspec.GitIgnoreSpec]] = []

    def load(self, directory: Path, relative: str, names: Iterable[str]) -> None:
        for name in names:
            try:
                lines = (directory / name).read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
            self._specs.append((relative, pathspec.GitIgnoreSpec.from_lines(lines)))

    def ignored(self, relative: str, is_dir: bool) -> bool:
        verdict = False
        for base, spec in self._specs:
            if base and not relative.startswith(base + "/"):
                continue
            inner = relative[len(base) + 1 :] if base else relative
            result = spec.check_file(inner + ("/" if is_dir else ""))
            if result.include is not None:
                verdict = result.include
        return verdict


def _repo_root(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        if (directory / ".git").exists():
            return directory
    return None


def walk(root: Path, selection: Selection, skipped: list[Skipped]) -> Iterator[Candidate]:
    """Files under `root` in sorted order, named relative to `root`."""
    ignores = _Ignores()
    if selection.respect_gitignore:
        repo = _repo_root(root.resolve())
        if repo is not None:
            exclude_file = repo / ".git" / "info" / "exclude"
            if exclude_file.is_file():
                ignores.load(exclude_file.parent, "", [exclude_file.name])
    yield from _walk_dir(root, "", selection, ignores, skipped)


def _walk_dir(
    directory: Path, relative: str, selection: Selection, ignores: _Ignores, skipped: list[Skipped]
) -> Iterator[Candidate]:
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        skipped.append(Skipped(relative or ".", f"cannot list directory: {exc.strerror or exc}"))
        return
    if selection.respect_gitignore and any(e.name == ".gitignore" for e in entries):
        ignores.load(directory, relative, [".gitignore"])
    for entry in entries:
        child = f"{relative}/{entry.name}" if relative else entry.name
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
            is_link = entry.is_symlink()
        except OSError as exc:
            skipped.append(Skipped(child, f"cannot stat: {exc.strerror or exc}"))
            continue
        if is_dir:
            if entry.name in _ALWAYS_SKIPPED_DIRS:
                continue
            if selection.respect_gitignore and ignores.ignored(child, True):
                continue
            if selection.exclude is not None and selection.exclude.match_file(child + "/"):
                continue
            yield from _walk_dir(Path(entry.path), child, selection, ignores, skipped)
            continue
        if selection.respect_gitignore and ignores.ignored(child, False):
            continue
        if not selection.wanted(child):
            continue
        if is_link:
            target = Path(entry.path)
            if not target.exists():
                skipped.append(Skipped(child, "broken symbolic link"))
                continue
            if target.is_dir():
                skipped.append(Skipped(child, "symbolic link to a directory (not followed)"))
                continue
        elif not entry.is_file(follow_symlinks=False):
            skipped.append(Skipped(child, "not a regular file"))
            continue
        yield Candidate(Path(entry.path), child)


def collect(paths: list[Path], selection: Selection, skipped: list[Skipped]) -> tuple[Path, list[Candidate]]:
    """The scanned root and the files to read for the PATHS given on the command line."""
    if len(paths) == 1 and paths[0].is_dir():
        root = paths[0]
        return root, list(walk(root, selection, skipped))
    root = Path.cwd()
    found: list[Candidate] = []
    for path in paths:
        if path.is_dir():
            prefix = _display(path, root)
            for item in walk(path, selection, skipped):
                found.append(
                    Candidate(item.path, f"{prefix}/{item.display}" if prefix != "." else item.display)
                )
        elif path.exists():
            found.append(Candidate(path, _display(path, root)))
        else:
            skipped.append(Skipped(str(path), "no such file or directory"))
    return root, found


def _display(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()
