"""The gateway driven by the real OpenAI and Anthropic SDKs (sync, async, streaming, tool use).

The fake provider echoes the last user text, so a correctly restored answer is exactly "You said: "
plus what the user wrote, while the provider itself must never see a planted value.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import anthropic
import openai
import pytest

from phiwarden.gateway.store import GatewayStore
from tests.gateway.conftest import VENDOR_SECRET, Gateway

# Detected values in prose without field labels: after pseudonymization nothing restricted remains,
# so the request may go to the BAA vendor with surrogates.
NOTE = (
    "Write a follow-up letter to patient Maria Garcia, born 1984-07-12, reachable at jsmith61@gmail.com; "
    "her social 478-22-9134 is on file."
)
VALUES = ("Maria Garcia", "1984-07-12", "jsmith61@gmail.com", "478-22-9134")
# A labeled patient record stays restricted after masking (record structure): routed to the local model.
RECORD = "Patient: Maria Garcia\nDOB: 1984-07-12\nSSN: 478-22-9134\nMRN: MRN-00482913\nSummarize the chart."
EXPECTED = "You said: " + NOTE


def _anthropic(gw: Gateway, **kwargs: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=gw.key, base_url=gw.url, max_retries=0, **kwargs)


def _openai(gw: Gateway, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(api_key=gw.key, base_url=gw.url + "/v1", max_retries=0, **kwargs)


def _send_in_conversation_pinned_elsewhere(gw: Gateway, store_url: str, conversation: str) -> None:
    """Pin `conversation` to the local model through a store connection of its own (as another
    replica would), then send a harmless prompt in it."""
    other_replica = GatewayStore(store_url)
    row = gw.runtime.vaults.keys.row_id("ana@example.org", f"h:{conversation}")
    other_replica.pin_set(row, "local-llm", time.time() + 600)
    other_replica.close()
    client = _anthropic(gw, default_headers={"x-phiwarden-conversation": conversation})
    client.messages.create(
        model="claude-test-sonnet", max_tokens=10, messages=[{"role": "user", "content": "thanks!"}]
    )


def _assert_clean(gw: Gateway, *values: str) -> None:
    sent = gw.provider.all_text()
    assert gw.provider.received, "nothing reached the provider"
    for value in values or VALUES:
        assert value not in sent, f"{value!r} reached the provider"


def test_anthropic_sync_pseudonymized_and_restored(gateway: Gateway) -> None:
    message = _anthropic(gateway).messages.create(
        model="claude-test-sonnet",
        max_tokens=200,
        system=[{"type": "text", "text": "You help clinicians.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": NOTE}],
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == EXPECTED
    _assert_clean(gateway)
    received = gateway.provider.received[0]
    assert received.prefix == "anthropic"
    # cache_control passes through unchanged; the vendor credential is the gateway's, never the key.
    assert received.body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert received.headers["x-api-key"] == VENDOR_SECRET
    assert gateway.key not in json.dumps(received.headers)


def test_anthropic_stream_text_and_tool_use_restored(gateway: Gateway) -> None:
    gateway.provider.mode = "tool"
    gateway.provider.chunk_size = 2
    with _anthropic(gateway).messages.stream(
        model="claude-test-sonnet", max_tokens=200, messages=[{"role": "user", "content": NOTE}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == EXPECTED
    tool = next(b for b in final.content if b.type == "tool_use")
    assert tool.input == {"file_path": "notes.txt", "content": EXPECTED}
    _assert_clean(gateway)


def test_anthropic_async_stream(gateway: Gateway) -> None:
    async def main() -> str:
        client = anthropic.AsyncAnthropic(api_key=gateway.key, base_url=gateway.url, max_retries=0)
        async with client.messages.stream(
            model="claude-test-sonnet", max_tokens=100, messages=[{"role": "user", "content": NOTE}]
        ) as stream:
            return "".join([t async for t in stream.text_stream])

    assert asyncio.run(main()) == EXPECTED
    _assert_clean(gateway)


def test_anthropic_count_tokens_and_models(gateway: Gateway) -> None:
    client = _anthropic(gateway)
    counted = client.messages.count_tokens(
        model="claude-test-sonnet", messages=[{"role": "user", "content": NOTE}]
    )
    assert counted.input_tokens > 0
    _assert_clean(gateway)
    models = [m.id for m in client.models.list()]
    # The Anthropic shape lists the models of destinations that speak the Messages API: the local
    # destination by its model (its `models` are globs), no OpenAI model, no expired destination.
    assert models == ["claude-test-sonnet", "llama-local"]
    assert client.models.retrieve("claude-opus-4").id == "claude-opus-4"  # served by claude-*


def test_openai_chat_sync_stream_and_tools(gateway: Gateway) -> None:
    client = _openai(gateway)
    completion = client.chat.completions.create(
        model="gpt-5",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": NOTE}],
    )
    assert completion.choices[0].message.content == EXPECTED
    gateway.provider.mode = "tool"
    gateway.provider.chunk_size = 1
    stream = client.chat.completions.create(
        model="gpt-5",
        messages=[{"role": "user", "content": NOTE}],
        stream=True,
        stream_options={"include_usage": True},
        tools=[{"type": "function", "function": {"name": "write_file", "parameters": {"type": "object"}}}],
    )
    text, arguments = "", ""
    for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for call in choice.delta.tool_calls or []:
                arguments += (call.function.arguments or "") if call.function else ""
    assert text == EXPECTED
    assert json.loads(arguments) == {"file_path": "notes.txt", "content": EXPECTED}
    _assert_clean(gateway)
    assert {r.prefix for r in gateway.provider.received} == {"openai"}


def test_openai_async_chat(gateway: Gateway) -> None:
    async def main() -> str | None:
        client = openai.AsyncOpenAI(api_key=gateway.key, base_url=gateway.url + "/v1", max_retries=0)
        done = await client.chat.completions.create(
            model="gpt-5", messages=[{"role": "user", "content": NOTE}]
        )
        return done.choices[0].message.content

    assert asyncio.run(main()) == EXPECTED
    _assert_clean(gateway)


def test_openai_responses_sync_and_stream(gateway: Gateway) -> None:
    client = _openai(gateway)
    response = client.responses.create(model="gpt-5", instructions="Be kind.", input=NOTE)
    assert response.output_text == EXPECTED
    gateway.provider.mode = "tool"
    gateway.provider.chunk_size = 2
    deltas, arguments, completed = "", "", None
    with client.responses.stream(model="gpt-5", input=[{"role": "user", "content": NOTE}]) as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                deltas += event.delta
            elif event.type == "response.function_call_arguments.done":
                arguments = event.arguments
            elif event.type == "response.completed":
                completed = event.response
    assert deltas == EXPECTED
    assert json.loads(arguments)["content"] == EXPECTED
    assert completed is not None and completed.output_text == EXPECTED
    _assert_clean(gateway)


def test_openai_models_list(gateway: Gateway) -> None:
    ids = [m.id for m in _openai(gateway).models.list()]
    assert ids == ["gpt-5", "llama-local"]


def test_restricted_record_goes_only_to_the_local_model_and_stays_there(gateway: Gateway) -> None:
    client = _anthropic(gateway, default_headers={"x-phiwarden-conversation": "conv-pin-1"})
    message = client.messages.create(
        model="claude-test-sonnet", max_tokens=100, messages=[{"role": "user", "content": RECORD}]
    )
    assert message.content[0].type == "text" and message.content[0].text == "You said: " + RECORD
    assert [r.prefix for r in gateway.provider.received] == ["local"]
    assert gateway.provider.received[0].body["model"] == "llama-local"
    # The conversation is pinned: a harmless follow-up stays on the local model too.
    client.messages.create(
        model="claude-test-sonnet", max_tokens=100, messages=[{"role": "user", "content": "thanks!"}]
    )
    assert [r.prefix for r in gateway.provider.received] == ["local", "local"]


@pytest.mark.parametrize(
    ("content", "secret"),
    [
        ("PID|1||00482913^^^HOSP^MR||SMITH^JOHN^A||19610304|M|||14 ELM ST^^BOSTON^MA^02118", "00482913"),
        ("curl https://ehr.example.com/api/chart?mrn=00482913&name=Smith", "00482913"),
        (
            "deploy with AWS_SECRET_ACCESS_KEY=Zx8kP2mQ9vR4tL7wN1bC5dF3gH6jK0sA2eY8uI4o",
            "Zx8kP2mQ9vR4tL7wN1bC5dF3gH6jK0sA2eY8uI4o",
        ),
    ],
)
def test_what_other_proxies_let_through_never_reaches_a_cloud_vendor(
    gateway: Gateway, content: str, secret: str
) -> None:
    client = _openai(gateway)
    done = client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": content}])
    assert done.choices[0].message.content == "You said: " + content
    for received in gateway.provider.received:
        assert received.prefix == "local" or secret not in received.text


def test_audit_events_before_and_after_each_request(gateway: Gateway) -> None:
    before = len(gateway.settled_events())
    _anthropic(gateway).messages.create(
        model="claude-test-sonnet", max_tokens=50, messages=[{"role": "user", "content": NOTE}]
    )
    events = gateway.wait_events(before + 2)[before:]
    assert len(events) == 2
    decision, outcome = events
    assert decision.correlation_id == outcome.correlation_id
    assert decision.decision.action == "pseudonymize"
    assert decision.classification.tier == "restricted"
    assert set(decision.classification.categories) >= {"name", "ssn", "email", "date"}
    assert all(len(h) == 64 for hs in decision.classification.value_hashes.values() for h in hs)
    assert decision.actor.user_id == "ana@example.org"
    assert decision.actor.client_tool == "Anthropic SDK (Python)"
    assert decision.dst_endpoint is not None and decision.dst_endpoint.name == "anthropic-baa"
    assert decision.decision.rule is not None and decision.decision.rule.startswith("enforce:")
    assert (
        outcome.message is not None
        and "upstream_status=200" in outcome.message
        and "input_tokens=11" in outcome.message
    )
    record = json.dumps([e.to_ocsf() for e in events])
    for value in VALUES:
        assert value not in record


def test_overhead_header_on_every_answer(gateway: Gateway) -> None:
    raw = _anthropic(gateway).messages.with_raw_response.create(
        model="claude-test-sonnet", max_tokens=10, messages=[{"role": "user", "content": "hello"}]
    )
    assert float(raw.headers["x-phiwarden-overhead-ms"]) >= 0
    assert raw.headers["x-phiwarden-decision"].startswith("allow; tier=public")


def test_a_pin_another_replica_set_is_honoured(gateway: Gateway) -> None:
    # Another replica, sharing the store, routed this conversation: the pin is read from the store on
    # every request, so a harmless prompt of that conversation still goes to the local model.
    _send_in_conversation_pinned_elsewhere(gateway, gateway.runtime.store.url, "conv-pinned-elsewhere")
    assert [r.prefix for r in gateway.provider.received] == ["local"]


def test_the_decision_event_is_durable_before_the_upstream_call(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream = gateway.runtime.upstream
    send = upstream.send
    seen: list[list[str]] = []

    async def checked_send(*args: Any, **kwargs: Any) -> Any:
        seen.append([e.status for e in gateway.events() if e.correlation_id == correlation_id()])
        return await send(*args, **kwargs)

    def correlation_id() -> str:
        # The newest decision event is this request's (requests here are sequential).
        return gateway.events()[-1].correlation_id or ""

    before = len(gateway.settled_events())
    monkeypatch.setattr(upstream, "send", checked_send)
    _anthropic(gateway).messages.create(
        model="claude-test-sonnet", max_tokens=10, messages=[{"role": "user", "content": NOTE}]
    )
    events = gateway.wait_events(before + 2)[before:]
    assert [e.status for e in events] == ["unknown", "success"]
    assert seen == [["unknown"]]  # the decision event was in the store when the call started


def test_a_gateway_on_postgresql_pseudonymizes_and_honours_pins(make_gateway: Any, pg_url: str) -> None:
    # The store replicas share: the conversation's state is read in a worker thread during the scan.
    gw: Gateway = make_gateway(store=pg_url)
    message = _anthropic(gw).messages.create(
        model="claude-test-sonnet", max_tokens=200, messages=[{"role": "user", "content": NOTE}]
    )
    assert message.content[0].type == "text" and message.content[0].text == EXPECTED
    _assert_clean(gw)
    _send_in_conversation_pinned_elsewhere(gw, pg_url, "conv-pg-pinned")
    assert gw.provider.received[-1].prefix == "local"
