"""What a change adds: the files of a diff with their new blobs and the line numbers of added lines.

One `git diff --raw -p -U0 -z` call gives both: the raw records (modes, blob ids, status, paths,
unmangled by -z) and, in the same order, one patch section per record whose hunk headers name the
added lines of the new file. Zipping by order avoids parsing (quoted, tab-suffixed) paths in the
patch text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from phiwarden.repo.git import EMPTY_TREE, SUBMODULE_MODE, Git, GitError

ZERO_OID = "0" * 40


@dataclass(frozen=True, slots=True)
class Change:
    status: str  # A added, M modified, R renamed, C copied, T type changed, D deleted
    path: str
    old_path: str | None
    old_mode: str
    new_mode: str
    old_oid: str
    new_oid: str
    # Line numbers (1-based, in the new file) of added lines; None when all of the file is new.
    added: frozenset[int] | None
    binary: bool = False

    @property
    def is_submodule(self) -> bool:
        return self.new_mode == SUBMODULE_MODE

    @property
    def adds_content(self) -> bool:
        if self.status == "D":
            return False
        return self.added is None or bool(self.added) or self.binary


RawRecord = tuple[str, str, str, str, str, str, str | None]


def read_raw_record(tokens: Sequence[bytes], index: int) -> tuple[RawRecord, int]:
    """The `-z --raw` record at `tokens[index]` and the index after it.

    A record is `(old_mode, new_mode, old_oid, new_oid, status, path, old_path)`; only renames and
    copies carry an old path.
    """
    old_mode, new_mode, old_oid, new_oid, status = tokens[index][1:].decode().split(" ")[:5]
    kind = status[:1]
    if kind in ("R", "C"):
        old_path: str | None = tokens[index + 1].decode("utf-8", "surrogateescape")
        path = tokens[index + 2].decode("utf-8", "surrogateescape")
        return (old_mode, new_mode, old_oid, new_oid, kind, path, old_path), index + 3
    path = tokens[index + 1].decode("utf-8", "surrogateescape")
    return (old_mode, new_mode, old_oid, new_oid, kind, path, None), index + 2


def _parse_raw(tokens: list[bytes]) -> tuple[list[RawRecord], int]:
    """Raw records and where they end."""
    records = []
    index = 0
    while index < len(tokens) and tokens[index].startswith(b":"):
        record, index = read_raw_record(tokens, index)
        records.append(record)
    return records, index


def _hunk_lines(section: bytes) -> tuple[frozenset[int], bool]:
    """Added line numbers from the `@@ -a,b +c,d @@` headers of one file's patch; is it binary?"""
    added: set[int] = set()
    binary = False
    for line in section.split(b"\n"):
        if line.startswith(b"@@ "):
            new = line.split(b" ")[2]  # "+c,d" or "+c"
            start, _, count = new[1:].partition(b",")
            first = int(start)
            number = int(count) if count else 1
            added.update(range(first, first + number))
        elif line.startswith(b"Binary files ") or line == b"GIT binary patch":
            binary = True
    return frozenset(added), binary


def parse(output: bytes) -> list[Change]:
    raw_part, separator, patch = output.partition(b"\x00\x00diff --git ")
    tokens = raw_part.split(b"\x00")
    records, _ = _parse_raw(tokens)
    sections = (b"diff --git " + patch).split(b"\ndiff --git ") if separator else []
    if sections and len(sections) != len(records):
        raise GitError(f"unexpected diff output: {len(records)} files but {len(sections)} patches")
    changes = []
    for index, (old_mode, new_mode, old_oid, new_oid, kind, path, old_path) in enumerate(records):
        added, binary = _hunk_lines(sections[index]) if sections else (frozenset(), False)
        whole = kind in ("A", "T") or old_mode == "000000"
        changes.append(
            Change(
                status=kind,
                path=path,
                old_path=old_path,
                old_mode=old_mode,
                new_mode=new_mode,
                old_oid=old_oid,
                new_oid=new_oid,
                added=None if whole else added,
                binary=binary,
            )
        )
    return changes


_DIFF_OPTIONS = ("--raw", "-p", "-z", "-U0", "--no-abbrev", "--no-color", "--no-ext-diff", "--no-textconv",
                 "-M", "--ignore-submodules=none", "--submodule=short")  # fmt: skip


def staged(git: Git, paths: Sequence[str] = ()) -> list[Change]:
    """What `git commit` would add: the index against HEAD (or against nothing in a new repository)."""
    base = "HEAD" if git.has_commits() else EMPTY_TREE
    return parse(git.run("diff", "--cached", *_DIFF_OPTIONS, base, "--", *paths))


def between(git: Git, base: str, head: str, *, merge_base: bool, paths: Sequence[str] = ()) -> list[Change]:
    """Changes from `base` to `head`; with `merge_base`, from their common ancestor (like `A...B`)."""
    for ref in (base, head):
        if git.resolve(ref) is None:
            raise GitError(f"{ref!r} is not a commit in this repository")
    spec = f"{base}...{head}" if merge_base else f"{base}..{head}"
    return parse(git.run("diff", *_DIFF_OPTIONS, spec, "--", *paths))


def split_range(text: str) -> tuple[str, str, bool]:
    """`A..B`, `A...B` (merge base), `A..` (to HEAD) or `A` (A to HEAD) -> (base, head, merge_base)."""
    if "..." in text:
        base, _, head = text.partition("...")
        return base or "HEAD", head or "HEAD", True
    if ".." in text:
        base, _, head = text.partition("..")
        return base or "HEAD", head or "HEAD", False
    return text, "HEAD", False
