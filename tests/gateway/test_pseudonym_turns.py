"""Pseudonymization across turns, driven by the real SDKs against the fake provider: values equal to
earlier surrogates, signed thinking, surrogates written in other forms, conversations that open
alike, stateful Responses calls, ages over 89."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import uuid
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.gateway.conftest import Gateway

LETTER = "Patient: Marisol Okonkwo, SSN 518-42-7731, seen 03/14/2025. Write a letter."
_SURROGATES = re.compile(r"Patient: (\w+) (\w+), SSN (\d{3})-(\d\d)-(\d{4}), seen (\d\d)/(\d\d)/(\d{4})\.")
SIGNATURE = base64.b64encode(b"a signature the vendor made, or a client forged" * 2).decode()


def _anthropic(gw: Gateway, conversation: str = "", key: str = "") -> anthropic.Anthropic:
    headers = {"x-phiwarden-conversation": conversation} if conversation else {}
    return anthropic.Anthropic(api_key=key or gw.key, base_url=gw.url, max_retries=0, default_headers=headers)


def _openai(gw: Gateway, key: str = "") -> openai.OpenAI:
    return openai.OpenAI(api_key=key or gw.key, base_url=gw.url + "/v1", max_retries=0)


def _sent_user_text(gw: Gateway) -> str:
    """The last user text the provider received."""
    body = gw.provider.received[-1].body
    items: Any = body.get("messages") or body.get("input")
    last = items if isinstance(items, str) else items[-1]
    content = last if isinstance(last, str) else last.get("content")
    if isinstance(content, list):
        return "".join(block.get("text", "") for block in content if isinstance(block, dict))
    return str(content)


def _first_turn(gw: Gateway, conversation: str) -> re.Match[str]:
    _anthropic(gw, conversation).messages.create(
        model="claude-test-sonnet", max_tokens=50, messages=[{"role": "user", "content": LETTER}]
    )
    found = _SURROGATES.search(_sent_user_text(gw))
    assert found is not None, _sent_user_text(gw)
    return found


# --- a value equal to an earlier surrogate --------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_a_real_value_equal_to_an_earlier_surrogate_gets_a_surrogate_of_its_own(
    gateway: Gateway, stream: bool
) -> None:
    conversation = f"collide-{uuid.uuid4()}"
    first, last, *_, month, day, year = _first_turn(gateway, conversation).groups()
    date = f"{month}/{day}/{year}"
    # Another patient seen on the date the first one's surrogate holds; a module named like its surname.
    second = f"Second patient: Tobias Renner was seen on {date}. Rename the {last} module too."
    messages: Any = [
        {"role": "user", "content": LETTER},
        {"role": "assistant", "content": "Here it is."},
        {"role": "user", "content": second},
    ]
    client = _anthropic(gateway, conversation)
    gateway.provider.chunk_size = 2
    if stream:
        with client.messages.stream(model="claude-test-sonnet", max_tokens=50, messages=messages) as events:
            answer = "".join(events.text_stream)
    else:
        reply = client.messages.create(model="claude-test-sonnet", max_tokens=50, messages=messages)
        block = reply.content[0]
        assert isinstance(block, anthropic.types.TextBlock)
        answer = block.text
    sent = _sent_user_text(gateway)
    assert date not in sent and not re.search(rf"\b{last}\b", sent) and "Tobias Renner" not in sent
    # The turn-1 values still go as the same surrogates: the vendor tells the two patients apart.
    assert f"{first} {last}" in json.dumps(gateway.provider.received[-1].body["messages"][0])
    assert answer == "You said: " + second


# --- signed thinking ------------------------------------------------------------------------------


def _with_thinking(thinking: str) -> Any:
    return [
        {"role": "user", "content": LETTER},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": thinking, "signature": SIGNATURE},
                {"type": "text", "text": "Here is the letter."},
            ],
        },
        {"role": "user", "content": "Make it shorter."},
    ]


def test_signed_thinking_naming_surrogates_in_other_forms_is_not_phi(gateway: Gateway) -> None:
    conversation = f"thinking-{uuid.uuid4()}"
    first, last, a, b, c, *_ = _first_turn(gateway, conversation).groups()
    thinking = f"I should address Ms. {last} ({first.upper()}), SSN {a}{b}{c}; {first} is waiting."
    raw = _anthropic(gateway, conversation).messages.with_raw_response.create(
        model="claude-test-sonnet",
        max_tokens=50,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=_with_thinking(thinking),
    )
    assert raw.headers["x-phiwarden-decision"].startswith(
        "pseudonymize; tier=restricted; destination=anthropic"
    )
    sent = gateway.provider.received[-1]
    assert sent.prefix == "anthropic"
    assert sent.body["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": thinking,
        "signature": SIGNATURE,
    }
    assert "Marisol" not in sent.text and "518-42-7731" not in sent.text


def test_real_values_in_signed_thinking_go_to_the_local_model_without_the_thinking(gateway: Gateway) -> None:
    conversation = f"forged-{uuid.uuid4()}"
    _first_turn(gateway, conversation)
    raw = _anthropic(gateway, conversation).messages.with_raw_response.create(
        model="claude-test-sonnet",
        max_tokens=50,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=_with_thinking("Marisol Okonkwo, SSN 518-42-7731, needs the letter."),
    )
    assert raw.headers["x-phiwarden-decision"].startswith("route; tier=restricted; destination=local-llm")
    sent = gateway.provider.received[-1]
    assert sent.prefix == "local"
    assert [b["type"] for b in sent.body["messages"][1]["content"]] == ["text"]
    request_id = raw.headers["x-phiwarden-request-id"]
    [decision] = [
        e for e in gateway.settled_events() if e.correlation_id == request_id and e.status == "unknown"
    ]
    assert decision.message == "forwarded to local-llm; 1 signed thinking block left out"


# --- other forms of surrogates in answers ---------------------------------------------------------

RESTORED = (
    "Dear Ms. Okonkwo, RE: MARISOL OKONKWO. Hi Marisol! SSN 518427731 (518 42 7731), seen 2025-03-14 "
    "or March 14, 2025."
)


def _variants(reply: str) -> str:
    """What a model writes about the patient, from the surrogates it was given."""
    found = _SURROGATES.search(reply)
    assert found is not None, reply
    first, last, a, b, c, month, day, year = found.groups()
    moment = dt.date(int(year), int(month), int(day))
    return (
        f"Dear Ms. {last}, RE: {first.upper()} {last.upper()}. Hi {first}! SSN {a}{b}{c} ({a} {b} {c}), "
        f"seen {moment.isoformat()} or {moment:%B} {moment.day}, {moment.year}."
    )


@pytest.mark.parametrize("stream", [False, True])
def test_messages_restore_other_forms_in_text_and_tool_input(gateway: Gateway, stream: bool) -> None:
    gateway.provider.mode, gateway.provider.chunk_size, gateway.provider.rewrite_reply = "tool", 2, _variants
    client = _anthropic(gateway, f"forms-{uuid.uuid4()}")
    messages: Any = [{"role": "user", "content": LETTER}]
    final: anthropic.types.Message
    if stream:
        with client.messages.stream(model="claude-test-sonnet", max_tokens=50, messages=messages) as events:
            text = "".join(events.text_stream)
            final = events.get_final_message()
    else:
        final = client.messages.create(model="claude-test-sonnet", max_tokens=50, messages=messages)
        block = final.content[0]
        assert isinstance(block, anthropic.types.TextBlock)
        text = block.text
    tool = next(b for b in final.content if b.type == "tool_use")
    assert text == RESTORED
    assert tool.input == {"file_path": "notes.txt", "content": RESTORED}


@pytest.mark.parametrize("stream", [False, True])
def test_chat_completions_restore_other_forms_in_content_and_arguments(
    gateway: Gateway, stream: bool
) -> None:
    gateway.provider.mode, gateway.provider.chunk_size, gateway.provider.rewrite_reply = "tool", 2, _variants
    client = _openai(gateway)
    messages: Any = [
        {"role": "system", "content": f"forms {uuid.uuid4()}"},
        {"role": "user", "content": LETTER},
    ]
    if stream:
        text, arguments = "", ""
        for chunk in client.chat.completions.create(model="gpt-5", messages=messages, stream=True):
            for choice in chunk.choices:
                text += choice.delta.content or ""
                for delta in choice.delta.tool_calls or []:
                    arguments += (delta.function.arguments or "") if delta.function else ""
    else:
        message = client.chat.completions.create(model="gpt-5", messages=messages).choices[0].message
        text = message.content or ""
        call = (message.tool_calls or [])[0]
        assert call.type == "function"
        arguments = call.function.arguments
    assert text == RESTORED
    assert json.loads(arguments) == {"file_path": "notes.txt", "content": RESTORED}


@pytest.mark.parametrize("stream", [False, True])
def test_responses_restore_other_forms_in_text_and_arguments(gateway: Gateway, stream: bool) -> None:
    gateway.provider.mode, gateway.provider.chunk_size, gateway.provider.rewrite_reply = "tool", 2, _variants
    client = _openai(gateway)
    kwargs: Any = {"model": "gpt-5", "input": LETTER, "instructions": f"forms {uuid.uuid4()}"}
    if stream:
        with client.responses.stream(**kwargs) as events:
            text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
            final = events.get_final_response()
    else:
        final = client.responses.create(**kwargs)
        text = final.output_text
    call = next(item for item in final.output if item.type == "function_call")
    assert text == RESTORED and final.output_text == RESTORED
    assert json.loads(call.arguments) == {"path": "notes.txt", "content": RESTORED}


# --- conversations named by their opening ---------------------------------------------------------

RECORD = "Name: Marisol Okonkwo\nDOB: 03/14/1961\nSSN: 518-42-7731\nMRN: 00482913"


def test_conversations_that_open_alike_do_not_share_a_pin(gateway: Gateway) -> None:
    system: Any = {"role": "system", "content": f"Act as an expert software developer. ({uuid.uuid4()})"}
    hello = {"role": "user", "content": "hello there"}

    def chat(*messages: Any) -> tuple[str, str | None]:
        raw = _openai(gateway).chat.completions.with_raw_response.create(
            model="gpt-5", messages=[system, *messages]
        )
        request_id = raw.headers["x-phiwarden-request-id"]
        [decision] = [
            e for e in gateway.settled_events() if e.correlation_id == request_id and e.status == "unknown"
        ]
        return raw.headers["x-phiwarden-decision"].split(";")[0], decision.decision.rule

    hi = {"role": "assistant", "content": "hi"}
    assert chat(hello) == ("allow", "enforce:tier-action")
    assert chat(hello, hi, {"role": "user", "content": RECORD})[0] == "route"
    # Another chat of the same person, opening alike: not pinned.
    assert chat(hello) == ("allow", "enforce:tier-action")
    assert chat(hello, hi, {"role": "user", "content": "how do I center a div?"})[0] == "allow"
    # The routed chat's next turn repeats its routed items: pinned.
    later = (hello, hi, {"role": "user", "content": RECORD}, {"role": "assistant", "content": "ok"})
    assert chat(*later, {"role": "user", "content": "shorter"}) == ("route", "enforce:conversation-pinned")


def test_a_chat_routed_for_its_stop_sequences_does_not_pin_a_new_chat_that_opens_alike(
    make_gateway: Any,
) -> None:
    gateway = make_gateway(restricted="route")
    system: Any = {"role": "system", "content": f"Be brief. ({uuid.uuid4()})"}
    hello: Any = {"role": "user", "content": "hi"}

    def chat(**extra: Any) -> str:
        raw = _openai(gateway).chat.completions.with_raw_response.create(
            model="gpt-5", messages=[system, hello], **extra
        )
        return raw.headers["x-phiwarden-decision"].split(";")[0]

    assert chat(stop=["518-42-7731"]) == "route"
    assert chat(stop=["518-42-7731"]) == "route"  # its retry
    assert chat() == "allow"  # a new chat: only the stop sequences got the first one routed


# --- stateful Responses calls ---------------------------------------------------------------------

VISIT = "Patient: Marisol Okonkwo was seen on 03/14/2025. Draft a reminder."


def _respond(gw: Gateway, stream: bool, key: str = "", **kwargs: Any) -> str:
    client = _openai(gw, key)
    if stream:
        with client.responses.stream(model="gpt-5", **kwargs) as events:
            return str(events.get_final_response().id)
    return str(client.responses.create(model="gpt-5", **kwargs).id)


def _sent_name(gw: Gateway) -> str:
    found = re.search(r"Patient: (\w+ \w+) was", _sent_user_text(gw))
    assert found is not None, _sent_user_text(gw)
    return found.group(1)


@pytest.mark.parametrize("stream", [False, True])
def test_previous_response_id_continues_the_conversation(gateway: Gateway, stream: bool) -> None:
    visit = VISIT.replace("03/14/2025", f"03/{10 + stream}/2025")
    first = _respond(gateway, stream, input=visit)
    name = _sent_name(gateway)
    second = _respond(gateway, stream, input="Add: " + visit, previous_response_id=first)
    assert _sent_name(gateway) == name
    # A turn without values is forwarded as it is; the vendor's answer still names the surrogates.
    gateway.provider.rewrite_reply = lambda reply: f"{reply} (for {name.upper()})"
    client = _openai(gateway)
    if stream:
        with client.responses.stream(model="gpt-5", input="Shorter.", previous_response_id=second) as events:
            text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    else:
        text = client.responses.create(
            model="gpt-5", input="Shorter.", previous_response_id=second
        ).output_text
    assert text == "You said: Shorter. (for MARISOL OKONKWO)"
    assert gateway.provider.received[-1].body["input"] == "Shorter."


def test_previous_response_ids_are_per_identity_and_unknown_ones_chain(gateway: Gateway) -> None:
    first = _respond(gateway, False, input=VISIT)
    name = _sent_name(gateway)
    bob = gateway.new_key("bob@example.org")
    _respond(gateway, False, key=bob, input=VISIT, previous_response_id=first)
    assert _sent_name(gateway) != name  # bob cannot continue ana's conversation
    unknown = f"resp_{uuid.uuid4().hex}"
    _respond(gateway, False, input=VISIT, previous_response_id=unknown)
    chained = _sent_name(gateway)
    _respond(gateway, False, input="Again: " + VISIT, previous_response_id=unknown)
    assert _sent_name(gateway) == chained


def test_a_response_not_stored_upstream_is_not_recorded(gateway: Gateway) -> None:
    first = _respond(gateway, False, input=VISIT, store=False)
    name = _sent_name(gateway)
    _respond(gateway, False, input=VISIT, previous_response_id=first)
    assert _sent_name(gateway) != name


# --- ages over 89 ---------------------------------------------------------------------------------


def test_ages_over_89_and_their_dates_of_birth_stay_over_89(gateway: Gateway) -> None:
    note = "Patient Marisol Okonkwo, 95 years old, DOB 03/14/1931, needs a reminder."
    response = httpx.post(
        gateway.url + "/v1/messages",
        json={
            "model": "claude-test-sonnet",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": note}],
        },
        headers={"x-api-key": gateway.key, "x-phiwarden-conversation": f"age-{uuid.uuid4()}"},
    )
    assert response.status_code == 200
    found = re.search(r", (\d+) years old, DOB (\d\d)/(\d\d)/(\d{4}),", _sent_user_text(gateway))
    assert found is not None, _sent_user_text(gateway)
    age, year = int(found.group(1)), int(found.group(4))
    assert age >= 90 and age != 95
    assert abs(year - 1931) >= 2 and year <= dt.date.today().year - 90
    assert response.json()["content"][0]["text"] == "You said: " + note
