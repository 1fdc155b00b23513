"""The request shapes of the three APIs: which fields exist, where text sits, what is binary.

Every string that would leave is a `Part`, wherever it is (messages, system prompts, tool
definitions, tool calls and results, documents, stop sequences, metadata). Fields a shape does not
know are refused with their location (fail closed: a new field could carry text the gateway never
read) unless the policy lists them in `[gateway] extra_fields`, which inspects them as text. Keys
known to hold no free text (ids, roles, types, signatures, media types) are not scanned.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from phiwarden.gateway.request import (
    Binary,
    BinaryKind,
    JsonText,
    ParsedRequest,
    Part,
    ShapeError,
    ToolCall,
)
from phiwarden.policy.gateway import Api

# Keys whose string values are identifiers, enumerations or vendor-signed data, never free text.
_NOT_TEXT = frozenset(
    {
        "type", "id", "name", "role", "tool_use_id", "tool_call_id", "call_id", "media_type", "signature",
        "cache_control", "file_id", "status", "detail", "format", "encrypted_content", "mime_type", "model",
        "user_id", "ttl", "effort", "service_tier", "tool_choice", "truncation", "include", "verbosity",
        "previous_response_id", "reasoning_effort", "modalities", "voice", "strict",
    }
)  # fmt: skip

_MESSAGES_FIELDS = frozenset(
    {
        "model", "messages", "system", "max_tokens", "metadata", "stop_sequences", "stream", "temperature",
        "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier", "container", "mcp_servers",
        "context_management", "output_config", "output_format", "inference_geo", "betas",
    }
)  # fmt: skip
_COUNT_TOKENS_FIELDS = frozenset(
    {"model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers", "context_management",
     "output_config", "output_format", "betas"}
)  # fmt: skip
_CHAT_FIELDS = frozenset(
    {
        "model", "messages", "audio", "frequency_penalty", "function_call", "functions", "logit_bias",
        "logprobs", "max_completion_tokens", "max_tokens", "metadata", "modalities", "n",
        "parallel_tool_calls", "prediction", "presence_penalty", "prompt_cache_key", "reasoning_effort",
        "response_format", "safety_identifier", "seed", "service_tier", "stop", "store", "stream",
        "stream_options", "temperature", "tool_choice", "tools", "top_logprobs", "top_p", "user",
        "verbosity", "web_search_options", "prompt_cache_retention", "reasoning", "keep_alive", "options",
    }
)  # fmt: skip
_RESPONSES_FIELDS = frozenset(
    {
        "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "reasoning",
        "store", "stream", "include", "prompt_cache_key", "text", "temperature", "top_p",
        "max_output_tokens", "metadata", "previous_response_id", "truncation", "user", "service_tier",
        "background", "max_tool_calls", "prompt", "safety_identifier", "stream_options", "top_logprobs",
        "conversation", "context_management", "prompt_cache_retention",
    }
)  # fmt: skip

_ANTHROPIC_BLOCKS = frozenset(
    {
        "text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking",
        "server_tool_use", "web_search_tool_result", "web_fetch_tool_result", "search_result",
        "mcp_tool_use", "mcp_tool_result", "container_upload", "code_execution_tool_result",
        "bash_code_execution_tool_result", "text_editor_code_execution_tool_result",
        "tool_search_tool_result", "tool_reference",
    }
)  # fmt: skip
_CHAT_PARTS = frozenset({"text", "image_url", "input_audio", "file", "refusal"})
_CHAT_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_RESPONSES_ITEMS = frozenset(
    {
        "message", "function_call", "function_call_output", "reasoning", "custom_tool_call",
        "custom_tool_call_output", "local_shell_call", "local_shell_call_output", "item_reference",
        "web_search_call", "file_search_call", "computer_call", "computer_call_output",
        "image_generation_call", "code_interpreter_call", "mcp_call", "mcp_list_tools",
        "mcp_approval_request", "mcp_approval_response", "shell_call", "shell_call_output",
        "apply_patch_call", "apply_patch_call_output", "compaction",
    }
)  # fmt: skip
_RESPONSES_CONTENT = frozenset(
    {"input_text", "input_image", "input_file", "input_audio", "output_text", "refusal", "summary_text",
     "reasoning_text"}
)  # fmt: skip


class _Builder:
    def __init__(self, request: ParsedRequest) -> None:
        self.request = request

    def text(self, container: Any, key: Any, location: str, **flags: Any) -> None:
        value = container[key]
        if not isinstance(value, str):
            raise ShapeError(location, f"expected a string, got {_kind(value)}")
        if value:
            self.request.parts.append(Part(location, value, container, key, **flags))

    def binary(self, location: str, kind: BinaryKind) -> None:
        self.request.binaries.append(Binary(location, kind))

    def generic(self, value: Any, location: str) -> None:
        """Every string leaf of a structure whose layout the gateway need not know (tool schemas,
        tool inputs, metadata), except keys that hold no free text."""
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ShapeError(location, "object keys must be strings")
                if key in _NOT_TEXT and isinstance(item, str):
                    continue
                if isinstance(item, str):
                    self.text(value, key, f"{location}.{key}")
                else:
                    self.generic(item, f"{location}.{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, str):
                    self.text(value, index, f"{location}[{index}]")
                else:
                    self.generic(item, f"{location}[{index}]")

    def tool_arguments(self, container: dict[str, Any], key: str, location: str) -> None:
        """Arguments sent as JSON text: inspected and rewritten as JSON; text if they do not parse."""
        raw = container.get(key)
        if raw is None:
            return
        if not isinstance(raw, str):
            raise ShapeError(f"{location}.{key}", f"expected a JSON string, got {_kind(raw)}")
        try:
            parsed = json.loads(raw)
        except ValueError:
            self.text(container, key, f"{location}.{key}")
            return
        if isinstance(parsed, dict | list):
            holder = {"value": parsed}
            before = len(self.request.parts)
            self.generic(parsed, f"{location}.{key}")
            for part in self.request.parts[before:]:
                part.json_text = True
            # Rewritten arguments are serialized again by `finish_json` (see pipeline).
            container[key] = JsonText(holder, raw)
        else:
            self.text(container, key, f"{location}.{key}")


def parse(api: Api, body: Any, extra_fields: Iterable[str], *, count_tokens: bool = False) -> ParsedRequest:
    if not isinstance(body, dict):
        raise ShapeError("", f"the request body must be a JSON object, got {_kind(body)}")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ShapeError("model", "a model name is required")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ShapeError("stream", "expected true or false")
    known = {
        "messages": _COUNT_TOKENS_FIELDS if count_tokens else _MESSAGES_FIELDS,
        "chat_completions": _CHAT_FIELDS,
        "responses": _RESPONSES_FIELDS,
    }[api]
    extra = frozenset(extra_fields)
    for key in body:
        if key not in known and key not in extra:
            raise ShapeError(
                key,
                "unknown field: phiwarden forwards only what it inspects. If this is a new API "
                f"parameter, add {key!r} to [gateway] extra_fields in phiwarden.toml",
            )
    operation = {
        "messages": "anthropic.messages.count_tokens" if count_tokens else "anthropic.messages.create",
        "chat_completions": "openai.chat.completions.create",
        "responses": "openai.responses.create",
    }[api]
    request = ParsedRequest(api, operation, body, model, stream and not count_tokens)
    builder = _Builder(request)
    if api == "messages":
        _messages(builder, body)
    elif api == "chat_completions":
        _chat(builder, body)
    else:
        _responses(builder, body)
    for key in extra & body.keys():
        value = body[key]
        if isinstance(value, str):
            builder.text(body, key, key)
        else:
            builder.generic(value, key)
    return request


# --- Anthropic Messages ----------------------------------------------------------------------------


def _messages(b: _Builder, body: dict[str, Any]) -> None:
    request = b.request
    system = body.get("system")
    openings: list[str] = []
    if isinstance(system, str):
        b.text(body, "system", "system")
        openings.append(system)
    elif isinstance(system, list):
        for index, block in enumerate(system):
            where = f"system[{index}]"
            if not isinstance(block, dict) or block.get("type") != "text":
                raise ShapeError(where, "system blocks must be text blocks")
            _anthropic_block(b, block, where)
            openings.append(str(block.get("text", "")))
    elif system is not None:
        raise ShapeError("system", f"expected a string or a list of text blocks, got {_kind(system)}")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise ShapeError("messages", "expected a list of messages")
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise ShapeError(where, "expected a message object")
        unknown = set(message) - {"role", "content"}
        if unknown:
            raise ShapeError(f"{where}.{sorted(unknown)[0]}", "unknown message field")
        if message.get("role") not in ("user", "assistant"):
            raise ShapeError(f"{where}.role", "expected 'user' or 'assistant'")
        content = message.get("content")
        if isinstance(content, str):
            b.text(message, "content", f"{where}.content")
            if message["role"] == "user" and len(openings) < 2:
                openings.append(content)
        elif isinstance(content, list):
            for position, block in enumerate(content):
                _anthropic_block(b, block, f"{where}.content[{position}]")
                if message["role"] == "user" and len(openings) < 2 and isinstance(block, dict):
                    openings.append(str(block.get("text", "")))
        else:
            raise ShapeError(f"{where}.content", "expected a string or a list of content blocks")
    for key in ("tools", "metadata", "stop_sequences", "container", "mcp_servers", "context_management",
                "output_config", "output_format", "thinking", "tool_choice"):  # fmt: skip
        if key in body:
            b.generic(body[key], key)
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        request.conversation_hint = metadata["user_id"]
    request.opening = "\x00".join(openings)


def _anthropic_block(b: _Builder, block: Any, where: str) -> None:
    if not isinstance(block, dict):
        raise ShapeError(where, f"expected a content block object, got {_kind(block)}")
    kind = block.get("type")
    if kind not in _ANTHROPIC_BLOCKS:
        raise ShapeError(f"{where}.type", f"unknown content block type {kind!r}")
    request = b.request
    if kind == "text":
        b.text(block, "text", f"{where}.text")
        if "citations" in block:
            b.generic(block["citations"], f"{where}.citations")
    elif kind == "image":
        _source(b, block.get("source"), f"{where}.source", "images")
    elif kind == "document":
        _source(b, block.get("source"), f"{where}.source", "documents")
        for key in ("title", "context"):
            if isinstance(block.get(key), str):
                b.text(block, key, f"{where}.{key}")
    elif kind in ("tool_use", "server_tool_use", "mcp_tool_use"):
        b.generic(block.get("input", {}), f"{where}.input")
        request.tool_calls.append(
            ToolCall(str(block.get("id", "")), str(block.get("name", "")), block.get("input"), where)
        )
    elif kind in ("tool_result", "mcp_tool_result"):
        before = len(request.parts)
        content = block.get("content")
        if isinstance(content, str):
            b.text(block, "content", f"{where}.content")
        elif isinstance(content, list):
            for position, inner in enumerate(content):
                _anthropic_block(b, inner, f"{where}.content[{position}]")
        elif content is not None:
            raise ShapeError(f"{where}.content", "expected a string or a list of content blocks")
        request.tool_results.setdefault(str(block.get("tool_use_id", "")), []).extend(request.parts[before:])
    elif kind == "thinking":
        # Signed by the vendor: changing the text breaks the signature, so it is inspected, not rewritten.
        b.text(block, "thinking", f"{where}.thinking", frozen=True)
    elif kind == "redacted_thinking":
        pass  # encrypted by the vendor; carries nothing the client wrote
    else:
        b.generic({k: v for k, v in block.items() if k != "type"}, where)


def _source(b: _Builder, source: Any, where: str, kind: BinaryKind) -> None:
    if not isinstance(source, dict):
        raise ShapeError(where, "expected a source object")
    source_type = source.get("type")
    if source_type == "text":
        b.text(source, "data", f"{where}.data")
    elif source_type == "content":
        content = source.get("content")
        if isinstance(content, str):
            b.text(source, "content", f"{where}.content")
        elif isinstance(content, list):
            for position, inner in enumerate(content):
                _anthropic_block(b, inner, f"{where}.content[{position}]")
    elif source_type in ("base64", "url", "file"):
        if source_type == "url":
            b.text(source, "url", f"{where}.url")
        b.binary(where, kind)
    else:
        raise ShapeError(f"{where}.type", f"unknown source type {source_type!r}")


# --- OpenAI Chat Completions -----------------------------------------------------------------------


def _chat(b: _Builder, body: dict[str, Any]) -> None:
    request = b.request
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ShapeError("messages", "expected a non-empty list of messages")
    openings: list[str] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise ShapeError(where, "expected a message object")
        role = message.get("role")
        if role not in _CHAT_ROLES:
            raise ShapeError(f"{where}.role", f"unknown role {role!r}")
        unknown = set(message) - {
            "role", "content", "name", "tool_calls", "tool_call_id", "function_call", "refusal", "audio",
            "reasoning_content", "reasoning", "thinking", "images", "cache_control",
        }  # fmt: skip
        if unknown:
            raise ShapeError(f"{where}.{sorted(unknown)[0]}", "unknown message field")
        content = message.get("content")
        if isinstance(content, str):
            b.text(message, "content", f"{where}.content")
            if role in ("system", "developer", "user") and len(openings) < 2:
                openings.append(content)
        elif isinstance(content, list):
            for position, part in enumerate(content):
                _chat_part(b, part, f"{where}.content[{position}]")
                if role in ("system", "developer", "user") and len(openings) < 2 and isinstance(part, dict):
                    openings.append(str(part.get("text", "")))
        elif content is not None:
            raise ShapeError(f"{where}.content", "expected a string, a list of parts or null")
        for key in ("name", "refusal", "reasoning_content", "reasoning", "thinking"):
            if isinstance(message.get(key), str):
                b.text(message, key, f"{where}.{key}")
        if "images" in message:
            b.binary(f"{where}.images", "images")
        calls = message.get("tool_calls")
        if calls is not None:
            if not isinstance(calls, list):
                raise ShapeError(f"{where}.tool_calls", "expected a list")
            for position, call in enumerate(calls):
                call_where = f"{where}.tool_calls[{position}]"
                function = call.get("function") if isinstance(call, dict) else None
                if not isinstance(function, dict):
                    raise ShapeError(call_where, "expected {id, type: function, function: {name, arguments}}")
                b.tool_arguments(function, "arguments", f"{call_where}.function")
                request.tool_calls.append(
                    ToolCall(
                        str(call.get("id", "")),
                        str(function.get("name", "")),
                        _arguments(function),
                        call_where,
                    )
                )
        legacy = message.get("function_call")
        if isinstance(legacy, dict):
            b.tool_arguments(legacy, "arguments", f"{where}.function_call")
        if role == "tool":
            parts_now = [p for p in request.parts if p.location.startswith(f"{where}.content")]
            request.tool_results.setdefault(str(message.get("tool_call_id", "")), []).extend(parts_now)
    for key in _CHAT_INSPECTED:
        if key in body:
            value = body[key]
            if isinstance(value, str):
                if key in ("user", "safety_identifier", "tool_choice", "function_call"):
                    continue  # an opaque end-user id or an enumeration
                b.text(body, key, key)
            else:
                b.generic(value, key)
    if isinstance(body.get("prompt_cache_key"), str):
        request.conversation_hint = body["prompt_cache_key"]
    request.opening = "\x00".join(openings)


_CHAT_INSPECTED = (
    "tools", "functions", "metadata", "stop", "prediction", "response_format", "user", "tool_choice",
    "function_call", "web_search_options", "audio", "safety_identifier",
)  # fmt: skip


def _chat_part(b: _Builder, part: Any, where: str) -> None:
    if not isinstance(part, dict) or part.get("type") not in _CHAT_PARTS:
        kind = part.get("type") if isinstance(part, dict) else None
        raise ShapeError(f"{where}.type", f"unknown content part type {kind!r}")
    kind = part["type"]
    if kind == "text":
        b.text(part, "text", f"{where}.text")
    elif kind == "refusal":
        b.text(part, "refusal", f"{where}.refusal")
    elif kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str):
            raise ShapeError(f"{where}.image_url", "expected {url: ...}")
        if not url.startswith("data:") and isinstance(image, dict):
            b.text(image, "url", f"{where}.image_url.url")
        b.binary(where, "images")
    elif kind == "input_audio":
        b.binary(where, "audio")
    else:
        file = part.get("file")
        if isinstance(file, dict) and isinstance(file.get("filename"), str):
            b.text(file, "filename", f"{where}.file.filename")
        b.binary(where, "documents")


def _arguments(function: dict[str, Any]) -> Any:
    raw = function.get("arguments")
    if isinstance(raw, JsonText):
        return raw.holder["value"]
    try:
        return json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return raw


# --- OpenAI Responses ------------------------------------------------------------------------------


def _responses(b: _Builder, body: dict[str, Any]) -> None:
    request = b.request
    openings: list[str] = []
    if "instructions" in body and body["instructions"] is not None:
        b.text(body, "instructions", "instructions")
        openings.append(str(body["instructions"]))
    items = body.get("input")
    if isinstance(items, str):
        b.text(body, "input", "input")
        openings.append(items)
    elif isinstance(items, list):
        for index, item in enumerate(items):
            _responses_item(b, item, f"input[{index}]", openings)
    elif items is not None:
        raise ShapeError("input", "expected a string or a list of input items")
    for key in ("tools", "metadata", "text", "prompt", "tool_choice", "reasoning", "conversation",
                "context_management"):  # fmt: skip
        if key in body and not isinstance(body[key], str):
            b.generic(body[key], key)
    if isinstance(body.get("prompt_cache_key"), str):
        request.conversation_hint = body["prompt_cache_key"]
    request.opening = "\x00".join(openings)


def _responses_item(b: _Builder, item: Any, where: str, openings: list[str]) -> None:
    request = b.request
    if not isinstance(item, dict):
        raise ShapeError(where, f"expected an input item object, got {_kind(item)}")
    kind = item.get("type", "message" if "role" in item else None)
    if kind not in _RESPONSES_ITEMS:
        raise ShapeError(f"{where}.type", f"unknown input item type {kind!r}")
    if kind == "message":
        if item.get("role") not in ("user", "assistant", "system", "developer"):
            raise ShapeError(f"{where}.role", f"unknown role {item.get('role')!r}")
        content = item.get("content")
        if isinstance(content, str):
            b.text(item, "content", f"{where}.content")
            if item["role"] != "assistant" and len(openings) < 2:
                openings.append(content)
        elif isinstance(content, list):
            for position, part in enumerate(content):
                _responses_content(b, part, f"{where}.content[{position}]")
                if item["role"] != "assistant" and len(openings) < 2 and isinstance(part, dict):
                    openings.append(str(part.get("text", "")))
        else:
            raise ShapeError(f"{where}.content", "expected a string or a list of content parts")
    elif kind == "function_call":
        b.tool_arguments(item, "arguments", where)
        request.tool_calls.append(
            ToolCall(str(item.get("call_id", "")), str(item.get("name", "")), _arguments(item), where)
        )
    elif kind in ("custom_tool_call", "apply_patch_call", "shell_call", "local_shell_call"):
        b.generic({k: v for k, v in item.items() if k != "type"}, where)
        arguments = item.get("input", item.get("action", item.get("operation")))
        request.tool_calls.append(
            ToolCall(str(item.get("call_id", "")), str(item.get("name", kind)), arguments, where)
        )
    elif kind.endswith("_output"):
        before = len(request.parts)
        output = item.get("output")
        if isinstance(output, str):
            b.text(item, "output", f"{where}.output")
        elif isinstance(output, list):
            for position, part in enumerate(output):
                _responses_content(b, part, f"{where}.output[{position}]")
        elif output is not None:
            b.generic(output, f"{where}.output")
        request.tool_results.setdefault(str(item.get("call_id", "")), []).extend(request.parts[before:])
    elif kind == "reasoning":
        for key in ("summary", "content"):
            if isinstance(item.get(key), list):
                for position, part in enumerate(item[key]):
                    _responses_content(b, part, f"{where}.{key}[{position}]")
    else:
        b.generic({k: v for k, v in item.items() if k != "type"}, where)


def _responses_content(b: _Builder, part: Any, where: str) -> None:
    if not isinstance(part, dict) or part.get("type") not in _RESPONSES_CONTENT:
        kind = part.get("type") if isinstance(part, dict) else None
        raise ShapeError(f"{where}.type", f"unknown content part type {kind!r}")
    kind = part["type"]
    if kind in ("input_text", "output_text", "summary_text", "reasoning_text"):
        b.text(part, "text", f"{where}.text")
    elif kind == "refusal":
        b.text(part, "refusal", f"{where}.refusal")
    elif kind == "input_image":
        url = part.get("image_url")
        if isinstance(url, str) and not url.startswith("data:"):
            b.text(part, "image_url", f"{where}.image_url")
        b.binary(where, "images")
    elif kind == "input_audio":
        b.binary(where, "audio")
    else:
        for key in ("filename", "file_url"):
            if isinstance(part.get(key), str):
                b.text(part, key, f"{where}.{key}")
        b.binary(where, "documents")


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
