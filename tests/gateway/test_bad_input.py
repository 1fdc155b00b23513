"""Hostile and broken input on both sides: clients that send garbage or lie about who they are, and
upstreams that hang, fail, or send broken streams. Every failure is an API-shaped error; nothing is
forwarded uninspected, and no request leaves more than its two audit events."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import anthropic
import httpx
import openai
import pytest

from phiwarden.audit import AuditError
from tests.gateway.conftest import Gateway

MESSAGE = {
    "model": "claude-test-sonnet",
    "max_tokens": 10,
    "messages": [{"role": "user", "content": "hello"}],
}


def _post(
    gw: Gateway,
    path: str,
    content: bytes | None = None,
    *,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    base = {"x-api-key": gw.key, "content-type": "application/json"}
    if json_body is not None:
        content = json.dumps(json_body).encode()
    return httpx.post(gw.url + path, content=content, headers={**base, **(headers or {})}, timeout=15)


def _anthropic_error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
    return body["error"]  # type: ignore[no-any-return]


def _openai_error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("content", "status", "phrase"),
    [
        (b'{"model": "claude-test-sonnet", "messages": [', 400, "malformed JSON at line 1"),
        (b"\xff\xfe{}", 400, "not valid UTF-8"),
        (b'{"model": "claude-test-sonnet", "max_tokens": NaN, "messages": []}', 400, "malformed JSON"),
        (b"[1, 2]", 400, "must be a JSON object"),
        (json.dumps({**MESSAGE, "surprise": "text"}).encode(), 400, "unknown field"),
        (
            json.dumps(
                {**MESSAGE, "messages": [{"role": "user", "content": [{"type": "hologram", "data": "x"}]}]}
            ).encode(),
            400,
            "unknown content block type",
        ),
        (json.dumps({**MESSAGE, "messages": [{"role": "wizard", "content": "hi"}]}).encode(), 400, "role"),
        (json.dumps({**MESSAGE, "system": 42}).encode(), 400, "system"),
    ],
)
def test_malformed_requests_are_refused_in_the_anthropic_format(
    gateway: Gateway, content: bytes, status: int, phrase: str
) -> None:
    response = _post(gateway, "/v1/messages", content)
    assert response.status_code == status
    assert phrase in _anthropic_error(response)["message"]
    assert gateway.provider.received == []


def test_openai_errors_use_the_openai_format(gateway: Gateway) -> None:
    response = _post(
        gateway,
        "/v1/chat/completions",
        json_body={"model": "gpt-5", "messages": [{"role": "user", "content": [{"type": "mystery"}]}]},
    )
    assert response.status_code == 400
    error = _openai_error(response)
    assert error["param"] == "messages[0].content[0].type"
    assert gateway.provider.received == []


def test_wrong_content_type_and_huge_bodies(gateway: Gateway) -> None:
    response = _post(
        gateway, "/v1/messages", b"model=x", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 415
    huge = json.dumps(
        {**MESSAGE, "messages": [{"role": "user", "content": "a" * (5 * 1024 * 1024)}]}
    ).encode()
    response = _post(gateway, "/v1/messages", huge)
    assert response.status_code == 413
    assert _anthropic_error(response)["type"] == "request_too_large"
    assert gateway.provider.received == []


def test_unknown_fields_allowed_only_when_the_policy_lists_them(make_gateway: Any) -> None:
    gw: Gateway = make_gateway(gateway_extra='extra_fields = ["new_param"]')
    response = _post(gw, "/v1/messages", json_body={**MESSAGE, "other_param": 1})
    assert response.status_code == 400 and "extra_fields" in _anthropic_error(response)["message"]
    # A listed field is inspected as text: a value in it is pseudonymized like any other.
    note = "Write to patient Maria Garcia, her social 478-22-9134 is on file."
    response = _post(gw, "/v1/messages", json_body={**MESSAGE, "new_param": {"note": note}})
    assert response.status_code == 200
    assert gw.provider.received[0].body["new_param"]["note"] != note
    assert "478-22-9134" not in gw.provider.all_text()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-api-key": "pwk_0123456789abcdef_" + "A" * 43},
        {"x-api-key": "sk-ant-real-vendor-key"},
        {"authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0."},
    ],
)
def test_missing_or_forged_credentials(gateway: Gateway, headers: dict[str, str]) -> None:
    response = httpx.post(gateway.url + "/v1/messages", json=MESSAGE, headers=headers)
    assert response.status_code == 401
    assert _anthropic_error(response)["type"] == "authentication_error"
    assert gateway.provider.received == []


def test_revoked_expired_and_scoped_keys(gateway: Gateway) -> None:
    revoked = gateway.new_key()
    gateway.runtime.keys.revoke(revoked.split("_")[1])
    assert (
        _post(gateway, "/v1/messages", json_body=MESSAGE, headers={"x-api-key": revoked}).status_code == 401
    )
    expired = gateway.new_key(expires_in_days=-1)
    assert (
        _post(gateway, "/v1/messages", json_body=MESSAGE, headers={"x-api-key": expired}).status_code == 401
    )
    public_only = gateway.new_key(tiers=("public",))
    body = {**MESSAGE, "messages": [{"role": "user", "content": "Patient: Maria Garcia\nSSN: 478-22-9134"}]}
    response = _post(gateway, "/v1/messages", json_body=body, headers={"x-api-key": public_only})
    assert response.status_code == 403 and "key-scope" in _anthropic_error(response)["message"]
    only_openai = gateway.new_key(destinations=("openai-baa",))
    response = _post(gateway, "/v1/messages", json_body=MESSAGE, headers={"x-api-key": only_openai})
    assert response.status_code == 403
    assert gateway.provider.received == []


def test_block_message_names_categories_counts_and_locations_never_values(make_gateway: Any) -> None:
    gw: Gateway = make_gateway(restricted="block")
    client = anthropic.Anthropic(api_key=gw.key, base_url=gw.url, max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        client.messages.create(
            model="claude-test-sonnet",
            max_tokens=10,
            messages=[
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "Patient: Maria Garcia\nDOB: 1984-07-12\nSSN: 478-22-9134"},
            ],
        )
    message = str(caught.value)
    assert "messages[2].content: " in message and "1 ssn" in message and "1 name" in message
    assert "test-health" in message and "What to do" in message
    for value in ("Maria Garcia", "1984-07-12", "478-22-9134"):
        assert value not in message
    assert gw.provider.received == []
    events = gw.wait_events(1)
    assert events[-1].decision.action == "block" and events[-1].status == "failure"


def test_unknown_routes_and_models(gateway: Gateway) -> None:
    assert httpx.get(gateway.url + "/v1/files", headers={"x-api-key": gateway.key}).status_code == 404
    response = _post(gateway, "/v1/messages", json_body={**MESSAGE, "model": "mystery-model"})
    assert response.status_code == 404 and "not served by any approved destination" in response.text
    response = _post(
        gateway,
        "/v1/chat/completions",
        json_body={"model": "old-gpt", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 403 and "review date" in _openai_error(response)["message"]


def test_upstream_hang_times_out_with_one_decision_event(gateway: Gateway) -> None:
    gateway.provider.mode = "hang"
    before = len(gateway.settled_events())
    started = time.monotonic()
    response = _post(gateway, "/v1/messages", json_body=MESSAGE)
    assert response.status_code == 504
    assert _anthropic_error(response)["type"] == "timeout_error"
    assert time.monotonic() - started < 10
    events = gateway.wait_events(before + 2)[before:]
    assert [e.status for e in events] == ["unknown", "failure"]
    assert len({e.correlation_id for e in events}) == 1


def test_upstream_error_passes_through_and_retries_do_not_duplicate_events(gateway: Gateway) -> None:
    gateway.provider.mode = "error500"
    client = openai.OpenAI(api_key=gateway.key, base_url=gateway.url + "/v1", max_retries=0)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "hi"}])
    gateway.provider.reset()
    gateway.provider.mode = "overloaded_once"
    before = len(gateway.settled_events())
    response = _post(gateway, "/v1/messages", json_body=MESSAGE)
    assert response.status_code == 200
    assert len(gateway.provider.received) == 2  # one retry after the 529
    events = gateway.wait_events(before + 2)[before:]
    assert len(events) == 2
    assert events[1].message is not None and "attempts=2" in events[1].message


def test_broken_and_truncated_streams_end_with_an_error_event(gateway: Gateway) -> None:
    for mode in ("broken_sse", "truncated"):
        gateway.provider.reset()
        gateway.provider.mode = mode
        client = anthropic.Anthropic(api_key=gateway.key, base_url=gateway.url, max_retries=0)
        with pytest.raises(anthropic.APIError), client.messages.stream(**MESSAGE) as stream:  # type: ignore[arg-type]
            for _ in stream:
                pass


def test_client_disconnecting_mid_stream_is_audited(gateway: Gateway) -> None:
    gateway.provider.mode = "slow_chunks"
    before = len(gateway.settled_events())
    body = json.dumps(
        {**MESSAGE, "stream": True, "messages": [{"role": "user", "content": "tell me a long story " * 5}]}
    ).encode()
    request = (
        f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {gateway.key}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", gateway.server.port), timeout=10) as sock:
        sock.sendall(request)
        received = sock.recv(4096)
        assert b"200 OK" in received
    events = gateway.wait_events(before + 2, timeout=10)[before:]
    assert len(events) == 2
    assert (
        events[1].status == "failure"
        and events[1].message is not None
        and "client disconnected" in events[1].message
    )
    # The gateway still serves the next request normally.
    gateway.provider.mode = "echo"
    assert _post(gateway, "/v1/messages", json_body=MESSAGE).status_code == 200


def test_audit_store_failure_fails_closed(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(events: Any) -> Any:
        raise AuditError("disk full")

    monkeypatch.setattr(gateway.runtime.writer.log, "append_batch", broken)
    response = _post(gateway, "/v1/messages", json_body=MESSAGE)
    assert response.status_code == 503
    assert "fail closed" in _anthropic_error(response)["message"]
    assert gateway.provider.received == []
    assert httpx.get(gateway.url + "/readyz").status_code == 503
    monkeypatch.undo()
    assert _post(gateway, "/v1/messages", json_body=MESSAGE).status_code == 200
    assert httpx.get(gateway.url + "/readyz").status_code == 200
    assert httpx.get(gateway.url + "/healthz").json() == {"status": "ok"}


def test_images_only_where_the_matrix_allows_them(gateway: Gateway) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    body = {
        **MESSAGE,
        "messages": [{"role": "user", "content": [image, {"type": "text", "text": "what is this?"}]}],
    }
    # Images cannot be read for PHI: restricted by default (binary_tier), so they go to the local model.
    response = _post(gateway, "/v1/messages", json_body=body)
    assert response.status_code == 403
    assert "images" in _anthropic_error(response)["message"]
    assert gateway.provider.received == []


def test_unreachable_destination_is_a_502_after_its_retries_with_one_decision_event(
    make_gateway: Any,
) -> None:
    with socket.socket() as sock:  # a port nothing listens on once this closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gw: Gateway = make_gateway(
        extra=f"""
[[destination]]
id = "gone"
provider = "anthropic"
base_url = "http://127.0.0.1:{port}"
models = ["gone-*"]
baa = true
tiers = ["public", "internal"]
api_key_env = "PHIWARDEN_TEST_ANTHROPIC_KEY"
"""
    )
    response = _post(gw, "/v1/messages", json_body={**MESSAGE, "model": "gone-1"})
    assert response.status_code == 502
    assert "'gone' is unreachable (ClientConnectorError)" in _anthropic_error(response)["message"]
    events = gw.wait_events(2)
    assert [e.status for e in events] == ["unknown", "failure"]
    assert events[1].message is not None and "attempts=2" in events[1].message  # retries = 1
