"""The `git` program, run as a subprocess: plumbing commands only, with stable, parseable output."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

# An empty tree: what an initial commit (or an empty repository) is compared against.
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
SUBMODULE_MODE = "160000"
SYMLINK_MODE = "120000"
# The pipe size asked for blob contents: the most an unprivileged process gets by default on Linux.
PIPE_BYTES = 1 << 20
SUBMODULE_NOTE = "submodule (not scanned here: run phiwarden in the submodule's own repository)"


class GitError(RuntimeError):
    """git failed or is missing; the message says what was run and what git said."""


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    # Plumbing output must not depend on the user's locale, pager or external diff drivers.
    env.update({"LC_ALL": "C", "GIT_PAGER": "cat", "GIT_EXTERNAL_DIFF": "", "GIT_TERMINAL_PROMPT": "0"})
    return env


@dataclass(frozen=True, slots=True)
class Git:
    """A repository's work tree root; every command runs there."""

    root: Path

    @classmethod
    def discover(cls, start: Path | None = None) -> Git:
        """The repository holding `start` (default: the current directory)."""
        if shutil.which("git") is None:
            raise GitError("git is not installed or not on PATH")
        where = (start or Path.cwd()).resolve()
        if where.is_file():
            where = where.parent
        try:
            out = subprocess.run(
                ["git", "rev-parse", "--show-toplevel"],
                cwd=where,
                capture_output=True,
                env=_environment(),
                check=False,
            )
        except OSError as exc:
            raise GitError(f"cannot run git: {exc}") from None
        if out.returncode != 0:
            raise GitError(f"{where} is not inside a git work tree")
        return cls(Path(out.stdout.decode("utf-8", "surrogateescape").strip()))

    def run(self, *args: str, input: bytes | None = None, check: bool = True) -> bytes:
        return self.collect(self.spawn(*args, input=input is not None), args, input=input, check=check)

    def spawn(self, *args: str, input: bool = False) -> subprocess.Popen[bytes]:
        """git running in the background; `collect` its output."""
        try:
            process = subprocess.Popen(
                ["git", "-c", "core.quotePath=false", *args],
                cwd=self.root,
                stdin=subprocess.PIPE if input else None,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=_environment(),
            )
        except OSError as exc:
            raise GitError(f"cannot run git: {exc}") from None
        assert process.stdout is not None
        _widen(process.stdout.fileno())
        return process

    def collect(
        self,
        process: subprocess.Popen[bytes],
        args: Sequence[str],
        *,
        input: bytes | None = None,
        check: bool = True,
    ) -> bytes:
        """The output of a `spawn`ed git; GitError if it failed (and `check`)."""
        stdout, stderr = process.communicate(input)
        if check and process.returncode != 0:
            message = stderr.decode("utf-8", "replace").strip().splitlines()
            raise GitError(
                f"git {' '.join(args[:3])} failed: {message[-1] if message else process.returncode}"
            )
        return stdout

    def text(self, *args: str, check: bool = True) -> str:
        return self.run(*args, check=check).decode("utf-8", "surrogateescape")

    def ok(self, *args: str) -> bool:
        try:
            out = subprocess.run(
                ["git", *args], cwd=self.root, capture_output=True, env=_environment(), check=False
            )
        except OSError:
            return False
        return out.returncode == 0

    def resolve(self, ref: str) -> str | None:
        """The commit id of `ref`, or None when it names no commit."""
        if ref.startswith("-"):
            return None
        out = self.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False).strip()
        return out.decode() or None

    def has_commits(self) -> bool:
        return self.resolve("HEAD") is not None

    def git_path(self, name: str) -> Path:
        """A path inside the git directory (`hooks`, `info/exclude`), honouring core.hooksPath etc."""
        path = Path(self.text("rev-parse", "--git-path", name).strip())
        return path if path.is_absolute() else self.root / path


def _widen(pipe: int) -> None:
    """A larger pipe lets git run ahead of a reader busy with the previous blobs (Linux only)."""
    try:
        import fcntl

        fcntl.fcntl(pipe, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, AttributeError, OSError):
        pass  # the default pipe works, with more waits


class BlobReader:
    """Blob contents through one long-lived `git cat-file --batch` (no process per blob)."""

    def __init__(self, git: Git) -> None:
        self._process = subprocess.Popen(
            ["git", "cat-file", "--batch"],
            cwd=git.root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_environment(),
        )
        assert self._process.stdout is not None
        _widen(self._process.stdout.fileno())

    def read(self, oid: str) -> bytes | None:
        """The content of object `oid`, or None when it does not exist."""
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(oid.encode() + b"\n")
        stdin.flush()
        header = stdout.readline()
        if not header or header.endswith(b" missing\n"):
            return None
        size = int(header.split()[2])
        data = stdout.read(size)
        stdout.read(1)  # the newline after each object
        return data

    def read_many(
        self, oids: Sequence[str], *, limit: int | None = None
    ) -> Iterator[tuple[str, bytes | None, int]]:
        """`(oid, content, size)` in order; content is None for a missing object or one over `limit`.

        Requests go out in batches, the next one written before the answers to the current one are
        read: git always has work queued while the caller handles a blob, and the two batches in
        flight fit in the pipe buffer, so writing never waits for git to read.
        """
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None and stdout is not None
        batch = 256
        chunks = [oids[start : start + batch] for start in range(0, len(oids), batch)]

        def request(chunk: Sequence[str]) -> None:
            stdin.write(b"".join(oid.encode() + b"\n" for oid in chunk))

        if chunks:
            request(chunks[0])
        for number, chunk in enumerate(chunks):
            if number + 1 < len(chunks):
                request(chunks[number + 1])
            stdin.flush()
            for oid in chunk:
                header = stdout.readline()
                if not header or header.endswith(b" missing\n"):
                    yield oid, None, 0
                    continue
                size = int(header.split()[2])
                if limit is not None and size > limit:
                    remaining = size + 1
                    while remaining:
                        remaining -= len(stdout.read(min(remaining, 1 << 20)))
                    yield oid, None, size
                    continue
                data = stdout.read(size)
                stdout.read(1)
                yield oid, data, size

    def close(self) -> None:
        # Output not read (after an error) must not keep git waiting on a full pipe.
        for pipe in (self._process.stdin, self._process.stdout):
            if pipe is not None:
                pipe.close()
        self._process.wait()

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
