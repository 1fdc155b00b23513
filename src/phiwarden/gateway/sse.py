"""Server-sent events from the upstream: parsing, restoring surrogates per API, usage capture.

The three streams and what is restored in them:

- Anthropic Messages: `message_start`, per block `content_block_start` / `content_block_delta` /
  `content_block_stop`, `message_delta`, `message_stop`, `ping`, `error`. `text_delta` text and
  `input_json_delta` partial JSON are restored per block, a `citations_delta` citation whole;
  `thinking_delta` and `signature_delta` pass unchanged (thinking is signed by the vendor and goes back
  to it byte for byte).
- OpenAI Chat Completions: `data: {chat.completion.chunk}` lines, then `data: [DONE]`. Per choice,
  `delta.content`, `delta.refusal` and each tool call's `function.arguments` are restored.
- OpenAI Responses: `response.created`, `response.in_progress`, `response.output_item.added`,
  `response.content_part.added`, `response.output_text.delta`, `response.output_text.done`,
  `response.function_call_arguments.delta/done`, `response.reasoning_summary_text.delta/done`,
  `response.reasoning_text.delta/done`, `response.content_part.done`, `response.output_item.done`,
  `response.completed` … Deltas are restored per item and part; the `.done` events and the final
  response carry full text, restored whole. Events are renumbered (`sequence_number`) since held-back
  text is released in events of its own. The response id (`response.created`, else the first event
  carrying the response) is what the gateway records to find the conversation of a later
  `previous_response_id`.

A held-back tail is released when its block, choice or item ends, so nothing is lost and nothing waits
longer than the longest surrogate needs.

A stream the gateway cannot finish (the upstream broke it, timed out, or sent something unreadable)
ends with the API's own error event: Anthropic `event: error` with `{"type": "error", "error": {…}}`;
Chat Completions `data: {"error": {…}}`; Responses `event: error` (`type`, `code`, `message`,
`param`, `sequence_number` as documented, and the `error` object the API also sends, on which the
OpenAI SDKs raise) followed by `response.failed` (what Codex reads).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from phiwarden.gateway.errors import GatewayError, error_body
from phiwarden.gateway.restore_body import restore_anthropic_block, restore_citation, restore_response
from phiwarden.policy.gateway import Api
from phiwarden.transform.restore import Restorer, StreamRestorer

# Stream kinds of an Anthropic block and the delta that carries each.
_BLOCK_DELTAS = (("text", "text_delta", "text"), ("json", "input_json_delta", "partial_json"))
# Responses events whose `delta` is text the user reads, and those that end such a stream.
_TEXT_DELTAS = frozenset({
    "response.output_text.delta", "response.refusal.delta", "response.reasoning_summary_text.delta",
    "response.reasoning_text.delta",
})  # fmt: skip
_TEXT_DONE = frozenset({
    "response.output_text.done", "response.refusal.done", "response.reasoning_summary_text.done",
    "response.reasoning_text.done", "response.function_call_arguments.done",
})  # fmt: skip


class StreamFormatError(Exception):
    """The upstream stream is not valid SSE/JSON: the stream is ended with an error (fail closed)."""


@dataclass(slots=True)
class Event:
    name: str | None
    data: str


class SseParser:
    """Incremental parser: bytes in, complete events out (CRLF, LF and CR line ends)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._name: str | None = None
        self._data: list[str] = []
        self.max_event_bytes = 64 * 1024 * 1024

    def feed(self, chunk: bytes) -> Iterator[Event]:
        self._buffer += chunk
        if len(self._buffer) > self.max_event_bytes:
            raise StreamFormatError("an upstream SSE event is larger than 64 MiB")
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                return
            end, after = cut
            raw, self._buffer = self._buffer[:end], self._buffer[after:]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise StreamFormatError("the upstream stream is not valid UTF-8") from None
            event = self._line(line)
            if event is not None:
                yield event

    def _line(self, line: str) -> Event | None:
        if not line:
            if not self._data and self._name is None:
                return None
            event = Event(self._name, "\n".join(self._data))
            self._name, self._data = None, []
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._name = value
        elif name == "data":
            self._data.append(value)
        return None

    def close(self) -> Iterator[Event]:
        if self._buffer.strip():
            yield from self.feed(b"\n\n")
        elif self._data:
            yield from self._line_flush()

    def _line_flush(self) -> Iterator[Event]:
        event = self._line("")
        if event is not None:
            yield event


def _line_end(buffer: bytes) -> tuple[int, int] | None:
    lf = buffer.find(b"\n")
    cr = buffer.find(b"\r")
    if cr != -1 and (lf == -1 or cr < lf):
        if cr + 1 == len(buffer):
            return None  # a CR at the end may be the first half of CRLF
        return (cr, cr + 2) if buffer[cr + 1 : cr + 2] == b"\n" else (cr, cr + 1)
    if lf != -1:
        return lf, lf + 1
    return None


def encode(event_name: str | None, data: Any) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    head = f"event: {event_name}\n" if event_name else ""
    return f"{head}data: {text}\n\n".encode()


@dataclass(slots=True)
class Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None


@dataclass(slots=True)
class StreamRewriter:
    """Restores one upstream stream into the client's, event by event."""

    api: Api
    restorer: Restorer
    json_restorer: Restorer
    usage: Usage = field(default_factory=Usage)
    _streams: dict[Any, StreamRestorer] = field(default_factory=dict)
    _sequence: int = 0
    _raw: str = ""
    done: bool = False
    # Responses: the latest response object and sequence number seen, for `response.failed`.
    _response: dict[str, Any] | None = None
    _upstream_sequence: int = -1

    @classmethod
    def create(cls, api: Api, restorer: Restorer, json_restorer: Restorer) -> StreamRewriter:
        return cls(api, restorer, json_restorer)

    @property
    def active(self) -> bool:
        return bool(self.restorer)

    @property
    def response_id(self) -> str | None:
        """The upstream's id of a Responses answer, once its stream has named it."""
        found = (self._response or {}).get("id")
        return found if isinstance(found, str) and found else None

    def _stream(self, key: Any, json_mode: bool) -> StreamRestorer:
        found = self._streams.get(key)
        if found is None:
            found = self._streams[key] = (self.json_restorer if json_mode else self.restorer).stream()
        return found

    def rewrite(self, event: Event) -> list[bytes]:
        if self.api == "chat_completions":
            return self._chat(event)
        try:
            data = json.loads(event.data)
        except ValueError:
            raise StreamFormatError(
                f"upstream sent an event that is not JSON ({event.name or 'data'})"
            ) from None
        if not isinstance(data, dict):
            raise StreamFormatError("upstream sent an event that is not a JSON object")
        self._raw = event.data
        if self.api == "messages":
            return self._messages(event.name, data)
        return self._responses(event.name, data)

    # --- Anthropic ---------------------------------------------------------------------------------

    def _messages(self, name: str | None, data: dict[str, Any]) -> list[bytes]:
        kind = data.get("type", name)
        out: list[bytes] = []
        if kind == "message_start":
            usage = data.get("message", {}).get("usage") or {}
            self.usage.input_tokens = _int(usage.get("input_tokens"))
        elif kind == "message_delta":
            usage = data.get("usage") or {}
            self.usage.output_tokens = _int(usage.get("output_tokens")) or self.usage.output_tokens
            if usage.get("input_tokens") is not None:
                self.usage.input_tokens = _int(usage.get("input_tokens"))
        elif kind == "message_stop":
            self.done = True
        if not self.active:
            return [encode(name, self._raw)]
        index = data.get("index")
        if kind == "content_block_start":
            block = data.get("content_block")
            if isinstance(block, dict):
                restore_anthropic_block(block, self.restorer)
        elif kind == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta":
                delta["text"] = self._stream(("text", index), False).feed(str(delta.get("text", "")))
                if not delta["text"]:
                    return []
            elif delta.get("type") == "input_json_delta":
                delta["partial_json"] = self._stream(("json", index), True).feed(
                    str(delta.get("partial_json", ""))
                )
                if not delta["partial_json"]:
                    return []
            elif delta.get("type") == "citations_delta" and isinstance(delta.get("citation"), dict):
                restore_citation(delta["citation"], self.restorer)
        elif kind == "content_block_stop":
            for key, delta_type, field_name in _BLOCK_DELTAS:
                stream = self._streams.pop((key, index), None)
                tail = stream.flush() if stream is not None else ""
                if tail:
                    out.append(
                        encode(
                            "content_block_delta",
                            {
                                "type": "content_block_delta",
                                "index": index,
                                "delta": {"type": delta_type, field_name: tail},
                            },
                        )
                    )
        out.append(encode(name, data))
        return out

    # --- OpenAI Chat Completions -------------------------------------------------------------------

    def _chat(self, event: Event) -> list[bytes]:
        if event.data.strip() == "[DONE]":
            self.done = True
            return [*self._chat_flush_all(), b"data: [DONE]\n\n"]
        try:
            data = json.loads(event.data)
        except ValueError:
            raise StreamFormatError("upstream sent a chunk that is not JSON") from None
        if not isinstance(data, dict):
            raise StreamFormatError("upstream sent a chunk that is not a JSON object")
        if "error" in data and "choices" not in data:
            return [encode(event.name, data)]
        usage = data.get("usage")
        if isinstance(usage, dict):
            self.usage.input_tokens = _int(usage.get("prompt_tokens"))
            self.usage.output_tokens = _int(usage.get("completion_tokens"))
        if not self.active:
            return [encode(event.name, event.data)]
        for choice in data.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0)
            delta = choice.get("delta") or {}
            for key in ("content", "refusal", "reasoning_content"):
                if isinstance(delta.get(key), str):
                    delta[key] = self._stream(("chat", index, key), False).feed(delta[key])
            for call in delta.get("tool_calls") or []:
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                    function["arguments"] = self._stream(("call", index, call.get("index", 0)), True).feed(
                        function["arguments"]
                    )
            if choice.get("finish_reason") is not None:
                self._chat_flush_choice(index, delta)
                choice["delta"] = delta
        return [encode(event.name, data)]

    def _chat_flush_choice(self, index: Any, delta: dict[str, Any]) -> None:
        for key in ("content", "refusal", "reasoning_content"):
            stream = self._streams.pop(("chat", index, key), None)
            tail = stream.flush() if stream is not None else ""
            if tail:
                delta[key] = (delta.get(key) or "") + tail
        for stream_key in [k for k in self._streams if k[0] == "call" and k[1] == index]:
            tail = self._streams.pop(stream_key).flush()
            if tail:
                calls = delta.setdefault("tool_calls", [])
                calls.append({"index": stream_key[2], "function": {"arguments": tail}})

    def _chat_flush_all(self) -> list[bytes]:
        indexes = sorted({k[1] for k in self._streams}, key=str)
        out = []
        for index in indexes:
            delta: dict[str, Any] = {}
            self._chat_flush_choice(index, delta)
            if delta:
                out.append(
                    encode(
                        None,
                        {
                            "object": "chat.completion.chunk",
                            "choices": [{"index": index, "delta": delta, "finish_reason": None}],
                        },
                    )
                )
        return out

    # --- OpenAI Responses --------------------------------------------------------------------------

    def _responses(self, name: str | None, data: dict[str, Any]) -> list[bytes]:
        kind = str(data.get("type", name))
        number = data.get("sequence_number")
        if isinstance(number, int):
            self._upstream_sequence = number
        if kind in ("response.created", "response.in_progress") and isinstance(data.get("response"), dict):
            self._response = data["response"]  # replaced by its restored copy below when restoring
        elif self._response is None and isinstance(data.get("response"), dict):
            self._response = data["response"]  # a stream that did not open with response.created
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            self.done = True
            usage = (data.get("response") or {}).get("usage") or {}
            self.usage.input_tokens = _int(usage.get("input_tokens"))
            self.usage.output_tokens = _int(usage.get("output_tokens"))
        if not self.active:
            return [encode(name, self._raw)]
        out: list[tuple[str | None, dict[str, Any]]] = []
        key = tuple(data.get(k) for k in ("item_id", "output_index", "content_index", "summary_index"))
        if kind in _TEXT_DELTAS:
            data["delta"] = self._stream(("text", *key), False).feed(str(data.get("delta", "")))
        elif kind == "response.function_call_arguments.delta":
            data["delta"] = self._stream(("json", *key), True).feed(str(data.get("delta", "")))
        elif kind in _TEXT_DONE:
            json_mode = kind == "response.function_call_arguments.done"
            stream = self._streams.pop(("json" if json_mode else "text", *key), None)
            tail = stream.flush() if stream is not None else ""
            if tail:
                delta_kind = kind.replace(".done", ".delta")
                flushed = {k: v for k, v in data.items() if k not in ("text", "arguments", "refusal")}
                out.append((delta_kind if name else None, {**flushed, "type": delta_kind, "delta": tail}))
            for field_name in ("text", "refusal", "arguments"):
                if isinstance(data.get(field_name), str):
                    restorer = self.json_restorer if field_name == "arguments" else self.restorer
                    data[field_name] = restorer.restore(data[field_name])
        else:
            for field_name in ("response", "item", "part"):
                if isinstance(data.get(field_name), dict):
                    data[field_name] = restore_response(
                        "responses", data[field_name], self.restorer, self.json_restorer, nested=field_name
                    )
            if kind in ("response.created", "response.in_progress") and isinstance(
                data.get("response"), dict
            ):
                self._response = data["response"]
        out.append((name, data))
        encoded = []
        for event_name, payload in out:
            if "sequence_number" in payload:
                payload["sequence_number"] = self._sequence
            self._sequence += 1
            encoded.append(encode(event_name, payload))
        return encoded

    def error_events(self, error: GatewayError) -> bytes:
        """The events that end this stream with `error`, in the client API's shape."""
        if self.api == "messages":
            return encode("error", error_body("anthropic", error).decode("utf-8"))
        if self.api == "chat_completions":
            return encode(None, error_body("openai", error).decode("utf-8"))
        number = self._sequence if self.active else self._upstream_sequence + 1
        details = {"type": error.type, "code": error.code, "message": error.message, "param": error.param}
        failed = dict(self._response or _empty_response())
        failed.update(status="failed", error={"code": "server_error", "message": error.message})
        return encode(
            "error",
            {"type": "error", "code": error.code or error.type, "message": error.message,
             "param": error.param, "sequence_number": number, "error": details},
        ) + encode(
            "response.failed", {"type": "response.failed", "sequence_number": number + 1, "response": failed}
        )  # fmt: skip


def _empty_response() -> dict[str, Any]:
    """A response object for a stream that failed before the upstream sent one."""
    return {
        "id": f"resp_{uuid.uuid4().hex}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "failed",
        "output": [],
    }


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
