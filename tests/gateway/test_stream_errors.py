"""A stream the gateway cannot finish ends with the client API's own error event, on which the real
SDKs raise; the outcome event counts the attempts actually made."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.gateway.conftest import Gateway

NOTE = (
    "Write a follow-up letter to patient Maria Garcia, born 1984-07-12, reachable at jsmith61@gmail.com; "
    "her social 478-22-9134 is on file."
)


def _events(text: str) -> list[tuple[str | None, Any]]:
    out = []
    for block in text.strip().split("\n\n"):
        name, data = None, None
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
        if data is not None:
            out.append((name, json.loads(data) if data != "[DONE]" else data))
    return out


def _stream(gw: Gateway, path: str, body: dict[str, Any]) -> list[tuple[str | None, Any]]:
    response = httpx.post(
        gw.url + path,
        json={**body, "stream": True},
        headers={"authorization": f"Bearer {gw.key}"},
        timeout=20,
    )
    assert response.status_code == 200
    return _events(response.text)


@pytest.mark.parametrize("mode", ["broken_sse", "truncated"])
@pytest.mark.parametrize("text", ["hello there", NOTE])
def test_responses_stream_errors_take_the_responses_shape(gateway: Gateway, mode: str, text: str) -> None:
    gateway.provider.mode = mode
    events = _stream(gateway, "/v1/responses", {"model": "gpt-5", "input": text})
    (error_name, error), (failed_name, failed) = events[-2:]
    assert error_name == "error" and failed_name == "response.failed"
    # The documented event (type, code, message, param, sequence_number) and the error object the
    # API sends with it, on which the OpenAI SDKs raise.
    assert error["type"] == "error" and error["code"] == "api_error" and error["param"] is None
    assert "the answer is incomplete" in error["message"]
    assert error["error"] == {"type": "api_error", "code": None, "message": error["message"], "param": None}
    numbers = [data["sequence_number"] for _, data in events]
    assert numbers == list(range(len(events)))
    created = events[0][1]["response"]
    assert failed["response"]["id"] == created["id"] and failed["response"]["status"] == "failed"
    assert failed["response"]["error"] == {"code": "server_error", "message": error["message"]}


def test_the_openai_sdk_raises_on_a_broken_responses_stream(gateway: Gateway) -> None:
    client = openai.OpenAI(api_key=gateway.key, base_url=gateway.url + "/v1", max_retries=0)
    gateway.provider.mode = "broken_sse"
    with pytest.raises(openai.APIError, match="broken stream"):
        for _ in client.responses.create(model="gpt-5", input="hello", stream=True):
            pass
    gateway.provider.mode = "truncated"
    with (
        pytest.raises(openai.APIError, match="ended the stream early"),
        client.responses.stream(model="gpt-5", input="hello") as stream,
    ):
        for _ in stream:
            pass


def test_chat_and_anthropic_stream_errors_take_their_shapes(gateway: Gateway) -> None:
    gateway.provider.mode = "broken_sse"
    name, data = _stream(
        gateway, "/v1/chat/completions", {"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]}
    )[-1]
    assert name is None and set(data) == {"error"} and data["error"]["type"] == "api_error"
    with pytest.raises(openai.APIError, match="broken stream"):
        chat = openai.OpenAI(
            api_key=gateway.key, base_url=gateway.url + "/v1", max_retries=0
        ).chat.completions
        for _ in chat.create(model="gpt-5", messages=[{"role": "user", "content": "hi"}], stream=True):
            pass
    message = {
        "model": "claude-test-sonnet",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    }
    name, data = _stream(gateway, "/v1/messages", message)[-1]
    assert name == "error" and data["type"] == "error" and set(data["error"]) == {"type", "message"}
    client = anthropic.Anthropic(api_key=gateway.key, base_url=gateway.url, max_retries=0)
    with (
        pytest.raises(anthropic.APIError, match="broken stream"),
        client.messages.stream(
            model="claude-test-sonnet", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        for _ in stream:
            pass


@pytest.mark.parametrize("stream", [False, True])
def test_a_timeout_on_the_first_attempt_counts_one_attempt(gateway: Gateway, stream: bool) -> None:
    gateway.provider.mode = "hang"
    before = len(gateway.settled_events())
    response = httpx.post(
        gateway.url + "/v1/messages",
        json={"model": "claude-test-sonnet", "max_tokens": 5, "stream": stream, "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-api-key": gateway.key},
        timeout=20,
    )  # fmt: skip
    assert response.status_code == 504
    assert response.headers["x-phiwarden-decision"].startswith("allow; ")
    events = gateway.wait_events(before + 2)[before:]
    assert len(gateway.provider.received) == 1
    assert events[1].message is not None and "attempts=1 " in events[1].message + " "
