"""Which files an agent read or changed, from the tool calls in the conversation.

A tool call names a file (Read `file_path`, Edit, apply_patch); its result, in the next message,
holds the file's content. The gateway uses both: the result's text is classified with the file's path
(repository code is internal, `patients.csv` is read as CSV), and the audit event lists the files of
the latest turn per agent, as the per-file access record. Which tools and arguments name files is
data (`data/tools.toml`); shell tool calls name theirs in their command lines (`shell.py`).
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from phiwarden.detect.engine import DELIMITED_EXTENSIONS
from phiwarden.gateway import shell
from phiwarden.gateway.request import ParsedRequest, ToolCall

MAX_PATH = 512


@dataclass(frozen=True, slots=True)
class _Tool:
    operation: str  # read, write, search, or shell (the command line names the files)
    path_keys: tuple[str, ...]
    patch_key: str | None
    command_keys: tuple[str, ...]
    lines_keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FileAccess:
    path: str
    operation: str  # read, write, search
    tool: str


@functools.cache
def _tools() -> dict[str, _Tool]:
    text = resources.files("phiwarden.gateway").joinpath("data", "tools.toml").read_text("utf-8")
    out: dict[str, _Tool] = {}
    for entry in tomllib.loads(text)["tool"]:
        tool = _Tool(
            entry["operation"],
            tuple(entry.get("path_keys", ())),
            entry.get("patch_key"),
            tuple(entry.get("command_keys", ())),
            tuple(entry.get("lines_keys", ())),
        )
        for name in entry["names"]:
            out[name] = tool
    return out


def accesses(call: ToolCall) -> list[FileAccess]:
    tool = _tools().get(call.name)
    if tool is None:
        return []
    arguments: Any = call.arguments
    if tool.operation == "shell":
        return [
            FileAccess(a.path[:MAX_PATH], a.operation, f"{call.name}:{a.program}")
            for a in shell.command_accesses(arguments, tool.command_keys, tool.lines_keys)
        ]
    paths: list[str] = []
    if isinstance(arguments, dict):
        for key in tool.path_keys:
            value = arguments.get(key)
            if isinstance(value, str) and value:
                paths.append(value)
                break
        patch = arguments.get(tool.patch_key) if tool.patch_key else None
    else:
        patch = arguments if tool.patch_key else None
    if isinstance(patch, str):
        paths.extend(shell.patch_paths(patch))
    return [FileAccess(p[:MAX_PATH], tool.operation, call.name) for p in paths]


def attach_paths(request: ParsedRequest) -> None:
    """Give each tool result the path of the file its call read.

    A shell command's output gets the path of a file it printed (cat, head, tail, sed -n, grep on
    named files: `shell.prints_content`), so code read through Bash is classified as code read
    through Read is, and a CSV printed by `cat` is scanned as a CSV file. A command that prints no
    file it names (ls, pytest, a script) leaves its output without a path: it is text.
    """
    for call in request.tool_calls:
        results = request.tool_results.get(call.call_id)
        tool = _tools().get(call.name)
        if not results or tool is None:
            continue
        shell_tool = tool.operation == "shell"
        path = _printed_path(call, tool) if shell_tool else _read_path(call)
        if path is not None:
            for part in results:
                part.path = path
                part.shell_output = shell_tool


def _read_path(call: ToolCall) -> str | None:
    found = [a for a in accesses(call) if a.operation == "read"]
    return found[0].path if found else None


def _printed_path(call: ToolCall, tool: _Tool) -> str | None:
    """The file whose content a shell command printed; of several, a delimited export first (a header
    atop the output is then read as that file's), else the first one the command line names.
    Tables further down the output are found wherever they start (detect: tabular.embedded_cells)."""
    printed = [
        a.path[:MAX_PATH]
        for a in shell.command_accesses(call.arguments, tool.command_keys, tool.lines_keys)
        if a.operation == "read" and shell.prints_content(a.program)
    ]
    tables = [p for p in printed if p.lower().endswith(DELIMITED_EXTENSIONS)]
    chosen = tables or printed
    return chosen[0] if chosen else None


def latest_accesses(request: ParsedRequest) -> list[FileAccess]:
    """Files touched by the tool calls of the latest turn (those whose results this request carries
    last), so that each access is recorded once, in the request that first reports it. A turn is one
    assistant message's calls (Messages, Chat Completions) or, in a Responses input, the calls after
    the last output item that precedes the latest call (calls made in parallel come together)."""
    if not request.tool_calls:
        return []
    last = request.tool_calls[-1].location
    item = _item_index(last)
    if item is not None and last == f"input[{item}]":
        outputs = (_item_index(p.location) for parts in request.tool_results.values() for p in parts)
        boundary = max((i for i in outputs if i is not None and i < item), default=-1)
        calls = [c for c in request.tool_calls if (_item_index(c.location) or -1) > boundary]
    else:
        parent = last.split(".content")[0].split(".tool_calls")[0]
        calls = [c for c in request.tool_calls if c.location.startswith(parent)]
    return [access for call in calls for access in accesses(call)]


def _item_index(location: str) -> int | None:
    """N of a Responses input item's location (input[N]…)."""
    if not location.startswith("input["):
        return None
    number = location[6:].partition("]")[0]
    return int(number) if number.isdigit() else None
