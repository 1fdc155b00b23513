"""The request boundary: what a client writes outside the prompt — names (model, repository, client
tool), headers, vendor-encrypted fields, vendor-side connectors — neither reaches the vendor nor the
audit trail unless it is what it claims to be. Driven through the real SDKs and raw HTTP."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from phiwarden.audit import AuditEvent
from phiwarden.audit.store import Query
from phiwarden.gateway.connectors import rules
from phiwarden.gateway.shapes import parse
from phiwarden.gateway.upstream import Upstream
from phiwarden.policy import PolicyError, load_policy
from phiwarden.policy.gateway import CONNECTOR_KINDS, Destination
from tests.gateway.conftest import Gateway, policy_text

SSN = "518-42-7731"
LABEL = "Okonkwo_Marisol_518-42-7731_MRN-00482913"  # base64url characters only
NOTE = "Patient: Marisol Okonkwo SSN 518-42-7731 MRN-00482913"
B64_NOTE = base64.b64encode(NOTE.encode()).decode()
RAW = ("Okonkwo", "Marisol", SSN, "518427731", "00482913")
FIXTURES = Path(__file__).parent / "fixtures"
MESSAGE = {
    "model": "claude-test-sonnet",
    "max_tokens": 10,
    "messages": [{"role": "user", "content": "hello"}],
}


@pytest.fixture(scope="module")
def blocking(make_gateway: Any) -> Gateway:
    gw: Gateway = make_gateway(
        restricted="block",
        internal="block",
        extra='[[gateway.repository]]\nname = "acme/ehr-legacy"\nmode = "enforce"',
    )
    return gw


@pytest.fixture(scope="module")
def connecting(make_gateway: Any) -> Gateway:
    gw: Gateway = make_gateway(
        gateway_extra='vendor_connectors = ["mcp:https://docs.example.com/*", "web_fetch", "file_search:vs_docs*"]'
    )
    return gw


def _anthropic(gw: Gateway, **kwargs: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=gw.key, base_url=gw.url, max_retries=0, **kwargs)


def _openai(gw: Gateway, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(api_key=gw.key, base_url=gw.url + "/v1", max_retries=0, **kwargs)


def _post(gw: Gateway, path: str, body: Any, **headers: str) -> httpx.Response:
    return httpx.post(gw.url + path, json=body, headers={"x-api-key": gw.key, **headers}, timeout=20)


def _records(gw: Gateway, cid: str) -> list[tuple[AuditEvent, str]]:
    """The events of one request, with each stored record as text."""
    out = []
    for record in gw.runtime.writer.log.store.search(Query()):
        event = AuditEvent.from_ocsf(json.loads(record.record)["event"])
        if event.correlation_id == cid:
            out.append((event, bytes(record.record).decode()))
    return out


def _first_event(gw: Gateway, response: Any) -> AuditEvent:
    """The request's first event (its decision or refusal), after checking that no event of it
    stores a planted value. `response`: httpx's, or that of the SDKs' own httpx."""
    gw.settled_events()
    records = _records(gw, response.headers["x-phiwarden-request-id"])
    assert records
    for _, raw in records:
        for value in RAW:
            assert value not in raw, f"{value!r} stored in the audit trail"
    return records[0][0]


# --- names the client chose, as the audit trail records them ---------------------------------------


def test_repository_model_and_client_tool_are_recorded_only_as_the_policy_names_them(
    blocking: Gateway,
) -> None:
    unlisted = "Okonkwo_Marisol_" + SSN
    client = _anthropic(
        blocking, default_headers={"x-phiwarden-repository": unlisted, "user-agent": "Marisol x/1"}
    )
    raw = client.messages.with_raw_response.create(
        model="claude-test-sonnet", max_tokens=10, messages=[{"role": "user", "content": "hello"}]
    )
    event = _first_event(blocking, raw.http_response)
    [repository] = [r for r in event.resources if r.type == "repository"]
    # Requests naming the same unlisted repository share its keyed hash (correlation, no value).
    assert (repository.name, repository.uid) == ("unlisted", blocking.runtime.writer.log.hash_value(unlisted))
    assert event.actor.client_tool == "other"
    assert event.actor.model == "claude-test-sonnet"

    listed = _post(blocking, "/v1/messages", MESSAGE, **{"x-phiwarden-repository": "acme/ehr-legacy"})
    [repository] = [r for r in _first_event(blocking, listed).resources if r.type == "repository"]
    assert (repository.name, repository.uid) == ("acme/ehr-legacy", None)

    claimed = _post(
        blocking, "/v1/messages", MESSAGE, **{"x-phiwarden-client": "claude code", "user-agent": "x"}
    )
    assert _first_event(blocking, claimed).actor.client_tool == "Claude Code"
    assert _first_event(blocking, _post(blocking, "/v1/messages", MESSAGE)).actor.client_tool == "other"


@pytest.mark.parametrize(
    ("model", "status", "recorded"),
    [
        ("claude-opus-9-1", 200, "claude-opus-9-1"),  # a glob serves it, a plain name: recorded
        ("claude-sonnet-4-5-" + SSN, 403, "claude-*"),  # a glob serves it, detection finds an SSN
        ("claude-Marisol Okonkwo", 200, "claude-*"),  # not a model name's spelling
        ("Marisol Okonkwo " + SSN, 404, "unlisted"),
    ],
)
def test_a_model_name_is_recorded_as_the_vendor_matrix_serves_it(
    blocking: Gateway, model: str, status: int, recorded: str
) -> None:
    response = _post(blocking, "/v1/messages", {**MESSAGE, "model": model})
    assert response.status_code == status, response.text
    assert _first_event(blocking, response).actor.model == recorded
    if status == 404:
        assert response.json()["error"]["message"].startswith(
            f"the requested model ({len(model)} characters) is not served by any approved destination"
        )
    for value in RAW:
        assert status == 200 or value not in response.text


# --- vendor-encrypted fields ---------------------------------------------------------------------


def _assistant(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {
        **MESSAGE,
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [*blocks, {"type": "text", "text": "done"}]},
            {"role": "user", "content": "continue"},
        ],
    }


def _opaque_places(blob: str) -> list[tuple[str, dict[str, Any], str]]:
    """(path, body, where the blob sits) for every vendor-encrypted field of the three APIs."""
    search = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "x"}}
    result = {"type": "web_search_result", "title": "t", "url": "https://e.org", "encrypted_content": blob}
    run = {"type": "server_tool_use", "id": "srvtoolu_2", "name": "code_execution", "input": {"code": "1"}}
    output = {
        "type": "encrypted_code_execution_result",
        "content": [],
        "encrypted_stdout": blob,
        "return_code": 0,
    }
    cite = {
        "type": "web_search_result_location",
        "cited_text": "x",
        "url": "https://e.org",
        "encrypted_index": blob,
    }
    responses = {"model": "gpt-5", "input": []}
    return [
        ("/v1/messages", _assistant({"type": "thinking", "thinking": "ok", "signature": blob}), "messages[1].content[0].signature"),
        ("/v1/messages", _assistant({"type": "redacted_thinking", "data": blob}), "messages[1].content[0]"),
        ("/v1/messages", _assistant({"type": "compaction", "content": "s", "encrypted_content": blob}), "messages[1].content[0].encrypted_content"),
        ("/v1/messages", _assistant({"type": "text", "text": "c", "citations": [cite]}), "messages[1].content[0].citations[0].encrypted_index"),
        ("/v1/messages", _assistant(search, {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": [result]}), "messages[1].content[1].content[0].encrypted_content"),
        ("/v1/messages", _assistant(run, {"type": "code_execution_tool_result", "tool_use_id": "srvtoolu_2", "content": output}), "messages[1].content[1].content.encrypted_stdout"),
        ("/v1/responses", {**responses, "input": [{"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": blob}, {"role": "user", "content": "hi"}]}, "input[0].encrypted_content"),
        ("/v1/responses", {**responses, "input": [{"type": "compaction", "id": "cmp_1", "encrypted_content": blob}, {"role": "user", "content": "hi"}]}, "input[0].encrypted_content"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "blob", [LABEL, B64_NOTE, base64.urlsafe_b64encode(NOTE.encode()).decode().rstrip("=")]
)
def test_readable_text_in_an_encrypted_field_is_found_and_never_leaves(blocking: Gateway, blob: str) -> None:
    for path, body, where in _opaque_places(blob):
        response = _post(blocking, path, body)
        assert response.status_code == 403, (where, response.text)
        assert f"{where}: " in response.text, response.text
        assert blocking.provider.received == []
        for value in RAW:
            assert value not in response.text


def test_encrypted_fields_are_never_rewritten(gateway: Gateway) -> None:
    """Where the action pseudonymizes, a finding in encrypted reasoning routes the request to the local
    model with the field as it came (the vendor checks it)."""
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": LABEL}
    body = {"model": "gpt-5", "input": [reasoning, {"role": "user", "content": "hi"}]}
    assert _post(gateway, "/v1/responses", body).status_code == 200
    [received] = gateway.provider.received
    assert received.prefix == "local"
    assert received.body["input"][0]["encrypted_content"] == LABEL


def _blobs() -> list[str]:
    """Vendor blobs as real clients send them back: base64 of random bytes (Anthropic signatures and
    encrypted contents, protobuf), base64url Fernet tokens ("gAAAAAB…", OpenAI encrypted reasoning)."""
    rng = random.Random(20261207)
    out = []
    for index in range(300):
        data = bytes(rng.getrandbits(8) for _ in range(rng.choice((48, 96, 256, 700, 1800))))
        if index % 2:
            out.append("gAAAAAB" + base64.urlsafe_b64encode(data).decode())
        else:
            out.append(base64.b64encode(b"\x12" + data).decode())
    return out


def test_real_vendor_blobs_give_no_findings(blocking: Gateway) -> None:
    inspector = blocking.runtime.inspector
    for name in ("claude_code.json", "codex.json"):
        fixture = json.loads((FIXTURES / name).read_text())
        request = parse("messages" if name.startswith("claude") else "responses", fixture["body"], ())
        opaque = [i for i, p in enumerate(request.parts) if p.frozen and not p.classified]
        assert opaque, name
        assert not set(opaque) & set(inspector.scan(request)), name
    blobs = _blobs()
    for blob in blobs:
        assert inspector.engine.scan(blob) == [], blob
    # And through the gateway, in every encrypted field, to a gateway that blocks any finding.
    for blob in blobs[:8]:
        for path, body, where in _opaque_places(blob):
            response = _post(blocking, path, body)
            assert response.status_code == 200, (where, response.text)


# --- headers ---------------------------------------------------------------------------------------


def test_only_checked_headers_reach_the_vendor(gateway: Gateway) -> None:
    client = _anthropic(gateway, default_headers={"x-patient": NOTE, "x-stainless-timeout": NOTE})
    client.beta.messages.create(
        model="claude-test-sonnet",
        max_tokens=10,
        messages=[{"role": "user", "content": "hello"}],
        betas=["interleaved-thinking-2025-05-14", "claude-code-20250219"],
    )
    [received] = gateway.provider.received
    headers = received.headers
    assert headers["anthropic-beta"] == "interleaved-thinking-2025-05-14,claude-code-20250219"
    assert headers["anthropic-version"] == client.default_headers["anthropic-version"]
    assert headers["user-agent"] == "phiwarden-gateway/0.1.0"
    assert not [name for name in headers if name.startswith("x-stainless") or name == "x-patient"]
    gateway.provider.reset()
    organization, project = "org-AbCdEfGhIjKlMnOpQrStUvWx", "proj_AbCdEfGhIjKlMnOpQrStUvWx"
    _openai(gateway, organization=organization, project=project).chat.completions.create(
        model="gpt-5",
        messages=[{"role": "user", "content": "hello"}],
        extra_headers={"Idempotency-Key": "stainless-python-retry-0199c2a4-5e6f-7a8b-9c0d-1e2f3a4b5c6d"},
    )
    [received] = gateway.provider.received
    # The organization and project are the destination's (the ones its terms cover), never a client's.
    assert "openai-organization" not in received.headers and "openai-project" not in received.headers
    assert received.headers["idempotency-key"].endswith("0199c2a4-5e6f-7a8b-9c0d-1e2f3a4b5c6d")
    assert "anthropic-version" not in received.headers


def test_a_destination_sends_its_own_organization_and_project() -> None:
    destination = Destination(
        id="openai-baa",
        provider="openai",
        base_url="https://api.openai.com",
        organization="org-AbCdEfGhIjKlMnOp",
        project="proj_AbCdEfGhIjKlMnOp",
    )
    headers = Upstream.headers(destination, "responses", {"openai-beta": "responses=v1"})
    assert headers["openai-organization"] == "org-AbCdEfGhIjKlMnOp"
    assert headers["openai-project"] == "proj_AbCdEfGhIjKlMnOp"
    assert headers["openai-beta"] == "responses=v1"


@pytest.mark.parametrize(
    ("header", "value", "problem"),
    [
        ("anthropic-beta", "Marisol Okonkwo " + SSN, "must hold comma-separated beta feature names"),
        ("anthropic-beta", f"x-{SSN}-2025-01-01", "detection reads as ssn"),
        ("anthropic-version", "Marisol", "must hold an API version date"),
        ("idempotency-key", LABEL, "must hold a UUID"),
        ("openai-beta", "Okonkwo Marisol", "must hold comma-separated beta feature names"),
    ],
)
def test_a_forwarded_header_out_of_form_is_refused_without_its_value(
    gateway: Gateway, header: str, value: str, problem: str
) -> None:
    if header.startswith("openai"):
        # The SDK sends its own organization and project headers, from these settings.
        settings: dict[str, Any] = {"default_headers": {header: value}}
        with pytest.raises(openai.BadRequestError) as openai_error:
            _openai(gateway, **settings).responses.create(model="gpt-5", input="hello")
        response, message = openai_error.value.response, openai_error.value.message
    else:
        with pytest.raises(anthropic.BadRequestError) as anthropic_error:
            _anthropic(gateway, default_headers={header: value}).messages.create(
                model="claude-test-sonnet", max_tokens=10, messages=[{"role": "user", "content": "hello"}]
            )
        response, message = anthropic_error.value.response, anthropic_error.value.message
    assert f"the {header} header" in message and problem in message, message
    for planted in RAW:
        assert planted not in response.text
    assert gateway.provider.received == []
    assert _first_event(gateway, response).decision.rule == "enforce:bad-header"


def test_a_header_of_another_api_is_not_forwarded_nor_checked(gateway: Gateway) -> None:
    body = {"model": "gpt-5", "messages": [{"role": "user", "content": "hello"}]}
    assert _post(gateway, "/v1/chat/completions", body, **{"anthropic-beta": NOTE}).status_code == 200
    assert "anthropic-beta" not in gateway.provider.received[0].headers


def test_an_empty_header_or_item_asks_for_nothing(gateway: Gateway) -> None:
    assert _post(gateway, "/v1/messages", MESSAGE, **{"anthropic-beta": ""}).status_code == 200
    assert "anthropic-beta" not in gateway.provider.received[0].headers
    beta = "interleaved-thinking-2025-05-14, ,claude-code-20250219,"
    assert _post(gateway, "/v1/messages", MESSAGE, **{"anthropic-beta": beta}).status_code == 200
    assert gateway.provider.received[1].headers["anthropic-beta"] == beta


# --- vendor-side connectors ----------------------------------------------------------------------

EHR_MCP = "https://ehr-mcp.hospital.example.org/sse?patient=Marisol+Okonkwo"


def test_vendor_side_connectors_are_refused_by_default(gateway: Gateway) -> None:
    with pytest.raises(anthropic.PermissionDeniedError) as anthropic_error:
        _anthropic(gateway).beta.messages.create(
            model="claude-test-sonnet",
            max_tokens=10,
            messages=[{"role": "user", "content": "list today's admissions"}],
            mcp_servers=[{"type": "url", "url": EHR_MCP, "name": "ehr", "authorization_token": "tok"}],
            betas=["mcp-client-2025-04-04"],
        )
    message = anthropic_error.value.message
    assert "mcp_servers[0] asks the vendor to call an MCP server itself" in message
    assert '[gateway] vendor_connectors ("mcp:PATTERN")' in message
    assert "ehr-mcp" not in message and "Okonkwo" not in message
    assert _first_event(gateway, anthropic_error.value.response).decision.rule == "enforce:vendor-connector"
    with pytest.raises(openai.PermissionDeniedError) as openai_error:
        _openai(gateway).responses.create(
            model="gpt-5",
            input="list today's admissions",
            tools=[
                {"type": "mcp", "server_label": "ehr", "server_url": EHR_MCP, "require_approval": "never"}
            ],
        )
    assert "tools[0] asks the vendor to call an MCP server or connector itself" in openai_error.value.message
    for tool in (
        {
            "type": "mcp",
            "server_label": "drive",
            "connector_id": "connector_googledrive",
            "authorization": "t",
        },
        {"type": "file_search", "vector_store_ids": ["vs_patients"]},
        {"type": "code_interpreter", "container": {"type": "auto", "file_ids": ["file-1"]}},
        {"type": "code_interpreter", "container": "cntr_123"},
    ):
        response = _post(gateway, "/v1/responses", {"model": "gpt-5", "input": "hi", "tools": [tool]})
        assert response.status_code == 403, (tool, response.text)
    web_fetch = {**MESSAGE, "tools": [{"type": "web_fetch_20250910", "name": "web_fetch", "max_uses": 5}]}
    assert _post(gateway, "/v1/messages", web_fetch).status_code == 403
    assert gateway.provider.received == []
    # Code execution over nothing but the request reaches nothing beyond it.
    plain = {"type": "code_interpreter", "container": {"type": "auto"}}
    assert (
        _post(gateway, "/v1/responses", {"model": "gpt-5", "input": "hi", "tools": [plain]}).status_code
        == 200
    )


def test_connectors_the_policy_lists_go_and_are_audited(connecting: Gateway) -> None:
    docs = {"type": "url", "url": "https://docs.example.com/mcp", "name": "docs"}
    raw = _anthropic(connecting).beta.messages.with_raw_response.create(
        model="claude-test-sonnet",
        max_tokens=10,
        messages=[{"role": "user", "content": "what changed in the API?"}],
        mcp_servers=[docs],  # type: ignore[list-item]
        tools=[{"type": "web_fetch_20250910", "name": "web_fetch"}],
        betas=["mcp-client-2025-04-04", "web-fetch-2025-09-10"],
    )
    assert raw.http_response.status_code == 200
    assert connecting.provider.received[0].body["mcp_servers"] == [docs]
    resources = {(r.type, r.name, r.uid) for r in _first_event(connecting, raw.http_response).resources}
    assert ("vendor_connector", "mcp:https://docs.example.com/*", "mcp_servers[0]") in resources
    assert ("vendor_connector", "web_fetch", "tools[0]") in resources
    search = {"type": "file_search", "vector_store_ids": ["vs_docs_1", "vs_patients"]}
    response = _post(connecting, "/v1/responses", {"model": "gpt-5", "input": "hi", "tools": [search]})
    assert response.status_code == 403
    other = {**MESSAGE, "mcp_servers": [{"type": "url", "url": EHR_MCP, "name": "ehr"}]}
    assert _post(connecting, "/v1/messages", other).status_code == 403


def test_vendor_connectors_in_the_policy_are_checked(tmp_path: Path) -> None:
    for entry in ("mpc:https://x/*", "mcp:", "everything"):
        path = tmp_path / "phiwarden.toml"
        path.write_text(policy_text("http://127.0.0.1:1", gateway_extra=f"vendor_connectors = [{entry!r}]"))
        with pytest.raises(PolicyError, match="vendor_connectors"):
            load_policy(path)
    assert {rule.kind for rule in rules()} == set(CONNECTOR_KINDS)


# --- error messages never repeat what the client sent ------------------------------------------------


def test_errors_describe_what_the_client_sent_without_repeating_it(gateway: Gateway) -> None:
    sent = f"Marisol-Okonkwo-{SSN}"
    responses = {
        404: httpx.post(f"{gateway.url}/v1/{sent}", headers={"x-api-key": gateway.key}),
        405: httpx.post(f"{gateway.url}/v1/models/{sent}", headers={"x-api-key": gateway.key}),
        415: httpx.post(
            gateway.url + "/v1/messages",
            content=b"{}",
            headers={"x-api-key": gateway.key, "content-type": sent},
        ),
    }
    for status, response in responses.items():
        assert response.status_code == status
        assert "Marisol" not in response.text and SSN not in response.text, response.text
    assert "no such route; it serves POST /v1/messages" in responses[404].text
    assert responses[405].headers["allow"] == "GET, HEAD"
    with pytest.raises(openai.NotFoundError) as error:
        _openai(gateway).models.retrieve(sent)
    assert f"the requested model ({len(sent)} characters) is not offered" in error.value.message
    assert _openai(gateway).models.retrieve("gpt-5.1-mini").id == "gpt-5.1-mini"
    with pytest.raises(anthropic.BadRequestError) as refused:
        _anthropic(gateway).messages.create(
            model="gpt-5", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    assert "model 'gpt-5' is served by 'openai-baa', which does not speak this API" in refused.value.message


# --- numbers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "where", "expected"),
    [
        ("/v1/messages", {**MESSAGE, "top_k": -1}, "top_k", "an integer of at least 0"),
        ("/v1/messages", {**MESSAGE, "temperature": 518427731}, "temperature", "a number from 0 to 1"),
        ("/v1/messages", {**MESSAGE, "max_tokens": 0}, "max_tokens", "an integer of at least 1"),
        (
            "/v1/messages",
            {**MESSAGE, "thinking": {"type": "enabled", "budget_tokens": 518}},
            "thinking.budget_tokens",
            "an integer of at least 1024",
        ),
        (
            "/v1/chat/completions",
            {"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}], "top_logprobs": 518427731},
            "top_logprobs",
            "an integer from 0 to 20",
        ),
        (
            "/v1/chat/completions",
            {
                "model": "gpt-5",
                "messages": [{"role": "user", "content": "hi"}],
                "presence_penalty": 5.18427731e8,
            },
            "presence_penalty",
            "a number from -2 to 2",
        ),
        ("/v1/responses", {"model": "gpt-5", "input": "hi", "top_p": 5.18}, "top_p", "a number from 0 to 1"),
    ],
)
def test_numbers_outside_the_documented_range_are_refused_without_their_value(
    gateway: Gateway, path: str, body: dict[str, Any], where: str, expected: str
) -> None:
    response = _post(gateway, path, body)
    assert response.status_code == 400
    assert f"{where}: expected {expected}, as the API documents" in response.text, response.text
    assert "518" not in response.text
    assert gateway.provider.received == []


def test_numbers_without_a_documented_range_pass(gateway: Gateway) -> None:
    """seed, top_k's upper end and max_tokens have none: any integer goes (the README says so)."""
    chat = {"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}], "seed": 518427731}
    assert _post(gateway, "/v1/chat/completions", chat).status_code == 200
    thinking = {"type": "enabled", "budget_tokens": 4096}
    assert (
        _post(
            gateway, "/v1/messages", {**MESSAGE, "max_tokens": 8192, "top_k": 40, "thinking": thinking}
        ).status_code
        == 200
    )


def test_monitor_mode_says_what_enforcement_would_have_done(gateway: Gateway) -> None:
    pilot = gateway.new_key("rollout@example.org")  # group pilot: monitor mode
    body = {
        **MESSAGE,
        "messages": [{"role": "user", "content": f"Write to patient Marisol Okonkwo, SSN {SSN}."}],
    }
    response = _post(gateway, "/v1/messages", body, **{"x-api-key": pilot})
    assert response.status_code == 200
    assert response.headers["x-phiwarden-decision"].startswith("would-pseudonymize; tier=restricted; ")
    assert response.headers["x-phiwarden-decision"].endswith("; mode=monitor")
    assert SSN in gateway.provider.all_text()  # forwarded as it came
