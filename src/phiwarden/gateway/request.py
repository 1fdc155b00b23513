"""A request as the pipeline sees it: every piece of text that would leave, with where it sits.

The API shapes (`shapes.py`) turn a JSON body into `Part`s (text the gateway inspects and may rewrite
in place), `Binary` items (images, PDFs, audio: content that cannot be read for PHI) and the agent's
tool calls (for the per-file access record). Writing a part back changes the body that is forwarded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from phiwarden.policy.gateway import Api

BinaryKind = Literal["images", "documents", "audio"]


@dataclass(slots=True)
class Part:
    """One string of the body. `container[key]` holds it; `set` writes a replacement there."""

    location: str
    text: str
    container: Any
    key: Any
    # The file this text was read from (a tool result of Read), for path-based classification.
    path: str | None = None
    # Text the gateway may not change (a thinking block signed by the vendor): findings there block.
    frozen: bool = False
    # The string is JSON text itself (tool-call arguments): rewritten as JSON.
    json_text: bool = False

    def set(self, value: str) -> None:
        self.container[self.key] = value
        self.text = value


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
    # The first system and user texts: a conversation's fingerprint when nothing names it.
    opening: str = ""

    def serialize(self) -> bytes:
        return json.dumps(finish_json(self.body), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class JsonText(str):
    """A JSON-text field whose parsed value is being rewritten in place; `dumps` gives the new text."""

    holder: dict[str, Any]

    def __new__(cls, holder: dict[str, Any], raw: str) -> JsonText:
        out = super().__new__(cls, raw)
        out.holder = holder
        return out

    def dumps(self) -> str:
        return json.dumps(self.holder["value"], ensure_ascii=False, separators=(",", ":"))


def finish_json(value: Any) -> Any:
    """Replace `JsonText` markers by their (possibly rewritten) JSON text, recursively."""
    if isinstance(value, JsonText):
        return value.dumps()
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list | JsonText):
                value[key] = finish_json(item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, dict | list | JsonText):
                value[index] = finish_json(item)
    return value
