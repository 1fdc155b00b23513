"""Which files a shell command reads or changes, for the per-file access record of shell tool calls.

Agents run shell commands as tool calls: Claude Code's Bash (`command`), Codex's `shell` function
(`command: ["bash", "-lc", "…"]`), the Responses API's `local_shell_call` (an argv) and `shell_call`
(command lines). A command line is split as a POSIX shell would (`shlex`): pipelines, `&&`, `||`,
`;`, newlines, subshells and `$(…)`, redirections (`>`, `>>`, `<`, `&>`), here-documents, wrappers
(`sudo`, `env`, `timeout 10`), `bash -lc "…"` read in turn. Which words of a command name files, and
whether it reads or changes them, is data (`data/shell.toml`); unknown commands name no file, but
their redirections still do.

This is a record, not a sandbox: a command that hides its files (variables, `eval`, `xargs`, a script)
is recorded by what it shows. Parsing is bounded (characters, words, nesting, files) and never raises.
"""

from __future__ import annotations

import functools
import shlex
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

MAX_COMMAND_CHARS = 16_384
MAX_WORDS = 4_096
MAX_DEPTH = 3
MAX_FILES = 64

_OPERATORS = "();<>|&\n"
# Words that end one simple command (`$` opens `$(…)`, whose command is read like any other; a run
# of operators that is no redirection is read as "\n").
_SEPARATORS = frozenset({"\n", "$"})
_WRITES = frozenset({">", ">>", ">|", "&>", "&>>", "<>", ">&"})
_READS = frozenset({"<"})
_HEREDOCS = frozenset({"<<", "<<-"})
_SKIP_TARGET = frozenset({"<<<", "<&"})
_REDIRECTS = _WRITES | _READS | _HEREDOCS | _SKIP_TARGET
_DEVICE = "/dev/"
_PATCH_MARKERS = ("*** Update File: ", "*** Add File: ", "*** Delete File: ", "*** Move to: ")


@dataclass(frozen=True, slots=True)
class Access:
    path: str
    operation: str  # read, write
    program: str  # the command (or "redirect") that names the file


@dataclass(frozen=True, slots=True)
class _Command:
    operation: str
    operands: str
    last: str | None = None
    values: frozenset[str] = frozenset()  # every option that takes a value
    script_options: frozenset[str] = frozenset()
    file_options: frozenset[str] = frozenset()
    output_options: frozenset[str] = frozenset()
    write_options: frozenset[str] = frozenset()
    stop_options: frozenset[str] = frozenset()
    shell: bool = False
    stdin_patch: bool = False
    plus_options: bool = False
    prints: bool = False


@dataclass(frozen=True, slots=True)
class _Wrappers:
    names: frozenset[str]
    values: frozenset[str]
    operands: int


@dataclass(frozen=True, slots=True)
class _Table:
    commands: dict[str, _Command]
    git_values: frozenset[str]
    wrappers: tuple[_Wrappers, ...]
    keywords: frozenset[str]


@functools.cache
def _table() -> _Table:
    text = resources.files("phiwarden.gateway").joinpath("data", "shell.toml").read_text("utf-8")
    data = tomllib.loads(text)
    commands: dict[str, _Command] = {}
    for entry in data["command"]:
        options = {
            key: frozenset(entry.get(key, ()))
            for key in ("script_options", "file_options", "output_options", "write_options", "stop_options")
        }
        command = _Command(
            operation=entry["operation"],
            operands=entry["operands"],
            last=entry.get("last"),
            values=frozenset(entry.get("value_options", ())).union(
                options["script_options"],
                options["file_options"],
                options["output_options"],
                options["stop_options"],
            ),
            shell=entry.get("shell", False),
            stdin_patch=entry.get("stdin_patch", False),
            plus_options=entry.get("plus_options", False),
            prints=entry.get("prints", False),
            **options,
        )
        for name in entry["names"]:
            commands[name] = command
    return _Table(
        commands=commands,
        git_values=frozenset(data["git"]["value_options"]),
        wrappers=(
            _Wrappers(frozenset(data["wrappers"]["names"]), frozenset(data["wrappers"]["value_options"]), 0),
            _Wrappers(
                frozenset(data["wrappers_with_operand"]["names"]),
                frozenset(data["wrappers_with_operand"]["value_options"]),
                1,
            ),
        ),
        keywords=frozenset(data["keywords"]["names"]),
    )


def command_line(text: str, *, depth: int = 0) -> list[Access]:
    """The files a command line (as a shell reads it) reads or changes."""
    if depth > MAX_DEPTH:
        return []
    text, bodies = _heredocs(text[:MAX_COMMAND_CHARS].replace("`", "\n"))
    text = _without_comments(text)
    out: list[Access] = []
    for words, redirects, stdin in _simple_commands(list(_words(text)), iter(bodies)):
        out.extend(_command(words, stdin, depth))
        out.extend(Access(path, operation, "redirect") for path, operation in redirects)
    return _unique(out)


def prints_content(program: str) -> bool:
    """Whether what `program` prints is the content of the files it reads (cat, head, grep, sed -n):
    then its output is that content, as a Read tool's result is, and is classified with the path."""
    command = _table().commands.get(program)
    return command is not None and command.prints


def argv(words: Sequence[str]) -> list[Access]:
    """The files a command run without a shell (an argv) reads or changes."""
    return _unique(_command(list(words[:MAX_WORDS]), [], 0))


def patch_paths(text: str) -> list[str]:
    """The files a patch changes: the apply_patch format (`*** Update File: PATH`) or a unified diff
    (`--- a/PATH` then `+++ b/PATH`; the first when the second is /dev/null, a deleted file)."""
    out: list[str] = []
    previous = ""
    for line in text.splitlines():
        marker = next((m for m in _PATCH_MARKERS if line.startswith(m)), None)
        if marker is not None:
            out.append(line[len(marker) :].strip())
        elif line.startswith("+++ ") and previous.startswith("--- "):
            added, removed = _diff_path(line[4:]), _diff_path(previous[4:])
            out.append(removed if added == "/dev/null" else added)
        previous = line
    return [p for p in dict.fromkeys(out) if p and p != "/dev/null"]


def _diff_path(text: str) -> str:
    path = text.split("\t", 1)[0].strip()
    return path[2:] if path.startswith(("a/", "b/")) else path


def _heredocs(text: str) -> tuple[str, list[str]]:
    """The command line without its here-document bodies, and the bodies in order."""
    if "<<" not in text:
        return text, []
    kept: list[str] = []
    bodies: list[str] = []
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        kept.append(line)
        index += 1
        for delimiter in _delimiters(line):
            body: list[str] = []
            while index < len(lines) and lines[index].strip() != delimiter:
                body.append(lines[index])
                index += 1
            index += 1  # the delimiter line
            bodies.append("\n".join(body))
    return "\n".join(kept), bodies


def _delimiters(line: str) -> list[str]:
    out = []
    position = line.find("<<")
    while position != -1:
        after = position + 2
        if line.startswith("<", after):  # a here-string (<<<): no body
            position = line.find("<<", after + 1)
            continue
        if line.startswith("-", after):
            after += 1
        while after < len(line) and line[after] in " \t":
            after += 1
        end = after
        while end < len(line) and line[end] not in " \t;|&<>()":
            end += 1
        word = line[after:end].replace("'", "").replace('"', "").replace("\\", "")
        if word:
            out.append(word)
        position = line.find("<<", max(end, after + 1))
    return out


def _without_comments(text: str) -> str:
    """The command line without its comments: from a `#` that starts a word, outside quotes, to the
    end of its line (`grep '#include' f` keeps its pattern)."""
    if "#" not in text:
        return text
    out: list[str] = []
    quote = ""
    index = 0
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\" and quote == '"':
                out.append(text[index : index + 2])
                index += 2
                continue
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "\\":
            out.append(text[index : index + 2])
            index += 2
            continue
        elif char == "#" and (index == 0 or text[index - 1] in " \t\n;&|()"):
            end = text.find("\n", index)
            index = len(text) if end == -1 else end
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _words(text: str) -> Iterator[str]:
    lexer = shlex.shlex(text, posix=True, punctuation_chars=_OPERATORS)
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    lexer.commenters = ""
    count = 0
    while count < MAX_WORDS:
        try:
            word = lexer.get_token()
        except ValueError:  # an unclosed quote or a trailing backslash: what came before it counts
            return
        if word is None or word == lexer.eof:
            return
        count += 1
        if word and all(c in _OPERATORS for c in word):
            # A run of operator characters is one word ("&&\n", ";\n\n", "<("): newlines and
            # what is left either end the command or are a redirection.
            word = word.replace("\n", "") or "\n"
            if word not in _REDIRECTS:
                word = "\n"
        yield word


Redirect = tuple[str, str]


def _simple_commands(
    words: list[str], bodies: Iterator[str]
) -> Iterator[tuple[list[str], list[Redirect], list[str]]]:
    """(words, redirections, here-document bodies) of each simple command."""
    current: list[str] = []
    redirects: list[Redirect] = []
    stdin: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word in _REDIRECTS and index < len(words) and words[index] not in _SEPARATORS:
            target = words[index]
            index += 1
            if current and current[-1].isdigit():  # 2>/dev/null: the number is a descriptor
                current.pop()
            if word in _HEREDOCS:
                stdin.append(next(bodies, ""))
            elif word not in _SKIP_TARGET and not _not_a_file(target):
                redirects.append((target, "read" if word in _READS else "write"))
            continue
        if word in _SEPARATORS or word in _REDIRECTS:
            if current or redirects:
                yield current, redirects, stdin
            current, redirects, stdin = [], [], []
            continue
        current.append(word)
    if current or redirects:
        yield current, redirects, stdin


def _not_a_file(target: str) -> bool:
    """>&2, >/dev/null, <&-: a descriptor or a device."""
    return target.startswith(("&", _DEVICE)) or target.isdigit() or target == "-"


def _program(words: list[str]) -> str | None:
    return words[0].rpartition("/")[2] if words else None


def _strip_prefix(words: list[str]) -> list[str]:
    """The command itself: without assignments (A=1), keywords (if, then, !) and wrappers (sudo)."""
    table = _table()
    index = 0
    while index < len(words):
        word = words[index]
        name = word.rpartition("/")[2]
        if word in table.keywords or _is_assignment(word):
            index += 1
            continue
        wrapper = next((w for w in table.wrappers if name in w.names), None)
        if wrapper is None:
            break
        index += 1
        operands = wrapper.operands
        while index < len(words):
            word = words[index]
            if word.startswith("-") and len(word) > 1:
                index += 1
                name = word.lstrip("-").partition("=")[0]
                if "=" not in word and (name in wrapper.values or name[-1:] in wrapper.values):
                    index += 1
            elif _is_assignment(word):
                index += 1
            elif operands:
                operands -= 1
                index += 1
            else:
                break
    return words[index:]


def _is_assignment(word: str) -> bool:
    name, equals, _ = word.partition("=")
    return bool(equals) and name.isidentifier()


@dataclass(slots=True)
class _Parsed:
    operands: list[str] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    write: bool = False
    script: bool = False
    run_string: bool = False  # sh -c
    dashdash: int | None = None


def _command(words: list[str], stdin: list[str], depth: int) -> list[Access]:
    words = _strip_prefix(words)
    program = _program(words)
    if program is None:
        return []
    table = _table()
    args = words[1:]
    if program == "git":
        args = _git_subcommand(args)
        if not args:
            return []
        program = f"git {args[0]}"
        args = args[1:]
    command = table.commands.get(program)
    if command is None:
        return []
    parsed = _options(command, args)
    if command.shell and parsed.run_string:
        inner = command_line(parsed.operands[0], depth=depth + 1) if parsed.operands else []
        return inner + [Access(p, "read", program) for p in parsed.reads]
    operation = "write" if parsed.write else command.operation
    out = [Access(p, "read", program) for p in parsed.reads]
    out += [Access(p, "write", program) for p in parsed.writes]
    operands = _file_operands(command, parsed)
    if command.operands == "patch":
        out += [Access(p, "write", program) for text in operands for p in patch_paths(text)]
    elif command.last == "write" and not parsed.writes and len(operands) > 1:
        out += [Access(p, operation, program) for p in operands[:-1]]
        out.append(Access(operands[-1], "write", program))
    else:
        out += [Access(p, operation, program) for p in operands]
    if command.stdin_patch:
        out += [Access(p, "write", program) for body in stdin for p in patch_paths(body)]
    return out


def _git_subcommand(args: list[str]) -> list[str]:
    values = _table().git_values
    index = 0
    while index < len(args) and args[index].startswith("-"):
        name = args[index].lstrip("-").partition("=")[0]
        index += 2 if "=" not in args[index] and name in values else 1
    return args[index:]


def _options(command: _Command, args: list[str]) -> _Parsed:
    parsed = _Parsed()
    index = 0
    while index < len(args):
        word = args[index]
        index += 1
        if parsed.dashdash is not None or word == "-" or not word.startswith("-"):
            if command.plus_options and word.startswith("+") and parsed.dashdash is None:
                continue
            if word != "-":
                parsed.operands.append(word)
            continue
        if word == "--":
            parsed.dashdash = len(parsed.operands)
            continue
        if word.startswith("--"):
            name, equals, value = word[2:].partition("=")
            if name in command.write_options:
                parsed.write = True
                continue
            if name in command.values and not equals:
                value = args[index] if index < len(args) else ""
                index += 1
            if _option(command, parsed, name, value):
                return parsed
            continue
        for position, letter in enumerate(word[1:], start=2):
            if letter in command.write_options:
                parsed.write = True  # what follows is its suffix (-i.bak)
                break
            if command.shell and letter == "c":
                parsed.run_string = True
                continue
            if letter in command.values:
                value = word[position:]
                if not value:
                    value = args[index] if index < len(args) else ""
                    index += 1
                if _option(command, parsed, letter, value):
                    return parsed
                break
    return parsed


def _option(command: _Command, parsed: _Parsed, name: str, value: str) -> bool:
    """Apply an option with its value; True when no later word names a file."""
    if name in command.script_options or name in command.file_options:
        parsed.script = True  # the pattern or program came with the option (grep -f FILE)
    if name in command.file_options and value:
        parsed.reads.append(value)
    if name in command.output_options and value:
        parsed.writes.append(value)
    return name in command.stop_options


def _file_operands(command: _Command, parsed: _Parsed) -> list[str]:
    operands = parsed.operands
    mode = command.operands
    if parsed.script and mode in ("first", "rest"):
        return operands
    if mode == "first":
        return operands[:1]
    if mode == "rest":
        return operands[1:]
    if mode == "after_dashdash":
        return operands[parsed.dashdash :] if parsed.dashdash is not None else []
    return operands


def _unique(accesses: list[Access]) -> list[Access]:
    out = list(dict.fromkeys(a for a in accesses if a.path))
    return out[:MAX_FILES]


def command_accesses(arguments: Any, command_keys: Sequence[str], lines_keys: Sequence[str]) -> list[Access]:
    """The files of a shell tool call's arguments: a command line (a string) or an argv (a list of
    strings) under one of `command_keys`, or a list of command lines under one of `lines_keys`."""
    if not isinstance(arguments, dict):
        return []
    found: list[Access] = []
    for key in command_keys:
        value = arguments.get(key)
        if isinstance(value, str):
            found += command_line(value)
            break
        if isinstance(value, list) and value and all(isinstance(w, str) for w in value):
            found += argv(value)
            break
    for key in lines_keys:
        value = arguments.get(key)
        if isinstance(value, list):
            for line in value[:MAX_FILES]:
                if isinstance(line, str):
                    found += command_line(line)
    return _unique(found)
