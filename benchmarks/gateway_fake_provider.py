"""The fake provider of `gateway_latency.py`: an Anthropic Messages endpoint that answers at once.

    python benchmarks/gateway_fake_provider.py PORT

A raw ASGI app (no framework) so that the direct path measures the network hop, not a framework.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import uvicorn

from phiwarden.gateway.server import NoDelayH11Protocol

REPLY = json.dumps(
    {
        "id": "msg_b",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [{"type": "text", "text": "Done: the function returns early when the list is empty."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 12},
    }
).encode()
EVENTS = [
    (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_b",
                "type": "message",
                "role": "assistant",
                "model": "m",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 10, "output_tokens": 1},
            },
        },
    ),
    (
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ),
    *[
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}},
        )
        for w in ["Done", ": the", " function", " returns", " early."]
    ],
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 5},
        },
    ),
    ("message_stop", {"type": "message_stop"}),
]
STREAM = b"".join(f"event: {n}\ndata: {json.dumps(d)}\n\n".encode() for n, d in EVENTS)


def _echo(body: bytes) -> bytes:
    text = json.loads(body)["messages"][-1]["content"]
    out = json.loads(REPLY)
    out["content"][0]["text"] = "You said: " + text[:200]
    return json.dumps(out).encode()


async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    stream = b'"stream":true' in body or b'"stream": true' in body
    if stream:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send({"type": "http.response.body", "body": STREAM})
        return
    reply = _echo(body) if b"echo" in scope.get("path", "").encode() else REPLY
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(reply)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": reply})


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        access_log=False,
        http=NoDelayH11Protocol,
    )
