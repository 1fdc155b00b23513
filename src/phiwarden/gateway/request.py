"""A request as the pipeline sees it: every piece of text that would leave, with where it sits.

The API shapes (`shapes.py`) turn a JSON body into `Part`s (text the gateway inspects and may rewrite
in place), `Binary` items (images, PDFs, audio: content that cannot be read for PHI) and the agent's
tool calls (for the per-file access record). Writing a part back changes the body; what is forwarded
is always the body serialized again, so every byte that leaves is one the gateway read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from phiwarden.gateway.jsonview import JsonView
from phiwarden.gateway.payloads import BinaryKind
from phiwarden.policy.gateway import Api
from phiwarden.transform.spans import Span, replace_spans

__all__ = [
    "Binary", "BinaryKind", "ParsedRequest", "Part", "ShapeError", "ToolCall", "dumps", "shown",
    "unencodable",
]  # fmt: skip


@dataclass(slots=True)
class Part:
    """One string of the body, or one user-defined structure read as JSON text (`view`).
    `container[key]` holds it; `replace` writes replacements there."""

    location: str
    text: str
    container: Any
    key: Any
    # The file this text was read from (a tool result of Read), for path-based classification.
    path: str | None = None
    # Text the gateway may not change (a thinking block signed by the vendor): findings there block.
    frozen: bool = False
    # Free text or a tool call's input, where PHI-context identifiers of code may be renamed; never
    # ids, names or keys, which the client matches on.
    identifiers: bool = False
    view: JsonView | None = None
    # Whether its words count towards the request's PHI-adjacency (code handling SSN fields): not
    # for tool definitions and settings, whose field names describe a tool, not content. Values
    # found in them count wherever they are.
    classified: bool = True
    # The output of a shell command that printed `path` (cat, grep, sed -n): other commands of its
    # command line may have printed text of their own, so it is read with the prose rules too.
    # (Last of the fields: shapes.py builds parts positionally.)
    shell_output: bool = False

    def replace(
        self, spans: Sequence[Span], replacement: Callable[[str, str], str], *, values_only: bool = False
    ) -> None:
        """Each span of `text` replaced by `replacement(category, value)`, in the body too.
        `values_only`: in a structure, only its string values change (never keys or numbers)."""
        if self.view is None:
            self.text = replace_spans(self.text, spans, replacement)
            self.container[self.key] = self.text
        else:
            self.text = self.view.replace(spans, replacement, values_only=values_only)


@dataclass(frozen=True, slots=True)
class Binary:
    location: str
    kind: BinaryKind


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool the agent called (from the history) and the arguments that name files."""

    call_id: str
    name: str
    arguments: Any
    location: str


class ShapeError(ValueError):
    """A request the gateway does not understand: refused, never forwarded uninspected."""

    def __init__(self, location: str, message: str) -> None:
        self.location = location
        super().__init__(f"{location}: {message}" if location else message)


@dataclass(slots=True)
class ParsedRequest:
    api: Api
    operation: str
    body: dict[str, Any]
    model: str
    stream: bool
    parts: list[Part] = field(default_factory=list)
    binaries: list[Binary] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    # tool call id -> locations of its results (whose text the tool read)
    tool_results: dict[str, list[Part]] = field(default_factory=dict)
    # What names the conversation in the body (Claude Code's metadata.user_id, prompt_cache_key).
    conversation_hint: str | None = None
    # The system prompt and the first user message: a conversation's fingerprint when nothing names
    # it, the same on every turn.
    opening: str = ""
    # Tool-call arguments sent as JSON text, held parsed while inspected: (container, key).
    json_texts: list[tuple[Any, Any]] = field(default_factory=list)

    def serialize(self) -> bytes:
        """The body as it leaves: arguments written back as JSON text, then the whole body."""
        for container, key in self.json_texts:
            container[key] = dumps(container[key]).decode("utf-8")
        self.json_texts.clear()
        return dumps(self.body)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON. orjson is ~20x faster; it refuses integers beyond 64 bits, which JSON
    allows and a tool's input may hold."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def unencodable(value: Any, location: str = "") -> str | None:
    """Where `value` holds a string that is not Unicode text (a lone UTF-16 surrogate such as
    "\\ud800", which JSON escapes can spell), else None. orjson refuses those in ~0.02 ms per 128 KB,
    less than searching the raw bytes for the escape."""
    try:
        orjson.dumps(value)
        return None
    except orjson.JSONEncodeError:
        pass
    return _surrogate_at(value, location)


def shown(key: object) -> str:
    """A key or type name as an error message may show it: API field names are snake_case words;
    anything else the client wrote there could be a value, and messages never hold values."""
    if (
        isinstance(key, str)
        and len(key) <= 64
        and key[:1].isalpha()
        and key.isascii()
        and key.islower()
        and key.replace("_", "a").isalnum()
    ):
        return key
    return "[…]"


def _surrogate_at(value: Any, location: str) -> str | None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return location or "(the body)"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{location}.{shown(key)}" if location else shown(key)
            found = _surrogate_at(key, where) or _surrogate_at(item, where)
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _surrogate_at(item, f"{location}[{index}]")
            if found:
                return found
    return None
