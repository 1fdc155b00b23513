"""Every form of a value found in a request leaves as its surrogate in the same form, wherever it sits
(system prompts, earlier turns, tool inputs and results; both API shapes), and comes back restored;
masking masks every form. Driven by the real SDKs against the fake provider, which records what it
received."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.gateway.conftest import Gateway

NOTE = "Patient Marisol Okonkwo, SSN 518-42-7731, MRN-00482913, DOB 1984-07-12, needs a reminder email"
LATER = (
    "Also tell Okonkwo the clinic moved. Put it in Okonkwo's chart. REMINDER FOR MARISOL OKONKWO, "
    "file: marisol okonkwo.txt. Her SSN without dashes is 518427731 (518 42 7731), written "
    "07/12/1984 and July 12, 1984; record 00482913. Dear Marisol, your visit is due."
)
RESULT = "Okonkwo.txt: Okonkwo, DOB 07/12/1984"
FORMS = (
    "Okonkwo", "OKONKWO", "Marisol", "marisol okonkwo", "518427731", "518 42 7731", "518-42-7731",
    "07/12/1984", "July 12, 1984", "1984-07-12", "00482913",
)  # fmt: skip


def _leaked(gw: Gateway) -> list[str]:
    """The forms standing as words anywhere in what the provider received."""
    sent = gw.provider.all_text()
    return [f for f in FORMS if re.search(rf"(?<![A-Za-z0-9]){re.escape(f)}(?![A-Za-z0-9])", sent)]


def _conversation() -> str:
    return f"forms-{uuid.uuid4()}"


@pytest.mark.parametrize("stream", [False, True])
def test_chat_completions_send_no_form_and_restore_every_one(gateway: Gateway, stream: bool) -> None:
    gateway.provider.reset()
    gateway.provider.chunk_size = 2
    client = openai.OpenAI(api_key=gateway.key, base_url=gateway.url + "/v1", max_retries=0)
    arguments = json.dumps({"to": "OKONKWO", "note": "518 42 7731"})
    messages: Any = [
        {"role": "system", "content": f"Reminders for Okonkwo's family. ({_conversation()})"},
        {"role": "user", "content": NOTE},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "found: Okonkwo, born July 12, 1984"},
        {"role": "user", "content": LATER},
    ]  # fmt: skip
    if stream:
        chunks = client.chat.completions.create(model="gpt-5", messages=messages, stream=True)
        answer = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        answer = (
            client.chat.completions.create(model="gpt-5", messages=messages).choices[0].message.content or ""
        )
    assert [r.prefix for r in gateway.provider.received] == ["openai"], gateway.provider.received
    assert _leaked(gateway) == []
    assert answer == "You said: " + LATER
    sent = gateway.provider.received[-1].body["messages"]
    surname = sent[1]["content"].split()[2].rstrip(",")  # "Patient <first> <last>, ..."
    assert f"for {surname}'s family" in sent[0]["content"]
    assert json.loads(sent[2]["tool_calls"][0]["function"]["arguments"])["to"] == surname.upper()


@pytest.mark.parametrize("stream", [False, True])
def test_messages_send_no_form_in_system_tool_input_or_result(gateway: Gateway, stream: bool) -> None:
    gateway.provider.reset()
    gateway.provider.chunk_size = 2
    client = anthropic.Anthropic(
        api_key=gateway.key,
        base_url=gateway.url,
        max_retries=0,
        default_headers={"x-phiwarden-conversation": _conversation()},
    )
    messages: Any = [
        {"role": "user", "content": NOTE},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "t1", "name": "search", "input": {"query": "MARISOL OKONKWO 518427731"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": RESULT},
            {"type": "text", "text": LATER}]},
    ]  # fmt: skip
    system = "Write to Okonkwo only."
    # The fake provider echoes the last user turn: the tool result, then the text.
    if stream:
        with client.messages.stream(
            model="claude-test-sonnet", max_tokens=50, system=system, messages=messages
        ) as events:
            answer = "".join(events.text_stream)
    else:
        reply = client.messages.create(
            model="claude-test-sonnet", max_tokens=50, system=system, messages=messages
        )
        block = reply.content[0]
        assert isinstance(block, anthropic.types.TextBlock)
        answer = block.text
    assert _leaked(gateway) == []
    assert answer == "You said: " + RESULT + "\n" + LATER


def test_responses_send_no_form_in_instructions_or_input(gateway: Gateway) -> None:
    gateway.provider.reset()
    client = openai.OpenAI(api_key=gateway.key, base_url=gateway.url + "/v1", max_retries=0)
    reply = client.responses.create(
        model="gpt-5",
        instructions=f"Never name OKONKWO in a subject line. ({_conversation()})",
        input=[{"role": "user", "content": NOTE}, {"role": "user", "content": LATER}],
    )
    assert _leaked(gateway) == []
    assert reply.output_text == "You said: " + LATER


def test_a_later_turn_writing_an_earlier_value_alone_sends_its_surrogate(gateway: Gateway) -> None:
    """Turn 2 names the patient by surname only, which detection needs context for: the vault knows."""
    gateway.provider.reset()
    client = anthropic.Anthropic(
        api_key=gateway.key,
        base_url=gateway.url,
        max_retries=0,
        default_headers={"x-phiwarden-conversation": _conversation()},
    )
    client.messages.create(
        model="claude-test-sonnet", max_tokens=50, messages=[{"role": "user", "content": NOTE}]
    )
    surname = gateway.provider.received[-1].body["messages"][0]["content"].split()[2].rstrip(",")
    later = "Also tell Okonkwo the clinic moved; her record is 00482913."
    reply = client.messages.create(
        model="claude-test-sonnet", max_tokens=50, messages=[{"role": "user", "content": later}]
    )
    assert _leaked(gateway) == []
    assert f"tell {surname} the clinic" in gateway.provider.received[-1].body["messages"][0]["content"]
    block = reply.content[0]
    assert isinstance(block, anthropic.types.TextBlock) and block.text == "You said: " + later


def test_mask_masks_every_form_with_its_values_placeholder(make_gateway: Any) -> None:
    gw: Gateway = make_gateway(restricted="mask")
    gw.provider.reset()
    response = httpx.post(
        gw.url + "/v1/chat/completions",
        json={"model": "gpt-5", "messages": [
            {"role": "system", "content": "Okonkwo's reminders."},
            {"role": "user", "content": NOTE}, {"role": "user", "content": LATER}]},
        headers={"authorization": f"Bearer {gw.key}"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert _leaked(gw) == []
    sent = [m["content"] for m in gw.provider.received[-1].body["messages"]]
    assert sent[0] == "[NAME_1]'s reminders."
    assert sent[2].startswith(
        "Also tell [NAME_1] the clinic moved. Put it in [NAME_1]'s chart. REMINDER FOR [NAME_1]"
    )
    assert "is [SSN_1] ([SSN_1]), written [DATE_1] and [DATE_1]; record [MRN_1]. Dear [NAME_1]," in sent[2]


def test_one_value_written_two_ways_in_one_message_gets_one_surrogate(gateway: Gateway) -> None:
    """An SSN with en dashes and "7/12/84" are found as values of their own: they are the SSN and
    the date already found, so every form of each keeps one surrogate (two would leave the forms
    they share, "518 42 7731" or "19840712", with no surrogate to take)."""
    gateway.provider.reset()
    client = openai.OpenAI(api_key=gateway.key, base_url=gateway.url + "/v1", max_retries=0)
    text = (
        f"{NOTE}. Also written 518\u201342\u20137731, 518 42 7731 and 518.42.7731; born 7/12/84, "
        f"19840712, 1984/07/12 and July 12, 1984. ({_conversation()})"
    )
    client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": text}])
    sent = gateway.provider.all_text()
    for form in ("518\u201342\u20137731", "518 42 7731", "518.42.7731", "7/12/84", "19840712", "1984/07/12"):
        assert form not in sent, form
    ssn = re.search(r"SSN (\d{3})-(\d{2})-(\d{4})", sent)
    assert ssn is not None
    assert " ".join(ssn.groups()) in sent and "\u2013".join(ssn.groups()) in sent
