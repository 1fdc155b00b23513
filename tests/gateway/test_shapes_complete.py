"""Every place of a request is inspected: a value planted anywhere in any of the three APIs never
reaches a cloud destination, and what the gateway does not understand is refused with its location.

Driven over HTTP against the fake provider, with a policy that blocks internal and restricted content;
the block message must name the location the value was planted in.
"""

from __future__ import annotations

import json
import string
import typing
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest
import typing_extensions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phiwarden.gateway.schema import ListOf, Shape, Union, api_shapes
from phiwarden.gateway.shapes import parse
from phiwarden.policy.gateway import Api
from tests.gateway.conftest import Gateway

FIXTURES = Path(__file__).parent / "fixtures"

SSN = "518-42-7731"
NAME = "Marisol Okonkwo"
NOTE = f"Patient: {NAME} SSN {SSN}"
# A record: the engine reads the field names beside the values.
RECORD = {"name": NAME, "mrn": 40981723, "dob": "1984-07-19"}
PLANTED = (NAME, SSN, "40981723", "1984-07-19")
PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
SIGNATURE = "EqQBCkYIBRgCKkBsig0123456789abcdefSIGNATURE=="


def _anthropic(**body: Any) -> tuple[str, dict[str, Any]]:
    return "/v1/messages", {
        "model": "claude-test-sonnet",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}],
        **body,
    }


def _chat(**body: Any) -> tuple[str, dict[str, Any]]:
    return "/v1/chat/completions", {"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}], **body}


def _responses(**body: Any) -> tuple[str, dict[str, Any]]:
    return "/v1/responses", {"model": "gpt-5", "input": "hi", **body}


def _tool_turn(block: dict[str, Any], result: Any = "ok", tool_id: str = "toolu_01A") -> list[dict[str, Any]]:
    """An Anthropic conversation whose assistant turn holds `block`, answered by a tool result."""
    return [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [block]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": result}]},
    ]


def _tool_use(tool_input: Any, result: Any = "ok") -> list[dict[str, Any]]:
    return _tool_turn({"type": "tool_use", "id": "toolu_01A", "name": "lookup", "input": tool_input}, result)


def _chat_call(arguments: str, *, call_id: str = "call_1", name: str = "lookup") -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "ok"},
    ]


def _item(**item: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": "go"}, item]


TOOL = {
    "name": "lookup",
    "description": "Find a record.",
    "input_schema": {"type": "object", "properties": {}},
}
SCHEMA = {"type": "object", "properties": {"ssn_holder": {"type": "string", "enum": [SSN]}}}

# (name, (path, body), the location the block message names)
PLACES: list[tuple[str, tuple[str, dict[str, Any]], str]] = [
    # --- Anthropic Messages
    ("system string", _anthropic(system=NOTE), "system"),
    ("system block", _anthropic(system=[{"type": "text", "text": NOTE}]), "system[0]"),
    ("message string", _anthropic(messages=[{"role": "user", "content": NOTE}]), "messages[0].content"),
    (
        "text block",
        _anthropic(messages=[{"role": "user", "content": [{"type": "text", "text": NOTE}]}]),
        "messages[0].content[0]",
    ),
    ("tool description", _anthropic(tools=[{**TOOL, "description": NOTE}]), "tools[0]"),
    (
        "tool property name",
        _anthropic(tools=[{**TOOL, "input_schema": {"type": "object", "properties": {SSN: {}}}}]),
        "tools[0]",
    ),
    ("tool enum value", _anthropic(tools=[{**TOOL, "input_schema": SCHEMA}]), "tools[0]"),
    ("tool_use input value", _anthropic(messages=_tool_use({"query": NOTE})), "messages[1].content[0].input"),
    ("tool_use input record", _anthropic(messages=_tool_use(RECORD)), "messages[1].content[0].input"),
    ("tool_use input key id", _anthropic(messages=_tool_use({"id": SSN})), "messages[1].content[0].input"),
    ("tool_use input key name", _anthropic(messages=_tool_use({"name": SSN})), "messages[1].content[0].input"),
    ("tool_use input key type", _anthropic(messages=_tool_use({"type": SSN})), "messages[1].content[0].input"),
    (
        "tool_use input nested",
        _anthropic(messages=_tool_use({"a": {"b": [{"status": NOTE}]}})),
        "messages[1].content[0].input",
    ),
    ("tool_use input number", _anthropic(messages=_tool_use({"mrn": 40981723})), "messages[1].content[0].input"),
    ("tool_use input key", _anthropic(messages=_tool_use({SSN: True})), "messages[1].content[0].input"),
    (
        "tool_use id",
        _anthropic(messages=_tool_turn({"type": "tool_use", "id": SSN, "name": "x", "input": {}}, tool_id=SSN)),
        "messages[1].content[0].id",
    ),
    (
        "tool_use name",
        _anthropic(messages=_tool_turn({"type": "tool_use", "id": "toolu_01A", "name": SSN, "input": {}})),
        "messages[1].content[0].name",
    ),
    ("tool_result string", _anthropic(messages=_tool_use({}, result=NOTE)), "messages[2].content[0].content"),
    (
        "tool_result blocks",
        _anthropic(messages=_tool_turn({"type": "tool_use", "id": "toolu_01A", "name": "x", "input": {}}, [
            {"type": "text", "text": NOTE}
        ])),
        "messages[2].content[0].content[0]",
    ),
    (
        "tool_result compact JSON",
        _anthropic(messages=_tool_turn({"type": "tool_use", "id": "toolu_01A", "name": "x", "input": {}}, json.dumps(RECORD, separators=(",", ":")))),
        "messages[2].content[0].content",
    ),
    (
        "thinking",
        _anthropic(messages=[
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": NOTE, "signature": SIGNATURE}]},
            {"role": "user", "content": "go on"},
        ]),
        "messages[1].content[0]",
    ),
    (
        "document title",
        _anthropic(messages=[{"role": "user", "content": [{"type": "document", "title": NOTE, "source": {
            "type": "text", "media_type": "text/plain", "data": "notes"}}]}]),
        "messages[0].content[0].title",
    ),
    (
        "document context",
        _anthropic(messages=[{"role": "user", "content": [{"type": "document", "context": NOTE, "source": {
            "type": "text", "media_type": "text/plain", "data": "notes"}}]}]),
        "messages[0].content[0].context",
    ),
    (
        "document text source",
        _anthropic(messages=[{"role": "user", "content": [{"type": "document", "source": {
            "type": "text", "media_type": "text/plain", "data": NOTE}}]}]),
        "messages[0].content[0].source",
    ),
    (
        "search result",
        _anthropic(messages=[{"role": "user", "content": [{"type": "search_result", "source": "s", "title": "t",
                                                             "content": [{"type": "text", "text": NOTE}]}]}]),
        "messages[0].content[0].content[0]",
    ),
    (
        "citation",
        _anthropic(messages=[
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [{"type": "text", "text": "x", "citations": [
                {"type": "char_location", "cited_text": NOTE, "document_index": 0, "start_char_index": 0,
                 "end_char_index": 5}]}]},
            {"role": "user", "content": "go on"},
        ]),
        "messages[1].content[0].citations[0].cited_text",
    ),
    (
        "image URL",
        _anthropic(messages=[{"role": "user", "content": [{"type": "image", "source": {
            "type": "url", "url": f"https://ehr.example.org/scan?ssn={SSN}"}}]}]),
        "messages[0].content[0].source.url",
    ),
    (
        "server tool input",
        _anthropic(messages=_tool_turn({"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search",
                                        "input": {"query": NOTE}})),
        "messages[1].content[0].input",
    ),
    (
        "mcp tool input",
        _anthropic(messages=_tool_turn({"type": "mcp_tool_use", "id": "mcptoolu_1", "name": "lookup",
                                        "server_name": "ehr", "input": RECORD})),
        "messages[1].content[0].input",
    ),
    ("metadata.user_id", _anthropic(metadata={"user_id": SSN}), "metadata.user_id"),
    ("stop_sequences", _anthropic(stop_sequences=[NOTE]), "stop_sequences[0]"),
    ("inference_geo", _anthropic(inference_geo=SSN), "inference_geo"),
    ("betas", _anthropic(betas=[SSN]), "betas[0]"),
    ("mcp_servers", _anthropic(mcp_servers=[{"type": "url", "name": "ehr", "url": f"https://x/{SSN}"}]), "mcp_servers[0]"),
    ("container", _anthropic(container={"id": SSN}), "container"),
    ("context_management", _anthropic(context_management={"edits": [{"type": SSN}]}), "context_management"),
    (
        "output_config schema",
        _anthropic(output_config={"format": {"type": "json_schema", "schema": SCHEMA}}),
        "output_config.format",
    ),
    ("tool_choice name", _anthropic(tool_choice={"type": "tool", "name": SSN}), "tool_choice.name"),
    # --- OpenAI Chat Completions
    ("chat system", _chat(messages=[{"role": "system", "content": NOTE}, {"role": "user", "content": "hi"}]), "messages[0].content"),
    (
        "chat developer parts",
        _chat(messages=[{"role": "developer", "content": [{"type": "text", "text": NOTE}]},
                        {"role": "user", "content": "hi"}]),
        "messages[0].content[0]",
    ),
    ("chat user", _chat(messages=[{"role": "user", "content": NOTE}]), "messages[0].content"),
    ("chat arguments value", _chat(messages=_chat_call(json.dumps({"q": NOTE}))), "messages[1].tool_calls[0].function.arguments"),
    ("chat arguments record", _chat(messages=_chat_call(json.dumps(RECORD))), "messages[1].tool_calls[0].function.arguments"),
    ("chat arguments key id", _chat(messages=_chat_call(json.dumps({"id": SSN}))), "messages[1].tool_calls[0].function.arguments"),
    (
        "chat arguments escaped",
        _chat(messages=_chat_call('{"q": "\\u0035\\u0031\\u0038-42-7731"}')),
        "messages[1].tool_calls[0].function.arguments",
    ),
    ("chat arguments not JSON", _chat(messages=_chat_call(NOTE)), "messages[1].tool_calls[0].function.arguments"),
    ("chat function name", _chat(messages=_chat_call("{}", name=SSN)), "messages[1].tool_calls[0].function.name"),
    ("chat tool_call id", _chat(messages=_chat_call("{}", call_id=SSN)), "messages[1].tool_calls[0].id"),
    (
        "chat tool result",
        _chat(messages=[*_chat_call("{}")[:2], {"role": "tool", "tool_call_id": "call_1", "content": NOTE}]),
        "messages[2].content",
    ),
    (
        "chat tool definition",
        _chat(tools=[{"type": "function", "function": {"name": "f", "description": NOTE, "parameters": {}}}]),
        "tools[0]",
    ),
    ("chat user field", _chat(user=SSN), "user"),
    ("chat safety_identifier", _chat(safety_identifier=SSN), "safety_identifier"),
    ("chat prompt_cache_key", _chat(prompt_cache_key=SSN), "prompt_cache_key"),
    ("chat metadata", _chat(metadata={"note": NOTE}), "metadata"),
    ("chat stop", _chat(stop=[NOTE]), "stop[0]"),
    ("chat prediction", _chat(prediction={"type": "content", "content": NOTE}), "prediction.content"),
    ("chat response_format", _chat(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA}}), "response_format"),
    (
        "chat image URL",
        _chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {
            "url": f"https://ehr.example.org/x.png?ssn={SSN}"}}]}]),
        "messages[0].content[0].image_url.url",
    ),
    ("chat logit_bias", _chat(logit_bias={SSN: 1}), "logit_bias"),
    ("chat options", _chat(options={"note": NOTE}), "options"),
    # --- OpenAI Responses
    ("responses instructions", _responses(instructions=NOTE), "instructions"),
    ("responses input string", _responses(input=NOTE), "input"),
    ("responses message", _responses(input=[{"role": "user", "content": NOTE}]), "input[0].content"),
    (
        "responses input_text",
        _responses(input=[{"type": "message", "role": "user", "content": [{"type": "input_text", "text": NOTE}]}]),
        "input[0].content[0]",
    ),
    (
        "responses output_text",
        _responses(input=_item(type="message", role="assistant", id="msg_1", status="completed",
                               content=[{"type": "output_text", "text": NOTE, "annotations": []}])),
        "input[1].content[0]",
    ),
    (
        "function_call arguments",
        _responses(input=_item(type="function_call", call_id="c1", name="f", arguments=json.dumps(RECORD))),
        "input[1].arguments",
    ),
    ("function_call name", _responses(input=_item(type="function_call", call_id="c1", name=SSN, arguments="{}")), "input[1].name"),
    ("function_call call_id", _responses(input=_item(type="function_call", call_id=SSN, name="f", arguments="{}")), "input[1].call_id"),
    ("function_call_output", _responses(input=_item(type="function_call_output", call_id="c1", output=NOTE)), "input[1].output"),
    (
        "function_call_output parts",
        _responses(input=_item(type="function_call_output", call_id="c1",
                               output=[{"type": "input_text", "text": NOTE}])),
        "input[1].output[0]",
    ),
    ("custom_tool_call", _responses(input=_item(type="custom_tool_call", call_id="c1", name="f", input=NOTE)), "input[1].input"),
    ("custom_tool_call_output", _responses(input=_item(type="custom_tool_call_output", call_id="c1", output=NOTE)), "input[1].output"),
    (
        "local_shell_call",
        _responses(input=_item(type="local_shell_call", call_id="c1", id="lsh_1", status="completed",
                               action={"type": "exec", "command": ["echo", NOTE], "env": {}})),
        "input[1].action.command[1]",
    ),
    ("local_shell_call_output", _responses(input=_item(type="local_shell_call_output", id="c1", output=NOTE)), "input[1].output"),
    ("shell_call", _responses(input=_item(type="shell_call", call_id="c1", action={"commands": [f"echo {NOTE}"]})), "input[1].action.commands[0]"),
    (
        "shell_call_output",
        _responses(input=_item(type="shell_call_output", call_id="c1", output=[
            {"stdout": NOTE, "stderr": "", "outcome": {"type": "exit", "exit_code": 0}}])),
        "input[1].output[0].stdout",
    ),
    (
        "apply_patch_call",
        _responses(input=_item(type="apply_patch_call", call_id="c1", status="completed",
                               operation={"type": "update_file", "path": "notes.txt", "diff": f"+{NOTE}"})),
        "input[1].operation.diff",
    ),
    (
        "apply_patch_call path",
        _responses(input=_item(type="apply_patch_call", call_id="c1", status="completed",
                               operation={"type": "delete_file", "path": f"exports/{SSN}.txt"})),
        "input[1].operation.path",
    ),
    ("apply_patch_call_output", _responses(input=_item(type="apply_patch_call_output", call_id="c1", status="completed", output=NOTE)), "input[1].output"),
    (
        "reasoning summary",
        _responses(input=_item(type="reasoning", id="rs_1", summary=[{"type": "summary_text", "text": NOTE}])),
        "input[1].summary[0]",
    ),
    ("computer_call action", _responses(input=_item(type="computer_call", id="cu_1", call_id="c1", status="completed", action={"type": "type", "text": NOTE})), "input[1].action"),
    ("web_search_call", _responses(input=_item(type="web_search_call", id="ws_1", status="completed", action={"type": "search", "query": NOTE})), "input[1].action"),
    ("file_search_call", _responses(input=_item(type="file_search_call", id="fs_1", status="completed", queries=[NOTE])), "input[1].queries[0]"),
    ("code_interpreter_call", _responses(input=_item(type="code_interpreter_call", id="ci_1", status="completed", container_id="cntr_1", code=f"print('{NOTE}')")), "input[1].code"),
    ("image_generation_call", _responses(input=_item(type="image_generation_call", id="ig_1", status="completed", revised_prompt=NOTE)), "input[1].revised_prompt"),
    ("mcp_call", _responses(input=_item(type="mcp_call", id="mcp_1", name="lookup", server_label="ehr", arguments=json.dumps(RECORD))), "input[1].arguments"),
    ("mcp_call output", _responses(input=_item(type="mcp_call", id="mcp_1", name="lookup", server_label="ehr", arguments="{}", output=NOTE)), "input[1].output"),
    ("mcp_list_tools", _responses(input=_item(type="mcp_list_tools", id="ml_1", server_label="ehr", tools=[{"name": "x", "description": NOTE, "input_schema": {}}])), "input[1].tools"),
    ("mcp_approval_response", _responses(input=_item(type="mcp_approval_response", approval_request_id="a1", approve=False, reason=NOTE)), "input[1].reason"),
    ("item_reference", _responses(input=_item(type="item_reference", id=SSN)), "input[1].id"),
    ("responses tool", _responses(tools=[{"type": "function", "name": "f", "description": NOTE, "parameters": {}}]), "tools[0]"),
    ("text.format name", _responses(text={"format": {"type": "json_schema", "name": SSN, "schema": {}}}), "text.format.name"),
    ("text.format schema", _responses(text={"format": {"type": "json_schema", "name": "x", "schema": SCHEMA}}), "text.format.schema"),
    ("previous_response_id", _responses(previous_response_id=SSN), "previous_response_id"),
    ("responses user", _responses(user=SSN), "user"),
    ("responses safety_identifier", _responses(safety_identifier=SSN), "safety_identifier"),
    ("responses prompt_cache_key", _responses(prompt_cache_key=SSN), "prompt_cache_key"),
    ("responses include", _responses(include=[SSN]), "include[0]"),
    ("responses metadata", _responses(metadata={"note": NOTE}), "metadata"),
    ("prompt variables", _responses(prompt={"id": "pmpt_1", "variables": {"who": NOTE}}), "prompt.variables"),
    ("conversation id", _responses(conversation={"id": SSN}), "conversation.id"),
]  # fmt: skip


@pytest.fixture(scope="module")
def blocking(make_gateway: Any) -> Gateway:
    # Vendor-side MCP servers admitted, so that what their entries hold is inspected like the rest.
    gw: Gateway = make_gateway(
        restricted="block", internal="block", gateway_extra='vendor_connectors = ["mcp"]'
    )
    return gw


def _post(gw: Gateway, path: str, body: Any, **headers: str) -> httpx.Response:
    return httpx.post(
        gw.url + path, json=body, headers={"authorization": f"Bearer {gw.key}", **headers}, timeout=20
    )


def _message(response: httpx.Response) -> str:
    data = response.json()
    return str(data["error"]["message"])


@pytest.mark.parametrize(("name", "request_", "where"), PLACES, ids=[p[0] for p in PLACES])
def test_a_value_planted_anywhere_is_found_there_and_never_leaves(
    blocking: Gateway, name: str, request_: tuple[str, dict[str, Any]], where: str
) -> None:
    path, body = request_
    response = _post(blocking, path, body)
    assert response.status_code == 403, (name, response.text)
    message = _message(response)
    assert f"Found {where}: " in message or f"; {where}: " in message, message
    for value in PLANTED:
        assert value not in message
    assert blocking.provider.received == []


def test_recorded_clients_ids_and_names_give_no_findings(gateway: Gateway) -> None:
    """Ids, tool names, sessions and cache keys are inspected: those of real clients find nothing."""
    user_id = (
        "user_9f2c4b8e7a1d3f5c6b8a9e0d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a6f7e8d9c0b"
        "_account_3f9a1c2e-7b2e-4c1d-9a8b-1c2d3e4f5a6b_session_5d1c2a9e-8f7b-4c3d-9e1a-2b3c4d5e6f70"
    )
    ids = [
        "toolu_01A09q90qw90lq917835lq9", "toolu_vrtx_01XFDUDYJgAACzvnptvVoYEL", "srvtoolu_014hJH82Qum7Td6UV8gDXThB",
        "call_Bp1kQ8sX0aZ4m2nR7tY3vW9e", "fc_68b1f2c3d4e5f6a7b8c9d0e1f2a3b4c5", "rs_68b1f2c3d4e5f6a7b8c9d0e1f2a3b4c5",
        "msg_01XFDUDYJgAACzvnptvVoYEL", "resp_68b1f2c3d4e5f6a7b8c9d0e1f2a3b4c5", "0199c2a4-5e6f-7a8b-9c0d-1e2f3a4b5c6d",
    ]  # fmt: skip
    messages: list[dict[str, Any]] = [{"role": "user", "content": "fix the failing test"}]
    for index, tool_id in enumerate(ids):
        name = ("Read", "Bash", "mcp__github__create_pull_request", "TodoWrite")[index % 4]
        messages.append(
            {"role": "assistant", "content": [{"type": "tool_use", "id": tool_id, "name": name, "input": {}}]}
        )
        messages.append(
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": "done"}]}
        )
    body = {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 8,
        "metadata": {"user_id": user_id},
        "messages": messages,
    }
    request = parse("messages", body, ())
    inspection = gateway.runtime.inspector.inspect(request)
    assert inspection.hits == {} and inspection.tier == "public", inspection.by_location(request.parts)
    codex = json.loads((FIXTURES / "codex.json").read_text())["body"]
    request = parse("responses", codex, ())
    inspection = gateway.runtime.inspector.inspect(request)
    assert inspection.hits == {}


# --- property: a value planted anywhere in a random tool input never leaves ------------------------

_KEYS = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=8)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.text(alphabet=string.ascii_letters + " .,-", max_size=16)
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=24,
)
# (what is planted, how): a value, a key, a number under an MRN key, a record, a sentence.
_PLANTS: list[tuple[str, Any]] = [
    ("value", SSN),
    ("key", SSN),
    ("value", {"mrn": 40981723}),
    ("value", RECORD),
    ("value", NOTE),
]


def _containers(value: Any) -> list[Any]:
    out: list[Any] = []
    if isinstance(value, dict | list):
        out.append(value)
        for item in value.values() if isinstance(value, dict) else value:
            out.extend(_containers(item))
    return out


@st.composite
def _planted_input(draw: st.DrawFn) -> dict[str, Any]:
    tool_input: dict[str, Any] = draw(st.dictionaries(_KEYS, _JSON, max_size=4))
    how, planted = draw(st.sampled_from(_PLANTS))
    containers = _containers(tool_input)
    target = containers[draw(st.integers(0, len(containers) - 1))]
    if isinstance(target, list):
        target.insert(draw(st.integers(0, len(target))), planted)
    elif how == "key":
        target[SSN] = draw(_SCALARS)
    else:
        target[draw(_KEYS)] = planted
    return tool_input


def _sent_to_the_cloud(gw: Gateway) -> str:
    return "\n".join(r.text for r in gw.provider.received if r.prefix != "local")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tool_input=_planted_input(), api=st.sampled_from(["messages", "chat_completions"]))
def test_a_value_planted_anywhere_in_a_tool_input_never_reaches_the_vendor(
    blocking: Gateway, gateway: Gateway, tool_input: dict[str, Any], api: str
) -> None:
    if api == "messages":
        request = _anthropic(messages=_tool_use(tool_input))
    else:
        request = _chat(messages=_chat_call(json.dumps(tool_input)))
    blocking.provider.reset()  # the fake provider is shared by both gateways
    assert _post(blocking, *request).status_code == 403
    assert blocking.provider.received == []
    response = _post(gateway, *request)  # pseudonymized, or routed to the local model
    assert response.status_code == 200, response.text
    sent = _sent_to_the_cloud(gateway)
    for value in PLANTED:
        assert value not in sent, (value, tool_input)


# --- the data file against the official SDKs' request types ---------------------------------------


def _classes(annotation: Any) -> list[Any]:
    """The TypedDicts and models in a type annotation (through unions, lists, Required, Annotated)."""
    if typing_extensions.is_typeddict(annotation) or (
        isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel)
    ):
        return [annotation]
    return [c for argument in typing.get_args(annotation) for c in _classes(argument)]


def _keys(cls: Any) -> list[str]:
    if typing_extensions.is_typeddict(cls):
        return list(typing.get_type_hints(cls))
    return [field.alias or name for name, field in cls.model_fields.items()]


def _tags(cls: Any, tag: str) -> tuple[str, ...]:
    annotation = typing.get_type_hints(cls).get(tag) if typing_extensions.is_typeddict(cls) else None
    if annotation is None and not typing_extensions.is_typeddict(cls):
        annotation = cls.model_fields[tag].annotation if tag in cls.model_fields else None
    literals: list[str] = []
    stack = [annotation]
    while stack:
        current = stack.pop()
        if typing.get_origin(current) is typing.Literal:
            literals.extend(typing.get_args(current))
        else:
            stack.extend(typing.get_args(current))
    return tuple(literals)


def _missing(union: Union, classes: list[Any]) -> list[str]:
    out = []
    for cls in classes:
        for tag in _tags(cls, union.tag):
            member = union.members.get(tag)
            if member is None:
                out.append(f"{union.name}.{tag} ({cls.__name__})")
                continue
            out += [
                f"{member.name}.{k} ({cls.__name__})"
                for k in _keys(cls)
                if k != union.tag and k not in member.fields
            ]
    return out


def _union(api: Api, *path: str) -> Union:
    """The union of objects at `path`: field names, and union members by tag, through lists and
    alternatives."""
    current: Any = api_shapes(api).request
    for step in path:
        current = current.members[step] if isinstance(current, Union) else current.fields[step]
        while not isinstance(current, Shape | Union):
            current = current.item if isinstance(current, ListOf) else current.options["array"]
    assert isinstance(current, Union)
    return current


def test_every_field_the_official_sdks_send_is_in_the_data_file() -> None:
    """Content blocks, messages, parts, tool calls and input items as the anthropic and openai SDKs
    type them, their response objects included (clients send those back in the history)."""
    from anthropic.types import beta as anthropic_beta
    from openai.types import chat, responses

    block = _union("messages", "messages", "user", "content")
    chat_message = _union("chat_completions", "messages")
    part = _union("chat_completions", "messages", "user", "content")
    tool_call = _union("chat_completions", "messages", "assistant", "tool_calls")
    item = _union("responses", "input")
    user_content = typing.get_type_hints(anthropic_beta.BetaUserMessageParam)["content"]
    result_content = typing.get_type_hints(anthropic_beta.BetaToolResultBlockParam)["content"]
    chat_parts = [
        c
        for m in _classes(chat.ChatCompletionMessageParam)
        for c in _classes(typing.get_type_hints(m)["content"])
    ]
    missing = [
        *_missing(block, _classes(user_content) + _classes(result_content) + _classes(anthropic_beta.BetaContentBlock)),
        *_missing(chat_message, [*_classes(chat.ChatCompletionMessageParam), chat.ChatCompletionMessage]),
        *_missing(part, chat_parts),
        *_missing(tool_call, _classes(chat.ChatCompletionMessageToolCallUnionParam)),
        *_missing(item, _classes(responses.ResponseInputItemParam) + _classes(responses.ResponseOutputItem)),
    ]  # fmt: skip
    assert missing == []
