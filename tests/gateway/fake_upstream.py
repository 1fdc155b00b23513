"""A local fake provider speaking the Anthropic and OpenAI wire formats, streaming included.

It records every request it receives (path prefix = which destination, headers, JSON body) so tests
can assert what left the gateway. Replies echo the last user text (so a restored reply shows exactly
what the user wrote) as text or as a tool call, streamed in small chunks that split surrogates.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class Received:
    prefix: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def text(self) -> str:
        return json.dumps(self.body, ensure_ascii=False)


@dataclass
class FakeProvider:
    received: list[Received] = field(default_factory=list)
    # echo | tool | hang | error500 | overloaded_once | broken_sse | truncated | slow_chunks
    mode: str = "echo"
    chunk_size: int = 3
    fail_count: int = 0
    # How the echoed reply is written (a model writing a surrogate in another form), if set.
    rewrite_reply: Callable[[str], str] | None = None
    # Responses ids: each answer its own, as the API gives them.
    responses: Iterator[int] = field(default_factory=itertools.count)

    def reset(self) -> None:
        self.received.clear()
        self.mode = "echo"
        self.chunk_size = 3
        self.fail_count = 0
        self.rewrite_reply = None

    def all_text(self) -> str:
        return "\n".join(r.text for r in self.received)


def last_user_text(body: dict[str, Any]) -> str:
    """The text of the last user turn, whatever the API shape."""
    if "messages" in body:
        for message in reversed(body["messages"]):
            if message.get("role") in ("user", "tool"):
                return _flatten(message.get("content"))
    if "input" in body:
        items = body["input"]
        if isinstance(items, str):
            return items
        for item in reversed(items):
            if item.get("role") == "user":
                return _flatten(item.get("content"))
            if item.get("type") == "function_call_output":
                return _flatten(item.get("output"))
    return ""


def _flatten(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for block in content:
            if isinstance(block, dict):
                if isinstance(block.get("text"), str):
                    out.append(block["text"])
                elif isinstance(block.get("content"), str | list):
                    out.append(_flatten(block["content"]))
        return "\n".join(out)
    return ""


def chunks(text: str, size: int) -> Iterator[str]:
    for start in range(0, len(text), size):
        yield text[start : start + size]


def sse(event: str | None, data: Any) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


def create_fake(provider: FakeProvider) -> Starlette:
    async def endpoint(request: Request) -> Response:
        prefix, _, rest = request.url.path.lstrip("/").partition("/")
        raw = await request.body()
        body = json.loads(raw)
        provider.received.append(Received(prefix, "/" + rest, dict(request.headers), body))
        mode = provider.mode
        if mode == "hang":
            await asyncio.sleep(3600)
        if mode == "error500":
            return JSONResponse(
                {"error": {"message": "upstream exploded", "type": "api_error"}}, status_code=500
            )
        if mode == "overloaded_once" and provider.fail_count == 0:
            provider.fail_count += 1
            return JSONResponse(
                {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}, status_code=529
            )
        reply = "You said: " + last_user_text(body)
        if provider.rewrite_reply is not None:
            reply = provider.rewrite_reply(reply)
        stream = bool(body.get("stream"))
        if rest.endswith("messages/count_tokens"):
            return JSONResponse({"input_tokens": len(raw) // 4})
        if rest.endswith("messages"):
            return _anthropic(provider, body, reply, stream)
        if rest.endswith("chat/completions"):
            return _chat(provider, body, reply, stream)
        if rest.endswith("responses"):
            return _responses(provider, body, reply, stream)
        return JSONResponse({"error": "no such path"}, status_code=404)

    return Starlette(routes=[Route("/{path:path}", endpoint, methods=["POST"])])


def _stream(provider: FakeProvider, events: list[bytes]) -> StreamingResponse:
    async def gen() -> AsyncIterator[bytes]:
        for index, event in enumerate(events):
            if provider.mode == "broken_sse" and index == len(events) // 2:
                yield b"event: content_block_delta\ndata: {not json\n\n"
                return
            if provider.mode == "truncated" and index == len(events) - 2:
                return
            if provider.mode == "slow_chunks":
                await asyncio.sleep(0.05)
            yield event

    return StreamingResponse(gen(), media_type="text/event-stream")


def _anthropic(provider: FakeProvider, body: dict[str, Any], reply: str, stream: bool) -> Response:
    tool = provider.mode == "tool"
    message_id = "msg_fake01"
    usage = {"input_tokens": 11, "output_tokens": 7}
    content: list[dict[str, Any]] = [{"type": "text", "text": reply}]
    if tool:
        content.append(
            {
                "type": "tool_use",
                "id": "toolu_01",
                "name": "Write",
                "input": {"file_path": "notes.txt", "content": reply},
            }
        )
    if not stream:
        return JSONResponse(
            {"id": message_id, "type": "message", "role": "assistant", "model": body["model"], "content": content,
             "stop_reason": "tool_use" if tool else "end_turn", "stop_sequence": None, "usage": usage}
        )  # fmt: skip
    events = [
        sse(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": body["model"],
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 11, "output_tokens": 1},
                },
            },
        ),
        sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        sse("ping", {"type": "ping"}),
    ]
    events += [
        sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
        )
        for piece in chunks(reply, provider.chunk_size)
    ]
    events.append(sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
    if tool:
        arguments = json.dumps({"file_path": "notes.txt", "content": reply})
        events.append(
            sse(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 1,
                    "content_block": {"type": "tool_use", "id": "toolu_01", "name": "Write", "input": {}},
                },
            )
        )
        events += [
            sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 1,
                    "delta": {"type": "input_json_delta", "partial_json": piece},
                },
            )
            for piece in chunks(arguments, provider.chunk_size)
        ]
        events.append(sse("content_block_stop", {"type": "content_block_stop", "index": 1}))
    events.append(
        sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use" if tool else "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 7},
            },
        )
    )
    events.append(sse("message_stop", {"type": "message_stop"}))
    return _stream(provider, events)


def _chat(provider: FakeProvider, body: dict[str, Any], reply: str, stream: bool) -> Response:
    tool = provider.mode == "tool"
    created = int(time.time())
    arguments = json.dumps({"file_path": "notes.txt", "content": reply})
    if not stream:
        message: dict[str, Any] = {"role": "assistant", "content": reply, "refusal": None}
        if tool:
            message["tool_calls"] = [
                {
                    "id": "call_01",
                    "type": "function",
                    "function": {"name": "write_file", "arguments": arguments},
                }
            ]
        return JSONResponse(
            {"id": "chatcmpl-fake", "object": "chat.completion", "created": created, "model": body["model"],
             "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls" if tool else "stop"}],
             "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}}
        )  # fmt: skip

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return sse(
            None,
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": created,
                "model": body["model"],
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            },
        )

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in chunks(reply, provider.chunk_size)]
    if tool:
        events.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_01",
                            "type": "function",
                            "function": {"name": "write_file", "arguments": ""},
                        }
                    ]
                }
            )
        )
        events += [
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            for piece in chunks(arguments, provider.chunk_size)
        ]
    events.append(chunk({}, "tool_calls" if tool else "stop"))
    if (body.get("stream_options") or {}).get("include_usage"):
        events.append(
            sse(
                None,
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": body["model"],
                    "choices": [],
                    "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
                },
            )
        )
    events.append(b"data: [DONE]\n\n")
    return _stream(provider, events)


def _responses(provider: FakeProvider, body: dict[str, Any], reply: str, stream: bool) -> Response:
    tool = provider.mode == "tool"
    arguments = json.dumps({"path": "notes.txt", "content": reply})
    message_item = {"id": "msg_r1", "type": "message", "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": reply, "annotations": []}]}  # fmt: skip
    output: list[dict[str, Any]] = [message_item]
    if tool:
        output.append(
            {
                "id": "fc_1",
                "type": "function_call",
                "status": "completed",
                "call_id": "call_1",
                "name": "write_file",
                "arguments": arguments,
            }
        )
    response = {
        "id": f"resp_fake{next(provider.responses)}", "object": "response", "created_at": int(time.time()), "status": "completed",
        "model": body["model"], "output": output, "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
        "usage": {"input_tokens": 11, "output_tokens": 7, "total_tokens": 18,
                  "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}},
        "error": None, "incomplete_details": None, "instructions": None, "metadata": {}, "temperature": 1.0, "top_p": 1.0,
    }  # fmt: skip
    if not stream:
        return JSONResponse(response)
    seq = iter(range(10_000))
    start = {**response, "status": "in_progress", "output": [], "usage": None}
    events = [
        sse(
            "response.created", {"type": "response.created", "sequence_number": next(seq), "response": start}
        ),
        sse(
            "response.in_progress",
            {"type": "response.in_progress", "sequence_number": next(seq), "response": start},
        ),
        sse(
            "response.output_item.added",
            {
                "type": "response.output_item.added",
                "sequence_number": next(seq),
                "output_index": 0,
                "item": {**message_item, "status": "in_progress", "content": []},
            },
        ),
        sse(
            "response.content_part.added",
            {
                "type": "response.content_part.added",
                "sequence_number": next(seq),
                "item_id": "msg_r1",
                "output_index": 0,
                "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": []},
            },
        ),
    ]
    events += [
        sse(
            "response.output_text.delta",
            {
                "type": "response.output_text.delta",
                "sequence_number": next(seq),
                "item_id": "msg_r1",
                "output_index": 0,
                "content_index": 0,
                "delta": piece,
                "logprobs": [],
            },
        )
        for piece in chunks(reply, provider.chunk_size)
    ]
    events += [
        sse(
            "response.output_text.done",
            {
                "type": "response.output_text.done",
                "sequence_number": next(seq),
                "item_id": "msg_r1",
                "output_index": 0,
                "content_index": 0,
                "text": reply,
                "logprobs": [],
            },
        ),
        sse(
            "response.content_part.done",
            {
                "type": "response.content_part.done",
                "sequence_number": next(seq),
                "item_id": "msg_r1",
                "output_index": 0,
                "content_index": 0,
                "part": {"type": "output_text", "text": reply, "annotations": []},
            },
        ),
        sse(
            "response.output_item.done",
            {
                "type": "response.output_item.done",
                "sequence_number": next(seq),
                "output_index": 0,
                "item": message_item,
            },
        ),
    ]
    if tool:
        call = output[1]
        events.append(
            sse(
                "response.output_item.added",
                {
                    "type": "response.output_item.added",
                    "sequence_number": next(seq),
                    "output_index": 1,
                    "item": {**call, "status": "in_progress", "arguments": ""},
                },
            )
        )
        events += [
            sse(
                "response.function_call_arguments.delta",
                {
                    "type": "response.function_call_arguments.delta",
                    "sequence_number": next(seq),
                    "item_id": "fc_1",
                    "output_index": 1,
                    "delta": piece,
                },
            )
            for piece in chunks(arguments, provider.chunk_size)
        ]
        events.append(
            sse(
                "response.function_call_arguments.done",
                {
                    "type": "response.function_call_arguments.done",
                    "sequence_number": next(seq),
                    "item_id": "fc_1",
                    "output_index": 1,
                    "arguments": arguments,
                },
            )
        )
        events.append(
            sse(
                "response.output_item.done",
                {
                    "type": "response.output_item.done",
                    "sequence_number": next(seq),
                    "output_index": 1,
                    "item": call,
                },
            )
        )
    events.append(
        sse(
            "response.completed",
            {"type": "response.completed", "sequence_number": next(seq), "response": response},
        )
    )
    return _stream(provider, events)
