"""Which files an agent read or changed, from the tool calls in the conversation.

A tool call names a file (Read `file_path`, Edit, apply_patch); its result, in the next message,
holds the file's content. The gateway uses both: the result's text is classified with the file's path
(repository code is internal, `patients.csv` is read as CSV), and the audit event lists the files of
the latest turn per agent, as the per-file access record. Which tools and arguments name files is
data (`data/tools.toml`).
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from phiwarden.gateway.request import ParsedRequest, ToolCall

_PATCH_FILE = re.compile(r"^\*\*\* (?:Update|Add|Delete) File: (.+)$", re.MULTILINE)
MAX_PATH = 512


@dataclass(frozen=True, slots=True)
class _Tool:
    operation: str
    path_keys: tuple[str, ...]
    patch_key: str | None


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
        tool = _Tool(entry["operation"], tuple(entry.get("path_keys", ())), entry.get("patch_key"))
        for name in entry["names"]:
            out[name] = tool
    return out


def accesses(call: ToolCall) -> list[FileAccess]:
    tool = _tools().get(call.name)
    if tool is None:
        return []
    arguments: Any = call.arguments
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
        paths.extend(m.strip() for m in _PATCH_FILE.findall(patch))
    return [FileAccess(p[:MAX_PATH], tool.operation, call.name) for p in paths]


def attach_paths(request: ParsedRequest) -> None:
    """Give each tool result the path of the file its call read."""
    for call in request.tool_calls:
        results = request.tool_results.get(call.call_id)
        if not results:
            continue
        found = [a for a in accesses(call) if a.operation == "read"]
        if found:
            for part in results:
                part.path = found[0].path


def latest_accesses(request: ParsedRequest) -> list[FileAccess]:
    """Files touched by the tool calls of the latest turn (those whose results this request carries
    last), so that each access is recorded once, in the request that first reports it."""
    if not request.tool_calls:
        return []
    last_parent = request.tool_calls[-1].location.split(".content")[0].split(".tool_calls")[0]
    out: list[FileAccess] = []
    for call in request.tool_calls:
        if call.location.startswith(last_parent):
            out.extend(accesses(call))
    return out
