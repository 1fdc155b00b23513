"""Recorded request shapes of Claude Code (Anthropic Messages) and Codex (OpenAI Responses)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.gateway.conftest import Gateway

FIXTURES = Path(__file__).parent / "fixtures"


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def _send(gw: Gateway, path: str, fixture: dict[str, Any]) -> httpx.Response:
    headers = {**fixture["headers"], "authorization": f"Bearer {gw.key}", "content-type": "application/json"}
    return httpx.post(gw.url + path, json=fixture["body"], headers=headers, timeout=20)


def _events(text: str) -> list[tuple[str | None, Any]]:
    out = []
    for block in text.strip().split("\n\n"):
        name = None
        data = None
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
        if data is not None:
            out.append((name, json.loads(data) if data != "[DONE]" else data))
    return out


def test_claude_code_turn_keeps_its_shape_and_is_audited(gateway: Gateway) -> None:
    fixture = _load("claude_code.json")
    before = len(gateway.settled_events())
    response = _send(gateway, "/v1/messages?beta=true", fixture)
    assert response.status_code == 200
    names = [name for name, _ in _events(response.text)]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    [received] = gateway.provider.received
    assert received.prefix == "anthropic"
    sent = received.body
    # What the vendor validates comes through unchanged: the signed thinking block, cache_control, tools.
    assert sent["messages"][1]["content"][0] == fixture["body"]["messages"][1]["content"][0]
    assert sent["system"] == fixture["body"]["system"]
    assert sent["tools"] == fixture["body"]["tools"]
    assert received.headers["anthropic-beta"] == fixture["headers"]["anthropic-beta"]
    # Repository code read by the agent is internal: PHI-context identifiers are sanitized.
    result = sent["messages"][2]["content"][0]["content"]
    assert "calculatePatientRiskScore" not in result and "calculateSubjectRiskScore" in result
    decision = gateway.wait_events(before + 2)[before]
    assert decision.actor.client_tool == "Claude Code"
    assert decision.classification.tier == "internal"
    assert decision.actor.session_id is not None
    files = {(r.type, r.name) for r in decision.resources}
    assert ("file.read", "/home/dev/ehr-app/src/billing/invoice.py") in files


def test_claude_code_reading_a_patient_fixture_goes_to_the_local_model(gateway: Gateway) -> None:
    fixture = _load("claude_code_phi.json")
    before = len(gateway.settled_events())
    response = _send(gateway, "/v1/messages", fixture)
    assert response.status_code == 200
    assert [r.prefix for r in gateway.provider.received] == ["local"]
    decision = gateway.wait_events(before + 2)[before]
    assert decision.decision.action == "route"
    assert decision.classification.categories.get("ssn") == 1
    assert ("file.read", "/home/dev/ehr-app/tests/fixtures/patient_record.json") in {
        (r.type, r.name) for r in decision.resources
    }


def test_codex_turn_on_the_responses_api(gateway: Gateway) -> None:
    fixture = _load("codex.json")
    before = len(gateway.settled_events())
    response = _send(gateway, "/v1/responses", fixture)
    assert response.status_code == 200
    events = _events(response.text)
    assert events[0][0] == "response.created" and events[-1][0] == "response.completed"
    numbers = [data["sequence_number"] for _, data in events]
    assert numbers == sorted(numbers)
    [received] = gateway.provider.received
    assert received.prefix == "openai"
    sent = received.body
    assert sent["input"][3]["encrypted_content"] == "gAAAAABo-encrypted-reasoning-blob=="
    assert json.loads(sent["input"][4]["arguments"])["command"] == ["bash", "-lc", "sed -n 1,40p src/app.py"]
    assert sent["tools"] == fixture["body"]["tools"]
    decision = gateway.wait_events(before + 2)[before]
    assert decision.actor.client_tool == "Codex"
    assert ("file.write", "src/app.py") in {(r.type, r.name) for r in decision.resources}
