"""Restoring original values in a complete (non-streamed) response body, per API."""

from __future__ import annotations

from typing import Any

from phiwarden.policy.gateway import Api
from phiwarden.transform.restore import Restorer


def restore_response(
    api: Api, body: Any, restorer: Restorer, json_restorer: Restorer, *, nested: str = ""
) -> Any:
    """`body` with surrogates replaced in the text the user reads and the tool calls the agent runs.

    `nested` names a Responses stream object (`response`, `item`, `part`) restored on its own.
    """
    if not restorer or not isinstance(body, dict):
        return body
    if api == "messages":
        for block in body.get("content") or []:
            if isinstance(block, dict):
                restore_anthropic_block(block, restorer)
    elif api == "chat_completions":
        for choice in body.get("choices") or []:
            message = choice.get("message") if isinstance(choice, dict) else None
            if isinstance(message, dict):
                for key in ("content", "refusal", "reasoning_content"):
                    if isinstance(message.get(key), str):
                        message[key] = restorer.restore(message[key])
                for call in message.get("tool_calls") or []:
                    function = call.get("function") if isinstance(call, dict) else None
                    if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                        function["arguments"] = json_restorer.restore(function["arguments"])
    elif nested == "item":
        _responses_item(body, restorer, json_restorer)
    elif nested == "part":
        _responses_part(body, restorer)
    else:
        for item in body.get("output") or []:
            if isinstance(item, dict):
                _responses_item(item, restorer, json_restorer)
        if isinstance(body.get("output_text"), str):
            body["output_text"] = restorer.restore(body["output_text"])
    return body


def restore_anthropic_block(block: dict[str, Any], restorer: Restorer) -> None:
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        block["text"] = restorer.restore(block["text"])
        for citation in block.get("citations") or []:
            if isinstance(citation, dict):
                restore_citation(citation, restorer)
    elif kind in ("tool_use", "server_tool_use", "mcp_tool_use") and "input" in block:
        block["input"] = _value(block["input"], restorer)


def restore_citation(citation: dict[str, Any], restorer: Restorer) -> None:
    """A citation quotes the documents the request sent, pseudonymized."""
    for key in ("cited_text", "document_title"):
        if isinstance(citation.get(key), str):
            citation[key] = restorer.restore(citation[key])


def _responses_item(item: dict[str, Any], restorer: Restorer, json_restorer: Restorer) -> None:
    kind = item.get("type")
    if kind in ("message", "reasoning"):
        # A reasoning item's summary and text are shown to the user (its encrypted content is not read).
        for key in ("content", "summary"):
            for part in item.get(key) or []:
                if isinstance(part, dict):
                    _responses_part(part, restorer)
    elif kind == "function_call" and isinstance(item.get("arguments"), str):
        item["arguments"] = json_restorer.restore(item["arguments"])
    elif kind in ("custom_tool_call", "apply_patch_call", "shell_call", "local_shell_call"):
        for key in ("input", "action", "operation"):
            if key in item:
                item[key] = _value(item[key], restorer)


def _responses_part(part: dict[str, Any], restorer: Restorer) -> None:
    for key in ("text", "refusal"):
        if isinstance(part.get(key), str):
            part[key] = restorer.restore(part[key])


def _value(value: Any, restorer: Restorer) -> Any:
    """Tool input: the gateway pseudonymizes keys and numbers there too (an MRN as an integer)."""
    if isinstance(value, str):
        return restorer.restore(value)
    if isinstance(value, list):
        return [_value(v, restorer) for v in value]
    if isinstance(value, dict):
        return {restorer.restore(k): _value(v, restorer) for k, v in value.items()}
    if isinstance(value, int) and not isinstance(value, bool):
        restored = restorer.restore(str(value))
        return int(restored) if restored.isdigit() and str(int(restored)) == restored else value
    return value
