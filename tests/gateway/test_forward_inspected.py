"""What leaves is what was inspected: the parsed body serialized again, never the bytes as they came.

Duplicate keys, lone surrogates, unknown keys in any object, readable text in vendor-encrypted fields
and unreadable content (images, PDFs) anywhere are handled before anything is forwarded; user-defined
structures are rewritten key by key; a chat without a conversation header keeps its name from turn 1.
"""

from __future__ import annotations

import copy
import json
from collections import deque
from typing import Any

import anthropic
import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phiwarden.gateway import rewrite
from phiwarden.gateway.jsonview import JsonView, _Renderer
from phiwarden.gateway.request import ShapeError
from phiwarden.gateway.restore_body import restore_response
from phiwarden.gateway.schema import Choice, ListOf, Shape, Type, Union, api_shapes
from phiwarden.gateway.shapes import parse
from phiwarden.policy.gateway import Api
from phiwarden.transform.restore import Restorer
from tests.gateway.conftest import Gateway

SSN = "518-42-7731"
NOTE = f"Patient: Marisol Okonkwo SSN {SSN}"
PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
PDF = "JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K"
SIGNATURE = "EqQBCkYIBRgCKkBsig0123456789abcdefSIGNATURE=="
ANTHROPIC = {"model": "claude-test-sonnet", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


def _raw(gw: Gateway, path: str, content: bytes) -> httpx.Response:
    headers = {"authorization": f"Bearer {gw.key}", "content-type": "application/json"}
    return httpx.post(gw.url + path, content=content, headers=headers, timeout=20)


def _post(gw: Gateway, path: str, body: Any) -> httpx.Response:
    return httpx.post(gw.url + path, json=body, headers={"authorization": f"Bearer {gw.key}"}, timeout=20)


# --- duplicate keys, lone surrogates, serialization ----------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        '{"model":"claude-test-sonnet","max_tokens":5,"messages":[{"role":"user","content":"NOTE"}],'
        '"messages":[{"role":"user","content":"hi"}]}',
        '{"model":"claude-test-sonnet","max_tokens":5,"messages":[{"role":"user","content":"NOTE","content":"hi"}]}',
        '{"model":"claude-test-sonnet","max_tokens":5,"system":"NOTE","system":"be brief",'
        '"messages":[{"role":"user","content":"hi"}]}',
        '{"model":"claude-test-sonnet","max_tokens":5,"messages":[{"role":"user","content":"go"},'
        '{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{"q":"NOTE","q":"x"}}]}]}',
    ],
    ids=["top-level", "message", "system", "tool input"],
)
def test_a_key_given_twice_is_refused(gateway: Gateway, content: str) -> None:
    response = _raw(gateway, "/v1/messages", content.replace("NOTE", NOTE).encode())
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and "appears twice" in error["message"]
    assert SSN not in error["message"]
    assert gateway.provider.received == []


def test_what_leaves_is_the_parsed_body(gateway: Gateway) -> None:
    """Escapes, spacing and key order as the client wrote them do not matter: the vendor gets the
    body the gateway read, compact and with every escape decoded (what it inspected)."""
    content = (
        b'{ "model" : "claude-test-sonnet", "max_tokens":5,\n "messages":[{"role":"user",'
        b'"content":"caf\\u00e9 \\ud83d\\ude00 ok"}]}'
    )
    response = _raw(gateway, "/v1/messages", content)
    assert response.status_code == 200
    [received] = gateway.provider.received
    assert received.body["messages"][0]["content"] == "café 😀 ok"


@pytest.mark.parametrize(
    ("path", "content", "where"),
    [
        (
            "/v1/messages",
            b'{"model":"claude-test-sonnet","max_tokens":5,"messages":[{"role":"user","content":"a \\ud800 b"}]}',
            "messages[0].content",
        ),
        ("/v1/chat/completions", b'{"model":"gpt-5","messages":[{"role":"user","content":"\\udfff"}]}', ""),
        (
            "/v1/chat/completions",
            b'{"model":"gpt-5","messages":[{"role":"user","content":"go"},{"role":"assistant","tool_calls":'
            b'[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\\"q\\": \\"\\\\ud800\\"}"}}]}]}',
            "arguments",
        ),
        ("/v1/responses", b'{"model":"gpt-5","input":"x","metadata":{"\\ud800":"y"}}', ""),
    ],
    ids=["anthropic", "openai", "inside arguments", "in a key"],
)
def test_lone_surrogates_are_refused_in_the_apis_format(
    gateway: Gateway, path: str, content: bytes, where: str
) -> None:
    before = len(gateway.settled_events())
    response = _raw(gateway, path, content)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and "surrogate" in error["message"]
    assert where in error["message"]
    assert gateway.provider.received == []
    assert all(e.status != "unknown" for e in gateway.settled_events()[before:])  # no decision was made


def test_json_nested_too_deeply_is_a_400(gateway: Gateway) -> None:
    deep = b'{"model":"gpt-5","input":"x","metadata":' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = _raw(gateway, "/v1/responses", deep)
    assert response.status_code == 400 and "nested too deeply" in response.json()["error"]["message"]


# --- strict shapes ------------------------------------------------------------------------------


def _paths(api: Api) -> dict[str, list[tuple[str, Any]]]:
    """For every shape reachable from the request: the steps to build an object of it (breadth first:
    the shortest way in)."""
    request = api_shapes(api).request
    found: dict[str, list[tuple[str, Any]]] = {request.name: []}
    queue: deque[tuple[Shape, list[tuple[str, Any]]]] = deque([(request, [])])
    while queue:
        shape, steps = queue.popleft()
        for key, kind in shape.fields.items():
            for target, wrap in _targets(kind):
                members: list[tuple[tuple[str, Any], Shape]] = (
                    [(("tag", (target.tag, tag)), member) for tag, member in target.members.items()]
                    if isinstance(target, Union)
                    else [(("shape", None), target)]
                )
                for last, member in members:
                    if member.name not in found:
                        path = [*steps, ("key", key), *wrap, last]
                        found[member.name] = path
                        queue.append((member, path))
    return found


def _targets(
    kind: Type, wrap: tuple[tuple[str, Any], ...] = ()
) -> list[tuple[Shape | Union, list[tuple[str, Any]]]]:
    if isinstance(kind, Shape | Union):
        return [(kind, list(wrap))]
    if isinstance(kind, ListOf):
        return _targets(kind.item, (*wrap, ("list", None)))
    if isinstance(kind, Choice):
        return [t for option in kind.options.values() for t in _targets(option, wrap)]
    return []


def _build(steps: list[tuple[str, Any]], leaf: dict[str, Any]) -> dict[str, Any]:
    """The object the steps lead to, holding `leaf`'s keys at the end."""
    current: dict[str, Any] = dict(leaf)
    for step, value in reversed(steps):
        if step == "tag":
            current = {value[0]: value[1], **current}
        elif step == "list":
            current = [current]  # type: ignore[assignment]
        elif step == "key":
            current = {value: current}
    return current


@pytest.mark.parametrize("api", ["messages", "chat_completions", "responses"])
def test_every_object_refuses_a_key_it_does_not_know(api: Api) -> None:
    """Every shape of the data file, reached from the request: an unknown key in it is refused with
    its location and the `extra_fields` entry that would admit it; listed, it is inspected."""
    paths = _paths(api)
    assert len(paths) > 20
    for name, steps in paths.items():
        body = {"model": "m", **_build(steps, {"zz_unknown": NOTE})}
        with pytest.raises(ShapeError) as refused:
            parse(api, body, ())
        assert refused.value.location.endswith("zz_unknown"), (name, str(refused.value))
        entry = "zz_unknown" if name == "request" else f"{name}.zz_unknown"
        assert repr(entry) in str(refused.value)
        request = parse(api, {"model": "m", **_build(steps, {"zz_unknown": NOTE})}, (entry,))
        assert any(p.location.endswith("zz_unknown") and p.text == NOTE for p in request.parts), name


@pytest.mark.parametrize(
    ("block", "where"),
    [
        ({"type": "text", "text": "x", "alt": NOTE}, "messages[0].content[0].alt"),
        (
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": "iVBO", "note": 1},
            },
            "source.note",
        ),
        ({"type": "tool_result", "tool_use_id": "t1", "content": "ok", "note": NOTE}, "content[0].note"),
        (
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}, "x": 1},
            ".x",
        ),
    ],
)
def test_an_unknown_key_in_a_block_is_refused_over_http(
    gateway: Gateway, block: dict[str, Any], where: str
) -> None:
    response = _post(
        gateway, "/v1/messages", {**ANTHROPIC, "messages": [{"role": "user", "content": [block]}]}
    )
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert where in message and "extra_fields" in message and SSN not in message
    assert gateway.provider.received == []


def test_nested_extra_fields_are_inspected_and_passed(make_gateway: Any) -> None:
    gw: Gateway = make_gateway(gateway_extra='extra_fields = ["block.text.note", "part.text.note"]')
    block = {"type": "text", "text": "hi", "note": "Write to patient Maria Garcia, her social 478-22-9134."}
    response = _post(gw, "/v1/messages", {**ANTHROPIC, "messages": [{"role": "user", "content": [block]}]})
    assert response.status_code == 200
    [received] = gw.provider.received
    note = received.body["messages"][0]["content"][0]["note"]
    assert "478-22-9134" not in note and "Maria Garcia" not in note
    # Listed for text blocks, not for tool results.
    response = _post(gw, "/v1/messages", {**ANTHROPIC, "messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t1", "content": "ok", "note": "x"}]}]})  # fmt: skip
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("path", "body", "phrase"),
    [
        ("/v1/messages", {**ANTHROPIC, "temperature": "hot"}, "temperature: expected a number"),
        ("/v1/messages", {**ANTHROPIC, "max_tokens": True}, "max_tokens: expected an integer"),
        (
            "/v1/messages",
            {**ANTHROPIC, "thinking": {"type": "enabled", "budget_tokens": "9"}},
            "budget_tokens",
        ),
        (
            "/v1/chat/completions",
            {"model": "gpt-5", "messages": [{"role": "user", "content": "x"}], "n": "2"},
            "n: ",
        ),
        (
            "/v1/chat/completions",
            {
                "model": "gpt-5",
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": PNG, "detail": "ultra"}}],
                    }
                ],
            },
            "detail: expected one of",
        ),
        (
            "/v1/responses",
            {"model": "gpt-5", "input": "x", "stream_options": {"include_obfuscation": "no"}},
            "include_obfuscation",
        ),
    ],
)
def test_known_fields_are_type_checked(
    gateway: Gateway, path: str, body: dict[str, Any], phrase: str
) -> None:
    response = _post(gateway, path, body)
    assert response.status_code == 400 and phrase in response.json()["error"]["message"]


def test_vendor_encrypted_fields_hold_base64_only(gateway: Gateway) -> None:
    def turn(block: dict[str, Any]) -> dict[str, Any]:
        return {**ANTHROPIC, "messages": [
            {"role": "user", "content": "go"}, {"role": "assistant", "content": [block]}, {"role": "user", "content": "on"}]}  # fmt: skip

    for block in (
        {"type": "thinking", "thinking": "hmm", "signature": NOTE},
        {"type": "redacted_thinking", "data": "Marisol Okonkwo"},
        {"type": "thinking", "thinking": "hmm", "signature": "short"},
    ):
        response = _post(gateway, "/v1/messages", turn(block))
        assert response.status_code == 400 and "base64" in response.json()["error"]["message"]
    fine = {"type": "redacted_thinking", "data": SIGNATURE}
    assert _post(gateway, "/v1/messages", turn(fine)).status_code == 200
    assert gateway.provider.received[-1].body["messages"][1]["content"][0] == fine
    response = _post(gateway, "/v1/responses", {"model": "gpt-5", "input": [
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAAB readable words"}]})  # fmt: skip
    assert response.status_code == 400


# --- binary content anywhere --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "kind"),
    [
        (
            "/v1/responses",
            {
                "model": "gpt-5",
                "input": [
                    {
                        "type": "computer_call",
                        "id": "cu_1",
                        "call_id": "c1",
                        "status": "completed",
                        "action": {"type": "screenshot"},
                        "pending_safety_checks": [],
                    },
                    {
                        "type": "computer_call_output",
                        "call_id": "c1",
                        "output": {"type": "computer_screenshot", "image_url": PNG},
                    },
                ],
            },
            "images (input[1].output)",
        ),
        (
            "/v1/messages",
            {
                **ANTHROPIC,
                "messages": [
                    {"role": "user", "content": "fetch it"},
                    {
                        "role": "assistant",
                        "content": [
                            {
                                "type": "server_tool_use",
                                "id": "srvtoolu_1",
                                "name": "web_fetch",
                                "input": {"url": "https://example.org/a.pdf"},
                            },
                            {
                                "type": "web_fetch_tool_result",
                                "tool_use_id": "srvtoolu_1",
                                "content": {
                                    "type": "web_fetch_result",
                                    "url": "https://example.org/a.pdf",
                                    "content": {
                                        "type": "document",
                                        "source": {
                                            "type": "base64",
                                            "media_type": "application/pdf",
                                            "data": PDF,
                                        },
                                    },
                                },
                            },
                        ],
                    },
                    {"role": "user", "content": "summarize"},
                ],
            },
            "documents (messages[1].content[1].content.content.source)",
        ),
        (
            "/v1/messages",
            {
                **ANTHROPIC,
                "messages": [
                    {"role": "user", "content": "go"},
                    {
                        "role": "assistant",
                        "content": [
                            {
                                "type": "tool_use",
                                "id": "t1",
                                "name": "upload",
                                "input": {"files": [{"blob": PNG.replace("image/png", "application/pdf")}]},
                            }
                        ],
                    },
                    {
                        "role": "user",
                        "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}],
                    },
                ],
            },
            "documents (messages[1].content[0].input)",
        ),
        (
            "/v1/chat/completions",
            {
                "model": "gpt-5",
                "messages": [
                    {"role": "user", "content": "go"},
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "id": "c1",
                                "type": "function",
                                "function": {
                                    "name": "f",
                                    "arguments": json.dumps(
                                        {"image": {"type": "base64", "media_type": "image/jpeg", "data": PDF}}
                                    ),
                                },
                            }
                        ],
                    },
                    {"role": "tool", "tool_call_id": "c1", "content": "ok"},
                ],
            },
            "images (messages[1].tool_calls[0].function.arguments)",
        ),
    ],
    ids=["computer screenshot", "web fetch PDF", "data URL in a tool input", "base64 source in arguments"],
)
def test_binary_content_anywhere_is_content_of_its_kind(
    make_gateway: Any, path: str, body: dict[str, Any], kind: str
) -> None:
    """Counted as images/documents wherever it sits, so the destination's `content` rule applies
    (with binary_tier internal, the only thing that stands between it and the vendor)."""
    gw: Gateway = make_gateway(gateway_extra='binary_tier = "internal"')
    response = _post(gw, path, body)
    assert response.status_code == 403, response.text
    assert kind in response.json()["error"]["message"]
    assert gw.provider.received == []


# --- user-defined structures rewritten in place -------------------------------------------------


def test_tool_input_keys_numbers_and_strings_are_rewritten_and_stay_valid_json(gateway: Gateway) -> None:
    body: dict[str, Any] = {**ANTHROPIC, "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "register", "input": {
            "patient": {"full_name": "Marisol Okonkwo", "mrn": 40981723, SSN: "on file"}, "note": 'a "quoted" \\ note'}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]}]}  # fmt: skip
    request = parse("messages", copy.deepcopy(body), ())
    inspection = gateway.runtime.inspector.inspect(request)
    [hits] = [h for i, h in inspection.hits.items() if request.parts[i].location.endswith("input")]
    assert {h.category for h in hits} >= {"name", "mrn", "ssn"}
    rewrite.mask(request, inspection)
    sent = json.loads(request.serialize())
    tool_input = sent["messages"][1]["content"][0]["input"]
    assert tool_input["note"] == 'a "quoted" \\ note'
    patient = tool_input["patient"]
    assert (
        "Marisol Okonkwo" not in json.dumps(sent)
        and SSN not in json.dumps(sent)
        and 40981723 not in patient.values()
    )
    assert next(iter(patient)) == "full_name" and len(patient) == 3  # the SSN key renamed in its place

    vault = gateway.runtime.vaults.open("ana@example.org", "rewrite-test")
    request = parse("messages", copy.deepcopy(body), ())
    originals = rewrite.pseudonymize(
        request, gateway.runtime.inspector.inspect(request), vault, sanitize_identifiers=True
    )
    sent = json.loads(request.serialize())
    patient = sent["messages"][1]["content"][0]["input"]["patient"]
    assert isinstance(patient["mrn"], int) and patient["mrn"] != 40981723
    # A reply calling a tool with the surrogates gets the originals back, keys and numbers included.
    reply = {"content": [{"type": "tool_use", "id": "t2", "name": "register", "input": patient}]}
    restored = restore_response(
        "messages", reply, Restorer(originals), Restorer(originals, json_strings=True)
    )
    assert restored["content"][0]["input"] == body["messages"][1]["content"][0]["input"]["patient"]


def test_chat_arguments_leave_as_json_text(gateway: Gateway) -> None:
    client = openai.OpenAI(api_key=gateway.key, base_url=gateway.url + "/v1", max_retries=0)
    arguments = json.dumps({"query": "Write to patient Maria Garcia, her social 478-22-9134 is on file."})
    client.chat.completions.create(model="gpt-5", messages=[
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"}])  # fmt: skip
    [received] = gateway.provider.received
    sent = received.body["messages"][1]["tool_calls"][0]["function"]["arguments"]
    assert isinstance(sent, str) and "478-22-9134" not in sent and "Maria Garcia" not in sent
    assert set(json.loads(sent)) == {"query"}


# --- the conversation's name ----------------------------------------------------------------------


def test_a_chat_without_headers_keeps_its_name_from_turn_one(gateway: Gateway) -> None:
    """Named by the system prompt and the first user message: turn 2 finds turn 1's surrogates."""
    client = anthropic.Anthropic(api_key=gateway.key, base_url=gateway.url, max_retries=0)
    first = "Write a follow-up letter to patient Maria Garcia, born 1984-07-12; her social 478-22-9134 is on file."
    system = "You draft letters."
    reply = client.messages.create(
        model="claude-test-sonnet",
        max_tokens=50,
        system=system,
        messages=[{"role": "user", "content": first}],
    )
    turn_one = gateway.provider.received[-1].body["messages"][0]["content"]
    assert "Maria Garcia" not in turn_one
    answer = reply.content[0]
    assert isinstance(answer, anthropic.types.TextBlock)
    history: Any = [
        {"role": "user", "content": first},
        {"role": "assistant", "content": answer.text},
        {"role": "user", "content": "Sign it for Maria Garcia's care team, please."},
    ]
    client.messages.create(model="claude-test-sonnet", max_tokens=50, system=system, messages=history)
    sent = gateway.provider.received[-1].body["messages"]
    assert sent[0]["content"] == turn_one  # the same surrogates: the same conversation
    surrogate = turn_one.split("patient ")[1].split(",")[0]
    assert surrogate in sent[2]["content"] and "Maria Garcia" not in json.dumps(sent)
    events = gateway.settled_events()
    sessions = {e.actor.session_id for e in events[-4:]}
    assert len(sessions) == 1


_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=6), inner, max_size=4
        )
    ),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(_VALUES)
def test_a_structure_reads_the_same_however_it_is_rendered(value: Any) -> None:
    """The text built in C (orjson, unescaped) is the one whose positions a rewrite maps back."""
    holder = {"value": value}
    view = JsonView(holder, "value")
    tracked = _Renderer(None, track=True)
    assert view.text == tracked.render(holder, "value")
    assert view.empty == (tracked.count == 0)
